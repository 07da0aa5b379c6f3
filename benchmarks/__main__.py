"""Run every benchmark: ``python -m benchmarks`` (or ``make bench``)."""

from rich.console import Console

from benchmarks import report

report.print_table(report.run(), Console(width=130))
