"""The benchmark's floor runs a notebook's code cells as the notebook would, and stops on an error."""

import importlib.util
import json
from pathlib import Path

import pytest

FLOOR = Path(__file__).resolve().parent.parent / "bench" / "floor.py"


@pytest.fixture(scope="module")
def floor():
    spec = importlib.util.spec_from_file_location("bench_floor", FLOOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook(path: Path, *cells: tuple[str, list[str]]) -> Path:
    nb = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# a step"}]
        + [
            {"cell_type": "code", "metadata": {"tags": tags}, "source": src, "outputs": [], "execution_count": None}
            for src, tags in cells
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def test_floor_runs_code_cells_in_order_and_displays_last_expressions(floor, tmp_path):
    shown = []

    class Shown:
        def _repr_html_(self):
            shown.append("html")
            return "<p>x</p>"

    nb = notebook(
        tmp_path / "01_x.ipynb",
        ('case_file = "default.yaml"\noutput_root = "outputs"', ["parameters"]),
        ("%matplotlib inline\nseen = [case_file, output_root]", []),
        ("seen.append(len(seen))\nmake()", []),
        ("display(make(), make())", []),
    )
    parameters = {"case_file": "c.yaml", "output_root": "/out", "make": Shown}
    namespace = floor.run_notebook(nb, parameters)
    assert namespace["seen"] == ["c.yaml", "/out", 2]
    assert shown == ["html", "html", "html"]


def test_floor_names_the_failing_cell(floor, tmp_path):
    nb = notebook(tmp_path / "02_y.ipynb", ("x = 1", []), ("y = x / 0", []), ("z = 2", []))
    with pytest.raises(RuntimeError, match=r"02_y.ipynb, cell 3: ZeroDivisionError"):
        floor.run_notebook(nb, {})
