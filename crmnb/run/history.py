"""The run history of a case: a small dated record of every run under ``outputs/<case_id>/runs/``.

Each run keeps ``runs/<started>/record.json`` (its fingerprint, settings without secrets, the goal
and headline KPIs with their intervals, the verdict, the problems and actions, what changed since
the run before), ``goal_units.parquet`` (the goal metric's units: a hashed key, the month, the value;
no CRM id, no name) and a copy of its report. No table of the data is copied. The report of the
next run reads the latest record to say what changed since, and why.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

RUNS = "runs"
RECORD = "record.json"
UNITS = "goal_units.parquet"
SINCE = "report/since_last_run"
"""The hand-off (JSON, under the case's ``data/``) of what changed since the run before."""
UNITS_HANDOFF = "report/goal_units.parquet"
STAGE_PREFIX = ".run-"


def case_folder(root: Path, case_id: str) -> Path:
    """Return the case's own folder, also for a run writing into its staging folder ``.run-<case>-<pid>``."""
    root = Path(root)
    return (root.parent if root.name.startswith(STAGE_PREFIX) else root) / case_id


def runs_dir(folder: Path) -> Path:
    """Return the folder of a case's run records."""
    return Path(folder) / RUNS


def _stamp(iso: str) -> str:
    """Return a record folder's name from a run's start time: ``2026-12-01T16-47-39``."""
    return iso[:19].replace(":", "-")


def list_runs(folder: Path) -> list[dict]:
    """Return every kept run record of a case, oldest first, each with its folder as ``_dir``."""
    out = []
    base = runs_dir(folder)
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        try:
            rec = json.loads((d / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict):
            out.append({**rec, "_dir": str(d)})
    return sorted(out, key=lambda r: str(r.get("started", "")))


def previous_run(folder: Path, before: str | None) -> dict | None:
    """Return the latest successful run that started before ``before`` (None: the latest of all)."""
    ok = [r for r in list_runs(folder) if r.get("status") == "ok"]
    if before:
        ok = [r for r in ok if str(r.get("started", "")) < before]
    return ok[-1] if ok else None


def read_json(path: Path) -> Any:
    """Return a JSON file's content, or None when it is absent or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _table(path: Path, columns: list[str]) -> list[dict]:
    """Return the given columns of a hand-off table as records ([] when it is absent)."""
    if not path.is_file():
        return []
    df = pd.read_parquet(path)
    keep = [c for c in columns if c in df]
    return json.loads(df[keep].to_json(orient="records", date_format="iso", force_ascii=False))


def snapshot(data: Path) -> dict:
    """Return what a run found, from its hand-offs in ``data``: the goal, KPIs, verdict, problems, actions."""
    summary = read_json(data / "report" / "summary.json") or {}
    kpis = _table(data / "report" / "kpi_compare.parquet", ["metric", "before", "after", "ci_low", "ci_high"])
    return {
        "goal": summary.get("goal"),
        "windows": summary.get("windows"),
        "before": summary.get("before"),
        "now": summary.get("now"),
        "interval": summary.get("interval"),
        "verdict": summary.get("verdict"),
        "headline": summary.get("headline"),
        "kpis": kpis,
        "problems": _table(data / "plan" / "problems.parquet", ["kind", "problem"]),
        "actions": _table(
            data / "report" / "tracking.parquet",
            ["action", "measure", "owner", "deadline", "status", "start", "verdict", "verdict_key", "overdue"],
        ),
    }


def public_settings(settings: dict | None) -> dict:
    """Return a case's settings without where its data is (a path, a database URL that may hold secrets)."""

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return "(not kept)" if isinstance(v, str) and "://" in v else v

    return {k: walk(v) for k, v in (settings or {}).items() if k != "data"}


def keep_run(folder: Path, record: dict) -> Path | None:
    """Keep the record of a run that has just ended under ``runs/``; never fails the run (None when it cannot)."""
    try:
        return _keep(Path(folder), record)
    except Exception:  # the history is a convenience: a run that worked stays a run that worked
        return None


def _keep(folder: Path, record: dict) -> Path:
    """Write ``runs/<started>/`` for the run ``record``: the record, the goal's units and the report."""
    started = str(record.get("started") or "")
    dest = runs_dir(folder) / _stamp(started or "unknown")
    dest.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    rec = {k: v for k, v in record.items() if k not in ("pid", "host", "error")}
    rec["error"] = record.get("reason") or str(record.get("error") or "")[:500] or None
    if record.get("status") == "ok":
        rec.update(snapshot(data))
        since = read_json(data / f"{SINCE}.json") or {}
        rec["basis"], rec["since_last_run"] = since.get("basis"), since.get("since")
        for src, name in ((data / UNITS_HANDOFF, UNITS), (folder / "report.html", "report.html")):
            if src.is_file():
                shutil.copyfile(src, dest / name)
    tmp = dest / f".{RECORD}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(rec, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, dest / RECORD)
    return dest


def read_units(rec: dict) -> pd.DataFrame | None:
    """Return the goal metric's units a run record kept, or None."""
    path = Path(rec.get("_dir", "")) / UNITS
    return pd.read_parquet(path) if path.is_file() else None


def history_table(folder: Path, lang: str = "en") -> str:
    """Return the case's runs as a text table, oldest first: when, status, the goal KPI, verdict, change, report."""
    from crmnb.present.words import fmt_value

    rows = [("started", "status", "goal KPI (95% interval)", "verdict", "since last", "record")]
    last = None
    for r in list_runs(folder):
        unit = (r.get("goal") or {}).get("unit", "")
        now, ci = r.get("now"), r.get("interval")
        kpi = (
            ""
            if now is None
            else fmt_value(now, unit) + (f" ({fmt_value(ci[0], unit)}–{fmt_value(ci[1], unit)})" if ci else "")
        )
        moved = ""
        if now is not None and last is not None:
            moved = f"{(now - last) * (100 if unit == 'rate' else 1):+.1f}" + (" pp" if unit == "rate" else "")
        last = now if now is not None else last
        status = r.get("status", "") + (f": {r['error']}"[:60] if r.get("status") != "ok" and r.get("error") else "")
        rows.append(
            (str(r.get("started", ""))[:16].replace("T", " "), status, kpi, r.get("verdict") or "", moved, r["_dir"])
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
