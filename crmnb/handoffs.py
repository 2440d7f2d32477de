"""The step hand-offs of a case: each step writes its tables and records under outputs/<case_id>/data/, later steps read them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from crmnb.errors import HandoffMissing
from crmnb.frames import bind_views, connect, isin, read_rows
from crmnb.handoff_catalogue import EXTENSIONS as EXTENSIONS
from crmnb.handoff_catalogue import HANDOFF_STEPS as HANDOFF_STEPS
from crmnb.handoff_catalogue import HANDOFFS as HANDOFFS
from crmnb.handoff_catalogue import Handoff as Handoff
from crmnb.handoff_catalogue import Kind as Kind
from crmnb.handoff_catalogue import Sheet as Sheet
from crmnb.handoff_catalogue import handoff as handoff
from crmnb.handoff_catalogue import sheets as sheets
from crmnb.intake.parse import Intake
from crmnb.intake.schema import TABLES

PARQUET_OPTIONS: dict[str, Any] = {"compression": "lz4", "row_group_size": 128 * 1024}
"""How table hand-offs are written: LZ4 (decodes faster than Snappy at about the same size) in row groups
of 128 Ki rows, so a query or a read of a few columns runs over the groups in parallel."""


@dataclass
class Workspace:
    """The output folder of one case: ``<output_root>/<case_id>/``.

    Tables are written and read as Parquet with pyarrow; nothing written is kept in memory, so a step
    holds only the frames it reads. :meth:`read` takes ``columns`` to read only those; :meth:`sql`
    and :meth:`query` run DuckDB SQL over the hand-offs, each visible as a view by its name
    (``clean.orders``, ``deep_dive.rfm``).
    """

    root: Path
    case_id: str
    _engine: Any = field(default=None, repr=False, compare=False)  # DuckDB, opened by the first query
    _views: set[str] = field(default_factory=set, repr=False, compare=False)

    @property
    def folder(self) -> Path:
        """Return the case's output folder."""
        return self.root / self.case_id

    @property
    def data(self) -> Path:
        """Return the folder of the step hand-offs."""
        return self.folder / "data"

    def _path(self, name: str, kind: Kind, writing: bool = False) -> Path:
        # a write must match the declared kind; a read of the other kind finds no file, and says which step
        # writes the name
        handoff(name, kind if writing else None)
        return self.data / f"{name}.{EXTENSIONS[kind]}"

    def write(self, name: str, df: pd.DataFrame) -> Path:
        """Write a table hand-off as Parquet and return its path."""
        import pyarrow.parquet as pq

        path = self._path(name, "table", writing=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        if df.attrs:
            try:
                json.dumps(df.attrs)
            except (TypeError, ValueError):  # pyarrow would leave them out with a warning in the notebook
                df = df.copy(deep=False)
                df.attrs = {}  # in-memory notes of a step (a routing's simulated gains), not part of the table
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, **PARQUET_OPTIONS)
        self._views.discard(name)  # a view binds the file's columns: bind it anew at the next query
        return path

    def read(
        self, name: str, columns: list[str] | tuple[str, ...] | None = None, where: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Read a table hand-off, or say which step to run first.

        ``columns``: only these, in this order. ``where``: only the rows whose value in each given
        column is one of the given values (a missing value matches a missing one, as ``Series.isin``),
        in the file's order; the rest are never converted to pandas.
        """
        path = self._path(name, "table")
        if not path.exists():
            raise self._missing(name, path)
        if columns is not None:
            columns = list(columns)
            self._check_columns(name, path, columns)
        if not where:
            return pd.read_parquet(path, columns=columns)
        self._check_columns(name, path, list(where))
        try:
            return read_rows(path, where, columns)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            # values of another type than the column's (numbers for text…): pandas' own rules, as Series.isin
            df = pd.read_parquet(path, columns=None if columns is None else list(dict.fromkeys([*columns, *where])))
            for column, values in where.items():
                df = df[isin(df[column], values)]
            return df.reset_index(drop=True) if columns is None else df[columns].reset_index(drop=True)

    def columns(self, name: str) -> list[str]:
        """Return the columns of a table hand-off, read from its file's schema alone."""
        import pyarrow.parquet as pq

        path = self._path(name, "table")
        if not path.exists():
            raise self._missing(name, path)
        return list(pq.read_schema(path).names)

    def _check_columns(self, name: str, path: Path, wanted: list[str]) -> None:
        import pyarrow.parquet as pq

        have = pq.read_schema(path).names
        unknown = [c for c in wanted if c not in have]
        if unknown:
            raise KeyError(f"hand-off '{name}' has no column {', '.join(map(repr, unknown))}; it has {', '.join(have)}")

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a small hand-off (figures, sentences) as JSON."""
        path = self._path(name, "json", writing=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        return path

    def read_json(self, name: str) -> Any:
        """Read a JSON hand-off, or say which step to run first."""
        path = self._path(name, "json")
        if not path.exists():
            raise self._missing(name, path)
        return json.loads(path.read_text(encoding="utf-8"))

    def exists(self, name: str) -> bool:
        """Return True when the hand-off has been written."""
        h = handoff(name)
        return self._path(name, h.kind).exists()

    def tables(self, step: str) -> Tables:
        """Return every canonical table a step wrote (``intake`` or ``clean``), each read when first used."""
        for name in TABLES:
            handoff(f"{step}/{name}")  # a step that writes no canonical tables is refused now, not at first use
        return Tables(self, step)

    def query(self, sql: str, params: list | dict | None = None, needs: tuple[str, ...] = ()):
        """Return a DuckDB relation of ``sql`` over the hand-offs, lazily evaluated.

        Each table hand-off written so far is a view by its name, ``folder.name``; a name in ``needs``
        that is not written yet raises :class:`HandoffMissing` naming the step to run.

        >>> import tempfile
        >>> ws = Workspace(Path(tempfile.mkdtemp()), "case")
        >>> _ = ws.write("deep_dive/tiers", pd.DataFrame({"tier": ["A", "B"], "revenue": [3.0, 1.0]}))
        >>> ws.sql("SELECT sum(revenue) AS revenue FROM deep_dive.tiers")["revenue"].tolist()
        [4.0]
        """
        for name in needs:
            path = self._path(name, "table")
            if not path.exists():
                raise self._missing(name, path)
        con = self._connection()
        self._bind_views(con)
        return con.sql(sql, params=params)

    def sql(self, sql: str, params: list | dict | None = None, needs: tuple[str, ...] = ()) -> pd.DataFrame:
        """Return the result of DuckDB ``sql`` over the hand-offs as a pandas frame (see :meth:`query`)."""
        return self.query(sql, params, needs).df()

    def close(self) -> None:
        """Close the DuckDB connection, if a query opened one."""
        if self._engine is not None:
            self._engine.close()
            self._engine, self._views = None, set()

    def _connection(self):
        if self._engine is None:
            self._engine = connect()
        return self._engine

    def _bind_views(self, con) -> None:
        tables = {n: self._path(n, "table") for n, h in HANDOFFS.items() if h.kind == "table" and n not in self._views}
        self._views |= bind_views(con, {n: p for n, p in tables.items() if p.exists()})

    def _missing(self, name: str, path: Path) -> HandoffMissing:
        number, notebook = handoff(name).step
        return HandoffMissing(f"hand-off '{name}' not found at {path}: run step {number} ({notebook}.ipynb) first")


class Tables(MutableMapping):
    """The canonical tables of one step, read from their hand-offs when first used.

    A step that needs three of the eleven tables reads three: at 100 times the demo
    data, the visits and activities alone are 12 million rows. ``columns(name, [...])``
    reads only some columns of a table (taken from the whole table when it is read
    already); ``release(name)`` lets go of what was read. A missing hand-off raises
    :class:`HandoffMissing` when it is used, naming the step to run.
    """

    def __init__(self, ws: Workspace, step: str):
        self._ws, self._step = ws, step
        self._names = list(TABLES)
        self._got: dict[str, pd.DataFrame] = {}
        self._set: set[str] = set()  # tables a notebook put here itself: never re-read from a file
        self._narrowed: dict[str, list[str]] = {}  # the columns read of a table when it is used whole
        self._row_columns: dict[str, list[str]] = {}  # ... and when some of its rows are read

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._got:
            if name not in self._names:
                raise KeyError(name)
            self._got[name] = self._ws.read(f"{self._step}/{name}", columns=self._narrowed.get(name))
        return self._got[name]

    def narrow(self, name: str, columns: Iterable[str], rows: Iterable[str] | None = None) -> None:
        """Read only ``columns`` of table ``name`` (those its hand-off has) when it is first used whole, and
        only ``rows`` (default: ``columns``) when some of its rows are read by :meth:`where`.

        What a step keeps of a large table is then what its analyses read; ``columns`` and ``where`` that
        ask for another column read it from the file. No effect once the table is read or set here.
        """
        path = self.unread_file(name)
        if path is None:
            return
        import pyarrow.parquet as pq

        have = pq.read_schema(path).names
        wanted, by_rows = set(columns), set(columns if rows is None else rows)
        self._narrowed[name] = [c for c in have if c in wanted]
        self._row_columns[name] = [c for c in have if c in by_rows]

    def _holds(self, name: str, columns: Iterable[str]) -> bool:
        """Whether the frame read or set under ``name`` has ``columns``."""
        if name not in self._got:
            return False
        return name in self._set or all(c in self._got[name] for c in columns)

    def unread_file(self, name: str) -> Path | None:
        """Return the hand-off file of table ``name`` while it has not been read whole, else None.

        None also when a notebook set the table here itself, or its hand-off has not been written.
        """
        if name in self._got or name not in self._names:
            return None
        path = self._ws.data / self._step / f"{name}.{EXTENSIONS['table']}"
        return path if path.exists() else None

    def columns(self, name: str, columns: list[str] | tuple[str, ...]) -> pd.DataFrame:
        """Return only ``columns`` of table ``name``: from the table if read already with them, else from its file."""
        if self._holds(name, columns):
            return self._got[name][list(columns)]
        if name not in self._names:
            raise KeyError(name)
        return self._ws.read(f"{self._step}/{name}", columns=columns)

    def where(self, name: str, column: str, values: Any, columns: list[str] | None = None) -> pd.DataFrame:
        """Return the rows of table ``name`` whose ``column`` is among ``values`` (only ``columns`` when given).

        Taken from the table when it is read already with those columns; else only those rows are read from its file.
        """
        if columns is None:
            columns = self._row_columns.get(name)  # a narrowed table's rows: its declared columns
        if self._holds(name, [column, *(columns or ())]):
            df = self._got[name]
            df = df[isin(df[column], values)].reset_index(drop=True)
            return df if columns is None else df[list(columns)]
        if name not in self._names:
            raise KeyError(name)
        return self._ws.read(f"{self._step}/{name}", columns=columns, where={column: values})

    def release(self, *names: str) -> None:
        """Let go of the tables read so far under ``names``; they are read again when next used."""
        for name in names:
            if name not in self._set:
                self._got.pop(name, None)

    def __setitem__(self, name: str, df: pd.DataFrame) -> None:
        if name not in self._names:
            self._names.append(name)
        self._got[name] = df
        self._set.add(name)

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._got.pop(name, None)
        self._narrowed.pop(name, None)
        self._row_columns.pop(name, None)
        self._set.discard(name)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self):
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<{self._step} tables: {', '.join(self._names)}; read so far: {', '.join(self._got) or 'none'}>"


def save_intake(ws: Workspace, intakes: Mapping[str, Intake] | Iterable[tuple[str, Intake]]) -> dict[str, Intake]:
    """Write every intake table as it comes, then the unreadable values and the date formats.

    ``intakes`` is a mapping, or pairs as :func:`crmnb.intake.load.iter_tables` yields them
    one at a time: each table is written and let go before the next is taken in, so step 2
    holds one table rather than all; a CSV export it takes in and writes a batch at a time, so
    step 2 holds one batch of it. Returns every table's intake without its rows
    (:meth:`Intake.summarised`: notes, issues, formats and the inventory's figures), in the order of the tables.
    """
    from crmnb.intake.parse import all_formats, all_issues

    def sink(name: str) -> tuple[Path, dict[str, Any]]:
        ws._views.discard(f"intake/{name}")  # a view binds the file's columns: bind it anew at the next query
        return ws._path(f"intake/{name}", "table", writing=True), PARQUET_OPTIONS

    if hasattr(intakes, "write_to"):
        intakes = intakes.write_to(sink)
    kept: dict[str, Intake] = {}
    for name, got in intakes.items() if isinstance(intakes, Mapping) else intakes:
        if not got.batches:  # taken in whole: written here
            ws.write(f"intake/{name}", got.table)
        kept[name] = got.summarised(name)
        del got
    kept = {name: kept[name] for name in TABLES if name in kept}
    if any(got.issues_file is not None for got in kept.values()):  # many: written from the files they are in
        from crmnb.intake.spill import write_issues

        write_issues(sink("issues")[0], kept, PARQUET_OPTIONS)
    else:
        ws.write("intake/issues", all_issues(kept))
    ws.write("intake/formats", all_formats(kept))
    return kept


def save_cleaned(ws: Workspace, cleaned) -> None:
    """Write the cleaned tables, the cleaning log, the quarantine, the merges and the row reconciliation.

    Each cleaned table is built from its intake table, checked and written in batches, one table at a
    time, and not kept: ``cleaned.tables`` reads it back from its hand-off when next used.
    """
    for name in cleaned.tables:
        handoff(f"clean/{name}", "table")
        cleaned.tables.write(name, ws.data / f"clean/{name}.{EXTENSIONS['table']}")
    ws.write("clean/log", cleaned.log)
    ws.write("clean/quarantine", cleaned.quarantine)
    ws.write("clean/merges", cleaned.merges)
    ws.write("clean/reconciliation", cleaned.reconciliation)
