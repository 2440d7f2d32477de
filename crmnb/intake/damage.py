"""Signs of a damaged export: a header naming a column twice, a file cut in its last row, a bad byte.

Each check reads the raw file only (never writes it) and says what it found in the words a
message needs: the file, the column and its position, the row, the byte offset.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from crmnb.errors import DataError
from crmnb.intake.parse import ISSUE_COLUMNS, Intake
from crmnb.intake.schema import TABLES

TAIL_BYTES = 1 << 16
"""How much of a file's end is read to see whether its last row is whole."""


# --------------------------------------------------------------------------- duplicate headers
def duplicate_headers(names: list[str], expected, where: str) -> list[str]:
    """Raise :class:`DataError` when a column the table reads is named twice in the header.

    Returns notes for duplicated columns the table does not read (they are left alone).

    >>> duplicate_headers(["id", "memo", "memo"], ["id"], "f.csv")
    ["column 'memo' appears 2 times in the header (columns 2, 3); it is not read"]
    """
    names = [str(n).strip().lstrip("\ufeff") for n in names]
    want = {str(c).strip() for c in expected}
    notes = []
    for name, n in Counter(names).items():
        if n < 2 or not name:  # blank headers over empty columns are no one's column
            continue
        at = [i + 1 for i, v in enumerate(names) if v == name]
        cols = ", ".join(map(str, at))
        if name in want:
            raise DataError(
                f"{where}: the header names column '{name}' {n} times (columns {cols}, counted from 1), "
                f"so which one holds '{name}' cannot be told; rename the others in a copy of the export "
                f"(the export itself is never changed) and point the case file at the copy"
            )
        notes.append(f"column '{name}' appears {n} times in the header (columns {cols}); it is not read")
    return notes


def header_names(sample: str, sep: str, header_row: int) -> list[str]:
    """Return the column names of a CSV sample's header row, as written."""
    lines = sample.splitlines()[header_row - 1 :][:1]
    rows = list(csv.reader(lines, delimiter=sep)) if lines else []
    return rows[0] if rows else []


def excel_header(path: Path, sheet: str, header_row: int) -> list[str]:
    """Return the column names of a sheet's header row, as written (pandas renames duplicates)."""
    first = pd.read_excel(path, sheet_name=sheet, header=None, nrows=1, skiprows=header_row - 1, dtype=str)
    return [str(v) if pd.notna(v) else "" for v in first.iloc[0].tolist()] if len(first) else []


# --------------------------------------------------------------------------- a file cut short
def cut_last_row(path: Path, df: pd.DataFrame, encoding: str, sep: str) -> str | None:
    """Return why the last row of a CSV looks cut, or None when the file ends as a whole file does.

    A file cut in the middle has no line end after its last row, and that row has fewer
    fields than the header (and than the row before it), or its last value is not written the way the column's others are
    (``2025-03-04 10:0`` among ``2025-03-04 10:00:00``, ``7000.0`` among ``7000.00``).
    """
    if not len(df):
        return None
    with open(path, "rb") as fh:  # read-only, and only the end
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - TAIL_BYTES))
        tail = fh.read()
    if tail.endswith((b"\n", b"\r")):
        return None
    try:
        rows = [r for r in csv.reader(io.StringIO(tail.decode(encoding, errors="replace")), delimiter=sep) if r]
    except csv.Error:
        return None
    if not rows:
        return None
    width, got = len(df.columns), len(rows[-1])
    if got < width and (len(rows) < 2 or len(rows[-2]) >= width):  # not an export that drops empty fields
        return f"no line end after the last row, which has {got} of {width} fields"
    col = df.columns[-1]
    last = df[col].iloc[-1]
    before = df[col].iloc[max(0, len(df) - 1001) : -1].dropna().astype(str)
    before = before[before.str.strip() != ""]
    if len(before) < 5:
        return None
    if pd.isna(last) or not str(last).strip():
        if len(before) >= 0.9 * min(len(df) - 1, 1000):
            return f"no line end after the last row, whose last value ({col}) is empty where others are filled"
        return None
    shapes = before.map(_shape)
    common = shapes.value_counts()
    if common.iloc[0] >= 0.9 * len(shapes) and _shape(str(last)) not in set(common.index):
        return (
            f"no line end after the last row, whose last value ({col}) {str(last)!r} "
            f"is not written like the column's others (e.g. {before.iloc[-1]!r})"
        )
    return None


def _shape(value: str) -> str:
    """Return how a value is written: letters as 'a', digits as '9', decimals kept digit by digit.

    >>> _shape("7000.00"), _shape("2025-03-04 10:00:00"), _shape("7000.0")
    ('9.99', '9-9-9 9:9:9', '9.9')
    """
    v = re.sub(r"[^\W\d_]+", "a", value.strip())
    m = re.search(r"[.,](\d+)$", v)
    frac = "9" * len(m.group(1)) if m else ""
    head = v[: m.start(1)] if m else v
    return re.sub(r"\d+", "9", head) + frac


# --------------------------------------------------------------------------- bytes that do not decode
def first_bad_utf8(path: Path, chunk: int = 1 << 20) -> tuple[int, int, str, bytes] | None:
    """Return (byte offset, line, reason, bytes) of the first place a file is not UTF-8, or None.

    The offset counts bytes of the file from 0 and the line counts from 1, both in the file
    as it is, whatever codec was tried after UTF-8.
    """
    carry = b""
    base = 0  # the file offset of carry's first byte
    lines = 1
    with open(path, "rb") as fh:  # read-only
        while True:
            block = fh.read(chunk)
            data = carry + block
            final = not block
            try:
                data.decode("utf-8")
                ok = len(data)
            except UnicodeDecodeError as exc:
                if not final and exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
                    ok = exc.start  # a character split between two blocks
                else:
                    at = base + exc.start
                    return at, lines + data.count(b"\n", 0, exc.start), exc.reason, data[exc.start : exc.start + 4]
            if final:
                return None
            lines += data.count(b"\n", 0, ok)
            carry, base = data[ok:], base + ok


def utf8_error(path: Path, header_row: int = 1) -> str | None:
    """Return a message naming where a file stops being UTF-8: its line, export row and byte offset."""
    found = first_bad_utf8(path)
    if found is None:
        return None
    at, line, reason, raw = found
    row = line - header_row
    where = f"line {line:,}" + (f", export row {row:,}" if row >= 1 else ", the header")
    if reason == "unexpected end of data":
        return (
            f"{path}: the file ends in the middle of a character (byte offset {at:,}, {where}): "
            f"it looks cut short; export it again"
        )
    return (
        f"{path}: byte 0x{raw[:1].hex()} at byte offset {at:,} ({where}) is not UTF-8 ({reason}), "
        f"while the file reads as UTF-8 before it; repair that row in a copy of the export, "
        f"or declare the file's encoding (data.tables.<table>.encoding) if it is not UTF-8"
    )


# --------------------------------------------------------------------------- the cut row, quarantined
CUT_PROBLEM = "file looks truncated (last row cut short)"
"""The problem, and the quarantine's rule, of the last row of a file that looks cut in the middle."""


def mark_cut(got: Intake, frame: pd.DataFrame, name: str, why: str, rows: int | None = None) -> None:
    """List the last row of a file cut short as unreadable, so cleaning quarantines it with a log line.

    ``frame`` ends with the export's last row, which is export row ``rows`` (default: as many as ``got.table`` has).
    """
    spec = TABLES[name]
    row = len(got.table) if rows is None else rows
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
