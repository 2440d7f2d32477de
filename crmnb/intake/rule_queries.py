"""The queries the cleaning rules make: the kept rows of a table not held, found by DuckDB on its intake file.

Each rule of :mod:`crmnb.intake.cleaning_rules` has a twin here for a table it does not hold in pandas,
giving what the rule would find in the frame (the same rows, in the same order), so that cleaning 1000
times the demo holds no table whole: only the rows a rule moves, counts, or a side table of ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from crmnb.intake import clean_engine as engine
from crmnb.intake.ledger import Ledger
from crmnb.intake.protect import KEY_COLUMNS
from crmnb.intake.schema import ROW, TABLES


def in_turn(hits: pd.DataFrame, columns: list[str]) -> list[pd.DataFrame]:
    """Return, per column in turn, the rows of ``hits`` its flag (``_f0``, ``_f1``, ...) marks and no earlier
    column's did: what checking the columns one after another, each on the rows left, would move."""
    taken = np.zeros(len(hits), dtype=bool)
    flags = [f"_f{i}" for i in range(len(columns))]
    out = []
    for flag in flags:
        now = hits[flag].fillna(False).to_numpy(dtype=bool) & ~taken
        taken |= now
        out.append(hits.loc[now].drop(columns=flags))
    return out


def on_file(
    book: Ledger, table: str, columns: list[str], body: str, sides: dict | None = None, arrow: bool = False
) -> pd.DataFrame | pa.Table:
    """Return the kept rows of a table not held that the SQL ``body`` (over ``v``: the kept rows, and the
    small ``sides`` tables) selects, queried by DuckDB on its intake file
    (:func:`crmnb.intake.clean_engine.kept_rows`; with ``arrow``, as an Arrow table with ``_pos``)."""
    have = book.source.columns(table)
    cols = [c for c in dict.fromkeys(columns) if c and c in have]
    src, plan, gone = book.on_file(table), book.plans[table], book.dropped_positions(table)
    query = engine.kept_arrow if arrow else engine.kept_rows
    return query(src, book.rows_in[table], None, plan.missing, cols, body, plan.repoint, sides, gone)


def ids_table(ids: pd.Series | list, column: str = "customer_id") -> pa.Table:
    """Return ids as a one-column Arrow table, to join to a table on its file."""
    return pa.table({column: pa.array(list(ids) if isinstance(ids, list) else ids, pa.string(), from_pandas=True)})


BOUND_COLUMNS = ["column", "kind", "expected", "value", "row"]


def bound_words(lo: float | None, hi: float | None) -> tuple[str, str]:
    """Return what a value outside the bounds is called and what was expected instead."""
    if lo == 0 and hi is None:
        return "negative amount", "an amount of 0 or more"
    return "out of range", f"a value between {lo} and {hi}"


def bound_failures(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return the values outside their column's bounds as the schema check finds them (column, kind,
    expected, value, row), column by column in the schema's order; a missing value is no failure."""
    spec, found = TABLES[table], []
    for col in (c for c in spec.columns if c in spec.bounds and c in df.columns):
        v, (lo, hi) = df[col], spec.bounds[col]
        if not pd.api.types.is_numeric_dtype(v):
            continue  # a column of the wrong type: intake's dtype check names it
        below = v < lo if lo is not None else pd.Series(False, index=v.index)
        above = v > hi if hi is not None else pd.Series(False, index=v.index)
        bad = v.notna() & (below | above)
        if bad.any():
            kind, expected = bound_words(lo, hi)
            rows = df.loc[bad, ROW].to_numpy()
            found.append(pd.DataFrame({"column": col, "kind": kind, "expected": expected, "value": v[bad].to_numpy()}))
            found[-1]["row"] = rows
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=BOUND_COLUMNS)


def bounds_on_file(book: Ledger, table: str) -> pd.DataFrame:
    """Return what :func:`bound_failures` finds in the kept rows of a table not held, found by DuckDB on its file
    in one scan: indexed by position, with the key and row number the quarantine notes."""
    spec = TABLES[table]
    have = set(book.source.columns(table))
    kinds = {c: book.source.kind(table, c) for c in spec.columns if c in spec.bounds and c in have}
    cols = [c for c, k in kinds.items() if pa.types.is_integer(k) or pa.types.is_floating(k)]  # else: intake's check
    if not cols:
        return pd.DataFrame(columns=BOUND_COLUMNS)
    found = {c: f"NOT ({engine.is_missing(c, kinds[c])}) AND ({engine.outside_sql(c, *spec.bounds[c])})" for c in cols}
    hits = on_file(book, table, [ROW, spec.key, *cols], engine.flagged_sql(found))
    parts = []
    for i, c in enumerate(cols):
        kind, expected = bound_words(*spec.bounds[c])
        h = hits[hits[f"_f{i}"].fillna(False).to_numpy(dtype=bool)]
        part = h[[ROW, spec.key]].assign(column=c, kind=kind, expected=expected, value=h[c])
        parts.append(part.rename(columns={ROW: "row"}).assign(**{ROW: h[ROW]}))
    return pd.concat(parts) if parts else pd.DataFrame(columns=BOUND_COLUMNS)


def contact_sharers(book: Ledger) -> pd.DataFrame | None:
    """Return the kept customer records that share a keyed phone number or e-mail with another (the only ones
    :func:`find_duplicate_customers` can merge, and in the same order), found by DuckDB on the file; None when
    customers is held. Contacts intake did not key (a table written by other code) are matched as written, so
    all the kept records come back, with only the columns the matching reads."""
    keys = list(KEY_COLUMNS.values())
    if not book.on_file("customers"):
        return None
    if not set(keys) <= set(book.source.columns("customers")):
        cols = ["customer_id", "created_at", ROW, *KEY_COLUMNS]
        return on_file(book, "customers", cols, "SELECT * FROM v WHERE customer_id IS NOT NULL")
    shared = " OR ".join(
        f"{k} IN (SELECT {k} FROM v WHERE customer_id IS NOT NULL AND {k} IS NOT NULL GROUP BY {k} HAVING count(*) > 1)"
        for k in keys
    )
    body = f"SELECT * FROM v WHERE customer_id IS NOT NULL AND ({shared})"
    return on_file(book, "customers", ["customer_id", "created_at", ROW, *keys], body)


def counts_on_file(book: Ledger, table: str, columns: list[str], counted: dict[str, str]) -> dict[str, int]:
    """Return, per name, how many kept rows of a table not held meet its SQL condition over ``columns``, in
    one scan of its file."""
    counts = ", ".join(f"count(*) FILTER (WHERE {c}) AS {engine.quote(n)}" for n, c in counted.items())
    got = on_file(book, table, columns, f"SELECT 0 AS _pos, {counts} FROM v")
    return {n: int(got[n].iloc[0]) for n in counted}
