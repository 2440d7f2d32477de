"""`crmnb batch --cluster`: a batch's cases sent to the workers of a Dask distributed cluster, one task each.

Imported only when ``--cluster`` is given (Dask is the optional ``cluster`` extra). Each task runs the
case's ``crmnb run`` on its worker (:mod:`crmnb.run.cluster_task`), writing into the output root, which
must be storage every worker sees at the same path: it is checked before any case starts. The batch
keeps what ``--jobs`` has: the progress display, one case failing (or its worker dying) never stopping
the others, the per-case time limit, ``--resume``, the summary and the index page.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from distributed import Client, Future

from crmnb.errors import CrmnbError
from crmnb.params.files import load_case
from crmnb.paths import resolve
from crmnb.present.words import t
from crmnb.run.batch import (
    BatchResult,
    Job,
    finish_job,
    note_step,
    plan_jobs,
    record_failure,
    report_end,
    settle_before_start,
)
from crmnb.run.cluster_task import (
    PROBE_FILE,
    STOP_FILE,
    batch_topic,
    check_storage,
    control_dir,
    run_case_task,
)
from crmnb.run.index import write_index
from crmnb.run.progress import Progress
from crmnb.run.records import code_hash, notebooks_dir, read_record, step_notebooks, write_atomic, write_record

LANGUAGE = "en"
"""The language of the batch's messages on the command line, as the rest of ``crmnb batch`` speaks."""

CONNECT_SECONDS = 10
"""How long to try to reach the scheduler before saying it cannot be reached."""

WORKERS_SECONDS = 30
"""How long to wait for a first worker to join a scheduler that has none."""

STOP_WAIT_SECONDS = 30
"""How long an interrupted batch waits for its running cases to stop on their workers."""

ORPHAN_SECONDS = 120
"""How long a batch waits for a worker when every worker has left the cluster, before failing the cases left."""


def say(key: str, **values: object) -> str:
    """Return the message ``cluster.<key>`` with its placeholders filled."""
    return t(f"cluster.{key}", LANGUAGE, **values)


# --------------------------------------------------------------------------- the cluster and its storage
def connect(address: str) -> Client:
    """Return a client of the scheduler at ``address`` (tcp://HOST:PORT, or a scheduler file), or raise CrmnbError."""
    if "://" in address:
        where: dict[str, Any] = {"address": address}
    elif Path(address).is_file():
        where = {"scheduler_file": address}
    else:
        raise CrmnbError(say("bad_address", address=address))
    try:
        return Client(**where, timeout=CONNECT_SECONDS, set_as_default=False)
    except Exception as exc:  # refused, timed out, a bad scheme or file: one line, never a traceback
        raise CrmnbError(
            say("unreachable", address=address, reason=_reason(exc), worker=_dask_worker(address))
        ) from None


def _dask_worker(address: str) -> str:
    """Return the command that starts a worker of the scheduler at ``address`` (or of its scheduler file)."""
    return f"dask worker {address}" if "://" in address else f"dask worker --scheduler-file {address}"


def _reason(exc: BaseException) -> str:
    """Return an exception in a few words: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def workers(client: Client, address: str) -> dict[str, dict]:
    """Return the cluster's workers by address, waiting a while for a first one; raise CrmnbError if none comes."""
    try:
        client.wait_for_workers(1, timeout=WORKERS_SECONDS)
    except (TimeoutError, OSError):
        raise CrmnbError(
            say("no_workers", address=address, seconds=WORKERS_SECONDS, worker=_dask_worker(address))
        ) from None
    return client.scheduler_info(n_workers=-1)["workers"]


def _needed(jobs: Iterable[Job]) -> list[str]:
    """Return what the workers must see for ``jobs``: their case files, notebooks and data folders."""
    out: list[str] = []
    for job in jobs:
        out.append(str(job.file))
        with contextlib.suppress(CrmnbError):
            out.append(str(notebooks_dir(job.file)))
            data = load_case(job.file).data.dir
            if data.exists():  # a case whose data is missing fails on its own, as with --jobs
                out.append(str(data))
    return list(dict.fromkeys(out))


def _storage_problems(results: dict[str, Any], root: Path) -> list[str]:
    """Return what is wrong with what each worker saw of the output root and the case files, in words."""
    problems = []
    for address, res in sorted(results.items()):
        if isinstance(res, BaseException):
            problems.append(say("probe_failed", worker=address, reason=_reason(res)))
            continue
        host = res["worker"]["host"]
        if res["problem"] == "unseen":
            problems.append(say("not_shared", worker=address, host=host, root=root))
        elif res["problem"] == "unwritable":
            problems.append(say("not_writable", worker=address, host=host, root=root, reason=res["detail"]))
        elif not Path(res["mark"]).is_file():
            problems.append(say("not_seen_here", worker=address, host=host, root=root, file=res["mark"]))
        if res["missing"]:
            problems.append(say("missing", worker=address, host=host, paths=", ".join(res["missing"][:5])))
    return problems


def check_shared(client: Client, root: Path, batch: str, jobs: list[Job]) -> dict[str, Any]:
    """Check that every worker sees and writes the output root, and sees the cases' files; raise CrmnbError if not.

    The batch writes a probe file each worker must read back; each worker writes one the batch must see.
    """
    write_atomic(control_dir(root, batch) / PROBE_FILE, batch)
    results = client.run(check_storage, str(root), batch, _needed(jobs), on_error="return")
    problems = _storage_problems(results, root)
    if problems:
        raise CrmnbError("\n".join([*problems, say("shared_storage", root=root)]))
    return results


def _same_code(client: Client, jobs: list[Job], warn: Callable[[str], None]) -> None:
    """Warn about each worker whose crmnb package or notebooks differ from this machine's (``--resume`` compares them)."""
    if not jobs:
        return
    with contextlib.suppress(CrmnbError):
        books = [str(b) for b in step_notebooks(notebooks_dir(jobs[0].file))]
        here = code_hash(books)
        there = client.run(_code_hash, books, on_error="return")
        for address, theirs in sorted(there.items()):
            if theirs != here:
                warn(say("other_code", worker=address))


def _code_hash(books: list[str]) -> str:
    """Return the hash of the crmnb code and notebooks a worker runs (run there)."""
    return code_hash([Path(b) for b in books])


# --------------------------------------------------------------------------- the cases
def _on_event(jobs: dict[str, Job], progress: Progress) -> Callable[[tuple], None]:
    """Return the handler of the tasks' events: a case started on a worker, a case began a step."""

    def handle(event: tuple) -> None:
        msg = event[1] if isinstance(event, tuple) and len(event) == 2 else {}
        job = jobs.get(msg.get("run_id")) if isinstance(msg, dict) else None
        if job is None or job.status not in ("pending", "running"):
            return
        if "started" in msg:
            job.status, job.worker, job.started = "running", msg["started"]["address"], time.perf_counter()
            why = f", {job.why}" if job.why else ""
            progress.line(say("started", case=job.case_id, worker=job.worker, department=job.department) + why)
        elif "step" in msg:
            note_step(job, msg["step"], progress)

    return handle


def _lost(job: Job, before: dict, root: Path) -> None:
    """Record a case whose worker went away while it ran: failed, the worker and the step named."""
    job.status = "failed"
    job.where = job.step
    job.seconds = time.perf_counter() - job.started if job.started else 0.0
    job.error = job.reason = say(
        "worker_lost",
        worker=before.get("address", "?"),
        host=before.get("host", "?"),
        pid=str(before.get("pid", "?")),  # a process id, not a number to write with thousands separators
        step=job.step or say("no_step"),
    )
    rec = read_record(root / job.case_id)
    record_failure(job, root, rec if rec and rec.get("run_id") == job.run_id else None)


def _note_worker(job: Job, root: Path, worker: dict) -> None:
    """Add to the case's run record the worker it ran on (address, host, pid)."""
    rec = read_record(root / job.case_id)
    if rec and rec.get("run_id") == job.run_id:
        write_record(root / job.case_id, {**rec, "worker": worker})


def _collect(job: Job, future: Future, root: Path, progress: Progress) -> None:
    """Take a finished task's outcome: from the case's run record, as ``--jobs`` does, or from the cluster."""
    try:
        out = future.result()
    except Exception as exc:  # the task itself failed: the scheduler gave up, the worker could not run it
        out = {"error": _reason(exc)}
    if "lost" in out:
        _lost(job, out["lost"], root)
    elif "error" in out:
        job.status = "failed"
        job.error = job.reason = say("task_failed", reason=out["error"])
        record_failure(job, root)
    else:
        job.worker = out["worker"]["address"]
        job.killed = out["how"] != "done"
        finish_job(job, root, out["rc"], out["seconds"])
        _note_worker(job, root, out["worker"])
    report_end(job, progress)


def _submit(client: Client, todo: list[Job], root: Path, batch: str) -> dict[Future, Job]:
    """Send each case to the cluster as one task; return the tasks' futures."""
    return {
        client.submit(
            run_case_task,
            str(job.file),
            job.case_id,
            str(root),
            job.run_id,
            job.limit,
            batch,
            key=f"crmnb-{job.case_id}-{job.run_id[:8]}",
            pure=False,
        ): job
        for job in todo
    }


def _run_tasks(client: Client, futures: dict[Future, Job], root: Path, progress: Progress) -> None:
    """Wait for every task, taking each case's outcome as it ends and redrawing the status line.

    When the cluster has had no worker for ``ORPHAN_SECONDS``, the cases left are failed, not waited for.
    """
    last_seen, checked = time.monotonic(), 0.0
    while futures:
        time.sleep(0.2)
        for future in [f for f in futures if f.done()]:
            _collect(futures.pop(future), future, root, progress)
        progress.status([j for j in futures.values() if j.status == "running"])
        now = time.monotonic()
        if futures and now - checked > 5:
            checked = now
            if _worker_count(client):
                last_seen = now
            elif now - last_seen > ORPHAN_SECONDS:
                _fail_left(client, futures, root, progress)


def _worker_count(client: Client) -> int:
    """Return how many workers the cluster has now (taken as some when the scheduler does not answer at once)."""
    try:
        return len(client.scheduler_info(n_workers=-1)["workers"])
    except Exception:  # a slow answer is no proof that the workers are gone
        return 1


def _fail_left(client: Client, futures: dict[Future, Job], root: Path, progress: Progress) -> None:
    """Fail every case still waiting or running: the cluster has had no worker for ``ORPHAN_SECONDS``."""
    client.cancel(list(futures))
    for job in futures.values():
        job.status, job.where = "failed", job.step
        job.error = job.reason = say("no_worker_left", seconds=ORPHAN_SECONDS)
        record_failure(job, root)
        report_end(job, progress)
    futures.clear()


def _stop_tasks(client: Client, futures: dict[Future, Job], control: Path) -> bool:
    """Stop an interrupted batch: cases not started are cancelled, running ones asked to stop on their workers.

    Return True when every running case has stopped within ``STOP_WAIT_SECONDS``.
    """
    write_atomic(control / STOP_FILE, "stop")
    client.cancel([f for f, j in futures.items() if j.status == "pending"])
    deadline = time.perf_counter() + STOP_WAIT_SECONDS
    while any(not f.done() for f in futures) and time.perf_counter() < deadline:
        time.sleep(0.5)
    stopped = all(f.done() for f in futures)
    client.cancel(list(futures))
    return stopped


def run_cluster_batch(
    paths: Iterable[str | Path],
    address: str,
    department: str | None = None,
    resume: bool = False,
    output_root: str | Path = "outputs",
    err: IO[str] | None = None,
) -> BatchResult:
    """Run every case file in ``paths`` (of ``department``, when given) on the Dask cluster at ``address``.

    As :func:`crmnb.run.batch.run_batch`, with the workers of the cluster in place of processes on this
    machine; the output root must be shared by every worker (checked before any case starts).
    """
    err = err or sys.stderr
    root = resolve(output_root)
    root.mkdir(parents=True, exist_ok=True)
    todo = plan_jobs(paths, department, warn=lambda m: print(m, file=err, flush=True))
    client = connect(address)
    batch = uuid.uuid4().hex[:12]
    control = control_dir(root, batch)
    futures: dict[Future, Job] = {}
    stopped = True
    try:
        _start_batch(client, address, root, batch, todo, err)
        progress = Progress(err, len(todo))
        settle_before_start(todo, root, resume, progress)
        pending = [j for j in todo if j.status == "pending"]
        client.subscribe_topic(batch_topic(batch), _on_event({j.run_id: j for j in pending}, progress))
        futures = _submit(client, pending, root, batch)
        _run_tasks(client, futures, root, progress)
    except KeyboardInterrupt:
        stopped = _stop_tasks(client, futures, control)
        write_index(root)
        raise
    finally:
        client.close()
        if stopped:  # else the stop file stays, for the cases still stopping
            shutil.rmtree(control, ignore_errors=True)
            with contextlib.suppress(OSError):  # the folder of every batch's files, when no other batch runs
                control.parent.rmdir()
    progress.clear()
    return BatchResult(todo, write_index(root))


def _start_batch(client: Client, address: str, root: Path, batch: str, todo: list[Job], err: IO[str]) -> None:
    """Check the cluster before any case starts: workers, shared storage, the same code; say what was found."""
    found = workers(client, address)
    pending = [j for j in todo if j.status == "pending"]
    check_shared(client, root, batch, pending)
    print(say("connected", address=address, n=len(found), workers=", ".join(sorted(found)), root=root), file=err)
    _same_code(client, pending, lambda m: print(m, file=err, flush=True))
