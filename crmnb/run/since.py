"""What changed since the case's last run, and why: built with the report, kept with the run record.

The report of a run calls :func:`since_last_run`: it measures the goal metric's units of this run
(kept for the next), finds the latest earlier successful run in ``runs/`` and compares: the goal
KPI and the headline KPIs, the verdict, the problems found, the fingerprint, and the goal KPI's
change source by source (:mod:`crmnb.analysis.why_changed`).
"""

from __future__ import annotations

import json

from crmnb.analysis.why_changed import attribute, data_end, goal_units
from crmnb.handoffs import Tables
from crmnb.params.files import case_settings
from crmnb.run.history import SINCE, UNITS_HANDOFF, case_folder, previous_run, public_settings, read_json, read_units


def clean_tables(ws) -> Tables:
    """Return the run's cleaned tables that were written (but the receipts), each read only if it must be.

    The goal metric's units are queried from the files where the metric can be (:mod:`crmnb.analysis.metric_sql`):
    a large case's tables are not all read into memory to build the report.
    """
    tables = ws.tables("clean")
    for name in list(tables):
        if name == "receipts" or not (ws.data / "clean" / f"{name}.parquet").is_file():
            del tables[name]
    return tables


def basis(case, tables: dict) -> dict:
    """Return what the next run needs to compare with this one: metric, window, thresholds, data end, settings."""
    try:
        settings = public_settings(case_settings(case.source_file)) if case.source_file else {}
    except Exception:  # a case built in memory (tests) has no file to read
        settings = {}
    return {
        "metric": case.goal.metric,
        "department": case.department,
        "window": [str(d) for d in case.windows["after"]],
        "opts": {"conversion_window_days": case.thresholds.conversion_window_days},
        "data_end": data_end(tables),
        "settings": settings,
    }


def _settings_changed(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Return the settings whose values differ, as dotted keys; where the data is and its span are not settings."""
    out = []
    for key in sorted(set(old) | set(new)):
        name = f"{prefix}{key}"
        if name in ("data", "period.end", "notes", "title"):
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _settings_changed(a, b, f"{name}.")
        elif a != b:
            out.append(name)
    return out


def _kpi_changes(old: list[dict], new: list[dict]) -> list[dict]:
    was = {k["metric"]: k.get("after") for k in old or []}
    return [
        {"metric": k["metric"], "was": was[k["metric"]], "now": k.get("after")}
        for k in new
        if k["metric"] in was and was[k["metric"]] is not None and k.get("after") is not None
    ]


def compare(prev: dict, now: dict, tables: dict, code_changed: bool) -> dict:
    """Return the since-last-run comparison of the run ``now`` (its snapshot and basis) with the record ``prev``."""
    old_basis = prev.get("basis") or {}
    old = {**old_basis, "now": prev.get("now"), "units": read_units(prev)}
    att = None
    if old_basis.get("window") and prev.get("now") is not None:
        att = attribute(old, tables, now["basis"], code_changed)
    was = {p["problem"] for p in prev.get("problems") or []}
    found = {p["problem"] for p in now.get("problems") or []}
    return {
        "previous": {k: prev.get(k) for k in ("started", "now", "interval", "verdict", "headline")},
        "now": now.get("now"),
        "verdict": now.get("verdict"),
        "verdict_changed": prev.get("verdict") != now.get("verdict"),
        "kpis": _kpi_changes(prev.get("kpis") or [], now.get("kpis") or []),
        "problems_new": sorted(found - was),
        "problems_gone": sorted(was - found),
        "settings_changed": _settings_changed(old_basis.get("settings") or {}, now["basis"].get("settings") or {}),
        "code_changed": code_changed,
        "attribution": att,
    }


def since_last_run(case, ws) -> dict | None:
    """Measure this run's goal units, write them and the comparison with the run before; return the comparison."""
    from crmnb.run.history import snapshot

    folder = case_folder(ws.root, case.case_id)
    tables = clean_tables(ws)
    here = basis(case, tables)
    units = goal_units(tables, case.goal.metric, case.windows["after"], case.department, here["opts"])
    if units is not None:
        (ws.data / UNITS_HANDOFF).parent.mkdir(parents=True, exist_ok=True)
        units.to_parquet(ws.data / UNITS_HANDOFF, index=False)
    current = read_json(folder / "run.json") or {}  # this run's record, as it started
    prev = previous_run(folder, current.get("started"))
    since = None
    if prev is not None:
        code = (prev.get("fingerprint") or {}).get("code") != (current.get("fingerprint") or {}).get("code")
        since = compare(prev, {**snapshot(ws.data), "basis": here}, tables, code)
    path = ws.data / f"{SINCE}.json"
    path.write_text(json.dumps({"basis": here, "since": since}, ensure_ascii=False, default=str), encoding="utf-8")
    return since
