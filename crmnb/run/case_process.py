"""One case of a batch in a process of its own: the ``crmnb run`` command, its log, its steps, stopping it.

Shared by ``crmnb batch --jobs`` (processes on this machine) and ``--cluster`` (a process on a worker), so
that a case runs the same way, and leaves the same log and run record, wherever it runs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from crmnb.run.records import LOG_FILE, RUN_ID_ENV, timestamp

STEP_LINE = re.compile(r"\] step (\d+)/(\d+) (\S+) …\s*$")
"""A progress line of ``crmnb run``: '[case] step 2/7 02_data_collection …'."""

STOP_SECONDS = 15
"""Time a case process gets to shut its kernel down after it is asked to stop, before it is killed."""


def case_command(file: Path, root: Path) -> list[str]:
    """Return the command that runs one case of a batch: ``crmnb run`` in a process of its own."""
    return [sys.executable, "-m", "crmnb.cli", "run", str(file), "--output-root", str(root), "--no-index"]


def case_env(run_id: str) -> dict[str, str]:
    """Return the environment of a case process: unbuffered UTF-8 output and the run id the batch expects."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", RUN_ID_ENV: run_id}


def open_log(folder: Path, cmd: list[str], where: str = "") -> IO[str]:
    """Open a case's ``run.log`` for its process's output, headed by when, where and what runs."""
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / LOG_FILE).open("w", encoding="utf-8")
    log.write(f"# crmnb batch, {timestamp()}{where}: {' '.join(cmd)}\n")
    log.flush()
    return log


def start_case(cmd: list[str], run_id: str, preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen:
    """Start a case process in a session of its own (so that it can be stopped with what it started)."""
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=case_env(run_id),
        start_new_session=True,
        preexec_fn=preexec_fn,
    )


def pump(stream: IO[bytes], log: IO[str], on_step: Callable[[str], None]) -> None:
    """Copy a case process's output into its log, and pass on each step it starts ('step 2/7 02_…')."""
    try:
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace")
            log.write(text)
            log.flush()
            m = STEP_LINE.search(text)
            if m:
                on_step(f"step {m[1]}/{m[2]} {m[3]}")
    finally:
        stream.close()
        log.close()


def ask_to_stop(proc: subprocess.Popen) -> bool:
    """Ask a case process to stop (it shuts its kernel down and records the run); False when it has gone."""
    if proc.poll() is not None:
        return False
    try:
        proc.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def kill(proc: subprocess.Popen) -> None:
    """Kill a case process and what it started in its session (its kernel)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (AttributeError, ProcessLookupError, PermissionError):  # AttributeError: Windows has no killpg
        proc.kill()
