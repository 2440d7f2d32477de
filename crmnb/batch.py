"""Run many cases: a department's case files, a few at a time, with a summary and an index page.

Each case runs as its own ``python -m crmnb.cli run`` process, so a case that fails,
hangs or kills its kernel cannot take the others down, and its output is its log
(``outputs/<case_id>/run.log``). Every run leaves ``outputs/<case_id>/run.json``;
``outputs/index.html`` lists every case found in the output root.

>>> run_batch(["parameters"], department="销售一部", jobs=2)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unicodedata
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Iterable

from .errors import CaseFileError, CrmnbError
from .params import GOAL_METRICS, CaseParams, case_settings, load_case, read_case_mapping
from .paths import resolve

RUN_FILE = "run.json"
LOG_FILE = "run.log"
INDEX_FILE = "index.html"
GRACE_SECONDS = 120
"""Time a case process gets beyond its ``timeout_minutes`` (kernel start-ups, the report) before it is stopped."""

STATUSES = ("ok", "failed", "timeout", "skipped")


# --------------------------------------------------------------------------- run records and fingerprints
def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _when(iso: str | None) -> str:
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
    pkg = Path(__file__).resolve().parent
    files = sorted(p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix not in (".pyc", ".pyo"))
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
        db = Path(url[len("sqlite:///"):])
        return db if db.is_absolute() else Path(case.data.dir) / db
    return Path(case.data_path(table))


def fingerprint(case: CaseParams, settings: dict, notebooks: Iterable[Path]) -> dict:
    """Return what a run depends on: the merged settings, each data file's content, and the code.

    Data files are those the case reads (``case.data_path(table)`` for every canonical
    table); one that is absent is recorded as ``missing``.
    """
    from .schema import TABLES

    data: dict[str, str] = {}
    for table in TABLES:
        try:
            path = _data_file(case, table)
            data[table] = _sha256(path) if path.is_file() else "missing"
        except Exception:  # a live database cannot be fingerprinted: such a case is never skipped
            data[table] = f"unhashable:{uuid.uuid4()}"
    text = json.dumps(settings, sort_keys=True, ensure_ascii=False, default=str)
    return {"settings": hashlib.sha256(text.encode("utf-8")).hexdigest(), "data": data,
            "code": code_hash(notebooks)}


def changes(old: dict | None, new: dict) -> list[str]:
    """Return what differs between two fingerprints, in words ('data: orders', 'case file settings', 'code')."""
    if not old:
        return ["no earlier run"]
    out = []
    if old.get("settings") != new["settings"]:
        out.append("case file settings")
    tables = sorted(t for t in set(old.get("data", {})) | set(new["data"])
                    if old.get("data", {}).get(t) != new["data"].get(t))
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


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_record(folder: Path, record: dict) -> Path:
    """Write a case's ``run.json`` (atomically: a reader never sees half a file)."""
    path = folder / RUN_FILE
    _write_atomic(path, json.dumps(record, ensure_ascii=False, indent=2, default=str) + "\n")
    return path


def new_record(case: CaseParams, case_file: Path, prints: dict | None, run_id: str | None = None) -> dict:
    """Return the start of a run record: which case, from which file, with which fingerprint."""
    g = case.goal
    return {"case_id": case.case_id, "title": case.title, "department": case.department,
            "goal": {"metric": g.metric, "unit": GOAL_METRICS[g.metric], "baseline": g.baseline,
                     "target": g.target, "deadline": str(g.deadline)},
            "case_file": str(case_file), "run_id": run_id, "started": _now(), "fingerprint": prints}


def finish_record(folder: Path, record: dict, status: str, seconds: float, **fields: Any) -> Path:
    """Complete a run record with its status, run time and details, and write it."""
    assert status in STATUSES, status
    rec = {**record, "status": status, "seconds": round(seconds, 1), "finished": _now(),
           **{k: v for k, v in fields.items() if v is not None}}
    return write_record(folder, rec)


def unchanged_since(folder: Path, prints: dict) -> str | None:
    """Return when the case last ran successfully if nothing it depends on changed since, else None."""
    rec = read_record(folder)
    if not rec or rec.get("status") != "ok" or rec.get("fingerprint") != prints:
        return None
    if not (folder / "report.html").is_file():
        return None  # the outputs were removed: run again
    return _when(rec.get("finished"))


def resume_check(folder: Path, prints: dict) -> tuple[str | None, str]:
    """Return (when it last ran, '') for a case ``--resume`` skips, else (None, why it runs)."""
    since = unchanged_since(folder, prints)
    if since is not None:
        return since, ""
    rec = read_record(folder) or {}
    if rec.get("status") == "ok":
        return None, "changed since its last run: " + ("; ".join(changes(rec.get("fingerprint"), prints))
                                                       or "outputs missing")
    return None, f"its last run {rec['status']}" if rec.get("status") else "no earlier run"


# --------------------------------------------------------------------------- the index page
_CSS = """
body{font:14px/1.45 %(stack)s;
margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} p.meta{color:#666;margin-top:0}
table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #ddd;padding:.45em .6em;
text-align:left;vertical-align:top} th{background:#f4f5f7;font-weight:600} td.num{text-align:right}
small{color:#666} .err{color:#a33;font-size:.9em;white-space:pre-wrap;max-width:28em;display:block}
.b{display:inline-block;padding:.05em .55em;border-radius:.8em;font-size:.9em;background:#eee}
.ok,.reached{background:#dff3e4;color:#17612c}.improving{background:#e3eefc;color:#1d4f91}
.failed,.worse{background:#fbe3e3;color:#8e1c1c}.timeout{background:#fdf0d5;color:#7a5200}
.flat{background:#eee;color:#444}
"""


def _fmt(value: Any, unit: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if unit == "rate":
        return f"{v:.1%}"
    if unit in ("hours", "days"):
        return f"{v:,.1f} {'h' if unit == 'hours' else 'd'}"
    if unit == "CNY":
        return f"{v:,.0f} CNY"
    return f"{v:,.2f}"


def _notebook_settings(folder: Path) -> dict:
    """Return the case settings an executed notebook recorded (for outputs without a run.json)."""
    for nb in sorted((folder / "notebooks").glob("*.ipynb")):
        try:
            meta = json.loads(nb.read_text(encoding="utf-8")).get("metadata", {})
            case = meta.get("papermill", {}).get("parameters", {}).get("case")
        except (OSError, ValueError):
            continue
        if isinstance(case, dict):
            return case
    return {}


def case_entry(folder: Path) -> dict | None:
    """Return what the index shows for one output folder, or None when it holds no case run."""
    rec = read_record(folder)
    has_outputs = (folder / "report.html").is_file() or (folder / "notebooks").is_dir()
    if rec is None and not has_outputs:
        return None
    rec = rec or {}
    settings = _notebook_settings(folder) if not rec.get("goal") else {}
    goal = dict(rec.get("goal") or settings.get("goal") or {})
    if goal.get("metric") in GOAL_METRICS:
        goal.setdefault("unit", GOAL_METRICS[goal["metric"]])
    summary = None
    try:
        summary = json.loads((folder / "data" / "report" / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    earlier = False
    if summary and rec.get("status") not in (None, "ok") and rec.get("started"):
        try:
            mtime = (folder / "data" / "report" / "summary.json").stat().st_mtime
            earlier = mtime < datetime.fromisoformat(rec["started"]).timestamp()
        except (OSError, ValueError):
            pass
    return {"case_id": rec.get("case_id", folder.name), "folder": folder.name,
            "title": rec.get("title") or settings.get("title") or "",
            "department": rec.get("department") or settings.get("department") or "",
            "goal": goal, "summary": summary if isinstance(summary, dict) else None, "summary_earlier": earlier,
            "status": rec.get("status"), "seconds": rec.get("seconds"), "finished": rec.get("finished"),
            "error": rec.get("error"), "where": rec.get("where"), "reason": rec.get("reason"),
            "notebook": rec.get("notebook")}


def _link(folder: Path, rel: str, label: str) -> str:
    if not (folder / rel).is_file():
        return ""
    href = "/".join(_quote(part) for part in (folder.name, *rel.split("/")))
    return f'<a href="{href}">{html.escape(label)}</a>'


def _quote(part: str) -> str:
    from urllib.parse import quote

    return html.escape(quote(part), quote=True)


def _goal_text(goal: dict, summary: dict | None) -> str:
    if not goal.get("metric"):
        return "—"
    sgoal = (summary or {}).get("goal") or {}
    name = sgoal.get("name") if sgoal.get("metric") == goal["metric"] else None
    name = name or goal["metric"].replace("_", " ").capitalize()
    unit = goal.get("unit", "")
    by = f" <small>by {html.escape(str(goal['deadline']))}</small>" if goal.get("deadline") else ""
    return (f"{html.escape(name)}: {html.escape(_fmt(goal.get('baseline'), unit))} → "
            f"{html.escape(_fmt(goal.get('target'), unit))}{by}")


def render_index(root: Path, entries: list[dict]) -> str:
    """Return the index page's HTML: one row per case, escaped text, relative links, no scripts."""
    rows = []
    for e in entries:
        folder = root / e["folder"]
        s = e["summary"]
        unit = e["goal"].get("unit", "")
        if s and "verdict" in s:
            now = f"{_fmt(s.get('before'), unit)} → {_fmt(s.get('now'), unit)}"
            v = str(s["verdict"])
            verdict = (f'<span class="b {html.escape(v)}">{html.escape(v)}</span><br><small>{html.escape(now)}'
                       + (" (earlier run)" if e["summary_earlier"] else "") + "</small>")
        else:
            verdict = "—"
        st = e["status"] or "—"
        status = f'<span class="b {html.escape(st)}">{html.escape(st)}</span>'
        if e["error"] and st != "ok":
            why = f"{e['where']}: {e['reason']}" if e["where"] and e["reason"] else (
                e["reason"] or str(e["error"]).strip().splitlines()[0])
            status += f'<span class="err">{html.escape(why[:300])}</span>'
        secs = e["seconds"]
        run = (f"{float(secs):,.0f} s" if isinstance(secs, (int, float)) else "—")
        if e["finished"]:
            run += f"<br><small>{html.escape(_when(e['finished']))}</small>"
        earlier = " (earlier run)" if st in ("failed", "timeout") else ""  # a failed run writes neither
        links = [_link(folder, "report.html", "report" + earlier), _link(folder, "tables.xlsx", "tables" + earlier)]
        if st in ("failed", "timeout") and e["notebook"]:
            links.append(_link(folder, e["notebook"], "failed notebook"))
        links.append(_link(folder, LOG_FILE, "log"))
        title = f"<strong>{html.escape(e['title'])}</strong><br>" if e["title"] else ""
        rows.append(
            f"<tr><td>{title}<small>{html.escape(e['case_id'])}</small></td>"
            f"<td>{html.escape(e['department']) or '—'}</td><td>{_goal_text(e['goal'], s)}</td>"
            f"<td>{verdict}</td><td>{status}</td><td class=num>{run}</td>"
            f"<td>{' · '.join(x for x in links if x) or '—'}</td></tr>")
    counts = {k: sum(1 for e in entries if e["status"] == k) for k in ("ok", "failed", "timeout")}
    meta = (f"{len(entries)} case{'s' if len(entries) != 1 else ''}: {counts['ok']} ok, {counts['failed']} failed, "
            f"{counts['timeout']} timed out · written {_when(_now())}")
    body = "\n".join(rows) or "<tr><td colspan=7>No case has run yet.</td></tr>"
    from .report import cjk_font_face

    from .report import FONT_STACK

    face = cjk_font_face(body)  # department names and goals may be Chinese; embed just those glyphs
    css = _CSS.replace("%(stack)s", FONT_STACK)  # the embedded face first, as in the report
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>CRM cases</title><style>{face}{css}</style></head><body>\n"
        f"<h1>CRM cases</h1><p class=meta>{html.escape(meta)}</p>\n"
        "<table><thead><tr><th>Case</th><th>Department</th><th>Goal (baseline → target)</th>"
        "<th>Verdict <small>(before → now)</small></th><th>Status</th><th>Run time</th><th>Files</th></tr></thead>"
        f"<tbody>\n{body}\n</tbody></table>\n</body></html>\n")


def write_index(output_root: str | Path) -> Path:
    """Write ``<output_root>/index.html`` listing every case found there, and return its path."""
    root = Path(output_root)
    entries = [e for f in sorted(root.iterdir()) if f.is_dir() and not f.name.startswith((".", "_"))
               if (e := case_entry(f))] if root.is_dir() else []
    entries.sort(key=lambda e: (unicodedata.normalize("NFC", e["department"]), e["case_id"]))
    path = root / INDEX_FILE
    _write_atomic(path, render_index(root, entries))
    return path


# --------------------------------------------------------------------------- the batch
STEP_LINE = re.compile(r"\] step (\d+)/(\d+) (\S+) …\s*$")


@dataclass
class Job:
    """One case of a batch: what it is, how it is going, how it ended."""

    file: Path
    case_id: str
    department: str = ""
    title: str = ""
    limit: float | None = None
    status: str = "pending"
    seconds: float = 0.0
    step: str = ""
    """The step running now (from the case process's progress lines)."""
    report: Path | None = None
    error: str = ""
    """The whole error message, as ``crmnb run`` prints it."""
    where: str = ""
    """Where it failed: 'step 02_data_collection, cell 4'."""
    reason: str = ""
    """Why, in one line: 'DataError: table 'orders': file not found: …'."""
    since: str = ""
    why: str = ""
    """Why a case runs under ``--resume``: what changed since its last successful run."""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    proc: subprocess.Popen | None = field(default=None, repr=False)
    reader: threading.Thread | None = field(default=None, repr=False)
    started: float = 0.0
    stop_at: float | None = None
    killed: bool = False


def _nfc(s: str | None) -> str:
    return unicodedata.normalize("NFC", s or "").strip()


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Return the case files in ``paths`` (folders are searched, files starting with '_' left out)."""
    out: list[Path] = []
    for p in paths:
        path = resolve(p)
        if path.is_dir():
            out += sorted(f for f in path.iterdir() if f.is_file() and f.suffix in (".yaml", ".yml")
                          and not f.name.startswith(("_", ".")))
        elif path.is_file():
            out.append(path)
        else:
            raise CrmnbError(f"{p}: no such file or folder")
    return list(dict.fromkeys(out))


def plan_jobs(paths: Iterable[str | Path], department: str | None = None,
              warn=lambda m: None) -> list[Job]:
    """Read every case file and return the batch's jobs; a file that does not validate becomes a failed job."""
    paths = list(paths)
    jobs: list[Job] = []
    seen: dict[str, Path] = {}
    files = case_files(paths)
    for f in files:
        try:
            case = load_case(f)
            job = Job(f, case.case_id, case.department, case.title,
                      limit=case.timeout_minutes * 60 + GRACE_SECONDS)
        except CaseFileError as exc:
            try:
                raw, _ = read_case_mapping(f)
                dept = raw.get("department") if isinstance(raw, dict) else None
            except CaseFileError:
                dept = None
            if department is not None and not isinstance(dept, str):
                warn(f"batch: left out {f.name}: cannot read its department ({str(exc).splitlines()[0]})")
                continue
            job = Job(f, f.stem, dept if isinstance(dept, str) else "", status="failed", error=str(exc),
                      reason=_one_line(str(exc)))
        if department is not None and _nfc(job.department) != _nfc(department):
            continue
        if job.case_id in seen:
            job.status = "failed"
            job.error = job.reason = f"{f}: case_id '{job.case_id}' is also used by {seen[job.case_id]}"
        else:
            seen[job.case_id] = f
        jobs.append(job)
    if not jobs:
        where = ", ".join(str(p) for p in paths)
        if department is not None and files:
            found = sorted({_nfc(j) for j in _departments(files)} - {""})
            raise CrmnbError(f"no case of department '{department}' in {where} "
                             f"(departments found: {', '.join(found) or 'none'})")
        raise CrmnbError(f"no case files in {where} (files starting with '_' are defaults, not cases)")
    return jobs


def _departments(files: list[Path]) -> list[str]:
    out = []
    for f in files:
        try:
            raw, _ = read_case_mapping(f)
            out.append(raw.get("department", "") if isinstance(raw, dict) else "")
        except CaseFileError:
            pass
    return [d for d in out if isinstance(d, str)]


class Progress:
    """Progress on stderr: one redrawn status line on a terminal, plain lines in a log."""

    def __init__(self, stream: IO[str], total: int):
        self.stream = stream
        self.total = total
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.lock = threading.Lock()
        self.done = self.failed = self.timeouts = 0
        self._shown = ""

    def counts(self) -> str:
        timeouts = f", {self.timeouts} timed out" if self.timeouts else ""
        return f"[{self.done}/{self.total} done, {self.failed} failed{timeouts}]"

    def line(self, msg: str) -> None:
        """Print a line that stays."""
        with self.lock:
            if self.tty and self._shown:
                self.stream.write("\r\x1b[K")
            self.stream.write(f"{self.counts()} {msg}\n")
            self._shown = ""
            self.stream.flush()

    def status(self, running: list[Job]) -> None:
        """Redraw the status line (a terminal only): each running case's current step."""
        if not self.tty:
            return
        now = " | ".join(f"{j.case_id}: {j.step or 'starting'}" for j in running)
        text = f"{self.counts()} {now}"
        width = _terminal_width()
        text = text if len(text) < width else text[: width - 2] + "…"
        with self.lock:
            if text != self._shown:
                self.stream.write("\r\x1b[K" + text)
                self.stream.flush()
                self._shown = text

    def clear(self) -> None:
        with self.lock:
            if self.tty and self._shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            self._shown = ""


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 20)).columns


def _pump(job: Job, stream: IO[bytes], log: IO[str], progress: Progress) -> None:
    """Copy a case process's output into its log, and note its current step."""
    try:
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace")
            log.write(text)
            log.flush()
            m = STEP_LINE.search(text)
            if m:
                job.step = f"step {m[1]}/{m[2]} {m[3]}"
                if not progress.tty:
                    progress.line(f"{job.case_id}: {job.step}")
    finally:
        stream.close()
        log.close()


def _start(job: Job, root: Path, progress: Progress) -> None:
    folder = root / job.case_id
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "crmnb.cli", "run", str(job.file), "--output-root", str(root), "--no-index"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
    from .runner import RUN_ID_ENV

    env[RUN_ID_ENV] = job.run_id
    log = (folder / LOG_FILE).open("w", encoding="utf-8")
    log.write(f"# crmnb batch, {_now()}: {' '.join(cmd)}\n")
    log.flush()
    job.started = time.perf_counter()
    job.status = "running"
    job.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    job.reader = threading.Thread(target=_pump, args=(job, job.proc.stdout, log, progress), daemon=True)
    job.reader.start()
    if not progress.tty or job.why:
        progress.line(f"{job.case_id}: started ({job.department})" + (f", {job.why}" if job.why else ""))


def _stop(job: Job) -> None:
    """Ask a case process to stop (it shuts its kernel down); it is killed if it has not gone in 15 s."""
    if job.proc is None or job.proc.poll() is not None:
        return
    try:
        job.proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        return
    job.stop_at = time.perf_counter() + 15


def _kill(job: Job) -> None:
    if job.proc is None or job.proc.poll() is not None:
        return
    try:
        os.killpg(job.proc.pid, signal.SIGKILL)  # the case process and what it started in its session
    except (AttributeError, ProcessLookupError, PermissionError):  # AttributeError: Windows has no killpg
        job.proc.kill()


def _last_error(folder: Path) -> str:
    """Return the error the case process printed last, from its log."""
    try:
        lines = (folder / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("crmnb: error:"):
            return "\n".join(lines[i:])[len("crmnb: error: "):].strip()
    tail = [line for line in lines if line.strip()][-3:]
    return "\n".join(tail)


def _one_line(text: str, limit: int = 240) -> str:
    """Return a message on one line: its lines joined, cut at ``limit`` characters."""
    one = "; ".join(line.strip(" -") for line in text.strip().splitlines() if line.strip()
                    and not line.strip().startswith("the partly executed notebook"))
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _finish(job: Job, root: Path, rc: int) -> None:
    """Take a finished case process's outcome from the run record it wrote, else from its exit and log."""
    folder = root / job.case_id
    job.seconds = time.perf_counter() - job.started
    rec = read_record(folder)
    ours = rec if rec and rec.get("run_id") == job.run_id else None
    if ours and not job.killed:
        job.status = ours.get("status", "failed")
        job.seconds = float(ours.get("seconds", job.seconds))
        if job.status == "ok":
            job.report = root / ours["report"] if ours.get("report") else None
        else:
            job.error = ours.get("error", "")
            job.where, job.reason = ours.get("where", ""), ours.get("reason") or _one_line(job.error)
        return
    if job.killed:
        job.status = "timeout"
        minutes = ((job.limit or 0) - GRACE_SECONDS) / 60
        job.error = job.reason = (f"still running {job.seconds:.0f} s after it started, past its time limit of "
                                  f"{minutes:g} minutes (timeout_minutes) and {GRACE_SECONDS} s for start-ups: "
                                  f"stopped by crmnb batch")
        if job.step:
            job.where = job.step
    else:
        job.status = "failed"
        job.error = _last_error(folder) or f"the case process ended with exit code {rc}"
        job.reason = _one_line(job.error)
    base = ours or {"case_id": job.case_id, "title": job.title, "department": job.department,
                    "case_file": str(job.file), "run_id": job.run_id}
    if "goal" not in base:
        try:
            base = {**new_record(load_case(job.file), job.file, None, job.run_id), **base}
        except CrmnbError:
            pass
    keep = {k: v for k, v in base.items() if k not in ("error", "report", "workbook", "reason", "where")}
    finish_record(folder, keep, job.status, job.seconds, error=job.error, reason=job.reason, where=job.where or None)


def _skip_if_unchanged(job: Job, root: Path) -> None:
    from .runner import notebooks_dir, step_notebooks

    try:
        case = load_case(job.file)
        prints = fingerprint(case, case_settings(job.file), step_notebooks(notebooks_dir(job.file)))
    except CrmnbError:
        return
    since, job.why = resume_check(root / case.case_id, prints)
    if since is not None:
        rec = read_record(root / case.case_id) or {}
        job.status, job.since = "skipped", since
        job.report = root / rec.get("report", f"{case.case_id}/report.html")


@dataclass
class BatchResult:
    """The jobs of a finished batch and the index page."""

    jobs: list[Job]
    index: Path

    @property
    def ok(self) -> bool:
        """Return True when no case failed or timed out."""
        return all(j.status in ("ok", "skipped") for j in self.jobs)


def run_batch(paths: Iterable[str | Path], department: str | None = None, jobs: int = 1, resume: bool = False,
              output_root: str | Path = "outputs", err: IO[str] | None = None) -> BatchResult:
    """Run every case file in ``paths`` (of ``department``, when given), ``jobs`` at a time.

    One case failing does not stop the others. Progress goes to ``err`` (stderr). With
    ``resume``, cases unchanged since their last successful run are skipped. Ends by
    writing ``<output_root>/index.html``.
    """
    err = err or sys.stderr
    root = resolve(output_root)
    root.mkdir(parents=True, exist_ok=True)
    todo = plan_jobs(paths, department, warn=lambda m: print(m, file=err, flush=True))
    progress = Progress(err, len(todo))
    for job in todo:
        if job.status == "failed":
            progress.done += 1
            progress.failed += 1
            finish_record(root / job.case_id, {"case_id": job.case_id, "department": job.department,
                                               "case_file": str(job.file), "started": _now()},
                          "failed", 0.0, error=job.error, reason=job.reason)
            progress.line(f"{job.case_id}: failed: {job.reason}")
        elif resume:
            _skip_if_unchanged(job, root)
            if job.status == "skipped":
                progress.done += 1
                progress.line(f"{job.case_id}: skipped: unchanged since {job.since}")
    pending = deque(j for j in todo if j.status == "pending")
    running: list[Job] = []
    try:
        while pending or running:
            while pending and len(running) < max(1, jobs):
                job = pending.popleft()
                _start(job, root, progress)
                running.append(job)
            time.sleep(0.1)
            for job in list(running):
                assert job.proc is not None
                rc = job.proc.poll()
                if rc is None:
                    now = time.perf_counter()
                    if job.limit and not job.killed and now - job.started > job.limit:
                        job.killed = True
                        _stop(job)
                    elif job.stop_at is not None and now > job.stop_at:
                        _kill(job)
                    continue
                if job.reader:
                    job.reader.join(timeout=5)
                _finish(job, root, rc)
                running.remove(job)
                progress.done += 1
                progress.failed += job.status == "failed"
                progress.timeouts += job.status == "timeout"
                why = f": {_short_error(job)}" if job.status in ("failed", "timeout") else ""
                progress.line(f"{job.case_id}: {job.status} in {job.seconds:.0f} s{why}")
            progress.status(running)
    except KeyboardInterrupt:
        progress.clear()
        for job in running:
            _stop(job)
        deadline = time.perf_counter() + 15
        for job in running:
            try:
                job.proc.wait(max(0.1, deadline - time.perf_counter()))
            except subprocess.TimeoutExpired:
                _kill(job)
        write_index(root)
        raise
    progress.clear()
    return BatchResult(todo, write_index(root))


# --------------------------------------------------------------------------- the summary table
def _short_error(j: Job) -> str:
    """Return 'step 02_data_collection, cell 4: DataError: …' for a failed job."""
    return f"{j.where}: {j.reason}" if j.where else j.reason


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in s)


def _pad(s: str, n: int) -> str:
    return s + " " * max(0, n - _width(s))


def summary_table(jobs: list[Job], cwd: Path | None = None) -> str:
    """Return the batch's summary: case, department, status, seconds, report path or error."""
    cwd = cwd or Path.cwd()

    def rel(p: Path | None) -> str:
        if p is None:
            return ""
        try:
            return str(p.relative_to(cwd))
        except ValueError:
            return str(p)

    def detail(j: Job) -> str:
        if j.status == "ok":
            return rel(j.report)
        if j.status == "skipped":
            return f"unchanged since {j.since}; {rel(j.report)}"
        return _short_error(j)

    rows = [("case", "department", "status", "seconds", "report / error")]
    rows += [(j.case_id, j.department or "—", j.status, f"{j.seconds:.1f}" if j.status not in ("skipped",) else "—",
              detail(j)) for j in jobs]
    widths = [max(_width(r[i]) for r in rows) for i in range(4)]
    lines = []
    for r in rows:
        cells = [_pad(r[0], widths[0]), _pad(r[1], widths[1]), _pad(r[2], widths[2]),
                 " " * (widths[3] - _width(r[3])) + r[3], r[4]]
        lines.append("  ".join(cells).rstrip())
    n = {s: sum(j.status == s for j in jobs) for s in STATUSES}
    lines.append(f"{len(jobs)} case{'s' if len(jobs) != 1 else ''}: {n['ok']} ok, {n['failed']} failed, "
                 f"{n['timeout']} timed out, {n['skipped']} skipped")
    return "\n".join(lines)
