"""The parameter contract: case files validate; notebooks take exactly what the runner passes."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from crmnb.params import load_case
from crmnb.paths import resolve
from crmnb.run.steps import KERNEL, NOTEBOOK_PARAMETERS, step_notebooks

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted(
    p
    for p in (ROOT / "parameters").glob("*.yaml")
    if not p.name.startswith("_") and not p.name.endswith(".actions.yaml")
)
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
    assert any(
        "analyst-only" in c.metadata.get("tags", []) and "What you fill in" in c.source
        for c in nb.cells
        if c.cell_type == "markdown"
    ), "the header tells the analyst what to fill in"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None, "notebooks are stored without outputs"
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef)), "no def or class in a notebook"


# --------------------------------------------------------------------------- outputs never reach git
def test_git_strips_notebook_outputs_through_the_filter():
    attributes = (ROOT / ".gitattributes").read_text(encoding="utf-8").splitlines()
    assert "*.ipynb filter=crmnb-strip" in attributes
    install = (ROOT / "Makefile").read_text(encoding="utf-8").split("\ninstall:", 1)[1].split("\n\n", 1)[0]
    assert "git config filter.crmnb-strip.clean" in install and "crmnb/run/strip.py" in install


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_strip_filter_leaves_a_stored_notebook_as_it_is(path: Path):
    from crmnb.run.strip import strip_text

    text = path.read_text(encoding="utf-8")
    assert strip_text(text) == text, "run `python -m crmnb.run.strip notebooks/*.ipynb` (or `make install` once)"


def _executed() -> str:
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    nb.metadata["papermill"] = {"parameters": {"case_file": "x.yaml"}}
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(
        at + 1, nbformat.v4.new_code_cell('case_file = "x.yaml"', metadata={"tags": ["injected-parameters"]})
    )
    for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = n + 1
        cell.outputs = [nbformat.v4.new_output("stream", text="hello\n")]
        cell.metadata["papermill"] = {"status": "completed"}
        cell.metadata["execution"] = {"iopub.execute_input": "2025-01-01T00:00:00"}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.9"}
    return nbformat.writes(nb)


def test_strip_filter_cleans_an_executed_notebook(tmp_path: Path):
    from crmnb.run.strip import strip_text

    clean = strip_text(_executed())
    assert clean == NOTEBOOKS[0].read_text(encoding="utf-8"), "stripping gives back the stored notebook exactly"
    assert strip_text("<<<<<<< HEAD\n{") == "<<<<<<< HEAD\n{", "a file that is not JSON passes unchanged"


def test_git_add_stores_a_run_notebook_without_outputs(tmp_path: Path):
    import shutil
    import subprocess
    import sys

    if shutil.which("git") is None:
        pytest.skip("git not installed")

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True, encoding="utf-8"
        ).stdout

    git("init", "-q")
    (tmp_path / "crmnb" / "run").mkdir(parents=True)
    shutil.copy(ROOT / "crmnb" / "run" / "strip.py", tmp_path / "crmnb" / "run" / "strip.py")
    shutil.copy(ROOT / ".gitattributes", tmp_path / ".gitattributes")
    git("config", "filter.crmnb-strip.clean", f'"{sys.executable}" crmnb/run/strip.py')
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / NOTEBOOKS[0].name).write_text(_executed(), encoding="utf-8")
    git("add", "notebooks")
    stored = git("show", f":notebooks/{NOTEBOOKS[0].name}")
    assert stored == NOTEBOOKS[0].read_text(encoding="utf-8")
