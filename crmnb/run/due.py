"""Review dates: when each case is due again (``review_every`` in its case file), for the index page and
``crmnb batch --due``; and whether a run calls for an alert (``crmnb batch --mail-on``)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from crmnb.params.loop import next_review
from crmnb.present.words import has, t
from crmnb.run.history import list_runs

ALERT_VERDICTS = ("worse",)
"""An action verdict that calls for an alert when an action turns to it."""


def last_success(folder: Path) -> dict | None:
    """Return the record of the case's latest successful run, or None."""
    ok = [r for r in list_runs(folder) if r.get("status") == "ok"]
    return ok[-1] if ok else None


def _day(iso: str | None) -> date | None:
    try:
        return datetime.fromisoformat(str(iso)).date()
    except ValueError:
        return None


def review_state(folder: Path, review_every: str | None, today: date | None = None) -> dict:
    """Return a case's review state: ``due`` (bool), ``overdue_days``, ``next`` (its next review) and ``last``.

    A case never run successfully is due; one without ``review_every`` has no next review and is due
    only then.
    """
    today = today or date.today()
    last = last_success(folder)
    last_day = _day((last or {}).get("finished") or (last or {}).get("started")) if last else None
    if last_day is None:
        return {"due": True, "overdue_days": 0, "next": None, "last": None, "never": True}
    if not review_every:
        return {"due": False, "overdue_days": 0, "next": None, "last": str(last_day), "never": False}
    nxt = next_review(last_day, review_every)
    return {"due": today >= nxt, "overdue_days": max(0, (today - nxt).days), "next": str(nxt),
            "last": str(last_day), "never": False}  # fmt: skip


def _bad_actions(rec: dict | None) -> set[tuple[str, str]]:
    """Return the (action, worse/overdue) pairs of a run record's scored actions."""
    out = set()
    for a in (rec or {}).get("actions") or []:
        if a.get("verdict_key") in ALERT_VERDICTS:
            out.add((str(a.get("action")), "worse"))
        if a.get("overdue"):
            out.add((str(a.get("action")), "overdue"))
    return out


def _verdict(v: str | None, lang: str) -> str:
    return t(f"brief.verdict.{v}", lang) if v and has(f"brief.verdict.{v}") else str(v)


def alert_reasons(folder: Path, run_id: str | None = None, lang: str = "en") -> list[str]:
    """Return why the case's latest run calls for an alert, in ``lang``: it failed, its verdict changed, or an
    action turned worse or overdue since the run before; [] when none."""
    runs = [r for r in list_runs(folder) if r.get("status") in ("ok", "failed", "timeout")]
    if run_id:
        runs = [r for r in runs if r.get("run_id") == run_id] or runs
    if not runs:
        return []
    latest = runs[-1]
    if latest.get("status") != "ok":
        return [t("loop.alert.failed", lang, status=latest.get("status"), why=latest.get("error") or "")]
    earlier = [
        r for r in list_runs(folder) if r.get("status") == "ok" and r.get("started", "") < latest.get("started", "")
    ]
    prev = earlier[-1] if earlier else None
    reasons = []
    if prev and prev.get("verdict") != latest.get("verdict"):
        was, now = _verdict(prev.get("verdict"), lang), _verdict(latest.get("verdict"), lang)
        reasons.append(t("loop.alert.verdict", lang, was=was, now=now))
    for action, what in sorted(_bad_actions(latest) - _bad_actions(prev)):
        reasons.append(t(f"loop.alert.{what}", lang, id=action))
    return reasons
