"""The stakeholder report and workbook: escaping, no formulas from data, analyst-only cells, language cells."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from markupsafe import Markup
from openpyxl import Workbook, load_workbook

from crmnb.present.display import table, text
from crmnb.present.fonts import cjk_font_face
from crmnb.present.report import render_notebook, render_output
from crmnb.present.workbook import write_sheet

TRICKY = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '=HYPERLINK("http://x","y")',
    "+86 客户要求回电",
    "-1+1",
    "@SUM(A1)",
]


def _display(obj) -> dict:
    return {
        "output_type": "display_data",
        "data": {"text/html": obj._repr_html_(), "text/plain": repr(obj)},
        "metadata": {},
    }


def test_crm_free_text_shows_as_text_not_markup():
    out = render_output(_display(table(pd.DataFrame({"note": TRICKY}), lang="en")))
    assert "<script>" not in out and "<img src=x" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "&lt;img src=x onerror=alert(1)&gt;" in out
    sentence = render_output(_display(text("Lost: <img src=x onerror=alert(1)>")))
    assert "<img" not in sentence and "&lt;img" in sentence


def test_workbook_writes_formula_like_text_as_text(tmp_path):
    wb = Workbook()
    wb.remove(wb.active)
    write_sheet(wb, "Notes", pd.DataFrame({"note": TRICKY, "amount": range(len(TRICKY))}), money=["amount"])
    wb.save(tmp_path / "t.xlsx")
    ws = load_workbook(tmp_path / "t.xlsx")["Notes"]
    for i, value in enumerate(TRICKY, start=2):
        cell = ws.cell(row=i, column=1)
        shown = "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value  # OWASP: no formula
        assert cell.value == shown and cell.data_type == "s", value
    assert ws.freeze_panes == "A2" and ws["A1"].font.bold
    assert ws.cell(row=2, column=2).number_format == "#,##0"


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cells = [
        nbformat.v4.new_markdown_cell("# 1 · Goal\n\nWhat the step is for."),
        nbformat.v4.new_markdown_cell("**What you fill in.** the case file"),
        nbformat.v4.new_markdown_cell("English reading"),
        nbformat.v4.new_markdown_cell("中文说明"),
        nbformat.v4.new_markdown_cell("Analyst conclusion for the report"),
        nbformat.v4.new_code_cell("secret_code = 1"),
    ]
    cells[1].metadata["tags"] = ["analyst-only"]
    cells[2].metadata["tags"] = ["lang-en"]
    cells[3].metadata["tags"] = ["lang-zh"]
    cells[5].outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="WARNING noise"),
        nbformat.v4.new_output("display_data", data={"text/plain": "shown"}),
    ]
    nb.cells = cells
    return nb


def test_report_keeps_narrative_drops_analyst_only_code_and_noise():
    en = render_notebook(_notebook(), "en")
    assert "Analyst conclusion for the report" in en and "English reading" in en and "shown" in en
    for hidden in ("What you fill in", "中文说明", "secret_code", "WARNING noise", "1 · Goal"):
        assert hidden not in en
    zh = render_notebook(_notebook(), "zh")
    assert "中文说明" in zh and "English reading" not in zh


def test_chinese_glyphs_are_embedded_only_when_needed():
    assert cjk_font_face("plain English only", "en") == ""
    face = cjk_font_face("<h3>&#34920;1 复购率</h3>", "en")
    assert face.startswith("@font-face") and "data:font/otf;base64," in face
    assert len(face) < 60_000, "a handful of glyphs stays small"


def test_embedded_face_names_only_its_characters_and_comes_first():
    import re

    from crmnb.present.fonts import CJK_FAMILY, FONT_STACK
    from crmnb.present.report import CSS

    text = "<h3>执行摘要</h3><p>“初步沟通” — 39.4% → ×2 · Sales</p>"
    ranges = re.search(r"unicode-range:([^;}]+)", cjk_font_face(text, "zh")).group(1).split(",")
    assert "U+6267" in ranges  # 执
    assert {"U+201C-201D", "U+2014", "U+2192"} <= set(ranges), "a Chinese sentence is drawn in one font"
    en = re.search(r"unicode-range:([^;}]+)", cjk_font_face(text, "en")).group(1).split(",")
    assert "U+6267" in en and "U+2192" not in en, "an English report keeps the reader's fonts for →"
    face = cjk_font_face(text, "zh")
    assert not any(int(r[2:].split("-")[0], 16) < 0x80 for r in ranges), "Latin text keeps the reader's fonts"
    assert "font-weight" not in face, "one face serves every weight; bold is emboldened by the browser"
    assert FONT_STACK.startswith(f'"{CJK_FAMILY}"')
    stacks = re.findall(r"font-family:([^;}]+)", CSS)
    assert stacks and all(s.startswith(f'"{CJK_FAMILY}"') for s in stacks), stacks


# ------------------------------------------------------------------ the report's template and the outputs
ROOT = Path(__file__).resolve().parents[1]
SUMMARY = {
    "goal": {"name": "Lead conversion rate", "unit": "rate", "baseline": 0.15, "target": 0.2, "deadline": "2026-06-30"},
    "before": 0.15,
    "now": 0.18,
    "verdict": "on_track",
    "headline": "within the margin of error: 18.0% vs target 20.0%",
    "verdict_text": "Within the margin of error: 18.0%, 2.0 pp below the 20.0% target <i>ok</i>.",
    "interval": [0.16, 0.205],
    "findings": ["Reps answer <b>late</b> & 'often' never", "two", "three", "a fourth, left out"],
    "actions": [{"measure": "Call within 4 h <now>", "owner": "Sales 1 lead", "deadline": "2026-03-31"}],
}


def test_template_message_keys_are_in_the_catalogue():
    from crmnb.present.report import VERDICT_CLASS
    from crmnb.present.templates import TEMPLATE_DIR
    from crmnb.present.words import has

    used = set()
    for path in TEMPLATE_DIR.glob("*.j2"):
        used |= set(re.findall(r"\bt\(\s*[\"']([a-z_]+\.[\w.]+)[\"']", path.read_text(encoding="utf-8")))
    used |= {f"brief.verdict.{verdict}" for verdict in VERDICT_CLASS}  # the verdict's words, looked up by its value
    assert len(used) > 25
    assert not sorted(k for k in used if not has(k)), "message keys used in the templates but not in the catalogue"


def test_report_page_escapes_case_text_and_keeps_notebook_html():
    from datetime import datetime

    from crmnb.params.files import load_case
    from crmnb.present.report import report_html

    case = load_case(ROOT / "parameters" / "lead_conversion_uplift.yaml").model_copy(
        update={"title": "Uplift <script>alert(1)</script>", "notes": "Ask <i>Wang</i> & co", "language": "zh"}
    )
    steps = [{"number": 1, "title": "目标", "html": Markup("<p class='x'>kept <b>as</b> markup</p>")}]
    page = report_html(case, SUMMARY, steps, datetime(2026, 1, 2, 3, 4))
    assert "<script>" not in page and "<title>Uplift &lt;script&gt;alert(1)&lt;/script&gt;</title>" in page
    assert "Ask &lt;i&gt;Wang&lt;/i&gt; &amp; co" in page
    assert "Reps answer &lt;b&gt;late&lt;/b&gt; &amp; &#39;often&#39; never" in page and "a fourth" not in page
    assert "Call within 4 h &lt;now&gt; — 负责人：Sales 1 lead，完成时间：2026-03-31" in page  # full-width punctuation
    assert "<p class='x'>kept <b>as</b> markup</p>" in page
    assert "<html lang='zh-CN'>" in page and "2026-01-02 03:04" in page
    assert (
        "<div class='tile verdict warn'><span class='label'>结论</span><span class='value'>在误差范围内</span>" in page
    )
    assert "<span class='sub'>95%置信区间 16.0–20.5%</span>" in page
    assert "2.0 pp below the 20.0% target &lt;i&gt;ok&lt;/i&gt;." in page
    assert page.count("@font-face") == 1 and "\n" not in page.split("<style>")[0], "the page's markup is one line"


def test_every_registered_output_is_built_in_order(tmp_path, monkeypatch):
    from crmnb.present import outputs

    built = []

    def fake(name):
        def build(case, notebooks, ws):
            built.append((name, notebooks))
            return tmp_path / name

        return build

    fakes = {n: dataclasses.replace(o, build=fake(n)) for n, o in outputs.OUTPUTS.items()}
    fakes["report.pdf"] = outputs.Output("report.pdf", "pdf", fake("report.pdf"), "print", "run.output.report", "x/y")
    monkeypatch.setattr(outputs, "OUTPUTS", fakes)
    got = outputs.build_outputs(None, iter([tmp_path / "01_x.ipynb"]), None)
    assert list(got) == ["report.html", "tables.xlsx", "report.pdf"]
    assert built == [(n, [tmp_path / "01_x.ipynb"]) for n in got]
    assert outputs.by_key("pdf").name == "report.pdf" and outputs.media_type(tmp_path / "report.pdf") == "x/y"
    with pytest.raises(KeyError, match="no output 'nope'"):
        outputs.by_key("nope")


# ------------------------------------------------------------------ charts follow the report language
ALLOWED_LATIN = {"RFM", "CRM", "LTV", "CAC", "ROI", "WAPE", "CSAT", "NPS"}


def _latin_words(text: str) -> set[str]:
    import re

    return set(re.findall(r"[A-Za-z]+", text)) - ALLOWED_LATIN


def _charts(lang: str):
    """Yield one chart of each kind, worded in ``lang`` as the notebooks word them."""
    import numpy as np

    from crmnb.analysis import forecast
    from crmnb.present import charts as present_charts
    from crmnb.present.words import stage_labels, translator

    tr = translator(lang)
    months = pd.date_range("2025-07-01", periods=6, freq="MS")
    yield present_charts.trend(
        pd.DataFrame(
            {
                "month": list(months) * 2,
                "value": np.linspace(0.1, 0.3, 12),
                "department": ["客户服务部"] * 6 + ["销售一部"] * 6,
            }
        ),
        "month",
        "value",
        "department",
        title=tr("chart.trend.title", metric="复购率"),
        ylabel="复购率 (%)",
        percent=True,
        marker=months[3],
        marker_label=tr("chart.trend.intervention"),
        target=0.35,
        target_label=tr("chart.trend.target", value="35.0%"),
        lang=lang,
    )
    yield present_charts.bars(
        pd.DataFrame(
            {
                "owner_rep": ["彭建华", "徐玉兰"] * 2,
                "value": [40.0, 30, 35, 28],
                "window": ["before"] * 2 + ["after"] * 2,
            }
        ),
        x="owner_rep",
        y="value",
        hue="window",
        horizontal=True,
        title=tr("chart.rep_response.title"),
        ylabel=tr("chart.rep_response.ylabel"),
        lang=lang,
    )
    yield present_charts.bars(
        pd.DataFrame({"bucket": ["< 4 h", "4–12 h", "1–2 days", "> 3 days"], "conversion_rate": [0.4, 0.3, 0.1, 0.05]}),
        x="bucket",
        y="conversion_rate",
        hue=None,
        percent=True,
        title=tr("chart.response.title"),
        ylabel=tr("chart.response.ylabel"),
        lang=lang,
    )
    yield present_charts.funnel_chart(
        pd.DataFrame(
            {
                "stage": ["lead", "first_contact", "won"],
                "entered": [100, 60, 20],
                "conversion_rate": [0.6, 1 / 3, np.nan],
            }
        ),
        stage_labels(lang),
        title=tr("chart.funnel.title", start="2025-10-01", end="2025-12-31"),
        xlabel=tr("chart.funnel.xlabel"),
        lang=lang,
    )
    yield present_charts.heatmap(
        pd.DataFrame([[1.0, 0.4], [1.0, np.nan]], index=["search", "all channels"], columns=["lead", "won"]),
        title=tr("chart.channel_stage.title"),
        labels=stage_labels(lang),
        lang=lang,
    )
    weeks = pd.date_range("2025-01-06", periods=40, freq="7D")
    weekly = pd.Series(np.linspace(3e5, 9e5, 40) + np.tile([0, 5e4], 20), index=weeks)
    yield present_charts.forecast_chart(weekly, forecast.rolling_forecast(weekly, horizon=8), accuracy=0.12, lang=lang)


def test_every_chart_word_follows_the_report_language():
    """Titles, axis labels, ticks, legends and alt text of every chart kind are Chinese in a zh report."""
    charts = list(_charts("zh"))
    assert len(charts) == 6
    for chart in charts:
        assert any(w == "中" or "\u4e00" <= w <= "\u9fff" for w in chart.alt), chart.alt
        assert not _latin_words(chart.alt), f"English in the alt text: {_latin_words(chart.alt)}: {chart.alt}"
        drawn = " ".join(chart.texts)
        assert chart.title in chart.texts
        assert not _latin_words(drawn), f"English drawn in '{chart.title}': {_latin_words(drawn)}"


def test_a_chart_is_worded_in_the_language_it_is_given():
    """The same call in two languages: each chart keeps its own, whatever was drawn before it."""
    zh, en, zh_again = (list(_charts(lang)) for lang in ("zh", "en", "zh"))
    assert [c.alt for c in zh] == [c.alt for c in zh_again]
    assert en[-1].title == "Weekly won revenue: actuals and forecast"
    assert en[-1].alt.startswith("Weekly won revenue: actuals and forecast. Line chart of weekly won revenue in CNY")
    assert "Funnel stage" in en[4].texts and "Share of leads" in en[4].texts
    assert en[4].alt.endswith("all channels: lead 100%, won n/a.")
    for chart in en:
        assert not any(w in chart.alt for w in ("。", "预测", "漏斗", "线索")), chart.alt


def test_font_subsets_are_kept_between_reports(tmp_path, monkeypatch):
    """A re-run with the same characters takes the embedded font from the cache, without loading the font."""
    from crmnb.present import fonts as present_fonts

    monkeypatch.setenv("CRMNB_CACHE_DIR", str(tmp_path))
    first = present_fonts.cjk_font_face("<p>线索转化率</p>", "zh")
    assert first.startswith("@font-face") and len(list((tmp_path / "font-subsets").glob("*.css"))) == 1

    def no_font(*_a, **_k):
        raise AssertionError("the font was loaded again")

    monkeypatch.setattr(present_fonts, "_font_face", no_font)
    assert present_fonts.cjk_font_face("<p>线索转化率</p>", "zh") == first
    with pytest.raises(AssertionError, match="loaded again"):  # other characters: a new subset
        present_fonts.cjk_font_face("<p>客户流失</p>", "zh")
