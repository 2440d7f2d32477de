"""The cleaning ledger: the tables being cleaned, the log of what changed, the rows moved to the quarantine.

Every cleaning rule changes the tables only through a :class:`Ledger`, so every row dropped or
changed is in the log or the quarantine; :meth:`Ledger.check_balanced` is the one check every rule
passes (rows in = rows kept + rows quarantined, per table).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from crmnb.errors import DataError
from crmnb.frames import isin
from crmnb.intake.clean_tables import Plan, Source, Table
from crmnb.intake.schema import ROW, TABLES
from crmnb.present.words import t

LOG_COLUMNS = ["rule", "table", "column", "rows", "action", "detail"]
QUARANTINE_COLUMNS = ["table", "row", "key", "rule", "reason", "record"]
MERGE_COLUMNS = ["duplicate_id", "kept_id", "match_on", "duplicate_row"]

LOG_LANGUAGE = "en"
"""The language of the cleaning log and the quarantine's reasons.

The log is written in English in both report languages today, the Chinese report included; the
catalogue already holds the Chinese text of every ``cleaning.*`` message, so that the log can follow
the report's language in a later change by passing that language here instead.
"""


def text(key: str, **values: object) -> str:
    """Return the cleaning message ``cleaning.<key>`` in the log's language, its placeholders filled."""
    return t(f"cleaning.{key}", LOG_LANGUAGE, **values)


def plain(v: object) -> object:
    """Return a value as JSON can write it: missing as None, timestamps as text, numpy numbers as Python's."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat(sep=" ")
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


Columns = Callable[[str, list[str]], list[str]]
"""Which of a table's columns (the second argument) to read or keep."""


KEEP_HELD = frozenset({"customers"})
"""The table kept in memory throughout once a rule has read it: the rules across tables read it while they go
through the others. From hand-offs no rule reads it (crmnb.intake.rule_queries): this is for tables given as
frames."""


class Working(dict):
    """The working frames of the tables, each read from the source when a rule first uses it.

    Besides :data:`KEEP_HELD`, one table is held at a time: reading another first hands the one held
    to ``evict``, which keeps of it only the positions of the rows removed, so that the rules never hold
    more than one large table (at 100x the demo the twelve held together took 4 GB).
    """

    def __init__(
        self, read: Callable[[str], pd.DataFrame], names: list[str], evict: Callable[[str], None] | None = None
    ):
        super().__init__()
        self._read, self._names, self._evict = read, set(names), evict
        self.evicts = evict is not None

    def __missing__(self, table: str) -> pd.DataFrame:
        if table not in self._names:
            raise KeyError(table)
        if self._evict is not None:
            for other in [t for t in self if t not in KEEP_HELD]:
                self._evict(other)
        self[table] = frame = self._read(table)
        return frame


class Ledger:
    """Collects log lines, quarantined rows and each table's plan (:class:`~crmnb.intake.clean_tables.Plan`) while
    cleaning.

    ``tables`` holds, per table, the columns the rules read (all of them unless ``columns`` chooses),
    indexed by row position; rules remove rows from it only through :meth:`quarantine` and change values
    only through the methods that also note the change in the table's plan, so that building the
    cleaned table from its intake table gives the rows and values the rules saw.
    """

    def __init__(
        self,
        tables: Mapping[str, Table] | Source,
        columns: Columns | None = None,
        later: Columns | None = None,
    ):
        self.source = tables if isinstance(tables, Source) else Source(tables)
        names = self.source.names
        self._columns, self._later = columns, later
        self.tables = Working(self._read, names, self._evict if self.source.files_only else None)
        self._dropped: dict[str, np.ndarray] = {}  # the row positions removed of a table not held (Working)
        self._narrowed: set[str] = set()
        self.rows_in = {k: self.source.rows(k) for k in names}
        self.rows_quarantined = dict.fromkeys(names, 0)
        self.log: list[dict] = []
        self.quarantined: list[dict] = []
        self.merges = pd.DataFrame(columns=MERGE_COLUMNS)
        self.plans = {k: Plan() for k in names}

    def _read(self, table: str) -> pd.DataFrame:
        have = self.source.columns(table)
        chosen = self._later if table in self._narrowed else self._columns
        df = self.source.read(table, chosen(table, have) if chosen else have)
        if table not in self._dropped or not len(df):
            self._dropped.pop(table, None)
            return df
        plan = self.plans[table]  # read again: as the rules left it
        gone = self._dropped.pop(table)
        return Plan(None, plan.missing, plan.repoint, list(plan.drop), plan.rewrite, dropped=gone).apply(df)

    def _evict(self, table: str) -> None:
        """Stop holding ``table``, keeping only the positions of the rows removed (read again as they were when
        used)."""
        kept = self.tables.pop(table).index.to_numpy()
        self._dropped[table] = np.setdiff1d(np.arange(self.rows_in[table]), kept)

    def narrow(self, table: str) -> None:
        """Keep of ``table`` only the columns the rules after the per-table ones read (``later``), if chosen."""
        if self._later is not None and table in self.tables:
            df = self.tables[table]
            self.tables[table] = df[self._later(table, list(df.columns))]
        self._narrowed.add(table)
        if self.tables.evicts and table in self.tables and table not in KEEP_HELD:
            self._evict(table)  # until a rule across tables reads it

    def kept_rows(self, table: str) -> int:
        """Return how many rows of ``table`` are kept so far."""
        if table in self.tables:
            return len(self.tables[table])
        if table in self._dropped:
            return self.rows_in[table] - len(self._dropped[table])
        return self.rows_in[table] - self.rows_quarantined[table]  # unread: untouched

    def record(self, rule: str, table: str, column: str, rows: int, action: str, detail: str = "") -> None:
        """Add a line to the log, whatever its count of rows."""
        self.log.append(
            {"rule": rule, "table": table, "column": column, "rows": int(rows), "action": action, "detail": detail}
        )

    def note(self, rule: str, table: str, column: str, rows: int, action: str, detail: str = "") -> None:
        """Add a line to the log when it concerns any row."""
        if rows:
            self.record(rule, table, column, rows, action, detail)

    def set_missing(self, table: str, column: str, mask: pd.Series) -> int:
        """Set ``column`` to missing in the rows under ``mask``; return how many rows that is."""
        df = self.tables[table]
        mask = mask.reindex(df.index, fill_value=False).astype(bool)
        plan = self.plans[table]
        hit = df.index[mask.to_numpy()].to_numpy()
        before = plan.missing.get(column, hit[:0])
        plan.missing[column] = np.union1d(before, hit)
        df = df.copy()
        df.loc[mask, column] = np.nan
        self.tables[table] = df
        return len(hit)

    def set_missing_at(self, table: str, column: str, positions: np.ndarray) -> int:
        """Set ``column`` to missing in the kept rows at ``positions`` of a table not held, as :meth:`set_missing`
        does in a table held; return how many rows that is."""
        plan = self.plans[table]
        plan.missing[column] = np.union1d(plan.missing.get(column, positions[:0]), positions)
        return len(positions)

    def repoint(self, table: str, column: str, to: dict) -> int:
        """Replace the ids of ``column`` that ``to`` maps by the ids they map to; return the rows changed."""
        df = self.tables[table]
        hit = isin(df[column], to)
        n = int(hit.sum())
        if n:
            df = df.copy()
            df.loc[hit, column] = df.loc[hit, column].map(to)
            self.tables[table] = df
            self.plans[table].repoint[column] = {**self.plans[table].repoint.get(column, {}), **to}
        return n

    def repoint_on_file(self, table: str, column: str, to: dict, rows: int) -> None:
        """Note that the ids of ``column`` that ``to`` maps, in ``rows`` kept rows of a table not held, are
        re-pointed to the ids they map to (as :meth:`repoint` does to a table held)."""
        if rows:
            self.plans[table].repoint[column] = {**self.plans[table].repoint.get(column, {}), **to}

    def drop_column(self, table: str, column: str) -> None:
        """Leave ``column`` out of the cleaned table."""
        self.tables[table] = self.tables[table].drop(columns=column)
        self.plans[table].drop.append(column)

    def rewrite(self, table: str, column: str, fn: Callable[[pd.Series], pd.Series]) -> None:
        """Write ``column`` of the cleaned table as ``fn`` gives it, row by row."""
        self.tables[table] = self.tables[table].assign(**{column: fn(self.tables[table][column])})
        self.plans[table].rewrite[column] = fn

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
        self._move(table, df[mask], rule, reasons, column)
        self.tables[table] = df[~mask]

    def on_file(self, table: str) -> Path | None:
        """Return the Parquet file of ``table`` when the rules may query it there (a table not held, its rows
        only removed, values set to missing and ids re-pointed so far), else None: the rules read
        ``tables[table]``."""
        plan = self.plans[table]  # ids re-pointed are re-pointed in the query too (clean_engine.kept_rows)
        if self.tables.evicts and table not in self.tables and not (plan.drop or plan.rewrite):
            return self.source.file(table)
        return None

    def dropped_positions(self, table: str) -> np.ndarray | None:
        """Return the positions of the rows of ``table`` removed so far, ascending, when it is not held (None:
        none)."""
        return self._dropped.get(table)

    def quarantine_at(
        self, table: str, hit: pd.DataFrame, rule: str, reasons: Callable[[pd.DataFrame], pd.Series] | str, column=""
    ) -> None:
        """Move the kept rows ``hit`` (indexed by position, with the row number, key and what ``reasons`` reads)
        of a table not held to the quarantine, as :meth:`quarantine` does."""
        if not len(hit):
            return
        gone = self._dropped.get(table)
        gone = hit.index.to_numpy()[:0] if gone is None else gone
        self._dropped[table] = np.union1d(gone, hit.index.to_numpy().astype(np.int64))
        self._move(table, hit, rule, reasons, column)

    def _move(
        self, table: str, hit: pd.DataFrame, rule: str, reasons: Callable[[pd.DataFrame], pd.Series] | str, column
    ) -> None:
        """Note the rows ``hit`` as quarantined, with their reasons, and log the rule's line."""
        n = len(hit)
        key = TABLES[table].key
        reason = pd.Series(reasons, index=hit.index) if isinstance(reasons, str) else reasons(hit)
        self.quarantined.append(
            {
                "table": table,
                "positions": hit.index.to_numpy(),  # the record (values as taken in) is read at the end
                "row": hit[ROW].to_numpy(),
                "key": hit[key].astype(str).to_numpy() if key else "",
                "rule": rule,
                "reason": reason.astype(str).to_numpy(),
            }
        )
        self.rows_quarantined[table] += n
        first = reason.iloc[0]
        self.note(rule, table, column, n, text("quarantined"), first if n == 1 else text("example", example=first))

    def check_balanced(self, rule: str) -> None:
        """Raise DataError naming ``rule`` if, after it, a table's rows in are not kept + quarantined."""
        for table, n in self.rows_in.items():
            moved = self.rows_quarantined[table]
            kept = self.kept_rows(table)
            if n != kept + moved:
                raise DataError(
                    f"cleaning rule {rule!r} lost rows of table '{table}': {n} in, {kept} kept, {moved} quarantined"
                )

    def final_plans(self) -> dict[str, Plan]:
        """Return each table's plan with the rows kept after every rule (for a table not held, those removed)."""
        for table in self.rows_in:
            plan, gone = self.plans[table], self._dropped.get(table)
            plan.dropped = gone if gone is not None and len(gone) else None
            kept = self.tables[table].index if table in self.tables else None
            if kept is not None:  # in order already unless a rule reordered rows: sorting took 9 s at 100x
                kept = kept.to_numpy() if kept.is_monotonic_increasing else np.sort(kept.to_numpy())
            plan.kept = None if kept is None or len(kept) == self.rows_in[table] else kept
        return self.plans

    def _records(self) -> dict[str, dict[int, str]]:
        """Return, per table, the quarantined rows' values as taken in, as JSON, by row position."""
        wanted: dict[str, list[np.ndarray]] = {}
        for q in self.quarantined:
            wanted.setdefault(q["table"], []).append(q["positions"])
        out = {}
        for table, parts in wanted.items():
            positions = np.unique(np.concatenate(parts))
            rows = self.source.take(table, positions)
            out[table] = {
                int(p): json.dumps({k: plain(v) for k, v in rec.items() if k != ROW}, ensure_ascii=False)
                for p, rec in zip(positions, rows.to_dict("records"))
            }
        return out

    def quarantine_frame(self) -> pd.DataFrame:
        """Return every quarantined row, in the order the rules moved them, with its values as taken in."""
        if not self.quarantined:
            return pd.DataFrame(columns=QUARANTINE_COLUMNS)
        records = self._records()
        parts = [
            pd.DataFrame(
                {
                    **{c: q[c] for c in ("table", "row", "key", "rule", "reason")},
                    "record": [records[q["table"]][int(p)] for p in q["positions"]],
                }
            )
            for q in self.quarantined
        ]
        return pd.concat(parts, ignore_index=True)

    def log_frame(self) -> pd.DataFrame:
        """Return the log, one line per rule, table and column that concerned any row."""
        return pd.DataFrame(self.log, columns=LOG_COLUMNS)
