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
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crmnb.intake.mappings import MappingSpec
from crmnb.intake.schema import DEFAULT_FILES, TABLES

SEPARATORS: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
"""Separators CSV exports use, tried in this order."""

_SEP_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
ENCODINGS: tuple[str, ...] = ("utf-8-sig", "gb18030")
"""Encodings tried when none is declared: UTF-8 (a BOM is dropped), then GB18030 (a superset of GBK)."""


_SECRET_NAME = re.compile(r"(?i)pass|pwd|secret|token|key|auth|credential")
"""Query parameters that hold a secret: password=, pwd=, passphrase=, key=, cipher_key=, auth_token=…"""

_INNER_SECRET = re.compile(r"(?i)((?:pwd|password|passphrase|key)\s*(?:=|%3D))(?!\*\*\*|\$\{)((?:(?!;|%3B|&).)*)")
"""A secret inside a parameter's value, as ODBC connection strings write it: odbc_connect=…;PWD=x;…"""


def redact(url: str | None) -> str:
    """Return a database URL without its password, in any part of it.

    The password of the user part (also with an empty user name, as SQLCipher URLs have it) and the
    value of every query parameter that holds a secret become ``***``; a whole ``${VAR}`` reference
    is no secret and stays, so a message can say which variable is meant.

    >>> redact("postgresql://analyst:s3cr@t@db:5432/crm?sslmode=require&password=hunter2")
    'postgresql://analyst:***@db:5432/crm?sslmode=require&password=***'
    >>> redact("sqlite+pysqlcipher://:passphrase@/crm.db?cipher=aes-256-cfb&kdf_iter=64000")
    'sqlite+pysqlcipher://:***@/crm.db?cipher=aes-256-cfb&kdf_iter=64000'
    >>> redact("mysql://bi:${DB_PASSWORD}@db/crm"), redact("sqlite:///data/crm.db")
    ('mysql://bi:${DB_PASSWORD}@db/crm', 'sqlite:///data/crm.db')
    """
    return _hide(url, lambda _secret: "***")


def as_references(url: str, names: Iterator[str]) -> tuple[str, dict[str, str]]:
    """Return a database URL with each secret in it replaced by a ``${VAR}`` reference, the variables
    named from ``names``, and the value of each variable: what a URL is recorded as, the values given
    only to the process that connects.

    >>> as_references("postgresql://bi:hunter2@db/crm?key=k1", iter(["S1", "S2"]))
    ('postgresql://bi:${S1}@db/crm?key=${S2}', {'S1': 'hunter2', 'S2': 'k1'})
    """
    values: dict[str, str] = {}

    def refer(secret: str) -> str:
        name = next(names)
        values[name] = secret
        return "${" + name + "}"

    return _hide(url, refer), values


def _hide(url: str | None, hide: Callable[[str], str]) -> str:
    """Return ``url`` with each secret in it replaced by ``hide(secret)``: the user part's password and the
    values of the query parameters that hold one (see :func:`redact`)."""
    if not url:
        return ""
    base, q, query = str(url).partition("?")
    m = re.match(r"^([^:/?]*://)([^/].*)@", base)  # the user part runs to the last '@' before the query
    if m and ":" in m.group(2):
        user, _, password = m.group(2).partition(":")
        if not re.fullmatch(r"\$\{\w+\}|\*\*\*", password):
            base = f"{m.group(1)}{user}:{hide(password)}@{base[m.end() :]}"
    # a parameter's value ends at '&' or a blank
    query = re.sub(r"(^|&)([^=&]*)=([^&\s]*)", lambda p: _hide_parameter(p, hide), query)
    return base + q + query


def _hide_parameter(m: re.Match, hide: Callable[[str], str]) -> str:
    lead, name, value = m.groups()
    if _SECRET_NAME.search(name) and not re.fullmatch(r"\$\{\w+\}|\*\*\*|", value):
        return f"{lead}{name}={hide(value)}"
    return lead + name + "=" + _INNER_SECRET.sub(lambda i: i.group(1) + (hide(i.group(2)) if i.group(2) else ""), value)


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
    def _one_of(self) -> SqlSource:
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
    - ``decimal``: ``","`` when amounts are written ``1.234,50``, ``"."`` for ``1,234.50``;
      default: detected per column, and asked for when a column could be read both ways.
    - ``sheet`` (Excel): the sheet's name; ``header_row``: the row holding the column
      names, 1-based (default 1; for CSV too, for exports with title lines).
    - ``mapping``: a preset name (``salesforce_opportunity``…) or a
      :class:`crmnb.intake.mappings.MappingSpec`, to read a CRM's own column names and values.

    A plain string is short for ``{file: <string>}``.
    """

    file: str | None = None
    sql: SqlSource | None = None
    encoding: str | None = None
    sep: str | None = None
    decimal: Literal[".", ","] | None = None
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
    def _consistent(self) -> TableSource:
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
