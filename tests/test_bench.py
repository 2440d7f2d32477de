"""The benchmark's floor runs a notebook's code cells as the notebook would, and stops on an error."""

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ is not installed: its modules import as bench.* from the checkout
    sys.path.insert(0, str(ROOT))

from bench import copies, measuring, reference, targets, timing  # noqa: E402

FLOOR = ROOT / "bench" / "floor.py"


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


# ---------------------------------------------------------------- the data steps from a run's own timings


def timed(src: str, start: str | None, end: str | None, nbclient: tuple[str, str] | None = None) -> dict:
    meta = {}
    if start:
        meta["papermill"] = {"start_time": start, "end_time": end, "status": "completed"}
    if nbclient:
        meta["execution"] = {"iopub.execute_input": nbclient[0], "shell.execute_reply": nbclient[1]}
    return {"cell_type": "code", "metadata": meta, "source": src, "outputs": [], "execution_count": 1}


def executed_step5(path: Path) -> Path:
    """Write an executed notebook 05 as papermill leaves it: funnel, tiers and RFM cells among others."""
    day = "2026-12-01T10:00:"
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# deep dive"},
        timed('t = ws.tables("clean")\nleads = x', f"{day}00.000000+00:00", f"{day}02.500000+00:00"),
        timed("funnel = analysis.funnel.funnel(\n    leads,\n)", f"{day}02.500000+00:00", f"{day}03.750000+00:00"),
        timed("present.charts.funnel_chart(funnel)", f"{day}03.750000+00:00", f"{day}09.000000+00:00"),
        timed("gaps = analysis.funnel.gaps(leads)", f"{day}09.000000+00:00", f"{day}10.000000+00:00"),
        # nbclient's timing only (papermill's missing): still counted
        timed(
            ["value = analysis.segments.customer_value(o, end)\n", "tiers = analysis.segments.tier_summary(value)"],
            None,
            None,
            (f"{day}10.000000Z", f"{day}10.500000Z"),
        ),
        timed("present.charts.bars(tiers)", f"{day}10.500000+00:00", f"{day}20.000000+00:00"),
        timed("scored = analysis.segments.rfm(value)", f"{day}20.000000+00:00", f"{day}20.250000+00:00"),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    return path


def test_step5_cells_are_found_by_the_functions_they_call_and_timed(tmp_path):
    nb = executed_step5(tmp_path / "05_case_deep_dive.ipynb")
    found = timing.timed_cells(nb, timing.STEP5_CELLS)
    # the chart and gaps cells mention the funnel but do not call funnel.funnel(
    assert found["funnel"] == {"cells": [3], "seconds": 1.25}
    assert found["rfm"] == {"cells": [6, 8], "seconds": 0.75}


def test_data_steps_sum_steps_2_to_4_and_the_funnel_and_rfm_cells(tmp_path):
    out = tmp_path / "case"
    executed_step5(out / "notebooks" / "05_case_deep_dive.ipynb")
    err = tmp_path / "run.err"
    err.write_text(
        "[c] step 1/7 01_goal_and_scope done in 1.0 s\n"
        "[c] step 2/7 02_data_collection done in 8.5 s\n"
        "[c] step 3/7 03_metrics …\n"
        "[c] step 3/7 03_metrics done in 4.0 s\n"
        "[c] step 4/7 04_cleaning_and_validation done in 3.5 s\n"
        "[c] step 5/7 05_case_deep_dive done in 30.0 s\n",
        encoding="utf-8",
    )
    d = timing.data_steps(err, out)
    assert d["seconds"] == 8.5 + 4.0 + 3.5 + 1.25 + 0.75
    assert d["parts"]["05 funnel cells"] == 1.25
    assert d["cells"]["open tables (not counted)"] == {"cells": [2], "seconds": 2.5}
    assert d["missing"] == []

    err.write_text("[c] step 2/7 02_data_collection done in 8.5 s\n[c] step 3/7 03_metrics …\n", encoding="utf-8")
    d = timing.data_steps(err, tmp_path / "no-outputs")
    assert d["seconds"] is None
    assert d["missing"] == ["step 3 did not finish", "step 4 did not finish", "no executed notebook 05_*.ipynb"]


# ---------------------------------------------------------------- the targets table


def scale(s: float, rows: int, seconds: float, peak_mb: float, completed: bool = True, **more) -> dict:
    return {
        "scale": s,
        "rows": rows,
        "seconds": seconds,
        "completed": completed,
        "peak_rss_mb": peak_mb,
        "peak_single_process_rss_mb": peak_mb * 0.9,
        "memory_cap_mb": 8000,
        "reached": "step 4/7 04_cleaning_and_validation",
        "data_steps": {"seconds": more.pop("ours", None), "missing": []},
        **more,
    }


def results(**changes) -> dict:
    ref = {"data_steps_seconds": 40.0, "threads": 2, "stderr": "ref.err"}
    res = {
        "a": {"seconds": 13.5, "all_seconds": [13.5]},
        "b": {"seconds": 54.0},
        "c": {"seconds": 9.0},
        "ratios": {"b_over_a": 4.0, "a_over_c": 1.5},
        "report_mb": 0.6,
        "reference_found": True,
        "reference_dir": "/ref",
        "scale": [
            scale(1.0, 220_000, 13.5, 650, ours=10.0, reference=ref, compare={"agree": 110, "figures": 110}),
            scale(10.0, 2_200_000, 26.0, 1100, ours=15.0, reference=ref, compare={"agree": 110, "figures": 110}),
            scale(100.0, 22_000_000, 60.0, 2000, ours=52.0, reference=ref, compare={"agree": 110, "figures": 110}),
        ],
        "batch": {"throughput_ratio": 1.6, "cases": 4, "jobs_1": {"seconds": 64.0}, "jobs_2": {"seconds": 40.0}},
    }
    res.update(changes)
    res["linearity"] = targets.linearity(res["scale"])
    res["memory_flatness"] = targets.memory_flatness(res["scale"])
    return res


def status(res: dict) -> dict[str, str]:
    return {r["key"]: r["status"] for r in targets.targets(res)}


def test_targets_at_their_limits_are_met_and_past_them_not():
    got = status(results())
    for key in ("scale_1_time", "a_vs_b", "a_vs_c", "scale_100_time", "scale_100_memory", "reference"):
        assert got[key] == "met", key
    assert got["reference_figures"] == "met"
    assert got["batch"] == "met" and got["report_size"] == "met"
    assert got["memory_flat"] == "met"  # 91 MB per 1M rows at 100x against 500 at 10x: falling
    assert got["linear"] == "met"
    assert got["scale_1000_memory"].startswith("not measured: 1000x not in this run")


def test_memory_per_million_rows_flat_within_the_tolerance():
    flat = [
        scale(10.0, 2_000_000, 26.0, 1000),  # 500 MB per 1M rows
        scale(100.0, 20_000_000, 60.0, 12_400),  # 620: 1.24 of the 10x figure
    ]
    assert status(results(scale=flat))["memory_flat"] == "met"
    flat[1]["peak_rss_mb"] = 12_600  # 1.26
    assert status(results(scale=flat))["memory_flat"] == "NOT MET"
    falling = [scale(10.0, 2_000_000, 26.0, 1000), scale(100.0, 20_000_000, 60.0, 2000)]
    assert status(results(scale=falling))["memory_flat"] == "met"


def test_targets_past_their_limits_are_not_met():
    res = results(ratios={"b_over_a": 3.9, "a_over_c": 1.51}, report_mb=2.1)
    res["a"]["seconds"] = 13.6
    big = res["scale"][2]
    big.update(seconds=60.1, peak_rss_mb=2001)
    big["data_steps"]["seconds"] = 52.1  # 1.3025x the reference's 40 s
    big["compare"] = {"agree": 109, "figures": 110, "differ": ["x"]}
    got = status(res)
    for key in ("scale_1_time", "a_vs_b", "a_vs_c", "scale_100_time", "scale_100_memory", "reference"):
        assert got[key] == "NOT MET", key
    assert got["reference_figures"] == "NOT MET"
    assert got["report_size"] == "NOT MET"


def test_a_run_stopped_by_the_watchdog_is_not_met_with_its_peak_and_step():
    res = results()
    res["scale"].append(scale(1000.0, 220_000_000, 300.0, 8100, completed=False))
    res["memory_flatness"] = targets.memory_flatness(res["scale"])
    rows = {r["key"]: r for r in targets.targets(res)}
    assert rows["scale_1000_memory"]["status"] == "NOT MET"
    assert "8.10 GB (cap 8.00 GB)" in rows["scale_1000_memory"]["measured"]
    assert "step 4/7 04_cleaning_and_validation" in rows["scale_1000_memory"]["measured"]
    # its peak per 1M rows is only a lower bound (37 MB): named, not counted
    assert "1000x stopped by the watchdog" in rows["memory_flat"]["measured"]
    # and a stopped run is not counted as a cost for linearity
    assert [m["to"] for m in res["linearity"]["marginal"]] == [10.0, 100.0]


def test_reference_targets_say_not_found_and_nothing_fails():
    res = results(reference_found=False, reference_dir="/nowhere/bench")
    for e in res["scale"]:
        e.pop("reference"), e.pop("compare")
    got = status(res)
    assert got["reference"] == "not measured: reference not found at /nowhere/bench"
    assert got["reference_figures"] == "not measured: reference not found at /nowhere/bench"
    assert got["scale_100_time"] == "met"
    assert reference.found(Path("/nowhere/bench")) is None


# ---------------------------------------------------------------- the watchdog, the lock, the reference's scripts

GROWING_TREE = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", '''
import time
held = []
for _ in range(400):  # up to 2 GB, 5 MB every 10 ms, unless stopped
    held.append(bytearray(5_000_000))
    time.sleep(0.01)
'''])
open(sys.argv[1], "w").write(str(child.pid))
child.wait()
"""


def test_watchdog_stops_a_process_tree_that_grows_past_the_cap(tmp_path):
    pid_file = tmp_path / "child.pid"
    t0 = time.perf_counter()
    m = measuring.measure(
        "growing",
        [sys.executable, "-c", GROWING_TREE, str(pid_file)],
        tmp_path / "grow",
        echo_steps=False,
        cap_bytes=200e6,
    )
    assert m["stopped_by_watchdog"] is True
    assert m["returncode"] != 0
    assert 200 <= m["peak_rss_mb"] < 1000  # the child's memory counts: it is the one that grows
    assert time.perf_counter() - t0 < 20
    child = int(pid_file.read_text())
    deadline = time.time() + 5
    while time.time() < deadline and psutil.pid_exists(child):
        with contextlib.suppress(psutil.Error):
            if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                break
        time.sleep(0.1)
    alive = psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    assert not alive, "the grandchild outlived the watchdog"


def test_a_run_under_the_cap_completes_and_a_failure_names_itself(tmp_path):
    m = measuring.measure("small", [sys.executable, "-c", "x = bytearray(10_000_000)"], tmp_path / "s", cap_bytes=500e6)
    assert m["stopped_by_watchdog"] is False and m["returncode"] == 0
    with pytest.raises(measuring.BenchError, match=r"broken failed \(exit status 3\)"):
        measuring.measure("broken", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "b", cap_bytes=500e6)


def test_the_lock_is_held_as_flock_takes_it(tmp_path):
    lock = tmp_path / "big.lock"
    busy = ["flock", "-n", str(lock), "true"]
    with measuring.held(str(lock), "100x") as waited:
        assert waited < 1
        assert subprocess.run(busy).returncode == 1  # another flock cannot take it meanwhile
    assert subprocess.run(busy).returncode == 0
    other = subprocess.Popen(["flock", str(lock), "sleep", "1.5"])  # another large run holds it
    time.sleep(0.3)
    with measuring.held(str(lock), "100x") as waited:
        assert waited >= 0.5 and other.poll() is not None  # waited until the other run let go
    with measuring.held(None, "100x") as waited:
        assert waited == 0


FAKE_REFERENCE = """
import json, sys
from pathlib import Path
from types import SimpleNamespace
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
(out / "results.json").write_text(json.dumps({"times": {"funnel": 0.5, "TOTAL (in script)": 4.25}, "peak_rss_mb": 99}))
(out / "clean").mkdir(exist_ok=True); (out / "clean" / "t.parquet").write_bytes(b"x")
print(" ".join(sys.argv[3:]))
"""
FAKE_COMPARE = """
print("  ok  rows kept customers: limit 1 crmnb 1")
print("  ok  receipts matched: limit 2 crmnb 2")
print("  DIFF rfm customers: limit 3 crmnb 4")
print("SOME DIFFERENCES")
"""


def test_the_reference_is_run_and_its_figures_counted(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / reference.SCRIPT).write_text(FAKE_REFERENCE, encoding="utf-8")
    (folder / reference.COMPARE).write_text(FAKE_COMPARE, encoding="utf-8")
    assert reference.found(folder) == folder
    out = tmp_path / "ref"
    m = reference.run_reference(folder, tmp_path / "data", out, 2, 1000.0, tmp_path / "r", dict(os.environ), 1e9)
    assert m["data_steps_seconds"] == 4.25 and m["threads"] == 2
    # above 100x the reference runs out of core, as its notes run it at 1000x
    assert Path(m["stdout"]).read_text().split() == [
        "--threads",
        "2",
        "--memory-limit",
        "2GB",
        "--temp",
        str(out / "spill"),
    ]
    c = reference.compare(folder, out, tmp_path / "crmnb", tmp_path / "c", dict(os.environ))
    assert (c["agree"], c["figures"], c["differ"]) == (2, 3, ["rfm customers: limit 3 crmnb 4"])
    reference.drop_tables(out)
    assert not (out / "clean").exists() and (out / "results.json").exists()


def test_the_reference_is_looked_for_beside_the_project_checkout(tmp_path):
    project, shared = tmp_path / "project", tmp_path / "shared" / "bench"
    project.mkdir()
    assert reference.found(reference.default_folder(project)) is None  # absent: its targets are not measured
    shared.mkdir(parents=True)
    (shared / reference.SCRIPT).write_text("", encoding="utf-8")
    assert reference.default_folder(project) == shared


# ---------------------------------------------------------------- 1000x as copies of 100x


def test_copies_have_distinct_ids_phones_and_emails_and_one_header(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "customers.csv").write_text(
        "\ufeffcustomer_id,name,phone,email,created_at\n"
        'C1,"Li, Wei",13800000001,li@example.cn,2025-01-02\n'
        "C2,Wang,,,2025-01-03\n",
        encoding="utf-8",
    )
    (src / "orders.csv").write_text("order_id,customer_id,amount\nO1,C1,10\n", encoding="utf-8")
    (src / "email_events.csv").write_text("event_id,campaign_id,recipient_id\nE1,CMP001,R1\n", encoding="utf-8")
    (src / "campaigns.xlsx").write_bytes(b"not really a workbook")
    copies.replicate(src, dst, 3, threads=1)
    lines = (dst / "customers.csv").read_text(encoding="utf-8").splitlines()
    assert lines == [
        "customer_id,name,phone,email,created_at",
        'C1_0,"Li, Wei",138000000010,li0@example.cn,2025-01-02',
        "C2_0,Wang,,,2025-01-03",
        'C1_1,"Li, Wei",138000000011,li1@example.cn,2025-01-02',
        "C2_1,Wang,,,2025-01-03",
        'C1_2,"Li, Wei",138000000012,li2@example.cn,2025-01-02',
        "C2_2,Wang,,,2025-01-03",
    ]
    assert (dst / "orders.csv").read_text(encoding="utf-8").splitlines()[1:] == [
        "O1_0,C1_0,10",
        "O1_1,C1_1,10",
        "O1_2,C1_2,10",
    ]
    # every *_id column is a key of its copy, campaigns are shared: the e-mail events' ids repeat in none
    assert (dst / "email_events.csv").read_text(encoding="utf-8").splitlines()[1:] == [
        "E1_0,CMP001,R1_0",
        "E1_1,CMP001,R1_1",
        "E1_2,CMP001,R1_2",
    ]
    assert (dst / "campaigns.xlsx").read_bytes() == b"not really a workbook"


def test_copies_are_not_built_without_the_disk_they_need(tmp_path, monkeypatch):
    src = tmp_path / "scale-100"
    src.mkdir()
    (src / "a.csv").write_bytes(b"x" * 1000)
    monkeypatch.setattr(copies.shutil, "disk_usage", lambda _: SimpleNamespace(total=100, used=90, free=10))
    with pytest.raises(measuring.BenchError, match=r"scale-1000 not built: 0 GB free on its disk, 20 GB needed"):
        copies.build(src, tmp_path / "scale-1000", 10, {"a": 1}, tmp_path / "log", dict(os.environ), ROOT)
    assert not (tmp_path / "scale-1000").exists() and not (tmp_path / "scale-1000.partial").exists()


def test_every_target_not_measured_says_why():
    res = {"reference_found": True, "reference_dir": "/ref", "scale": [], "ratios": {}}
    rows = targets.targets(res)
    assert [r["key"] for r in rows] == list(targets.TARGETS)
    for r in rows:
        assert r["status"].startswith("not measured: "), r
