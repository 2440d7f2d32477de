"""What a case run is made of and what it leaves: the step notebooks, the run record, fingerprints.

Every run leaves ``outputs/<case_id>/run.json``: status, seconds, error, each output written, and
the fingerprint (settings, data, code) that ``--resume`` compares. The runner (``crmnb.run.steps``)
and the batch (``crmnb.run.batch``) both read and write it through this module, never each other.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from crmnb.errors import CaseFileError
from crmnb.params.model import GOAL_METRICS, CaseParams
from crmnb.paths import workbook_root
from crmnb.present.outputs import OUTPUTS

PACKAGE = Path(__file__).resolve().parents[1]
"""The crmnb package's folder: its files are the code a run depends on."""

RUN_FILE = "run.json"
LOG_FILE = "run.log"
INDEX_FILE = "index.html"

STATUSES = ("ok", "failed", "timeout", "skipped", "running", "interrupted")
"""``running``: written before step 1, replaced when the run ends; ``interrupted``: how a record that still
says ``running`` reads once its process is gone (killed, or the machine went down)."""

RUN_ID_ENV = "CRMNB_RUN_ID"
"""Environment variable by which ``crmnb batch`` recognises the run record its child wrote."""


# --------------------------------------------------------------------------- messages about system files
SYSTEM_FOLDERS = (
    *("/etc", "/private/etc", "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib64"),
    *("/var/log", "/var/lib", "/run"),
)
"""Folders of the operating system's own files: a case reading one is pointed at the wrong file."""

_PATH = re.compile(r"(?:[A-Za-z]:\\|/)[^\s()'\";,]+")
_FOUND = "; found: "


def is_system_file(path: str) -> bool:
    """Return True for a path in one of the operating system's folders (symbolic links and '..' followed)."""
    if re.match(r"[A-Za-z]:\\windows\\", path, re.IGNORECASE):
        return True
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return False
    return any(real == f or real.startswith(f + "/") for f in SYSTEM_FOLDERS)


def without_system_lines(text: str) -> str:
    """Return a message with what it quotes of a system file (the header 'found' in /etc/passwd…) left out.

    >>> without_system_lines("/etc/passwd (table 'orders'): required column(s) missing: amount; found: root:x:0:0")
    "/etc/passwd (table 'orders'): required column(s) missing: amount; found: (not quoted: a system file, not a CRM export)"
    """
    out = []
    for line in str(text).splitlines(keepends=True):
        head, found, _rest = line.partition(_FOUND)
        if found and any(is_system_file(p) for p in _PATH.findall(head)):
            end = "\n" if line.endswith("\n") else ""
            line = f"{head}{_FOUND}(not quoted: a system file, not a CRM export){end}"
        out.append(line)
    return "".join(out)


# --------------------------------------------------------------------------- the step notebooks
def step_notebooks(folder: Path) -> list[Path]:
    """Return the numbered step notebooks in run order."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb")) if folder.is_dir() else []


def notebooks_dir(case_file: Path) -> Path:
    """Return the workbook's ``notebooks/`` folder: above the case file, else above the working directory,
    else beside this package (an editable install of the workbook)."""
    tried = []
    for start in (case_file.parent, Path.cwd(), PACKAGE.parent):
        folder = workbook_root(start) / "notebooks"
        if step_notebooks(folder):
            return folder
        tried.append(str(folder))
    raise CaseFileError(f"{case_file}: no step notebooks found (looked in {', '.join(dict.fromkeys(tried))})")


# --------------------------------------------------------------------------- run records and fingerprints
def timestamp() -> str:
    """Return the time now, ISO 8601 with its offset, to the second."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


def short_time(iso: str | None) -> str:
    """Return an ISO time as 'YYYY-MM-DD hh:mm' for people."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def code_hash(notebooks: Iterable[Path]) -> str:
    """Return one hash of the crmnb package's source files and the given notebooks."""
    pkg = PACKAGE
    files = sorted(
        p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )
    h = hashlib.sha256()
    for p in [*files, *sorted(Path(n) for n in notebooks)]:
        name = p.relative_to(pkg).as_posix() if p.is_relative_to(pkg) else p.name
        h.update(name.encode("utf-8") + b"\0" + _sha256(p).encode("ascii") + b"\0")
    return h.hexdigest()


def _data_file(case: CaseParams, table: str) -> Path:
    """Return the file ``table`` is read from: its export, or the SQLite database file it is queried from."""
    source = getattr(case.data, "source", None)
    loc = source(table) if callable(source) else None
    if loc is not None and getattr(loc, "kind", "") == "sql":
        url = str(loc.url or "")
        if not url.startswith("sqlite:///"):
            raise ValueError(f"{table}: read from a database server")
        db = Path(url[len("sqlite:///") :])
        return db if db.is_absolute() else Path(case.data.dir) / db
    return Path(case.data_path(table))


def exports_bytes(case: CaseParams) -> int | None:
    """Return the size of the files the case reads its tables from, or None when one is not a file (a database
    server's table, of unknown size)."""
    from crmnb.intake.schema import TABLES

    total = 0
    for table in TABLES:
        try:
            path = _data_file(case, table)
        except Exception:
            return None
        if path.is_file():
            total += path.stat().st_size
    return total


def fingerprint(case: CaseParams, settings: dict, notebooks: Iterable[Path]) -> dict:
    """Return what a run depends on: the merged settings, each data file's content, and the code.

    Data files are those the case reads (``case.data_path(table)`` for every canonical
    table); one that is absent is recorded as ``missing``.
    """
    from crmnb.intake.schema import TABLES

    def digest(table: str) -> str:
        try:
            path = _data_file(case, table)
            return _sha256(path) if path.is_file() else "missing"
        except Exception:  # a live database cannot be fingerprinted: such a case is never skipped
            return f"unhashable:{uuid.uuid4()}"

    # the hash releases the GIL: a large company's exports (gigabytes) are read on every core at once
    with ThreadPoolExecutor(max(1, min(len(TABLES), os.cpu_count() or 1))) as pool:
        data = dict(zip(TABLES, pool.map(digest, TABLES)))
    text = json.dumps(settings, sort_keys=True, ensure_ascii=False, default=str)
    return {"settings": hashlib.sha256(text.encode("utf-8")).hexdigest(), "data": data, "code": code_hash(notebooks)}


def changes(old: dict | None, new: dict) -> list[str]:
    """Return what differs between two fingerprints, in words ('data: orders', 'case file settings', 'code')."""
    if not old:
        return ["no earlier run"]
    out = []
    if old.get("settings") != new["settings"]:
        out.append("case file settings")
    tables = sorted(
        t for t in set(old.get("data", {})) | set(new["data"]) if old.get("data", {}).get(t) != new["data"].get(t)
    )
    if tables:
        out.append("data: " + ", ".join(tables))
    if old.get("code") != new["code"]:
        out.append("code or notebooks")
    return out


def read_record(folder: Path) -> dict | None:
    """Return a case's ``run.json``, or None when it has none (or it is unreadable)."""
    try:
        rec = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole, then rename it there: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:  # the disk full, say: leave no empty temporary file behind
        tmp.unlink(missing_ok=True)
        raise


def write_record(folder: Path, record: dict) -> Path:
    """Write a case's ``run.json`` (atomically: a reader never sees half a file)."""
    path = folder / RUN_FILE
    write_atomic(path, json.dumps(record, ensure_ascii=False, indent=2, default=str) + "\n")
    return path


SECRET_ENV = "CRMNB_SECRET_"
"""How the variables begin that hand a database URL's secrets to the case's kernel, unrecorded."""


def recorded_settings(settings: dict) -> tuple[dict, dict[str, str]]:
    """Return a case's settings as its notebooks record them, each secret in a database URL replaced by a
    ``${VAR}`` reference, and the value of each variable: those go to the case's kernel only."""
    from crmnb.intake.sources import as_references

    names = (f"{SECRET_ENV}{i}" for i in itertools.count(1))
    env: dict[str, str] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str) and "://" in v:
            out, values = as_references(v, names)
            env.update(values)
            return out
        return v

    return walk(settings), env


def new_record(case: CaseParams, case_file: Path, prints: dict | None, run_id: str | None = None) -> dict:
    """Return the start of a run record: which case, from which file, with which fingerprint."""
    g = case.goal
    return {
        "case_id": case.case_id,
        "title": case.title,
        "department": case.department,
        "goal": {
            "metric": g.metric,
            "unit": GOAL_METRICS[g.metric],
            "baseline": g.baseline,
            "target": g.target,
            "deadline": str(g.deadline),
        },
        "case_file": str(case_file),
        "review_every": getattr(case, "review_every", None),
        "run_id": run_id,
        "started": timestamp(),
        "fingerprint": prints,
    }


def start_record(folder: Path, record: dict) -> Path:
    """Write the record of a run that starts now: ``running``, with this process's id and host.

    A run killed before it ends leaves this record, which then reads as ``interrupted``
    (:func:`record_status`): never as the earlier run's ``ok``.
    """
    return write_record(folder, {**record, "status": "running", "pid": os.getpid(), "host": socket.gethostname()})


def pid_alive(pid: Any) -> bool:
    """Return True when a process with id ``pid`` exists on this machine."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # someone else's process: it exists
        return True
    return True


def record_status(rec: dict | None) -> str | None:
    """Return a run record's status as it reads now: ``interrupted`` for a ``running`` run whose process is gone."""
    if not rec:
        return None
    status = rec.get("status")
    if status == "running" and rec.get("host") in (None, socket.gethostname()) and not pid_alive(rec.get("pid")):
        return "interrupted"
    return status


def finish_record(folder: Path, record: dict, status: str, seconds: float, **fields: Any) -> Path:
    """Complete a run record with its status, run time and details, and write it."""
    assert status in STATUSES, status
    rec = {
        **record,
        "status": status,
        "seconds": round(seconds, 1),
        "finished": timestamp(),
        **{k: v for k, v in fields.items() if v is not None},
    }
    for key in ("pid", "host"):  # a finished run is no process's any more
        rec.pop(key, None)
    path = write_record(folder, rec)
    from crmnb.run.history import keep_run

    keep_run(folder, rec)  # the dated copy under runs/ that the next run compares with
    return path


def unchanged_since(folder: Path, prints: dict) -> str | None:
    """Return when the case last ran successfully if nothing it depends on changed since, else None."""
    rec = read_record(folder)
    if not rec or record_status(rec) != "ok" or rec.get("fingerprint") != prints:
        return None
    if not all((folder / name).is_file() for name in OUTPUTS):
        return None  # an output was removed: run again
    return short_time(rec.get("finished"))


def written(root: Path, outputs: dict[str, Path]) -> dict[str, Any]:
    """Return a run record's fields for the outputs written: all of them by file name under ``outputs``,
    and each by its short name ('report', 'workbook'), as records had them before."""
    rel = {name: path.relative_to(root).as_posix() for name, path in outputs.items()}
    return {"outputs": rel, **{OUTPUTS[name].key: path for name, path in rel.items() if name in OUTPUTS}}


def recorded_outputs(root: Path, record: dict | None, case_id: str) -> dict[str, Path]:
    """Return where a run record says each output is (records from before ``outputs`` name them by key)."""
    rec = record or {}
    written = rec.get("outputs") or {}
    return {
        name: root / (written.get(name) or rec.get(output.key) or f"{case_id}/{name}")
        for name, output in OUTPUTS.items()
    }


def resume_check(folder: Path, prints: dict) -> tuple[str | None, str]:
    """Return (when it last ran, '') for a case ``--resume`` skips, else (None, why it runs)."""
    since = unchanged_since(folder, prints)
    if since is not None:
        return since, ""
    rec = read_record(folder) or {}
    status = record_status(rec)
    if status == "ok":
        return None, "changed since its last run: " + (
            "; ".join(changes(rec.get("fingerprint"), prints)) or "outputs missing"
        )
    if status == "interrupted":
        return None, f"its last run, started {short_time(rec.get('started'))}, was interrupted before it finished"
    if status == "running":
        return None, f"its last run, started {short_time(rec.get('started'))}, has not finished"
    return None, f"its last run {status}" if status else "no earlier run"
