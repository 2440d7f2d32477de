"""Run a command and measure it: wall seconds and the peak memory of its whole process tree, with a
memory watchdog that stops the tree past a cap, and a lock file that keeps large runs one at a time."""

from __future__ import annotations

import contextlib
import fcntl
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

STEP_DONE = re.compile(r"step (\d+)/(\d+) (\S+) done in ([\d.]+) s")
STEP_SEEN = re.compile(r"step (\d+)/(\d+) (\S+)")
MB = 1e6
GB = 1e9
SAMPLE_SECONDS = 0.1


class BenchError(Exception):
    """Something the benchmark runs did not run: names what, and shows the end of its output."""


class Measured(dict):
    """One command's wall seconds, peak memory, exit status and output files."""


def say(msg: str = "") -> None:
    """Print a line at once, so that a long benchmark shows where it is."""
    print(msg, flush=True)


def tree_rss(proc: psutil.Process) -> tuple[int, int, list[psutil.Process]]:
    """Return the summed and the largest resident set size of ``proc`` and its children, and the processes."""
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        procs = []
    total = single = 0
    for p in procs:
        try:
            rss = p.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        single = max(single, rss)
    return total, single, procs


def stop_tree(procs: list[psutil.Process]) -> None:
    """Kill every process of a tree, children first, so that none is left holding memory."""
    for p in reversed(procs):
        with contextlib.suppress(psutil.Error):
            p.kill()


def echo_new_steps(err: Path, seen: int) -> int:
    """Print the lines of ``err`` after line ``seen`` that report a finished step; return the lines read."""
    try:
        text = err.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return seen
    lines = text.splitlines()
    for line in lines[seen:]:
        if STEP_DONE.search(line) or line.startswith("workbook done"):
            say(f"      {line.strip()}")
    return len(lines) if text.endswith("\n") else max(seen, len(lines) - 1)


def watch(proc: psutil.Popen, err: Path, peak: dict, stop: threading.Event, cap: float | None, echo: bool) -> None:
    """Sample the tree's memory until ``stop``; past ``cap`` bytes, kill the tree and note it in ``peak``."""
    seen = 0
    while True:
        total, single, procs = tree_rss(proc)
        peak["total"] = max(peak["total"], total)
        peak["single"] = max(peak["single"], single)
        if cap is not None and total > cap and not peak["stopped"]:
            peak["stopped"] = True
            stop_tree(procs)
        if echo:
            seen = echo_new_steps(err, seen)
        if stop.wait(SAMPLE_SECONDS):
            return


def measure(
    what: str,
    cmd: list[str],
    log: Path,
    cwd: Path | None = None,
    env: dict | None = None,
    echo_steps: bool = True,
    check: bool = True,
    cap_bytes: float | None = None,
) -> Measured:
    """Run ``cmd``, timing it and sampling the memory of it and its children every 0.1 s.

    stdout and stderr go to ``log`` (.out / .err); lines reporting a finished step are echoed as
    they come. With ``cap_bytes``, the whole tree is killed once its summed resident memory passes
    the cap (``stopped_by_watchdog``, with the step it had reached). With ``check``, a non-zero exit
    that the watchdog did not cause raises :class:`BenchError` naming ``what``.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    out, err = log.with_suffix(".out"), log.with_suffix(".err")
    peak = {"total": 0, "single": 0, "stopped": False}
    stop = threading.Event()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.perf_counter()
        try:
            proc = psutil.Popen(cmd, cwd=cwd, env=env, stdout=fo, stderr=fe)
        except OSError as exc:
            raise BenchError(f"{what}: could not start {cmd[0]}: {exc}") from None
        sampler = threading.Thread(target=watch, args=(proc, err, peak, stop, cap_bytes, echo_steps), daemon=True)
        sampler.start()
        rc = proc.wait()
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    result = Measured(
        what=what,
        seconds=round(wall, 2),
        peak_rss_mb=round(peak["total"] / MB),
        peak_single_process_rss_mb=round(peak["single"] / MB),
        returncode=rc,
        stopped_by_watchdog=peak["stopped"],
        memory_cap_mb=None if cap_bytes is None else round(cap_bytes / MB),
        reached=reached_step(err),
        stderr=str(err),
        stdout=str(out),
    )
    if check and rc != 0 and not peak["stopped"]:
        tail = "\n".join(err.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:])
        raise BenchError(f"{what} failed (exit status {rc}): {' '.join(map(str, cmd))}\n{tail}\n(full output: {err})")
    return result


def reached_step(stderr: str | Path) -> str | None:
    """Return the last step a run's stderr names ('step 4/7 04_cleaning_and_validation'), or None."""
    try:
        text = Path(stderr).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = STEP_SEEN.findall(text)
    return f"step {found[-1][0]}/{found[-1][1]} {found[-1][2]}" if found else None


def step_seconds(stderr: str | Path) -> dict[str, float]:
    """Return the seconds of each step from the lines 'step i/7 NAME done in X s' of a run's stderr."""
    steps = {}
    for line in Path(stderr).read_text(encoding="utf-8", errors="replace").splitlines():
        m = STEP_DONE.search(line)
        if m:
            steps[m.group(3)] = float(m.group(4))
    return steps


def step_seconds_by_number(stderr: str | Path) -> dict[int, tuple[str, float]]:
    """Return each finished step's name and seconds by its number, from a run's stderr."""
    steps = {}
    for line in Path(stderr).read_text(encoding="utf-8", errors="replace").splitlines():
        m = STEP_DONE.search(line)
        if m:
            steps[int(m.group(1))] = (m.group(3), float(m.group(4)))
    return steps


@contextlib.contextmanager
def held(lock_file: str | None, what: str) -> Iterator[float]:
    """Hold the exclusive lock ``lock_file`` (as ``flock FILE …`` takes it) while the block runs.

    Yields the seconds spent waiting for it. Without a lock file, nothing is locked. Waiting happens
    before any timed command starts, so it is never part of a measurement.
    """
    if not lock_file:
        yield 0.0
        return
    t0 = time.perf_counter()
    with open(lock_file, "a+") as fh:
        told = False
        while True:  # polled, not a blocking flock: Ctrl-C still ends the bench while it waits
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    say(f"  {what}: waiting for the lock {lock_file} (another large run holds it) …")
                    told = True
                time.sleep(1)
        waited = time.perf_counter() - t0
        try:
            yield waited
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
