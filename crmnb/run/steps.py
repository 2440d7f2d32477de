"""Run a case end to end: validate, execute the seven notebooks, write its outputs (report, workbook…).

Every run leaves ``outputs/<case_id>/run.json`` (status, seconds, error, each output written, and
the fingerprint ``--resume`` compares) and refreshes ``outputs/index.html``. The record says
``running`` from before step 1 until the last output is in place; the run writes into a folder
of its own (``crmnb.run.staging``) whose files are moved into the case folder when it ends.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from crmnb.errors import CrmnbError, StepFailed
from crmnb.handoffs import Workspace
from crmnb.params.files import case_settings, load_case
from crmnb.params.model import CaseParams
from crmnb.paths import resolve
from crmnb.present.outputs import build_outputs, by_key, preload
from crmnb.run.kernel import KERNEL, Kernel, register_engine, skip_unused_slow_imports

# the step notebooks and the run id belong to the run record, which the batch reads without the runner
from crmnb.run.records import (
    RUN_ID_ENV,
    exports_bytes,
    fingerprint,
    finish_record,
    new_record,
    notebooks_dir,
    read_record,
    recorded_outputs,
    recorded_settings,
    resume_check,
    start_record,
    step_notebooks,
    without_system_lines,
    written,
)
from crmnb.run.staging import clear_stale, discard, moved, publish, relocate, stage_root

NOTEBOOK_PARAMETERS = ("case_file", "output_root", "case")
"""What the runner passes to every notebook's ``parameters`` cell."""


@dataclass(frozen=True)
class _Run:
    """What the steps of a run need besides the case: the output root it ends in, its kernel's secrets."""

    root: Path
    env: dict[str, str] | None = None


class StepTimeout(StepFailed):
    """A step ran past the cell's or the case's time limit and was stopped."""


class OutputFolderError(CrmnbError):
    """The case's output folder cannot be made or written: not writable, a file in its place, the disk full."""


def output_folder_error(folder: Path, exc: OSError) -> OutputFolderError:
    """Return the one-line error naming the output folder that could not be written, and why."""
    why = exc.strerror or type(exc).__name__
    at = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(folder) else ""
    return OutputFolderError(f"cannot write the output folder {folder}: {why}{at}")


def _step_error(
    cls: type[StepFailed],
    case_id: str,
    what: str,
    step: str,
    cell: int | None,
    reason: str,
    kept: Path | None = None,
    detail: str = "",
) -> StepFailed:
    """Return the error of a failed step: 'case X failed in step S, cell N: reason', with where its notebook is."""
    where = f"step {step}" + (f", cell {cell}" if cell else "") if step != "report" else "writing the report"
    reason = without_system_lines(reason)  # a case pointed at /etc/passwd: its lines are not quoted
    msg = f"case '{case_id}' {what} {where}{detail}: {reason}"
    if kept is not None:
        msg += f"\n  the partly executed notebook is {kept}"
    err = cls(msg)
    err.step, err.cell, err.where, err.reason = step, cell, where, reason  # for run.json and the batch summary
    return err


def prefer_this_python() -> None:
    """Put this environment's kernelspecs first, so the kernel "python3" is this Python."""
    mine = str(Path(sys.prefix) / "share" / "jupyter")
    paths = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if mine not in paths:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([mine, *paths])


@dataclass
class RunResult:
    """Where a finished case's outputs are."""

    case: CaseParams
    outputs: dict[str, Path]
    """Each output's path by file name (``crmnb.present.outputs.OUTPUTS``)."""
    notebooks: list[Path]
    seconds: float
    status: str = "ok"
    """``ok``, or ``skipped`` when ``resume`` found nothing changed since the last successful run."""
    skipped_since: str | None = None

    def output(self, key: str) -> Path:
        """Return the path of the output whose short name is ``key`` ('report', 'workbook')."""
        return self.outputs[by_key(key).name]

    @property
    def report(self) -> Path:
        """Return the report's path."""
        return self.output("report")

    @property
    def workbook(self) -> Path:
        """Return the workbook's path."""
        return self.output("workbook")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _last_started_cell(notebook: Path) -> int | None:
    """Return the 1-based index of the last cell papermill started in an executed notebook, if any."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    started = [
        i
        for i, c in enumerate(nb.get("cells", []))
        if c.get("metadata", {}).get("papermill", {}).get("start_time") or c.get("execution_count")
    ]
    return started[-1] + 1 if started else None


def _minutes(m: float) -> str:
    return f"{m:g} minute{'s' if m != 1 else ''}"


def _past_limit(case: CaseParams) -> str:
    return f"it ran past its time limit of {_minutes(case.timeout_minutes)} (timeout_minutes)"


@dataclass
class _Step:
    """One step notebook as it runs: where it comes from and goes, and the time it may take."""

    case: CaseParams
    source: Path
    target: Path
    limit: int
    """Seconds a cell may run: the cell limit, or less when the case's time is nearly up."""
    case_bound: bool
    """Whether the limit is the case's time left rather than the cell limit."""


def _plan_step(case: CaseParams, nb: Path, out_nb: Path, deadline: float) -> _Step:
    """Return the step with its time limit, or raise StepTimeout when the case has no time left."""
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        raise _step_error(StepTimeout, case.case_id, "timed out before", nb.stem, None, _past_limit(case))
    limit = max(1, math.ceil(min(case.cell_timeout_seconds, remaining)))
    return _Step(case, nb, out_nb / nb.name, limit, remaining < case.cell_timeout_seconds)


def _step_failure(exc: Exception, step: _Step, kernel: Kernel) -> StepFailed:
    """Return the error naming the step (and the cell) that ``exc`` stopped."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    case, name, target = step.case, step.source.stem, step.target
    if isinstance(exc, PapermillExecutionError):
        reason, detail = f"{exc.ename}: {exc.evalue}", f" (execution count {exc.exec_count})"
        return _step_error(StepFailed, case.case_id, "failed in", name, exc.cell_index + 1, reason, target, detail)
    if isinstance(exc, CellTimeoutError):
        why = (
            f"the case's time limit of {_minutes(case.timeout_minutes)} (timeout_minutes)"
            if step.case_bound
            else f"the cell time limit of {case.cell_timeout_seconds:g} s (cell_timeout_seconds)"
        )
        reason = f"stopped after {step.limit} s, {why}"
        return _step_error(StepTimeout, case.case_id, "timed out in", name, _last_started_cell(target), reason, target)
    if isinstance(exc, TimeoutError):  # the kernel's start-up or the reset between steps
        if kernel.case_bound or step.case_bound:
            return _step_error(StepTimeout, case.case_id, "timed out before", name, None, f"{exc}; {_past_limit(case)}")
        return _step_error(StepFailed, case.case_id, "failed before", name, None, str(exc))
    if isinstance(exc, DeadKernelError):
        reason = "kernel died (the Python process ended: out of memory, a crash, or code that exits)"
    else:  # a kernel that never starts, an unreadable notebook…: still name the step
        reason = f"{type(exc).__name__}: {exc}"
    return _step_error(StepFailed, case.case_id, "failed in", name, _last_started_cell(target), reason, target)


def _execute_step(step: _Step, src: Path, params: dict, kernel: Kernel) -> Path:
    """Execute one step notebook in ``kernel``, each cell within the step's limit; return the executed notebook."""
    import papermill as pm

    try:
        kernel.reset(timeout=step.limit)
        pm.execute_notebook(
            str(step.source),
            str(step.target),
            parameters=params,
            kernel_name=KERNEL,
            cwd=str(src),
            progress_bar=False,
            log_output=False,
            report_mode=False,
            execution_timeout=step.limit,
            km=kernel.km,
            engine_name=register_engine(),
        )
    except Exception as exc:
        raise _step_failure(exc, step, kernel) from None
    return step.target


def _execute_steps(
    case: CaseParams,
    books: list[Path],
    src: Path,
    out_nb: Path,
    params: dict,
    say: Callable[[str], None],
    deadline: float,
    kernel: Kernel,
) -> list[Path]:
    """Execute the step notebooks in order in ``kernel``, each cell within the cell limit and the
    whole within ``deadline``."""
    done: list[Path] = []
    for i, nb in enumerate(books, start=1):
        step = _plan_step(case, nb, out_nb, deadline)
        t = time.perf_counter()
        say(f"[{case.case_id}] step {i}/{len(books)} {nb.stem} …")
        done.append(_execute_step(step, src, params, kernel))
        say(f"[{case.case_id}] step {i}/{len(books)} {nb.stem} done in {time.perf_counter() - t:.1f} s")
    return done


def _start_kernel(
    case: CaseParams, books: list[Path], src: Path, deadline: float, env: dict[str, str] | None = None
) -> Kernel:
    """Start the case's kernel (given ``env`` besides this process's environment), or raise StepFailed naming
    the first step it was for."""
    try:
        return Kernel(src, deadline, env)
    except Exception as exc:
        raise _step_error(
            StepFailed,
            case.case_id,
            "failed before",
            books[0].stem if books else "01",
            None,
            f"the kernel '{KERNEL}' did not start: {type(exc).__name__}: {exc}",
        ) from None


PRELOAD_BELOW = 1 << 30
"""Exports (bytes) below which the runner imports the outputs' modules while the kernel starts (:func:`preloads`)."""


def preloads(case: CaseParams) -> bool:
    """Return whether the runner imports the report's and workbook's modules before the steps, rather than after.

    For a case of small exports they load while the kernel starts, and the outputs wait for none (about a second
    of a demo case's 20). For one of a gigabyte or more that second is nothing, and the 70 MB they take would be
    held beside the kernel through every step, at the case's peak: they load once the kernel has closed. A
    database server's tables, of unknown size, count as small.
    """
    size = exports_bytes(case)
    return size is None or size < PRELOAD_BELOW


def _run_steps_and_outputs(
    case: CaseParams,
    books: list[Path],
    src: Path,
    ws: Workspace,
    params: dict,
    say: Callable[[str], None],
    t0: float,
    run: _Run,
) -> tuple[list[Path], dict[str, Path]]:
    """Execute the steps in one kernel, then write every output; return the executed notebooks and the outputs."""
    deadline = t0 + case.timeout_minutes * 60
    out_nb = ws.folder / "notebooks"
    # the kernel imports its libraries while this process loads papermill and the outputs' modules
    kernel = _start_kernel(case, books, src, deadline, run.env)
    try:
        skip_unused_slow_imports()
        import papermill  # noqa: F401

        if preloads(case):
            preload()
        done = _execute_steps(case, books, src, out_nb, params, say, deadline, kernel)
    finally:
        kernel.close()
    relocate(done, ws.root, run.root)  # the report is built from notebooks that name where they end up
    try:
        return done, build_outputs(case, done, ws)
    except Exception as exc:
        raise _step_error(StepFailed, case.case_id, "failed", "report", None, f"{type(exc).__name__}: {exc}") from exc


def _record_failure(folder: Path, record: dict, exc: BaseException, seconds: float) -> None:
    """Write the run record of a run that failed, timed out or was interrupted: where and why."""
    status = "timeout" if isinstance(exc, StepTimeout) else "failed"
    error = without_system_lines(
        str(exc)
        if isinstance(exc, StepFailed)
        else ("interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}")
    )
    step = getattr(exc, "step", None)
    finish_record(
        folder,
        record,
        status,
        seconds,
        error=error,
        step=step,
        cell=getattr(exc, "cell", None),
        where=getattr(exc, "where", None),
        reason=getattr(exc, "reason", None),
        notebook=f"notebooks/{step}.ipynb" if step and step != "report" else None,
    )


def _keep_failed_notebooks(stage: Workspace, ws: Workspace, exc: BaseException) -> None:
    """Move a failed run's executed notebooks into the case folder (its report and hand-offs are left
    out: the last good ones stay), and say in its error where they are now."""
    try:
        relocate(sorted((stage.folder / "notebooks").glob("*.ipynb")), stage.root, ws.root)
        publish(stage.folder, ws.folder, complete=False)
    except OSError:
        discard(stage.root)
        return
    if isinstance(exc, StepFailed) and exc.args:
        exc.args = (str(exc.args[0]).replace(str(stage.folder), str(ws.folder)), *exc.args[1:])


def _refresh_index(root: Path) -> None:
    """Rewrite the output root's index page (imported here: the runner needs it only at the end); say it when
    the page cannot be written, which leaves the case's own outputs as they are."""
    from crmnb.run.index import write_index

    try:
        write_index(root)
    except OSError as exc:
        _say(f"crmnb: the index page was not refreshed: {output_folder_error(root, exc)}")


def _failed(ws: Workspace, record: dict, exc: BaseException, seconds: float) -> None:
    """Record a run that failed; when even its run.json cannot be written (the disk full), say so, and its
    record is left saying running, which reads as interrupted."""
    try:
        _record_failure(ws.folder, record, exc, seconds)
    except OSError as err:
        _say(f"crmnb: the run was not recorded: {output_folder_error(ws.folder, err)}")


def _open_folder(root: Path, ws: Workspace, record: dict) -> None:
    """Make the case's output folder and record the run as started, or raise OutputFolderError."""
    try:
        clear_stale(root, ws.case_id)
        ws.folder.mkdir(parents=True, exist_ok=True)
        start_record(ws.folder, record)
    except OSError as exc:
        raise output_folder_error(ws.folder, exc) from None


def _run_in_stage(
    case: CaseParams,
    books: list[Path],
    src: Path,
    stage: Workspace,
    ws: Workspace,
    params: dict,
    say: Callable[[str], None],
    t0: float,
    env: dict[str, str] | None = None,
) -> tuple[list[Path], dict[str, Path]]:
    """Run the steps and write the outputs in the run's own folder ``stage``, then move them into the case's."""
    try:
        (stage.folder / "notebooks").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_folder_error(stage.folder, exc) from None
    done, outputs = _run_steps_and_outputs(case, books, src, stage, params, say, t0, _Run(ws.root, env))
    try:
        publish(stage.folder, ws.folder)
    except OSError as exc:
        raise output_folder_error(ws.folder, exc) from None
    return done, outputs


def run_case(
    case_file: str | Path,
    output_root: str | Path = "outputs",
    progress: Callable[[str], None] | None = _say,
    resume: bool = False,
    index: bool = True,
) -> RunResult:
    """Validate the case file, execute notebooks 01..07 into the case's output folder, then write its outputs.

    A failing step raises :class:`StepFailed` naming the step and the cell; its partly
    executed notebook stays in ``outputs/<case_id>/notebooks/``. A cell running past
    ``cell_timeout_seconds``, or the case past ``timeout_minutes``, raises
    :class:`StepTimeout`. With ``resume``, a case whose settings, data and code are
    unchanged since its last successful run is skipped. Each run writes
    ``outputs/<case_id>/run.json``; ``index`` also refreshes ``outputs/index.html``.
    """
    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    file = resolve(case_file)
    case = load_case(file)  # fails here, before any notebook, on a bad case file
    settings = case_settings(file)  # merged with the defaults: what every notebook records
    root = resolve(output_root)
    ws = Workspace(root, case.case_id)
    src = notebooks_dir(file)
    books = step_notebooks(src)
    prints = fingerprint(case, settings, books)
    if resume:
        since, why = resume_check(ws.folder, prints)
        if since is not None:
            outputs = recorded_outputs(root, read_record(ws.folder), case.case_id)
            return RunResult(case, outputs, step_notebooks(ws.folder / "notebooks"), 0.0, "skipped", since)
        say(f"[{case.case_id}] running: {why}")
    record = new_record(case, file, prints, run_id=os.environ.get(RUN_ID_ENV))
    _open_folder(root, ws, record)
    stage = Workspace(stage_root(root, case.case_id), case.case_id)
    # the case's settings travel with the run, so each executed notebook records what it ran with: its
    # database URLs' secrets as ${VAR} references, their values given to its kernel only
    recorded, secrets = recorded_settings(settings)
    params = dict(zip(NOTEBOOK_PARAMETERS, (str(file), str(stage.root), recorded)))
    prefer_this_python()
    try:
        done, outputs = _run_in_stage(case, books, src, stage, ws, params, say, t0, secrets)
    except BaseException as exc:
        _keep_failed_notebooks(stage, ws, exc)
        _failed(ws, record, exc, time.perf_counter() - t0)
        if index:
            _refresh_index(root)
        raise
    done = [moved(p, stage.folder, ws.folder) for p in done]
    outputs = {name: moved(p, stage.folder, ws.folder) for name, p in outputs.items()}
    secs = time.perf_counter() - t0
    try:
        finish_record(ws.folder, record, "ok", secs, **written(root, outputs))
    except OSError as exc:
        raise output_folder_error(ws.folder, exc) from None
    if index:
        _refresh_index(root)
    return RunResult(case, outputs, done, secs)
