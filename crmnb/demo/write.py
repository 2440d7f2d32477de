"""Write the demo's files: one per canonical table where :data:`crmnb.intake.schema.DEFAULT_FILES` says.

CSV: UTF-8, comma separated, quotes only where needed, empty cells for missing values, ``\\n`` line
ends. The xlsx export has one sheet named after its table, fixed metadata and fixed zip timestamps,
so that the same seed gives the same bytes. Headers and column order come from the schema.
"""

from __future__ import annotations

import datetime as _dt
import io
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crmnb.demo.text import ColumnFn, Frame
from crmnb.intake.schema import DEFAULT_FILES, TABLES, UTM_COLUMNS

XLSX_TIMESTAMP = _dt.datetime(2026, 3, 31, 18, 0, 0)
Progress = Callable[[str], None]


def write_csv(path: Path, n: int, columns: list[ColumnFn], header: list[str], bom: bool, chunk: int = 400_000) -> None:
    """Write a CSV (comma separated, minimal quoting, '\\n' line ends) chunk by chunk."""
    with open(path, "wb") as f:
        if bom:
            f.write(b"\xef\xbb\xbf")
        f.write((",".join(header) + "\n").encode("utf-8"))
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            parts = [fn(lo, hi) for fn in columns]
            line = pc.binary_join_element_wise(*parts, ",", null_handling="replace", null_replacement="")
            line = pc.binary_join_element_wise(line, "", "\n")
            if isinstance(line, pa.ChunkedArray):
                line = line.combine_chunks()
            if line.type == pa.large_string():
                off_type: Any = np.int64
            else:
                off_type = np.int32
            offsets = np.frombuffer(line.buffers()[1], dtype=off_type)[line.offset : line.offset + len(line) + 1]
            data = line.buffers()[2]
            f.write(memoryview(data)[int(offsets[0]) : int(offsets[-1])])


def write_xlsx(path: Path, sheet: str, header: list[str], rows: list[list[Any]]) -> None:
    """Write one sheet with fixed metadata and zip timestamps."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.properties.created = XLSX_TIMESTAMP
    wb.properties.modified = XLSX_TIMESTAMP
    wb.properties.creator = "crmnb demo"
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).write_data()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=XLSX_TIMESTAMP.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, src.read(info.filename))
    path.write_bytes(out.getvalue())


def write_frame(out: Path, table: str, frame: Frame) -> Path:
    """Write one table's frame to its default file, columns in the schema's order; return the path."""
    # UTM columns are parsed from landing URLs at intake: an export may leave them out
    header = [c for c in TABLES[table].columns if c not in UTM_COLUMNS or c in frame.columns]
    if sorted(frame.columns) != sorted(header):
        raise ValueError(f"{table}: columns {sorted(frame.columns)} are not the schema's {sorted(header)}")
    columns = [frame.columns[c] for c in header]
    path = out / DEFAULT_FILES[table]
    if path.suffix == ".xlsx":
        cells = [fn(0, frame.n).to_pylist() for fn in columns]
        write_xlsx(path, table, header, [list(row) for row in zip(*cells)])
    else:
        write_csv(path, frame.n, columns, header, bom=frame.bom)
    return path


def write_tables(out: Path, builders: Mapping[str, Callable[[], Frame]], progress: Progress | None) -> dict[str, int]:
    """Build and write every table of :data:`DEFAULT_FILES` in turn; return rows per table."""
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for table in DEFAULT_FILES:
        frame = builders[table]()
        path = write_frame(out, table, frame)
        rows[table] = frame.n
        if progress:
            progress(f"wrote {path.name} ({frame.n:,} rows)")
    return rows


def to_sqlite(folder: str | Path, db_path: str | Path) -> dict[str, int]:
    """Load the exports in ``folder`` into a SQLite file, one text table per canonical table; return rows per table.

    Each export is read through :func:`crmnb.intake.read.read_export`, so the database holds
    exactly the text the files hold; a case reads it with ``data.sql_url:
    sqlite:///<db_path>``. An existing file at ``db_path`` is replaced.
    """
    import sqlite3

    from crmnb.intake.read import read_export

    src, db = Path(folder), Path(db_path)
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(db.name + ".tmp")
    tmp.unlink(missing_ok=True)
    rows: dict[str, int] = {}
    with sqlite3.connect(tmp) as conn:
        for table, file in DEFAULT_FILES.items():
            df = read_export(src / file, table)
            df = df.astype(object).where(df.notna(), None)
            df.to_sql(table, conn, index=False, dtype=dict.fromkeys(df.columns, "TEXT"))
            rows[table] = len(df)
    conn.close()
    tmp.replace(db)
    return rows
