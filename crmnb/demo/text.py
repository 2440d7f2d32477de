"""Cell text for the exports, vectorised with pyarrow: ids, datetimes, amounts, CSV quoting.

A :class:`Frame` is one table ready to write: its row count and, per column, a function that returns
the cells of rows ``lo:hi`` (CSV text for the CSV exports, typed values for the xlsx one). Columns are
built lazily so that large tables are formatted chunk by chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crmnb.demo.clock import DAY, HOUR, NAT, START

ColumnFn = Callable[[int, int], pa.Array]
"""Return the cells of rows ``lo:hi`` of one column."""


@dataclass(frozen=True)
class Frame:
    """One table ready to write: rows, a cell source per canonical column, and its file's quirks."""

    n: int
    columns: Mapping[str, ColumnFn]
    bom: bool = False
    """Start the CSV with a UTF-8 byte-order mark (as spreadsheet tools export)."""


NEEDS_QUOTES = re.compile(r'[",\r\n]')


def quote_list(values: tuple[str, ...] | list[str]) -> pa.Array:
    """Return CSV-quoted strings as an arrow array."""
    return pa.array(['"' + v.replace('"', '""') + '"' if NEEDS_QUOTES.search(v) else v for v in values])


def quote(arr: pa.Array) -> pa.Array:
    """CSV-quote the values of a string array that need it."""
    need = pc.or_(
        pc.or_(pc.match_substring(arr, ","), pc.match_substring(arr, '"')),
        pc.or_(pc.match_substring(arr, "\n"), pc.match_substring(arr, "\r")),
    )
    if not pc.any(need).as_py():
        return arr
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(arr, '"', '""'), '"', "")
    return pc.if_else(need, quoted, arr)


def validity(valid: np.ndarray) -> pa.Buffer | None:
    """Return an arrow validity bitmap, or None when all are valid."""
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def fixed_strings(buf: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Turn an (n, w) uint8 matrix of ASCII into an arrow string array."""
    n, w = buf.shape
    offsets = np.arange(0, w * (n + 1), w, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), n, [validity(valid), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(buf))]
    )


def day_table(d0: int, d1: int) -> np.ndarray:
    """Return 'YYYY-MM-DD' bytes for epoch days d0..d1 as an (n, 10) uint8 matrix."""
    s = np.arange(d0, d1 + 1).astype("datetime64[D]").astype("S10")
    return np.frombuffer(s.tobytes(), dtype=np.uint8).reshape(-1, 10)


def clock_table() -> np.ndarray:
    """Return ' HH:MM:SS' bytes for every second of a day as an (86400, 9) uint8 matrix."""
    t = np.arange(DAY)
    out = np.empty((DAY, 9), np.uint8)
    out[:, 0] = ord(" ")
    out[:, 3] = out[:, 6] = ord(":")
    for pos, v in ((1, t // HOUR), (4, t // 60 % 60), (7, t % 60)):
        out[:, pos] = 48 + v // 10
        out[:, pos + 1] = 48 + v % 10
    return out


CLOCK = clock_table()


def fmt_datetime(sec: np.ndarray) -> pa.Array:
    """Format seconds as 'YYYY-MM-DD HH:MM:SS' (NAT -> null)."""
    valid = sec != NAT
    s = np.where(valid, sec, START)
    days = s // DAY
    d0 = int(days.min()) if len(days) else 0
    table = day_table(d0, int(days.max()) if len(days) else 0)
    buf = np.empty((len(s), 19), np.uint8)
    buf[:, :10] = table[days - d0]
    buf[:, 10:] = CLOCK[s - days * DAY]
    return fixed_strings(buf, valid)


def fmt_local(sec: np.ndarray, style: str) -> pa.Array:
    """Format seconds as '2025/3/4 10:05' (style 'slash') or '2025年3月4日 10:05' ('chinese')."""
    days = sec // DAY
    d0, d1 = int(days.min()), int(days.max())
    dd = np.arange(d0, d1 + 1).astype("datetime64[D]")
    y = dd.astype("datetime64[Y]").astype(int) + 1970
    m = dd.astype("datetime64[M]").astype(int) % 12 + 1
    d = (dd - dd.astype("datetime64[M]")).astype(int) + 1
    if style == "slash":
        labels = [f"{a}/{b}/{c}" for a, b, c in zip(y, m, d)]
    else:
        labels = [f"{a}年{b}月{c}日" for a, b, c in zip(y, m, d)]
    minutes = [f"{h}:{mi:02d}" for h in range(24) for mi in range(60)]
    day_part = pa.array(labels).take(pa.array(days - d0))
    clock = pa.array(minutes).take(pa.array((sec - days * DAY) // 60))
    return pc.binary_join_element_wise(day_part, clock, " ")


def fmt_money(x: np.ndarray) -> pa.Array:
    """Format amounts with two decimals (NaN -> null)."""
    valid = ~np.isnan(x)
    cents = np.round(np.where(valid, x, 0.0) * 100).astype(np.int64)
    whole = pa.array(cents // 100, mask=~valid).cast(pa.string())
    frac = pa.array([f"{i:02d}" for i in range(100)]).take(pa.array(cents % 100))
    return pc.binary_join_element_wise(whole, frac, ".")


def fmt_ids(prefix: str, idx: np.ndarray, width: int) -> pa.Array:
    """Format 0-based numbers as ids like 'C000123' (negative -> null)."""
    num = pa.array(idx + 1, mask=idx < 0).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(num, width=width, padding="0"), "")


def id_width(n: int, base: int) -> int:
    """Return the id width: ``base`` digits, more when needed."""
    return max(base, len(str(max(n, 1))))


def col_ids(prefix: str, idx: np.ndarray, base_width: int, n_total: int) -> ColumnFn:
    """Return a column of ids built from 0-based numbers."""
    width = id_width(n_total, base_width)
    return lambda lo, hi: fmt_ids(prefix, idx[lo:hi], width)


def col_datetime(sec: np.ndarray) -> ColumnFn:
    """Return a column of ISO datetimes."""
    return lambda lo, hi: fmt_datetime(sec[lo:hi])


def col_cat(vocab: tuple[str, ...] | list[str], codes: np.ndarray) -> ColumnFn:
    """Return a column of strings from a vocabulary (code -1 -> empty)."""
    voc = quote_list(list(vocab))
    return lambda lo, hi: voc.take(pa.array(codes[lo:hi], mask=codes[lo:hi] < 0))


def col_text(arr: pa.Array) -> ColumnFn:
    """Return a column of prebuilt strings, CSV-quoted where needed."""
    return lambda lo, hi: quote(arr.slice(lo, hi - lo))


def col_money(x: np.ndarray) -> ColumnFn:
    """Return a column of amounts with two decimals."""
    return lambda lo, hi: fmt_money(x[lo:hi])


def col_int(x: np.ndarray) -> ColumnFn:
    """Return a column of integers (negative -> empty)."""
    return lambda lo, hi: pa.array(x[lo:hi], mask=x[lo:hi] < 0).cast(pa.string())


def masked(arr: pa.Array, missing: np.ndarray) -> pa.Array:
    """Return ``arr`` with the values where ``missing`` is true set to null."""
    if not missing.any():
        return arr
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), arr)


def col_values(arr: pa.Array) -> ColumnFn:
    """Return a column of typed values, as they are (for the xlsx export)."""
    return lambda lo, hi: arr.slice(lo, hi - lo)
