"""Run every benchmark: ``python -m benchmarks`` (or ``make bench``)."""

from benchmarks import analysis

print("queryopt benchmarks: each suite prints its own table.\n")
analysis.main()
