"""Read a table's raw text from its source, CSV, Excel or SQL, exactly as it is and read-only."""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import decimal
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crmnb.errors import DataError
from crmnb.intake.damage import cut_last_row, duplicate_headers, excel_header, header_names, utf8_error
from crmnb.intake.schema import OPTIONAL_FILES, TABLES
from crmnb.intake.sources import ENCODINGS, SEPARATORS, Located, redact


# --------------------------------------------------------------------------- reading
@dataclass
class Raw:
    """One export as read: text cells, and how it was read."""

    frame: pd.DataFrame
    source: Located
    encoding: str | None = None
    sep: str | None = None
    notes: list[str] = field(default_factory=list)
    cut: str | None = None  # why the last row looks cut short, when it does


def read(loc: Located, expected: list[str] | tuple[str, ...] = ()) -> Raw:
    """Read a located source as text, exactly as it is, without writing to it.

    ``expected`` are column names the export should have (used to recognise the
    CSV separator). Raises :class:`DataError` naming the source when it is absent,
    empty or unreadable.
    """
    if loc.kind == "sql":
        df = read_sql_text(
            loc.url,
            table=loc.spec.sql.table,
            query=loc.spec.sql.query,
            order_by=loc.spec.sql.order_by,
            label=f"table '{loc.table}'",
        )
        return Raw(df, loc, notes=duplicate_headers(list(df.columns), expected, f"{loc.label} (table '{loc.table}')"))
    path = loc.path
    where = f"table '{loc.table}'"
    decl = f" (declared in {loc.key})" if loc.key else ""
    if not path.exists() and loc.table in OPTIONAL_FILES and not loc.key:
        return Raw(
            pd.DataFrame(columns=list(expected), dtype=object),
            loc,
            notes=[f"no export of {loc.table} ({path.name}): its analyses are left out"],
        )
    if not path.exists():
        near = sorted(p.name for p in path.parent.glob(f"*{path.suffix}")) if path.parent.is_dir() else []
        hint = (
            f"; files there: {', '.join(near[:8])}"
            if near
            else ("" if path.parent.is_dir() else f"; the folder {path.parent} does not exist")
        )
        raise DataError(f"{where}: file not found: {path}{decl}{hint}")
    if path.stat().st_size == 0:
        raise DataError(f"{where}: file is empty: {path} (not even a header row)")
    try:
        if loc.kind == "excel":
            df = read_excel_text(path, loc.table, loc.spec.sheet, loc.spec.header_row)
            names = excel_header(path, df.attrs.pop("sheet"), loc.spec.header_row)
            return Raw(df, loc, notes=duplicate_headers(names, expected, f"{path} ({where})"))
        df, enc, sep = read_csv_text(path, loc.spec.encoding, loc.spec.sep, loc.spec.header_row, expected)
        sample, _ = _decode_sample(path, enc)
        names = header_names(sample, sep, loc.spec.header_row)
        notes = duplicate_headers(names, expected, f"{path} ({where})")
        return Raw(df, loc, enc, sep, notes, cut_last_row(path, df, enc, sep))
    except DataError:
        raise
    except Exception as exc:  # pandas/openpyxl raise many kinds; the analyst needs the file name
        raise DataError(f"{where}: cannot read {path}: {exc}") from None


def read_excel_text(path: Path, table: str, sheet: str | None = None, header_row: int = 1) -> pd.DataFrame:
    """Read one sheet of a workbook as text; the header is on ``header_row`` (1-based)."""
    with pd.ExcelFile(path) as book:
        names = book.sheet_names
        chosen = sheet or (table if table in names else names[0])
        if chosen not in names:
            raise DataError(
                f"table '{table}': sheet '{chosen}' not in {path.name} (sheets: {', '.join(names)}); full path {path}"
            )
        df = pd.read_excel(
            book, sheet_name=chosen, dtype=str, keep_default_na=False, na_values=[""], header=header_row - 1
        )
    df.columns = [str(c).strip() for c in df.columns]
    df.attrs["sheet"] = chosen
    return df


def _decode_sample(path: Path, encoding: str | None, size: int = 1 << 16, header_row: int = 1) -> tuple[str, str]:
    with open(path, "rb") as fh:  # read-only, and only the first bytes
        data = fh.read(size)
    whole = len(data) < size
    if encoding is not None:
        enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        return codecs.getincrementaldecoder(enc)(errors="replace").decode(data, final=whole), enc
    for enc in ENCODINGS:
        try:  # incremental: a character cut at the end of the sample is not an error
            return codecs.getincrementaldecoder(enc)().decode(data, final=whole), enc
        except UnicodeDecodeError as exc:
            if enc == ENCODINGS[0] and _is_utf8_text(data[: exc.start].decode("utf-8", errors="replace")):
                raise DataError(f"cannot decode {utf8_error(path, header_row)}") from None
            continue
    raise DataError(
        f"cannot decode {path}: neither UTF-8 nor GB18030; declare its encoding (data.tables.<table>.encoding)"
        + (f"; as UTF-8: {utf8_error(path, header_row)}" if utf8_error(path, header_row) else "")
    )


def _is_utf8_text(text: str) -> bool:
    """Return True when decoded text holds enough non-ASCII characters to be UTF-8 and not GBK by chance."""
    return sum(ord(c) > 127 for c in text[:4096]) >= 3


def detect_separator(sample: str, expected: list[str] | tuple[str, ...] = (), header_row: int = 1) -> str:
    """Return the separator of a CSV sample: the candidate whose header holds most of the expected
    columns, then whose lines split into the same number of fields, then the most fields.

    >>> detect_separator("a;b;c\\n1;2,5;3\\n", ["a", "b"])
    ';'
    """
    lines = sample.splitlines()[header_row - 1 :][:50]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of a sample may be cut
    want = {str(c).strip().casefold() for c in expected}
    best, best_score = ",", None
    for sep in SEPARATORS:
        try:
            rows = list(csv.reader(lines, delimiter=sep))
        except csv.Error:
            continue
        rows = [r for r in rows if r]
        if not rows:
            continue
        header = [c.strip().lstrip("\ufeff").casefold() for c in rows[0]]
        width = len(header)
        consistent = sum(len(r) == width for r in rows[1:])
        score = (len(want & set(header)), width > 1, consistent, width)
        if best_score is None or score > best_score:
            best, best_score = sep, score
    return best


def read_csv_text(
    path: Path,
    encoding: str | None = None,
    sep: str | None = None,
    header_row: int = 1,
    expected: list[str] | tuple[str, ...] = (),
) -> tuple[pd.DataFrame, str, str]:
    """Read a CSV export as text; return it with the encoding and separator used."""
    sample, enc = _decode_sample(path, encoding, header_row=header_row)
    if sep is None:
        sep = detect_separator(sample, expected, header_row)
    candidates = [enc] if encoding is not None else list(ENCODINGS[ENCODINGS.index(enc) :])
    last: Exception | str | None = None
    for e in candidates:
        try:
            df = _read_csv_fast(path, e, sep, header_row)
            if df is None:
                df = pd.read_csv(path, **_pandas_text_options(e, sep, header_row))
            break
        except UnicodeDecodeError as exc:  # the sample decoded, a later part does not
            if codecs.lookup(e).name.startswith("utf-8"):
                last = utf8_error(path, header_row) or exc
                if encoding is not None or _is_utf8_text(sample):  # UTF-8 text, damaged: not GB18030
                    raise DataError(f"cannot decode {last}") from None
            elif last is None:
                last = exc
    else:
        how = f"as {encoding} (declared)" if encoding else "as UTF-8 or GB18030"
        raise DataError(f"cannot decode {path} {how}: {last}")
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    return df, e, sep


def _read_csv_fast(path: Path, encoding: str, sep: str, header_row: int) -> pd.DataFrame | None:
    """Read a UTF-8 CSV (with or without BOM) with Arrow's multi-threaded reader, or return None to read it
    with pandas'.

    Arrow reads an export about five times as fast, every column as text, with the cells
    pandas' reader gives (an empty cell missing, quotes removed, nothing trimmed). It is
    stricter: a row with too many or too few fields, a line break inside a quoted value, a
    duplicated column name or a byte that is not UTF-8 stops it; then the export is read
    again by pandas' own reader, which either reads it or says precisely what is wrong.
    """
    if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):  # Arrow skips a BOM itself
        return None
    try:
        table = _arrow_csv(path, sep, header_row)
    except Exception:
        return None
    if table is None:
        return None
    return table.to_pandas(types_mapper=_as_text, split_blocks=True, self_destruct=True)


def _arrow_csv(path: Path, sep: str, header_row: int):
    """Return the CSV read by Arrow with every column as text, or None when its header is blank or names a
    column twice."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    parse = pacsv.ParseOptions(delimiter=sep, newlines_in_values=True)  # a note may hold a line break
    # the header first, to declare every column text: Arrow would otherwise read 007 as the number 7
    first = pacsv.ReadOptions(skip_rows=header_row - 1, block_size=1 << 20)
    with pacsv.open_csv(path, read_options=first, parse_options=parse) as head:
        names = head.schema.names
    if not names or len(set(names)) != len(names):  # a name twice: pandas' reader tells them apart
        return None
    opts = pacsv.ReadOptions(skip_rows=header_row - 1, block_size=1 << 24)
    convert = pacsv.ConvertOptions(
        column_types={n: pa.large_string() for n in names},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    return pacsv.read_csv(path, read_options=opts, parse_options=parse, convert_options=convert)


def iter_csv_batches(path: Path, sep: str, header_row: int, rows: int) -> Iterator[pd.DataFrame]:
    """Yield a UTF-8 CSV (with or without BOM) as text, ``rows`` rows at a time, by Arrow's streaming reader.

    The cells are those :func:`_read_csv_fast` gives; the last batch holds the rest, and a file with a
    header and no rows gives one empty batch. Raises ValueError where :func:`_arrow_csv` returns None
    (a blank header, a column named twice) and Arrow's errors where it fails: the caller then reads the
    export whole, as before.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    parse = pacsv.ParseOptions(delimiter=sep, newlines_in_values=True)
    first = pacsv.ReadOptions(skip_rows=header_row - 1, block_size=1 << 20)
    with pacsv.open_csv(path, read_options=first, parse_options=parse) as head:
        names = head.schema.names
    if not names or len(set(names)) != len(names):
        raise ValueError("a blank header or a column named twice: read by pandas' reader")
    convert = pacsv.ConvertOptions(
        column_types={n: pa.large_string() for n in names},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    # one block read at a time, when the batch before is taken in: threads would read ahead of the
    # batches being taken in and hold most of the file (0.8 GB of a 0.65 GB export at 100x)
    opts = pacsv.ReadOptions(skip_rows=header_row - 1, block_size=1 << 22, use_threads=False)
    held: list = []
    count, sent = 0, False
    with pacsv.open_csv(path, read_options=opts, parse_options=parse, convert_options=convert) as reader:
        for batch in reader:
            held.append(batch)
            count += batch.num_rows
            while count >= rows:
                table = pa.Table.from_batches(held)
                yield _text_frame(table.slice(0, rows))
                rest = table.slice(rows)
                held, count, sent = rest.to_batches(), rest.num_rows, True
        if count or not sent:
            yield _text_frame(pa.Table.from_batches(held, schema=reader.schema))


def _pandas_text_options(encoding: str, sep: str, header_row: int) -> dict:
    """Return how pandas' reader takes a CSV export as text: every cell a string, only an empty one missing."""
    return {
        "dtype": str,
        "keep_default_na": False,
        "na_values": [""],
        "encoding": encoding,
        "sep": sep,
        "skiprows": header_row - 1,
        "engine": "c",
    }


def iter_csv_chunks(path: Path, encoding: str, sep: str, header_row: int, rows: int) -> Iterator[pd.DataFrame]:
    """Yield a CSV as text, ``rows`` rows at a time, by pandas' own reader: the cells a whole read by it
    gives (:func:`read_csv_text`), for the files Arrow does not read (another encoding, a row short of
    fields, a column named twice)."""
    chunks = pd.read_csv(path, **_pandas_text_options(encoding, sep, header_row), chunksize=rows)
    with chunks:
        for df in chunks:
            df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
            yield df.reset_index(drop=True)


def _text_frame(table) -> pd.DataFrame:
    """Return Arrow text columns as the frame :func:`read_csv_text` gives, its names cleaned the same way."""
    df = table.to_pandas(types_mapper=_as_text, split_blocks=True)
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    return df


def _as_text(t):
    """Return pandas' text dtype for Arrow text (what pandas' own reader gives for ``dtype=str``)."""
    import pyarrow as pa

    return pd.StringDtype("pyarrow", na_value=np.nan) if t in (pa.large_string(), pa.string()) else None


# --------------------------------------------------------------------------- SQL
def resolve_url(url: str, base: Path | None = None) -> str:
    """Return ``url`` with ``${VAR}`` read from the environment and a relative SQLite path made absolute."""

    def env(m: re.Match) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise DataError(f"database URL {redact(url)}: environment variable {name} is not set")
        return os.environ[name]

    url = re.sub(r"\$\{(\w+)\}", env, url)
    m = re.match(r"^(sqlite(?:\+\w+)?):///(.*)$", url)
    if m and m.group(2) and not m.group(2).startswith((":memory:", "/", "file:")) and base is not None:
        url = f"{m.group(1)}:///{(Path(base) / m.group(2)).resolve()}"
    return url


def _is_sqlite(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0].split("+", 1)[0] == "sqlite"


def readonly_engine(url: str):
    """Return a SQLAlchemy engine that opens ``url`` read-only where the database can.

    SQLite is opened through a ``file:…?mode=ro`` URI (writes fail, the file is never
    created); PostgreSQL transactions are ``READ ONLY``; MySQL/MariaDB sessions are
    set read-only. Other databases are only ever sent the one SELECT.
    """
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        import sqlite3

        db = u.database or ""
        if not db or db == ":memory:":
            raise DataError(f"database URL {redact(url)}: a SQLite source needs a file path")
        file = Path(db)
        if not file.is_file():
            raise DataError(f"SQLite database not found: {file}")
        uri = f"file:{file.resolve().as_posix()}?mode=ro"
        return sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    if u.get_backend_name() == "postgresql":
        return sa.create_engine(u, execution_options={"postgresql_readonly": True})
    engine = sa.create_engine(u)
    if u.get_backend_name() in ("mysql", "mariadb"):

        @sa.event.listens_for(engine, "connect")
        def _readonly(dbapi_conn, _record):  # pragma: no cover - no MySQL server in the tests
            cur = dbapi_conn.cursor()
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            cur.close()

    return engine


def _text(v: Any) -> str | None:
    """Return a database value as the text an export would show."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, _dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S") if not v.microsecond else v.isoformat(sep=" ")
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, float):
        if v != v:  # NaN
            return None
        return repr(v)
    if isinstance(v, (int, decimal.Decimal)):
        return str(v)
    if isinstance(v, (bytes, memoryview)):
        return bytes(v).decode("utf-8", errors="replace")
    return str(v)


def read_sql_text(
    url: str, table: str | None = None, query: str | None = None, order_by: str | None = None, label: str = ""
) -> pd.DataFrame:
    """Read a database table or SELECT query as text cells, on a read-only connection; never commits."""
    import sqlalchemy as sa

    where = f"{label}: " if label else ""
    try:
        engine = readonly_engine(url)
    except DataError as exc:
        raise DataError(f"{where}{exc}") from None
    except Exception as exc:  # bad URL, driver not installed…
        raise DataError(f"{where}cannot open database {redact(url)}: {exc}") from None
    stmts = []
    if table is not None:
        schema, _, name = table.rpartition(".")
        stmt = sa.select(sa.text("*")).select_from(sa.table(name, schema=schema or None))
        if order_by:
            stmts.append(stmt.order_by(*[sa.column(c.strip()) for c in order_by.split(",")]))
        elif _is_sqlite(url):  # the order rows were loaded in; a view or WITHOUT ROWID table has no rowid
            stmts.append(stmt.order_by(sa.literal_column("rowid")))
        stmts.append(stmt)
        what = f"table {table}"
    else:
        stmts.append(sa.text(query.strip().rstrip(";")))
        what = "query"
    try:
        with engine.connect() as conn:
            for i, stmt in enumerate(stmts):
                try:
                    result = conn.execute(stmt)
                    cols = [str(c).strip() for c in result.keys()]
                    rows = result.fetchall()
                    break
                except Exception:
                    if i == len(stmts) - 1 or order_by:
                        raise
                finally:
                    conn.rollback()  # read-only: nothing to keep, and nothing is ever committed
    except Exception as exc:
        msg = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise DataError(f"{where}cannot read {what} from {redact(url)}: {msg}") from None
    finally:
        engine.dispose()
    df = pd.DataFrame([[_text(v) for v in r] for r in rows], columns=cols, dtype=object)
    if not len(rows):
        df = pd.DataFrame(columns=cols, dtype=object)
    return df


# --------------------------------------------------------------------------- raw exports
def read_export(
    path: Path,
    table: str,
    sheet: str | None = None,
    *,
    encoding: str | None = None,
    sep: str | None = None,
    header_row: int = 1,
) -> pd.DataFrame:
    """Read one export file as text, exactly as it is, without writing to it.

    CSV is read as UTF-8 (with or without BOM), falling back to GB18030 as Chinese
    Excel saves it (GBK is a subset), with the separator (comma, semicolon, tab, '|')
    that gives the table's columns; ``encoding`` and ``sep`` override the detection.
    Excel reads ``sheet`` (default: the sheet named after the table, else the first)
    with its header on ``header_row``. Raises :class:`DataError` naming the file when
    it is absent, empty or unreadable. See :mod:`crmnb.intake.sources` for SQL sources.
    """
    from crmnb.intake.sources import Located, TableSource, _is_excel

    spec = TableSource.model_construct(
        file=str(path), sql=None, encoding=encoding, sep=sep, sheet=sheet, header_row=header_row, mapping=None
    )
    loc = Located(table, "excel" if _is_excel(Path(path)) else "csv", spec, path=Path(path))
    return read(loc, list(TABLES[table].columns) if table in TABLES else ()).frame
