"""Real-world SQL texts the analysis tests and benchmarks run over."""
