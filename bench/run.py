"""Benchmark a case: crmnb run against plain papermill + nbconvert and against the bare analyses,
at 1x, 10x and 100x the demo data, and crmnb batch with one and two jobs.

    .venv/bin/python bench/run.py                      # everything, about 10 minutes on 2 cores
    .venv/bin/python bench/run.py --scales 1,10 --skip-naive --batch-cases 2

Figures are printed as they are measured, then a table of the targets (issue 7) with met / NOT
MET, and all of them are written as JSON (``--json``, default ``bench/results.json``). A missed
target is a measurement, not a failure: the exit status is 0 unless something failed to run.

Every command runs as a subprocess, timed by wall clock from its start to its end (process start
and imports included). Peak memory is the resident set size summed over the process and all its
children (the kernel), sampled every 0.1 s. Demo data is generated once per scale into
``bench/.data/`` (``--data-dir``) and reused; generating it is not timed. Every other file goes
to a temporary folder, removed at the end unless ``--keep DIR`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NOTEBOOKS = REPO / "notebooks"
PARAMETERS = REPO / "parameters"
BIN = Path(sys.executable).parent
DEMO_CASE = "lead_conversion_uplift"
BATCH_CASES = ("lead_conversion_uplift", "repeat_purchase_optimisation")
STEP_DONE = re.compile(r"step (\d+)/(\d+) (\S+) done in ([\d.]+) s")
MB = 1e6
GB = 1e9

TARGETS = {
    "a_vs_b": "a (crmnb run) at least 4x faster than b (papermill + nbconvert)",
    "a_vs_c": "a within 1.5x of c (the floor)",
    "scale_100_time": "100x case end to end in at most 90 s",
    "scale_100_memory": "100x case peak memory at most 3 GB",
    "linear": "cost grows no faster than linearly beyond start-up",
    "batch": "--jobs 2 at least 1.6x the throughput of --jobs 1",
    "report_size": "demo report at most 2 MB",
}
LINEAR_TOLERANCE = 1.25
"""Largest accepted ratio of the marginal cost per row at the largest scales to that at the smallest."""


class BenchError(Exception):
    """Something the benchmark runs did not run: names what, and shows the end of its output."""


def say(msg: str = "") -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- machine


def machine() -> dict:
    """Return the CPU model, cores, RAM, OS, Python and library versions, and the code's commit."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit (not a git checkout)"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "crmnb", "notebooks"))
    return {
        "cpu": cpu,
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / GB, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "pandas": version("pandas"),
        "numpy": version("numpy"),
        "papermill": version("papermill"),
        "nbconvert": version("nbconvert"),
        "crmnb": version("crmnb"),
        "crmnb_commit": commit + (" with uncommitted changes in crmnb/ or notebooks/" if dirty else ""),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


# ---------------------------------------------------------------- running and measuring


class Measured(dict):
    """One command's wall seconds, peak memory, exit status and output files."""


def measure(
    what: str,
    cmd: list[str],
    log: Path,
    cwd: Path = REPO,
    env: dict | None = None,
    echo_steps: bool = True,
    check: bool = True,
) -> Measured:
    """Run ``cmd``, timing it and sampling the memory of it and its children every 0.1 s.

    stdout and stderr go to ``log`` (.out / .err); lines reporting a finished step are echoed
    as they come. With ``check``, a non-zero exit raises :class:`BenchError` naming ``what``.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    out, err = log.with_suffix(".out"), log.with_suffix(".err")
    peak = {"total": 0, "single": 0}
    stop = threading.Event()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.perf_counter()
        try:
            proc = psutil.Popen(cmd, cwd=cwd, env=env, stdout=fo, stderr=fe)
        except OSError as exc:
            raise BenchError(f"{what}: could not start {cmd[0]}: {exc}") from None

        def sample() -> None:
            seen = 0
            while True:
                total = single = 0
                try:
                    procs = [proc, *proc.children(recursive=True)]
                except psutil.Error:
                    procs = []
                for p in procs:
                    try:
                        rss = p.memory_info().rss
                    except psutil.Error:
                        continue
                    total += rss
                    single = max(single, rss)
                peak["total"] = max(peak["total"], total)
                peak["single"] = max(peak["single"], single)
                if echo_steps:
                    try:
                        text = err.read_text(encoding="utf-8", errors="replace")
                    except OSError:
                        text = ""
                    lines = text.splitlines()
                    for line in lines[seen:]:
                        if STEP_DONE.search(line) or line.startswith("workbook done"):
                            say(f"      {line.strip()}")
                    seen = len(lines) if text.endswith("\n") else max(seen, len(lines) - 1)
                if stop.wait(0.1):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    result = Measured(
        what=what,
        seconds=round(wall, 2),
        peak_rss_mb=round(peak["total"] / MB),
        peak_single_process_rss_mb=round(peak["single"] / MB),
        returncode=rc,
        stderr=str(err),
        stdout=str(out),
    )
    if check and rc != 0:
        tail = "\n".join(err.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:])
        raise BenchError(f"{what} failed (exit status {rc}): {' '.join(map(str, cmd))}\n{tail}\n(full output: {err})")
    return result


def step_seconds(stderr: str | Path) -> dict[str, float]:
    """Return the seconds of each step from the lines 'step i/7 NAME done in X s' of a run's stderr."""
    steps = {}
    for line in Path(stderr).read_text(encoding="utf-8", errors="replace").splitlines():
        m = STEP_DONE.search(line)
        if m:
            steps[m.group(3)] = float(m.group(4))
    return steps


def env_for_runs() -> dict:
    """Return the environment for every command: this venv's kernelspec first, output unbuffered."""
    env = dict(os.environ)
    mine = str(Path(sys.prefix) / "share" / "jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join(
        [mine, *[p for p in env.get("JUPYTER_PATH", "").split(os.pathsep) if p and p != mine]]
    )
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return env


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise BenchError(
            f"{name} not found in {BIN}: run the benchmark with the workbook's venv, "
            f"e.g. .venv/bin/python bench/run.py (make install creates it)"
        )
    return str(path)


# ---------------------------------------------------------------- data and cases


def demo_data(data_dir: Path, scale: float, env: dict, logs: Path) -> tuple[Path, int]:
    """Return the folder of the demo data at ``scale`` and its total input rows, generating it once."""
    folder = data_dir / f"scale-{scale:g}"
    planted = folder / "planted.json"
    if not planted.exists():
        partial = data_dir / f"scale-{scale:g}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        say(f"  generating {scale:g}x demo data into {folder} (once; not timed) …")
        m = measure(
            f"crmnb demo-data --scale {scale:g}",
            [tool("crmnb"), "demo-data", "--out", str(partial), "--scale", f"{scale:g}"],
            logs / f"demo-data-{scale:g}",
            env=env,
            echo_steps=False,
        )
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        say(f"    done in {m['seconds']:.0f} s")
    rows = json.loads(planted.read_text(encoding="utf-8")).get("rows", {})
    return folder, int(sum(rows.values()))


def case_folder(folder: Path) -> Path:
    """Make ``folder`` a place for case files: the workbook's shared defaults copied beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PARAMETERS / "_defaults.yaml", folder / "_defaults.yaml")
    if (PARAMETERS / "_departments").is_dir():
        shutil.copytree(PARAMETERS / "_departments", folder / "_departments", dirs_exist_ok=True)
    return folder


def write_case(source: str, folder: Path, data: Path, case_id: str | None = None) -> Path:
    """Write a copy of the workbook's case ``source`` into ``folder``, reading ``data``, as ``case_id``."""
    settings = yaml.safe_load((PARAMETERS / f"{source}.yaml").read_text(encoding="utf-8"))
    settings["case_id"] = case_id or settings["case_id"]
    settings.setdefault("data", {})["dir"] = str(data)
    path = folder / f"{settings['case_id']}.yaml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the measurements


def run_a(case: Path, out: Path, env: dict, logs: Path, label: str) -> Measured:
    """a: crmnb run, end to end with the report and workbook."""
    m = measure(
        f"crmnb run ({label})",
        [tool("crmnb"), "run", str(case), "--output-root", str(out)],
        logs / f"run-{label}",
        env=env,
    )
    m["steps"] = step_seconds(m["stderr"])
    m["output"] = str(out / yaml.safe_load(case.read_text(encoding="utf-8"))["case_id"])
    return m


def run_b(case: Path, out: Path, env: dict, logs: Path) -> Measured:
    """b: the papermill CLI per notebook, then jupyter nbconvert --to html per executed notebook."""
    case_id = yaml.safe_load(case.read_text(encoding="utf-8"))["case_id"]
    target = out / case_id / "notebooks"
    target.mkdir(parents=True, exist_ok=True)
    books = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    per = {}
    peak_total = peak_single = 0
    t0 = time.perf_counter()
    for nb in books:
        executed = target / nb.name
        p = measure(
            f"b. papermill {nb.name}",
            [
                tool("papermill"),
                str(nb),
                str(executed),
                "-p",
                "case_file",
                str(case),
                "-p",
                "output_root",
                str(out),
                "--no-progress-bar",
            ],
            logs / f"naive-papermill-{nb.stem}",
            cwd=NOTEBOOKS,
            env=env,
            echo_steps=False,
        )
        c = measure(
            f"b. jupyter nbconvert --to html {nb.name}",
            [tool("jupyter"), "nbconvert", "--to", "html", str(executed)],
            logs / f"naive-nbconvert-{nb.stem}",
            cwd=NOTEBOOKS,
            env=env,
            echo_steps=False,
        )
        per[nb.stem] = {"papermill": p["seconds"], "nbconvert": c["seconds"]}
        peak_total = max(peak_total, p["peak_rss_mb"], c["peak_rss_mb"])
        peak_single = max(peak_single, p["peak_single_process_rss_mb"], c["peak_single_process_rss_mb"])
        say(f"      {nb.stem}: papermill {p['seconds']:.1f} s, nbconvert {c['seconds']:.1f} s")
    return Measured(
        what="papermill + nbconvert",
        seconds=round(time.perf_counter() - t0, 2),
        peak_rss_mb=peak_total,
        peak_single_process_rss_mb=peak_single,
        steps=per,
        papermill_seconds=round(sum(v["papermill"] for v in per.values()), 2),
        nbconvert_seconds=round(sum(v["nbconvert"] for v in per.values()), 2),
    )


def run_c(case: Path, out: Path, env: dict, logs: Path, label: str) -> Measured:
    """c: the floor, bench/floor.py in one plain Python process."""
    m = measure(
        f"floor ({label})",
        [sys.executable, str(HERE / "floor.py"), str(case), str(out), str(NOTEBOOKS)],
        logs / f"floor-{label}",
        env=env,
    )
    m["steps"] = step_seconds(m["stderr"])
    return m


def median_run(runs: list[Measured]) -> Measured:
    """Return the run of median wall time (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    best = Measured(ordered[(len(ordered) - 1) // 2])
    best["all_seconds"] = [r["seconds"] for r in runs]
    return best


# ---------------------------------------------------------------- report


def fmt_s(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f} s"


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "NOT MET")


def linearity(scale_runs: list[dict]) -> dict | None:
    """Return the marginal seconds per 1,000 rows between consecutive scales, and the last over the first.

    The fixed start-up (process and kernel start, imports) cancels out of a difference, so a
    ratio at most 1 means no worse than linear; ``LINEAR_TOLERANCE`` allows for noise.
    """
    runs = sorted(scale_runs, key=lambda r: r["rows"])
    if len(runs) < 3:
        return None
    marginal = []
    for lo, hi in zip(runs, runs[1:]):
        marginal.append(
            {
                "from": lo["scale"],
                "to": hi["scale"],
                "seconds_per_1000_rows": round((hi["seconds"] - lo["seconds"]) / (hi["rows"] - lo["rows"]) * 1000, 5),
            }
        )
    first, last = marginal[0]["seconds_per_1000_rows"], marginal[-1]["seconds_per_1000_rows"]
    ratio = (last / first) if first > 0 else None
    return {
        "marginal": marginal,
        "ratio": None if ratio is None else round(ratio, 2),
        "ok": (last <= 0) if ratio is None else ratio <= LINEAR_TOLERANCE,
    }


def targets(res: dict) -> list[dict]:
    """Return each target with its measured value and whether it is met (None: not measured)."""
    rows = []

    def add(key: str, value: str, ok: bool | None) -> None:
        rows.append({"target": TARGETS[key], "key": key, "measured": value, "ok": ok, "status": verdict(ok)})

    r = res.get("ratios", {})
    ab = r.get("b_over_a")
    add(
        "a_vs_b",
        "–" if ab is None else f"{ab:.1f}x faster ({fmt_s(res['b']['seconds'])} vs {fmt_s(res['a']['seconds'])})",
        None if ab is None else ab >= 4,
    )
    ac = r.get("a_over_c")
    add(
        "a_vs_c",
        "–" if ac is None else f"{ac:.2f}x ({fmt_s(res['a']['seconds'])} vs {fmt_s(res['c']['seconds'])})",
        None if ac is None else ac <= 1.5,
    )
    big = next((s for s in res.get("scale", []) if s["scale"] == 100), None)
    add("scale_100_time", "–" if big is None else fmt_s(big["seconds"]), None if big is None else big["seconds"] <= 90)
    add(
        "scale_100_memory",
        "–"
        if big is None
        else f"{big['peak_rss_mb'] / 1000:.2f} GB (largest process {big['peak_single_process_rss_mb'] / 1000:.2f} GB)",
        None if big is None else big["peak_rss_mb"] * MB <= 3 * GB,
    )
    lin = res.get("linearity")
    if lin:
        m = lin["marginal"]
        value = (
            f"marginal {m[0]['seconds_per_1000_rows'] * 1000:.2f} → {m[-1]['seconds_per_1000_rows'] * 1000:.2f}"
            f" s per 1M rows (ratio {lin['ratio']}, ≤ {LINEAR_TOLERANCE} accepted)"
        )
    add("linear", value if lin else "– (needs three scales)", lin["ok"] if lin else None)
    b = res.get("batch")
    add(
        "batch",
        "–"
        if not b
        else f"{b['throughput_ratio']:.2f}x ({fmt_s(b['jobs_1']['seconds'])} vs "
        f"{fmt_s(b['jobs_2']['seconds'])}, {b['cases']} cases)",
        None if not b else b["throughput_ratio"] >= 1.6,
    )
    size = res.get("report_mb")
    add("report_size", "–" if size is None else f"{size:.2f} MB", None if size is None else size <= 2)
    return rows


def print_table(rows: list[dict]) -> None:
    w1 = max(len(r["target"]) for r in rows)
    w2 = max(len(r["measured"]) for r in rows)
    say(f"{'target':<{w1}}  {'measured':<{w2}}  status")
    say(f"{'-' * w1}  {'-' * w2}  ------")
    for r in rows:
        say(f"{r['target']:<{w1}}  {r['measured']:<{w2}}  {r['status']}")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--scales", default="1,10,100", help="demo-data sizes for the scale runs, comma-separated (default 1,10,100)"
    )
    p.add_argument(
        "--batch-cases", type=int, default=4, metavar="N", help="cases in the batch runs, 0 to skip them (default 4)"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        metavar="N",
        help="runs of a and c each, alternating; the median counts (default 3)",
    )
    p.add_argument("--skip-naive", action="store_true", help="leave out b (papermill + nbconvert, the slowest)")
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="leave out the untimed crmnb run that first fills the disk cache and byte-code",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=HERE / ".data",
        help="where generated demo data is kept between runs (default bench/.data)",
    )
    p.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="write runs' outputs and logs here and keep them (default: a temporary folder, removed)",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=HERE / "results.json",
        metavar="PATH",
        help="where to write all figures (default bench/results.json)",
    )
    args = p.parse_args(argv)
    try:
        args.scale_list = sorted({float(s) for s in args.scales.split(",") if s.strip()})
    except ValueError:
        p.error(f"--scales: expected numbers separated by commas, got {args.scales!r}")
    if any(s <= 0 for s in args.scale_list):
        p.error("--scales: each scale must be positive")
    if args.repeat < 1:
        p.error("--repeat: at least 1")
    return args


def part_a_c(args, ctx: dict, res: dict) -> None:
    """a and c on the demo case, alternating; the demo report's size."""
    demo, work, env, logs = ctx["demo"], ctx["work"], ctx["env"], ctx["logs"]
    say(
        f"\na. crmnb run {DEMO_CASE} on 1x data, end to end with report and workbook; "
        f"c. the floor, the same notebooks' code in one plain Python process ({args.repeat} run(s) each)"
    )
    runs_a, runs_c = [], []
    for i in range(1, args.repeat + 1):
        a = run_a(demo, work / "out" / f"a-{i}", env, logs, f"a-{i}")
        runs_a.append(a)
        say(f"  a. crmnb run, run {i}: {a['seconds']:.1f} s, peak {a['peak_rss_mb']:,} MB")
        c = run_c(demo, work / "out" / f"c-{i}", env, logs, f"c-{i}")
        runs_c.append(c)
        say(f"  c. floor, run {i}: {c['seconds']:.1f} s, peak {c['peak_rss_mb']:,} MB")
    res["a"], res["c"] = median_run(runs_a), median_run(runs_c)
    out = Path(res["a"]["output"])
    res["report_mb"] = round((out / "report.html").stat().st_size / MB, 3)
    res["workbook_mb"] = round((out / "tables.xlsx").stat().st_size / MB, 3)
    say(f"  a. crmnb run: {res['a']['seconds']:.1f} s (median of {res['a']['all_seconds']})")
    say(f"  c. floor:     {res['c']['seconds']:.1f} s (median of {res['c']['all_seconds']})")
    res["ratios"]["a_over_c"] = round(res["a"]["seconds"] / res["c"]["seconds"], 2)
    say(f"  a/c = {res['ratios']['a_over_c']:.2f}: a takes {res['ratios']['a_over_c']:.2f}x the floor's time")
    say(f"  demo report: {res['report_mb']:.2f} MB (tables.xlsx {res['workbook_mb']:.2f} MB)")


def part_b(args, ctx: dict, res: dict) -> None:
    """b, the naive way, and b/a."""
    say("\nb. the naive way: papermill CLI per notebook, then jupyter nbconvert --to html per notebook")
    res["b"] = run_b(ctx["demo"], ctx["work"] / "out" / "b", ctx["env"], ctx["logs"])
    say(
        f"  b. total {res['b']['seconds']:.1f} s (papermill {res['b']['papermill_seconds']:.1f} s, "
        f"nbconvert {res['b']['nbconvert_seconds']:.1f} s)"
    )
    if "a" in res:
        res["ratios"]["b_over_a"] = round(res["b"]["seconds"] / res["a"]["seconds"], 2)
        say(f"  b/a = {res['ratios']['b_over_a']:.1f}: a is {res['ratios']['b_over_a']:.1f}x faster than b")


def part_scale(args, ctx: dict, res: dict, s: float) -> None:
    """crmnb run at scale ``s``, with peak memory and per-step seconds (1x: the median run of a)."""
    folder, rows = ctx["data"][s]
    if s == 1.0 and "a" in res:
        m = res["a"]
        say("  1x: the median run of a")
    else:
        case = write_case(DEMO_CASE, case_folder(ctx["work"] / "cases" / f"scale-{s:g}"), folder)
        say(f"  {s:g}x ({rows:,} rows) …")
        m = run_a(case, ctx["work"] / "out" / f"scale-{s:g}", ctx["env"], ctx["logs"], f"scale-{s:g}")
    entry = {
        "scale": s,
        "rows": rows,
        "seconds": m["seconds"],
        "peak_rss_mb": m["peak_rss_mb"],
        "peak_single_process_rss_mb": m["peak_single_process_rss_mb"],
        "steps": m["steps"],
        "seconds_per_1000_rows": round(m["seconds"] / rows * 1000, 5),
    }
    res["scale"].append(entry)
    say(
        f"  {s:g}x: {m['seconds']:.1f} s, peak {m['peak_rss_mb'] / 1000:.2f} GB summed "
        f"(largest process {m['peak_single_process_rss_mb'] / 1000:.2f} GB), "
        f"{entry['seconds_per_1000_rows'] * 1000:.2f} s per 1M input rows"
    )


def print_scale(res: dict) -> None:
    """Print the scale runs' seconds per step side by side, and the marginal cost per row."""
    if not res["scale"]:
        return
    names = list(dict.fromkeys(k for e in res["scale"] for k in e["steps"]))
    say(f"\n  {'seconds per step':<28}" + "".join(f"{e['scale']:>11g}x" for e in res["scale"]))
    for n in names:
        say(f"  {n:<28}" + "".join(f"{e['steps'].get(n, float('nan')):>12.1f}" for e in res["scale"]))
    say(f"  {'whole run':<28}" + "".join(f"{e['seconds']:>12.1f}" for e in res["scale"]))
    say(f"  {'input rows':<28}" + "".join(f"{e['rows']:>12,}" for e in res["scale"]))
    if res.get("linearity"):
        for m in res["linearity"]["marginal"]:
            say(
                f"  marginal cost {m['from']:g}x → {m['to']:g}x: {m['seconds_per_1000_rows'] * 1000:.2f} s "
                f"per 1M more rows"
            )


def part_batch(args, ctx: dict, res: dict) -> None:
    """crmnb batch of N copies of the demo cases, --jobs 1 then --jobs 2, and the throughput ratio."""
    n = args.batch_cases
    say(f"\nbatch: {n} cases on 1x data, crmnb batch --jobs 1, then --jobs 2")
    folder = case_folder(ctx["work"] / "cases" / "batch")
    for k in range(n):
        src = BATCH_CASES[k % len(BATCH_CASES)]
        write_case(src, folder, ctx["data"][1.0][0], f"{src}_{k + 1}")
    b = {"cases": n}
    for jobs in (1, 2):
        say(f"  --jobs {jobs} …")
        m = measure(
            f"crmnb batch --jobs {jobs}",
            [
                tool("crmnb"),
                "batch",
                str(folder),
                "--jobs",
                str(jobs),
                "--output-root",
                str(ctx["work"] / "out" / f"batch-{jobs}"),
            ],
            ctx["logs"] / f"batch-{jobs}",
            env=ctx["env"],
            echo_steps=False,
        )
        b[f"jobs_{jobs}"] = m
        say(
            f"  --jobs {jobs}: {m['seconds']:.1f} s ({m['seconds'] / n:.1f} s per case), "
            f"peak {m['peak_rss_mb'] / 1000:.2f} GB"
        )
    b["throughput_ratio"] = round(b["jobs_1"]["seconds"] / b["jobs_2"]["seconds"], 2)
    res["batch"] = b
    say(f"  throughput --jobs 2 / --jobs 1: {b['throughput_ratio']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res: dict = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "scales": args.scale_list,
            "batch_cases": args.batch_cases,
            "repeat": args.repeat,
            "naive": not args.skip_naive,
            "warmup": not args.no_warmup,
        },
        "ratios": {},
        "scale": [],
        "errors": [],
    }
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="crmnb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    ctx = {"work": work, "logs": work / "logs"}
    t_start = time.perf_counter()
    status = 0

    def failed(exc: BenchError, fatal: bool = False) -> None:
        say(f"\nbench: FAILED: {exc}" + ("" if fatal else "\n(going on with the rest)"))
        res["errors"].append(str(exc))

    try:
        res["machine"] = mc = machine()
        say(
            f"machine: {mc['cpu']}, {mc['logical_cores']} cores ({mc['physical_cores']} physical), "
            f"{mc['ram_gb']} GB RAM, {mc['os']}"
        )
        say(
            f"         Python {mc['python']}, pandas {mc['pandas']}, numpy {mc['numpy']}, "
            f"papermill {mc['papermill']}, nbconvert {mc['nbconvert']}; crmnb {mc['crmnb']} at {mc['crmnb_commit']}"
        )
        say(f"         load average at start {mc['load_average_at_start']}")
        say(f"work folder: {work}{'' if args.keep else ' (removed at the end)'}")
        try:
            ctx["env"] = env = env_for_runs()
            for name in ("crmnb", "papermill", "jupyter"):
                tool(name)
            say("\ndata")
            ctx["data"] = {
                s: demo_data(args.data_dir.resolve(), s, env, ctx["logs"]) for s in sorted({1.0, *args.scale_list})
            }
            for s, (folder, rows) in ctx["data"].items():
                say(f"  {s:g}x: {rows:,} input rows in {folder}")
            ctx["demo"] = write_case(DEMO_CASE, case_folder(work / "cases" / "demo"), ctx["data"][1.0][0])
        except BenchError as exc:  # nothing can run without the tools and the data
            failed(exc, fatal=True)
            return 1

        demo_ok = True
        if not args.no_warmup:
            say("\nwarm-up: one untimed crmnb run (disk cache, byte-code)")
            try:
                run_a(ctx["demo"], work / "out" / "warmup", env, ctx["logs"], "warmup")
            except BenchError as exc:
                failed(exc)
                demo_ok = False
                say("  the demo case does not run: a, b and c are left out")
        for part in (part_a_c, part_b) if demo_ok else ():
            if part is part_b and args.skip_naive:
                continue
            try:
                part(args, ctx, res)
            except BenchError as exc:
                failed(exc)

        say(f"\nscale: crmnb run {DEMO_CASE} at {', '.join(f'{s:g}x' for s in args.scale_list)}")
        for s in args.scale_list:
            try:
                part_scale(args, ctx, res, s)
            except BenchError as exc:
                failed(exc)
        res["linearity"] = linearity(res["scale"])
        print_scale(res)

        if args.batch_cases > 0:
            try:
                part_batch(args, ctx, res)
            except BenchError as exc:
                failed(exc)
        status = 1 if res["errors"] else 0
    except KeyboardInterrupt:
        say("\nbench: interrupted")
        res["errors"].append("interrupted")
        status = 130
    finally:
        res["total_seconds"] = round(time.perf_counter() - t_start, 1)
        res["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
        if "machine" in res:
            res["targets"] = targets(res)
            say(
                f"\ntargets (issue 7), measured {res['started']} on {res['machine']['cpu']}, "
                f"{res['machine']['logical_cores']} cores, {res['machine']['ram_gb']} GB RAM; "
                f"load average at start {res['machine']['load_average_at_start']}, at end {res['load_average_at_end']}"
            )
            print_table(res["targets"])
        for err in res["errors"]:
            say(f"\nbench: FAILED: {err.splitlines()[0]}")
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        say(f"\nall figures: {args.json}  (benchmark took {res['total_seconds'] / 60:.1f} min)")
        if args.keep:
            say(f"outputs and logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
