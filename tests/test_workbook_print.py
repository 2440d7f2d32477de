"""tables.xlsx reads and prints: formats per kind of value, print set-up, Chinese sheets, the method's templates."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from crmnb.handoffs import Workspace
from crmnb.params import load_case
from crmnb.present.words import t
from crmnb.present.workbook import P_VALUE, build_workbook

ROOT = Path(__file__).resolve().parents[1]
END = pd.Timestamp("2025-12-31")  # the repeat-purchase case's period end; its churn look-back is 3 months


def _case(lang: str):
    case = load_case(ROOT / "parameters" / "repeat_purchase_optimisation.yaml")
    assert case.period.end == END.date() and case.thresholds.churn.lookback_months == 3
    return case.model_copy(update={"language": lang, "mask_pii": True})


@pytest.fixture
def book(tmp_path):
    """Return a function writing the workbook of a small hand-made workspace in ``lang`` and opening it."""
    ws = Workspace(tmp_path, "case")
    ws.write("scope/case_card", pd.DataFrame({"case": ["Repeat"], "owner": ["客户服务部运营负责人"]}))
    ws.write(
        "report/kpi_compare",
        pd.DataFrame(
            {
                "metric": ["repeat_purchase_rate", "lead_response_hours"],
                "name": ["复购率", "线索响应时长（小时）"],
                "unit": ["rate", "hours"],
                "before": [0.15, 40.13],
                "after": [0.2, 19.04],
                "difference": [0.05, -21.09],
                "p_value": [0.0004, 0.2],
            }
        ),
    )
    ws.write("metrics/headline", pd.DataFrame({"metric": ["x"], "name": ["响应"], "dimension": ["efficiency"]}))
    rfm = pd.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(25)],
            "recency_days": [10] + [100] * 24,
            "orders": [4] + [1] * 24,
            "spend": [400_000.0] + [1_000.0 + i for i in range(24)],
            "tier": ["high_value"] + ["low_value"] * 24,
        }
    )
    ws.write("deep_dive/rfm", rfm)
    ws.write(
        "clean/customers",
        pd.DataFrame(
            {
                "customer_id": rfm["customer_id"],
                "company": ["杭州云启科技有限公司"] + ["深圳恒信机械有限公司"] * 24,
                "industry": ["制造业"] * 25,
            }
        ),
    )
    rules = pd.DataFrame(
        {
            "customer_id": ["C001", "C002", "C003"],
            "visits": [2, 0, 9],
            "orders": [0, 0, 3],
            "complaints": [1, 2, 0],
            "risk_level": ["medium", "high", "low"],
            "low_visits": [True, True, False],
            "no_orders": [True, True, False],
            "complained": [True, True, False],
        }
    )
    ws.write("deep_dive/churn_rules", rules)
    tickets = pd.DataFrame(
        {
            "customer_id": ["C001", "C001", "C001", "C003"],
            "created_at": pd.to_datetime(
                ["2025-11-02", "2025-12-20", "2025-06-01", "2025-12-31 18:00:00"], format="ISO8601"
            ),
            "csat": [2.0, 4.0, 1.0, 5.0],  # the June ticket is before the 3-month look-back
        }
    )
    ws.write("clean/tickets", tickets)
    ws.write("plan/watch_list", pd.DataFrame({"customer_id": ["C002"], "action": ["主管牵头大客户复盘"]}))
    ws.write(
        "report/tracking",
        pd.DataFrame(
            {
                "action": [1],
                "measure": ["开启跟进提醒"],
                "owner": ["客户服务部运营负责人"],
                "deadline": ["2026-03-31"],
                "kpi_to_watch": ["复购率"],
                "status": ["planned"],
            }
        ),
    )
    ws.write_json("report/summary", {"verdict": "reached"})

    def open_book(lang: str):
        return load_workbook(build_workbook(_case(lang), ws))

    return open_book


def _rows(sheet) -> list[dict]:
    head = [c.value for c in sheet[1]]
    return [dict(zip(head, [c.value for c in row])) for row in sheet.iter_rows(min_row=2)]


def test_table_2_formats_and_prints_on_one_page(book):
    wb = book("zh")
    sheet = wb["表2 核心指标改善前后对比表"]
    head = [c.value for c in sheet[1]]
    assert head[0] == t("column.metric", "zh") and t("column.name", "zh") not in head  # the metric by its name
    assert sheet.cell(2, 1).value == "复购率"  # not its id
    col = {h: i + 1 for i, h in enumerate(head)}
    before, p = col[t("column.before", "zh")], col["p_value"] if "p_value" in col else col[t("column.p_value", "zh")]
    assert sheet.cell(2, before).number_format == "0.0%" and sheet.cell(3, before).number_format == "0.0"
    assert sheet.cell(2, p).number_format == P_VALUE == '[<0.001]"<0.001";0.000'
    assert sheet.cell(2, col[t("column.unit", "zh")]).value == t("category.rate", "zh")
    setup = sheet.page_setup
    assert setup.orientation == "landscape" and str(setup.paperSize) == sheet.PAPERSIZE_A4
    assert sheet.sheet_properties.pageSetUpPr.fitToPage and setup.fitToWidth == 1 and setup.fitToHeight == 1
    assert sheet.print_title_rows == "$1:$1" and sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref is None, "a short table has no filter"


def test_value_tiers_template_recomputed(book):
    wb = book("zh")
    sheet = wb["客户价值分层表"]
    assert [c.value for c in sheet[1]] == [
        "客户编号",
        "客户（已脱敏）",
        "所属行业",
        "累计消费金额（元）",
        "订单数",
        "客单价（元）",
        "复购占比",
        "价值层级",
        "最近购买时间",
    ]
    top = _rows(sheet)[0]
    assert top["客户编号"] == "C000" and top["客户（已脱敏）"] == "*科技有限公司"
    assert top["客单价（元）"] == 100_000 and top["复购占比"] == 0.75  # 400,000 / 4 orders; (4 - 1) / 4
    assert top["价值层级"] == "高价值客户" and top["最近购买时间"] == pd.Timestamp("2025-12-21").to_pydatetime()
    assert sheet["F2"].number_format == "#,##0" and sheet["G2"].number_format == "0.0%"
    assert sheet["I2"].number_format == "yyyy-mm-dd"
    assert sheet.auto_filter.ref == "A1:I26", "a long table gets a filter"
    assert sheet.page_setup.fitToWidth == 1 and sheet.page_setup.fitToHeight == 0 and sheet.print_title_rows == "$1:$1"
    text = [c.value for row in sheet.iter_rows() for c in row]
    assert "杭州云启科技有限公司" not in text and "深圳恒信机械有限公司" not in text


def test_churn_warning_template(book):
    wb = book("zh")
    sheet = wb["客户流失预警表"]
    assert [c.value for c in sheet[1]] == [
        "客户编号",
        "客户（已脱敏）",
        "近3个月访问次数",
        "订单数",
        "投诉次数",
        "满意度（5分制）",
        "流失风险等级",
        "干预措施",
    ]
    rows = {r["客户编号"]: r for r in _rows(sheet)}
    assert [r["客户编号"] for r in _rows(sheet)] == ["C002", "C001", "C003"], "highest risk first"
    assert rows["C001"]["满意度（5分制）"] == 3.0  # (2 + 4) / 2: the June ticket is outside the look-back
    assert rows["C003"]["满意度（5分制）"] == 5.0 and rows["C002"]["满意度（5分制）"] is None
    assert rows["C002"]["干预措施"] == "主管牵头大客户复盘", "the watch list's action"
    assert t("watch.action.service_recovery", "zh") in rows["C001"]["干预措施"]
    assert rows["C002"]["流失风险等级"] == "高" and rows["C003"]["流失风险等级"] == "低"
    assert sheet["F3"].number_format == "0.0"


def test_action_tracking_template_in_both_languages(book):
    zh = _rows(book("zh")["行动跟踪表"])[0]
    assert zh == {
        "改进措施": "开启跟进提醒",
        "负责人": "客户服务部运营负责人",
        "截止时间": "2026-03-31",
        "完成情况": "计划中",
        "跟踪指标": "复购率",
        "指标变化": "15.0% → 20.0% (+5.0个百分点)",
        "下一轮迭代建议": t("sheet.advice.reached", "zh"),
    }
    wb = book("en")
    en = _rows(wb["Action tracking"])[0]
    assert en["Metric change"] == "15.0% → 20.0% (+5.0 pp)" and en["Next-iteration advice"].startswith("Keep")
    assert "Customer value tiers" in wb.sheetnames and "Churn early warning" in wb.sheetnames


def test_categories_in_chinese(book):
    wb = book("zh")
    assert _rows(wb["核心指标"])[0][t("column.dimension", "zh")] == t("category.efficiency", "zh") != "efficiency"


@pytest.fixture(scope="module")
def demo_books(demo_outputs):
    return {case_id: load_workbook(folder / "tables.xlsx") for case_id, folder in demo_outputs.items()}


def test_demo_workbooks_format_every_number_and_print(demo_books):
    for case_id, wb in demo_books.items():
        for sheet in wb.worksheets:
            assert sheet.page_setup.orientation == "landscape", (case_id, sheet.title)
            assert sheet.page_setup.fitToWidth == 1 and sheet.print_title_rows == "$1:$1", (case_id, sheet.title)
            assert sheet.freeze_panes == "A2"
            if sheet.max_row > 21:
                assert sheet.auto_filter.ref, (case_id, sheet.title)
            for row in sheet.iter_rows(min_row=2):
                for cell in row:
                    if isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool):
                        assert cell.number_format != "General", (case_id, sheet.title, cell.coordinate, cell.value)
        for title in wb.sheetnames[:3]:
            assert wb[title].page_setup.fitToHeight == 1, "Tables 1-3 print on one page each"


def test_demo_chinese_workbook_has_chinese_sheets_and_values(demo_books):
    wb = demo_books["repeat_purchase_optimisation"]
    assert all(re.search(r"[\u4e00-\u9fff]", title) for title in wb.sheetnames), wb.sheetnames
    values = {c.value for sheet in wb.worksheets for row in sheet.iter_rows() for c in row if isinstance(c.value, str)}
    assert not values & {"high_value", "planned", "efficiency", "True", "False"}


def test_every_sheet_has_a_title_in_both_languages_that_excel_accepts():
    from crmnb.handoffs import HANDOFFS
    from crmnb.present.workbook import sheet_title

    for h in (h for h in HANDOFFS.values() if h.sheet):
        for lang in ("en", "zh"):
            title = sheet_title(h, lang)
            assert 0 < len(title) <= 31 and not set(title) & set(":\\/?*[]"), (h.name, lang, title)
        assert re.search(r"[\u4e00-\u9fff]", sheet_title(h, "zh")), h.name


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_sheet_longer_than_the_cap_shows_its_first_rows_and_names_where_the_rest_are(tmp_path, monkeypatch, lang):
    from openpyxl import Workbook

    from crmnb.present import workbook

    monkeypatch.setattr(workbook, "MAX_SHEET_ROWS", 5)
    wb = Workbook(write_only=True)
    df = pd.DataFrame({"customer_id": [f"C{i}" for i in range(12)], "spend": [100.0 - i for i in range(12)]})
    workbook.write_sheet(wb, "Tiers", df, money=["spend"], lang=lang, source="data/deep_dive/rfm.parquet")
    wb.save(tmp_path / "t.xlsx")
    sheet = load_workbook(tmp_path / "t.xlsx")["Tiers"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert [r[0] for r in rows[1:6]] == ["C0", "C1", "C2", "C3", "C4"] and rows[1][1] == 100.0
    assert sheet.cell(row=2, column=2).number_format == "#,##0"
    note = rows[6][0]
    assert len(rows) == 7 and "5" in note and "12" in note and "data/deep_dive/rfm.parquet" in note
    assert ("全部行" in note) if lang == "zh" else note.startswith("The first 5 of 12 rows")
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref is None  # 5 rows: no filter
