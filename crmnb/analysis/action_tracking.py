"""The action-tracking table (Table of step 7): the ledger's actions, scored, then the plan's new proposals.

Columns in the method's order: the action, its measure, owner and deadline, its completion (the
ledger's status), the KPI it is watched by, its start, the metric's change since then with its
interval (against the control where there is one), the verdict, whether it is overdue, the advice
for the next iteration and the analyst's note. Problems this run found that no action answers
follow as ``proposed`` rows: the ledger is never changed by a run.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from crmnb.analysis.action_scores import kpi_name, kpi_of, score_ledger
from crmnb.analysis.why_changed import data_end
from crmnb.present.summary import amount
from crmnb.present.words import fmt_value, t
from crmnb.run.ledger import open_ledger, proposed

COLUMNS = (
    "action", "measure", "owner", "deadline", "status", "kpi_to_watch", "start", "metric_change",
    "verdict", "overdue", "advice", "note", "expected_effect", "target", "review",
)  # fmt: skip


def with_kinds(plan: pd.DataFrame, problems: pd.DataFrame | None) -> pd.DataFrame:
    """Return the plan with each row's problem kind (from step 6's problems), for its KPI."""
    if problems is None or "kind" not in problems or "kind" in plan:
        return plan
    kinds = problems.drop_duplicates("problem").set_index("problem")["kind"]
    return plan.assign(kind=plan["problem"].map(kinds).fillna(""))


def change_text(s: dict, unit: str, lang: str) -> str:
    """Return an action's KPI change: 'before → after (change, 95% CI …; control …)', or '' unmeasured."""
    if not np.isfinite(s.get("after", np.nan)):
        return ""
    head = f"{fmt_value(s['before'], unit)} → {fmt_value(s['after'], unit)}"
    if not np.isfinite(s.get("change", np.nan)):
        return head
    key = "loop.change.control" if np.isfinite(s.get("control_change", np.nan)) else "loop.change.plain"
    return t(key, lang, head=head, d=amount(s["change"], unit, lang, signed=True),
             low=amount(s["ci_low"], unit, lang, signed=True), high=amount(s["ci_high"], unit, lang, signed=True))  # fmt: skip


def watched(action, lang: str) -> str:
    """Return the KPI an action is scored by, with the plan's own words for it where they differ."""
    name = kpi_name(action.kpi, lang)
    plan = action.kpi_name.strip()
    return t("loop.kpi.with_plan", lang, kpi=name, plan=plan) if plan and plan.lower() != name.lower() else name


def _advice(verdict: str, overdue: bool, lang: str) -> str:
    text = t(f"loop.advice.{verdict}", lang)
    return t("loop.advice.overdue", lang, advice=text) if overdue else text


def _rows(ledger, scores: pd.DataFrame, lang: str) -> list[dict]:
    rows = []
    for a, s in zip(ledger.actions, scores.to_dict("records")):
        unit = kpi_of(a.kpi).unit
        rows.append({
            "action": a.id, "measure": a.measure, "owner": a.owner, "deadline": a.due, "status": a.status,
            "kpi_to_watch": watched(a, lang), "start": str(a.start or ""),
            "metric_change": change_text(s, unit, lang), "verdict": t(f"loop.verdict.{s['verdict']}", lang),
            "overdue": t("loop.overdue", lang) if s["overdue"] else "", "advice": _advice(s["verdict"], s["overdue"], lang),
            "note": a.note, "expected_effect": a.expected_effect, "target": "", "review": t("diagnosis.tracking.review", lang),
            "kpi": a.kpi, "verdict_key": s["verdict"], "change": s["change"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
        })  # fmt: skip
    return rows


def _proposals(plan: pd.DataFrame, case, lang: str) -> list[dict]:
    return [
        {
            "action": t("loop.proposed.id", lang),
            "measure": str(r.get("measure", "")),
            "owner": str(r.get("owner", "")),
            "deadline": r.get("deadline"),
            "status": "proposed",
            "kpi_to_watch": str(r.get("kpi", "")),
            "start": "",
            "metric_change": "",
            "verdict": "",
            "overdue": "",
            "advice": t("loop.advice.proposed", lang),
            "note": str(r.get("problem", "")),
            "expected_effect": str(r.get("expected_effect", "")),
            "target": str(r.get("target", "")),
            "review": t("diagnosis.tracking.review", lang),
            "kpi": "",
            "verdict_key": "proposed",
            "change": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
        }  # fmt: skip
        for r in plan.to_dict("records")
    ]


def as_of(tables) -> date:
    """Return the day the data reach: actions are scored and found overdue as of then."""
    end = data_end(tables)
    return date.fromisoformat(end) if end else date.today()


def tracking(plan: pd.DataFrame, case, tables, problems: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the action-tracking table: the ledger's actions scored, then the plan's proposals.

    The ledger (``<case_id>.actions.yaml`` beside the case file) is written from this plan on the
    case's first run; a later run reads it, scores its started actions and proposes the plan's rows
    whose problem no action answers.
    """
    lang = case.language
    plan = with_kinds(plan, problems)
    ledger, _path, first = open_ledger(plan, case)
    opts = {"conversion_window_days": case.thresholds.conversion_window_days}
    scores = score_ledger(ledger, tables, as_of(tables), case.control_department, opts)
    rows = _rows(ledger, scores, lang) + ([] if first else _proposals(proposed(plan, ledger), case, lang))
    return pd.DataFrame(rows, columns=[*COLUMNS, "kpi", "verdict_key", "change", "ci_low", "ci_high"])


def report_view(tracking_table: pd.DataFrame) -> pd.DataFrame:
    """Return the tracking table as the report shows it: the method's columns, the ledger's actions first."""
    cols = ["action", "measure", "owner", "deadline", "status", "start", "kpi_to_watch", "metric_change",
            "verdict", "overdue", "advice"]  # fmt: skip
    return tracking_table[[c for c in cols if c in tracking_table]]
