"""`queryopt --help` starts fast: registering the commands loads no driver, parser, renderer or ORM."""

from __future__ import annotations

import subprocess
import sys

from queryopt.cli import advise, report, top

HEAVY = ("psycopg", "psycopg_pool", "rich", "sqlglot", "sqlalchemy", "redis", "tenacity", "queryopt.report")


def test_help_loads_none_of_the_heavy_modules() -> None:
    script = (
        "import sys\n"
        "from queryopt.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "usage: queryopt" in done.stdout
    assert done.stderr.strip() == "[]", f"--help imported {done.stderr.strip()}"


def test_every_command_help_stays_light_too() -> None:
    script = (
        "import sys\n"
        "from queryopt.cli import build_parser\n"
        "parser = build_parser()\n"
        "for command in ('advise', 'demo', 'explain', 'migrate', 'pin', 'plans', 'prune', 'report', 'top', 'unpin'):\n"
        "    try:\n"
        "        parser.parse_args([command, '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stderr.strip() == "[]", f"a command's --help imported {done.stderr.strip()}"


def test_the_report_choices_written_out_match_the_report() -> None:
    from queryopt.report import ReportFormat, Severity, SortKey

    assert tuple(key.value for key in SortKey) == report.SORT_KEYS
    assert report.SORT_KEYS[0] == SortKey.TOTAL.value
    assert tuple(form.value for form in ReportFormat) == report.FORMATS
    assert report.FORMATS[0] == ReportFormat.TABLE.value
    assert (Severity.WARNING.value, Severity.CRITICAL.value) == report.FAIL_ON


def test_the_advise_and_top_defaults_written_out_match_their_sources() -> None:
    from queryopt.advisor import DEFAULT_MAX_INDEXES
    from queryopt.advisor.render import AdviceFormat
    from queryopt.report import SortKey

    assert advise.MAX_INDEXES == DEFAULT_MAX_INDEXES
    assert tuple(form.value for form in AdviceFormat) == advise.FORMATS
    assert advise.FORMATS[0] == AdviceFormat.TABLE.value
    assert tuple(key.value for key in SortKey) == top.SORT_KEYS
