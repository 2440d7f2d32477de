"""crmnb batch --cluster: the demo cases and a broken one on a real Dask scheduler and two workers on loopback."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from case_files import case_copy, toy_workbook
from golden import CASES, CONTACT_KEY_ENV, DEMO_SCALE, DEMO_SEED, GOLDEN, snapshot

from crmnb.cli import main
from crmnb.demo.generator import generate
from crmnb.errors import CrmnbError
from crmnb.run import batch as run_batch
from crmnb.run.records import STATUSES

ROOT = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).with_name("dask")
CONTACT_KEY = "the recording's own contact key"  # tests/golden.py's: the hand-offs holding contact keys match
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not DASK.is_file(), reason="no dask command in this environment")]


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start a Dask process in a session of its own, its output in ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            [str(DASK), *args], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=ROOT
        )


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop the Dask processes this test started (and what each started), killing those that linger."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _scheduler_address(file: Path, proc: subprocess.Popen, log: Path) -> str:
    """Return the scheduler's address from its scheduler file, once it has written it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the scheduler ended: {log.read_text()}"
        try:
            return json.loads(file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            time.sleep(0.2)
    raise AssertionError(f"no scheduler file after 60 s: {log.read_text()}")


def _workers(address: str, n: int) -> dict[str, dict]:
    """Wait for ``n`` workers at the scheduler; return them by address."""
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        client.wait_for_workers(n, timeout=90)
        return {a: {"pid": pid} for a, pid in client.run(os.getpid).items()}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two single-thread workers, separate processes on 127.0.0.1; stopped at the end."""
    tmp = tmp_path_factory.mktemp("dask")
    env = {**os.environ, CONTACT_KEY_ENV: CONTACT_KEY, "PYTHONPATH": str(ROOT)}
    sched = tmp / "scheduler.json"
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    procs = [_start(["scheduler", "--port", "0", "--scheduler-file", str(sched), *common], tmp / "s.log", env)]
    try:
        address = _scheduler_address(sched, procs[0], tmp / "s.log")
        for i in (1, 2):
            args = ["worker", address, "--nworkers", "1", "--nthreads", "1", "--local-directory", str(tmp / f"w{i}")]
            procs.append(_start([*args, *common], tmp / f"w{i}.log", env))
        yield SimpleNamespace(address=address, workers=_workers(address, 2), logs=tmp)
    finally:
        _stop(procs)


@pytest.fixture(scope="module")
def workbook(tmp_path_factory) -> Path:
    """The two demo cases on the recorded small demo data, a case whose data lacks orders.csv, the defaults."""
    tmp = tmp_path_factory.mktemp("cluster")
    generate(tmp / "data", scale=DEMO_SCALE, seed=DEMO_SEED)
    broken = shutil.copytree(tmp / "data", tmp / "broken", ignore=shutil.ignore_patterns("orders.csv"))
    params = tmp / "parameters"
    params.mkdir()
    shutil.copy(ROOT / "parameters" / "_defaults.yaml", params)
    shutil.copytree(ROOT / "parameters" / "_departments", params / "_departments")
    for name in CASES:
        case_copy(params, name, tmp / "data")
    case_copy(params, "lead_conversion_uplift", broken, case_id="broken_case")
    return tmp


def _batch(*args, timeout: float = 240) -> SimpleNamespace:
    """Run ``crmnb batch`` as a user does, in a process of its own; return its exit status, output and rows."""
    res = subprocess.run(
        [sys.executable, "-m", "crmnb.cli", "batch", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    rows = {}
    for line in res.stdout.splitlines():
        parts = line.split(None, 4)
        if len(parts) >= 3 and parts[2] in STATUSES:
            rows[parts[0]] = SimpleNamespace(status=parts[2], text=line)
    return SimpleNamespace(rc=res.returncode, out=res.stdout, err=res.stderr, rows=rows)


@pytest.fixture(scope="module")
def first(cluster, workbook) -> SimpleNamespace:
    res = _batch(workbook / "parameters", "--cluster", cluster.address, "--output-root", workbook / "outputs")
    res.root = workbook / "outputs"
    return res


def test_the_demo_cases_run_and_the_broken_one_fails_alone(first):
    assert first.rc == 1, first.out + first.err
    assert "Traceback" not in first.err
    assert {c: r.status for c, r in first.rows.items()} == {
        "lead_conversion_uplift": "ok",
        "repeat_purchase_optimisation": "ok",
        "broken_case": "failed",
    }, first.out + first.err
    broken = first.rows["broken_case"].text
    assert "step 02_data_collection, cell" in broken and "table 'orders': file not found" in broken
    assert "3 cases: 2 ok, 1 failed, 0 timed out, 0 skipped" in first.out
    rec = json.loads((first.root / "broken_case" / "run.json").read_text("utf-8"))
    assert rec["status"] == "failed" and rec["where"].startswith("step 02_data_collection, cell ")


@pytest.mark.parametrize("case_id", CASES)
def test_a_case_on_the_cluster_writes_what_it_writes_on_this_machine(first, case_id):
    """The outputs are those tests/golden/ recorded from `crmnb run` (what --jobs runs) on the same data."""
    folder = first.root / case_id
    assert (folder / "report.html").is_file() and (folder / "tables.xlsx").is_file()
    want = json.loads((GOLDEN / f"{case_id}.json").read_text(encoding="utf-8"))
    got = snapshot(folder)
    summary = json.loads((folder / "data" / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["headline"] and summary["verdict"]
    assert got["report_text"] == want["report_text"], f"{case_id}: the report's text differs from crmnb run's"
    assert got["handoffs"] == want["handoffs"] and got["workbook"] == want["workbook"]


def test_progress_shows_the_workers_and_each_cases_steps(first, cluster):
    assert f"cluster {cluster.address}: 2 workers" in first.err
    for line in re.findall(r"(\w+): started on (tcp://\S+) ", first.err):
        assert line[1] in cluster.workers, line
    assert {c for c, _ in re.findall(r"(\w+): started on (tcp://\S+) ", first.err)} == {
        "lead_conversion_uplift",
        "repeat_purchase_optimisation",
        "broken_case",
    }
    assert "broken_case: step 2/7 02_data_collection" in first.err
    assert "repeat_purchase_optimisation: step 7/7 07_report_and_iteration" in first.err
    assert "[3/3 done, 1 failed]" in first.err


def test_each_case_ran_on_a_worker_and_its_record_says_which(first, cluster):
    pids = {w["pid"] for w in cluster.workers.values()}
    for case_id in (*CASES, "broken_case"):
        rec = json.loads((first.root / case_id / "run.json").read_text("utf-8"))
        worker = rec["worker"]
        assert worker["address"] in cluster.workers and worker["pid"] in pids, worker
        head = (first.root / case_id / "run.log").read_text("utf-8").splitlines()[0]
        assert f"on worker {worker['address']} (host {worker['host']}, pid {worker['pid']})" in head
        assert f"[{case_id}] step 1/7 01_goal_and_scope" in (first.root / case_id / "run.log").read_text("utf-8")
    assert not (first.root / ".crmnb-cluster").exists(), "the batch's probe and claim files are removed"


def test_the_index_page_lists_every_case(first):
    page = (first.root / "index.html").read_text(encoding="utf-8")
    for case_id in (*CASES, "broken_case"):
        assert f"<small>{case_id}</small>" in page
    assert "lead_conversion_uplift/report.html" in page and "repeat_purchase_optimisation/tables.xlsx" in page
    assert "broken_case/notebooks/02_data_collection.ipynb" in page


def test_resume_skips_the_cases_done(first, workbook, cluster):
    before = {c: (first.root / c / "run.json").read_text("utf-8") for c in CASES}
    files = [workbook / "parameters" / f"{c}.yaml" for c in CASES]
    res = _batch(*files, "--resume", "--cluster", cluster.address, "--output-root", first.root)
    assert res.rc == 0, res.out + res.err
    assert {c: r.status for c, r in res.rows.items()} == dict.fromkeys(CASES, "skipped")
    assert "lead_conversion_uplift: skipped: unchanged since" in res.err
    assert {c: (first.root / c / "run.json").read_text("utf-8") for c in CASES} == before


# --------------------------------------------------------------------------- the cluster's own failures
def test_an_unreachable_scheduler_is_named(workbook, monkeypatch, capsys, tmp_path):
    from crmnb.run import cluster as run_cluster

    monkeypatch.setattr(run_cluster, "CONNECT_SECONDS", 2)
    rc = main(["batch", str(workbook / "parameters"), "--cluster", "tcp://127.0.0.1:9", "--output-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err and "Traceback" not in err


def test_an_output_root_a_worker_does_not_see_is_named(cluster, workbook, monkeypatch, tmp_path):
    """The workers look for the batch's probe file; hidden from them here, as on storage they do not share."""
    from crmnb.run import cluster as run_cluster

    monkeypatch.setattr(run_cluster, "PROBE_FILE", "elsewhere")
    root = tmp_path / "outputs"
    with pytest.raises(CrmnbError) as err:
        run_cluster.run_cluster_batch([workbook / "parameters"], cluster.address, output_root=root, err=io.StringIO())
    text = str(err.value)
    for address in cluster.workers:
        assert f"the output root {root} is not shared with worker {address}" in text
    assert "every worker sees at the same path" in text
    assert not any(root.glob("*/run.json")), "no case starts"


def test_a_worker_that_cannot_write_or_see_the_cases_is_named(tmp_path):
    from crmnb.run.cluster import _storage_problems

    me = {"host": "node7", "pid": 1, "address": "tcp://10.0.0.7:4000"}
    ok_mark = tmp_path / "worker-node8-2"
    ok_mark.write_text("tcp://10.0.0.8:4000")
    results = {
        "tcp://10.0.0.7:4000": {
            "worker": me,
            "problem": "unwritable",
            "detail": "Read-only file system",
            "missing": [],
        },
        "tcp://10.0.0.8:4000": {
            "worker": {**me, "host": "node8"},
            "problem": "",
            "mark": str(ok_mark),
            "missing": ["/data/exports"],
        },
        "tcp://10.0.0.9:4000": {"worker": {**me, "host": "node9"}, "problem": "", "mark": "/nowhere", "missing": []},
        "tcp://10.0.0.10:4000": ModuleNotFoundError("No module named 'crmnb'"),
    }
    text = "\n".join(_storage_problems(results, tmp_path))
    assert f"worker tcp://10.0.0.7:4000 (host node7) cannot write into the output root {tmp_path}: Read-only" in text
    assert "worker tcp://10.0.0.8:4000 (host node8) does not see /data/exports" in text
    assert f"the output root {tmp_path} is not shared with worker tcp://10.0.0.9:4000 (host node9)" in text
    assert "worker tcp://10.0.0.10:4000 could not check the output root (ModuleNotFoundError" in text
    assert "installed in the worker's Python" in text


TOY_CELL = """import time
time.sleep(float(case["notes"]))"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """A workbook whose one step sleeps for ``notes`` seconds."""
    cases = {"slow": {"notes": "60", "timeout_minutes": 0.04}, "naps": {"notes": "60"}, "quick": {"notes": "0"}}
    return toy_workbook(tmp_path_factory.mktemp("toy"), TOY_CELL, cases)


def _worker_of(log: Path, seconds: float = 60, heard=lambda: True) -> int:
    """Return the pid of the worker running a case, from its log, once its first step has started (and, with
    ``heard``, once the batch has heard so: the worker's message of the step may reach it after the log)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = log.read_text("utf-8") if log.is_file() else ""
        m = re.search(r"on worker \S+ \(host \S+, pid (\d+)\)", text)
        if m and "step 1/1 01_toy" in text and heard():
            return int(m[1])
        time.sleep(0.2)
    raise AssertionError(f"the case did not start: {log}")


def test_a_case_past_its_limit_and_a_case_whose_worker_dies_fail_alone(cluster, toy, monkeypatch):
    """Run last: it kills a worker (its nanny starts another)."""
    from crmnb.run.cluster import run_cluster_batch

    monkeypatch.setattr(run_batch, "GRACE_SECONDS", 0)  # the limit: 0.04 minutes, 2.4 s
    root, err, out = toy / "outputs", io.StringIO(), {}
    files = [toy / "parameters" / "slow.yaml", toy / "parameters" / "naps.yaml"]
    thread = threading.Thread(
        target=lambda: out.update(res=run_cluster_batch(files, cluster.address, output_root=root, err=err))
    )
    thread.start()
    try:
        pid = _worker_of(root / "naps" / "run.log", heard=lambda: "naps: step 1/1 01_toy" in err.getvalue())
        os.kill(pid, signal.SIGKILL)  # a worker this test started
    finally:
        thread.join(120)
    jobs = {j.case_id: j for j in out["res"].jobs}
    assert jobs["slow"].status == "timeout" and "stopped by crmnb batch" in jobs["slow"].error
    naps = jobs["naps"]
    assert naps.status == "failed", err.getvalue()
    assert re.search(rf"the worker tcp://\S+ \(host \S+, pid {pid}\) running it went away", naps.error)
    assert "during step 1/1 01_toy; the case was not run again" in naps.error
    rec = json.loads((root / "naps" / "run.json").read_text("utf-8"))
    assert rec["status"] == "failed" and "went away" in rec["error"]
    time.sleep(2)  # the case's own process ends with its worker: nothing runs on for it
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(toy / "parameters" / "naps.yaml") not in ps


def test_without_cluster_nothing_of_dask_is_imported(toy, tmp_path):
    quick = str(toy / "parameters" / "quick.yaml")
    code = f"""
import sys
from crmnb.cli import main
print(main(["batch", {quick!r}, "--jobs", "1", "--output-root", {str(tmp_path)!r}]))
print(main(["run", {quick!r}, "--output-root", {str(tmp_path)!r}]))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")))
"""
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = res.stdout.strip().splitlines()
    assert lines[-3:] == ["1", "2", "[]"], res.stdout + res.stderr  # both ran (the toy case has no report step)
    assert json.loads((tmp_path / "quick" / "run.json").read_text("utf-8"))["status"] == "failed"
