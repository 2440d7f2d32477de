"""The cleaning ledger: the tables being cleaned, the log of what changed, the rows moved to the quarantine.

Every cleaning rule changes the tables only through a :class:`Ledger`, so every row dropped or
changed is in the log or the quarantine; :meth:`Ledger.check_balanced` is the one check every rule
passes (rows in = rows kept + rows quarantined, per table).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from crmnb.errors import DataError
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


def copy_on_write() -> bool:
    """Return whether pandas copies a frame's data only when it is changed (always from pandas 3)."""
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    try:
        return bool(pd.get_option("mode.copy_on_write"))
    except (KeyError, pd.errors.OptionError):
        return False


COPY_ON_WRITE = copy_on_write()


def plain(v: object) -> object:
    """Return a value as JSON can write it: missing as None, timestamps as text, numpy numbers as Python's."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat(sep=" ")
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    return v


class Ledger:
    """Collects log lines and quarantined rows while cleaning."""

    def __init__(self, tables: dict[str, pd.DataFrame]):
        # a fresh 0..n-1 index, so rows are found again in ``original`` whatever index the input had
        self.tables = {k: v.reset_index(drop=True) for k, v in tables.items()}
        # the quarantine's record: values as taken in. Under copy-on-write (pandas 3) a shallow copy
        # is enough, since changing ``tables`` copies what it changes; it saves a copy of every table.
        self.original = {k: v.copy(deep=not COPY_ON_WRITE) for k, v in self.tables.items()}
        self.rows_in = {k: len(v) for k, v in tables.items()}
        self.rows_quarantined = dict.fromkeys(tables, 0)
        self.log: list[dict] = []
        self.quarantined: list[pd.DataFrame] = []
        self.merges = pd.DataFrame(columns=MERGE_COLUMNS)

    def record(self, rule: str, table: str, column: str, rows: int, action: str, detail: str = "") -> None:
        """Add a line to the log, whatever its count of rows."""
        self.log.append(
            {"rule": rule, "table": table, "column": column, "rows": int(rows), "action": action, "detail": detail}
        )

    def note(self, rule: str, table: str, column: str, rows: int, action: str, detail: str = "") -> None:
        """Add a line to the log when it concerns any row."""
        if rows:
            self.record(rule, table, column, rows, action, detail)

    def replace(self, table: str, frame: pd.DataFrame) -> None:
        """Put a changed copy of ``table`` in place; the same rows, so the count stays balanced."""
        self.tables[table] = frame

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
                        json.dumps({k: plain(v) for k, v in rec.items() if k != ROW}, ensure_ascii=False)
                        for rec in self.original[table].loc[hit.index].to_dict("records")
                    ],
                }
            )
        )
        self.tables[table] = df[~mask]
        self.rows_quarantined[table] += n
        first = reason.iloc[0]
        self.note(rule, table, column, n, text("quarantined"), first if n == 1 else text("example", example=first))

    def check_balanced(self, rule: str) -> None:
        """Raise DataError naming ``rule`` if, after it, a table's rows in are not kept + quarantined."""
        for table, n in self.rows_in.items():
            kept, moved = len(self.tables[table]), self.rows_quarantined[table]
            if n != kept + moved:
                raise DataError(
                    f"cleaning rule {rule!r} lost rows of table '{table}': {n} in, {kept} kept, {moved} quarantined"
                )

    def quarantine_frame(self) -> pd.DataFrame:
        """Return every quarantined row, in the order the rules moved them."""
        if not self.quarantined:
            return pd.DataFrame(columns=QUARANTINE_COLUMNS)
        return pd.concat(self.quarantined, ignore_index=True)

    def log_frame(self) -> pd.DataFrame:
        """Return the log, one line per rule, table and column that concerned any row."""
        return pd.DataFrame(self.log, columns=LOG_COLUMNS)
