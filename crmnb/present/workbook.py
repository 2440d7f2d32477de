"""The Excel workbook of the method's tables: readers' headers and values, number formats, print set-up.

Every sheet has its header in the case's language, categories in words (``high_value`` → 高价值客户),
a number format per kind of value (rates as 0.0 %, money with separators, hours with one decimal,
p-values as 0.000 or <0.001), a frozen header row, an autofilter on long tables, and prints on A4
landscape, fitted to the page's width, with the header row repeated on every page. Text is never
a formula.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from crmnb.handoffs import Handoff, Workspace, sheets
from crmnb.params.model import CaseParams
from crmnb.present.display import cell_words, shown_columns
from crmnb.present.sheets import TEMPLATES
from crmnb.present.words import column, has, t

# --------------------------------------------------------------------------- Excel
HEADER_FILL = PatternFill("solid", fgColor="2F6F9F")
HEADER_FONT = Font(bold=True, color="FFFFFF")

PERCENT, MONEY, ONE_DECIMAL, COUNT, NUMBER = "0.0%", "#,##0", "0.0", "#,##0", "#,##0.00"
P_VALUE = '[<0.001]"<0.001";0.000'
"""A p-value as 0.000, and below 0.001 as <0.001 (the value itself stays in the cell)."""
SIGNED = "+0.0;-0.0;0.0"

UNIT_FORMATS = {"rate": PERCENT, "hours": ONE_DECIMAL, "days": ONE_DECIMAL, "CNY": MONEY, "points": SIGNED}
"""The number format of a value by the unit its row names (Table 2, the headline metrics)."""

UNIT_COLUMNS = re.compile(
    r"^(before|after|difference|value|target|baseline|ci_low|ci_high|(pretrend_)?did(_ci_low|_ci_high)?)$"
)
"""The columns whose format follows the row's ``unit`` in a table that has one."""

LONG_TABLE_ROWS = 20
"""A sheet with more rows than this gets an autofilter."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet may take as the start of a formula, once a cell is edited or saved as CSV (OWASP)."""


def safe_text(v: str) -> str:
    """Return text a spreadsheet never reads as a formula: with a leading apostrophe where it could be one.

    >>> [safe_text(v) for v in ("=1+1", "-5%", "@SUM(A1)", "华东")]
    ["'=1+1", "'-5%", "'@SUM(A1)", '华东']
    """
    return "'" + v if v.startswith(FORMULA_STARTS) else v


def _cell_value(v):
    if isinstance(v, str):
        return safe_text(v)
    if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if hasattr(v, "item"):
        return v.item()
    return v


def column_format(name: str, values: pd.Series, percent: Iterable[str] = (), money: Iterable[str] = ()) -> str | None:
    """Return the number format of a column from its name and values: percent, money, hours, p-value, count.

    >>> s = pd.Series([0.5]); column_format("p_holm", s), column_format("lead_conversion_rate", s)
    ('[<0.001]"<0.001";0.000', '0.0%')
    >>> column_format("median_response_hours", s), column_format("spend_12m", s), column_format("n", pd.Series([3]))
    ('0.0', '#,##0', '#,##0')
    """
    if name in set(percent) or re.search(r"(^|_)(rate|share|coverage|probability|overrun|wape|bias)$", name):
        return PERCENT
    if name == "p_value" or name.startswith("p_"):
        return P_VALUE
    if name in set(money) or re.search(r"(spend|revenue|amount|clv|cac|ltv|cost|cpa|price|order_value)", name):
        return MONEY
    if re.search(r"(hours|satisfaction|csat)$", name) or (
        name.endswith("_days") and pd.api.types.is_float_dtype(values)
    ):
        return ONE_DECIMAL
    if pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_integer_dtype(values):
        return COUNT
    if pd.api.types.is_float_dtype(values):
        return NUMBER
    return None


def _date_format(values: pd.Series) -> str:
    """Return a date's format: with the time of day unless every value is at midnight."""
    stamps = pd.to_datetime(values, errors="coerce").dropna()
    return "yyyy-mm-dd" if stamps.empty or (stamps == stamps.dt.normalize()).all() else "yyyy-mm-dd hh:mm"


def _shown(v: object, lang: str, col: str = "") -> object:
    """Return a value as readers see it, as the report shows it: a category or a list of them in words, a
    metric's or a test's name, a cleaning-log line in the case's language, yes/no for a flag."""
    if isinstance(v, bool):
        return t("sheet.yes" if v else "sheet.no", lang)
    if not isinstance(v, str):
        return v
    if col == "column":  # the cleaning log names the column a rule changed: by its header
        return column(v, lang)
    for key in (f"metric.{v}.name", f"words.test.{v}"):
        if has(key):
            return t(key, lang)
    return cell_words(v, lang)


def header(name: str, lang: str, template: bool = False, **values: object) -> str:
    """Return a column's header in ``lang``: on a template sheet its own word (``values`` filled in), else the
    report's column label."""
    key = f"sheet.column.{name}"
    return t(key, lang, **values) if template and has(key) else column(name, lang)


def _formats(df: pd.DataFrame, percent: Iterable[str], money: Iterable[str]) -> list[list[str | None]]:
    """Return each column's number format per row: a column's own, or its row's unit's in a table with units."""
    out = []
    units = df["unit"].astype(str).tolist() if "unit" in df.columns else None
    for col in df.columns:
        own = column_format(str(col), df[col], percent, money)
        if pd.api.types.is_datetime64_any_dtype(df[col]):
            own = _date_format(df[col])
        if units is not None and UNIT_COLUMNS.match(str(col)):
            out.append([UNIT_FORMATS.get(u, NUMBER) for u in units])
        else:
            out.append([own] * len(df))
    return out


def _width(col: str, values: list) -> float:
    """Return a column's width in characters: its longest header word or value, wider for Chinese."""
    texts = [str(v) for v in values[:200] if v is not None]
    longest = max([len(w) for w in re.split(r"\s+", col)] + [min(len(s), 40) for s in texts] + [6])
    cjk = any(re.search(r"[\u4e00-\u9fff]", s) for s in [col, *texts[:50]])
    return min(max(longest * (1.8 if cjk else 1.1) + 2, 8), 60)


def print_setup(ws, rows: int, columns: int, one_page: bool, lang: str) -> None:
    """Set a sheet to print on A4 landscape, fitted to the width (and height if ``one_page``), header repeated."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 1 if one_page else 0  # 0: as many pages down as the rows need
    ws.print_title_rows = "1:1"
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.oddFooter.center.text = t("sheet.footer", lang)
    if rows > LONG_TABLE_ROWS:
        ws.auto_filter.ref = f"A1:{get_column_letter(max(columns, 1))}{rows + 1}"
    ws.freeze_panes = "A2"


MAX_SHEET_ROWS = 50_000
"""The most rows a sheet holds (a per-customer list of a large company: value tiers, churn warning); the rest
stay in the hand-off the sheet is built from, which the sheet's last row names. Excel itself stops at 1,048,576."""


def _shown_column(values: pd.Series, lang: str, col: str) -> list:
    """Return a column's cells as :func:`_shown` and :func:`_cell_value` give them, each distinct value worded once."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return [None if pd.isna(v) else v.to_pydatetime() for v in values]
    if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):  # (a flag is neither)
        return [None if pd.isna(v) else v for v in values.astype(object)]
    seen: dict = {}
    out = []
    for v in values.tolist():
        try:
            got = seen.get(v, seen)
            if got is seen:
                got = seen[v] = _cell_value(_shown(v, lang, col))
        except TypeError:  # an unhashable value: worded on its own
            got = _cell_value(_shown(v, lang, col))
        out.append(got)
    return out


def _cells(ws, values: list, formats: list) -> Iterator:
    """Yield a column's cells for ``ws.append``, row by row: text kept text, numbers and dates with their formats.

    Plain text and unformatted numbers go as values. A formatted value goes in one cell per format, reused
    row after row when the workbook is write-only (it writes each appended row before the next is asked for:
    a million cells of a large case's sheets are then not a million cell objects); a workbook held in memory
    keeps each row's cells, so it gets a cell of its own for each.
    """
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ERROR_CODES

    styled: dict[str, WriteOnlyCell] = {}
    reuse = bool(getattr(ws.parent, "write_only", False))
    for v, fmt in zip(values, formats):
        if v is None or isinstance(v, bool):
            yield v
        elif isinstance(v, str):
            if v in ERROR_CODES:  # '#N/A' from the CRM stays text, not an error value
                cell = WriteOnlyCell(ws, value=v)
                cell.data_type = "s"
                yield cell
            else:
                yield v
        elif hasattr(v, "year") or (fmt and isinstance(v, (int, float))):
            if hasattr(v, "year"):
                fmt = fmt if fmt and "yy" in fmt else "yyyy-mm-dd"
            cell = styled.get(fmt) if reuse else None
            if cell is None:
                cell = styled[fmt] = WriteOnlyCell(ws)
                cell.number_format = fmt
            cell.value = v
            yield cell
        else:
            yield v


def write_sheet(
    wb: Workbook,
    name: str,
    df: pd.DataFrame,
    percent: Iterable[str] = (),
    money: Iterable[str] = (),
    *,
    lang: str = "en",
    one_page: bool = False,
    template: dict | None = None,
    source: str = "",
) -> None:
    """Add a sheet: headers and categories in ``lang``, formats per kind of value, print set-up; text is never a formula.

    ``template`` (the values its headers name, such as the look-back's months) marks one of the method's templates.
    A table longer than :data:`MAX_SHEET_ROWS` shows its first rows and says where the rest are (``source``). Works
    in a write-only workbook (widths and frozen header set before the rows), as :func:`build_workbook` writes one.
    """
    from openpyxl.cell import WriteOnlyCell

    ws = wb.create_sheet(re.sub(r"[:\\/?*\[\]]", " ", name)[:31])
    if shown_columns(df) != list(df.columns):  # a metric's id beside its name is the code name of the name
        df = df.drop(columns="metric").rename(columns={"name": "metric"})  # headed as what it names
    total, df = len(df), df.iloc[:MAX_SHEET_ROWS]
    formats = _formats(df, percent, money)
    headers = [header(str(c), lang, template is not None, **(template or {})) for c in df.columns]
    columns = [_shown_column(df[c], lang, str(c)) for c in df.columns]
    for j, (head, values) in enumerate(zip(headers, columns), start=1):
        ws.column_dimensions[get_column_letter(j)].width = _width(head, values)
    print_setup(ws, len(df), len(df.columns), one_page, lang)
    top = []
    for h in headers:
        cell = WriteOnlyCell(ws, value=safe_text(h))
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        cell.alignment = Alignment(vertical="center", wrap_text=True)
        top.append(cell)
    ws.append(top)
    for row in zip(*[_cells(ws, values, fmts) for values, fmts in zip(columns, formats)]):
        ws.append(list(row))
    if df.empty:
        ws.append([t("sheet.empty", lang)])
    if total > len(df):
        ws.append([t("sheet.more_rows", lang, shown=f"{len(df):,}", total=f"{total:,}", source=source)])


def sheet_title(h: Handoff, lang: str) -> str:
    """Return a hand-off's sheet title in ``lang`` (the catalogue's ``sheet.<folder>.<name>``).

    Every sheet needs its words in both languages: a missing entry fails here (and in the tests),
    rather than an English title appearing in a Chinese workbook.
    """
    return t(f"sheet.{h.name.replace('/', '.')}", lang)


def sheet_frame(h: Handoff, case: CaseParams, ws: Workspace) -> pd.DataFrame:
    """Return the rows of a hand-off's sheet: a template's built from the hand-offs, else the hand-off's own."""
    if h.sheet.template:
        return TEMPLATES[h.sheet.template](ws, case)
    return ws.read(h.name)


def build_workbook(case: CaseParams, ws: Workspace) -> Path:
    """Write ``tables.xlsx``: a sheet per hand-off the catalogue gives one (crmnb.handoffs.HANDOFFS), in its order."""
    wb = Workbook(write_only=True)  # rows streamed to the file: a large case's sheets are never all held as cells
    for h in sheets():
        if ws.exists(h.name):
            df = sheet_frame(h, case, ws)
            title = sheet_title(h, case.language)
            template = {"months": case.thresholds.churn.lookback_months} if h.sheet.template else None
            write_sheet(
                wb,
                title,
                df,
                h.sheet.percent,
                h.sheet.money,
                lang=case.language,
                one_page=h.sheet.one_page,
                template=template,
                source=f"data/{h.name}.parquet",
            )
    out = ws.folder / "tables.xlsx"
    wb.save(out)
    return out
