"""Read what the pipeline forecast needs from the cleaned hand-offs: one department's deals and only their
stage history, filtered in the engine, so that no table of every department is held in pandas."""

from __future__ import annotations

import pandas as pd

from crmnb.analysis.pipeline_state import OPP_COLUMNS, SH_COLUMNS


def opportunities(ws, department: str | None) -> pd.DataFrame:
    """Return the columns of the cleaned deals the forecast reads, of ``department`` only (all without one)."""
    where = {"department": [department]} if department is not None else None
    return ws.read("clean/opportunities", columns=OPP_COLUMNS, where=where)


def stage_history(ws, department: str | None) -> pd.DataFrame:
    """Return the stage entries of ``department``'s deals (every deal's without one), joined in the engine."""
    if department is None:
        return ws.read("clean/stage_history", columns=SH_COLUMNS)
    sql = (
        "SELECT s.opportunity_id, s.stage, s.entered_at FROM clean.stage_history s "
        "WHERE s.opportunity_id IN (SELECT opportunity_id FROM clean.opportunities WHERE department = ?)"
    )
    return ws.sql(sql, [department], needs=("clean/stage_history", "clean/opportunities"))
