"""The index page of every case under an output root: status, goal, verdict, links."""

from __future__ import annotations

import html
import json
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any

from crmnb.params.model import GOAL_METRICS
from crmnb.run.records import INDEX_FILE, LOG_FILE, _now, _when, _write_atomic, read_record

# --------------------------------------------------------------------------- the index page
_CSS = """
body{font:14px/1.45 %(stack)s;
margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} p.meta{color:#666;margin-top:0}
table{border-collapse:collapse;width:100%} th,td{border-bottom:1px solid #ddd;padding:.45em .6em;
text-align:left;vertical-align:top} th{background:#f4f5f7;font-weight:600} td.num{text-align:right}
small{color:#666} .err{color:#a33;font-size:.9em;white-space:pre-wrap;max-width:28em;display:block}
.b{display:inline-block;padding:.05em .55em;border-radius:.8em;font-size:.9em;background:#eee}
.ok,.reached{background:#dff3e4;color:#17612c}.improving{background:#e3eefc;color:#1d4f91}
.failed,.worse{background:#fbe3e3;color:#8e1c1c}.timeout{background:#fdf0d5;color:#7a5200}
.flat{background:#eee;color:#444}
"""


def _fmt(value: Any, unit: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if unit == "rate":
        return f"{v:.1%}"
    if unit in ("hours", "days"):
        return f"{v:,.1f} {'h' if unit == 'hours' else 'd'}"
    if unit == "CNY":
        return f"{v:,.0f} CNY"
    return f"{v:,.2f}"


def _notebook_settings(folder: Path) -> dict:
    """Return the case settings an executed notebook recorded (for outputs without a run.json)."""
    for nb in sorted((folder / "notebooks").glob("*.ipynb")):
        try:
            meta = json.loads(nb.read_text(encoding="utf-8")).get("metadata", {})
            case = meta.get("papermill", {}).get("parameters", {}).get("case")
        except (OSError, ValueError):
            continue
        if isinstance(case, dict):
            return case
    return {}


def case_entry(folder: Path) -> dict | None:
    """Return what the index shows for one output folder, or None when it holds no case run."""
    rec = read_record(folder)
    has_outputs = (folder / "report.html").is_file() or (folder / "notebooks").is_dir()
    if rec is None and not has_outputs:
        return None
    rec = rec or {}
    settings = _notebook_settings(folder) if not rec.get("goal") else {}
    goal = dict(rec.get("goal") or settings.get("goal") or {})
    if goal.get("metric") in GOAL_METRICS:
        goal.setdefault("unit", GOAL_METRICS[goal["metric"]])
    summary = None
    try:
        summary = json.loads((folder / "data" / "report" / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    earlier = False
    if summary and rec.get("status") not in (None, "ok") and rec.get("started"):
        try:
            mtime = (folder / "data" / "report" / "summary.json").stat().st_mtime
            earlier = mtime < datetime.fromisoformat(rec["started"]).timestamp()
        except (OSError, ValueError):
            pass
    return {
        "case_id": rec.get("case_id", folder.name),
        "folder": folder.name,
        "title": rec.get("title") or settings.get("title") or "",
        "department": rec.get("department") or settings.get("department") or "",
        "goal": goal,
        "summary": summary if isinstance(summary, dict) else None,
        "summary_earlier": earlier,
        "status": rec.get("status"),
        "seconds": rec.get("seconds"),
        "finished": rec.get("finished"),
        "error": rec.get("error"),
        "where": rec.get("where"),
        "reason": rec.get("reason"),
        "notebook": rec.get("notebook"),
    }


def _link(folder: Path, rel: str, label: str) -> str:
    if not (folder / rel).is_file():
        return ""
    href = "/".join(_quote(part) for part in (folder.name, *rel.split("/")))
    return f'<a href="{href}">{html.escape(label)}</a>'


def _quote(part: str) -> str:
    from urllib.parse import quote

    return html.escape(quote(part), quote=True)


def _goal_text(goal: dict, summary: dict | None) -> str:
    if not goal.get("metric"):
        return "—"
    sgoal = (summary or {}).get("goal") or {}
    name = sgoal.get("name") if sgoal.get("metric") == goal["metric"] else None
    name = name or goal["metric"].replace("_", " ").capitalize()
    unit = goal.get("unit", "")
    by = f" <small>by {html.escape(str(goal['deadline']))}</small>" if goal.get("deadline") else ""
    return (
        f"{html.escape(name)}: {html.escape(_fmt(goal.get('baseline'), unit))} → "
        f"{html.escape(_fmt(goal.get('target'), unit))}{by}"
    )


def render_index(root: Path, entries: list[dict]) -> str:
    """Return the index page's HTML: one row per case, escaped text, relative links, no scripts."""
    rows = []
    for e in entries:
        folder = root / e["folder"]
        s = e["summary"]
        unit = e["goal"].get("unit", "")
        if s and "verdict" in s:
            now = f"{_fmt(s.get('before'), unit)} → {_fmt(s.get('now'), unit)}"
            v = str(s["verdict"])
            verdict = (
                f'<span class="b {html.escape(v)}">{html.escape(v)}</span><br><small>{html.escape(now)}'
                + (" (earlier run)" if e["summary_earlier"] else "")
                + "</small>"
            )
        else:
            verdict = "—"
        st = e["status"] or "—"
        status = f'<span class="b {html.escape(st)}">{html.escape(st)}</span>'
        if e["error"] and st != "ok":
            why = (
                f"{e['where']}: {e['reason']}"
                if e["where"] and e["reason"]
                else (e["reason"] or str(e["error"]).strip().splitlines()[0])
            )
            status += f'<span class="err">{html.escape(why[:300])}</span>'
        secs = e["seconds"]
        run = f"{float(secs):,.0f} s" if isinstance(secs, (int, float)) else "—"
        if e["finished"]:
            run += f"<br><small>{html.escape(_when(e['finished']))}</small>"
        earlier = " (earlier run)" if st in ("failed", "timeout") else ""  # a failed run writes neither
        links = [_link(folder, "report.html", "report" + earlier), _link(folder, "tables.xlsx", "tables" + earlier)]
        if st in ("failed", "timeout") and e["notebook"]:
            links.append(_link(folder, e["notebook"], "failed notebook"))
        links.append(_link(folder, LOG_FILE, "log"))
        title = f"<strong>{html.escape(e['title'])}</strong><br>" if e["title"] else ""
        rows.append(
            f"<tr><td>{title}<small>{html.escape(e['case_id'])}</small></td>"
            f"<td>{html.escape(e['department']) or '—'}</td><td>{_goal_text(e['goal'], s)}</td>"
            f"<td>{verdict}</td><td>{status}</td><td class=num>{run}</td>"
            f"<td>{' · '.join(x for x in links if x) or '—'}</td></tr>"
        )
    counts = {k: sum(1 for e in entries if e["status"] == k) for k in ("ok", "failed", "timeout")}
    meta = (
        f"{len(entries)} case{'s' if len(entries) != 1 else ''}: {counts['ok']} ok, {counts['failed']} failed, "
        f"{counts['timeout']} timed out · written {_when(_now())}"
    )
    body = "\n".join(rows) or "<tr><td colspan=7>No case has run yet.</td></tr>"
    from crmnb.present.fonts import FONT_STACK, cjk_font_face

    face = cjk_font_face(body)  # department names and goals may be Chinese; embed just those glyphs
    css = _CSS.replace("%(stack)s", FONT_STACK)  # the embedded face first, as in the report
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>CRM cases</title><style>{face}{css}</style></head><body>\n"
        f"<h1>CRM cases</h1><p class=meta>{html.escape(meta)}</p>\n"
        "<table><thead><tr><th>Case</th><th>Department</th><th>Goal (baseline → target)</th>"
        "<th>Verdict <small>(before → now)</small></th><th>Status</th><th>Run time</th><th>Files</th></tr></thead>"
        f"<tbody>\n{body}\n</tbody></table>\n</body></html>\n"
    )


def write_index(output_root: str | Path) -> Path:
    """Write ``<output_root>/index.html`` listing every case found there, and return its path."""
    root = Path(output_root)
    entries = (
        [e for f in sorted(root.iterdir()) if f.is_dir() and not f.name.startswith((".", "_")) if (e := case_entry(f))]
        if root.is_dir()
        else []
    )
    entries.sort(key=lambda e: (unicodedata.normalize("NFC", e["department"]), e["case_id"]))
    path = root / INDEX_FILE
    _write_atomic(path, render_index(root, entries))
    return path
