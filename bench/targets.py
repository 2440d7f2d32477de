"""The benchmark's targets (issue 15, and those of issue 7 that still apply), each with its measured figure
and met / NOT MET; a target whose figures were not taken says why it is "not measured"."""

from __future__ import annotations

from bench.measuring import GB, MB, say

TARGETS = {
    "scale_1_time": "1x end to end no slower than 13.5 s",
    "a_vs_b": "1x at least 4x faster than papermill + nbconvert",
    "a_vs_c": "1x within 1.5x of the floor",
    "scale_100_time": "100x end to end at most 60 s",
    "scale_100_memory": "100x peak memory of the whole process tree at most 2 GB",
    "reference": "data steps within 1.3x of the DuckDB reference",
    "reference_figures": "the reference's figures agree with crmnb's hand-offs",
    "scale_1000_memory": "1000x completes with peak memory at most 4 GB",
    "memory_flat": "memory per million rows roughly flat, 10x to 1000x",
    "linear": "cost grows no faster than linearly beyond start-up",
    "batch": "--jobs 2 at least 1.6x the throughput of --jobs 1",
    "report_size": "demo report at most 2 MB",
}
LIMITS = {
    "scale_1_seconds": 13.5,
    "b_over_a": 4.0,
    "a_over_c": 1.5,
    "scale_100_seconds": 60.0,
    "scale_100_gb": 2.0,
    "reference_ratio": 1.3,
    "scale_1000_gb": 4.0,
    "batch_ratio": 1.6,
    "report_mb": 2.0,
}
LINEAR_TOLERANCE = 1.25
"""Largest accepted ratio of the marginal cost per row at the largest scales to that at the smallest."""
MEMORY_FLAT_TOLERANCE = 1.25
"""Largest accepted ratio of peak memory per million input rows at any scale above 10x to that at 10x.

"Roughly flat" allows a quarter for sampling and the allocator; a figure that falls with scale (fixed
start-up memory spread over more rows, or an engine working out of core) is within the target, since
what it guards against is memory growing faster than the data."""
REFERENCE_SCALE = 100.0
"""The scale at which the data steps are held against the reference (the issue's side by side)."""


def fmt_s(x: float | None) -> str:
    """Return seconds as '12.3 s', or a dash when not measured."""
    return "–" if x is None else f"{x:.1f} s"


def fmt_gb(mb: float) -> str:
    """Return megabytes as gigabytes with two decimals."""
    return f"{mb / 1000:.2f} GB"


def verdict(ok: bool | None, why: str = "") -> str:
    """Return 'met', 'NOT MET' or 'not measured' (with the reason when one is given)."""
    if ok is None:
        return f"not measured: {why}" if why else "not measured"
    return "met" if ok else "NOT MET"


def linearity(scale_runs: list[dict]) -> dict | None:
    """Return the marginal seconds per 1,000 rows between consecutive completed scales, and the last over the first.

    The fixed start-up (process and kernel start, imports) cancels out of a difference, so a
    ratio at most 1 means no worse than linear; ``LINEAR_TOLERANCE`` allows for noise.
    """
    runs = sorted((r for r in scale_runs if r.get("completed", True)), key=lambda r: r["rows"])
    if len(runs) < 3:
        return None
    marginal = []
    for lo, hi in zip(runs, runs[1:]):
        per = (hi["seconds"] - lo["seconds"]) / (hi["rows"] - lo["rows"]) * 1000
        marginal.append({"from": lo["scale"], "to": hi["scale"], "seconds_per_1000_rows": round(per, 5)})
    first, last = marginal[0]["seconds_per_1000_rows"], marginal[-1]["seconds_per_1000_rows"]
    ratio = (last / first) if first > 0 else None
    return {
        "marginal": marginal,
        "ratio": None if ratio is None else round(ratio, 2),
        "ok": (last <= 0) if ratio is None else ratio <= LINEAR_TOLERANCE,
    }


def memory_flatness(scale_runs: list[dict]) -> dict | None:
    """Return peak MB per million input rows from 10x up, and the largest over the 10x figure.

    A run stopped by the watchdog gives only a lower bound: it fails the target when that bound
    already exceeds the tolerance, and is otherwise left out (and named).
    """
    runs = sorted((r for r in scale_runs if r["scale"] >= 10), key=lambda r: r["scale"])
    base = next((r for r in runs if r.get("completed", True)), None)
    if base is None:
        return None
    base_mb = base["peak_rss_mb"] / (base["rows"] / 1e6)
    ratios, stopped = {}, []
    for r in runs:
        per = r["peak_rss_mb"] / (r["rows"] / 1e6)
        if r.get("completed", True):
            ratios[r["scale"]] = round(per / base_mb, 2)
        else:
            stopped.append({"scale": r["scale"], "at_least_ratio": round(per / base_mb, 2)})
    if len(ratios) < 2 and not stopped:
        return None
    worst = max(ratios.values())
    over = [s for s in stopped if s["at_least_ratio"] > MEMORY_FLAT_TOLERANCE]
    return {
        "base_scale": base["scale"],
        "base_mb_per_million_rows": round(base_mb, 1),
        "ratios": ratios,
        "stopped": stopped,
        "worst_ratio": worst,
        "ok": worst <= MEMORY_FLAT_TOLERANCE and not over,
    }


def scale_entry(res: dict, s: float) -> dict | None:
    """Return the scale run at ``s``, if it was measured."""
    return next((e for e in res.get("scale", []) if e["scale"] == s), None)


def stopped_text(e: dict) -> str:
    """Return how far a run stopped by the watchdog got, and at what memory."""
    return (
        f"stopped by the watchdog at {fmt_gb(e['peak_rss_mb'])} (cap {fmt_gb(e['memory_cap_mb'])}) "
        f"after {fmt_s(e['seconds'])}, in {e.get('reached') or 'its start-up'}"
    )


def row(key: str, measured: str, ok: bool | None, why: str = "") -> dict:
    """Return one line of the targets table."""
    return {"target": TARGETS[key], "key": key, "measured": measured, "ok": ok, "status": verdict(ok, why)}


def one_x_targets(res: dict) -> list[dict]:
    """Return the 1x targets: its time, and its speed against papermill + nbconvert and the floor."""
    a = res.get("a")
    no_a = "crmnb run at 1x did not run"
    rows = [
        row(
            "scale_1_time",
            "–" if a is None else f"{fmt_s(a['seconds'])} (median of {a.get('all_seconds', [a['seconds']])})",
            None if a is None else a["seconds"] <= LIMITS["scale_1_seconds"],
            no_a,
        )
    ]
    r = res.get("ratios", {})
    ab, ac = r.get("b_over_a"), r.get("a_over_c")
    rows.append(
        row(
            "a_vs_b",
            "–" if ab is None else f"{ab:.1f}x faster ({fmt_s(res['b']['seconds'])} vs {fmt_s(a['seconds'])})",
            None if ab is None else ab >= LIMITS["b_over_a"],
            no_a if a is None else "papermill + nbconvert left out (--skip-naive)" if "b" not in res else "",
        )
    )
    rows.append(
        row(
            "a_vs_c",
            "–" if ac is None else f"{ac:.2f}x ({fmt_s(a['seconds'])} vs {fmt_s(res['c']['seconds'])})",
            None if ac is None else ac <= LIMITS["a_over_c"],
            no_a,
        )
    )
    return rows


def hundred_x_targets(res: dict) -> list[dict]:
    """Return the 100x targets: end to end seconds and peak memory of the whole tree."""
    big = scale_entry(res, 100.0)
    if big is None:
        why = "100x not in this run"
        return [row("scale_100_time", "–", None, why), row("scale_100_memory", "–", None, why)]
    if not big["completed"]:
        text = stopped_text(big)
        return [row("scale_100_time", text, False), row("scale_100_memory", text, False)]
    memory = f"{fmt_gb(big['peak_rss_mb'])} (largest process {fmt_gb(big['peak_single_process_rss_mb'])})"
    return [
        row("scale_100_time", fmt_s(big["seconds"]), big["seconds"] <= LIMITS["scale_100_seconds"]),
        row("scale_100_memory", memory, big["peak_rss_mb"] * MB <= LIMITS["scale_100_gb"] * GB),
    ]


def reference_target(res: dict) -> dict:
    """Return the data steps against the reference, at 100x (or the largest scale both ran, named)."""
    if not res.get("reference_found"):
        return row("reference", "–", None, f"reference not found at {res.get('reference_dir')}")
    runs = [e for e in res.get("scale", []) if e.get("reference")]
    if not runs:
        return row("reference", "–", None, "no scale run with the reference")
    e = scale_entry(res, REFERENCE_SCALE)
    e = e if e in runs else max(runs, key=lambda x: x["scale"])
    at = f"at {e['scale']:g}x" + ("" if e["scale"] == REFERENCE_SCALE else f" ({REFERENCE_SCALE:g}x not in this run)")
    if not e["completed"]:
        return row("reference", f"{at}: crmnb {stopped_text(e)}", False)
    ours, theirs = e["data_steps"]["seconds"], e["reference"].get("data_steps_seconds")
    if ours is None:
        return row("reference", at, None, "crmnb's data steps not found: " + "; ".join(e["data_steps"]["missing"]))
    if theirs is None:
        return row("reference", at, None, f"the reference did not finish (see {e['reference']['stderr']})")
    ratio = ours / theirs
    text = f"{ratio:.2f}x {at} (crmnb {fmt_s(ours)}, reference {fmt_s(theirs)}, {e['reference']['threads']} threads)"
    return row("reference", text, ratio <= LIMITS["reference_ratio"])


def figures_target(res: dict) -> dict:
    """Return how many of the reference's figures agree with crmnb's hand-offs, over every scale compared."""
    if not res.get("reference_found"):
        return row("reference_figures", "–", None, f"reference not found at {res.get('reference_dir')}")
    done = [e for e in res.get("scale", []) if e.get("compare")]
    if not done:
        return row("reference_figures", "–", None, "nothing compared")
    parts, ok = [], True
    for e in done:
        c = e["compare"]
        parts.append(
            f"{c['agree']} of {c['figures']} at {e['scale']:g}x" + (" (compare failed)" if "error" in c else "")
        )
        ok = ok and "error" not in c and c["agree"] == c["figures"] and c["figures"] > 0
    return row("reference_figures", ", ".join(parts), ok)


def thousand_x_target(res: dict) -> dict:
    """Return the 1000x target: the run completes with the whole tree's peak at most 4 GB."""
    e = scale_entry(res, 1000.0)
    if e is None:
        return row("scale_1000_memory", "–", None, "1000x not in this run (--scales 1,10,100,1000)")
    if not e["completed"]:
        return row("scale_1000_memory", stopped_text(e), False)
    text = f"completed in {fmt_s(e['seconds'])}, peak {fmt_gb(e['peak_rss_mb'])}"
    return row("scale_1000_memory", text, e["peak_rss_mb"] * MB <= LIMITS["scale_1000_gb"] * GB)


def flat_target(res: dict) -> dict:
    """Return memory per million rows from 10x up against its 10x figure."""
    flat = res.get("memory_flatness")
    if not flat:
        return row("memory_flat", "–", None, "needs 10x and a larger scale")
    per = ", ".join(f"{s:g}x {r:.2f}" for s, r in flat["ratios"].items())
    text = f"per 1M rows over the {flat['base_scale']:g}x figure: {per} (≤ {MEMORY_FLAT_TOLERANCE} accepted)"
    for s in flat["stopped"]:
        text += f"; {s['scale']:g}x stopped by the watchdog, at least {s['at_least_ratio']:.2f}"
    if 1000.0 not in flat["ratios"] and not flat["stopped"]:
        text += "; 1000x not in this run"
    return row("memory_flat", text, flat["ok"])


def other_targets(res: dict) -> list[dict]:
    """Return the targets of issue 7 that still apply: linear cost, batch throughput, report size."""
    lin = res.get("linearity")
    text = "–"
    if lin:
        m = lin["marginal"]
        text = (
            f"marginal {m[0]['seconds_per_1000_rows'] * 1000:.2f} → {m[-1]['seconds_per_1000_rows'] * 1000:.2f}"
            f" s per 1M rows (ratio {lin['ratio']}, ≤ {LINEAR_TOLERANCE} accepted)"
        )
    b = res.get("batch")
    batch = "–"
    if b:
        batch = (
            f"{b['throughput_ratio']:.2f}x ({fmt_s(b['jobs_1']['seconds'])} vs "
            f"{fmt_s(b['jobs_2']['seconds'])}, {b['cases']} cases)"
        )
    size = res.get("report_mb")
    return [
        row("linear", text, lin["ok"] if lin else None, "needs three completed scales"),
        row("batch", batch, None if not b else b["throughput_ratio"] >= LIMITS["batch_ratio"], "no batch runs"),
        row(
            "report_size",
            "–" if size is None else f"{size:.2f} MB",
            None if size is None else size <= LIMITS["report_mb"],
            "crmnb run at 1x did not run",
        ),
    ]


def targets(res: dict) -> list[dict]:
    """Return each target with its measured figure and whether it is met (None: not measured)."""
    return [
        *one_x_targets(res),
        *hundred_x_targets(res),
        reference_target(res),
        figures_target(res),
        thousand_x_target(res),
        flat_target(res),
        *other_targets(res),
    ]


def print_table(rows: list[dict]) -> None:
    """Print the targets as a table: target, measured figure, status."""
    w1 = max(len(r["target"]) for r in rows)
    w2 = max(len(r["measured"]) for r in rows)
    say(f"{'target':<{w1}}  {'measured':<{w2}}  status")
    say(f"{'-' * w1}  {'-' * w2}  ------")
    for r in rows:
        say(f"{r['target']:<{w1}}  {r['measured']:<{w2}}  {r['status']}")
