"""The rows of the leads, opportunities and orders that the leads' outcomes of one window read, read alone.

:func:`crmnb.analysis.marketing.lead_outcomes` keeps the leads created in the window, the won deals
(closed, any lead, any date: their orders are not counted twice) and the orders in the window with an
amount. At 1000 times the demo the three tables are 15, 5.7 and 17.7 million rows; a window of six
months is a fifth of the leads, the won deals a third of the deals and the window's orders a tenth of
them. Each is read here with a filter pushed into the Parquet read: the file's rows, in its order, with
its types, of which ``lead_outcomes`` keeps the same ones as of the whole table (it filters them again),
so its sums are the same. Only the leads' uniqueness, which it checks over the whole table, is counted
over the file by DuckDB.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmnb.analysis.marketing import OUTCOME_COLUMNS, day_bounds, outcome_tables
from crmnb.analysis.metric_engine import unread_file

WINDOW_TIMES = {"leads": "created_at", "orders": "order_date"}
"""The time column whose window each table's rows are read in."""

REPEATS_SQL = """
SELECT count(*) - count(DISTINCT lead_id) - (CASE WHEN count(*) FILTER (WHERE lead_id IS NULL) > 0 THEN 1 ELSE 0 END)
       AS repeats
FROM read_parquet($path)
"""
"""How many leads repeat an earlier one's id (a missing id repeats an earlier missing one, as in pandas)."""


def window_outcome_tables(
    tables: Mapping[str, pd.DataFrame], start, end
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return the leads, opportunities and orders :func:`~crmnb.analysis.marketing.lead_outcomes` reads for the
    window ``[start, end]``: of a step's unread tables, only the rows it can keep (the leads created in the
    window, the won deals with a close date, the orders of the window with an amount); else, as
    :func:`~crmnb.analysis.marketing.outcome_tables`, the tables' columns whole.

    The whole tables are read too when the leads repeat an id (``lead_outcomes`` then names the first
    repeat), when no lead was created in the window (it says the leads are empty only when they all are),
    and when a file's times are not naive timestamps.
    """
    paths = {name: unread_file(tables, name) for name in OUTCOME_COLUMNS}
    if any(p is None or not _readable(Path(p), name) for name, p in paths.items()):
        return outcome_tables(tables)
    if _lead_repeats(paths["leads"]):
        return outcome_tables(tables)
    lo, hi = day_bounds(start, end)
    leads = _read(paths["leads"], "leads", window_filter(WINDOW_TIMES["leads"], lo, hi))
    if leads.empty:
        return outcome_tables(tables)
    won = (pc.field("status") == "won") & pc.field("closed_at").is_valid()
    opportunities = _read(paths["opportunities"], "opportunities", won)
    priced = pc.field("amount").is_valid()
    orders = _read(paths["orders"], "orders", window_filter(WINDOW_TIMES["orders"], lo, hi, priced))
    return leads, opportunities, orders


def _readable(path: Path, name: str) -> bool:
    """Return True when the file's window and close times are naive timestamps in nanoseconds."""
    types = {f.name: f.type for f in pq.read_schema(path)}
    times = [WINDOW_TIMES[name]] if name in WINDOW_TIMES else ["closed_at"]
    return all(types.get(c) == pa.timestamp("ns") for c in times)


def window_filter(column: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None, also=None):
    """Return the filter of rows whose ``column`` falls in [lo, hi) (open bounds: any), and ``also``."""
    keep = pc.scalar(True) if also is None else also
    if lo is not None:
        keep = keep & (pc.field(column) >= pa.scalar(lo.as_unit("ns"), type=pa.timestamp("ns")))
    if hi is not None:
        keep = keep & (pc.field(column) < pa.scalar(hi.as_unit("ns"), type=pa.timestamp("ns")))
    return keep


def _read(path: Path, name: str, keep) -> pd.DataFrame:
    """Return the rows of the file that ``keep`` keeps, in its order, with the columns ``lead_outcomes`` reads."""
    have = pq.read_schema(path).names
    return pd.read_parquet(path, columns=[c for c in OUTCOME_COLUMNS[name] if c in have], filters=keep)


def _lead_repeats(path: Path) -> bool:
    """Return True when a lead id of the file repeats an earlier one."""
    from crmnb.frames import connect

    con = connect(memory_limit="512MB")  # a database of its own, closed: the count's hash table is let go
    try:
        return int(con.execute(REPEATS_SQL, {"path": str(path)}).fetchall()[0][0]) > 0
    finally:
        con.close()
