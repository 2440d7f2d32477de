"""What a case run writes into ``outputs/<case_id>/``, declared once, in the order it is written.

The runner builds each output in turn and records it in ``run.json``; the index page links each
one a case has; ``crmnb email`` sends the first as the message's body and attaches the others;
``crmnb run`` prints where each is. A new format (a PDF of the report, say) is one builder and
one line in :data:`OUTPUTS`. An output a case asks for (the PDF: ``pdf: true``) is one line in
:data:`ON_REQUEST`: built after the others when the case asks, attached to the e-mail when present.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only: listing the outputs (the command line's help) loads no pandas
    from crmnb.handoffs import Workspace
    from crmnb.params.model import CaseParams

Builder = Callable[["CaseParams", list[Path], "Workspace"], Path]
"""Write one output from the case, its executed step notebooks and its workspace; return its path."""


@dataclass(frozen=True)
class Output:
    """One file a case run writes: its name in the case folder, how it is built and what it is for."""

    name: str
    """The file's name in ``outputs/<case_id>/``."""
    key: str
    """Its short name: the attribute of ``RunResult`` and the key of ``run.json`` that give its path."""
    build: Builder
    purpose: str
    """What it is for, in one line (the command line's help)."""
    label: str
    """The message key of its name as readers see it (the index page's link)."""
    media_type: str
    """Its media type (an e-mail's body or attachment)."""
    wanted: Callable[[CaseParams], bool] = lambda case: True
    """Whether a case asks for it (every case asks for the outputs of :data:`OUTPUTS`)."""


def _report(case: CaseParams, notebooks: list[Path], ws: Workspace) -> Path:
    """Write report.html (imported on use: the report's modules load nbconvert)."""
    from crmnb.present.report import build_report

    return build_report(case, notebooks, ws)


def _workbook(case: CaseParams, notebooks: list[Path], ws: Workspace) -> Path:
    """Write tables.xlsx from the hand-offs (the notebooks are not needed)."""
    from crmnb.present.workbook import build_workbook

    return build_workbook(case, ws)


def _pdf(case: CaseParams, notebooks: list[Path], ws: Workspace) -> Path:
    """Write report.pdf from the report just written (Chromium prints it)."""
    from crmnb.present.pdf import build_pdf

    return build_pdf(ws.folder / "report.html")


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

OUTPUTS: dict[str, Output] = {
    o.name: o
    for o in (
        Output(
            "report.html",
            "report",
            _report,
            "the stakeholder report: summary, charts and tables of the seven steps, one self-contained page",
            "run.output.report",
            "text/html",
        ),
        Output(
            "tables.xlsx",
            "workbook",
            _workbook,
            "the workbook of the template tables, for analysts to filter and reuse",
            "run.output.tables",
            XLSX,
        ),
    )
}
"""Every output of a case run by file name, in the order they are written; the first is the report."""

ON_REQUEST: dict[str, Output] = {
    o.name: o
    for o in (
        Output(
            "report.pdf",
            "pdf",
            _pdf,
            "the report printed to A4 pages, to print or archive (when the case file says pdf: true)",
            "mail.file.report.pdf",
            "application/pdf",
            wanted=lambda case: bool(getattr(case, "pdf", False)),
        ),
    )
}
"""The outputs a case writes only when it asks for them, after those of :data:`OUTPUTS`.

They stay out of :data:`OUTPUTS`, which every case has (a resumed run checks all of those are there).
"""


def every_output() -> dict[str, Output]:
    """Return every output a run may write by file name: the registry's, then those written on request."""
    return {**OUTPUTS, **{name: o for name, o in ON_REQUEST.items() if name not in OUTPUTS}}


def preload() -> None:
    """Import the builders' modules now: the runner does so while the kernel starts, so the outputs wait for none.

    An output left out here is still built; its modules are imported when it is.
    """
    import crmnb.present.report
    import crmnb.present.workbook  # noqa: F401


def by_key(key: str) -> Output:
    """Return the output whose short name is ``key`` ('report', 'workbook')."""
    for output in OUTPUTS.values():
        if output.key == key:
            return output
    raise KeyError(f"no output {key!r} (outputs: {', '.join(o.key for o in OUTPUTS.values())})")


def build_outputs(case: CaseParams, notebooks: Iterable[Path], ws: Workspace) -> dict[str, Path]:
    """Write every output in order, then those the case asks for; return the paths written by file name."""
    books = list(notebooks)
    built = {name: output.build(case, books, ws) for name, output in OUTPUTS.items()}
    for name, output in ON_REQUEST.items():
        if output.wanted(case):
            built[name] = output.build(case, books, ws)
    return built


def media_type(path: Path) -> str:
    """Return a file's media type: the registry's for an output, else guessed from its name."""
    output = every_output().get(Path(path).name)
    if output is not None:
        return output.media_type
    return mimetypes.guess_type(str(path))[0] or "application/octet-stream"
