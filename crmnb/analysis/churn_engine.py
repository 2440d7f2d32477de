"""Churn features counted in the engine: the follow-up tasks and the visits per customer at a cutoff, by DuckDB
over a hand-off; and the rows of the other event tables the model reads, those of its customers only.

The activities and the visits are the largest tables (six million rows each at 100 times the demo): the
two follow-up features count, per customer, tasks done in the 90 days before a cutoff and tasks due in
them but still open at it; the visit features count visits in the 30 and 90 days before it and take the
last one. DuckDB counts them over the hand-off's file at each cutoff, so no step holds those tables in
pandas; counts and a latest time are the same in any order, so they are what
:func:`crmnb.analysis.churn.build_features` counts from a frame. The orders and tickets, whose spend and
CSAT are float sums kept in the file's order, are read as rows: only those of the model's customers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crmnb.analysis.churn import FEATURE_COLUMNS
from crmnb.analysis.events import NAT_NS, codes
from crmnb.analysis.metric_engine import unread_file
from crmnb.frames import rows_where

CUSTOMER_COLUMNS = ("customer_id", "created_at")
"""The columns of the customers the churn features read (the watch list reads the names of those it lists)."""

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
    return _counted_or_columns(tables, "activities", FOLLOWUP_COLUMNS, tasks_typed, FollowupFile)


def _counted_or_columns(tables: Mapping[str, pd.DataFrame], name: str, wanted, typed, counted) -> Any:
    """Return ``counted(path)`` for table ``name``'s hand-off file while it is unread and ``typed``, else the
    ``wanted`` columns of the table (from its file when the step can read some columns, else of its frame)."""
    path = unread_file(tables, name)
    if path is not None and typed(path):
        return counted(Path(path))
    columns = getattr(tables, "columns", None)
    if columns is not None and not isinstance(tables, dict):
        return columns(name, wanted)
    return tables[name][list(wanted)]


def _typed(path: Path, times: tuple[str, ...]) -> bool:
    """Return True when the file's ``times`` are timestamps in nanoseconds and its customer ids text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {f.name: f.type for f in pq.read_schema(path)}
    ids = types.get("customer_id")
    return (
        all(types.get(c) == pa.timestamp("ns") for c in times)
        and ids is not None
        and (pa.types.is_string(ids) or pa.types.is_large_string(ids))
    )


def tasks_typed(path: Path) -> bool:
    """Return True when the file's task times are timestamps in nanoseconds and its customer ids text."""
    return _typed(path, ("due_at", "completed_at"))


VISITS_SQL = """
SELECT customer_id,
       count(*) FILTER (WHERE epoch_ns(visited_at) >= $since_30) AS v30,
       count(*) FILTER (WHERE epoch_ns(visited_at) >= $since_90) AS v90,
       epoch_ns(max(visited_at)) AS last
FROM read_parquet($path)
WHERE visited_at < make_timestamp_ns($cutoff) AND customer_id IN (SELECT customer_id FROM wanted)
GROUP BY customer_id
"""
"""Per customer of ``wanted``: visits in the 30 and the 90 days before the cutoff, and the time of the last visit
before it. Only the wanted customers are grouped (the model's buyers, not the company's)."""


@dataclass(frozen=True)
class VisitFile:
    """The visits' hand-off file, whose visit counts DuckDB takes at each cutoff."""

    path: Path

    def visit_counts(
        self, idx: pd.Index, cutoff: pd.Timestamp, d: dict[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return, for the customers of ``idx``, visits in the 30 and in the 90 days before ``cutoff`` (floats,
        as :meth:`crmnb.analysis.events.Events.count` gives them) and the last visit's time in ns (NAT_NS: none)."""
        import pyarrow as pa

        from crmnb.analysis.metric_engine import run_sql

        wanted = pa.table({"customer_id": pa.array(idx.to_numpy(dtype=object), type=pa.string())})
        params = {"path": str(self.path), "since_30": int(d[30]), "since_90": int(d[90]), "cutoff": int(cutoff.value)}
        got = run_sql(VISITS_SQL, params, register={"wanted": wanted})
        code = codes(got["customer_id"].to_pandas(), idx)
        hit = code >= 0
        v30, v90 = np.zeros(len(idx), dtype=float), np.zeros(len(idx), dtype=float)
        last = np.full(len(idx), NAT_NS, dtype=np.int64)
        v30[code[hit]] = got["v30"].to_numpy()[hit]
        v90[code[hit]] = got["v90"].to_numpy()[hit]
        last[code[hit]] = got["last"].to_numpy()[hit]
        return v30, v90, last


def visits_of(tables: Mapping[str, pd.DataFrame]) -> Any:
    """Return what the churn features read of a step's visits: their hand-off file while the step has not read
    them (counted by DuckDB), else the columns they need."""
    return _counted_or_columns(tables, "visits", FEATURE_COLUMNS["visits"], visits_typed, VisitFile)


def visits_typed(path: Path) -> bool:
    """Return True when the file's visit times are timestamps in nanoseconds and its customer ids text."""
    return _typed(path, ("visited_at",))


def event_tables(tables: Mapping[str, pd.DataFrame], customers: pd.DataFrame) -> tuple[Any, Any, Any, Any]:
    """Return the orders, visits, tickets and activities as the churn model reads them, for ``customers``.

    The orders and tickets are the rows of those customers, only the columns the features read (the
    features and labels count no other customer's rows, and keep the rows' order, so their sums are the
    same); the visits and activities are counted by DuckDB while the step has not read them.
    """
    ids = customers["customer_id"].dropna().unique()
    orders = rows_where(tables, "orders", "customer_id", ids, list(FEATURE_COLUMNS["orders"]))
    tickets = rows_where(tables, "tickets", "customer_id", ids, list(FEATURE_COLUMNS["tickets"]))
    return orders, visits_of(tables), tickets, follow_ups(tables)
