"""Cleaning that loses nothing: every row dropped or changed is in the log or the quarantine.

For every table, rows in = rows kept + rows quarantined; :func:`clean` checks it.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmnb.errors import DataError
from crmnb.frames import isin
from crmnb.intake.checks import check_clean, problems
from crmnb.intake.schema import ROW, TABLES

LOG_COLUMNS = ["rule", "table", "column", "rows", "action", "detail"]
QUARANTINE_COLUMNS = ["table", "row", "key", "rule", "reason", "record"]


@dataclass
class Cleaned:
    """The result of cleaning: tables to analyse and the account of what was done."""

    tables: dict[str, pd.DataFrame]
    log: pd.DataFrame  # rule, table, column, rows, action, detail
    quarantine: pd.DataFrame  # table, row, key, rule, reason, record (the original values as JSON)
    merges: pd.DataFrame  # duplicate_id, kept_id, match_on, duplicate_row
    reconciliation: pd.DataFrame  # table, rows_in, rows_kept, rows_quarantined, balanced


# --------------------------------------------------------------------------- normalisers
def normalise_phone(s: pd.Series) -> pd.Series:
    """Return mobile numbers as bare digits without the +86 prefix; empty stays missing.

    >>> normalise_phone(pd.Series(["+86 138-1234-5678", "13812345678", None])).tolist()
    ['13812345678', '13812345678', None]
    """
    digits = s.astype("string").str.replace(r"\D", "", regex=True)
    digits = digits.where(~(digits.str.len().eq(13) & digits.str.startswith("86")), digits.str[2:])
    out = digits.astype(object).where(digits.notna() & (digits != ""), None)
    return out


def normalise_email(s: pd.Series) -> pd.Series:
    """Return e-mail addresses trimmed and lower-cased; empty stays missing."""
    e = s.astype("string").str.strip().str.lower()
    return e.astype(object).where(e.notna() & (e != ""), None)


def normalise_name(s: pd.Series) -> pd.Series:
    """Return names in NFKC form (full-width to half-width) without spaces, for matching only.

    >>> normalise_name(pd.Series(["张 伟", "ＡＢＣ科技"])).tolist()
    ['张伟', 'ABC科技']
    """
    return s.map(lambda x: unicodedata.normalize("NFKC", x).replace(" ", "").strip() if isinstance(x, str) else None)


# --------------------------------------------------------------------------- duplicates
def find_duplicate_customers(customers: pd.DataFrame) -> pd.DataFrame:
    """Return duplicate customer records and the record each merges into.

    Two records are the same customer when their normalised phone or e-mail match
    (directly or through a third record). The earliest created record, then the
    smallest id, is kept. Columns: duplicate_id, kept_id, match_on, duplicate_row.
    """
    c = customers[["customer_id", "created_at", ROW]].copy()
    c["phone_n"] = normalise_phone(customers["phone"])
    c["email_n"] = normalise_email(customers["email"])
    c = c[c["customer_id"].notna()].sort_values(["created_at", "customer_id"], na_position="last", kind="stable")
    ids = c["customer_id"].tolist()
    pos = {cid: i for i, cid in enumerate(ids)}
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    match_on: dict[int, str] = {}
    for key, label in (("phone_n", "phone"), ("email_n", "e-mail")):
        sub = c[c[key].notna()]
        first = sub.groupby(key, sort=False)["customer_id"].transform("first")
        for dup, keep in zip(sub["customer_id"], first):
            if dup == keep:
                continue
            a, b = root(pos[keep]), root(pos[dup])
            if a != b:
                parent[max(a, b)] = min(a, b)
            match_on.setdefault(pos[dup], label)
    rows = []
    for i, cid in enumerate(ids):
        r = root(i)
        if r != i:
            rows.append(
                {
                    "duplicate_id": cid,
                    "kept_id": ids[r],
                    "match_on": match_on.get(i, "phone"),
                    "duplicate_row": int(c[ROW].iloc[i]),
                }
            )
    return pd.DataFrame(rows, columns=["duplicate_id", "kept_id", "match_on", "duplicate_row"])


def _copy_on_write() -> bool:
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    try:
        return bool(pd.get_option("mode.copy_on_write"))
    except (KeyError, pd.errors.OptionError):
        return False


_COPY_ON_WRITE = _copy_on_write()


# --------------------------------------------------------------------------- the whole pass
class _Book:
    """Collects log lines and quarantined rows while cleaning."""

    def __init__(self, tables: dict[str, pd.DataFrame]):
        # a fresh 0..n-1 index, so rows are found again in ``original`` whatever index the input had
        self.tables = {k: v.reset_index(drop=True) for k, v in tables.items()}
        # the quarantine's record: values as taken in. Under copy-on-write (pandas 3) a shallow copy
        # is enough, since changing ``tables`` copies what it changes; it saves a copy of every table.
        self.original = {k: v.copy(deep=not _COPY_ON_WRITE) for k, v in self.tables.items()}
        self.rows_in = {k: len(v) for k, v in tables.items()}
        self.log: list[dict] = []
        self.quarantined: list[pd.DataFrame] = []

    def note(self, rule: str, table: str, column: str, rows: int, action: str, detail: str = "") -> None:
        if rows:
            self.log.append(
                {"rule": rule, "table": table, "column": column, "rows": int(rows), "action": action, "detail": detail}
            )

    def quarantine(
        self,
        table: str,
        mask: pd.Series,
        rule: str,
        reasons: Callable[[pd.DataFrame], pd.Series] | str,
        column: str = "",
    ) -> None:
        """Move the rows under ``mask`` to the quarantine; ``reasons`` maps those rows to a reason each."""
        df = self.tables[table]
        mask = mask.reindex(df.index, fill_value=False).astype(bool)
        n = int(mask.sum())
        if not n:
            return
        hit = df[mask]
        key = TABLES[table].key
        reason = pd.Series(reasons, index=hit.index) if isinstance(reasons, str) else reasons(hit)
        self.quarantined.append(
            pd.DataFrame(
                {
                    "table": table,
                    "row": hit[ROW].to_numpy(),
                    "key": hit[key].astype(str).to_numpy() if key else "",
                    "rule": rule,
                    "reason": reason.astype(str).to_numpy(),
                    # the values as taken in, before any re-pointing of merged duplicates
                    "record": [
                        json.dumps({k: _plain(v) for k, v in rec.items() if k != ROW}, ensure_ascii=False)
                        for rec in self.original[table].loc[hit.index].to_dict("records")
                    ],
                }
            )
        )
        self.tables[table] = df[~mask]
        self.note(rule, table, column, n, "quarantined", reason.iloc[0] if n == 1 else f"e.g. {reason.iloc[0]}")


def _plain(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat(sep=" ")
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


def clean(
    tables: dict[str, pd.DataFrame],
    issues: pd.DataFrame | None = None,
    formats: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None,
    max_followups_per_customer: int = 100,
) -> Cleaned:
    """Clean the intake tables: dates, unreadable values, duplicates, orphans, outliers, missing contacts.

    ``issues`` and ``formats`` come from intake; ``as_of`` is the moment after which a
    date is in the future (default: now). Rows are never invented or silently dropped:
    they stay, change with a log line, or move to the quarantine with a reason.
    """
    as_of = pd.Timestamp.now() if as_of is None else pd.Timestamp(as_of)
    book = _Book(tables)
    issues = issues if issues is not None else pd.DataFrame(columns=["table", "row", "column", "value", "problem"])

    # 1. date formats normalised at intake
    if formats is not None and len(formats):
        for (tname, col), grp in formats.groupby(["table", "column"], sort=False):
            other = grp[
                ~grp["format"].str.startswith("YYYY-MM-DD") | grp["format"].str.contains("±zone|.fraction", regex=True)
            ]
            for _, r in other.iterrows():
                zone = "±zone" in r["format"]
                book.note(
                    "date format",
                    tname,
                    col,
                    r["rows"],
                    "normalised to ISO datetime",
                    f"written as {r['format']}"
                    + ("; time zone dropped, the time kept as written" if zone else "")
                    + ("; fractions of a second dropped" if ".fraction" in r["format"] else ""),
                )

    # 2. unreadable values: required column -> quarantine, optional -> left missing and flagged
    for tname, grp in issues.groupby("table", sort=False):
        spec = TABLES[tname]
        df = book.tables[tname]
        for (col, problem), g in grp.groupby(["column", "problem"], sort=False):
            rows = set(g["row"].astype(int))
            mask = df[ROW].isin(rows)
            if col in spec.required:
                vals = dict(zip(g["row"].astype(int), g["value"]))
                book.quarantine(
                    tname,
                    mask,
                    problem,
                    lambda h, p=problem, c=col, v=vals: h[ROW].map(lambda r: f"{p} in {c}: {v.get(r)!r}"),
                    col,
                )
            else:
                book.note(
                    problem, tname, col, int(mask.sum()), "set to missing, row kept", f"e.g. {g['value'].iloc[0]!r}"
                )

    # 2b. values the schema rules out row by row: a negative amount, a score out of its range
    for tname, spec in TABLES.items():
        df = book.tables[tname]
        if not len(df) or not spec.bounds:
            continue
        found = problems(df, tname)
        found = found[found["kind"].isin(["negative amount", "out of range"]) & found["row"].notna()]
        for (col, kind), g in found.groupby(["column", "kind"], sort=False):
            vals = dict(zip(g["row"].astype(int), g["value"]))
            mask = book.tables[tname][ROW].isin(set(vals))
            if col in spec.required:
                book.quarantine(
                    tname,
                    mask,
                    kind,
                    lambda h, c=col, e=g["expected"].iloc[0], v=vals: h[ROW].map(
                        lambda r: f"{c} is {v.get(r)!r}, expected {e}"
                    ),
                    col,
                )
            else:
                df = book.tables[tname].copy()
                df.loc[mask, col] = np.nan
                book.tables[tname] = df
                book.note(
                    kind,
                    tname,
                    col,
                    int(mask.sum()),
                    "set to missing, row kept",
                    f"e.g. {g['value'].iloc[0]!r}, expected {g['expected'].iloc[0]}",
                )

    # an export with a header and no rows is kept as an empty table, and said so
    for tname, n in book.rows_in.items():
        if n == 0:
            book.log.append(
                {
                    "rule": "empty table",
                    "table": tname,
                    "column": "",
                    "rows": 0,
                    "action": "kept as an empty table",
                    "detail": "the export has a header but no rows",
                }
            )

    for tname, spec in TABLES.items():
        df = book.tables[tname]
        # 3. required values missing
        for col in spec.required:
            miss = df[col].isna()
            if miss.any():
                book.quarantine(tname, miss, "required value missing", f"{col} is empty", col)
                df = book.tables[tname]
        # 4. duplicate keys
        if spec.key:
            dup = df[spec.key].duplicated(keep="first")
            book.quarantine(
                tname,
                dup,
                "duplicate key",
                lambda h, k=spec.key: h[k].map(lambda v: f"{k} {v} appears more than once"),
                spec.key,
            )
            df = book.tables[tname]
        # 5. dates in the future
        for col in spec.dates:
            fut = df[col] > as_of
            if fut.any():
                book.quarantine(
                    tname,
                    fut,
                    "date in the future",
                    lambda h, c=col: h[c].map(lambda d: f"{c} {d:%Y-%m-%d} is after {as_of:%Y-%m-%d}"),
                    col,
                )
                df = book.tables[tname]

    # 6. duplicate customers: merge into the earliest record, re-point references
    merges = find_duplicate_customers(book.tables["customers"])
    if len(merges):
        cust = book.tables["customers"]
        to = dict(zip(merges["duplicate_id"], merges["kept_id"]))
        how = dict(zip(merges["duplicate_id"], merges["match_on"]))
        mask = isin(cust["customer_id"], to)
        book.quarantine(
            "customers",
            mask,
            "duplicate customer",
            lambda h: h["customer_id"].map(lambda c: f"same customer as {to[c]} (same {how[c]})"),
            "customer_id",
        )
        for tname, spec in TABLES.items():
            if tname == "customers" or "customer_id" not in spec.columns:
                continue
            df = book.tables[tname]
            hit = isin(df["customer_id"], to)
            if hit.any():
                df = df.copy()
                df.loc[hit, "customer_id"] = df.loc[hit, "customer_id"].map(to)
                book.tables[tname] = df
                book.note(
                    "duplicate customer",
                    tname,
                    "customer_id",
                    int(hit.sum()),
                    "re-pointed to the kept customer",
                    "rows of merged duplicates now name the kept record",
                )

    # 7. references to customers that do not exist
    known = set(book.tables["customers"]["customer_id"])
    for tname, spec in TABLES.items():
        if spec.references.get("customer_id") != "customers":
            continue
        df = book.tables[tname]
        orphan = df["customer_id"].notna() & ~isin(df["customer_id"], known)
        book.quarantine(
            tname,
            orphan,
            "unknown customer",
            lambda h: "customer_id " + h["customer_id"].astype(str) + " is not in customers",
            "customer_id",
        )

    # 8. outliers: customers with too many follow-ups
    act = book.tables["activities"]
    per = act.groupby("customer_id")["activity_id"].transform("size")
    heavy = act["customer_id"].notna() & (per > max_followups_per_customer)
    if heavy.any():
        book.quarantine(
            "activities",
            heavy,
            "outlier: follow-ups per customer",
            lambda h: (
                "customer "
                + h["customer_id"].astype(str)
                + " has "
                + per[h.index].astype(int).astype(str)
                + f" follow-ups (> {max_followups_per_customer})"
            ),
            "customer_id",
        )

    # 9. missing contact fields: flagged, never invented
    cust = book.tables["customers"]
    for col in ("phone", "email"):
        book.note(
            "missing contact field",
            "customers",
            col,
            int(cust[col].isna().sum()),
            "flagged, kept as missing",
            "never filled in",
        )

    # 10. phone and e-mail formats normalised in the kept rows
    for col, fn in (("phone", normalise_phone), ("email", normalise_email)):
        for tname in ("customers", "leads"):
            df = book.tables[tname]
            src = df[col] if col in df else None
            if src is None:
                continue
            new = fn(src)
            changed = src.notna() & (new.astype(object) != src.astype(object))
            if changed.any():
                df = df.copy()
                df[col] = new
                book.tables[tname] = df
                book.note(
                    f"{col} format",
                    tname,
                    col,
                    int(changed.sum()),
                    "normalised",
                    "digits only, +86 removed" if col == "phone" else "trimmed, lower case",
                )

    quarantine = (
        pd.concat(book.quarantined, ignore_index=True) if book.quarantined else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    recon = reconcile_rows(book.rows_in, book.tables, quarantine)
    if not recon["balanced"].all():
        bad = recon[~recon["balanced"]]
        raise DataError(f"cleaning lost rows: {bad.to_dict('records')}")
    log = pd.DataFrame(book.log, columns=LOG_COLUMNS)
    kept = {k: v.reset_index(drop=True) for k, v in book.tables.items()}
    check_clean(kept)  # what the analyses read passes its schema, or the run stops here naming why
    return Cleaned(kept, log, quarantine, merges, recon)


def reconcile_rows(rows_in: dict[str, int], kept: dict[str, pd.DataFrame], quarantine: pd.DataFrame) -> pd.DataFrame:
    """Return, per table, rows in, kept and quarantined, and whether they add up."""
    q = quarantine.groupby("table").size() if len(quarantine) else pd.Series(dtype=int)
    rows = []
    for t, n in rows_in.items():
        k, qn = len(kept[t]), int(q.get(t, 0))
        rows.append({"table": t, "rows_in": n, "rows_kept": k, "rows_quarantined": qn, "balanced": n == k + qn})
    return pd.DataFrame(rows)
