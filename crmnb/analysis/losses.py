"""Loss reasons ranked over all stages, with the share of losses that carry no reason."""

from __future__ import annotations

import pandas as pd

from crmnb.analysis.funnel import loss_stage
from crmnb.analysis.metrics import in_period
from crmnb.frames import isin, rows_where
from crmnb.present.words import category, t


def reason_counts(losses: pd.DataFrame, stage: str | None = None) -> pd.Series:
    """Return how many lost deals name each reason, most first (of one stage, or all).

    >>> lost = pd.DataFrame({"loss_reason": ["price", "competitor", "price", None], "lost_at_stage": ["a", "b", "b", "b"]})
    >>> reason_counts(lost).to_dict(), reason_counts(lost, "b").to_dict()
    ({'price': 2, 'competitor': 1}, {'competitor': 1, 'price': 1})
    """
    f = losses if stage is None else losses[losses["lost_at_stage"] == stage]
    reasons = f["loss_reason"].dropna().astype(str)
    reasons = reasons[reasons.str.strip() != ""]
    counts = reasons.value_counts()
    # ties by name, so the order does not depend on the order of the rows
    return (
        counts.rename_axis("reason")
        .reset_index()
        .sort_values(["count", "reason"], ascending=[False, True])
        .set_index("reason")["count"]
    )


def ranked_reasons(
    losses: pd.DataFrame, language: str, stage: str | None = None, lost: int | None = None, top: int = 3
) -> str:
    """Return the loss reasons ranked with their share of the losses, and the share with no reason recorded.

    ``lost`` is how many were lost (at the stage): by default the lost deals in ``losses``; a stage that
    loses leads before any deal exists loses more than its lost deals, and none of those has a reason.

    >>> lost = pd.DataFrame({"loss_reason": ["price", "price", "competitor", None], "lost_at_stage": "b"})
    >>> ranked_reasons(lost, "en")
    'price 50% (2), competitor 25% (1); no reason recorded for 25% (1) of 4 lost'
    """
    counts = reason_counts(losses, stage)
    n = len(losses if stage is None else losses[losses["lost_at_stage"] == stage]) if lost is None else lost
    if not n:
        return ""
    named = [
        t("diagnosis.losses.reason", language, reason=_reason(r, language), share=k / n, k=int(k))
        for r, k in counts.head(top).items()
    ]
    unrecorded = max(0, n - int(counts.sum()))
    if unrecorded:
        tail = t("diagnosis.losses.unrecorded", language, share=unrecorded / n, k=unrecorded, n=n)
    else:
        tail = t("diagnosis.losses.all_recorded", language, n=n)
    return (
        t("diagnosis.losses.sep", language).join(named) + t("diagnosis.losses.then", language) if named else ""
    ) + tail


def top_reason(losses: pd.DataFrame, language: str) -> str:
    """Return the loss reason named most often, as a reader names it (empty when none is named)."""
    counts = reason_counts(losses)
    return _reason(counts.index[0], language) if len(counts) else ""


def _reason(reason: str, language: str) -> str:
    """Return a loss reason as a reader names it (``unclear_needs`` reads "unclear needs" in English)."""
    text = str(category(reason, language))
    return text if language == "zh" else text.replace("_", " ")


def losses_of(leads: pd.DataFrame, opportunities: pd.DataFrame, stage_history: pd.DataFrame) -> pd.DataFrame:
    """Return the lost deals of a cohort of leads (the funnel's): the stage each was lost from and its reason."""
    return loss_stage(opportunities[isin(opportunities["lead_id"], leads["lead_id"])], stage_history)


LOSS_COLUMNS = {
    "leads": ["lead_id", "created_at"],
    "opportunities": ["opportunity_id", "lead_id", "status", "loss_reason"],
    "stage_history": ["opportunity_id", "stage", "entered_at"],
}
"""The columns the losses read of each table: at 100x the department's leads are half a million rows, and
their contacts' names, phones and pages were read only to be dropped (the step's peak of memory)."""


def case_losses(tables, case) -> pd.DataFrame:
    """Return :func:`losses_of` the case's leads (its department's, of the period), reading only their rows,
    their deals and those deals' stages from the step's tables, and only the columns the losses read."""
    leads = rows_where(tables, "leads", "department", [case.department], LOSS_COLUMNS["leads"])
    leads = in_period(leads, "created_at", case.period.start, case.period.end)
    deals = rows_where(tables, "opportunities", "lead_id", leads["lead_id"], LOSS_COLUMNS["opportunities"])
    stages = rows_where(
        tables, "stage_history", "opportunity_id", deals["opportunity_id"], LOSS_COLUMNS["stage_history"]
    )
    return loss_stage(deals, stages)
