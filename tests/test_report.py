"""The stakeholder report and workbook: escaping, no formulas from data, analyst-only cells, language cells."""

from __future__ import annotations

import nbformat
import pandas as pd
from openpyxl import Workbook, load_workbook

from crmnb.display import table, text
from crmnb.report import cjk_font_face, render_notebook, render_output, write_sheet

TRICKY = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "=HYPERLINK(\"http://x\",\"y\")",
          "+86 客户要求回电", "-1+1", "@SUM(A1)"]


def _display(obj) -> dict:
    return {"output_type": "display_data", "data": {"text/html": obj._repr_html_(), "text/plain": repr(obj)},
            "metadata": {}}


def test_crm_free_text_shows_as_text_not_markup():
    out = render_output(_display(table(pd.DataFrame({"note": TRICKY}))))
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
        assert cell.value == value and cell.data_type == "s", value
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
    cells[5].outputs = [nbformat.v4.new_output("stream", name="stderr", text="WARNING noise"),
                        nbformat.v4.new_output("display_data", data={"text/plain": "shown"})]
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
    assert cjk_font_face("plain English only") == ""
    face = cjk_font_face("<h3>&#34920;1 复购率</h3>")
    assert face.startswith("@font-face") and "data:font/otf;base64," in face
    assert len(face) < 60_000, "a handful of glyphs stays small"
