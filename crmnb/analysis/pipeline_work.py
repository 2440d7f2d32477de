"""The pipeline to work: high-probability leads and deals that are going stale, masked, with their reasons.

A lead is going stale when it has waited longer than the staleness rule for a first contact; a
deal when it has been in its stage longer than the stage's dwell benchmark (times a factor) or is
past its expected close date. Of those, the ones at or above the high-probability threshold are
listed, most likely first: they are worth a call today.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmnb.present.masking import mask_frame
from crmnb.present.words import category, department, t

COLUMNS = [
    "record_id",
    "record_kind",
    "owner_rep",
    "contact_name",
    "stage",
    "win_probability",
    "amount",
    "days_in_stage",
    "stale_reason",
    "reasons",
]


def stale_reasons(
    scored: pd.DataFrame, dwell_days: dict[str, float], uncontacted_hours: float, dwell_factor: float, lang: str
) -> pd.Series:
    """Return why each scored record is going stale, in words ('' when it is not)."""
    out = []
    for _, r in scored.iterrows():
        why = []
        if r["stage"] == "uncontacted" and r["response_hours"] > uncontacted_hours:
            why.append(t("predict.stale.uncontacted", lang, hours=r["response_hours"], limit=uncontacted_hours))
        limit = dwell_days.get(r["stage"])
        if r["kind"] == "opportunity" and limit and r["days_in_stage"] > dwell_factor * limit:
            stage = category(r["stage"], lang)
            why.append(t("predict.stale.dwell", lang, days=r["days_in_stage"], stage=stage, limit=dwell_factor * limit))
        if r["kind"] == "opportunity" and r["days_past_expected"] > 0:
            why.append(t("predict.stale.past_expected", lang, days=r["days_past_expected"]))
        out.append(t("predict.reason.sep", lang).join(why))
    return pd.Series(out, index=scored.index, dtype=object)


def _contacts(leads, lead_ids: pd.Series) -> pd.Series | None:
    """Return the contact name by lead id of ``lead_ids``, from a frame or from a step's tables (only those rows
    read); None without contact names."""
    if isinstance(leads, pd.DataFrame):
        if "contact_name" not in leads:
            return None
    else:
        try:
            leads = leads.where("leads", "lead_id", lead_ids.dropna().unique().tolist(), ["lead_id", "contact_name"])
        except KeyError:  # a case whose leads have no contact names
            return None
    return leads.drop_duplicates("lead_id").set_index("lead_id")["contact_name"]


def work_list(
    scored: pd.DataFrame,
    leads: pd.DataFrame,
    settings,
    dwell_days: dict[str, float],
    lang: str,
    dept: str | None = None,
    mask: bool = True,
) -> pd.DataFrame:
    """Return the high-probability records going stale (``settings``: a case's ``predict`` block), masked;
    ``leads``: the leads' ids and contact names, or a step's tables to read them from."""
    s = scored if dept is None else scored[scored["department"] == dept]
    s = s[s["probability"] >= settings.high_probability]
    why = stale_reasons(s, dwell_days, settings.stale_uncontacted_hours, settings.stale_dwell_factor, lang)
    s = s.assign(stale_reason=why)[why != ""]
    contact = _contacts(leads, s["lead_id"])
    out = pd.DataFrame(
        {
            "record_id": s["record_id"].to_numpy(),
            "record_kind": s["kind"].to_numpy(),
            "owner_rep": s["owner_rep"].to_numpy(),
            "contact_name": s["lead_id"].map(contact).to_numpy() if contact is not None else np.nan,
            "stage": s["stage"].to_numpy(),
            "win_probability": s["probability"].to_numpy(),
            "amount": s["amount"].to_numpy(),
            "days_in_stage": s["days_in_stage"].round(1).to_numpy(),
            "stale_reason": s["stale_reason"].to_numpy(),
            "reasons": s["reasons"].to_numpy(),
        },
        columns=COLUMNS,
    )
    out = out.sort_values("win_probability", ascending=False, kind="stable").head(settings.work_list_rows)
    out = out.reset_index(drop=True)
    return mask_frame(out) if mask else out


def describe(work: pd.DataFrame, scored: pd.DataFrame, settings, dept: str, lang: str) -> str:
    """State how many high-probability records are going stale among the department's open ones, in ``lang``."""
    if scored.empty:
        return t("predict.work.no_scores", lang)
    if work.empty:
        return t("predict.work.none", lang, department=department(dept, lang))
    n_open = int((scored["department"] == dept).sum())
    return t(
        "predict.work.summary",
        lang,
        n=len(work),
        open=n_open,
        department=department(dept, lang),
        threshold=settings.high_probability,
        hours=settings.stale_uncontacted_hours,
    )
