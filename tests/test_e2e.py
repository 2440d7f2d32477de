"""End to end: a case on small demo data, through all seven notebooks, to report and workbook."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from raw_figures import lead_conversion
from sheets import read_sheet

from crmnb.demo.generator import generate
from crmnb.errors import StepFailed
from crmnb.present.words import category
from crmnb.run.steps import run_case

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def _case_file(tmp: Path, data: Path, **changes) -> Path:
    raw = yaml.safe_load((ROOT / "parameters" / "lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(data)}
    raw.update(changes)
    folder = tmp / "parameters"
    folder.mkdir(exist_ok=True)
    path = folder / f"{raw['case_id']}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("demo")
    generate(data, scale=0.5, seed=7)
    return data


@pytest.fixture(scope="module")
def finished(demo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("case")
    case_file = _case_file(tmp, demo)
    # the notebooks live in the workbook; the case file and outputs may live anywhere
    return run_case(case_file, tmp / "outputs", progress=None)


def test_report_and_workbook_exist(finished):
    assert finished.report.is_file() and finished.report.stat().st_size > 10_000
    assert finished.workbook.is_file()
    assert [p.name[:2] for p in finished.notebooks] == ["01", "02", "03", "04", "05", "06", "07"]


def test_report_has_no_code_and_needs_no_network(finished):
    html = finished.report.read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert not re.search(r"<link\b", html, re.I), "no external stylesheet"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I), "nothing loaded from the network"
    for code in ("crmnb.open_case", "ws.write(", "import crmnb", "case_file =", "In&nbsp;[", "Traceback"):
        assert code not in html
    assert html.count("<img") >= 3 and "data:image/png;base64," in html
    assert "Executive summary" in html and "Table 3" in html


def test_headline_conversion_matches_raw_exports(finished, demo):
    case = finished.case
    a0, a1 = case.windows["after"]
    expected, n = lead_conversion(demo, case.department, a0, a1, case.thresholds.conversion_window_days)
    assert n > 100
    table2 = read_sheet(finished.workbook, "Table 2 KPI before-after")
    row = table2.set_index("metric").loc["lead_conversion_rate"]
    assert row["after"] == pytest.approx(expected, abs=1e-12)
    assert int(row["n_after"]) == n
    # and the same figure is what the stakeholder reads
    assert f"{expected:.1%}" in finished.report.read_text(encoding="utf-8")


def test_workbook_holds_the_three_template_tables(finished):
    sheets = pd.ExcelFile(finished.workbook).sheet_names
    for name in ("Table 1 case card", "Table 2 KPI before-after", "Table 3 improvement plan"):
        assert name in sheets
    card = pd.read_excel(finished.workbook, sheet_name="Table 1 case card")
    assert list(card.columns) == ["Case", "Department", "Period", "Owner", "Goal"]  # the reader's headers
    assert list(read_sheet(finished.workbook, "Table 1 case card").columns) == [
        *["case", "department", "period", "owner", "goal"]
    ]
    plan = read_sheet(finished.workbook, "Table 3 improvement plan")
    assert len(plan) >= 3 and plan["measure"].notna().all()


def test_no_phone_or_email_of_the_demo_leaks(finished, demo):
    customers = pd.read_csv(demo / "customers.csv", encoding="utf-8-sig", dtype=str)
    leads = pd.read_csv(demo / "leads.csv", encoding="utf-8-sig", dtype=str)
    html = finished.report.read_text(encoding="utf-8")
    book = pd.ExcelFile(finished.workbook)
    cells = " ".join(pd.read_excel(book, sheet_name=s, dtype=str).to_string() for s in book.sheet_names)
    values = pd.concat([customers["phone"], customers["email"], leads["phone"], leads["email"]]).dropna().unique()
    digits = {"".join(ch for ch in v if ch.isdigit())[-11:] for v in values if "@" not in v}
    assert len(values) > 1000
    for value in values:
        assert value not in html and value not in cells, value
    for d in digits:  # a phone reformatted on the way (dashes, +86) must not appear either
        assert d not in html and d not in cells, d


def test_report_is_small_and_self_contained(finished):
    html = finished.report.read_text(encoding="utf-8")
    assert finished.report.stat().st_size <= 2 * 1024 * 1024
    assert "<script" not in html.lower() and "@import" not in html and "url(http" not in html


def test_a_failing_step_is_named_and_its_notebook_kept(demo, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in demo.iterdir():
        if f.name != "orders.csv":
            (broken / f.name).write_bytes(f.read_bytes())
    case_file = _case_file(tmp_path, broken, case_id="broken_case")
    with pytest.raises(StepFailed) as err:
        run_case(case_file, tmp_path / "outputs", progress=None)
    msg = str(err.value)
    assert "02_data_collection" in msg and "cell" in msg and "orders" in msg
    kept = tmp_path / "outputs" / "broken_case" / "notebooks" / "02_data_collection.ipynb"
    assert kept.is_file()


def test_planted_intervention_effects_are_found_with_intervals(finished):
    table2 = read_sheet(finished.workbook, "Table 2 KPI before-after").set_index("metric")
    response = table2.loc["lead_response_hours"]
    conversion = table2.loc["lead_conversion_rate"]
    assert response["ci_high"] < 0 and response["change_rate"] < -0.35, "response time roughly halves"
    assert conversion["ci_low"] > 0, "conversion rises, with an interval that excludes zero"
    html = finished.report.read_text(encoding="utf-8")
    summary = html[html.index("Executive summary") : html.index("<section class='steps'>")]
    assert "Lead conversion rate" in summary and "first contact" in summary  # the goal, then its first driver
    assert "the 95% interval" in summary, "the verdict gives the interval of the level against the target"
    assert summary.count("95% CI") >= 2


def test_every_planted_receipt_mismatch_is_listed(finished, demo):
    planted = json.loads((demo / "planted.json").read_text(encoding="utf-8"))
    listed = read_sheet(finished.workbook, "Receipts check")
    status = dict(zip(listed["opportunity_id"], listed["status"]))
    for m in planted["receipt_mismatches"]:
        assert status.get(m["opportunity_id"]) == category("mismatch", "en") == "amounts differ", m
    for opp in planted["won_without_receipt"]:
        assert status.get(opp) == category("no receipt", "en"), opp
