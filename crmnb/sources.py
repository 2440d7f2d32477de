"""Where each canonical table comes from: a CSV or Excel file, or a SQL database, declared per table.

A case file's ``data`` section names the folder of the exports and, per table,
how to read it (see :class:`TableSource`)::

    data:
      dir: exports                       # files are relative to this folder
      files: {orders: orders_2025.csv}   # just another file name (still works)
      sql_url: sqlite:///crm.db          # optional: tables not declared below come from here
      tables:
        orders: {file: orders.csv, encoding: gbk, sep: ";"}
        campaigns: {file: campaigns.xlsx, sheet: 活动, header_row: 2}
        leads: {sql: {table: leads}}                       # from sql_url
        customers:
          sql: {url: "postgresql+psycopg://analyst@db/crm", query: "select * from crm.accounts"}
        opportunities: {file: Opportunity.csv, mapping: salesforce_opportunity}

Every source is read as text, exactly as it is, and never written to:

- CSV: the encoding is UTF-8 (with or without BOM), else GB18030 (which reads GBK);
  the separator is whichever of comma, semicolon, tab or '|' gives the expected
  columns. Declared ``encoding`` and ``sep`` win.
- Excel: ``sheet`` (default: the sheet named after the table, else the first) with
  the header on ``header_row`` (1-based, as Excel numbers rows).
- SQL through SQLAlchemy: a table or a single SELECT query, on a read-only
  connection: SQLite is opened with ``mode=ro``, PostgreSQL and MySQL in a
  read-only transaction; nothing is ever committed. A relative SQLite path is
  taken from ``data.dir``; ``${VAR}`` in a URL is read from the environment, so no
  password needs to sit in a case file.

Row numbers (``_row``) count the data rows of the export from 1, the header not
counted; messages and the quarantine use them.
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import decimal
import io as _io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import CrmnbError, DataError
from .mappings import MappingSpec
from .schema import DEFAULT_FILES, TABLES

SEPARATORS: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
"""Separators CSV exports use, tried in this order."""

_SEP_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
ENCODINGS: tuple[str, ...] = ("utf-8-sig", "gb18030")
"""Encodings tried when none is declared: UTF-8 (a BOM is dropped), then GB18030 (a superset of GBK)."""


# --------------------------------------------------------------------------- case-file models
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class SqlSource(_Model):
    """A table read from a database through SQLAlchemy, read-only.

    ``url`` is a SQLAlchemy URL (default: ``data.sql_url``); ``table`` names a table
    (``schema.table`` allowed) or ``query`` is one SELECT statement; ``order_by``
    fixes the row order (and so the row numbers) of a table read.
    """

    url: str | None = None
    table: str | None = None
    query: str | None = None
    order_by: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "SqlSource":
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        if self.query is not None and not re.match(r"(?is)^\s*(select|with)\b", self.query):
            raise ValueError("query must be a single SELECT (or WITH … SELECT) statement: sources are read-only")
        if self.query is not None and ";" in self.query.strip().rstrip(";"):
            raise ValueError("query must be a single statement (no ';' inside)")
        if self.table is not None and not re.fullmatch(r"[\w$]+(\.[\w$]+)?", self.table):
            raise ValueError(f"table {self.table!r} must be a name or schema.name")
        if self.order_by is not None and not re.fullmatch(r"[\w$]+(\s*,\s*[\w$]+)*", self.order_by):
            raise ValueError(f"order_by {self.order_by!r} must be column names separated by commas")
        return self


class TableSource(_Model):
    """How one canonical table is read (``data.tables.<table>``).

    - ``file``: a CSV or Excel file in ``data.dir`` (default: ``data.files`` or the
      usual name, e.g. ``orders.csv``); or ``sql``: a :class:`SqlSource`.
    - ``encoding`` (CSV): e.g. ``utf-8``, ``gbk``, ``gb18030``; default: detected.
    - ``sep`` (CSV): ``,`` ``;`` ``tab`` ``|``; default: detected.
    - ``sheet`` (Excel): the sheet's name; ``header_row``: the row holding the column
      names, 1-based (default 1; for CSV too, for exports with title lines).
    - ``mapping``: a preset name (``salesforce_opportunity``…) or a
      :class:`crmnb.mappings.MappingSpec`, to read a CRM's own column names and values.

    A plain string is short for ``{file: <string>}``.
    """

    file: str | None = None
    sql: SqlSource | None = None
    encoding: str | None = None
    sep: str | None = None
    sheet: str | None = None
    header_row: int = Field(1, ge=1, le=1000)
    mapping: str | MappingSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _short(cls, v: Any) -> Any:
        return {"file": v} if isinstance(v, str) else v

    @field_validator("encoding")
    @classmethod
    def _codec(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                codecs.lookup(v)
            except LookupError:
                raise ValueError(f"unknown encoding {v!r} (e.g. utf-8, gbk, gb18030)") from None
        return v

    @field_validator("sep", mode="before")
    @classmethod
    def _separator(cls, v: Any) -> Any:
        if v is None:
            return v
        v = str(v)
        v = _SEP_NAMES.get(v.strip().lower(), v) if v.strip() else v
        if v not in SEPARATORS:
            raise ValueError(f"separator {v!r} not supported; use one of ',', ';', 'tab', '|'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "TableSource":
        if self.file is not None and self.sql is not None:
            raise ValueError("give either 'file' or 'sql', not both")
        if self.sql is not None and (self.encoding or self.sep or self.sheet or self.header_row != 1):
            raise ValueError("encoding, sep, sheet and header_row are for files, not for 'sql'")
        if self.file is not None and self.sheet is not None and not _is_excel(Path(self.file)):
            raise ValueError(f"'sheet' is for Excel files; {self.file} is not one")
        if isinstance(self.mapping, str):
            MappingSpec(preset=self.mapping)  # unknown preset: the same message as a written-out mapping
        return self


def check_tables(tables: dict[str, TableSource], files: dict[str, str], sql_url: str | None) -> None:
    """Check ``data.tables`` against the canonical tables, ``data.files`` and ``data.sql_url``; raise ValueError."""
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown table(s) {', '.join(unknown)}; expected some of {', '.join(TABLES)}")
    for name, src in tables.items():
        if src.file is not None and name in files and files[name] != src.file:
            raise ValueError(f"table '{name}': data.files says {files[name]!r} but data.tables says {src.file!r}")
        if src.sql is not None and src.sql.url is None and not sql_url:
            raise ValueError(f"table '{name}': sql needs a 'url' (or data.sql_url)")
        if src.mapping is not None:
            spec = MappingSpec(preset=src.mapping) if isinstance(src.mapping, str) else src.mapping
            problems = spec.check_table(name)
            if problems:
                raise ValueError(f"table '{name}': mapping: " + "; ".join(problems))


# --------------------------------------------------------------------------- locating a table
@dataclass(frozen=True)
class Located:
    """Where one table of a case comes from."""

    table: str
    kind: str  # csv / excel / sql
    spec: TableSource
    path: Path | None = None
    url: str | None = None
    key: str = ""  # the case-file key that declares it

    @property
    def label(self) -> str:
        """Return the source as messages name it: the file path, or the database and table or query."""
        if self.kind != "sql":
            return str(self.path)
        what = f"table {self.spec.sql.table}" if self.spec.sql.table else "query"
        return f"{redact(self.url)} ({what})"

    @property
    def name(self) -> str:
        """Return a short name: the file name or the database table."""
        if self.kind != "sql":
            return self.path.name
        return self.spec.sql.table or "query"


def _is_excel(path: Path) -> bool:
    return path.suffix.lower() in (".xlsx", ".xlsm", ".xls")


def locate(data: Any, table: str) -> Located:
    """Return where ``table`` comes from under a case's ``data`` section (a ``DataSource``)."""
    tables = getattr(data, "tables", {}) or {}
    spec = tables.get(table)
    sql_url = getattr(data, "sql_url", None)
    if spec is None and sql_url and table not in data.files:
        spec = TableSource(sql=SqlSource(table=table))
        key = "data.sql_url"
    else:
        key = f"data.tables.{table}" if spec is not None else (f"data.files.{table}" if table in data.files else "")
        spec = spec or TableSource()
    if spec.sql is not None:
        return Located(table, "sql", spec, url=spec.sql.url or sql_url, key=key)
    path = Path(data.dir) / (spec.file or data.files.get(table) or DEFAULT_FILES[table])
    return Located(table, "excel" if _is_excel(path) else "csv", spec, path=path, key=key)


# --------------------------------------------------------------------------- reading
@dataclass
class Raw:
    """One export as read: text cells, and how it was read."""

    frame: pd.DataFrame
    source: Located
    encoding: str | None = None
    sep: str | None = None
    notes: list[str] = field(default_factory=list)


def read(loc: Located, expected: list[str] | tuple[str, ...] = ()) -> Raw:
    """Read a located source as text, exactly as it is, without writing to it.

    ``expected`` are column names the export should have (used to recognise the
    CSV separator). Raises :class:`DataError` naming the source when it is absent,
    empty or unreadable.
    """
    if loc.kind == "sql":
        return Raw(read_sql_text(loc.url, table=loc.spec.sql.table, query=loc.spec.sql.query,
                                 order_by=loc.spec.sql.order_by, label=f"table '{loc.table}'"), loc)
    path = loc.path
    where = f"table '{loc.table}'"
    decl = f" (declared in {loc.key})" if loc.key else ""
    if not path.exists():
        near = sorted(p.name for p in path.parent.glob(f"*{path.suffix}")) if path.parent.is_dir() else []
        hint = f"; files there: {', '.join(near[:8])}" if near else \
            ("" if path.parent.is_dir() else f"; the folder {path.parent} does not exist")
        raise DataError(f"{where}: file not found: {path}{decl}{hint}")
    if path.stat().st_size == 0:
        raise DataError(f"{where}: file is empty: {path} (not even a header row)")
    try:
        if loc.kind == "excel":
            return Raw(read_excel_text(path, loc.table, loc.spec.sheet, loc.spec.header_row), loc)
        df, enc, sep = read_csv_text(path, loc.spec.encoding, loc.spec.sep, loc.spec.header_row, expected)
        return Raw(df, loc, enc, sep)
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
            raise DataError(f"table '{table}': sheet '{chosen}' not in {path.name} "
                            f"(sheets: {', '.join(names)}); full path {path}")
        df = pd.read_excel(book, sheet_name=chosen, dtype=str, keep_default_na=False, na_values=[""],
                           header=header_row - 1)
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _decode_sample(path: Path, encoding: str | None, size: int = 1 << 16) -> tuple[str, str]:
    with open(path, "rb") as fh:  # read-only, and only the first bytes
        data = fh.read(size)
    whole = len(data) < size
    if encoding is not None:
        enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        return codecs.getincrementaldecoder(enc)(errors="replace").decode(data, final=whole), enc
    for enc in ENCODINGS:
        try:  # incremental: a character cut at the end of the sample is not an error
            return codecs.getincrementaldecoder(enc)().decode(data, final=whole), enc
        except UnicodeDecodeError:
            continue
    raise DataError(f"cannot decode {path}: neither UTF-8 nor GB18030; declare its encoding "
                    f"(data.tables.<table>.encoding)")


def detect_separator(sample: str, expected: list[str] | tuple[str, ...] = (), header_row: int = 1) -> str:
    """Return the separator of a CSV sample: the candidate whose header holds most of the expected
    columns, then whose lines split into the same number of fields, then the most fields.

    >>> detect_separator("a;b;c\\n1;2,5;3\\n", ["a", "b"])
    ';'
    """
    lines = sample.splitlines()[header_row - 1:][:50]
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


def read_csv_text(path: Path, encoding: str | None = None, sep: str | None = None, header_row: int = 1,
                  expected: list[str] | tuple[str, ...] = ()) -> tuple[pd.DataFrame, str, str]:
    """Read a CSV export as text; return it with the encoding and separator used."""
    sample, enc = _decode_sample(path, encoding)
    if sep is None:
        sep = detect_separator(sample, expected, header_row)
    candidates = [enc] if encoding is not None else list(ENCODINGS[ENCODINGS.index(enc):])
    last: Exception | None = None
    for e in candidates:
        try:
            df = _read_csv_fast(path, e, sep, header_row)
            if df is None:
                df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding=e, sep=sep,
                                 skiprows=header_row - 1, engine="c")
            break
        except UnicodeDecodeError as exc:  # the sample decoded, a later part does not
            last = exc
    else:
        how = f"as {encoding} (declared)" if encoding else "as UTF-8 or GB18030"
        raise DataError(f"cannot decode {path} {how}: {last}")
    df.columns = [str(c).strip().lstrip("\ufeff") for c in df.columns]
    return df, e, sep


def _read_csv_fast(path: Path, encoding: str, sep: str, header_row: int) -> pd.DataFrame | None:
    """Read a UTF-8 CSV with Arrow's multi-threaded reader, or return None to read it with pandas'.

    Arrow reads an export about three times as fast. It is stricter: a row with too many
    or too few fields, a line break inside a quoted value, a duplicated column name or a
    byte that is not UTF-8 stops it; then the export is read again by pandas' own
    reader, which either reads it or says precisely what is wrong.
    """
    if codecs.lookup(encoding).name != "utf-8":
        return None
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding=encoding, sep=sep,
                         skiprows=header_row - 1, engine="pyarrow")
    except Exception:  # noqa: BLE001 - any refusal: pandas' reader gives the message
        return None
    if len(set(map(str, df.columns))) != len(df.columns):
        return None
    return df


# --------------------------------------------------------------------------- SQL
def redact(url: str | None) -> str:
    """Return a database URL without its password."""
    if not url:
        return ""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


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
            raise DataError(f"database URL {url}: a SQLite source needs a file path")
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


def read_sql_text(url: str, table: str | None = None, query: str | None = None, order_by: str | None = None,
                  label: str = "") -> pd.DataFrame:
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


# --------------------------------------------------------------------------- loading a case's tables
def expected_columns(table: str, mapping) -> list[str]:
    """Return the export columns a table's source should have."""
    return mapping.expected_columns() if mapping is not None else list(TABLES[table].columns)


def read_mapped(data: Any, table: str, base: Path | None = None) -> tuple[pd.DataFrame, Located, Raw]:
    """Read one table's source and apply its mapping; return canonical-named text columns."""
    from . import mappings

    loc = locate(data, table)
    if loc.kind == "sql":
        loc = Located(loc.table, loc.kind, loc.spec, url=resolve_url(loc.url, base or Path(data.dir)), key=loc.key)
    mapping = mappings.resolve(loc.spec.mapping, table)
    raw = read(loc, expected_columns(table, mapping))
    if loc.kind == "sql" and loc.spec.sql.table is not None and loc.spec.sql.order_by is None \
            and not _is_sqlite(loc.url):  # SQLite: rowid order, the order the rows were loaded in
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
    return out.reset_index(drop=True), [f"rows numbered in the order of {', '.join(by[:3])}"
                                        + (" …" if len(by) > 3 else "") + " (set order_by to choose)"]


def load_tables(case: Any, progress: Callable[[str], None] | None = None,
                errors: dict[str, CrmnbError] | None = None) -> dict:
    """Read, map, take in and validate every canonical table of a case; never writes to a source.

    Raises the first :class:`DataError` (naming the table and source), or, when
    ``errors`` is given, collects each table's error there and goes on.
    """
    from .io import intake
    from .validate import check_intake

    out: dict[str, Any] = {}

    def take_in(name: str, frame: pd.DataFrame, loc: Located, raw: Raw) -> None:
        try:
            got = intake(frame, name, loc.label)
            if not len(got.table):
                if not TABLES[name].may_be_empty:
                    raise DataError(f"{loc.label} (table '{name}'): the export has a header but no rows; "
                                    f"the analysis cannot do without {name}")
                got.notes.append("the export has a header but no rows: an empty table")
            got.source = loc.label
            got.read_as = {"encoding": "utf-8" if raw.encoding == "utf-8-sig" else raw.encoding, "sep": raw.sep}
            got.notes.extend(raw.notes)
            got.validation = check_intake(got.table, name, loc.label)
            out[name] = got
        except Exception as exc:
            if errors is None:
                raise
            errors[name] = _as_data_error(exc, name)

    # Each table is taken in as soon as it is read and its text dropped, so that only one
    # export's text is in memory at a time; leads and opportunities wait for each other,
    # because converted leads can fill the opportunities' lead ids.
    held: dict[str, tuple[pd.DataFrame, Located, Raw]] = {}
    for name in TABLES:
        try:
            loc = locate(case.data, name)
            if progress:
                progress(f"reading {name} from {loc.name}")
            got = read_mapped(case.data, name)
        except Exception as exc:
            if errors is None:
                raise
            errors[name] = _as_data_error(exc, name)
            got = None
        if name in _LINKED:
            if got is not None:
                held[name] = got
            if name == _LINKED[-1]:
                _take_linked(held, take_in)
        elif got is not None:
            take_in(name, *got)
            del got
    _take_linked(held, take_in)
    if errors is not None:  # in the order of the tables, as they were read before
        found = dict(errors)
        errors.clear()
        errors.update({k: found[k] for k in sorted(found, key=list(TABLES).index)})
    return {name: out[name] for name in TABLES if name in out}


_LINKED = ("leads", "opportunities")
"""Tables taken in together: a lead's converted-opportunity id can fill an opportunity's lead id."""


def _take_linked(held: dict, take_in: Callable) -> None:
    from .mappings import link_converted_leads

    if not held:
        return
    link_converted_leads({k: v[0] for k, v in held.items()})
    for name in list(held):
        take_in(name, *held.pop(name))


def _as_data_error(exc: Exception, table: str) -> CrmnbError:
    """Return a crmnb error as it is, anything else as a DataError naming the table (no bare traceback)."""
    if isinstance(exc, CrmnbError):
        return exc
    return DataError(f"table '{table}': unexpected {type(exc).__name__}: {exc}")
