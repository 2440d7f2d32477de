"""`crmnb validate`: check a case file and all its data without running a notebook."""

from __future__ import annotations

import pandas as pd

from crmnb.intake.checks import SHOW_ROWS
from crmnb.intake.schema import TABLES

UNDATED = ("customers", "campaigns")
"""Tables whose rows may all lie outside the analysis period: customers created earlier, campaigns spanning it."""


def analysis_span(case) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and last moment the analysis reads: from the 'before' window (or the period) to the
    period's last day, both included."""
    start = min(case.period.start, case.windows["before"][0])
    return pd.Timestamp(start), pd.Timestamp(case.period.end) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)


def _unreadable_example(issues: pd.DataFrame | None, col: str) -> str:
    """Return "e.g. '45123' in export rows 2, 3, 4 …" for a date column's unreadable values, or ''."""
    if issues is None or not len(issues) or "column" not in issues:
        return ""
    mine = issues[issues["column"] == col]
    if not len(mine):
        return ""
    rows = ", ".join(map(str, mine["row"].head(SHOW_ROWS))) + (" …" if len(mine) > SHOW_ROWS else "")
    return f", e.g. {mine['value'].iloc[0]!r} in export rows {rows}"


def outside_period(name: str, table: pd.DataFrame, case, issues: pd.DataFrame | None = None) -> str | None:
    """Return why no row of ``table`` falls in the analysis period (what its dates span, how many are
    unreadable), or None when some row does, or it has no rows or dates to judge by."""
    dates = [c for c in TABLES[name].dates if c in table.columns] if name in TABLES else []
    if name in UNDATED or not dates or not len(table):
        return None
    col = dates[0]
    when = pd.to_datetime(table[col], errors="coerce")
    lo, hi = analysis_span(case)
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
        f"table '{name}': none of its {len(table):,} rows falls in the analysis period "
        f"{lo:%Y-%m-%d} – {hi:%Y-%m-%d} ({found}); is the export cut short, or the period wrong?"
    )


# --------------------------------------------------------------------------- crmnb validate
def validate_case(case_file, say=print) -> int:
    """Check a case file and all its data without running a notebook; return 0 when usable, else 1.

    Prints, per table, where it was read from, its rows, and its problems: errors that
    stop a run (a missing file or column, an unknown stage…) and what cleaning will
    do with row-level faults (unreadable values, rows it will quarantine). Exit 1
    means some table cannot be used as it is.
    """
    from crmnb.errors import CaseFileError
    from crmnb.intake.load import load_tables
    from crmnb.intake.sources import locate
    from crmnb.params.files import load_case
    from crmnb.run.records import without_system_lines

    try:
        case = load_case(case_file)
    except CaseFileError as exc:
        say(f"{exc}")
        return 1
    say(f"{case_file}: case file valid ({case.case_id}, {case.title})")
    errors: dict = {}
    intakes = load_tables(case, errors=errors)
    for name, got in intakes.items():
        why = None if name in errors else outside_period(name, got.table, case, got.issues)
        if why:
            errors[name] = why
    width = max(len(t) for t in TABLES)
    for name in TABLES:
        try:
            label = locate(case.data, name).name
        except Exception:  # pragma: no cover - locate only joins paths
            label = "?"
        if name in errors:
            msg = without_system_lines(str(errors[name])).replace("\n", "\n" + " " * (width + 10))
            say(f"  {name:<{width}}  ERROR  {msg}")
            continue
        got = intakes[name]
        how = ", ".join(f"{k} {v!r}" if k == "sep" else f"{k} {v}" for k, v in got.read_as.items() if v)
        line = f"  {name:<{width}}  ok     {len(got.table):>9,} rows from {label}" + (f" ({how})" if how else "")
        say(line)
        for note in got.notes:
            say(f"  {'':<{width}}         note: {note}")
        if len(got.issues):
            per = got.issues.groupby(["column", "problem"]).agg(
                n=("row", "size"), rows=("row", list), value=("value", "first")
            )
            for (col, prob), r in per.iterrows():
                rows = ", ".join(map(str, r["rows"][:SHOW_ROWS])) + (" …" if r["n"] > SHOW_ROWS else "")
                say(
                    f"  {'':<{width}}         {r['n']:,} {prob} in column '{col}' (e.g. {r['value']!r}; "
                    f"export rows {rows})"
                )
    usable = {k: v for k, v in intakes.items() if k not in errors}
    if not errors:
        _preview_cleaning(usable, case, say, width)
    bad = len(errors)
    say(f"{len(TABLES) - bad} of {len(TABLES)} tables usable" + (f"; {bad} with errors" if bad else ""))
    return 1 if bad else 0


def _preview_cleaning(intakes: dict, case, say, width: int) -> None:
    """Say what step 4 will quarantine, per table and rule, without writing anything."""
    from crmnb.intake.cleaning import clean

    issues = pd.concat([g.issues for g in intakes.values()], ignore_index=True)
    formats = pd.concat([g.formats for g in intakes.values()], ignore_index=True)
    try:
        cleaned = clean(
            {k: v.table for k, v in intakes.items()},
            issues,
            formats,
            max_followups_per_customer=case.thresholds.max_followups_per_customer,
        )
    except Exception as exc:  # the CLI never shows a bare traceback
        say(f"  cleaning would stop: {exc}")
        return
    q = cleaned.quarantine
    if not len(q):
        say("  cleaning: no row will be quarantined")
        return
    say("  cleaning (step 4) will quarantine, with their original values kept:")
    for (table, rule), g in q.groupby(["table", "rule"], sort=False):
        rows = ", ".join(map(str, g["row"].head(SHOW_ROWS))) + (" …" if len(g) > SHOW_ROWS else "")
        say(f"    {table:<{width}}  {len(g):>6,} {rule} (export rows {rows}; e.g. {g['reason'].iloc[0]})")
