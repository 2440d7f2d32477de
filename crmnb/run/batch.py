"""`crmnb batch`: run many cases in separate processes, with progress, a log and a summary."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time
import unicodedata
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from crmnb.errors import CaseFileError, CrmnbError
from crmnb.params.files import case_settings, load_case, read_case_mapping
from crmnb.paths import resolve
from crmnb.run.case_process import STOP_SECONDS, ask_to_stop, case_command, kill, open_log, pump, start_case
from crmnb.run.index import write_index
from crmnb.run.progress import Progress
from crmnb.run.records import (
    LOG_FILE,
    STATUSES,
    fingerprint,
    finish_record,
    new_record,
    notebooks_dir,
    read_record,
    recorded_outputs,
    resume_check,
    step_notebooks,
    timestamp,
)

# --------------------------------------------------------------------------- the batch
GRACE_SECONDS = 120
"""Time a case process gets beyond its ``timeout_minutes`` (kernel start-ups, the report) before it is stopped."""


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
    worker: str = ""
    """Where the case runs on a cluster: the worker's address (empty for a case run on this machine)."""
    proc: subprocess.Popen | None = field(default=None, repr=False)
    reader: threading.Thread | None = field(default=None, repr=False)
    started: float = 0.0
    stop_at: float | None = None
    killed: bool = False


def _nfc(s: str | None) -> str:
    return unicodedata.normalize("NFC", s or "").strip()


def case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Return the case files in ``paths`` (folders are searched; files starting with '_' and the action
    ledgers ``<case_id>.actions.yaml`` left out)."""
    out: list[Path] = []
    for p in paths:
        path = resolve(p)
        if path.is_dir():
            out += sorted(
                f
                for f in path.iterdir()
                if f.is_file()
                and f.suffix in (".yaml", ".yml")
                and not f.name.startswith(("_", "."))
                and not f.name.endswith(".actions.yaml")  # a case's action ledger, beside its case file
            )
        elif path.is_file():
            out.append(path)
        else:
            raise CrmnbError(f"{p}: no such file or folder")
    return list(dict.fromkeys(out))


def plan_jobs(paths: Iterable[str | Path], department: str | None = None, warn=lambda m: None) -> list[Job]:
    """Read every case file and return the batch's jobs; a file that does not validate becomes a failed job."""
    paths = list(paths)
    jobs: list[Job] = []
    seen: dict[str, Path] = {}
    files = case_files(paths)
    for f in files:
        try:
            case = load_case(f)
            job = Job(f, case.case_id, case.department, case.title, limit=case.timeout_minutes * 60 + GRACE_SECONDS)
        except CaseFileError as exc:
            try:
                raw, _ = read_case_mapping(f)
                dept = raw.get("department") if isinstance(raw, dict) else None
            except CaseFileError:
                dept = None
            if department is not None and not isinstance(dept, str):
                warn(f"batch: left out {f.name}: cannot read its department ({str(exc).splitlines()[0]})")
                continue
            job = Job(
                f,
                f.stem,
                dept if isinstance(dept, str) else "",
                status="failed",
                error=str(exc),
                reason=_one_line(str(exc)),
            )
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
            raise CrmnbError(
                f"no case of department '{department}' in {where} (departments found: {', '.join(found) or 'none'})"
            )
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


def note_step(job: Job, step: str, progress: Progress) -> None:
    """Note the step a case is running now; in a log (no terminal), say so on a line of its own."""
    job.step = step
    if not progress.tty:
        progress.line(f"{job.case_id}: {job.step}")


def _start(job: Job, root: Path, progress: Progress) -> None:
    cmd = case_command(job.file, root)
    log = open_log(root / job.case_id, cmd)
    job.started = time.perf_counter()
    job.status = "running"
    job.proc = start_case(cmd, job.run_id)
    on_step = functools.partial(note_step, job, progress=progress)
    job.reader = threading.Thread(target=pump, args=(job.proc.stdout, log, on_step), daemon=True)
    job.reader.start()
    if not progress.tty or job.why:
        progress.line(f"{job.case_id}: started ({job.department})" + (f", {job.why}" if job.why else ""))


def _stop(job: Job) -> None:
    """Ask a case process to stop (it shuts its kernel down); it is killed if it has not gone in 15 s."""
    if job.proc is not None and ask_to_stop(job.proc):
        job.stop_at = time.perf_counter() + STOP_SECONDS


def _kill(job: Job) -> None:
    if job.proc is not None:
        kill(job.proc)


def _last_error(folder: Path) -> str:
    """Return the error the case process printed last, from its log."""
    try:
        lines = (folder / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("crmnb: error:"):
            return "\n".join(lines[i:])[len("crmnb: error: ") :].strip()
    tail = [line for line in lines if line.strip()][-3:]
    return "\n".join(tail)


def _one_line(text: str, limit: int = 240) -> str:
    """Return a message on one line: its lines joined, cut at ``limit`` characters."""
    one = "; ".join(
        line.strip(" -")
        for line in text.strip().splitlines()
        if line.strip() and not line.strip().startswith("the partly executed notebook")
    )
    return one if len(one) <= limit else one[: limit - 1] + "…"


def _ended(rc: int, started: bool) -> str:
    """Return why a case process ended without an error of its own: killed by a signal, or an exit code."""
    how = (f"was killed (signal {-rc})" if rc < 0 else f"ended with exit code {rc}") + (
        " before its run finished" if started else ""
    )
    return f"the case process {how}"


def finish_job(job: Job, root: Path, rc: int, seconds: float | None = None) -> None:
    """Take a finished case process's outcome from the run record it wrote, else from its exit and log."""
    folder = root / job.case_id
    job.seconds = time.perf_counter() - job.started if seconds is None else seconds
    rec = read_record(folder)
    ours = rec if rec and rec.get("run_id") == job.run_id else None
    if ours and not job.killed and ours.get("status") != "running":
        job.status = ours.get("status", "failed")
        job.seconds = float(ours.get("seconds", job.seconds))
        if job.status == "ok":
            job.report = next(iter(recorded_outputs(root, ours, job.case_id).values()))
        else:
            job.error = ours.get("error", "")
            job.where, job.reason = ours.get("where", ""), ours.get("reason") or _one_line(job.error)
        return
    if job.killed:
        job.status = "timeout"
        minutes = ((job.limit or 0) - GRACE_SECONDS) / 60
        job.error = job.reason = (
            f"still running {job.seconds:.0f} s after it started, past its time limit of "
            f"{minutes:g} minutes (timeout_minutes) and {GRACE_SECONDS} s for start-ups: "
            f"stopped by crmnb batch"
        )
        if job.step:
            job.where = job.step
    else:
        job.status = "failed"
        killed = ours is not None and rc < 0  # by a signal, before it could record how it ended
        job.error = (_ended(rc, True) if killed else _last_error(folder)) or _ended(rc, ours is not None)
        job.reason = _one_line(job.error)
    record_failure(job, root, ours)


def record_failure(job: Job, root: Path, ours: dict | None = None) -> None:
    """Write the run record of a case that failed or timed out before its process could (``ours``: what it wrote)."""
    base = ours or {
        "case_id": job.case_id,
        "title": job.title,
        "department": job.department,
        "case_file": str(job.file),
        "run_id": job.run_id,
    }
    if "goal" not in base:
        try:
            base = {**new_record(load_case(job.file), job.file, None, job.run_id), **base}
        except CrmnbError:
            pass
    gone = ("error", "outputs", "report", "workbook", "reason", "where", "status")
    keep = {k: v for k, v in base.items() if k not in gone}
    finish_record(
        root / job.case_id, keep, job.status, job.seconds, error=job.error, reason=job.reason, where=job.where or None
    )


def _skip_if_unchanged(job: Job, root: Path) -> None:
    """Mark the job skipped when nothing its case depends on changed since its last successful run."""
    try:
        case = load_case(job.file)
        prints = fingerprint(case, case_settings(job.file), step_notebooks(notebooks_dir(job.file)))
    except CrmnbError:
        return
    since, job.why = resume_check(root / case.case_id, prints)
    if since is not None:
        job.status, job.since = "skipped", since
        job.report = next(iter(recorded_outputs(root, read_record(root / case.case_id), case.case_id).values()))


@dataclass
class BatchResult:
    """The jobs of a finished batch and the index page."""

    jobs: list[Job]
    index: Path

    @property
    def ok(self) -> bool:
        """Return True when no case failed or timed out."""
        return all(j.status in ("ok", "skipped") for j in self.jobs)


def settle_before_start(todo: list[Job], root: Path, resume: bool, progress: Progress) -> None:
    """Record the jobs whose case file did not validate, and (with ``resume``) skip the unchanged ones."""
    for job in todo:
        if job.status == "failed":
            progress.done += 1
            progress.failed += 1
            finish_record(
                root / job.case_id,
                {
                    "case_id": job.case_id,
                    "department": job.department,
                    "case_file": str(job.file),
                    "started": timestamp(),
                },
                "failed",
                0.0,
                error=job.error,
                reason=job.reason,
            )
            progress.line(f"{job.case_id}: failed: {job.reason}")
        elif resume:
            _skip_if_unchanged(job, root)
            if job.status == "skipped":
                progress.done += 1
                progress.line(f"{job.case_id}: skipped: unchanged since {job.since}")


def _check(job: Job, root: Path, progress: Progress) -> bool:
    """Return True when the job's process has ended (its outcome taken); stop one past its time limit."""
    assert job.proc is not None
    rc = job.proc.poll()
    if rc is None:
        now = time.perf_counter()
        if job.limit and not job.killed and now - job.started > job.limit:
            job.killed = True
            _stop(job)
        elif job.stop_at is not None and now > job.stop_at:
            _kill(job)
        return False
    if job.reader:
        job.reader.join(timeout=5)
    finish_job(job, root, rc)
    report_end(job, progress)
    return True


def report_end(job: Job, progress: Progress) -> None:
    """Count a case that has ended and say how: 'case: failed in 12 s: step 02_…, cell 4: …'."""
    progress.done += 1
    progress.failed += job.status == "failed"
    progress.timeouts += job.status == "timeout"
    why = f": {short_error(job)}" if job.status in ("failed", "timeout") else ""
    progress.line(f"{job.case_id}: {job.status} in {job.seconds:.0f} s{why}")


def _run_pending(pending: deque[Job], running: list[Job], jobs: int, root: Path, progress: Progress) -> None:
    """Start the pending jobs ``jobs`` at a time until every one has ended."""
    while pending or running:
        while pending and len(running) < max(1, jobs):
            job = pending.popleft()
            _start(job, root, progress)
            running.append(job)
        time.sleep(0.1)
        running[:] = [job for job in running if not _check(job, root, progress)]
        progress.status(running)


def _stop_all(running: list[Job]) -> None:
    """Stop every running case process, killing those still there after 15 s."""
    for job in running:
        _stop(job)
    deadline = time.perf_counter() + 15
    for job in running:
        try:
            job.proc.wait(max(0.1, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            _kill(job)


def run_batch(
    paths: Iterable[str | Path],
    department: str | None = None,
    jobs: int = 1,
    resume: bool = False,
    output_root: str | Path = "outputs",
    err: IO[str] | None = None,
    due: bool = False,
) -> BatchResult:
    """Run every case file in ``paths`` (of ``department``, when given), ``jobs`` at a time.

    One case failing does not stop the others. Progress goes to ``err`` (stderr). With
    ``resume``, cases unchanged since their last successful run are skipped; with ``due``, only the
    cases due for review run. Ends by writing ``<output_root>/index.html``.
    """
    err = err or sys.stderr
    root = resolve(output_root)
    root.mkdir(parents=True, exist_ok=True)
    todo = plan_jobs(paths, department, warn=lambda m: print(m, file=err, flush=True))
    if due:
        todo = due_jobs(todo, root, lambda m: print(m, file=err, flush=True))
    progress = Progress(err, len(todo))
    settle_before_start(todo, root, resume, progress)
    running: list[Job] = []
    try:
        _run_pending(deque(j for j in todo if j.status == "pending"), running, jobs, root, progress)
    except KeyboardInterrupt:
        progress.clear()
        _stop_all(running)
        write_index(root)
        raise
    progress.clear()
    return BatchResult(todo, write_index(root))


def due_jobs(jobs: list[Job], root: Path, say=lambda m: None) -> list[Job]:
    """Return the jobs whose case is due for review (never run, or its ``review_every`` is up); say why not."""
    from crmnb.run.due import review_state

    out = []
    for job in jobs:
        every = None
        if job.status != "failed":  # a case file that did not validate is kept: its failure is news
            every = load_case(job.file).review_every
            state = review_state(root / job.case_id, every)
            if not state["due"]:
                when = f"next review {state['next']}" if state["next"] else "no review_every in its case file"
                say(f"{job.case_id}: not due ({when}; last run {state['last']})")
                continue
        out.append(job)
    return out


# --------------------------------------------------------------------------- the summary table
def short_error(j: Job) -> str:
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
        return short_error(j)

    rows = [("case", "department", "status", "seconds", "report / error")]
    rows += [
        (
            j.case_id,
            j.department or "—",
            j.status,
            f"{j.seconds:.1f}" if j.status not in ("skipped",) else "—",
            detail(j),
        )
        for j in jobs
    ]
    widths = [max(_width(r[i]) for r in rows) for i in range(4)]
    lines = []
    for r in rows:
        cells = [
            _pad(r[0], widths[0]),
            _pad(r[1], widths[1]),
            _pad(r[2], widths[2]),
            " " * (widths[3] - _width(r[3])) + r[3],
            r[4],
        ]
        lines.append("  ".join(cells).rstrip())
    n = {s: sum(j.status == s for j in jobs) for s in STATUSES}
    lines.append(
        f"{len(jobs)} case{'s' if len(jobs) != 1 else ''}: {n['ok']} ok, {n['failed']} failed, "
        f"{n['timeout']} timed out, {n['skipped']} skipped"
    )
    return "\n".join(lines)
