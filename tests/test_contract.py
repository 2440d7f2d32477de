"""The parameter contract: case files validate; notebooks take exactly what the runner passes."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from crmnb.params import load_case
from crmnb.paths import resolve
from crmnb.runner import KERNEL, NOTEBOOK_PARAMETERS, step_notebooks

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(p for p in (ROOT / "parameters").glob("*.yaml") if not p.name.startswith("_"))
NOTEBOOKS = step_notebooks(ROOT / "notebooks")
EXPECTED = [
    "01_goal_and_scope.ipynb",
    "02_data_collection.ipynb",
    "03_metrics.ipynb",
    "04_cleaning_and_validation.ipynb",
    "05_case_deep_dive.ipynb",
    "06_diagnosis_and_plan.ipynb",
    "07_report_and_iteration.ipynb",
]


def test_two_worked_cases_exist():
    ids = {load_case(p).case_id for p in CASES}
    assert {"lead_conversion_uplift", "repeat_purchase_optimisation"} <= ids


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_case_file_validates(path: Path):
    case = load_case(path)
    assert case.case_id == path.stem, "a case file is named after its case_id"
    assert case.goal.target != case.goal.baseline


def test_notebooks_are_the_seven_steps_in_order():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


def _parameters_cell(nb) -> nbformat.NotebookNode:
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    return cells[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_holds_what_the_runner_passes(path: Path):
    nb = nbformat.read(path, as_version=4)
    cell = _parameters_cell(nb)
    tree = ast.parse(cell.source)
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert names == set(NOTEBOOK_PARAMETERS)
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}
    # the defaults point at the demo case, so the notebook runs as it is in JupyterLab
    load_case(resolve(values["case_file"], ROOT / "notebooks"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_thin_and_stored_clean(path: Path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == KERNEL
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert any("analyst-only" in c.metadata.get("tags", []) and "What you fill in" in c.source
               for c in nb.cells if c.cell_type == "markdown"), "the header tells the analyst what to fill in"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None, "notebooks are stored without outputs"
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef)), "no def or class in a notebook"
