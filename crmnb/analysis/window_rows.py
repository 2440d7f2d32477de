"""The company's rows an analysis of one window reads, read from the cleaned hand-offs with the filter pushed
into the Parquet read, so that the rest of each table never reaches pandas.

The deep dive's campaign and channel tables, the attribution and the UTM table are about the whole company,
but only about the leads created in the period and some of the deals and orders; its service
analyses are about the department's tickets. At 1000 times the demo data the leads alone are 15 million rows,
of which the period holds a quarter. Each reader gives the rows the whole-table filter of the analysis keeps,
in the file's order, with the file's types, so the analysis computes the same figures from them; on a plain
mapping of frames (the unit tests, a notebook that set a table itself) the same filter runs on the frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from crmnb.analysis.case_rows import COMPANY_LEAD_COLUMNS, TICKET_COLUMNS
from crmnb.analysis.marketing import day_bounds, in_window
from crmnb.analysis.metric_engine import unread_file


def _rows(
    tables: Mapping[str, pd.DataFrame],
    name: str,
    columns: Iterable[str],
    arrow_filter: Callable[[], Any] | None,
    frame_filter: Callable[[pd.DataFrame], pd.Series] | None,
) -> pd.DataFrame:
    """Return the rows of table ``name`` that the filters keep, with those of ``columns`` the table has.

    From the hand-off file while the step has not read the table whole (``arrow_filter()`` is the pyarrow
    expression, pushed into the read); else ``frame_filter(frame)`` on the frame. None keeps every row.
    """
    import pyarrow.parquet as pq

    path = unread_file(tables, name)
    if path is None:
        df = tables[name]
        if frame_filter is not None:
            df = df[frame_filter(df).to_numpy()]
        return df[[c for c in columns if c in df]].reset_index(drop=True)
    have = set(pq.read_schema(path).names)
    return pd.read_parquet(
        path, columns=[c for c in columns if c in have], filters=None if arrow_filter is None else arrow_filter()
    )


def _window(column: str, lo: pd.Timestamp | None, hi: pd.Timestamp | None):
    """Return the arrow and frame filters of ``column`` in [lo, hi) (a missing bound is open; no date never):
    :func:`crmnb.analysis.outcome_rows.window_filter` pushed into the read, :func:`~crmnb.analysis.marketing.in_window`
    on a frame."""
    from crmnb.analysis.outcome_rows import window_filter

    return (lambda: window_filter(column, lo, hi)), (lambda df: in_window(df[column], lo, hi))


def window_leads(tables: Mapping[str, pd.DataFrame], start, end, columns: Iterable[str] = COMPANY_LEAD_COLUMNS):
    """Return the company's leads created from ``start`` to ``end`` (a whole day, included)."""
    return _rows(tables, "leads", columns, *_window("created_at", *day_bounds(start, end)))


def performance(
    tables: Mapping[str, pd.DataFrame], start, end, ltv_per_customer: pd.Series | float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the window's channel and campaign tables (:func:`crmnb.analysis.marketing.channel_performance`,
    :func:`~crmnb.analysis.marketing.campaign_performance`) from the window's outcome rows
    (:func:`crmnb.analysis.outcome_rows.window_outcome_tables`, as the budget reads them), which are let go once
    both are made: at 1000 times the demo data they are a gigabyte that no later cell reads."""
    from crmnb.analysis.marketing import campaign_performance, channel_performance
    from crmnb.analysis.outcome_rows import window_outcome_tables

    rows, campaigns = window_outcome_tables(tables, start, end), tables["campaigns"]
    return (
        channel_performance(campaigns, *rows, start, end, ltv_per_customer=ltv_per_customer),
        campaign_performance(campaigns, *rows, start, end, ltv_per_customer=ltv_per_customer),
    )


def _present(tables: Mapping[str, pd.DataFrame], name: str, columns: Iterable[str]) -> list[str]:
    """Return those of ``columns`` that table ``name`` has (read from its file's schema while it is unread)."""
    import pyarrow.parquet as pq

    path = unread_file(tables, name)
    have = set(pq.read_schema(path).names) if path is not None else set(tables[name].columns)
    return [c for c in columns if c in have]


def conversions(tables: Mapping[str, pd.DataFrame], start, end) -> pd.DataFrame:
    """Return :func:`crmnb.analysis.attribution.won_leads` of the window, from the window's leads and their
    deals, with only the columns it reads."""
    from crmnb.analysis.attribution import won_leads
    from crmnb.frames import rows_where

    leads = window_leads(tables, start, end, ["lead_id", "created_at"])
    if leads.empty:  # won_leads says a table without a lead is empty; a window without one has no conversion
        leads = tables.columns("leads", ["lead_id", "created_at"]) if hasattr(tables, "columns") else tables["leads"]
    wanted = _present(tables, "opportunities", ["lead_id", "status", "amount", "closed_at", "created_at"])
    return won_leads(leads, rows_where(tables, "opportunities", "lead_id", leads["lead_id"], wanted), start, end)


def utm_leads(tables: Mapping[str, pd.DataFrame], start, end) -> pd.DataFrame:
    """Return :func:`crmnb.analysis.engagement.utm_leads` of the window, from the window's leads (their UTM
    fields) and the leads of every won deal."""
    import pyarrow.compute as pc

    from crmnb.analysis import engagement

    leads = window_leads(tables, start, end, ["lead_id", "created_at", "utm_source", "utm_medium"])
    won = _rows(
        tables,
        "opportunities",
        ["lead_id", "status"],
        lambda: pc.field("status") == "won",
        lambda df: df["status"] == "won",
    )
    return engagement.utm_leads(leads, won, start, end)


def names_departments(tables: Mapping[str, pd.DataFrame], name: str) -> bool:
    """Whether table ``name`` has a department column with at least one value (counted by DuckDB in the file
    while the table is unread)."""
    path = unread_file(tables, name)
    if path is None:
        df = tables[name]
        return "department" in df and bool(df["department"].notna().any())
    return "department" in _counts(path, ["department"])[0]


def _counts(path, columns: Iterable[str]) -> tuple[set[str], int]:
    """Return which of ``columns`` the Parquet file at ``path`` has a value in, and its rows, counted by DuckDB."""
    import pyarrow.parquet as pq

    from crmnb.frames import connect

    have = [c for c in columns if c in pq.read_schema(path).names]
    con = connect(threads=1)
    try:
        counts = ", ".join([f'count("{c}")' for c in have] + ["count(*)"])
        got = con.execute(f"SELECT {counts} FROM read_parquet($path)", {"path": str(path)}).fetchone()
    finally:
        con.close()
    return {c for c, n in zip(have, got, strict=False) if n}, int(got[-1])


def ticket_fields(tables: Mapping[str, pd.DataFrame]) -> tuple[list[str], int]:
    """Return the service fields the company's tickets lack (absent, or empty in every row) and how many tickets
    there are: what :func:`crmnb.analysis.service.lacking` says of the whole table, without reading it."""
    from crmnb.analysis.service import NEEDS

    fields = tuple(dict.fromkeys(c for cs in NEEDS.values() for c in cs))
    path = unread_file(tables, "tickets")
    if path is None:
        from crmnb.analysis.service import missing_fields

        return missing_fields(tables["tickets"], fields), len(tables["tickets"])
    # what the step reads of the tickets: a field it leaves on disk is one the analyses lack
    have, rows = _counts(path, [c for c in fields if c in TICKET_COLUMNS])
    return [c for c in fields if c not in have], rows


def department_tickets(tables: Mapping[str, pd.DataFrame], department: str | None) -> pd.DataFrame:
    """Return the tickets the service analyses of ``department`` read: the department's when the tickets name
    departments, else all of them (as :func:`crmnb.analysis.service.of_department` keeps them)."""
    import pyarrow.compute as pc

    if department is None or not names_departments(tables, "tickets"):
        return _rows(tables, "tickets", TICKET_COLUMNS, None, None)
    return _rows(
        tables,
        "tickets",
        TICKET_COLUMNS,
        lambda: pc.field("department") == department,
        lambda df: df["department"] == department,
    )


def latest(tables: Mapping[str, pd.DataFrame], name: str, column: str) -> pd.Timestamp:
    """Return the latest ``column`` of table ``name``, reading that column alone while the table is unread."""
    path = unread_file(tables, name)
    if path is None:
        return tables[name][column].max()
    return pd.read_parquet(path, columns=[column])[column].max()
