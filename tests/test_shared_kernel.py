"""The seven steps share one kernel: each step starts from an empty namespace, and the libraries the kernel
imported at start are out of the garbage collector's way (its full collections, one per reset and many in a
large case's cells, walk only what the steps made)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from case_files import toy_workbook
from nbformat.v4 import new_code_cell

from crmnb.errors import StepFailed
from crmnb.run.steps import run_case

FIRST = """\
import gc, json, pathlib
import crmnb.intake.clean_engine as ce
ce.connect().execute("select 1")  # cleaning's connection, open when the step ends
ce.first_connection = ce.connect()
left_behind = 1
pathlib.Path(r"{seen}", "first.json").write_text(
    json.dumps({"frozen": gc.get_freeze_count(), "cells": get_ipython().execution_count})
)
"""

SECOND = """\
import gc, json, os, pathlib
import crmnb.intake.clean_engine as ce
try:
    ce.first_connection.execute("select 1")
    closed = False
except Exception as e:
    closed = "closed" in str(e)
pathlib.Path(r"{seen}", "second.json").write_text(
    json.dumps({"frozen": gc.get_freeze_count(), "sees_first": "left_behind" in globals(),
                "cells": get_ipython().execution_count, "cleaning_connection_closed": closed,
                "opened_again": ce.connect().execute("select 2").fetchone()[0] == 2,
                "purge_delay": os.environ.get("MIMALLOC_PURGE_DELAY")})
)
"""


def test_each_step_starts_empty_in_a_kernel_whose_libraries_are_frozen_and_its_memory_given_back(tmp_path: Path):
    seen = tmp_path / "seen"
    seen.mkdir()
    root = toy_workbook(tmp_path, FIRST.replace("{seen}", str(seen)), {"two_steps": {}})
    nb = nbformat.read(root / "notebooks" / "01_toy.ipynb", as_version=4)
    nb.cells[-1] = new_code_cell(SECOND.replace("{seen}", str(seen)))
    nbformat.write(nb, root / "notebooks" / "02_toy.ipynb")
    out = root / "outputs"
    out.mkdir()
    with pytest.raises(StepFailed, match="writing the report"):  # two steps run; there is no step 7
        run_case(root / "parameters" / "two_steps.yaml", out, progress=None, index=False)
    first = json.loads((seen / "first.json").read_text())
    second = json.loads((seen / "second.json").read_text())
    assert not second["sees_first"]
    assert second["cells"] == first["cells"]  # its cells counted from 1, as in a kernel of its own
    # pandas, matplotlib, seaborn and scikit-learn alone are several hundred thousand objects
    assert first["frozen"] > 100_000 and second["frozen"] > 100_000
    # what the last step's DuckDB connection held went back to the system; the next query opens another
    assert second["cleaning_connection_closed"] and second["opened_again"]
    # Arrow's allocator gives freed pages back at once rather than keeping them for the next step
    assert second["purge_delay"] == "0"


def test_outputs_modules_load_before_the_steps_only_for_small_exports(tmp_path: Path):
    """The report's and workbook's modules load while the kernel starts for a case of small exports; from a
    gigabyte of exports they wait for the kernel to close, so that they are not held beside it at the case's
    peak. The size is that of the files the case reads, whichever table they hold."""
    import shutil

    import yaml

    from crmnb.params.files import load_case
    from crmnb.run import steps

    root = Path(__file__).resolve().parent.parent
    data = tmp_path / "data"
    data.mkdir()
    for f in (root / "parameters").glob("_*"):
        (shutil.copytree if f.is_dir() else shutil.copy)(f, tmp_path / f.name)
    settings = yaml.safe_load((root / "parameters" / "lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    settings["data"] = {"dir": str(data)}
    case_file = tmp_path / "case.yaml"
    case_file.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    (data / "leads.csv").write_bytes(b"lead_id\nL1\n")
    case = load_case(case_file)
    assert steps.preloads(case)
    with open(data / "activities.csv", "wb") as fh:  # sparse: a gigabyte on paper, nothing on disk
        fh.truncate(steps.PRELOAD_BELOW - 100)
    assert steps.preloads(case)
    with open(data / "tickets.csv", "wb") as fh:
        fh.truncate(100)
    assert not steps.preloads(case)
    (data / "not_read.csv").write_bytes(b"x")  # a file no table is read from is not counted
    (data / "tickets.csv").unlink()
    assert steps.preloads(case)
