"""`crmnb validate`: check a case file and all its data without running a notebook."""

from __future__ import annotations

import pandas as pd

from crmnb.intake.checks import SHOW_ROWS
from crmnb.intake.schema import TABLES


# --------------------------------------------------------------------------- crmnb validate
def validate_case(case_file, say=print) -> int:
    """Check a case file and all its data without running a notebook; return 0 when usable, else 1.

    Prints, per table, where it was read from, its rows, and its problems: errors that
    stop a run (a missing file or column, an unknown stage…) and what cleaning will
    do with row-level faults (unreadable values, rows it will quarantine). Exit 1
    means some table cannot be used as it is.
    """
    from crmnb.analysis.owners import action_owners
    from crmnb.errors import CaseFileError
    from crmnb.intake.load import load_tables
    from crmnb.intake.sources import locate
    from crmnb.params.files import load_case
    from crmnb.run.records import without_system_lines

    try:
        case = load_case(case_file)
        action_owners(case)
    except CaseFileError as exc:
        say(f"{exc}")
        return 1
    say(f"{case_file}: case file valid ({case.case_id}, {case.title})")
    errors: dict = {}
    intakes = load_tables(case, errors=errors)  # a table with no row in the period is an error there
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
    stops = _preview_cleaning(usable, case, say, width) if not errors else None
    bad = len(errors)
    say(f"{len(TABLES) - bad} of {len(TABLES)} tables usable" + (f"; {bad} with errors" if bad else ""))
    if stops:
        say(f"the run would stop in step 4: {stops}")
    return 1 if bad or stops else 0


def _preview_cleaning(intakes: dict, case, say, width: int) -> str | None:
    """Say what step 4 will quarantine, per table and rule, without writing anything; return why step 4
    would stop (cleaning leaves a table no row in the period), or None."""
    from crmnb.errors import DataError
    from crmnb.intake.cleaning import clean
    from crmnb.intake.period import check_kept_in_period

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
        return str(exc)
    q = cleaned.quarantine
    if not len(q):
        say("  cleaning: no row will be quarantined")
    else:
        say("  cleaning (step 4) will quarantine, with their original values kept:")
    for (table, rule), g in q.groupby(["table", "rule"], sort=False) if len(q) else ():
        rows = ", ".join(map(str, g["row"].head(SHOW_ROWS))) + (" …" if len(g) > SHOW_ROWS else "")
        say(f"    {table:<{width}}  {len(g):>6,} {rule} (export rows {rows}; e.g. {g['reason'].iloc[0]})")
    try:
        check_kept_in_period(cleaned.tables, q, case)
    except DataError as exc:
        return str(exc)
    return None
