"""Run a case end to end: validate, execute the seven notebooks, write the report and workbook.

Every run leaves ``outputs/<case_id>/run.json`` (status, seconds, error, and the
fingerprint ``--resume`` compares) and refreshes ``outputs/index.html``.
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

from crmnb.errors import CaseFileError, StepFailed
from crmnb.handoffs import Workspace
from crmnb.params.files import case_settings, load_case
from crmnb.params.model import CaseParams
from crmnb.paths import resolve, workbook_root
from crmnb.run.kernel import KERNEL, _Kernel, _register_engine, skip_unused_slow_imports

NOTEBOOK_PARAMETERS = ("case_file", "output_root", "case")
"""What the runner passes to every notebook's ``parameters`` cell."""

RUN_ID_ENV = "CRMNB_RUN_ID"
"""Environment variable by which ``crmnb batch`` recognises the run record its child wrote."""


class StepTimeout(StepFailed):
    """A step ran past the cell's or the case's time limit and was stopped."""


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


def notebooks_dir(case_file: Path) -> Path:
    """Return the workbook's ``notebooks/`` folder: above the case file, else above the working directory,
    else beside this package (an editable install of the workbook)."""
    tried = []
    for start in (case_file.parent, Path.cwd(), Path(__file__).resolve().parent.parent):
        folder = workbook_root(start) / "notebooks"
        if step_notebooks(folder):
            return folder
        tried.append(str(folder))
    raise CaseFileError(f"{case_file}: no step notebooks found (looked in {', '.join(dict.fromkeys(tried))})")


def step_notebooks(folder: Path) -> list[Path]:
    """Return the numbered step notebooks in run order."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb")) if folder.is_dir() else []


@dataclass
class RunResult:
    """Where a finished case's outputs are."""

    case: CaseParams
    report: Path
    workbook: Path
    notebooks: list[Path]
    seconds: float
    status: str = "ok"
    """``ok``, or ``skipped`` when ``resume`` found nothing changed since the last successful run."""
    skipped_since: str | None = None


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


def _execute_steps(
    case: CaseParams,
    books: list[Path],
    src: Path,
    out_nb: Path,
    params: dict,
    say: Callable[[str], None],
    deadline: float,
    kernel: _Kernel,
) -> list[Path]:
    """Execute the step notebooks in order in ``kernel``, each cell within the cell limit and the
    whole within ``deadline``."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    done: list[Path] = []
    for i, nb in enumerate(books, start=1):
        target = out_nb / nb.name
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise _step_error(
                StepTimeout,
                case.case_id,
                "timed out before",
                nb.stem,
                None,
                f"it ran past its time limit of {_minutes(case.timeout_minutes)} (timeout_minutes)",
            )
        case_bound = remaining < case.cell_timeout_seconds
        limit = max(1, math.ceil(min(case.cell_timeout_seconds, remaining)))
        t = time.perf_counter()
        say(f"[{case.case_id}] step {i}/{len(books)} {nb.stem} …")
        try:
            kernel.reset(timeout=limit)
            pm.execute_notebook(
                str(nb),
                str(target),
                parameters=params,
                kernel_name=KERNEL,
                cwd=str(src),
                progress_bar=False,
                log_output=False,
                report_mode=False,
                execution_timeout=limit,
                km=kernel.km,
                engine_name=_register_engine(),
            )
        except PapermillExecutionError as exc:
            raise _step_error(
                StepFailed,
                case.case_id,
                "failed in",
                nb.stem,
                exc.cell_index + 1,
                f"{exc.ename}: {exc.evalue}",
                target,
                detail=f" (execution count {exc.exec_count})",
            ) from None
        except CellTimeoutError:
            why = (
                f"the case's time limit of {_minutes(case.timeout_minutes)} (timeout_minutes)"
                if case_bound
                else f"the cell time limit of {case.cell_timeout_seconds:g} s (cell_timeout_seconds)"
            )
            raise _step_error(
                StepTimeout,
                case.case_id,
                "timed out in",
                nb.stem,
                _last_started_cell(target),
                f"stopped after {limit} s, {why}",
                target,
            ) from None
        except TimeoutError as exc:  # the kernel's start-up or the reset between steps
            if kernel.case_bound or case_bound:
                raise _step_error(
                    StepTimeout,
                    case.case_id,
                    "timed out before",
                    nb.stem,
                    None,
                    f"{exc}; it ran past its time limit of {_minutes(case.timeout_minutes)} (timeout_minutes)",
                ) from None
            raise _step_error(StepFailed, case.case_id, "failed before", nb.stem, None, str(exc)) from None
        except DeadKernelError:
            raise _step_error(
                StepFailed,
                case.case_id,
                "failed in",
                nb.stem,
                _last_started_cell(target),
                "kernel died (the Python process ended: out of memory, a crash, or code that exits)",
                target,
            ) from None
        except Exception as exc:  # a kernel that never starts, an unreadable notebook…: still name the step
            raise _step_error(
                StepFailed,
                case.case_id,
                "failed in",
                nb.stem,
                _last_started_cell(target),
                f"{type(exc).__name__}: {exc}",
                target,
            ) from None
        done.append(target)
        say(f"[{case.case_id}] step {i}/{len(books)} {nb.stem} done in {time.perf_counter() - t:.1f} s")
    return done


def run_case(
    case_file: str | Path,
    output_root: str | Path = "outputs",
    progress: Callable[[str], None] | None = _say,
    resume: bool = False,
    index: bool = True,
) -> RunResult:
    """Validate the case file, execute notebooks 01..07 into the case's output folder, then report.

    A failing step raises :class:`StepFailed` naming the step and the cell; its partly
    executed notebook stays in ``outputs/<case_id>/notebooks/``. A cell running past
    ``cell_timeout_seconds``, or the case past ``timeout_minutes``, raises
    :class:`StepTimeout`. With ``resume``, a case whose settings, data and code are
    unchanged since its last successful run is skipped. Each run writes
    ``outputs/<case_id>/run.json``; ``index`` also refreshes ``outputs/index.html``.
    """
    from crmnb.run import index as run_index
    from crmnb.run import records as run_records

    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    file = resolve(case_file)
    case = load_case(file)  # fails here, before any notebook, on a bad case file
    settings = case_settings(file)  # merged with the defaults: what every notebook records
    root = resolve(output_root)
    ws = Workspace(root, case.case_id)
    src = notebooks_dir(file)
    books = step_notebooks(src)
    prints = run_records.fingerprint(case, settings, books)
    if resume:
        since, why = run_records.resume_check(ws.folder, prints)
        if since is not None:
            last = run_records.read_record(ws.folder) or {}
            return RunResult(
                case,
                root / last.get("report", f"{case.case_id}/report.html"),
                root / last.get("workbook", f"{case.case_id}/tables.xlsx"),
                step_notebooks(ws.folder / "notebooks"),
                0.0,
                "skipped",
                since,
            )
        say(f"[{case.case_id}] running: {why}")
    out_nb = ws.folder / "notebooks"
    out_nb.mkdir(parents=True, exist_ok=True)
    record = run_records.new_record(case, file, prints, run_id=os.environ.get(RUN_ID_ENV))
    # the case's settings travel with the run, so each executed notebook records what it ran with
    params = dict(zip(NOTEBOOK_PARAMETERS, (str(file), str(root), settings)))
    prefer_this_python()
    try:
        try:
            # the kernel imports its libraries while this process loads papermill and the report's modules
            kernel = _Kernel(src, t0 + case.timeout_minutes * 60)
        except Exception as exc:
            raise _step_error(
                StepFailed,
                case.case_id,
                "failed before",
                books[0].stem if books else "01",
                None,
                f"the kernel '{KERNEL}' did not start: {type(exc).__name__}: {exc}",
            ) from None
        skip_unused_slow_imports()
        import papermill  # noqa: F401

        from crmnb.present.report import build_report
        from crmnb.present.workbook import build_workbook

        try:
            done = _execute_steps(case, books, src, out_nb, params, say, t0 + case.timeout_minutes * 60, kernel)
        finally:
            kernel.close()
        try:
            report = build_report(case, done, ws)
            workbook = build_workbook(case, ws)
        except Exception as exc:
            raise _step_error(
                StepFailed, case.case_id, "failed", "report", None, f"{type(exc).__name__}: {exc}"
            ) from exc
    except BaseException as exc:
        status = "timeout" if isinstance(exc, StepTimeout) else "failed"
        error = (
            str(exc)
            if isinstance(exc, StepFailed)
            else ("interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}")
        )
        step = getattr(exc, "step", None)
        run_records.finish_record(
            ws.folder,
            record,
            status,
            time.perf_counter() - t0,
            error=error,
            step=step,
            cell=getattr(exc, "cell", None),
            where=getattr(exc, "where", None),
            reason=getattr(exc, "reason", None),
            notebook=f"notebooks/{step}.ipynb" if step and step != "report" else None,
        )
        if index:
            run_index.write_index(root)
        raise
    secs = time.perf_counter() - t0
    run_records.finish_record(
        ws.folder,
        record,
        "ok",
        secs,
        report=report.relative_to(root).as_posix(),
        workbook=workbook.relative_to(root).as_posix(),
    )
    if index:
        run_index.write_index(root)
    return RunResult(case, report, workbook, done, secs)
