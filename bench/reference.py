"""The DuckDB reference beside crmnb: find its folder, run it on a scale's data, and check its figures
against crmnb's hand-offs. Nothing of the reference is kept in this project: its scripts are run from
where they are (``--reference DIR``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.measuring import Measured, measure

SCRIPT = "duckdb_reference.py"
COMPARE = "compare_reference.py"
OUT_OF_CORE_ABOVE = 100
"""Scales above this run the reference out of core (its README's way to 1000x)."""
OUT_OF_CORE_LIMIT = "2GB"
FIGURE = re.compile(r"^\s+(ok|DIFF) (.*)$")


def default_folder(repo: Path) -> Path:
    """Return ``../shared/bench`` beside the project checkout (for a git worktree: beside its main checkout)."""
    beside = repo.parent / "shared" / "bench"
    if (beside / SCRIPT).is_file():
        return beside
    try:
        common = subprocess.run(
            ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        common = ""
    if common:
        main_beside = Path(common).parent.parent / "shared" / "bench"
        if (main_beside / SCRIPT).is_file():
            return main_beside
    return beside


def found(folder: Path | None) -> Path | None:
    """Return the reference folder when its script is there, else None."""
    return folder if folder is not None and (folder / SCRIPT).is_file() else None


def reference_command(folder: Path, data: Path, out: Path, threads: int, scale: float) -> list[str]:
    """Return the command line of the reference on ``data``, out of core above ``OUT_OF_CORE_ABOVE``x."""
    cmd = [sys.executable, str(folder / SCRIPT), str(data), str(out), "--threads", str(threads)]
    if scale > OUT_OF_CORE_ABOVE:
        cmd += ["--memory-limit", OUT_OF_CORE_LIMIT, "--temp", str(out / "spill")]
    return cmd


def run_reference(
    folder: Path, data: Path, out: Path, threads: int, scale: float, log: Path, env: dict, cap: float | None
) -> Measured:
    """Run the reference on one scale's data; its data steps are the seconds its own results.json records.

    ``data_steps_seconds`` is the reference's 'TOTAL (in script)': from after its imports to the end
    of RFM (intake, cleaning, receipts, metrics, funnel, RFM), as crmnb's step timings leave out
    process start too.
    """
    out.mkdir(parents=True, exist_ok=True)
    m = measure(
        f"reference at {scale:g}x",
        reference_command(folder, data, out, threads, scale),
        log,
        env=env,
        echo_steps=False,
        cap_bytes=cap,
    )
    m["threads"] = threads
    results = out / "results.json"
    if m["returncode"] == 0 and results.is_file():
        own = json.loads(results.read_text(encoding="utf-8"))
        m["data_steps_seconds"] = own.get("times", {}).get("TOTAL (in script)")
        m["parts"] = own.get("times", {})
        m["own_peak_rss_mb"] = own.get("peak_rss_mb")
    else:
        m["data_steps_seconds"] = None
    return m


def compare(folder: Path, ref_out: Path, crmnb_data: Path, log: Path, env: dict) -> dict:
    """Run compare_reference.py and count the figures that agree; name those that differ."""
    m = measure(
        "compare_reference.py",
        [sys.executable, str(folder / COMPARE), str(ref_out), str(crmnb_data)],
        log,
        env=env,
        echo_steps=False,
        check=False,
    )
    lines = Path(m["stdout"]).read_text(encoding="utf-8", errors="replace").splitlines()
    figures = [FIGURE.match(line) for line in lines]
    figures = [f for f in figures if f]
    result = {
        "figures": len(figures),
        "agree": sum(f.group(1) == "ok" for f in figures),
        "differ": [f.group(2) for f in figures if f.group(1) == "DIFF"],
        "returncode": m["returncode"],
    }
    if m["returncode"] != 0:
        tail = Path(m["stderr"]).read_text(encoding="utf-8", errors="replace").strip().splitlines()
        result["error"] = tail[-1] if tail else f"exit status {m['returncode']}"
    return result


def drop_tables(ref_out: Path) -> None:
    """Remove the reference's Parquet tables and spill files, keeping its results (disk at large scales)."""
    for sub in ("intake", "clean", "spill"):
        shutil.rmtree(ref_out / sub, ignore_errors=True)
    for f in ref_out.glob("*.duckdb*"):
        f.unlink(missing_ok=True)
