"""Step 2's data inventory: rows, columns, date range and coverage of every table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crmnb.intake.parse import Intake, table_profile
from crmnb.intake.sources import redact
from crmnb.params.model import CaseParams


def inventory(intakes: dict[str, Intake], case: CaseParams) -> pd.DataFrame:
    """Return the data inventory: per table its file, rows, columns, date range, coverage and unreadable values."""
    rows = []
    for name, got in intakes.items():
        p = got.profile or table_profile(name, got.table)  # a table written and dropped keeps its profile
        rows.append(
            {
                "table": name,
                # where it was read from: a file name, or a database and table (never a full path or password)
                "file": Path(got.source).name
                if got.source and "://" not in got.source
                else (redact(got.source) or case.data_path(name).name),
                "rows": p["rows"],
                "columns": p["columns"],
                "from": p["from"],
                "to": p["to"],
                "coverage": p["coverage"],
                "unreadable_values": got.unreadable,
            }
        )
    return pd.DataFrame(rows)
