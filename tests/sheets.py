"""Read a workbook sheet back under the hand-offs' column names, so tests can compare figures by name.

The workbook shows a reader's header (``Metric``, ``After``, 样本数…) for each hand-off column; this
turns each header back into the column it labels, by the message catalogue's ``column.*`` entries and
the fallback of :func:`crmnb.present.words.column` (underscores read as spaces).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crmnb.analysis.metrics import CATALOGUE
from crmnb.present.words import catalogue, column


def header_names(lang: str) -> dict[str, str]:
    """Return each column header the catalogue can show in ``lang``, mapped to its column's name."""
    names = [key.removeprefix("column.") for key in catalogue() if key.startswith("column.")]
    return {column(name, lang): name for name in names}


def read_sheet(book: Path | pd.ExcelFile, sheet: str, lang: str = "en", **options) -> pd.DataFrame:
    """Return ``sheet`` of the workbook with its headers turned back into the hand-off's column names."""
    frame = pd.read_excel(book, sheet_name=sheet, **options)
    known = header_names(lang)
    frame = frame.rename(columns=lambda h: known.get(str(h), str(h).replace(" ", "_")))
    ids = {m.name(lang): m.id for m in CATALOGUE.values()}
    if "metric" in frame and frame["metric"].isin(list(ids)).all():  # the sheet names each metric by its name
        frame["metric"] = frame["metric"].map(ids)  # and the tests look it up by the catalogue's id
    return frame
