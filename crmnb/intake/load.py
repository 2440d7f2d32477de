"""Load every canonical table a case names: read, map, take in and check each, never writing to a source."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from crmnb.errors import CrmnbError, DataError
from crmnb.intake.read import Raw, _is_sqlite, read, resolve_url
from crmnb.intake.schema import TABLES
from crmnb.intake.sources import Located, locate
from crmnb.intake.utm import add_utm

if TYPE_CHECKING:
    from crmnb.intake.parse import Intake


# --------------------------------------------------------------------------- loading a case's tables
def expected_columns(table: str, mapping) -> list[str]:
    """Return the export columns a table's source should have."""
    return mapping.expected_columns() if mapping is not None else list(TABLES[table].columns)


def read_mapped(data: Any, table: str, base: Path | None = None) -> tuple[pd.DataFrame, Located, Raw]:
    """Read one table's source and apply its mapping; return canonical-named text columns."""
    from crmnb.intake import mappings

    loc = locate(data, table)
    if loc.kind == "sql":
        loc = Located(loc.table, loc.kind, loc.spec, url=resolve_url(loc.url, base or Path(data.dir)), key=loc.key)
    mapping = mappings.resolve(loc.spec.mapping, table)
    raw = read(loc, expected_columns(table, mapping))
    if (
        loc.kind == "sql"
        and loc.spec.sql.table is not None
        and loc.spec.sql.order_by is None
        and not _is_sqlite(loc.url)
    ):  # SQLite: rowid order, the order the rows were loaded in
        raw.frame, notes = _in_key_order(raw.frame, table, mapping)
        raw.notes.extend(notes)
    frame = raw.frame
    if mapping is not None:
        frame = mapping.apply(frame, loc.label)
    return frame, loc, raw


def _in_key_order(df: pd.DataFrame, table: str, mapping) -> tuple[pd.DataFrame, list[str]]:
    """Return a database table's rows in a fixed order: a database returns a table's rows in no
    particular order, and row numbers must mean the same row every time.

    The order is the table's key (its export column, under a mapping), else all columns
    from the left; ``order_by`` in the case file sets another.
    """
    key = TABLES[table].key
    cands = (mapping.columns.get(key, ()) if mapping is not None else (key,)) if key else ()
    by = [c for c in cands if c in df.columns][:1] or list(df.columns)
    if not len(df) or not by:
        return df, []
    out = df.sort_values(by, kind="stable", na_position="last", key=lambda s: s.astype("string"))
    return out.reset_index(drop=True), [
        f"rows numbered in the order of {', '.join(by[:3])}"
        + (" …" if len(by) > 3 else "")
        + " (set order_by to choose)"
    ]


def take_in(
    name: str,
    frame: pd.DataFrame,
    loc: Located,
    raw: Raw,
    timezone: str | None = None,
    contact_key: bytes | None = None,
) -> Intake:
    """Return one table's export taken in (typed) and validated, with where and how it was read.

    Times written with a zone are converted to ``timezone`` (the case's; default Asia/Shanghai).
    With ``contact_key``, phones and e-mails are kept only as keyed hashes and masked forms, and
    notes masked (:mod:`crmnb.intake.protect`): what the hand-offs hold when the case masks personal data.

    Raises :class:`DataError` when a table the analysis cannot do without has no rows.
    """
    from crmnb.intake.checks import check_intake
    from crmnb.intake.parse import intake

    got = intake(frame, name, loc.label, loc.spec.decimal, timezone)
    add_utm(got.table, name)  # row-local: UTM source, medium and campaign from landing URLs
    if not len(got.table):
        if not TABLES[name].may_be_empty:
            raise DataError(
                f"{loc.label} (table '{name}'): the export has a header but no rows; "
                f"the analysis cannot do without {name}"
            )
        got.notes.append("the export has a header but no rows: an empty table")
    got.source = loc.label
    got.read_as = {"encoding": "utf-8" if raw.encoding == "utf-8-sig" else raw.encoding, "sep": raw.sep}
    got.notes.extend(raw.notes)
    if raw.cut is not None and len(got.table):
        mark_cut(got, frame, name, raw.cut)
    if contact_key is not None:
        from crmnb.intake.protect import protect

        protect(got, contact_key)
    got.validation = check_intake(got.table, name, loc.label)
    return got


def take_in_for(case: Any, name: str, frame: pd.DataFrame, loc: Located, raw: Raw, key: bytes | None) -> Intake:
    """Return one table of ``case`` taken in, or raise :class:`DataError` when none of its rows falls in the
    case's analysis period (an export cut short, dates that could not be read)."""
    from crmnb.intake.period import check_in_period

    got = take_in(name, frame, loc, raw, getattr(case, "timezone", None), key)
    check_in_period(name, got.table, case, got.issues, loc.label)
    return got


def mark_cut(got: Intake, frame: pd.DataFrame, name: str, why: str) -> None:
    """List the last row of a file cut short as unreadable, so cleaning quarantines it with a log line."""
    from crmnb.intake.parse import ISSUE_COLUMNS

    spec = TABLES[name]
    row = len(got.table)
    present = [c for c in frame.columns if c in spec.required and pd.notna(frame[c].iloc[-1])]
    col = present[-1] if present else spec.required[0]
    value = frame[col].iloc[-1] if col in frame.columns else None
    issue = pd.DataFrame(
        [{"table": name, "row": row, "column": col, "value": str(value), "problem": CUT_PROBLEM}],
        columns=ISSUE_COLUMNS,
    )
    others = got.issues[got.issues["row"] != row] if len(got.issues) else got.issues
    got.issues = pd.concat([others, issue], ignore_index=True) if len(others) else issue
    got.notes.append(f"the file looks truncated: {why}; its last row (export row {row:,}) is quarantined")


CUT_PROBLEM = "file looks truncated (last row cut short)"
"""The problem, and the quarantine's rule, of the last row of a file that looks cut in the middle."""


def load_tables(
    case: Any, progress: Callable[[str], None] | None = None, errors: dict[str, CrmnbError] | None = None
) -> dict:
    """Read, map, take in and validate every canonical table of a case; never writes to a source.

    Every table is held in memory; :func:`iter_tables` gives them one at a time. Raises the
    first :class:`DataError` (naming the table and source), or, when ``errors`` is given,
    collects each table's error there and goes on.
    """
    out = dict(iter_tables(case, progress, errors))
    return {name: out[name] for name in TABLES if name in out}


def iter_tables(
    case: Any, progress: Callable[[str], None] | None = None, errors: dict[str, CrmnbError] | None = None
) -> Iterator[tuple[str, Intake]]:
    """Yield each canonical table of a case as ``(name, intake)`` as soon as it is taken in and validated.

    A caller that writes each table and lets it go holds one table at a time (step 2:
    :func:`crmnb.handoffs.save_intake`). The tables come in the order of
    :data:`~crmnb.intake.schema.TABLES`, except that leads wait for opportunities (:data:`LINKED`).
    Errors as :func:`load_tables`.
    """
    key = None
    if getattr(case, "mask_pii", True):
        from crmnb.intake.protect import contact_key

        key = contact_key(str(getattr(case, "case_id", "")))

    def attempt(name: str, step: Callable, *args: Any) -> Any:
        try:
            return step(*args)
        except Exception as exc:
            if errors is None:
                raise
            errors[name] = as_data_error(exc, name)
            return None

    # Each table is taken in as soon as it is read and its text dropped, so that only one
    # export's text is in memory at a time; leads and opportunities wait for each other,
    # because converted leads can fill the opportunities' lead ids.
    held: dict[str, tuple[pd.DataFrame, Located, Raw]] = {}
    for name in TABLES:
        read_got = attempt(name, read_one, case, name, progress)
        if name in LINKED:
            if read_got is not None:
                held[name] = read_got
            if name != LINKED[-1]:
                continue
            ready = take_linked(held)
        else:
            ready = [(name, read_got)] if read_got is not None else []
        del read_got
        while ready:
            table, got = ready.pop(0)
            taken = attempt(table, take_in_for, case, table, *got, key)
            del got
            if taken is not None:
                yield table, taken
            del taken
    if errors is not None:  # in the order of the tables, as they were read before
        found = dict(errors)
        errors.clear()
        errors.update({k: found[k] for k in sorted(found, key=list(TABLES).index)})


def read_one(case: Any, name: str, progress: Callable[[str], None] | None = None) -> tuple[pd.DataFrame, Located, Raw]:
    """Return one table of a case read and mapped, saying so to ``progress`` first."""
    loc = locate(case.data, name)
    if progress:
        progress(f"reading {name} from {loc.name}")
    return read_mapped(case.data, name)


LINKED = ("leads", "opportunities")
"""Tables taken in together: a lead's converted-opportunity id can fill an opportunity's lead id."""


def take_linked(held: dict) -> list[tuple[str, tuple[pd.DataFrame, Located, Raw]]]:
    """Fill the opportunities' lead ids from the converted leads; return the tables held, to be taken in."""
    from crmnb.intake.mappings import link_converted_leads

    if not held:
        return []
    link_converted_leads({k: v[0] for k, v in held.items()})
    return [(name, held.pop(name)) for name in list(held)]


def as_data_error(exc: Exception, table: str) -> CrmnbError:
    """Return a crmnb error as it is, anything else as a DataError naming the table (no bare traceback)."""
    if isinstance(exc, CrmnbError):
        return exc
    return DataError(f"table '{table}': unexpected {type(exc).__name__}: {exc}")
