"""Whether a table has rows in the analysis period: an export cut short, or dates that could not be read,
said as such, naming the table, its date column and the period, before any step computes on nothing."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from crmnb.errors import DataError
from crmnb.intake.checks import SHOW_ROWS
from crmnb.intake.schema import ROW, TABLES

UNDATED = ("customers", "campaigns")
"""Tables whose rows may all lie outside the analysis period: customers created earlier, campaigns spanning it."""


def period_span(case) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and last moment of the analysis period, both days included."""
    return pd.Timestamp(case.period.start), _end_of(case.period.end)


def _end_of(day) -> pd.Timestamp:
    return pd.Timestamp(day) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)


def _unreadable_example(issues: pd.DataFrame | None, col: str) -> str:
    """Return "e.g. '45123' in export rows 2, 3, 4 …" for a date column's unreadable values, or ''."""
    if issues is None or not len(issues) or "column" not in issues:
        return ""
    mine = issues[issues["column"] == col]
    if not len(mine):
        return ""
    rows = ", ".join(map(str, mine["row"].head(SHOW_ROWS))) + (" …" if len(mine) > SHOW_ROWS else "")
    return f", e.g. {mine['value'].iloc[0]!r} in export rows {rows}"


def outside_period(
    name: str, table: pd.DataFrame, case, issues: pd.DataFrame | None = None, what: str = "rows"
) -> str | None:
    """Return why no row of ``table`` falls in the analysis period (what its dates span, how many are
    unreadable), or None when some row does, or it has no rows or dates to judge by.

    ``what`` names the rows judged ("rows", or "kept rows" after cleaning).
    """
    dates = [c for c in TABLES[name].dates if c in table.columns] if name in TABLES else []
    if name in UNDATED or not dates or not len(table):
        return None
    col = dates[0]
    when = pd.to_datetime(table[col], errors="coerce")
    lo, hi = period_span(case)
    if when.between(lo, hi).any():
        return None
    read = when.dropna()
    spans = f"its {col} runs from {read.min():%Y-%m-%d} to {read.max():%Y-%m-%d}" if len(read) else ""
    unreadable = len(when) - len(read)
    bad = (
        f"{unreadable:,} of {len(when):,} rows have no readable {col}{_unreadable_example(issues, col)}"
        if unreadable
        else ""
    )
    found = "; ".join(x for x in (spans, bad) if x)
    return (
        f"table '{name}': none of its {len(table):,} {what} is dated ({col}) in the analysis period "
        f"{lo:%Y-%m-%d} – {hi:%Y-%m-%d} ({found}); is the export cut short, its dates unreadable, "
        "or the period wrong?"
    )


def check_in_period(name: str, table: pd.DataFrame, case, issues: pd.DataFrame | None = None, source: str = "") -> None:
    """Raise :class:`DataError` when no row of ``table`` falls in the case's analysis period, naming its
    ``source`` (the file, or the database and table, it was read from) first."""
    why = outside_period(name, table, case, issues) if hasattr(case, "period") else None
    if why:
        raise DataError(f"{source}: {why}" if source else why)


def _judged(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """Return what the period check reads of a table: the date column it judges by (or its key) only, when
    the tables can give some columns (:class:`~crmnb.intake.clean_tables.CleanTables`), else the table."""
    if not hasattr(tables, "frame") or name not in TABLES:
        return tables[name]
    spec = TABLES[name]
    for col in spec.dates:  # the first the table has, as outside_period judges
        got = tables.frame(name, [col])
        if col in got.columns:
            return got
    return tables.frame(name, [spec.key or ROW])


def _some_kept_in_period(tables: Mapping[str, pd.DataFrame], name: str, case) -> bool:
    """Return True when a written cleaned table has a row dated in the analysis period, asked of its file by
    DuckDB (at 1000x the demo the dates of the e-mail events alone took 0.9 GB in pandas); False: not known so,
    and the table is judged as :func:`outside_period` judges it."""
    path = tables.file(name) if hasattr(tables, "file") else None
    if path is None or name in UNDATED or name not in TABLES:
        return False
    import pyarrow.parquet as pq

    from crmnb.intake.clean_engine import connect, quote

    types = {f.name: f.type for f in pq.read_schema(path)}
    col = next((c for c in TABLES[name].dates if c in types), None)
    if col is None or not str(types[col]).startswith("timestamp"):
        return False
    lo, hi = period_span(case)
    got = connect().execute(
        f"SELECT EXISTS (SELECT 1 FROM read_parquet(?) WHERE {quote(col)} BETWEEN ? AND ?)",
        [str(path), lo.to_pydatetime(), hi.to_pydatetime()],
    )
    return bool(got.fetchall()[0][0])


def check_kept_in_period(tables: Mapping[str, pd.DataFrame], quarantine: pd.DataFrame, case) -> None:
    """Raise :class:`DataError` when cleaning left a table no row in the analysis period, naming what it set aside."""
    for name in tables:
        if _some_kept_in_period(tables, name, case):
            continue
        table = _judged(tables, name)
        why = outside_period(name, table, case, what="kept rows")
        if why is None and not len(table) and name in TABLES and not TABLES[name].may_be_empty:
            lo, hi = period_span(case)
            why = f"table '{name}': no row is kept in the analysis period {lo:%Y-%m-%d} – {hi:%Y-%m-%d}"
        if why is None:
            continue
        mine = quarantine[quarantine["table"] == name] if len(quarantine) else quarantine
        if len(mine):
            rules = mine.groupby("rule", sort=False).size().sort_values(ascending=False)
            why += "; cleaning quarantined " + ", ".join(f"{n:,} ({rule})" for rule, n in rules.items())
        raise DataError(why)
