"""The brief a manager reads first: the same verdict and headline everywhere, a report that opens with a brief
of about two screens and fits a laptop and a phone, and ``crmnb report`` rebuilding it without a run."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from crmnb.cli import main

pytestmark = pytest.mark.e2e

LAPTOP, PHONE = (1280, 800), (390, 844)
BRIEF_MAX = 1.25 * 800 * 2  # about two screens at 1280×800


def _summary(folder: Path) -> dict:
    return json.loads((folder / "data" / "report" / "summary.json").read_text(encoding="utf-8"))


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script|title)\b.*?</\1>", " ", page, flags=re.S)))


def _case_file(folder: Path) -> Path:
    return folder.parents[1] / "parameters" / f"{folder.name}.yaml"


# --------------------------------------------------------------------------- the same words everywhere
def test_summary_index_and_report_show_the_same_verdict_and_headline(demo_outputs, tmp_path):
    from crmnb.run.index import write_index

    root = next(iter(demo_outputs.values())).parent
    index = _text(write_index(root).read_text(encoding="utf-8"))
    for folder in demo_outputs.values():
        s = _summary(folder)
        report = _text((folder / "report.html").read_text(encoding="utf-8"))
        assert s["headline"] and s["headline"] in report, f"{folder.name}: the report lacks the headline"
        assert s["headline"] in index, f"{folder.name}: the index page lacks the headline"
        assert s["verdict_text"] in report
        page = (folder / "report.html").read_text(encoding="utf-8")
        assert "class='tile verdict " in page and "<details class='step'" in page


def test_demo_verdicts_give_margin_and_interval_and_do_not_claim_reached_within_the_noise(demo_outputs):
    rp, lc = _summary(demo_outputs["repeat_purchase_optimisation"]), _summary(demo_outputs["lead_conversion_uplift"])
    assert rp["verdict"] != "reached", rp["verdict_text"]
    low, high = rp["interval"]
    assert low <= rp["goal"]["target"] <= high or high < rp["goal"]["target"], "reached only when the interval clears"
    assert "95%置信区间" in rp["verdict_text"] and "目标值" in rp["verdict_text"]
    assert re.search(r"the 95% interval \d+\.\d–\d+\.\d% (includes|lies)", lc["verdict_text"]), lc["verdict_text"]
    assert re.search(r"\d\.\d pp (above|below) the 20\.0% target|level with", lc["verdict_text"])
    for s in (rp, lc):
        assert s["latest_month"] and s["latest_month"]["month"] == "2025-12"
        assert s["headline"].count(":") + s["headline"].count("：") == 1 and len(s["headline"]) < 80


def test_findings_and_actions_are_said_once(demo_outputs):
    for folder in demo_outputs.values():
        page = _text((folder / "report.html").read_text(encoding="utf-8"))
        s = _summary(folder)
        for line in s["findings"]:
            assert page.count(line) == 1, f"said more than once: {line}"
        assert page.count(s["verdict_text"]) == 1


# --------------------------------------------------------------------------- crmnb report
def _copy(folder: Path, root: Path) -> Path:
    dest = root / folder.name
    shutil.copytree(folder, dest)
    return dest


def test_crmnb_report_rebuilds_the_outputs_without_running(demo_outputs, tmp_path, capsys):
    folder = demo_outputs["lead_conversion_uplift"]
    copy = _copy(folder, tmp_path / "out")
    (copy / "report.html").unlink()
    (copy / "tables.xlsx").unlink()
    summary = _summary(copy)
    summary["headline"] = "edited in JupyterLab: 20.1% vs target 20.0%"  # as if step 7 had been run again by hand
    (copy / "data" / "report" / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    before = {p.name: p.stat().st_mtime for p in (copy / "notebooks").glob("*.ipynb")}
    assert main(["report", str(_case_file(folder)), "--output-root", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "rebuilt from" in out and str(copy / "report.html") in out
    assert "edited in JupyterLab: 20.1% vs target 20.0%" in (copy / "report.html").read_text(encoding="utf-8")
    from openpyxl import load_workbook

    assert load_workbook(copy / "tables.xlsx").sheetnames
    assert {p.name: p.stat().st_mtime for p in (copy / "notebooks").glob("*.ipynb")} == before, "nothing re-ran"
    assert (tmp_path / "out" / "index.html").is_file()


def test_crmnb_report_says_when_the_case_has_not_been_run_or_a_step_failed(demo_outputs, tmp_path, capsys):
    folder = demo_outputs["lead_conversion_uplift"]
    case = str(_case_file(folder))
    assert main(["report", case, "--output-root", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "lead_conversion_uplift has not been run" in err and f"crmnb run {case}" in err
    copy = _copy(folder, tmp_path / "out")
    (copy / "notebooks" / "06_diagnosis_and_plan.ipynb").unlink()
    assert main(["report", case, "--output-root", str(tmp_path / "out")]) == 1
    assert "steps not run yet: 06_diagnosis_and_plan" in capsys.readouterr().err
    shutil.copy(folder / "notebooks" / "06_diagnosis_and_plan.ipynb", copy / "notebooks")
    nb_path = copy / "notebooks" / "05_case_deep_dive.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.outputs)
    cell.outputs.append(nbformat.v4.new_output("error", ename="KeyError", evalue="'x'", traceback=[]))
    nbformat.write(nb, nb_path)
    (copy / "report.html").unlink()
    assert main(["report", case, "--output-root", str(tmp_path / "out")]) == 1
    assert "step 05_case_deep_dive failed when it last ran" in capsys.readouterr().err
    assert not (copy / "report.html").exists(), "no report from a failed step"


# --------------------------------------------------------------------------- in Chromium, on a laptop and a phone
MEASURE_JS = """(() => {
  const brief = document.querySelector('#summary').getBoundingClientRect();
  const closed = {width: document.documentElement.scrollWidth, brief: brief.height};
  document.querySelectorAll('details').forEach(d => d.open = true);
  const wide = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > window.innerWidth + 1 && !e.closest('.table');
  }).map(e => e.tagName + '.' + e.className + ': ' + (e.innerText || e.alt || '').slice(0, 60));
  const tables = [...document.querySelectorAll('.table')].map(b => ({
    scrolls: getComputedStyle(b).overflowX, inside: b.scrollWidth > b.clientWidth,
    sticky: getComputedStyle(b.querySelector('td, th')).position}));
  const narrow = [...document.querySelectorAll('th')].filter(th => th.innerText.trim().length >= 4
      && th.getBoundingClientRect().width < 3.5 * parseFloat(getComputedStyle(th).fontSize))
    .map(th => th.innerText.trim());
  const imgs = [...document.images].filter(i => i.getBoundingClientRect().right > window.innerWidth + 1).length;
  return {closed, open: document.documentElement.scrollWidth, inner: window.innerWidth, wide: wide.slice(0, 8),
          tables, narrow: narrow.slice(0, 8), imgs};
})()"""


@pytest.fixture(scope="module")
def chromium() -> str:
    from test_screenshot import BROWSERS

    for name in BROWSERS:
        exe = shutil.which(name)
        if exe:
            return exe
    pytest.skip(f"NOT RUN: no Chromium binary on PATH (looked for {', '.join(BROWSERS)}); install Debian's 'chromium'")


@pytest.fixture(scope="module")
def measured(chromium, demo_reports, tmp_path_factory) -> dict:
    import os

    from test_screenshot import DevTools

    out = {}
    for lang, report in sorted(demo_reports.items()):
        for width, height in (LAPTOP, PHONE):
            tools = DevTools(chromium, dict(os.environ), tmp_path_factory.mktemp(f"brief_{lang}_{width}") / "p")
            try:
                tools.open(report.resolve().as_uri())
                tools.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=width < 600,
                )
                tools.call("Page.reload")
                tools.wait_for("Page.loadEventFired")
                out[lang, width] = tools.evaluate(MEASURE_JS)
            finally:
                tools.close()
    return out


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("width", [LAPTOP[0], PHONE[0]])
def test_no_horizontal_page_scroll_wide_tables_scroll_in_their_box(measured, lang, width):
    m = measured[lang, width]
    assert m["inner"] == width
    assert m["closed"]["width"] <= width, f"the page is {m['closed']['width']} px wide at {width} px"
    assert m["open"] <= width, f"with every step open the page is {m['open']} px wide at {width} px: {m['wide']}"
    assert not m["wide"] and not m["imgs"], m["wide"]
    assert m["tables"] and all(t["scrolls"] == "auto" and t["sticky"] == "sticky" for t in m["tables"])
    if width == PHONE[0]:
        assert any(t["inside"] for t in m["tables"]), "on a phone the wide tables scroll inside their box"
    assert not m["narrow"], f"headers squeezed to a character or two per line: {m['narrow']}"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_brief_fits_about_two_laptop_screens(measured, lang):
    h = measured[lang, LAPTOP[0]]["closed"]["brief"]
    assert 400 < h <= BRIEF_MAX, f"the brief is {h:.0f} px high at 1280×800 (at most {BRIEF_MAX:.0f})"
