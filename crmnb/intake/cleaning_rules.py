"""The cleaning rules, in the order they run: one small function each, registered with what it counts.

A rule reads the tables from the :class:`~crmnb.intake.ledger.Ledger` and changes them only through
it (a log line, a changed copy, rows moved to the quarantine), so nothing is lost unaccounted. Its
words are the catalogue's ``cleaning.<name>.*`` messages (crmnb/present/catalogue/cleaning.yaml).
A new rule is one function under ``@register(...)``; its place in this file is its place in
the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from crmnb.frames import isin
from crmnb.intake import clean_engine as engine
from crmnb.intake.duplicates import find_duplicate_customers, normalise_email, normalise_phone
from crmnb.intake.ledger import Ledger, text
from crmnb.intake.protect import KEY_COLUMNS, REWRITTEN_COLUMNS
from crmnb.intake.rule_queries import (
    bound_failures,
    bounds_on_file,
    contact_sharers,
    counts_on_file,
    ids_table,
    in_turn,
    on_file,
)
from crmnb.intake.schema import ROW, TABLES
from crmnb.registry import Registry


@dataclass(frozen=True)
class Given:
    """What the rules read besides the tables: intake's findings, the moment of the run, the limits."""

    issues: pd.DataFrame  # table, row, column, value, problem: values intake could not read
    formats: pd.DataFrame | None  # table, column, format, rows: how the dates were written
    as_of: pd.Timestamp  # a date after this moment is in the future
    max_followups_per_customer: int


@dataclass(frozen=True)
class Rule:
    """One cleaning rule: its name (the key of its words), what its log lines count, and its function.

    A rule ``per_table`` runs as ``apply(ledger, given, table)`` once per canonical table, the
    other rules as ``apply(ledger, given)`` once.
    """

    name: str
    counts: str
    apply: Callable[..., None]
    per_table: bool = False


RULES: Registry[Rule] = Registry("cleaning rule")
"""The cleaning rules, in the order they run."""


def register(name: str, counts: str, per_table: bool = False) -> Callable:
    """Return a decorator that registers a cleaning rule function under ``name``, after the rules before it."""

    def add(fn: Callable[..., None]) -> Callable[..., None]:
        RULES.add(name, Rule(name, counts, fn, per_table))
        return fn

    return add


def example(value: object) -> str:
    """Return 'e.g. <value>' for a log line that stands for many rows."""
    return text("example", example=value)


# --------------------------------------------------------------------------- what intake found
@register("date_format", counts="rows whose dates were written in another format")
def date_formats(book: Ledger, given: Given) -> None:
    """Log the date columns intake read from a format other than plain ISO, and what it dropped."""
    if given.formats is None or not len(given.formats):
        return
    for (table, col), grp in given.formats.groupby(["table", "column"], sort=False):
        other = grp[
            ~grp["format"].str.startswith("YYYY-MM-DD") | grp["format"].str.contains("±zone|.fraction", regex=True)
        ]
        for _, r in other.iterrows():
            written, _, zone = r["format"].partition(" → ")  # a zone converted to the case's
            detail = text("date_format.detail", format=written)
            if "±zone" in written:
                detail += text("date_format.zone_converted", zone=zone) if zone else text("date_format.zone_dropped")
            if ".fraction" in r["format"]:
                detail += text("date_format.fraction_dropped")
            book.note(text("date_format.rule"), table, col, r["rows"], text("date_format.action"), detail)


@register("unreadable_value", counts="rows with a value intake could not read")
def unreadable_values(book: Ledger, given: Given) -> None:
    """Quarantine rows whose required value was unreadable; flag an unreadable optional value."""
    for table, grp in given.issues.groupby("table", sort=False):
        spec = TABLES[table]
        src = book.on_file(table)
        if src:  # the rows intake named, found by DuckDB on the file: the table is not read
            named = pa.table({ROW: pa.array(grp["row"].astype("int64").unique(), pa.int64())})
            df = on_file(
                book,
                table,
                [ROW, spec.key],
                f"SELECT v.* FROM v SEMI JOIN named n ON v.{ROW} = n.{ROW}",
                {"named": named},
            )
        else:
            df = book.tables[table]  # as the table was before this rule, for every column
        moved = pd.Index([])
        for (col, problem), g in grp.groupby(["column", "problem"], sort=False):
            mask = df[ROW].isin(set(g["row"].astype(int)))
            if col in spec.required:
                vals = dict(zip(g["row"].astype(int), g["value"]))
                reasons = lambda h, p=problem, c=col, v=vals: h[ROW].map(
                    lambda r: text("unreadable_value.reason", problem=p, column=c, value=v.get(r))
                )
                if src:
                    hit = df[mask & ~df.index.isin(moved)]  # each row once, by the first column that moves it
                    moved = moved.union(hit.index)
                    book.quarantine_at(table, hit, problem, reasons, col)
                else:
                    book.quarantine(table, mask, problem, reasons, col)
            else:
                first = repr(g["value"].iloc[0])
                book.note(problem, table, col, int(mask.sum()), text("set_missing"), example(first))


@register("out_of_bounds", counts="rows with a negative amount or a score out of its range")
def out_of_bounds(book: Ledger, given: Given) -> None:
    """Quarantine rows whose required value the schema rules out; set an optional one to missing."""
    for table, spec in TABLES.items():
        if not spec.bounds or not book.kept_rows(table):
            continue
        src = book.on_file(table)
        found = bounds_on_file(book, table) if src else bound_failures(book.tables[table], table)
        moved = pd.Index([])
        for (col, kind), g in found.groupby(["column", "kind"], sort=False):
            vals = dict(zip(g["row"].astype(int), g["value"]))
            expected = g["expected"].iloc[0]
            reasons = lambda h, c=col, e=expected, v=vals: h[ROW].map(
                lambda r: text("out_of_bounds.reason", column=c, value=v.get(r), expected=e)
            )
            if src:  # the rows still kept: the earlier columns' quarantine has moved some
                at = g.index[~g.index.isin(moved)]
                if col in spec.required:
                    moved = moved.union(at)
                    book.quarantine_at(table, g.loc[at], kind, reasons, col)
                    continue
                n = book.set_missing_at(table, col, at.to_numpy())
            elif col in spec.required:
                book.quarantine(table, book.tables[table][ROW].isin(set(vals)), kind, reasons, col)
                continue
            else:
                n = book.set_missing(table, col, book.tables[table][ROW].isin(set(vals)))
            detail = text("out_of_bounds.detail", value=g["value"].iloc[0], expected=expected)
            book.note(kind, table, col, n, text("set_missing"), detail)


@register("empty_table", counts="none: a table exported with a header and no rows")
def empty_tables(book: Ledger, given: Given) -> None:
    """Log each table whose export has a header and no rows, kept as an empty table."""
    for table, n in book.rows_in.items():
        if n == 0:
            book.record(text("empty_table.rule"), table, "", 0, text("empty_table.action"), text("empty_table.detail"))


# --------------------------------------------------------------------------- row by row, table by table
@register("required_missing", counts="rows with a required value missing", per_table=True)
def required_missing(book: Ledger, given: Given, table: str) -> None:
    """Quarantine rows with a required value missing, column by column."""
    required = list(TABLES[table].required)
    if required and set(required) <= set(book.source.columns(table)) and book.on_file(table):
        found = {c: engine.is_missing(c, book.source.kind(table, c)) for c in required}
        hits = on_file(book, table, [ROW, TABLES[table].key, *required], engine.flagged_sql(found))
        for col, hit in zip(required, in_turn(hits, required)):  # as one rule after another, column by column
            reason = text("required_missing.reason", column=col)
            book.quarantine_at(table, hit, text("required_missing.rule"), reason, col)
        return
    for col in required:
        miss = book.tables[table][col].isna()
        if miss.any():
            book.quarantine(
                table, miss, text("required_missing.rule"), text("required_missing.reason", column=col), col
            )


@register("duplicate_key", counts="rows repeating a key seen in an earlier row", per_table=True)
def duplicate_keys(book: Ledger, given: Given, table: str) -> None:
    """Quarantine every row whose key an earlier row of the table has already."""
    key = TABLES[table].key
    if not key:
        return
    reasons = lambda h: h[key].map(lambda v: text("duplicate_key.reason", column=key, value=v))
    if key in book.source.columns(table) and book.on_file(table):
        if engine.may_repeat(book.on_file(table), key):  # most tables repeat no key: one pass tells
            hit = on_file(book, table, [ROW, key], engine.later_repeats_sql(key))
            book.quarantine_at(table, hit, text("duplicate_key.rule"), reasons, key)
        return
    keys = book.tables[table][key]
    later = engine.later_repeats(keys)  # DuckDB's hash aggregate: pandas' duplicated took 33 s at 100x the demo
    dup = keys.duplicated(keep="first") if later is None else pd.Series(later, index=keys.index)
    book.quarantine(table, dup, text("duplicate_key.rule"), reasons, key)


@register("future_date", counts="rows dated after the moment of the run", per_table=True)
def future_dates(book: Ledger, given: Given, table: str) -> None:
    """Quarantine rows with a date after the moment of the run, column by column."""
    as_of = f"{given.as_of:%Y-%m-%d}"
    dates = list(TABLES[table].dates)
    hits = None
    if dates and set(dates) <= set(book.source.columns(table)) and book.on_file(table):
        found = {c: engine.after(c, given.as_of) for c in dates}
        hits = in_turn(on_file(book, table, [ROW, TABLES[table].key, *dates], engine.flagged_sql(found)), dates)
    for i, col in enumerate(dates):
        reasons = lambda h, c=col: h[c].map(
            lambda d: text("future_date.reason", column=c, date=f"{d:%Y-%m-%d}", as_of=as_of)
        )
        if hits is not None:
            book.quarantine_at(table, hits[i], text("future_date.rule"), reasons, col)
            continue
        fut = book.tables[table][col] > given.as_of
        if fut.any():
            book.quarantine(table, fut, text("future_date.rule"), reasons, col)


# --------------------------------------------------------------------------- across tables
@register("duplicate_customer", counts="duplicate customer records merged; rows re-pointed to the kept one")
def duplicate_customers(book: Ledger, given: Given) -> None:
    """Merge duplicate customers into the earliest record and re-point the other tables' rows to it."""
    sharing = contact_sharers(book)
    merges = find_duplicate_customers(book.tables["customers"] if sharing is None else sharing)
    book.merges = merges
    if not len(merges):
        return
    to = dict(zip(merges["duplicate_id"], merges["kept_id"]))
    how = dict(zip(merges["duplicate_id"], merges["match_on"]))
    rule = text("duplicate_customer.rule")
    reasons = lambda h: h["customer_id"].map(lambda c: text("duplicate_customer.reason", kept=to[c], match_on=how[c]))
    dups = ids_table(list(to))
    if sharing is None:
        book.quarantine("customers", isin(book.tables["customers"]["customer_id"], to), rule, reasons, "customer_id")
    else:
        among = engine.among_sql("customer_id", "dups", True)
        hit = on_file(book, "customers", [ROW, "customer_id"], among, {"dups": dups})
        book.quarantine_at("customers", hit, rule, reasons, "customer_id")
    for table, spec in TABLES.items():
        if table == "customers" or "customer_id" not in spec.columns:
            continue
        if book.on_file(table) and "customer_id" in book.source.columns(table):  # counted by DuckDB on its file
            n = len(
                on_file(book, table, ["customer_id"], engine.among_sql("customer_id", "dups", True), {"dups": dups})
            )
            book.repoint_on_file(table, "customer_id", to, n)
        else:
            n = book.repoint(table, "customer_id", to)
        action, detail = text("duplicate_customer.action"), text("duplicate_customer.detail")
        book.note(rule, table, "customer_id", n, action, detail)


@register("unknown_customer", counts="rows naming a customer that is not in customers")
def unknown_customers(book: Ledger, given: Given) -> None:
    """Quarantine rows that name a customer id the customers table does not have."""
    if book.on_file("customers"):  # the kept ids, as DuckDB reads them, in Arrow
        body = "SELECT _pos, customer_id FROM v WHERE customer_id IS NOT NULL"
        known = on_file(book, "customers", ["customer_id"], body, arrow=True).select(["customer_id"])
    else:  # compared in Arrow, not as a set of Python strings
        known = ids_table(book.tables["customers"]["customer_id"])
    rule = text("unknown_customer.rule")
    reasons = lambda h: h["customer_id"].astype(str).map(lambda c: text("unknown_customer.reason", customer=c))
    for table, spec in TABLES.items():
        if spec.references.get("customer_id") != "customers":
            continue
        if book.on_file(table) and "customer_id" in book.source.columns(table):  # by DuckDB on its file
            cols = [ROW, spec.key, "customer_id"]
            hit = on_file(book, table, cols, engine.among_sql("customer_id", "known", False), {"known": known})
            book.quarantine_at(table, hit, rule, reasons, "customer_id")
            continue
        df = book.tables[table]
        orphan = df["customer_id"].notna() & ~isin(df["customer_id"], known.column(0).to_pandas())
        book.quarantine(table, orphan, rule, reasons, "customer_id")


@register("followup_outlier", counts="follow-ups of customers with more than the limit")
def followup_outliers(book: Ledger, given: Given) -> None:
    """Quarantine the follow-ups of customers with more of them than the case's limit."""
    limit = given.max_followups_per_customer
    rule = text("followup_outlier.rule")
    reasons = lambda h, per: pd.Series(
        [
            text("followup_outlier.reason", customer=c, count=n, limit=limit)
            for c, n in zip(h["customer_id"].astype(str), per[h.index].astype(int).astype(str))
        ],
        index=h.index,
    )
    if book.on_file("activities") and "customer_id" in book.source.columns("activities"):  # by DuckDB on its file
        cols = [ROW, TABLES["activities"].key, "customer_id"]
        hit = on_file(book, "activities", cols, engine.heavy_sql("customer_id", limit))
        book.quarantine_at("activities", hit, rule, lambda h: reasons(h, h["_per"]), "customer_id")
        return
    act = book.tables["activities"]
    per = act.groupby("customer_id")["activity_id"].transform("size")
    heavy = act["customer_id"].notna() & (per > limit)
    if heavy.any():
        book.quarantine("activities", heavy, rule, lambda h: reasons(h, per), "customer_id")


# --------------------------------------------------------------------------- contact fields
@register("missing_contact", counts="customers without a phone number, or without an e-mail")
def missing_contacts(book: Ledger, given: Given) -> None:
    """Flag customers without a phone number or e-mail: never filled in."""
    if book.on_file("customers") and {"phone", "email"} <= set(book.source.columns("customers")):
        missing = counts_on_file(book, "customers", ["phone", "email"], {c: f"{c} IS NULL" for c in ("phone", "email")})
    else:
        missing = {c: int(book.tables["customers"][c].isna().sum()) for c in ("phone", "email")}
    for col in ("phone", "email"):
        rows = missing[col]
        book.note(
            text("missing_contact.rule"),
            "customers",
            col,
            rows,
            text("missing_contact.action"),
            text("missing_contact.detail"),
        )


def columns_read(table: str, have: list[str]) -> list[str]:
    """Return the columns of ``table`` the rules read (of those it ``have``): keys, required values, dates,
    bounded values, customer ids, and the contacts of customers and leads."""
    spec = TABLES[table]
    want = [ROW, spec.key, *spec.required, *spec.dates, *spec.bounds, "customer_id"]
    if table == "customers":
        want += ["phone", "email", *KEY_COLUMNS.values()]
    if table in ("customers", "leads"):
        want += [REWRITTEN_COLUMNS[c] if REWRITTEN_COLUMNS[c] in have else c for c, _ in CONTACT_FORMATS]
    return [c for c in dict.fromkeys(want) if c and c in have]


def columns_read_across(table: str, have: list[str]) -> list[str]:
    """Return the columns of ``table`` the rules after the per-table ones read (of those it ``have``): row and
    key (for the quarantine), customer ids, and the contacts of customers and leads. A rule registered
    after the per-table rules that reads another column adds it here."""
    keep = [ROW, TABLES[table].key, "customer_id"]
    if table == "customers":
        keep += ["created_at", "phone", "email", *KEY_COLUMNS.values()]
    if table in ("customers", "leads"):
        keep += [REWRITTEN_COLUMNS[c] if REWRITTEN_COLUMNS[c] in have else c for c, _ in CONTACT_FORMATS]
    return [c for c in dict.fromkeys(keep) if c and c in have]


CONTACT_FORMATS = (("phone", normalise_phone), ("email", normalise_email))
"""The contact fields written one way in the kept rows, each with the function that writes it so."""


@register("contact_format", counts="kept rows whose phone number or e-mail was written another way")
def contact_formats(book: Ledger, given: Given) -> None:
    """Write phone numbers and e-mail addresses of the kept rows one way, and log how many changed."""
    on_disk = {}  # per table not held: how many kept rows each contact changes in, found on its file first
    for table in (t for t in ("customers", "leads") if book.on_file(t)):
        have = book.source.columns(table)
        flags = [f for f in REWRITTEN_COLUMNS.values() if f in have]  # normalised at intake: intake said which
        on_disk[table] = counts_on_file(book, table, flags, {f: engine.quote(f) for f in flags}) if flags else {}
        for col, normalise in ((c, n) for c, n in CONTACT_FORMATS if REWRITTEN_COLUMNS[c] not in have and c in have):
            written = on_file(book, table, [col], "SELECT * FROM v")[col]
            on_disk[table][col] = changed_values(written, normalise)
    for col, normalise in CONTACT_FORMATS:
        for table in ("customers", "leads"):
            flag = REWRITTEN_COLUMNS[col]
            if table in on_disk:
                if flag not in on_disk[table] and col not in on_disk[table]:
                    continue
                changed = on_disk[table].get(flag, on_disk[table].get(col))
                if flag in on_disk[table]:
                    book.plans[table].drop.append(flag)
                elif changed:
                    book.plans[table].rewrite[col] = normalise
            else:
                df = book.tables[table]
                if col not in df and flag not in df:  # the rules read the flag only, when intake wrote one
                    continue
                if flag in df:
                    changed = int(df[flag].sum())
                    book.drop_column(table, flag)
                else:
                    changed = changed_values(df[col], normalise)
                    if changed:
                        book.rewrite(table, col, normalise)
            if changed:
                rule, detail = text(f"contact_format.{col}.rule"), text(f"contact_format.{col}.detail")
                book.note(rule, table, col, changed, text("contact_format.action"), detail)


def changed_values(written: pd.Series, normalise: Callable[[pd.Series], pd.Series]) -> int:
    """Return how many values of ``written`` ``normalise`` changes (a missing value is none)."""
    return int((written.notna() & (normalise(written).astype(object) != written.astype(object))).sum())
