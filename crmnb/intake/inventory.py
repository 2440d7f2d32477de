"""Step 2's data inventory: rows, columns, date range and coverage of every table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crmnb.intake.parse import Intake
from crmnb.intake.schema import TABLES
from crmnb.intake.sources import redact
from crmnb.params.model import CaseParams


def inventory(intakes: dict[str, Intake], case: CaseParams) -> pd.DataFrame:
    """Return the data inventory: per table its file, rows, columns, date range, coverage and unreadable values."""
    rows = []
    for name, got in intakes.items():
        t = got.table
        spec = TABLES[name]
        dcol = spec.dates[0] if spec.dates else None
        cols = list(spec.columns)
        filled = t[cols].notna().to_numpy().mean() if len(t) else float("nan")
        rows.append(
            {
                "table": name,
                # where it was read from: a file name, or a database and table (never a full path or password)
                "file": Path(got.source).name
                if got.source and "://" not in got.source
                else (redact(got.source) or case.data_path(name).name),
                "rows": len(t),
                "columns": len(cols),
                "from": t[dcol].min() if dcol and len(t) else pd.NaT,
                "to": t[dcol].max() if dcol and len(t) else pd.NaT,
                "coverage": filled,
                "unreadable_values": len(got.issues),
            }
        )
    return pd.DataFrame(rows)
