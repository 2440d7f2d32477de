"""Churn features counted in the engine: the follow-up tasks per customer at a cutoff, by DuckDB over a hand-off.

The activities are the largest table (six million rows at 100 times the demo): the two follow-up
features count, per customer, tasks done in the 90 days before a cutoff and tasks due in them but
still open at it. DuckDB counts them over the hand-off's file at each cutoff, so no step holds the
activities in pandas; the counts are whole numbers, the same as :func:`crmnb.analysis.churn.build_features`
counts them from a frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crmnb.analysis.events import codes

FOLLOWUP_COLUMNS = ("customer_id", "due_at", "completed_at")
"""The columns of the activities the follow-up features read."""

FOLLOWUP_SQL = """
SELECT customer_id,
       count(*) FILTER (WHERE epoch_ns(completed_at) >= $since AND epoch_ns(completed_at) < $cutoff) AS done,
       count(*) FILTER (
           WHERE epoch_ns(due_at) >= $since AND epoch_ns(due_at) < $cutoff
             AND (completed_at IS NULL OR epoch_ns(completed_at) >= $cutoff)
       ) AS overdue
FROM read_parquet($path)
WHERE customer_id IS NOT NULL
  AND ((completed_at >= make_timestamp_ns($since) AND completed_at < make_timestamp_ns($cutoff))
       OR (due_at >= make_timestamp_ns($since) AND due_at < make_timestamp_ns($cutoff)))
GROUP BY customer_id
"""
"""Per customer: tasks completed in [since, cutoff), and tasks due in it not completed before the cutoff. Only the
tasks done or due in the window are grouped (a customer with none counts nothing either way): the filter, on the
file's own timestamps, is applied while reading, so the six million tasks' ids at 100x are not all hashed."""


@dataclass(frozen=True)
class FollowupFile:
    """The activities' hand-off file, whose follow-up features DuckDB counts at each cutoff."""

    path: Path

    def followup_features(self, idx: pd.Index, cutoff: pd.Timestamp, d: dict[int, int]) -> dict[str, np.ndarray]:
        """Return, for the customers of ``idx``, follow-ups done in the 90 days before ``cutoff`` and those overdue."""
        from crmnb.frames import connect

        con = connect()
        try:
            params = {"path": str(self.path), "since": int(d[90]), "cutoff": int(cutoff.value)}
            got = con.sql(FOLLOWUP_SQL, params=params).to_arrow_table()
        finally:
            con.close()
        code = codes(got["customer_id"].to_pandas(), idx)
        hit = code >= 0
        out = {}
        for name, column in (("followups_90", "done"), ("overdue_followups_90", "overdue")):
            counts = np.zeros(len(idx), dtype=float)
            counts[code[hit]] = got[column].to_numpy()[hit]
            out[name] = counts
        return out


def follow_ups(tables: Mapping[str, pd.DataFrame]) -> Any:
    """Return what the churn features read of a step's activities: their hand-off file while the step has not
    read them (counted by DuckDB), else the columns they need."""
    unread = getattr(tables, "unread_file", None)
    path = unread("activities") if unread is not None else None
    if path is not None and tasks_typed(path):
        return FollowupFile(Path(path))
    columns = getattr(tables, "columns", None)
    if columns is not None and not isinstance(tables, dict):
        return columns("activities", FOLLOWUP_COLUMNS)
    return tables["activities"][list(FOLLOWUP_COLUMNS)]


def tasks_typed(path: Path) -> bool:
    """Return True when the file's task times are timestamps in nanoseconds and its customer ids text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {f.name: f.type for f in pq.read_schema(path)}
    times = all(types.get(c) == pa.timestamp("ns") for c in ("due_at", "completed_at"))
    ids = types.get("customer_id")
    return times and ids is not None and (pa.types.is_string(ids) or pa.types.is_large_string(ids))
