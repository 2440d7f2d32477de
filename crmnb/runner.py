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

RUN_ID_ENV = "CRMNB_RUN_ID"
"""Environment variable by which ``crmnb batch`` recognises the run record its child wrote."""


class StepTimeout(StepFailed):
    """A step ran past the cell's or the case's time limit and was stopped."""


def _step_error(cls: type[StepFailed], case_id: str, what: str, step: str, cell: int | None, reason: str,
                kept: Path | None = None, detail: str = "") -> StepFailed:
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
    started = [i for i, c in enumerate(nb.get("cells", []))
               if c.get("metadata", {}).get("papermill", {}).get("start_time") or c.get("execution_count")]
    return started[-1] + 1 if started else None


def _kernel_config():
    """Return the kernel's connection settings: local IPC sockets, named for this run alone.

    IPC sockets need no TCP port and spare the kernel's plain-TCP warning. Their names
    must be unique: by default they are ``kernel-ipc-N`` in the working directory, which
    two cases started at the same moment (``crmnb batch --jobs 2``) would both take.
    Windows has no IPC transport and keeps TCP.
    """
    import tempfile
    import uuid

    from traitlets.config import Config

    if os.name == "nt":
        return Config()
    ip = os.path.join(tempfile.gettempdir(), f"crmnb-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    return Config({"KernelManager": {"transport": "ipc", "ip": ip}})


def skip_unused_slow_imports() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax`` in this process.

    nbformat validates notebooks with jsonschema, whose format checker imports
    ``rfc3987_syntax`` when it is installed (JupyterLab's dependencies install it); that
    package builds a grammar at import, about 1.5 s here, for the ``iri`` formats that
    the notebook schema never uses (python-jsonschema/jsonschema#1392). Marking the module
    absent makes jsonschema skip just those two formats. The runner does this in its own
    process and in the kernel it starts (step 7 imports nbformat through ``crmnb.report``).
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)


def _minutes(m: float) -> str:
    return f"{m:g} minute{'s' if m != 1 else ''}"


_RESET = """\
get_ipython().run_line_magic("reset", "-f")
import matplotlib.pyplot as _plt
_plt.close("all")
del _plt
get_ipython().execution_count = 1
"""
"""Run in the shared kernel before each step after the first: the step starts with an empty
namespace and no open figures, as in a kernel of its own, and counts its cells from 1.
Imported modules stay loaded: that is the time a fresh kernel would spend again."""

_WARM = ("import crmnb.runner; crmnb.runner.skip_unused_slow_imports()\n"
         "import crmnb, pandas, matplotlib.pyplot, seaborn, sklearn.linear_model, sklearn.tree")
"""Imported by the kernel as soon as it starts, while the runner checks the case and loads its
own modules: on two cores the two start-ups overlap. (Notebooks import what they use anyway.)"""


STARTUP_SECONDS = 120
"""How long a new kernel may take to start and import the workbook's libraries."""


class _Kernel:
    """One kernel for all seven steps of a case, started ahead of the first.

    A kernel per notebook costs a process start and the imports of pandas, seaborn and
    scikit-learn seven times (about 3 s each here); sharing one kernel pays them once.
    Each step still starts from an empty namespace (``_RESET``), so a step cannot use a
    variable another step left behind.
    """

    def __init__(self, cwd: Path, deadline: float):
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self.left = lambda: max(1.0, deadline - time.perf_counter())
        self.case_bound = False  # set when a wait was cut short by the case's time limit
        # asynchronous, as nbclient expects: it notices a dead kernel only while its loop is free
        self.km = AsyncKernelManager(kernel_name=KERNEL, config=_kernel_config())
        run_sync(self.km.start_kernel)(cwd=str(cwd))
        self.kc = self._client()
        self.pending = self.kc.execute(_WARM, silent=True, store_history=False)  # queued until the kernel listens
        self.used = False

    def _client(self):
        from jupyter_client.blocking import BlockingKernelClient

        kc = BlockingKernelClient()
        kc.load_connection_info(self.km.get_connection_info())
        kc.start_channels()
        return kc

    def _await(self, msg_id: str, timeout: float, what: str) -> None:
        """Wait for the reply to ``msg_id`` on the current client, then close that client.

        A client is used for one request only: papermill's own client for a step leaves an
        older client of the same kernel without replies.
        """
        from queue import Empty

        deadline = time.perf_counter() + timeout
        try:
            while True:
                try:
                    reply = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.perf_counter()))
                except Empty:
                    raise TimeoutError(f"{what}: no answer from the kernel within {timeout:.0f} s") from None
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
        finally:
            self.kc.stop_channels()
            self.kc = None
        if reply["content"].get("status") != "ok":
            raise RuntimeError(f"{what}: {reply['content'].get('ename')}: {reply['content'].get('evalue')}")

    def reset(self, timeout: float) -> None:
        """Make the kernel ready for the next step: warmed up before the first, emptied before the others.

        The warm-up is start-up, not a cell: it may take up to ``STARTUP_SECONDS`` (within ``timeout``
        only when that is the time the case has left)."""
        if self.kc is not None:  # the warm-up request
            if self.left() < max(timeout, STARTUP_SECONDS):
                self.case_bound = True
            self._await(self.pending, min(max(timeout, STARTUP_SECONDS), self.left()),
                        "the kernel did not finish starting (importing crmnb and its libraries)")
        if self.used:
            self.kc = self._client()
            self._await(self.kc.execute(_RESET, silent=True, store_history=False), timeout,
                        "could not empty the kernel between steps")
        self.used = True

    def close(self) -> None:
        try:
            if self.kc is not None:
                self.kc.stop_channels()
        finally:
            if self.km.has_kernel:
                from jupyter_core.utils import run_sync

                run_sync(self.km.shutdown_kernel)(now=True)


ENGINE = "crmnb"
"""The papermill engine the runner uses: papermill's own, saving the executed notebook less often."""


def _register_engine() -> str:
    """Register (once) and return papermill's nbclient engine with a notebook manager that saves the
    executed notebook when a step starts, when a cell fails, every ``autosave_cell_every`` seconds
    of a long cell, and when the step ends, including on a timeout or a dead kernel; not before and
    after every cell, which papermill does by default. Each save writes the whole notebook with its
    charts: about 500 saves, 3 s, in the demo case."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    if ENGINE in papermill_engines._engines:
        return ENGINE

    class Manager(NotebookExecutionManager):
        _saving = False

        def save(self, **kwargs):
            if self._saving:
                super().save(**kwargs)

        def _saved(self, method, *args, **kwargs):
            self._saving = True
            try:
                return method(*args, **kwargs)
            finally:
                self._saving = False

        def notebook_start(self, **kwargs):
            return self._saved(super().notebook_start, **kwargs)

        def cell_exception(self, cell, cell_index=None, **kwargs):
            return self._saved(super().cell_exception, cell, cell_index, **kwargs)

        def autosave_cell(self):
            return self._saved(super().autosave_cell)

        def notebook_complete(self, **kwargs):
            return self._saved(super().notebook_complete, **kwargs)

    class Engine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, **kwargs):
            nb_man = Manager(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                             autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(ENGINE, Engine)
    return ENGINE


def _execute_steps(case: CaseParams, books: list[Path], src: Path, out_nb: Path, params: dict,
                   say: Callable[[str], None], deadline: float, kernel: _Kernel) -> list[Path]:
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
            raise _step_error(StepTimeout, case.case_id, "timed out before", nb.stem, None,
                              f"it ran past its time limit of {_minutes(case.timeout_minutes)} (timeout_minutes)")
        case_bound = remaining < case.cell_timeout_seconds
        limit = max(1, math.ceil(min(case.cell_timeout_seconds, remaining)))
        t = time.perf_counter()
        say(f"[{case.case_id}] step {i}/{len(books)} {nb.stem} …")
        try:
            kernel.reset(timeout=limit)
            pm.execute_notebook(str(nb), str(target), parameters=params, kernel_name=KERNEL, cwd=str(src),
                                progress_bar=False, log_output=False, report_mode=False,
                                execution_timeout=limit, km=kernel.km, engine_name=_register_engine())
        except PapermillExecutionError as exc:
            raise _step_error(StepFailed, case.case_id, "failed in", nb.stem, exc.cell_index + 1,
                              f"{exc.ename}: {exc.evalue}", target,
                              detail=f" (execution count {exc.exec_count})") from None
        except CellTimeoutError:
            why = (f"the case's time limit of {_minutes(case.timeout_minutes)} (timeout_minutes)" if case_bound
                   else f"the cell time limit of {case.cell_timeout_seconds:g} s (cell_timeout_seconds)")
            raise _step_error(StepTimeout, case.case_id, "timed out in", nb.stem, _last_started_cell(target),
                              f"stopped after {limit} s, {why}", target) from None
        except TimeoutError as exc:  # the kernel's start-up or the reset between steps
            if kernel.case_bound or case_bound:
                raise _step_error(StepTimeout, case.case_id, "timed out before", nb.stem, None,
                                  f"{exc}; it ran past its time limit of {_minutes(case.timeout_minutes)} "
                                  "(timeout_minutes)") from None
            raise _step_error(StepFailed, case.case_id, "failed before", nb.stem, None, str(exc)) from None
        except DeadKernelError:
            raise _step_error(StepFailed, case.case_id, "failed in", nb.stem, _last_started_cell(target),
                              "kernel died (the Python process ended: out of memory, a crash, or code that exits)",
                              target) from None
        except Exception as exc:  # a kernel that never starts, an unreadable notebook…: still name the step
            raise _step_error(StepFailed, case.case_id, "failed in", nb.stem, _last_started_cell(target),
                              f"{type(exc).__name__}: {exc}", target) from None
        done.append(target)
        say(f"[{case.case_id}] step {i}/{len(books)} {nb.stem} done in {time.perf_counter() - t:.1f} s")
    return done


def run_case(case_file: str | Path, output_root: str | Path = "outputs",
             progress: Callable[[str], None] | None = _say, resume: bool = False,
             index: bool = True) -> RunResult:
    """Validate the case file, execute notebooks 01..07 into the case's output folder, then report.

    A failing step raises :class:`StepFailed` naming the step and the cell; its partly
    executed notebook stays in ``outputs/<case_id>/notebooks/``. A cell running past
    ``cell_timeout_seconds``, or the case past ``timeout_minutes``, raises
    :class:`StepTimeout`. With ``resume``, a case whose settings, data and code are
    unchanged since its last successful run is skipped. Each run writes
    ``outputs/<case_id>/run.json``; ``index`` also refreshes ``outputs/index.html``.
    """
    from . import batch

    say = progress or (lambda _m: None)
    t0 = time.perf_counter()
    file = resolve(case_file)
    case = load_case(file)  # fails here, before any notebook, on a bad case file
    settings = case_settings(file)  # merged with the defaults: what every notebook records
    root = resolve(output_root)
    ws = Workspace(root, case.case_id)
    src = notebooks_dir(file)
    books = step_notebooks(src)
    prints = batch.fingerprint(case, settings, books)
    if resume:
        since, why = batch.resume_check(ws.folder, prints)
        if since is not None:
            last = batch.read_record(ws.folder) or {}
            return RunResult(case, root / last.get("report", f"{case.case_id}/report.html"),
                             root / last.get("workbook", f"{case.case_id}/tables.xlsx"),
                             step_notebooks(ws.folder / "notebooks"), 0.0, "skipped", since)
        say(f"[{case.case_id}] running: {why}")
    out_nb = ws.folder / "notebooks"
    out_nb.mkdir(parents=True, exist_ok=True)
    record = batch.new_record(case, file, prints, run_id=os.environ.get(RUN_ID_ENV))
    # the case's settings travel with the run, so each executed notebook records what it ran with
    params = dict(zip(NOTEBOOK_PARAMETERS, (str(file), str(root), settings)))
    prefer_this_python()
    try:
        try:
            # the kernel imports its libraries while this process loads papermill and the report's modules
            kernel = _Kernel(src, t0 + case.timeout_minutes * 60)
        except Exception as exc:
            raise _step_error(StepFailed, case.case_id, "failed before", books[0].stem if books else "01", None,
                              f"the kernel '{KERNEL}' did not start: {type(exc).__name__}: {exc}") from None
        skip_unused_slow_imports()
        import papermill  # noqa: F401

        from .report import build_report, build_workbook

        try:
            done = _execute_steps(case, books, src, out_nb, params, say, t0 + case.timeout_minutes * 60, kernel)
        finally:
            kernel.close()
        try:
            report = build_report(case, done, ws)
            workbook = build_workbook(case, ws)
        except Exception as exc:
            raise _step_error(StepFailed, case.case_id, "failed", "report", None,
                              f"{type(exc).__name__}: {exc}") from exc
    except BaseException as exc:
        status = "timeout" if isinstance(exc, StepTimeout) else "failed"
        error = str(exc) if isinstance(exc, StepFailed) else (
            "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}")
        step = getattr(exc, "step", None)
        batch.finish_record(ws.folder, record, status, time.perf_counter() - t0, error=error, step=step,
                            cell=getattr(exc, "cell", None), where=getattr(exc, "where", None),
                            reason=getattr(exc, "reason", None),
                            notebook=f"notebooks/{step}.ipynb" if step and step != "report" else None)
        if index:
            batch.write_index(root)
        raise
    secs = time.perf_counter() - t0
    batch.finish_record(ws.folder, record, "ok", secs, report=report.relative_to(root).as_posix(),
                        workbook=workbook.relative_to(root).as_posix())
    if index:
        batch.write_index(root)
    return RunResult(case, report, workbook, done, secs)
