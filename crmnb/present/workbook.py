"""The Excel workbook of the method's tables: styled headers, number formats, formula-safe text."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from crmnb.handoffs import Workspace, sheets
from crmnb.params.model import CaseParams

# --------------------------------------------------------------------------- Excel
HEADER_FILL = PatternFill("solid", fgColor="2F6F9F")
HEADER_FONT = Font(bold=True, color="FFFFFF")


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


def write_sheet(
    wb: Workbook, name: str, df: pd.DataFrame, percent: Iterable[str] = (), money: Iterable[str] = ()
) -> None:
    """Add a sheet with a styled, frozen header, fitted widths and number formats; text is never a formula."""
    ws = wb.create_sheet(name[:31])
    percent, money = set(percent), set(money)
    ws.append([safe_text(str(c)) for c in df.columns])
    for cell in ws[1]:
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for row in df.itertuples(index=False):
        ws.append([_cell_value(v) for v in row])
    for j, col in enumerate(df.columns, start=1):
        letter = get_column_letter(j)
        fmt = "0.0%" if col in percent else "#,##0" if col in money else None
        width = max([len(str(col))] + [len(str(v)) for v in df[col].head(200)]) + 2
        ws.column_dimensions[letter].width = min(
            max(width * (1.6 if df[col].astype(str).str.contains(r"[\u4e00-\u9fff]").any() else 1.0), 8), 60
        )
        for cell in ws[letter][1:]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # '=SUM(…)' from the CRM stays text
            elif fmt and isinstance(cell.value, (int, float)):
                cell.number_format = fmt
            elif hasattr(cell.value, "year"):
                cell.number_format = "yyyy-mm-dd"
    ws.freeze_panes = "A2"


def build_workbook(case: CaseParams, ws: Workspace) -> Path:
    """Write ``tables.xlsx``: a sheet per hand-off the catalogue gives one (crmnb.handoffs.HANDOFFS), in its order."""
    wb = Workbook()
    wb.remove(wb.active)
    for h in sheets():
        if ws.exists(h.name):
            write_sheet(wb, h.sheet.title, ws.read(h.name), h.sheet.percent, h.sheet.money)
    out = ws.folder / "tables.xlsx"
    wb.save(out)
    return out
