"""The index page of every case under an output root: status, goal, verdict, links."""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from crmnb.params.model import GOAL_METRICS
from crmnb.present.fonts import FONT_STACK, cjk_font_face
from crmnb.present.outputs import OUTPUTS, every_output
from crmnb.present.since_block import sparkline
from crmnb.present.templates import html_lang, render
from crmnb.present.words import has, t
from crmnb.run.due import review_state
from crmnb.run.history import list_runs
from crmnb.run.records import INDEX_FILE, LOG_FILE, read_record, record_status, short_time, timestamp, write_atomic

INDEX_LANGUAGE = "en"
"""The index page's language: one page lists the cases of every department, whatever their reports' language."""


def _fmt(value: Any, unit: str, lang: str) -> str:
    """Return a goal's value with its unit, '—' when there is none."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if unit == "rate":
        return f"{v:.1%}"
    if unit in ("hours", "days"):
        return t(f"index.unit.{unit}", lang, value=f"{v:,.1f}")
    if unit == "CNY":
        return t("index.unit.CNY", lang, value=f"{v:,.0f}")
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
    has_outputs = any((folder / name).is_file() for name in OUTPUTS) or (folder / "notebooks").is_dir()
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
    status = record_status(rec)
    earlier = False
    if summary and status not in (None, "ok") and rec.get("started"):
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
        "status": status,
        "started": rec.get("started"),
        "seconds": rec.get("seconds"),
        "finished": rec.get("finished"),
        "error": rec.get("error"),
        "where": rec.get("where"),
        "reason": rec.get("reason"),
        "notebook": rec.get("notebook"),
        "review": review_state(folder, rec.get("review_every")) if rec.get("review_every") else None,
        "runs": [r for r in list_runs(folder) if r.get("status") == "ok"],
    }


def _link(folder: Path, rel: str, label: str) -> dict | None:
    """Return the link to a file of a case folder (relative to the output root), or None when it is absent."""
    if not (folder / rel).is_file():
        return None
    return {"href": "/".join(quote(part) for part in (folder.name, *rel.split("/"))), "label": label}


def _word(prefix: str, key: str, lang: str) -> str:
    """Return a badge's word (a status, a verdict), or the key itself when the catalogue has none."""
    return t(f"{prefix}.{key}", lang) if has(f"{prefix}.{key}") else key


def _goal(goal: dict, summary: dict | None, lang: str) -> dict | None:
    """Return the goal as shown: its name, baseline and target with their unit, and its deadline."""
    if not goal.get("metric"):
        return None
    sgoal = (summary or {}).get("goal") or {}
    name = sgoal.get("name") if sgoal.get("metric") == goal["metric"] else None
    unit = goal.get("unit", "")
    return {
        "name": name or goal["metric"].replace("_", " ").capitalize(),
        "baseline": _fmt(goal.get("baseline"), unit, lang),
        "target": _fmt(goal.get("target"), unit, lang),
        "deadline": str(goal["deadline"]) if goal.get("deadline") else "",
    }


def _verdict(e: dict, lang: str) -> dict | None:
    """Return step 7's verdict as shown, with the goal metric before → now, or None before step 7 ran."""
    s, unit = e["summary"], e["goal"].get("unit", "")
    if not s or "verdict" not in s:
        return None
    v = str(s["verdict"])
    now = f"{_fmt(s.get('before'), unit, lang)} → {_fmt(s.get('now'), unit, lang)}"
    # the verdict's words as the report's tile has them; an earlier summary's verdict keeps the index's words
    label = t(f"brief.verdict.{v}", lang) if has(f"brief.verdict.{v}") else _word("index.verdict", v, lang)
    headline = str(s.get("headline") or "")  # in the case's language, as the report and the e-mail's subject
    return {"key": v, "label": label, "headline": headline, "now": now, "earlier": e["summary_earlier"]}


def _status(e: dict, lang: str) -> dict:
    """Return the run's status badge and, for a run that did not end ok, why."""
    st = e["status"] or "—"
    why = ""
    if e["error"] and st != "ok":
        why = (
            f"{e['where']}: {e['reason']}"
            if e["where"] and e["reason"]
            else (e["reason"] or str(e["error"]).strip().splitlines()[0])
        )
    if st in ("interrupted", "running") and not why:
        why = t(f"index.why.{st}", lang, started=short_time(e.get("started")))
    return {"key": st, "label": _word("index.status", st, lang), "why": why[:300]}


def _links(root: Path, e: dict, lang: str) -> list[dict]:
    """Return the links of a case's row: each output, the notebook that failed, the log."""
    folder = root / e["folder"]
    # a run that failed, or has not finished, wrote no output: those are an earlier run's
    failed = e["status"] in ("failed", "timeout", "interrupted", "running")
    earlier = f" {t('index.earlier_run', lang)}" if failed else ""
    links = [_link(folder, name, t(output.label, lang) + earlier) for name, output in every_output().items()]
    if failed and e["notebook"]:
        links.append(_link(folder, e["notebook"], t("index.failed_notebook", lang)))
    links.append(_link(folder, LOG_FILE, t("index.log", lang)))
    return [link for link in links if link]


def index_row(root: Path, e: dict, lang: str) -> dict:
    """Return what the index page shows of one case (see :func:`case_entry`), as text for its template."""
    secs = e["seconds"]
    return {
        "title": e["title"],
        "case_id": e["case_id"],
        "department": e["department"],
        "goal": _goal(e["goal"], e["summary"], lang),
        "verdict": _verdict(e, lang),
        "status": _status(e, lang),
        "run_time": t("index.seconds", lang, seconds=f"{float(secs):,.0f}") if isinstance(secs, (int, float)) else "—",
        "finished": short_time(e["finished"]) if e["finished"] else "",
        "links": _links(root, e, lang),
        "review": _review(e.get("review"), lang),
        "spark": sparkline([r.get("now") for r in e.get("runs") or []], e["goal"].get("unit", "")),
    }


def _review(state: dict | None, lang: str) -> dict | None:
    """Return a case's next review as shown: its date, and whether it is due or overdue."""
    if not state or not state.get("next"):
        return None
    key = "overdue" if state["overdue_days"] > 0 else "due" if state["due"] else "scheduled"
    return {"key": key, "next": state["next"], "label": t(f"loop.review.{key}", lang, days=state["overdue_days"])}


def due_rows(rows: list[dict]) -> list[dict]:
    """Return the rows of the cases due or overdue for review, the most overdue first."""
    due = [r for r in rows if r.get("review") and r["review"]["key"] != "scheduled"]
    return sorted(due, key=lambda r: r["review"]["next"])


def _counts(entries: list[dict], lang: str) -> str:
    """Return the line under the title: how many cases, how many ok, failed and timed out, and when."""
    counts = {k: sum(1 for e in entries if e["status"] == k) for k in ("ok", "failed", "timeout")}
    cases = t("index.one_case" if len(entries) == 1 else "index.cases", lang, n=len(entries))
    return t("index.counts", lang, cases=cases, when=short_time(timestamp()), **counts)


def render_index(root: Path, entries: list[dict], lang: str = INDEX_LANGUAGE) -> str:
    """Return the index page's HTML: one row per case, escaped text, relative links, no scripts."""
    context = dict(
        lang=lang,
        html_lang=html_lang(lang),
        t=t,
        meta=_counts(entries, lang),
        rows=(rows := [index_row(root, e, lang) for e in entries]),
        due=due_rows(rows),
        font_stack=FONT_STACK,
    )
    page = render("index.html.j2", font_face="", **context)
    face = cjk_font_face(page, lang)  # department names and goals may be Chinese; embed just those glyphs
    return render("index.html.j2", font_face=Markup(face), **context) if face else page


def write_index(output_root: str | Path, lang: str = INDEX_LANGUAGE) -> Path:
    """Write ``<output_root>/index.html`` listing every case found there, and return its path."""
    root = Path(output_root)
    entries = (
        [e for f in sorted(root.iterdir()) if f.is_dir() and not f.name.startswith((".", "_")) if (e := case_entry(f))]
        if root.is_dir()
        else []
    )
    entries.sort(key=lambda e: (unicodedata.normalize("NFC", e["department"]), e["case_id"]))
    path = root / INDEX_FILE
    write_atomic(path, render_index(root, entries, lang))
    return path
