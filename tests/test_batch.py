"""crmnb batch: many cases a few at a time, a summary, an index page, resume, time limits."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from contextlib import redirect_stderr, redirect_stdout
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import nbformat
import pytest
import yaml
from case_files import case_copy, toy_workbook
from nbformat.v4 import new_notebook

from crmnb.cli import main
from crmnb.demo.generator import generate
from crmnb.errors import StepFailed
from crmnb.params import case_settings, load_case
from crmnb.present.outputs import OUTPUTS
from crmnb.run import batch as run_batch
from crmnb.run import index as run_index
from crmnb.run import records as run_records
from crmnb.run.steps import StepTimeout, run_case, step_notebooks

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def _batch(*args) -> SimpleNamespace:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main(["batch", *map(str, args)])
    rows = {}
    for line in out.getvalue().splitlines():
        parts = line.split(None, 4)
        if len(parts) >= 3 and parts[2] in run_records.STATUSES:
            rows[parts[0]] = SimpleNamespace(department=parts[1], status=parts[2], text=line)
    return SimpleNamespace(rc=rc, out=out.getvalue(), err=err.getvalue(), rows=rows)


@pytest.fixture(scope="module")
def workbook(tmp_path_factory) -> Path:
    """Two demo cases (each with its own copy of the data), a case whose data lacks orders.csv, the defaults."""
    tmp = tmp_path_factory.mktemp("batch")
    demo = tmp / "data" / "demo"
    generate(demo, scale=0.2)
    demo2 = shutil.copytree(demo, tmp / "data" / "demo2")
    broken = shutil.copytree(demo, tmp / "data" / "broken", ignore=shutil.ignore_patterns("orders.csv"))
    params = tmp / "parameters"
    params.mkdir()
    shutil.copy(ROOT / "parameters" / "_defaults.yaml", params)
    shutil.copytree(ROOT / "parameters" / "_departments", params / "_departments")
    with (params / "_departments" / "销售一部.yaml").open("a", encoding="utf-8") as f:
        f.write("cell_timeout_seconds: 300   # a department default the notebooks must record\n")
    case_copy(params, "lead_conversion_uplift", demo)
    case_copy(params, "repeat_purchase_optimisation", demo2)
    case_copy(params, "lead_conversion_uplift", broken, case_id="broken_case", title="Broken <case> & co")
    # a case run before, not part of this batch: the index lists it too
    old = tmp / "outputs" / "old_case"
    old.mkdir(parents=True)
    (old / "report.html").write_text("<html></html>", encoding="utf-8")
    run_records.write_record(
        old,
        {
            "case_id": "old_case",
            "title": "An earlier case",
            "department": "市场部",
            "goal": {"metric": "csat", "unit": "score", "baseline": 4.1, "target": 4.5},
            "status": "ok",
            "seconds": 12.0,
            "finished": "2025-01-02T03:04:05+00:00",
            "report": "old_case/report.html",
        },
    )
    return tmp


@pytest.fixture(scope="module")
def first(workbook) -> SimpleNamespace:
    t = time.perf_counter()
    res = _batch(workbook / "parameters", "--jobs", 2, "--output-root", workbook / "outputs")
    res.seconds = time.perf_counter() - t
    res.root = workbook / "outputs"
    return res


def test_one_failing_case_does_not_stop_the_others(first):
    assert first.rc == 1, first.out + first.err
    assert set(first.rows) == {"lead_conversion_uplift", "repeat_purchase_optimisation", "broken_case"}
    assert first.rows["lead_conversion_uplift"].status == "ok"
    assert first.rows["repeat_purchase_optimisation"].status == "ok"
    assert first.rows["repeat_purchase_optimisation"].department == "客户服务部"
    broken = first.rows["broken_case"]
    assert broken.status == "failed"
    assert "step 02_data_collection, cell" in broken.text and "orders" in broken.text
    for case_id in ("lead_conversion_uplift", "repeat_purchase_optimisation"):
        assert (first.root / case_id / "report.html").is_file() and (first.root / case_id / "tables.xlsx").is_file()
    assert "3 cases: 2 ok, 1 failed, 0 timed out, 0 skipped" in first.out
    assert f"index: {first.root / 'index.html'}" in first.out


def test_progress_shows_each_cases_steps_and_the_counts(first):
    assert "broken_case: step 2/7 02_data_collection" in first.err
    assert "repeat_purchase_optimisation: step 7/7 07_report_and_iteration" in first.err
    assert "[3/3 done, 1 failed]" in first.err


def test_each_case_keeps_its_log_and_run_record(first):
    for case_id, status in (
        ("lead_conversion_uplift", "ok"),
        ("repeat_purchase_optimisation", "ok"),
        ("broken_case", "failed"),
    ):
        folder = first.root / case_id
        log = (folder / "run.log").read_text(encoding="utf-8")
        assert f"[{case_id}] step 1/7 01_goal_and_scope" in log
        rec = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        assert rec["status"] == status and rec["seconds"] > 0 and rec["finished"]
        assert rec["fingerprint"]["data"]["leads"] != "missing"
        if status == "ok":  # every output of the registry, where it was written
            assert rec["outputs"] == {name: f"{case_id}/{name}" for name in OUTPUTS}
    rec = json.loads((first.root / "broken_case" / "run.json").read_text(encoding="utf-8"))
    assert rec["fingerprint"]["data"]["orders"] == "missing"
    assert rec["where"].startswith("step 02_data_collection, cell ") and "orders" in rec["reason"]
    assert "crmnb: error: case 'broken_case' failed in step 02_data_collection" in (
        first.root / "broken_case" / "run.log"
    ).read_text(encoding="utf-8")
    # the partly executed notebook is kept, its failing cell marked by papermill
    nb = nbformat.read(first.root / "broken_case" / rec["notebook"], as_version=4)
    assert any(c.metadata.get("papermill", {}).get("exception") for c in nb.cells)
    assert not (first.root / "broken_case" / "notebooks" / "03_metrics.ipynb").exists()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.hrefs += [v for k, v in attrs if k in ("href", "src") and v]


def test_index_lists_every_case_with_working_links(first):
    page = (first.root / "index.html").read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(page)
    assert "script" not in parser.tags and "link" not in parser.tags, "self-contained, no scripts"
    for case_id in ("lead_conversion_uplift", "repeat_purchase_optimisation", "broken_case", "old_case"):
        assert f"<small>{case_id}</small>" in page
    assert "Broken &lt;case&gt; &amp; co" in page and "Broken <case>" not in page, "text is escaped"
    assert "市场部" in page and "客户服务部" in page
    assert "Lead conversion rate: 15.0% → 20.0%" in page
    from crmnb.analysis.verdict import VERDICTS

    assert sum(page.count(f'class="b {v}"') for v in VERDICTS) == 2, "a verdict for each finished demo case"
    assert "step 02_data_collection, cell" in page
    assert parser.hrefs, "links to the reports"
    for href in parser.hrefs:
        assert not href.startswith(("/", "http:", "https:", "file:")), href
        assert (first.root / unquote(href)).is_file(), href
    for case_id in ("lead_conversion_uplift", "repeat_purchase_optimisation"):
        assert f"{case_id}/report.html" in parser.hrefs and f"{case_id}/tables.xlsx" in parser.hrefs
    assert "broken_case/notebooks/02_data_collection.ipynb" in parser.hrefs


def test_merged_defaults_are_in_the_executed_notebooks_parameters(first, workbook):
    case_file = workbook / "parameters" / "lead_conversion_uplift.yaml"
    for nb_path in step_notebooks(first.root / "lead_conversion_uplift" / "notebooks"):
        passed = nbformat.read(nb_path, as_version=4).metadata["papermill"]["parameters"]["case"]
        assert passed == case_settings(case_file)
        assert passed["thresholds"]["tiers"] == {
            "high_spend": 300000,
            "high_repeat": 0.6,
            "potential_spend": 100000,
            "potential_repeat": 0.3,
        }  # _defaults
        assert passed["cell_timeout_seconds"] == 300  # _departments/销售一部.yaml
        assert passed["thresholds"]["conversion_window_days"] == 90  # the case file
    assert "tiers" not in yaml.safe_load(case_file.read_text(encoding="utf-8"))["thresholds"]


def test_resume_skips_unchanged_cases_and_reruns_changed_ones(first, workbook):
    root = first.root
    before = {
        c: json.loads((root / c / "run.json").read_text("utf-8"))
        for c in ("lead_conversion_uplift", "repeat_purchase_optimisation")
    }
    with (workbook / "data" / "demo2" / "tickets.csv").open("ab") as f:
        f.write(b"\n")  # a blank line: the same rows, another file
    res = _batch(workbook / "parameters", "--jobs", 2, "--resume", "--output-root", root)
    assert res.rc == 1  # the broken case is still broken
    assert res.rows["lead_conversion_uplift"].status == "skipped"
    assert "unchanged since" in res.rows["lead_conversion_uplift"].text
    assert "lead_conversion_uplift: skipped: unchanged since" in res.err
    assert res.rows["repeat_purchase_optimisation"].status == "ok"
    assert "repeat_purchase_optimisation: started (客户服务部), changed since its last run: data: tickets" in res.err
    assert res.rows["broken_case"].status == "failed", "a failed case is never skipped"
    after = {c: json.loads((root / c / "run.json").read_text("utf-8")) for c in before}
    assert after["lead_conversion_uplift"] == before["lead_conversion_uplift"]
    assert after["repeat_purchase_optimisation"]["run_id"] != before["repeat_purchase_optimisation"]["run_id"]
    # and the same from crmnb run
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        rc = main(
            [
                "run",
                str(workbook / "parameters" / "repeat_purchase_optimisation.yaml"),
                "--resume",
                "--output-root",
                str(root),
            ]
        )
    assert rc == 0 and "repeat_purchase_optimisation: skipped: unchanged since" in out.getvalue()


def test_department_filter_runs_only_that_departments_cases(first, workbook):
    res = _batch(workbook / "parameters", "--department", "客户服务部", "--resume", "--output-root", first.root)
    assert res.rc == 0 and set(res.rows) == {"repeat_purchase_optimisation"}
    assert res.rows["repeat_purchase_optimisation"].status == "skipped"
    res = _batch(workbook / "parameters", "--department", "市场部", "--output-root", first.root)
    assert res.rc == 2 and "departments found: 客户服务部, 销售一部" in res.err


# --------------------------------------------------------------------------- time limits and dying kernels
TOY_CELL = """import os, time
if case["notes"] == "exit":
    os._exit(1)
time.sleep(float(case["notes"]))"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A workbook whose one step sleeps for ``notes`` seconds, or ends its kernel when ``notes`` is 'exit'."""
    cases = {
        "dies": {"notes": "exit"},
        "sleeps": {"notes": "30", "cell_timeout_seconds": 1},
        "slow": {"notes": "30", "timeout_minutes": 0.04},
        "quick": {"notes": "0"},
    }
    return toy_workbook(tmp_path_factory.mktemp("toy"), TOY_CELL, cases, heading="# Toy step")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open descriptors in /proc")
def test_cases_run_in_one_process_leave_no_descriptor_open(toy):
    """A batch runs its cases in one process: each case's kernel clients must close with it."""

    def run() -> int:
        with pytest.raises(StepFailed, match="writing the report"):  # its one step runs; it has no step 7
            run_case(toy / "parameters" / "quick.yaml", toy / "outputs", progress=None, index=False)
        return len(os.listdir("/proc/self/fd"))

    first = run()
    assert [run() for _ in range(3)] == [first] * 3, "open descriptors grow with every case run"


def test_a_dying_kernel_is_named(toy):
    with pytest.raises(StepFailed) as err:
        run_case(toy / "parameters" / "dies.yaml", toy / "outputs", progress=None)
    assert not isinstance(err.value, StepTimeout)
    assert "failed in step 01_toy, cell 4: kernel died" in str(err.value)
    rec = json.loads((toy / "outputs" / "dies" / "run.json").read_text("utf-8"))
    assert rec["status"] == "failed" and rec["where"] == "step 01_toy, cell 4"


def test_a_cell_past_its_time_limit_is_stopped(toy):
    t = time.perf_counter()
    with pytest.raises(StepTimeout) as err:
        run_case(toy / "parameters" / "sleeps.yaml", toy / "outputs", progress=None)
    assert time.perf_counter() - t < 20
    assert "timed out in step 01_toy, cell 4" in str(err.value) and "cell_timeout_seconds" in str(err.value)
    assert json.loads((toy / "outputs" / "sleeps" / "run.json").read_text("utf-8"))["status"] == "timeout"
    assert (toy / "outputs" / "sleeps" / "notebooks" / "01_toy.ipynb").is_file()


def test_a_case_past_its_time_limit_is_stopped(toy):
    with pytest.raises(StepTimeout, match=r"time limit of 0\.04 minutes \(timeout_minutes\)"):
        run_case(toy / "parameters" / "slow.yaml", toy / "outputs", progress=None)


def test_batch_reports_timeouts_and_dead_kernels(toy, monkeypatch):
    res = _batch(
        toy / "parameters" / "dies.yaml",
        toy / "parameters" / "sleeps.yaml",
        "--jobs",
        2,
        "--output-root",
        toy / "outputs",
    )
    assert res.rc == 1
    assert res.rows["dies"].status == "failed" and "step 01_toy, cell 4: kernel died" in res.rows["dies"].text
    assert (
        res.rows["sleeps"].status == "timeout" and "step 01_toy, cell 4: stopped after 1 s" in res.rows["sleeps"].text
    )
    # a case process that outlives its limit is stopped by the batch itself
    monkeypatch.setattr(run_batch, "GRACE_SECONDS", 0)
    res = _batch(toy / "parameters" / "slow.yaml", "--output-root", toy / "outputs")
    assert res.rc == 1 and res.rows["slow"].status == "timeout"
    rec = json.loads((toy / "outputs" / "slow" / "run.json").read_text("utf-8"))
    assert rec["status"] == "timeout" and "stopped by crmnb batch" in rec["error"]
    page = (toy / "outputs" / "index.html").read_text(encoding="utf-8")
    assert page.count('class="b timeout"') == 2 and 'class="b failed"' in page


# --------------------------------------------------------------------------- fingerprints and the index, by hand
def test_fingerprint_notices_settings_data_and_code(tmp_path, workbook):
    file = workbook / "parameters" / "lead_conversion_uplift.yaml"
    case = load_case(file)
    books = step_notebooks(ROOT / "notebooks")
    base = run_records.fingerprint(case, case_settings(file), books)
    assert run_records.fingerprint(case, case_settings(file), books) == base
    assert run_records.changes(base, base) == []
    assert run_records.changes(None, base) == ["no earlier run"]
    other = run_records.fingerprint(case, {**case_settings(file), "notes": "changed"}, books)
    assert run_records.changes(base, other) == ["case file settings"]
    extra = tmp_path / "99_extra.ipynb"
    extra.write_text("{}", encoding="utf-8")
    assert run_records.changes(base, run_records.fingerprint(case, case_settings(file), [*books, extra])) == [
        "code or notebooks"
    ]
    moved = case.model_copy(update={"data": case.data.model_copy(update={"dir": workbook / "data" / "broken"})})
    assert run_records.changes(base, run_records.fingerprint(moved, case_settings(file), books)) == ["data: orders"]


def test_index_of_an_empty_or_unusual_output_root(tmp_path):
    page = run_index.write_index(tmp_path / "outputs").read_text(encoding="utf-8")
    assert "No case has run yet." in page
    # outputs from before run records existed: what the executed notebooks recorded is shown
    folder = tmp_path / "outputs" / "legacy"
    (folder / "notebooks").mkdir(parents=True)
    nb = new_notebook(
        metadata={
            "papermill": {
                "parameters": {
                    "case": {
                        "title": "<i>Legacy</i>",
                        "department": "销售一部",
                        "goal": {"metric": "lead_response_hours", "baseline": 30, "target": 24},
                    }
                }
            }
        }
    )
    nbformat.write(nb, folder / "notebooks" / "01_goal_and_scope.ipynb")
    (tmp_path / "outputs" / "not_a_case").mkdir()
    page = run_index.write_index(tmp_path / "outputs").read_text(encoding="utf-8")
    assert "&lt;i&gt;Legacy&lt;/i&gt;" in page and "Lead response hours: 30.0 h → 24.0 h" in page
    assert "not_a_case" not in page
    # the Chinese department is drawn by the embedded glyphs, listed first as in the report
    assert "@font-face" in page and 'font:14px/1.45 "crmnb CJK",' in page


def test_index_links_every_registered_output_a_case_has(tmp_path, monkeypatch):
    import dataclasses

    from crmnb.present import outputs

    extra = dataclasses.replace(outputs.OUTPUTS["report.html"], name="brief.html", key="brief")
    monkeypatch.setattr(outputs, "OUTPUTS", {**outputs.OUTPUTS, "brief.html": extra})
    folder = tmp_path / "outputs" / "case_a"
    folder.mkdir(parents=True)
    for name in ("report.html", "brief.html"):
        (folder / name).write_text("x", encoding="utf-8")
    run_records.write_record(folder, {"case_id": "case_a", "status": "ok", "seconds": 3.0})
    page = run_index.write_index(tmp_path / "outputs").read_text(encoding="utf-8")
    assert '<a href="case_a/report.html">report</a> · <a href="case_a/brief.html">report</a>' in page
    assert "case_a/tables.xlsx" not in page, "an output the case does not have is not linked"


def test_the_batch_and_the_runner_never_import_each_other():
    """The batch starts cases as processes: it shares the run record with the runner, not the runner's code."""
    import ast

    def imported(module: str) -> set[str]:
        tree = ast.parse((ROOT / "crmnb" / "run" / f"{module}.py").read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.module:  # from crmnb.run import steps, too
                names |= {n.module} | {f"{n.module}.{a.name}" for a in n.names}
        return names

    assert "crmnb.run.steps" not in imported("batch")
    assert "crmnb.run.batch" not in imported("steps")
