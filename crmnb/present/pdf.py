"""report.pdf: the report printed to A4 by headless Chromium, for those who print or archive.

Chromium, not WeasyPrint: the screenshot tests already need it (``.ci/run`` installs it), it adds
no Python dependency and no system libraries (WeasyPrint needs pango), and it prints the page as
readers see it in a browser, with the report's embedded Chinese glyphs. A print style sheet
(templates/print.css) is added to a copy of the report: a page per step, rows, figures and
small tables never cut, table headers repeated on each page, every collapsed section open.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from crmnb.errors import CrmnbError
from crmnb.present.templates import render

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""The names a headless Chromium goes by on PATH, looked for in this order (after ``$CRMNB_CHROMIUM``)."""

TIMEOUT_SECONDS = 180
"""How long Chromium may take to print one report."""


def find_chromium() -> str | None:
    """Return the Chromium to print with: ``$CRMNB_CHROMIUM`` if set, else the first of :data:`BROWSERS` on PATH."""
    chosen = os.environ.get("CRMNB_CHROMIUM")
    if chosen:
        return shutil.which(chosen) or (chosen if Path(chosen).is_file() else None)
    return next((exe for name in BROWSERS if (exe := shutil.which(name))), None)


def print_page(page: str) -> str:
    """Return the report page ready to print: the print rules added, every ``<details>`` open.

    >>> print_page("<head></head><details><summary>1</summary></details>").count("<details open")
    1
    """
    rules = f"<style>{render('print.css')}</style>"
    page = re.sub(r"<details(?![^>]*\bopen\b)", "<details open", page)
    return page.replace("</head>", rules + "</head>", 1) if "</head>" in page else rules + page


def html_to_pdf(html_file: Path, pdf_file: Path, chromium: str | None = None) -> Path:
    """Print an HTML file to an A4 PDF with headless Chromium; say clearly when there is none or it fails."""
    exe = chromium or find_chromium()
    if exe is None:
        raise CrmnbError(
            "report.pdf needs headless Chromium and none was found (looked for $CRMNB_CHROMIUM, "
            + ", ".join(BROWSERS)
            + "): install one (Debian: apt-get install chromium) or set 'pdf: false' in the case file"
        )
    pdf_file = Path(pdf_file)
    with tempfile.TemporaryDirectory(prefix="crmnb-pdf-") as profile:
        command = [
            exe,
            "--headless",
            "--no-sandbox",  # a container's root user has no sandbox; the page is our own, scriptless file
            "--disable-gpu",
            "--no-pdf-header-footer",  # no date, file path or title in the margins
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_file}",
            Path(html_file).resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise CrmnbError(f"Chromium ({exe}) did not print report.pdf within {TIMEOUT_SECONDS} s") from None
        except OSError as exc:
            raise CrmnbError(f"Chromium ({exe}) could not be started to print report.pdf: {exc}") from None
    if done.returncode != 0 or not pdf_file.is_file() or pdf_file.stat().st_size == 0:
        tail = " ".join((done.stderr or "").strip().splitlines()[-3:])
        raise CrmnbError(f"Chromium ({exe}) could not print report.pdf (exit {done.returncode}): {tail}")
    return pdf_file


def build_pdf(report: Path) -> Path:
    """Write ``report.pdf`` beside ``report.html``, printed from a copy with the print rules."""
    report = Path(report)
    with tempfile.TemporaryDirectory(prefix="crmnb-print-") as tmp:
        copy = Path(tmp) / "report.html"
        copy.write_text(print_page(report.read_text(encoding="utf-8")), encoding="utf-8")
        out = report.with_name("report.pdf")
        partial = report.with_name(".report.pdf.partial")  # a failed print leaves no half PDF in its place
        html_to_pdf(copy, partial)
        return partial.replace(out)
