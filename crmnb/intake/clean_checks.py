"""The check of a cleaned table: its pandera schema, once per table, batch by batch as it is written.

Cleaning settles every row-level failure intake left (required values, repeated keys, amounts and
scores out of bounds), so a cleaned table is expected to pass :func:`crmnb.intake.checks.table_schema`
whole. It is checked once, as it is built, against that schema without the uniqueness of its key
and row number: a batch cannot see the others, and the ``duplicate_key`` rule has quarantined every
repeat of a key already, over the whole table. A batch that fails is described by
:func:`crmnb.intake.checks.problems`, so the message is the one the full check gives.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from crmnb.errors import DataError
from crmnb.intake.checks import PROBLEM_COLUMNS, describe, problems, table_schema


@cache
def batch_schema(table: str) -> pa.DataFrameSchema:
    """Return a table's schema without its uniqueness checks, which no single batch can make."""
    schema = table_schema(table)
    return schema.update_columns({c: {"unique": False} for c, col in schema.columns.items() if col.unique})


def batch_problems(batch: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return the failures of one batch of a cleaned table, one row per offending cell (none: empty)."""
    try:
        batch_schema(table).validate(batch, lazy=True)
    except SchemaErrors:
        return problems(batch, table)  # rare: described as the full check describes them
    return pd.DataFrame(columns=PROBLEM_COLUMNS)


class Checker:
    """Collects the failures of a cleaned table's batches; :meth:`raise_found` stops the run naming them."""

    def __init__(self, table: str):
        self.table = table
        self.found: list[pd.DataFrame] = []

    def __call__(self, batch: pd.DataFrame) -> None:
        """Check one batch and keep what failed."""
        got = batch_problems(batch, self.table)
        if len(got):
            self.found.append(got)

    def raise_found(self) -> None:
        """Raise :class:`DataError` naming the table, its columns and rows, when a batch failed."""
        if self.found:
            probs = pd.concat(self.found, ignore_index=True)
            raise DataError(describe(f"cleaned table '{self.table}'", self.table, probs))
