"""Customer events as arrays: naive timestamps, id positions, and per-customer counts of events before a cutoff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

DAY_NS = 86_400 * 10**9
"""One day in nanoseconds."""

NAT_NS = np.iinfo(np.int64).min
"""NaT as int64 nanoseconds."""


def timestamp(when: Any) -> pd.Timestamp:
    """Return ``when`` as a timezone-naive Timestamp."""
    t = pd.Timestamp(when)
    if t.tzinfo is not None:
        t = t.tz_localize(None)
    return t


def ns(s: pd.Series) -> np.ndarray:
    """Return a datetime column as int64 nanoseconds; NaT becomes the smallest int64."""
    return s.to_numpy(dtype="datetime64[ns]").view("int64")


def codes(ids: pd.Series | pd.Index, index: pd.Index) -> np.ndarray:
    """Return the position of each id in ``index`` (unique), −1 when absent or missing; hashed in Arrow."""
    try:
        a = pa.array(ids, from_pandas=True)
        v = pa.array(index, from_pandas=True)
        if a.type != v.type:
            v = v.cast(a.type)
        return pc.index_in(a, value_set=v).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    except (pa.ArrowException, TypeError, ValueError):
        return index.get_indexer(pd.Index(ids)).astype(np.intp)


@dataclass
class Events:
    """The rows of one event table dated before a cutoff, for the customers of an index."""

    pos: np.ndarray  # row positions in the table
    code: np.ndarray  # position of the customer in the index
    t: np.ndarray  # int64 ns
    n: int  # customers in the index

    def count(
        self, since: int | None = None, weights: np.ndarray | None = None, mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Return per customer the number (or sum of ``weights``) of events at or after ``since`` (ns; None: all)."""
        m = np.ones(len(self.t), bool) if since is None else self.t >= since
        if mask is not None:
            m &= mask
        w = None if weights is None else weights[m]
        return np.bincount(self.code[m], weights=w, minlength=self.n).astype(float)

    def last(self) -> np.ndarray:
        """Return per customer the time of the latest event (ns), NAT_NS when none."""
        out = np.full(self.n, NAT_NS, dtype=np.int64)
        np.maximum.at(out, self.code, self.t)
        return out


def events_before(df: pd.DataFrame, when: str, index: pd.Index, cutoff: pd.Timestamp) -> Events:
    """Return the rows of ``df`` dated before ``cutoff`` that belong to customers in ``index``."""
    t = ns(df[when])
    code = codes(df["customer_id"], index)
    pos = np.flatnonzero((t != NAT_NS) & (t < cutoff.value) & (code >= 0))
    return Events(pos, code[pos], t[pos], len(index))
