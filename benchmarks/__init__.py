"""Reproducible performance comparisons; ``python -m benchmarks`` runs them all."""
