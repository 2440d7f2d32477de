"""The one kernel a case's seven steps run in, and papermill's engine that saves less often."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

KERNEL = "python3"
"""The kernel every step runs in: the workbook's own Python (see ``prefer_this_python``)."""


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
    process and in the kernel it starts (step 7 imports nbformat through ``crmnb.present.report``).
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)


_RESET = """\
get_ipython().run_line_magic("reset", "-f")
import matplotlib.pyplot as _plt
_plt.close("all")
del _plt
import crmnb.run.kernel as _k
_k.give_back_memory()
del _k
get_ipython().execution_count = 1
"""
"""Run in the shared kernel before each step after the first: the step starts with an empty
namespace and no open figures, as in a kernel of its own, and counts its cells from 1.
Imported modules stay loaded: that is the time a fresh kernel would spend again."""


def give_back_memory() -> None:
    """Return to the system the memory the last step freed: Arrow's pool and the C heap keep it otherwise.

    A large case's step 2 or 4 leaves hundreds of MB freed but held by the allocators, which every later
    step of the shared kernel would carry in its peak.
    """
    import ctypes
    import gc

    gc.collect()
    for engine in ("crmnb.intake.clean_engine", "crmnb.analysis.metric_engine"):  # their DuckDB databases
        if engine in sys.modules:
            sys.modules[engine].release()
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # another C library (musl): nothing to trim
            pass


_WARM = (
    "import crmnb.run.kernel; crmnb.run.kernel.skip_unused_slow_imports()\n"
    "import crmnb, pandas, matplotlib.pyplot, seaborn, sklearn.linear_model, sklearn.tree\n"
    "import gc; gc.freeze()"
)
"""Imported by the kernel as soon as it starts, while the runner checks the case and loads its
own modules: on two cores the two start-ups overlap. (Notebooks import what they use anyway.) The objects
of those imports then go to the collector's permanent generation: every full collection, each reset's
and those the steps' own allocations set off, would otherwise walk the million objects of the loaded
libraries again, about 0.15 s each."""


KERNEL_ARGUMENTS = ("--HistoryManager.enabled=False",)
"""IPython keeps no history: no ``history.sqlite`` holds a step's parameters (database URLs among them)
or its cells."""

KERNEL_ENV = {"MIMALLOC_PURGE_DELAY": "0"}
"""Set for the kernel unless the environment sets it. Arrow's allocator (mimalloc) otherwise keeps the pages
a step has freed for later use: at 100 times the demo about 0.2 GB more at the deep dive's peak, and carried
from step to step. The pages go back as they are freed; the steps take no longer for it."""

STARTUP_SECONDS = 120
"""How long a new kernel may take to start and import the workbook's libraries."""


class Kernel:
    """One kernel for all seven steps of a case, started ahead of the first.

    A kernel per notebook costs a process start and the imports of pandas, seaborn and
    scikit-learn seven times (about 3 s each here); sharing one kernel pays them once.
    Each step still starts from an empty namespace (``_RESET``), so a step cannot use a
    variable another step left behind.
    """

    def __init__(self, cwd: Path, deadline: float, env: dict[str, str] | None = None):
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self.left = lambda: max(1.0, deadline - time.perf_counter())
        self.case_bound = False  # set when a wait was cut short by the case's time limit
        # asynchronous, as nbclient expects: it notices a dead kernel only while its loop is free
        self.km = AsyncKernelManager(kernel_name=KERNEL, config=_kernel_config())
        # ``env``: what only this case's kernel is given (a database URL's secrets, unrecorded)
        extra = {"env": {**KERNEL_ENV, **os.environ, **(env or {})}}
        run_sync(self.km.start_kernel)(cwd=str(cwd), extra_arguments=list(KERNEL_ARGUMENTS), **extra)
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
            self._await(
                self.pending,
                min(max(timeout, STARTUP_SECONDS), self.left()),
                "the kernel did not finish starting (importing crmnb and its libraries)",
            )
        if self.used:
            self.kc = self._client()
            self._await(
                self.kc.execute(_RESET, silent=True, store_history=False),
                timeout,
                "could not empty the kernel between steps",
            )
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


def _manager_class():
    """Return papermill's notebook manager, changed to save only when a step starts, when a cell fails,
    every ``autosave_cell_every`` seconds of a long cell, and when the step ends."""
    from papermill.engines import NotebookExecutionManager

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

    return Manager


def _engine_class(manager):
    """Return papermill's nbclient engine executing with ``manager``; the step ends saved, even on a
    timeout or a dead kernel."""
    from papermill.engines import NBClientEngine

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, start_timeout=60, **kwargs):
            """Run the step as papermill's engine does, with a client that closes its channels at the end."""
            from papermill.engines import logger, merge_kwargs, remove_args

            timeout = kwargs.pop("execution_timeout", None) or kwargs.get("timeout")
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            options = merge_kwargs(
                kwargs,
                timeout=timeout,
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
            )
            return _client_class()(nb_man, **options).execute()

        @classmethod
        def execute_notebook(
            cls,
            nb,
            kernel_name,
            output_path=None,
            progress_bar=True,
            log_output=False,
            autosave_cell_every=30,
            **kwargs,
        ):
            nb_man = manager(
                nb,
                output_path=output_path,
                progress_bar=progress_bar,
                log_output=log_output,
                autosave_cell_every=autosave_cell_every,
            )
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    return Engine


def _client_class():
    """Return papermill's notebook client, closing its channels when a step ends: nbclient leaves the client
    of a kernel it does not own open (80 descriptors a case), until cases run in one process run out."""
    from papermill.clientwrap import PapermillNotebookClient

    class Client(PapermillNotebookClient):
        def execute(self, **kwargs):
            try:
                return super().execute(**kwargs)
            finally:
                if self.kc is not None:
                    self.kc.stop_channels()
                    self.kc = None

    return Client


def register_engine() -> str:
    """Register (once) and return papermill's nbclient engine with a notebook manager that saves the
    executed notebook when a step starts, when a cell fails, every ``autosave_cell_every`` seconds
    of a long cell, and when the step ends, including on a timeout or a dead kernel; not before and
    after every cell, which papermill does by default. Each save writes the whole notebook with its
    charts: about 500 saves, 3 s, in the demo case."""
    from papermill.engines import papermill_engines

    if ENGINE not in papermill_engines._engines:
        papermill_engines.register(ENGINE, _engine_class(_manager_class()))
    return ENGINE
