"""People's words in what a reader sees: no code names in either demo report, no English in the Chinese one.

The reports are read the way a reader sees them: tags, scripts and styles stripped, the alt text of
images kept. A failure names each offending token with the line it stands in.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from crmnb.present.display import Display
from crmnb.present.report import one_language, render_notebook

ROOT = Path(__file__).resolve().parents[1]

CODE_STYLE = re.compile(r"\b[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+\b|\b(?:True|False|NaN|nan|None|NaT)\b")
"""A code-style identifier: snake_case, a Python or pandas constant."""

LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")

ALLOWED_LATIN = {
    *[
        "CRM",
        "RFM",
        "CLV",
        "CAC",
        "LTV",
        "ROI",
        "NPS",
        "CSAT",
        "KPI",
        "AUC",
        "ROC",
        "PR",
        "CNY",
        "BG",
        "NBD",
        "SMART",
        "WAPE",
        "MAPE",
        "ISO",
        "Excel",
        "UTM",
    ],
    *["Gamma", "Holm", "Brier", "SaaS"],  # the names of two models, a correction, a score; a brand in the data
    *["Fisher", "Welch", "Wilson", "Newcombe"],  # the names of tests and intervals, as statisticians write them
    *["pp", "h", "d", "x", "YYYY", "hh", "mm"],  # units, date-format notation
}
"""Latin words a Chinese report may hold: acronyms of the method, model names, units (single letters
are the formulas' symbols and are always allowed)."""

NOT_WORDS = re.compile(
    r"[\w./<>-]+\.(?:csv|xlsx|xls|parquet|json|yaml|html|pdf)\b"  # file names and paths
    r"|[\w.-]+/(?=\s|$)"  # folders
    r"|\b[A-Z]{1,4}\d{3,}\b"  # record ids: C000123, OPP000248, CMP012
    r"|\S*\*\S*"  # masked values
)


class _Visible(HTMLParser):
    """The text a reader sees, one line per block, with the alt text of images."""

    BLOCKS = {"p", "div", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "br", "caption", "summary"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip = 0

    def flush(self) -> None:
        line = re.sub(r"\s+", " ", "".join(self.current)).strip()
        if line:
            self.lines.append(line)
        self.current = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self.skip += 1
        if tag in self.BLOCKS or tag in ("figure", "table"):
            self.flush()
        alt = dict(attrs).get("alt") if tag == "img" else None
        if alt and not self.skip:
            self.lines.append(alt)

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template"):
            self.skip = max(0, self.skip - 1)
        if tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            self.current.append(data)


def visible_lines(page: str) -> list[str]:
    """Return the lines of text a reader sees in an HTML page, alt texts included."""
    p = _Visible()
    p.feed(page)
    p.close()
    p.flush()
    return p.lines


def offending_tokens(lines: list[str], chinese: bool, title: str = "") -> list[str]:
    """Return 'token  ← line' for each code-style identifier, and in a Chinese text each Latin word not allowed."""
    allowed = ALLOWED_LATIN | set(LATIN_WORD.findall(title))
    found = []
    for line in lines:
        text = NOT_WORDS.sub(" ", line)
        bad = CODE_STYLE.findall(text)
        if chinese:
            words = LATIN_WORD.findall(CODE_STYLE.sub(" ", text))
            bad += [w for w in words if any(len(p) > 1 and p not in allowed for p in w.split("-"))]
        found += [f"{token!r}  ← {line[:160]}" for token in dict.fromkeys(bad)]
    return found


def test_the_extractor_sees_alt_text_and_skips_styles_and_scripts():
    page = (
        "<style>.a_b{}</style><script>var x_y = 1;</script><p>Shown <b>text</b></p>"
        "<figure><img alt='chart of owner_rep' src='x.png'></figure>"
    )
    assert visible_lines(page) == ["Shown text", "chart of owner_rep"]
    assert [x.split()[0] for x in offending_tokens(visible_lines(page), chinese=False)] == ["'owner_rep'"]


def test_the_checks_name_code_names_and_english_in_chinese():
    lines = ["渠道 email", "停留预警 False", "文件 stage_history.csv 与客户 C000123、林*", "CRM 与 RFM", "p = 0.3"]
    bad = offending_tokens(lines, chinese=True)
    assert bad == ["'email'  ← 渠道 email", "'False'  ← 停留预警 False"]
    assert offending_tokens(["Repeat purchase optimisation"], chinese=True, title="Repeat purchase optimisation") == []


@pytest.fixture(scope="module")
def reports(demo_reports) -> dict[str, tuple[list[str], str]]:
    """Both demo reports' visible lines and case titles, by language (each case run once for the session)."""
    from crmnb.params import load_case

    out = {}
    for lang, path in demo_reports.items():
        case = load_case(path.parents[2] / "parameters" / f"{path.parent.name}.yaml")
        out[lang] = (visible_lines(path.read_text(encoding="utf-8")), case.title)
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_demo_report_has_no_code_names_and_the_chinese_one_no_english(reports, lang):
    lines, title = reports[lang]
    assert len(lines) > 100, "the report's text was not found"
    bad = offending_tokens(lines, chinese=lang == "zh", title=title)
    assert not bad, f"{len(bad)} code names or English words in the {lang} report:\n" + "\n".join(bad[:60])


@pytest.mark.e2e
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_demo_workbook_has_no_code_names_and_the_chinese_one_no_english(demo_reports, lang):
    """Every text cell of tables.xlsx, headers and values, sheet by sheet, as the report is checked."""
    from openpyxl import load_workbook

    from crmnb.params import load_case

    path = demo_reports[lang].parent / "tables.xlsx"
    title = load_case(path.parents[2] / "parameters" / f"{path.parent.name}.yaml").title
    bad = []
    for sheet in load_workbook(path, read_only=True).worksheets:
        cells = [v for row in sheet.iter_rows(values_only=True) for v in row if isinstance(v, str)]
        bad += [f"{sheet.title}: {b}" for b in offending_tokens(cells, chinese=lang == "zh", title=title)]
    assert not bad, f"{len(bad)} code names or English words in the {lang} workbook:\n" + "\n".join(bad[:60])


@pytest.mark.e2e
def test_english_report_names_the_department_in_english(reports):
    lines, _ = reports["en"]
    assert not [x for x in lines if "销售一部" in x], "the English report shows the department's Chinese name"


def test_tables_show_labels_separators_fixed_decimals_and_yes_no():
    df = pd.DataFrame(
        {
            "owner_rep": ["A", "B"],
            "department": ["销售一部", "销售一部"],
            "rows_in": [15200, 6607],
            "revenue": [778685.78, 106.5],
            "response_hours": [2.0, 23.456],
            "conversion_rate": [0.1519, 0.2],
            "n_lead_response_hours": [1200, 3],
            "dwell_alert": [False, True],
            "tier": ["high_value", "low_value"],
            "top_loss_reasons": ["never contacted (55), unclear_needs (5)", ""],
        }
    )
    en = Display("en").table(df).formatted()
    assert list(en.columns) == [
        "Rep",
        "Department",
        "Rows in",
        "Revenue (CNY)",
        "First response (hours)",
        "Conversion",
        "Count (Lead response time (hours))",
        "Over benchmark",
        "Value tier",
        "Main loss reasons",
    ]
    assert en.iloc[0].tolist() == [
        "A",
        "Sales 1",
        "15,200",
        "778,686",
        "2.0",
        "15.2%",
        "1,200",
        "No",
        "high value",
        "never contacted (55), unclear needs (5)",
    ]
    zh = Display("zh").table(df).formatted()
    assert zh.iloc[1].tolist()[1:] == ["销售一部", "6,607", "107", "23.5", "20.0%", "3", "是", "低价值客户", ""]
    assert zh.iloc[0]["主要丢单原因"] == "从未联系 (55)、需求不明确 (5)"


def test_changes_carry_their_sign_and_big_rates_their_separators():
    df = pd.DataFrame({"change_rate": [0.325, -0.5], "roi": [20.19, 0.5], "duplicate_row": [1301, 7]})
    got = Display("en").table(df, percent=["change_rate", "roi"]).formatted()
    assert got.to_dict("list") == {
        "Change": ["+32.5%", "-50.0%"],
        "ROI": ["2,019.0%", "50.0%"],
        "Row of the duplicate": ["1301", "7"],
    }


def test_an_empty_table_is_one_sentence_in_the_report_language():
    empty = pd.DataFrame(columns=["opportunity_id", "difference"])
    page = Display("zh").table(empty, caption="核对")._repr_html_()
    assert "<table" not in page and "本案例本周期没有需要列出的记录" in page and "核对" in page
    assert "Nothing to list" in Display("en").table(empty)._repr_html_()


def test_cleaning_log_shown_in_the_case_language_and_kept_in_english():
    from crmnb.intake.ledger import text

    line = text("date_format.rule")
    log = pd.DataFrame({"rule": [line], "table": ["activities"], "column": ["due_at"], "balanced": [True]})
    zh = Display("zh").table(log).formatted().iloc[0].tolist()
    assert str(line) == "date format" and zh[0] != "date format"
    assert zh[1:] == ["跟进记录", "截止时间", "是"]


def test_one_cell_per_heading_shows_one_language_in_the_report():
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 1 · Goal | 1 · 目标\n\nThe case.\n\n案例。", metadata={"tags": ["lang-both"]}),
        nbformat.v4.new_markdown_cell("### Table 1 · Case card | 表1：案例信息", metadata={"tags": ["lang-both"]}),
        nbformat.v4.new_markdown_cell("### Old English", metadata={"tags": ["lang-en"]}),
        nbformat.v4.new_markdown_cell("### 旧中文", metadata={"tags": ["lang-zh"]}),
    ]
    zh, en = (html.unescape(render_notebook(nb, lang)) for lang in ("zh", "en"))
    assert "案例。" in zh and "表1：案例信息" in zh and "旧中文" in zh
    assert not re.search(r"Case card|The case|Old English|Goal", zh)
    assert "Table 1 · Case card" in en and "The case." in en and "Old English" in en and "案例" not in en
    assert one_language("## A | 甲", "en") == "## A"


def test_the_notebooks_show_each_heading_once():
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        tags = [set(c.metadata.get("tags", [])) for c in cells if c.cell_type == "markdown"]
        assert not [t for t in tags if t & {"lang-en", "lang-zh"}], f"{path.name}: a heading in two cells"
        heads = [
            c.source.splitlines()[0]
            for c in cells
            if c.cell_type == "markdown" and "lang-both" in c.metadata.get("tags", [])
        ]
        assert heads and all(" | " in h for h in heads), f"{path.name}: a heading without both languages"


def test_a_bold_chart_title_draws_without_a_font_warning():
    """A fresh process: the font is registered as the charts first use it, as in a notebook's kernel."""
    code = (
        "import pandas as pd\n"
        "from crmnb.present import charts\n"
        "df = pd.DataFrame({'x': ['a', 'b'], 'y': [1, 2]})\n"
        "for lang in ('en', 'zh'):\n"
        "    charts.bars(df, x='x', y='y', hue=None, title='客户 Customers', ylabel='数', lang=lang)\n"
        "print('drawn')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "drawn" in done.stdout, done.stderr
    assert "findfont" not in done.stderr, done.stderr
