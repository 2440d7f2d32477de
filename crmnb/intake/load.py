"""Load every canonical table a case names: read, map, take in and check each, never writing to a source."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from crmnb.errors import CrmnbError, DataError
from crmnb.intake.damage import CUT_PROBLEM as CUT_PROBLEM  # named here too, as before
from crmnb.intake.damage import mark_cut
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


ROW_STEPS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {"leads": partial(add_utm, name="leads")}
"""Row-local steps per table, applied to its export's text under canonical names before it is typed, in
both ways a table is taken in: to the whole table, or to each batch of it (:mod:`crmnb.intake.stream`).
A step sees some rows of the table, never necessarily all, and returns those rows in their order (it may
add columns): e.g. campaign parameters parsed out of a landing-page address."""


def row_steps(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Return a table's text (whole, or one batch) with its :data:`ROW_STEPS` applied."""
    step = ROW_STEPS.get(name)
    return frame if step is None else step(frame)


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

    got = intake(row_steps(name, frame), name, loc.label, loc.spec.decimal, timezone)
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


Sink = Callable[[str], tuple[Path, dict]]
"""Where a table taken in in batches is written: its name to its Parquet file and the writer's options."""


class TableStream:
    """Each canonical table of a case taken in, as :func:`iter_tables` yields them.

    Told where to write (:meth:`write_to`), it takes a CSV export in a batch at a time and writes it
    there itself (:mod:`crmnb.intake.stream`); the table it yields then has no rows and ``batches`` > 0.
    """

    def __init__(self, case: Any, progress: Callable[[str], None] | None, errors: dict | None) -> None:
        self.case, self.progress, self.errors = case, progress, errors
        self.sink: Sink | None = None

    def write_to(self, sink: Sink) -> TableStream:
        """Return this stream, writing each table it can take in batches through ``sink``."""
        self.sink = sink
        return self

    def __iter__(self) -> Iterator[tuple[str, Intake]]:
        return _tables(self.case, self.progress, self.errors, self.sink)


def iter_tables(
    case: Any, progress: Callable[[str], None] | None = None, errors: dict[str, CrmnbError] | None = None
) -> TableStream:
    """Return each canonical table of a case as ``(name, intake)``, as soon as it is taken in and validated.

    A caller that writes each table and lets it go holds one table at a time (step 2:
    :func:`crmnb.handoffs.save_intake`, which also has CSV exports written a batch at a time). The
    tables come in the order of :data:`~crmnb.intake.schema.TABLES`, except that leads wait for
    opportunities (:data:`LINKED`) when a mapping may link them. Errors as :func:`load_tables`.
    """
    return TableStream(case, progress, errors)


def _tables(case: Any, progress, errors: dict | None, sink: Sink | None) -> Iterator[tuple[str, Intake]]:
    """Yield the tables of :func:`iter_tables`; with ``sink``, those it can in batches (:func:`take_in_batches`)."""
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
    # export's text is in memory at a time; leads and opportunities wait for each other
    # when a mapping is read, because converted leads can fill the opportunities' lead ids.
    held: dict[str, tuple[pd.DataFrame, Located, Raw]] = {}
    for name in TABLES:
        if sink is not None and in_batches(case, name):
            taken = attempt(name, take_in_batches, case, name, key, sink, progress)
            if taken is not None:
                yield name, taken
            continue
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


def in_batches(case: Any, name: str) -> bool:
    """Return True when a table can be taken in a batch at a time: a CSV read under its own column names
    (for leads and opportunities, both of them: a mapping may link them)."""
    from crmnb.intake import mappings
    from crmnb.intake.stream import streamable

    def one(table: str) -> bool:
        try:
            loc = locate(case.data, table)
            return streamable(loc, mappings.resolve(loc.spec.mapping, table))
        except Exception:  # said when the table is read, as before
            return False

    return all(one(t) for t in LINKED) if name in LINKED else one(name)


def take_in_batches(case: Any, name: str, key: bytes | None, sink: Sink, progress=None) -> Intake:
    """Return one table taken in a batch at a time and written through ``sink``, without its rows; or taken
    in whole and not written (``batches`` 0) when a batch cannot settle what the whole table shows."""
    from crmnb.intake.stream import Whole, take_in_streamed

    loc = locate(case.data, name)
    if progress:
        progress(f"reading {name} from {loc.name}")
    try:
        return take_in_streamed(case, name, loc, key, *sink(name), prepare=row_steps)
    except Whole:
        return take_in_for(case, name, *read_mapped(case.data, name), key)


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
