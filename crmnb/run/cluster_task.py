"""What a Dask worker runs for ``crmnb batch --cluster``: one case's ``crmnb run`` process, and the storage check.

A case runs on a worker exactly as ``--jobs`` runs it on this machine (:mod:`crmnb.run.case_process`): the
same command, the same ``run.log`` and run record in the shared output root. Beside the output root, in
``.crmnb-cluster/<batch>/``, the batch and its tasks leave each other small files: the probe of the
storage check, each task's claim (so that a task the scheduler starts again after its worker died is
known for what it is) and the batch's request to stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distributed import get_worker

from crmnb.run.case_process import STOP_SECONDS, ask_to_stop, case_command, kill, open_log, pump, start_case
from crmnb.run.records import timestamp, write_atomic

CONTROL_DIR = ".crmnb-cluster"
"""The folder in the output root where a batch and its tasks leave each other files (removed at the end)."""

STOP_FILE = "stop"
"""Written by the batch when it is interrupted: every task of the batch stops its case."""

PROBE_FILE = "probe"
"""Written by the batch before it starts: each worker must read it back, and write one of its own."""

PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal a process gets when the thread that started it ends."""


def control_dir(root: str | Path, batch: str) -> Path:
    """Return the folder of the output root where the batch ``batch`` and its tasks leave each other files."""
    return Path(root) / CONTROL_DIR / batch


def worker_here() -> dict[str, Any]:
    """Return who runs this code: the worker's address ('' outside a worker), host and process id."""
    try:
        address = get_worker().address
    except ValueError:  # not on a worker
        address = ""
    return {"address": address, "host": socket.gethostname(), "pid": os.getpid()}


def _announcer(topic: str, run_id: str) -> Callable[[dict], None]:
    """Return what tells the batch how its case goes (events through the scheduler), from any thread of the task."""
    try:
        worker = get_worker()  # known in the task's own thread only, not in the thread reading the case's output
    except ValueError:
        worker = None

    def announce(msg: dict) -> None:
        with contextlib.suppress(Exception):  # progress is a courtesy: a lost event never fails a case
            if worker is not None:
                worker.log_event(topic, {"run_id": run_id, **msg})

    return announce


def _claim(control: Path, run_id: str, me: dict) -> dict | None:
    """Return the worker that took this very task before (and went away), else claim the task and return None."""
    path = control / f"{run_id}.json"
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = None
    if isinstance(before, dict) and before.get("run_id") == run_id:
        return before
    write_atomic(path, json.dumps({"run_id": run_id, **me, "started": timestamp()}))
    return None


def _die_with_worker() -> Callable[[], None] | None:
    """Return what makes a case process get SIGTERM when its worker dies (Linux), so that no orphan runs on."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


def _wait(proc, limit: float | None, stop: Path) -> str:
    """Wait for a case process, stopping it past ``limit`` seconds or when the batch asks.

    Return how it ended: 'done' (by itself), 'timeout' or 'stopped'.
    """
    started = time.monotonic()
    how, kill_at, polls = "done", None, 0
    while proc.poll() is None:
        time.sleep(0.2)
        polls += 1
        now = time.monotonic()
        if how == "done":
            if limit and now - started > limit:
                how = "timeout"
            elif polls % 5 == 0 and stop.exists():  # once a second: the shared storage need not be fast
                how = "stopped"
            if how != "done" and ask_to_stop(proc):
                kill_at = now + STOP_SECONDS
        elif kill_at is not None and now > kill_at:
            kill(proc)
            kill_at = None
    return how


def run_case_task(file: str, case_id: str, root: str, run_id: str, limit: float | None, batch: str) -> dict:
    """Run one case's ``crmnb run`` on this worker, ``limit`` seconds at most; return how it ended and where.

    The result names the worker (address, host, pid); ``lost`` names the worker that took this task
    before and went away while it ran (the case is then not run again).
    """
    me = worker_here()
    control = control_dir(root, batch)
    before = _claim(control, run_id, me)
    if before is not None:
        return {"lost": before, "worker": me}
    announce = _announcer(batch_topic(batch), run_id)
    cmd = case_command(Path(file), Path(root))
    where = f", on worker {me['address']} (host {me['host']}, pid {me['pid']})"
    log = open_log(Path(root) / case_id, cmd, where)
    announce({"started": me})
    started = time.monotonic()
    proc = start_case(cmd, run_id, preexec_fn=_die_with_worker())
    reader = threading.Thread(target=pump, args=(proc.stdout, log, lambda step: announce({"step": step})), daemon=True)
    reader.start()
    how = _wait(proc, limit, control / STOP_FILE)
    reader.join(timeout=5)
    return {"rc": proc.returncode, "how": how, "seconds": time.monotonic() - started, "worker": me}


def batch_topic(batch: str) -> str:
    """Return the name of the events by which a batch's tasks tell it how their cases go."""
    return f"crmnb-batch-{batch}"


def check_storage(root: str, batch: str, paths: list[str]) -> dict:
    """Return what this worker sees of the shared storage: the batch's probe, a file of its own, ``paths``.

    ``problem`` is 'unseen' (the probe is not there: another storage, or none, at that path) or
    'unwritable' (with ``detail``, the system's words), else ''; ``missing`` lists the paths not there.
    """
    me = worker_here()
    control = control_dir(root, batch)
    out: dict[str, Any] = {"worker": me, "problem": "", "detail": "", "missing": [], "mark": ""}
    try:
        seen = (control / PROBE_FILE).read_text(encoding="utf-8")
    except OSError as exc:
        seen, out["detail"] = None, exc.strerror or str(exc)
    if seen != batch:
        out["problem"] = "unseen"
        return out
    mark = control / f"worker-{me['host']}-{me['pid']}"
    try:
        write_atomic(mark, me["address"])
        out["mark"] = str(mark)
    except OSError as exc:
        out["problem"], out["detail"] = "unwritable", exc.strerror or str(exc)
    out["missing"] = [p for p in paths if not Path(p).exists()]
    return out
