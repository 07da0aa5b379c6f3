"""The HTML report opened in a real headless Chromium: charts drawn, nothing logged to the console.

Skips (with the reason) only when no Chromium binary is installed; CI installs
Debian's ``chromium`` package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from queryopt.report import report
from queryopt.report.html_page import render_html
from queryopt.report.svg import BAR_COLOUR, DISTRIBUTION_COLOURS
from tests.db.report import report_seed as seed
from tests.png_pixels import colour_counts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install chromium)")

PAGE_BACKGROUND = "#f6f7f9"


def _screenshot(page: Path, tmp_path: Path, size: str = "1200,2000") -> tuple[bytes, list[str]]:
    """Open ``page`` in headless Chromium; return the PNG and the lines it logged from the page's console."""
    assert CHROMIUM is not None
    png = tmp_path / f"{page.stem}.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={png}",
        f"--window-size={size}",
        "--enable-logging=stderr",
        "--v=0",
        page.as_uri(),
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    # Chromium logs every console message, CSP violation and uncaught error of the page as INFO:CONSOLE.
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return png.read_bytes(), console


def test_console_capture_sees_page_errors(tmp_path: Path) -> None:
    """The check below can fail: a page that breaks its CSP and throws is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
        '<img src="http://192.0.2.1/x.png"><p>x</p>',
        encoding="utf-8",
    )
    _, console = _screenshot(bad, tmp_path, size="300,200")
    assert any("violates the following Content Security Policy" in line for line in console)


def test_html_report_renders_its_charts_without_console_errors(dsn: str, tmp_path: Path) -> None:
    seed.seed_table(dsn)
    result = report(dsn, since="24h", now=seed.NOW)
    page = tmp_path / "report.html"
    page.write_text(render_html(result), encoding="utf-8")
    png, console = _screenshot(page, tmp_path)
    assert console == []
    colours = colour_counts(png)
    pixels = sum(colours.values())
    assert pixels == 1200 * 2000
    assert len(colours) > 50  # text, tables and charts, not a blank page
    assert colours[PAGE_BACKGROUND] + colours["#ffffff"] < pixels * 0.95
    # The charts are drawn in their own colours: the timeline's bars and each query's max bar.
    assert colours[BAR_COLOUR] > 500
    assert colours[DISTRIBUTION_COLOURS[-1]] > 500
