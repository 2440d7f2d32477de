"""Schema validation: every canonical table is checked against its pandera schema before analysis.

The schema of a table (:func:`table_schema`) comes from :data:`crmnb.intake.schema.TABLES`:
dtypes per column kind, required columns filled, allowed values (status, stage,
type), bounds (amounts never negative, csat 1–5, nps 0–10) and a unique key.
Validation is lazy: every failure of every column is collected, then

- :func:`check_intake` (step 2) raises :class:`DataError` for what no row-by-row
  rule can fix: a wrong dtype, or values outside a fixed list (a stage or status
  the mapping does not translate: the analyst maps it in the case file); the
  row-level failures (a required value missing, a duplicate key, a negative
  amount) are left for cleaning, which quarantines those rows with a log line;
- :func:`check_clean` (step 4) raises :class:`DataError` for any failure at all:
  cleaned tables are what the analyses trust.

Messages name the file or table, the column, what was expected, what was found and
the first few offending rows by their 1-based export row number (``_row``).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from crmnb.errors import DataError
from crmnb.intake.schema import ROW, TABLES

SHOW_ROWS = 5
"""How many offending rows a message lists."""

PROBLEM_COLUMNS = ["table", "column", "kind", "expected", "value", "row"]

KEEP_ROWS = 100_000
"""The most rows of one kind of row-level problem in one column a table's report keeps in memory when it is
taken in batches (the first, in row order); the rest are counted in :attr:`Report.dropped`: a key repeated in
every row of a 100 M-row export would otherwise be a 100 M-row frame."""

ROW_LEVEL = ("required value missing", "duplicate key", "negative amount", "out of range")
"""Failures cleaning can settle row by row (quarantine, or set an optional value to missing)."""

_DTYPE = {"float": "float64", "int": "float64", "datetime": "datetime64[ns]"}
_TEXT = "text"


def _is_text(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.StringDtype):  # text by construction: no need to look at each value
        return pd.Series(True, index=s.index)
    ok = [isinstance(v, str) for v in s.to_numpy(dtype=object)]
    return pd.Series(s.isna().to_numpy() | np.array(ok, dtype=bool), index=s.index)


def table_schema(table: str, unique: bool = True) -> pa.DataFrameSchema:
    """Return the pandera schema of a canonical table (after intake: text, floats, datetimes).

    ``unique=False`` leaves out the unique row number and key: a batch of a table is checked without,
    its keys across the whole table by :func:`duplicate_keys`.
    """
    spec = TABLES[table]
    cols: dict[str, pa.Column] = {ROW: pa.Column("int64", pa.Check.ge(1), unique=unique, title="row")}
    for col, kind in spec.columns.items():
        checks: list[pa.Check] = []
        if kind in ("id", "str"):
            checks.append(pa.Check(_is_text, name=_TEXT, error=_TEXT))
            dtype = None
        else:
            dtype = _DTYPE.get(kind)
        if col in spec.allowed:
            checks.append(pa.Check.isin(list(spec.allowed[col]), error="allowed"))
        lo, hi = spec.bounds.get(col, (None, None))
        if lo == 0 and hi is None:
            checks.append(pa.Check.ge(0, error="non-negative"))
        elif lo is not None or hi is not None:
            checks.append(
                pa.Check.in_range(lo if lo is not None else -np.inf, hi if hi is not None else np.inf, error="range")
            )
        cols[col] = pa.Column(
            dtype,
            checks,
            nullable=col not in spec.required,
            unique=unique and bool(spec.key) and col == spec.key,
            required=True,
        )
    return pa.DataFrameSchema(cols, name=table, strict=False, coerce=False)


@dataclass
class Report:
    """What validation found in one table."""

    table: str
    source: str
    rows: int
    problems: pd.DataFrame  # table, column, kind, expected, value, row
    dropped: int = 0  # row-level problems found past :data:`KEEP_ROWS` of their column and kind: counted only

    @property
    def blocking(self) -> pd.DataFrame:
        """Return the problems no row-by-row rule settles."""
        return self.problems[~self.problems["kind"].isin(ROW_LEVEL)]

    @property
    def row_level(self) -> pd.DataFrame:
        """Return the problems cleaning settles row by row."""
        return self.problems[self.problems["kind"].isin(ROW_LEVEL)]

    def message(self, problems: pd.DataFrame | None = None) -> str:
        """Return the problems as a message for the analyst."""
        return describe(
            self.source or f"table '{self.table}'", self.table, self.problems if problems is None else problems
        )


def problems(df: pd.DataFrame, table: str, unique: bool = True) -> pd.DataFrame:
    """Return every failure of ``df`` against its schema, one row per offending cell (lazy validation)."""
    spec = TABLES[table]
    try:
        table_schema(table, unique).validate(df, lazy=True)
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    except SchemaErrors as err:
        fc = err.failure_cases
    rows = df[ROW] if ROW in df else pd.Series(np.arange(1, len(df) + 1), index=df.index)
    out = []
    for _, f in fc.iterrows():
        col, check, value, idx = f["column"], str(f["check"]), f["failure_case"], f["index"]
        if pd.isna(idx) and isinstance(value, str) and re.match(r"\w+Error\(", value):
            continue  # a check that could not run on a column of the wrong dtype: the dtype failure says it
        kind, expected = _classify(spec, col, check, df)
        row = rows.get(idx) if idx is not None and not (isinstance(idx, float) and np.isnan(idx)) else None
        if kind == "missing column":
            col, value = value, None
        elif check.startswith("dtype("):
            value = str(df[col].dtype) if col in df else value
        elif check == _TEXT:
            value = f"{value!r} ({type(value).__name__})"
        out.append(
            {
                "table": table,
                "column": col,
                "kind": kind,
                "expected": expected,
                "value": value,
                "row": None if row is None else int(row),
            }
        )
    got = pd.DataFrame(out, columns=PROBLEM_COLUMNS)
    # a value failing "text" whose column is mostly text is an odd cell; a whole column of numbers is a dtype
    return got.drop_duplicates(subset=["column", "kind", "row", "value"]).reset_index(drop=True)


def batch_problems(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return the failures of one batch of a table, its key's uniqueness left to :func:`duplicate_keys`."""
    return problems(df, table, unique=False)


def duplicate_keys(
    path: Path, table: str, held: pd.DataFrame | None = None, keep: int = KEEP_ROWS
) -> tuple[pd.DataFrame, int]:
    """Return the rows of a table's Parquet file whose key another row has too, as :func:`problems` lists
    them (in row order, a missing key never counted), found by DuckDB out of core, and how many more such
    rows there are past the first ``keep``.

    ``held``: the table's key and row number when it is one batch, so checked as they are, in memory.
    """
    key = TABLES[table].key
    if not key:
        return pd.DataFrame(columns=PROBLEM_COLUMNS), 0
    if held is not None:
        keys = held[key]
        found = pd.DataFrame({"value": keys, "row": held[ROW]})[keys.notna() & keys.duplicated(keep=False)]
        found, more = found.iloc[:keep], max(len(found) - keep, 0)
    else:
        found, more = _keys_twice(path, key, keep)
    kind, expected = _classify(TABLES[table], key, "field_uniqueness", pd.DataFrame())
    return pd.DataFrame(
        {
            "table": table,
            "column": key,
            "kind": kind,
            "expected": expected,
            "value": found["value"].astype(object).to_numpy(),
            "row": found["row"].astype(object).to_numpy(),
        },
        columns=PROBLEM_COLUMNS,
    ), more


def _keys_twice(path: Path, key: str, keep: int) -> tuple[pd.DataFrame, int]:
    """Return the keys (``value``) and row numbers (``row``) of the first ``keep`` rows of a Parquet file
    whose key repeats, and how many more such rows there are."""
    import duckdb

    k = '"' + key.replace('"', '""') + '"'
    # the keys' 64-bit hashes are grouped first, a fraction of the memory of the keys; only the rows
    # whose hash repeats are grouped by the key itself, which tells apart two keys sharing a hash
    sql = (
        f"CREATE TEMP TABLE dup AS WITH twice AS (SELECT hash({k}) AS h FROM read_parquet($p) "
        f"WHERE {k} IS NOT NULL GROUP BY h HAVING count(*) > 1), "
        f"cand AS (SELECT {k} AS value, {ROW} AS row FROM read_parquet($p) "
        f"WHERE {k} IS NOT NULL AND hash({k}) IN (SELECT h FROM twice)), "
        "keys AS (SELECT value FROM cand GROUP BY value HAVING count(*) > 1) "
        "SELECT row, value FROM cand WHERE value IN (SELECT value FROM keys)"
    )
    with tempfile.TemporaryDirectory(prefix="crmnb-keys-") as spill:
        config = {"memory_limit": "256MB", "threads": 2, "temp_directory": spill}
        with duckdb.connect(config=config) as con:
            con.execute(sql, {"p": str(path)})
            total = con.execute("SELECT count(*) FROM dup").fetchone()[0]
            found = con.execute("SELECT value, row FROM dup ORDER BY row LIMIT $n", {"n": keep}).df()
    return found, max(int(total) - keep, 0)


_KIND_ORDER = ("missing column", "dtype", "required value missing", "duplicate key")
"""The order in which validation lists one column's failures of each kind (the checks of values after)."""


def in_table_order(probs: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return the failures found batch by batch in the order validation of the whole table lists them:
    column by column, kind by kind, each in row order."""
    cols = {c: i for i, c in enumerate([ROW, *TABLES[table].columns])}
    at = probs["column"].map(cols).fillna(len(cols)).to_numpy()
    kind = probs["kind"].map({k: i for i, k in enumerate(_KIND_ORDER)}).fillna(len(_KIND_ORDER)).to_numpy()
    row = pd.to_numeric(probs["row"], errors="coerce").fillna(0).to_numpy()
    order = np.lexsort((row, kind, at))
    got = probs.iloc[order].drop_duplicates(subset=["column", "kind", "row", "value"])
    # rebuilt from records, as :func:`problems` builds its frame: the same dtypes
    return pd.DataFrame(got.to_dict("records"), columns=PROBLEM_COLUMNS)


def _classify(spec, col: str, check: str, df: pd.DataFrame) -> tuple[str, str]:
    kind = spec.columns.get(col, "")
    if check == "column_in_dataframe":
        return "missing column", "the column"
    if check == "not_nullable":
        return "required value missing", "a value in every row"
    if check == "field_uniqueness" or check.startswith("unique"):
        return "duplicate key", "each value once"
    if check.startswith("dtype("):
        return "dtype", {"float": "numbers", "int": "numbers", "datetime": "datetimes"}.get(kind, check)
    if check == _TEXT:
        return "dtype", "text"
    if check == "allowed":
        return "value not allowed", f"one of {', '.join(spec.allowed[col])}"
    if check == "non-negative":
        return "negative amount", "an amount of 0 or more"
    if check == "range":
        lo, hi = spec.bounds[col]
        return "out of range", f"a value between {lo} and {hi}"
    return check, check


def describe(where: str, table: str, probs: pd.DataFrame) -> str:
    """Return problems grouped by column and kind, with the first few rows of each."""
    lines = []
    for (col, kind), g in probs.groupby(["column", "kind"], sort=False, dropna=False):
        expected = g["expected"].iloc[0]
        rows = g["row"].dropna().astype(int).tolist()
        vals = g["value"].tolist()
        if kind == "missing column":
            found = "it is absent"
        elif kind == "dtype":
            found = "found " + ", ".join(str(v) for v in vals[:SHOW_ROWS])
        elif kind == "value not allowed":
            counts = pd.Series([str(v) for v in vals]).value_counts()
            found = "found " + ", ".join(f"{v!r} ({n} rows)" for v, n in counts.head(SHOW_ROWS).items())
        else:
            found = (
                "found " + ", ".join(f"{_show(v)}" for v in vals[:SHOW_ROWS]) + (" …" if len(vals) > SHOW_ROWS else "")
            )
        where_rows = ""
        if rows:
            shown = ", ".join(map(str, rows[:SHOW_ROWS]))
            more = f" and {len(rows) - SHOW_ROWS} more" if len(rows) > SHOW_ROWS else ""
            where_rows = f" in export row(s) {shown}{more}"
        hint = ""
        if kind == "value not allowed":
            hint = (
                f"; translate them in the case file: data.tables.{table}.mapping.values.{col}: "
                f"{{<export value>: <one of the allowed>}}"
            )
        lines.append(f"  - column '{col}': expected {expected}; {found}{where_rows}{hint}")
    return f"{where}: does not match the '{table}' schema\n" + "\n".join(lines)


def _show(v) -> str:
    if v is None or (not isinstance(v, (str, bytes)) and pd.api.types.is_scalar(v) and pd.isna(v)):
        return "empty"
    return repr(v.item() if isinstance(v, np.generic) else v)


def check_intake(df: pd.DataFrame, table: str, source: str = "") -> Report:
    """Validate a table as taken in; raise :class:`DataError` on what cleaning cannot settle row by row.

    Returns the report, whose row-level problems cleaning turns into quarantine.
    """
    rep = Report(table, str(source), len(df), problems(df, table))
    if len(rep.blocking):
        raise DataError(rep.message(rep.blocking))
    return rep


def check_clean(tables: dict[str, pd.DataFrame]) -> None:
    """Validate every cleaned table strictly; raise :class:`DataError` naming each failing table."""
    msgs = []
    for name, df in tables.items():
        p = problems(df, name)
        if len(p):
            msgs.append(describe(f"cleaned table '{name}'", name, p))
    if msgs:
        raise DataError("\n".join(msgs))
