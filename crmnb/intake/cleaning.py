"""Cleaning that loses nothing: every row dropped or changed is in the log or the quarantine.

The rules are :data:`crmnb.intake.cleaning_rules.RULES`, run in order; for every table,
rows in = rows kept + rows quarantined after each of them, and :func:`clean` checks it.
The rules read only the columns they need and note what they drop or change as side tables;
each cleaned table is built from its intake table once, when it is used or written
(:mod:`crmnb.intake.clean_tables`), and checked against its schema then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby

import pandas as pd
import pyarrow as pa

from crmnb.errors import DataError
from crmnb.intake.clean_tables import CleanTables, Table
from crmnb.intake.cleaning_rules import RULES, Given, Rule, columns_read, columns_read_across
from crmnb.intake.ledger import Ledger
from crmnb.intake.parse import ISSUE_COLUMNS
from crmnb.intake.schema import TABLES


@dataclass
class Cleaned:
    """The result of cleaning: tables to analyse and the account of what was done."""

    tables: CleanTables  # each table built (and checked) when first used, or read back once written
    log: pd.DataFrame  # rule, table, column, rows, action, detail
    quarantine: pd.DataFrame  # table, row, key, rule, reason, record (the original values as JSON)
    merges: pd.DataFrame  # duplicate_id, kept_id, match_on, duplicate_row
    reconciliation: pd.DataFrame  # table, rows_in, rows_kept, rows_quarantined, balanced


def run_rules(book: Ledger, given: Given, rules: list[Rule] | None = None) -> None:
    """Apply the cleaning rules in order, checking after each that no row went unaccounted.

    Consecutive rules that check one table at a time run table by table, so that a table's
    log lines and quarantined rows stay together; after them, the ledger keeps of the table
    only what the later rules read.
    """
    for per_table, run in groupby(RULES if rules is None else rules, key=lambda r: r.per_table):
        run = list(run)
        for table in TABLES if per_table else [None]:
            for rule in run:
                args = (book, given, table) if per_table else (book, given)
                rule.apply(*args)
                book.check_balanced(rule.name)
                pa.default_memory_pool().release_unused()  # what a rule read goes back to the system
            if per_table:
                book.narrow(table)  # what the rules across tables do not read is not kept


def clean(
    tables: Mapping[str, Table],
    issues: pd.DataFrame | None = None,
    formats: pd.DataFrame | None = None,
    as_of: pd.Timestamp | None = None,
    max_followups_per_customer: int = 100,
) -> Cleaned:
    """Clean the intake tables: dates, unreadable values, duplicates, orphans, outliers, missing contacts.

    ``tables`` are the intake tables, as frames or as the paths of their Parquet hand-offs
    (:func:`crmnb.intake.clean_tables.intake_files`). ``issues`` and ``formats`` come from intake; ``as_of`` is the moment after which a
    date is in the future (default: now). Rows are never invented or silently dropped:
    they stay, change with a log line, or move to the quarantine with a reason.
    """
    given = Given(
        issues=issues if issues is not None else pd.DataFrame(columns=ISSUE_COLUMNS),
        formats=formats,
        as_of=pd.Timestamp.now() if as_of is None else pd.Timestamp(as_of),
        max_followups_per_customer=max_followups_per_customer,
    )
    book = Ledger(tables, columns_read, columns_read_across)
    run_rules(book, given)
    quarantine = book.quarantine_frame()
    recon = reconcile_rows(book.rows_in, {t: book.kept_rows(t) for t in book.rows_in}, quarantine)
    if not recon["balanced"].all():
        bad = recon[~recon["balanced"]]
        raise DataError(f"cleaning lost rows: {bad.to_dict('records')}")
    kept = CleanTables(book.source, book.final_plans())
    return Cleaned(kept, book.log_frame(), quarantine, book.merges, recon)


def reconcile_rows(
    rows_in: dict[str, int], kept: Mapping[str, pd.DataFrame | int], quarantine: pd.DataFrame
) -> pd.DataFrame:
    """Return, per table, rows in, kept (the kept rows, or their number) and quarantined, and whether they add up."""
    q = quarantine.groupby("table").size() if len(quarantine) else pd.Series(dtype=int)
    rows = []
    for t, n in rows_in.items():
        k, qn = kept[t] if isinstance(kept[t], int) else len(kept[t]), int(q.get(t, 0))
        rows.append({"table": t, "rows_in": n, "rows_kept": k, "rows_quarantined": qn, "balanced": n == k + qn})
    return pd.DataFrame(rows)
