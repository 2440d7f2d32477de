"""crmnb's data-steps seconds from its own run: the step timings it prints and the executed notebook's
per-cell timing, so that the figure compared with the reference is the product's, not a separate script's.

What is summed (``data_steps``):

- steps 2, 3 and 4 (intake, metrics, cleaning) as a whole, from the lines
  ``step N/7 NAME done in X s`` that ``crmnb run`` prints;
- in step 5 (the executed ``notebooks/05_*.ipynb`` of the case's outputs), the code cells that call
  the funnel (``funnel.funnel(``) and the customer value, tiers and RFM (``segments.<any>(``: value,
  tiers, tier summary, RFM scores, segment summary), each cell from its start to its end as
  papermill records it (``metadata.papermill.start_time``/``end_time``; nbclient's
  ``metadata.execution`` when papermill's is missing).

Not summed, but reported: step 5's cell that opens the cleaned tables (``ws.tables(``), which the
funnel and RFM read; the reference has its tables in memory by then, crmnb reads them from the
hand-offs, so the reader can see what that costs beside the sum.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from bench.measuring import step_seconds_by_number

DATA_STEPS = (2, 3, 4)
STEP5_CELLS = {
    "funnel": re.compile(r"\bfunnel\.funnel\("),
    "rfm": re.compile(r"\bsegments\.\w+\("),
}
"""Step 5's cells counted in the data steps, found by the functions they call (never by position)."""
STEP5_SHOWN = {"open tables (not counted)": re.compile(r"\bws\.tables\(")}


def _instant(text: object) -> datetime | None:
    """Return an ISO time stamp as a datetime, or None when it is missing or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def cell_seconds(cell: dict) -> float | None:
    """Return a cell's execution seconds from papermill's metadata, else nbclient's; None when absent."""
    meta = cell.get("metadata", {})
    pm = meta.get("papermill", {})
    start, end = _instant(pm.get("start_time")), _instant(pm.get("end_time"))
    if start and end:
        return (end - start).total_seconds()
    if isinstance(pm.get("duration"), int | float):
        return float(pm["duration"])
    ex = meta.get("execution", {})
    start, end = _instant(ex.get("iopub.execute_input")), _instant(ex.get("shell.execute_reply"))
    if start and end:
        return (end - start).total_seconds()
    return None


def source(cell: dict) -> str:
    """Return a cell's source as one string (nbformat stores it as a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def timed_cells(notebook: Path, groups: dict[str, re.Pattern]) -> dict[str, dict]:
    """Return per group the 1-based numbers of the code cells whose source matches, and their seconds summed.

    A group's seconds are None when no cell matches or a matching cell carries no timing.
    """
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    found = {name: {"cells": [], "seconds": 0.0} for name in groups}
    for i, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        for name, pattern in groups.items():
            if pattern.search(source(cell)):
                seconds = cell_seconds(cell)
                entry = found[name]
                entry["cells"].append(i)
                entry["seconds"] = None if seconds is None or entry["seconds"] is None else entry["seconds"] + seconds
    for entry in found.values():
        if not entry["cells"]:
            entry["seconds"] = None
        elif entry["seconds"] is not None:
            entry["seconds"] = round(entry["seconds"], 3)
    return found


def data_steps(stderr: str | Path, output: str | Path) -> dict:
    """Return crmnb's data-steps seconds of one run (see the module's docstring), with its parts.

    ``stderr`` is the run's printout, ``output`` its case folder (``outputs/<case_id>``). ``seconds``
    is None, and ``missing`` says why, when a step or a group of cells was not found.
    """
    steps = step_seconds_by_number(stderr)
    parts: dict[str, float | None] = {}
    missing = []
    for n in DATA_STEPS:
        if n in steps:
            parts[steps[n][0]] = steps[n][1]
        else:
            missing.append(f"step {n} did not finish")
    books = sorted((Path(output) / "notebooks").glob("05_*.ipynb"))
    cells: dict[str, dict] = {}
    if not books:
        missing.append("no executed notebook 05_*.ipynb")
    else:
        cells = timed_cells(books[0], {**STEP5_CELLS, **STEP5_SHOWN})
        for name in STEP5_CELLS:
            parts[f"05 {name} cells"] = cells[name]["seconds"]
            if cells[name]["seconds"] is None:
                missing.append(f"05: no timed cell calling {STEP5_CELLS[name].pattern}")
    total = None if missing else round(sum(v for v in parts.values() if v is not None), 2)
    return {"seconds": total, "parts": parts, "cells": cells, "missing": missing}
