"""Run a case end to end: validate, execute the seven notebooks, write the report and workbook."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import CaseFileError, StepFailed
from .io import Workspace
from .params import CaseParams, case_settings, load_case
from .paths import resolve, workbook_root

KERNEL = "python3"
NOTEBOOK_PARAMETERS = ("case_file", "output_root", "case")
"""What the runner passes to every notebook's ``parameters`` cell."""


def _prefer_this_python() -> None:
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


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_case(case_file: str | Path, output_root: str | Path = "outputs",
             progress: Callable[[str], None] | None = _say) -> RunResult:
    """Validate the case file, execute notebooks 01..07 into the case's output folder, then report.

    A failing step raises :class:`StepFailed` naming the step and the cell; its partly
    executed notebook stays in ``outputs/<case_id>/notebooks/``.
    """
    import papermill as pm
    from traitlets.config import Config
    from papermill.exceptions import PapermillExecutionError

    from .report import build_report, build_workbook

    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    file = resolve(case_file)
    case = load_case(file)  # fails here, before any notebook, on a bad case file
    root = resolve(output_root)
    ws = Workspace(root, case.case_id)
    out_nb = ws.folder / "notebooks"
    out_nb.mkdir(parents=True, exist_ok=True)
    src = notebooks_dir(file)
    books = step_notebooks(src)
    # the case's settings travel with the run, so each executed notebook records what it ran with
    params = dict(zip(NOTEBOOK_PARAMETERS, (str(file), str(root), case_settings(file))))
    _prefer_this_python()
    done: list[Path] = []
    for i, nb in enumerate(books, start=1):
        target = out_nb / nb.name
        t = time.perf_counter()
        say(f"[{case.case_id}] step {i}/{len(books)} {nb.stem} …")
        try:
            pm.execute_notebook(str(nb), str(target), parameters=params, kernel_name=KERNEL, cwd=str(src),
                                progress_bar=False, log_output=False, report_mode=False,
                                # local IPC sockets: no TCP port, and no plain-TCP warning from the kernel
                                config=Config({"KernelManager": {"transport": "ipc"}}))
        except PapermillExecutionError as exc:
            raise StepFailed(
                f"case '{case.case_id}' failed in step {nb.stem}, cell {exc.cell_index + 1} "
                f"(execution count {exc.exec_count}): {exc.ename}: {exc.evalue}\n"
                f"  the partly executed notebook is {target}"
            ) from None
        done.append(target)
        say(f"[{case.case_id}] step {i}/{len(books)} {nb.stem} done in {time.perf_counter() - t:.1f} s")
    report = build_report(case, done, ws)
    workbook = build_workbook(case, ws)
    secs = time.perf_counter() - t0
    return RunResult(case, report, workbook, done, secs)
