"""Step 1 and 2 tables: the case card, the goal, the scope and the data inventory."""

from __future__ import annotations

import pandas as pd

from crmnb.params.model import GOAL_METRICS, CaseParams
from crmnb.present.words import department, fmt_value, t


def case_card(case: CaseParams) -> pd.DataFrame:
    """Return Table 1, the case card: case, department, period, owner, goal, in the case's language."""
    from crmnb.analysis.metrics import CATALOGUE

    g, lang = case.goal, case.language
    unit = GOAL_METRICS[g.metric]
    goal = t(
        "scope.goal_line",
        lang,
        name=CATALOGUE[g.metric].name(lang),
        baseline=fmt_value(g.baseline, unit),
        target=fmt_value(g.target, unit),
        deadline=g.deadline,
    )
    return pd.DataFrame(
        [
            {
                "case": case.title,
                "department": department(case.department, lang),
                "period": f"{case.period.start} – {case.period.end}",
                "owner": case.owner,
                "goal": goal,
            }
        ]
    )


def goal_table(case: CaseParams) -> pd.DataFrame:
    """Return the goal confirmation: metric, baseline, target, deadline, and the comparison windows."""
    from crmnb.analysis.metrics import CATALOGUE

    g, w, lang = case.goal, case.windows, case.language
    none = t("scope.none", lang)
    control = case.control_department
    rows = [
        ("metric", CATALOGUE[g.metric].name(lang)),
        ("formula", CATALOGUE[g.metric].formula_in(lang)),
        ("baseline", fmt_value(g.baseline, GOAL_METRICS[g.metric])),
        ("target", fmt_value(g.target, GOAL_METRICS[g.metric])),
        ("direction", t("scope.raise" if g.higher_is_better else "scope.lower", lang)),
        ("deadline", str(g.deadline)),
        ("intervention", str(case.intervention_date) if case.intervention_date else none),
        ("before", f"{w['before'][0]} – {w['before'][1]}"),
        ("after", f"{w['after'][0]} – {w['after'][1]}"),
        ("control", department(control, lang) if control else none),
    ]
    return pd.DataFrame([(t(f"scope.goal.{k}", lang), v) for k, v in rows], columns=["item", "value"])


def scope_table(case: CaseParams) -> pd.DataFrame:
    """Return the scope: team, customer group, period and data dimensions, in the case's language."""
    lang = case.language
    dep = department(case.department, lang)
    period = t("scope.period_value", lang, start=case.period.start, end=case.period.end, days=case.period.days)
    rows = [
        (t("scope.team", lang), dep),
        (t("scope.customer_group", lang), t("scope.customers", lang, department=dep)),
        (t("scope.period", lang), period),
        (t("scope.dimensions", lang), t("scope.dimensions_value", lang)),
        (t("scope.source", lang), f"{case.data.dir.name}/"),  # a folder, as a reader writes one
    ]
    return pd.DataFrame(rows, columns=["item", "value"])


def leads_in(
    tables: dict[str, pd.DataFrame], case: CaseParams, window: str = "period", department_name: str | None = None
) -> pd.DataFrame:
    """Return the leads of the case's department created in the period (or the 'before'/'after' window)."""
    start, end = (case.period.start, case.period.end) if window == "period" else case.windows[window]
    from crmnb.analysis.metrics import in_period

    leads = in_period(tables["leads"], "created_at", start, end)
    return leads[leads["department"] == (department_name or case.department)]
