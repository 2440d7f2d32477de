"""A killed run is never reported as good: run records, outputs moved into place, --resume."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from crmnb.cli import main
from crmnb.intake.schema import TABLES
from crmnb.params import case_settings, load_case
from crmnb.run import batch as run_batch
from crmnb.run import index as run_index
from crmnb.run import records as run_records
from crmnb.run import staging
from crmnb.run import steps as run_steps

ROOT = Path(__file__).resolve().parents[1]
CASE = "lead_conversion_uplift"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _prints(case_file: Path) -> dict:
    case = load_case(case_file)
    books = run_records.step_notebooks(run_records.notebooks_dir(case_file))
    return run_records.fingerprint(case, case_settings(case_file), books)


def _start_run(case_file: Path, root: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "crmnb.cli", "run", str(case_file), "--output-root", str(root), *extra]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)


def _kill_at(proc: subprocess.Popen, text: str, timeout: float = 400) -> list[str]:
    """Kill the run with SIGKILL once it prints ``text``; return what it printed."""
    seen: list[str] = []
    end = time.monotonic() + timeout
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            time.sleep(1.0)  # into the step: its notebook is being written
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            return seen
        assert time.monotonic() < end, "".join(seen)
    pytest.fail(f"the run ended before '{text}':\n" + "".join(seen))


# --------------------------------------------------------------------------- the record and the index, by hand
def test_a_running_record_of_a_dead_process_reads_as_interrupted(tmp_path):
    root = tmp_path / "outputs"
    for case_id, pid in (("gone", _dead_pid()), ("alive", os.getpid())):
        run_records.write_record(
            root / case_id,
            {"case_id": case_id, "status": "running", "pid": pid, "started": "2026-01-02T03:04:05+08:00"},
        )
        (root / case_id / "report.html").write_text("<html>earlier</html>", encoding="utf-8")
    assert run_records.record_status(run_records.read_record(root / "gone")) == "interrupted"
    assert run_records.record_status(run_records.read_record(root / "alive")) == "running"
    page = run_index.write_index(root).read_text(encoding="utf-8")
    assert 'class="b interrupted"' in page and 'class="b running"' in page
    assert "stopped before it finished" in page and "started 2026-01-02 03:04" in page
    assert page.count("report (earlier run)") == 2, "the report there is the last good run's, not this one's"
    since, why = run_records.resume_check(root / "gone", {"settings": "x", "data": {}, "code": "y"})
    assert since is None and "interrupted" in why
    since, why = run_records.resume_check(root / "alive", {"settings": "x", "data": {}, "code": "y"})
    assert since is None and "not finished" in why


def test_a_finished_record_names_no_process(tmp_path):
    folder = tmp_path / "case"
    run_records.start_record(folder, {"case_id": "case", "started": run_records.timestamp()})
    rec = run_records.read_record(folder)
    assert rec["status"] == "running" and rec["pid"] == os.getpid()
    run_records.finish_record(folder, rec, "ok", 1.0)
    rec = run_records.read_record(folder)
    assert rec["status"] == "ok" and "pid" not in rec and "host" not in rec


def test_stale_run_folders_are_cleared_and_others_kept(tmp_path):
    root = tmp_path / "outputs"
    dead = staging.stage_root(root, "case_a", _dead_pid())
    mine = staging.stage_root(root, "case_a")
    other = staging.stage_root(root, "case_a_b", _dead_pid())
    for folder in (dead, mine, other):
        (folder / "case_a" / "notebooks").mkdir(parents=True)
    assert staging.clear_stale(root, "case_a") == [dead]
    assert mine.is_dir() and other.is_dir()


def test_publish_replaces_a_complete_run_and_keeps_the_good_report_after_a_failed_one(tmp_path):
    folder = tmp_path / "outputs" / "case"
    (folder / "notebooks").mkdir(parents=True)
    (folder / "notebooks" / "03_old.ipynb").write_text("old", encoding="utf-8")
    (folder / "report.html").write_text("good", encoding="utf-8")
    stage = staging.stage_root(tmp_path / "outputs", "case") / "case"
    (stage / "notebooks").mkdir(parents=True)
    (stage / "notebooks" / "01_new.ipynb").write_text("failed run", encoding="utf-8")
    (stage / "report.html").write_text("half", encoding="utf-8")
    staging.publish(stage, folder, complete=False)
    assert (folder / "report.html").read_text(encoding="utf-8") == "good"
    assert sorted(p.name for p in (folder / "notebooks").iterdir()) == ["01_new.ipynb"], "no notebook of two runs"
    assert not stage.parent.exists()
    (stage / "data").mkdir(parents=True)
    (stage / "report.html").write_text("new", encoding="utf-8")
    staging.publish(stage, folder)
    assert (folder / "report.html").read_text(encoding="utf-8") == "new" and (folder / "data").is_dir()


# --------------------------------------------------------------------------- a toy case whose run is killed
KILLER = """import os, signal
if case["notes"] == "fail":
    raise ValueError("this step fails")
if case["notes"] == "kill":
    os.kill(os.getppid(), signal.SIGKILL)  # the process running the case, as kill -9 would"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("killed")
    (tmp / "notebooks").mkdir()
    for name, source in (("01_first", "x = 1"), ("02_killer", KILLER)):
        nb = new_notebook(
            cells=[
                new_code_cell(
                    'case_file = ""\noutput_root = "outputs"\ncase = None', metadata={"tags": ["parameters"]}
                ),
                new_code_cell(source),
            ]
        )
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp / "notebooks" / f"{name}.ipynb")
    raw = yaml.safe_load((ROOT / "parameters" / f"{CASE}.yaml").read_text(encoding="utf-8"))
    raw.update(case_id="killed", notes="kill", data={"dir": str(tmp / "data")})
    (tmp / "parameters").mkdir()
    (tmp / "parameters" / "killed.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    raw.update(case_id="fails", notes="fail")
    (tmp / "parameters" / "fails.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return tmp


def _cli(*args) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        rc = main([*map(str, args)])
    return rc, err.getvalue()


@pytest.mark.parametrize("where", ["root", "case folder"])
def test_an_output_folder_that_cannot_be_made_is_one_line(toy, tmp_path, where):
    root = tmp_path / "outputs"
    if where == "root":
        root.write_text("a file where the output root should be", encoding="utf-8")
        folder = root / "killed"
    else:
        root.mkdir()
        folder = root / "killed"
        folder.write_text("a file where the case folder should be", encoding="utf-8")
    rc, err = _cli("run", toy / "parameters" / "killed.yaml", "--output-root", root)
    assert rc != 0 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"crmnb: error: cannot write the output folder {folder}: " + err.strip().split(": ")[-1]
    ]
    assert "exists" in err or "Not a directory" in err


@pytest.mark.e2e
def test_a_full_disk_when_recording_a_failed_step_is_said_without_a_traceback(toy, tmp_path, monkeypatch):
    root = tmp_path / "outputs"

    def full(folder, record, status, seconds, **fields):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder / "run.json"))

    monkeypatch.setattr(run_steps, "finish_record", full)
    rc, err = _cli("run", toy / "parameters" / "fails.yaml", "--output-root", root)
    assert rc == 2 and "Traceback" not in err
    assert "crmnb: error: case 'fails' failed in step 02_killer, cell 3" in err and "ValueError: this step fails" in err
    assert f"the run was not recorded: cannot write the output folder {root / 'fails'}: No space left on device" in err
    rec = run_records.read_record(root / "fails")
    assert rec["status"] == "running" and rec["pid"] == os.getpid(), "never ok: interrupted once the process ends"
    assert (root / "fails" / "notebooks" / "02_killer.ipynb").is_file() and not list(root.glob(".run-*"))


def test_a_record_that_cannot_be_written_leaves_no_temporary_file(tmp_path, monkeypatch):
    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_records.os, "replace", full)
    with pytest.raises(OSError):
        run_records.write_record(tmp_path, {"status": "ok"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
def test_batch_records_a_case_process_killed_mid_run(toy):
    root = toy / "outputs"
    res = run_batch.run_batch([toy / "parameters" / "killed.yaml"], output_root=root, err=io.StringIO())
    (job,) = res.jobs
    assert job.status == "failed" and "killed (signal 9) before its run finished" in job.reason
    rec = run_records.read_record(root / "killed")
    assert rec["status"] == "failed" and "pid" not in rec and "signal 9" in rec["error"]
    assert not list(root.glob(".run-*")) or all(staging._owner(p, "killed") for p in root.glob(".run-*"))


# --------------------------------------------------------------------------- a real case killed in step 5
@pytest.mark.e2e
def test_a_run_killed_in_step_5_is_interrupted_and_rerun(demo_outputs, tmp_path):
    good = demo_outputs[CASE]
    case_file = good.parents[1] / "parameters" / f"{CASE}.yaml"
    root = tmp_path / "outputs"
    folder = root / CASE
    shutil.copytree(good, folder)  # the last successful run
    assert run_records.resume_check(folder, _prints(case_file))[0] is not None, "unchanged: --resume would skip it"
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "run.json"}

    proc = _start_run(case_file, root)
    _kill_at(proc, "step 5/7 05_case_deep_dive …")

    rec = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert rec["status"] == "running" and rec["pid"] == proc.pid and "outputs" not in rec
    assert run_records.record_status(rec) == "interrupted"
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != "run.json"}
    assert after == before, "the last good report, workbook, notebooks and hand-offs are left as they were"
    page = run_index.write_index(root).read_text(encoding="utf-8")
    assert 'class="b interrupted"' in page and 'class="b ok"' not in page and "report (earlier run)" in page

    since, why = run_records.resume_check(folder, _prints(case_file))
    assert since is None and "interrupted" in why
    job = run_batch.plan_jobs([case_file])[0]
    run_batch._skip_if_unchanged(job, root)
    assert job.status == "pending" and "was interrupted" in job.why, "crmnb batch --resume runs it again"

    again = _start_run(case_file, root, "--resume", "--no-index")
    seen = "".join(_kill_at(again, "step 1/7"))
    assert "running: its last run" in seen and "was interrupted" in seen and "skipped" not in seen
    assert [p for p in root.glob(".run-*") if staging._owner(p, CASE) == proc.pid] == [], "stale folder cleared"


# --------------------------------------------------------------------------- an analysis period without rows
@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    from crmnb.demo.generator import generate

    folder = tmp_path_factory.mktemp("period") / "data"
    generate(folder, scale=0.1)
    return folder


def _orders_case(tmp: Path, demo: Path, name: str, change) -> Path:
    import pandas as pd

    data = shutil.copytree(demo, tmp / name)
    orders = pd.read_csv(data / "orders.csv", dtype=str, keep_default_na=False)
    change(orders).to_csv(data / "orders.csv", index=False)
    raw = yaml.safe_load((ROOT / "parameters" / f"{CASE}.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(data)}
    file = tmp / f"{name}.yaml"
    file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return file


def _cut_short(orders):
    return orders[orders["order_date"] < "2025-03-01"]


def _excel_serials(orders):
    import pandas as pd

    days = (pd.to_datetime(orders["order_date"]) - pd.Timestamp("1899-12-30")).dt.days
    return orders.assign(order_date=days.astype(str))


@pytest.mark.parametrize("change", [_cut_short, _excel_serials])
def test_validate_says_when_no_order_falls_in_the_analysis_period(small_demo, tmp_path, change):
    from crmnb.run.preflight import validate_case

    file = _orders_case(tmp_path, small_demo, change.__name__, change)
    lines: list[str] = []
    assert validate_case(file, say=lines.append) == 1
    (orders,) = [line for line in lines if line.strip().startswith("orders")]
    assert "ERROR" in orders and "none of its" in orders and "analysis period 2025-07-01 – 2025-12-31" in orders
    if change is _cut_short:
        assert "its order_date runs from 2021-" in orders and "to 2025-02-" in orders
    else:
        assert "rows have no readable order_date, e.g. '4" in orders and "export rows 1, 2, 3" in orders
    assert lines[-1] == f"{len(TABLES) - 1} of {len(TABLES)} tables usable; 1 with errors"


# --------------------------------------------------------------------------- a data path at a system file
@pytest.mark.e2e
def test_a_system_file_given_as_data_is_not_quoted(small_demo, tmp_path):
    from crmnb.errors import StepFailed
    from crmnb.run.preflight import validate_case
    from crmnb.run.steps import run_case

    passwd = Path("/etc/passwd")
    if not passwd.is_file():
        pytest.skip("no /etc/passwd here")
    secret = passwd.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    raw = yaml.safe_load((ROOT / "parameters" / f"{CASE}.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(small_demo), "files": {"orders": str(passwd)}}
    file = tmp_path / "passwd.yaml"
    file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    lines: list[str] = []
    assert validate_case(file, say=lines.append) == 1
    (orders,) = [line for line in lines if line.strip().startswith("orders")]
    assert "/etc/passwd" in orders and "required column(s) missing" in orders and "not quoted" in orders
    assert secret not in "\n".join(lines)
    root = tmp_path / "outputs"
    with pytest.raises(StepFailed) as err:
        run_case(file, root, progress=None)
    assert "02_data_collection" in str(err.value) and "/etc/passwd" in str(err.value)
    record = (root / CASE / "run.json").read_text(encoding="utf-8")
    page = (root / "index.html").read_text(encoding="utf-8")
    for text in (str(err.value), record, page):
        assert secret not in text and "root:x:" not in text
    assert "not quoted: a system file" in json.loads(record)["reason"]
