"""report.pdf: printed by headless Chromium to A4 pages, read back with pypdf."""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

import pytest

from crmnb.errors import CrmnbError
from crmnb.present.pdf import build_pdf, find_chromium, print_page

pypdf = pytest.importorskip("pypdf", reason="pypdf is in the test extra")
needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="no headless Chromium (.ci/run installs one)")

A4 = (595, 842)  # points
ROWS = 160


def _page(lang: str = "en") -> str:
    """Return a report-like page: a summary, a collapsed section, a long table, a second section."""
    rows = "".join(f"<tr><td>row {i:03d}</td><td>{i * 1.5:.1f}</td></tr>" for i in range(ROWS))
    return (
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'><title>Lead conversion uplift</title>"
        "<style>body{font-family:sans-serif}</style></head><body><main>"
        "<h1>Lead conversion uplift</h1><section class='summary'><p class='verdict'>Verdict: Target reached</p></section>"
        "<section id='step-1'><h2>1. Goal and scope</h2><details><summary>More</summary><p>Folded detail text</p></details>"
        f"<table class='t'><thead><tr><th>Customer segment</th><th>Spend</th></tr></thead><tbody>{rows}</tbody></table>"
        "</section><section id='step-2'><h2>2. Data collection</h2><p>Second step</p></section></main></body></html>"
    )


@needs_chromium
def test_pdf_pages_a4_sections_and_headers(tmp_path):
    report = tmp_path / "report.html"
    report.write_text(_page(), encoding="utf-8")
    pdf = build_pdf(report)
    assert pdf == tmp_path / "report.pdf" and not list(tmp_path.glob(".*partial"))
    reader = pypdf.PdfReader(pdf)
    pages = [p.extract_text() for p in reader.pages]
    for page in reader.pages:
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == A4
    assert "Lead conversion uplift" in pages[0] and "Target reached" in pages[0]
    assert "row 000" not in pages[0], "step 1 starts on a page of its own"
    table_pages = [i for i, text in enumerate(pages) if "row " in text]
    assert len(table_pages) >= 2, "160 rows need more than one A4 page"
    for i in table_pages:  # the header is repeated on every page of the table
        assert "Customer segment" in pages[i]
    every_row = "".join(pages[i] for i in table_pages)
    assert all(f"row {i:03d}" in every_row for i in range(ROWS))
    assert all(sum(f"row {i:03d}" in pages[p] for p in table_pages) == 1 for i in range(ROWS)), "no row is cut in two"
    assert "Folded detail text" in "".join(pages), "collapsed sections are printed open"
    last = next(i for i, text in enumerate(pages) if "2. Data collection" in text)
    assert last > table_pages[-1] and "row " not in pages[last], "step 2 starts on a new page"


def test_print_page_adds_the_rules_once_and_opens_details():
    page = print_page("<html><head><title>x</title></head><body><details open><p>a</p></details><details></details>")
    assert page.count("@page") == 1 and "size:A4" in page and "</head>" in page
    assert page.count("<details open") == 2 and "&lt;" not in page


def test_no_chromium_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMNB_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert find_chromium() is None
    report = tmp_path / "report.html"
    report.write_text(_page(), encoding="utf-8")
    with pytest.raises(CrmnbError, match=r"report\.pdf needs headless Chromium and none was found.*apt-get install"):
        build_pdf(report)
    assert not (tmp_path / "report.pdf").exists()


def test_a_failing_browser_is_named(tmp_path, monkeypatch):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'cannot open display' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CRMNB_CHROMIUM", str(fake))
    report = tmp_path / "report.html"
    report.write_text(_page(), encoding="utf-8")
    with pytest.raises(CrmnbError, match=r"could not print report\.pdf \(exit 3\): cannot open display"):
        build_pdf(report)


def test_case_file_asks_for_the_pdf(tmp_path):
    from crmnb.params import load_case
    from crmnb.present.outputs import ON_REQUEST, OUTPUTS, every_output, media_type

    case = load_case(Path(__file__).resolve().parents[1] / "parameters" / "lead_conversion_uplift.yaml")
    pdf = ON_REQUEST["report.pdf"]
    assert case.pdf is False and not pdf.wanted(case)
    assert pdf.wanted(case.model_copy(update={"pdf": True}))
    assert "report.pdf" not in OUTPUTS and list(every_output())[-1] == "report.pdf"
    assert media_type(tmp_path / "report.pdf") == "application/pdf"


@needs_chromium
def test_demo_case_with_pdf_true_writes_it_in_both_languages(demo_outputs, tmp_path):
    """A demo case asking for the PDF gets report.pdf beside the report; page 1 has the title and the verdict."""
    import json

    from crmnb.handoffs import Workspace
    from crmnb.params import load_case
    from crmnb.present.outputs import build_outputs

    for case_id, folder in demo_outputs.items():
        copy = tmp_path / case_id
        shutil.copytree(folder, copy)
        case = load_case(folder.parents[1] / "parameters" / f"{case_id}.yaml").model_copy(update={"pdf": True})
        built = build_outputs(case, sorted((copy / "notebooks").glob("*.ipynb")), Workspace(tmp_path, case_id))
        assert set(built) == {"report.html", "tables.xlsx", "report.pdf"}
        reader = pypdf.PdfReader(copy / "report.pdf")
        assert len(reader.pages) > 3
        first = reader.pages[0].extract_text()
        summary = json.loads((copy / "data" / "report" / "summary.json").read_text(encoding="utf-8"))
        verdict = summary["verdict_text"]
        squeeze = functools.partial(re.sub, r"\s+", "")  # a PDF's text breaks lines where the page did
        assert case.title in first and squeeze(verdict) in squeeze(first)


def test_the_index_page_links_a_pdf_the_case_wrote(tmp_path):
    from crmnb.run.index import _links

    folder = tmp_path / "case_a"
    folder.mkdir()
    for name in ("report.html", "tables.xlsx", "report.pdf"):
        (folder / name).write_bytes(b"x")
    entry = {"folder": "case_a", "status": "ok", "notebook": None}
    hrefs = [link["href"] for link in _links(tmp_path, entry, "en")]
    assert hrefs[:3] == ["case_a/report.html", "case_a/tables.xlsx", "case_a/report.pdf"]
    (folder / "report.pdf").unlink()
    assert "case_a/report.pdf" not in [link["href"] for link in _links(tmp_path, entry, "en")]
