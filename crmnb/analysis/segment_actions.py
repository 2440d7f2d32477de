"""Segments that carry actions: the method's treatment for every RFM segment and value tier.

Reads the results of :mod:`crmnb.analysis.segments` (the per-segment and per-tier summaries)
and gives each group its recommended treatment, in English and Chinese, with the number of
customers and the revenue it holds, so the plan can take them up: VIP service for high value,
targeted campaigns for potential customers, win-back for customers at risk.

>>> seg = pd.DataFrame({"segment": ["champions", "at_risk"], "customers": [3, 2], "revenue": [900.0, 100.0]})
>>> tiers = pd.DataFrame({"tier": ["high_value"], "customers": [1], "revenue": [500.0]})
>>> segment_actions(seg, tiers, "en")[["group_id", "customers", "treatment_id"]].values.tolist()
[['high_value', 1, 'vip_service'], ['champions', 3, 'vip_service'], ['at_risk', 2, 'win_back']]
"""

from __future__ import annotations

import pandas as pd

from crmnb.present.words import category, t

ACTIONS: dict[str, str] = {
    # value tiers
    "high_value": "vip_service",
    "potential": "targeted_campaign",
    "low_value": "low_cost_nurture",
    # RFM segments
    "champions": "vip_service",
    "loyal": "loyalty_upsell",
    "potential_loyalists": "targeted_campaign",
    "new": "onboarding",
    "promising": "targeted_campaign",
    "need_attention": "reactivation_offer",
    "about_to_sleep": "reactivation_offer",
    "at_risk": "win_back",
    "cant_lose": "win_back_personal",
    "hibernating": "low_cost_nurture",
}
"""The method's treatment of each value tier and RFM segment (a key of ``campaigns.action.<key>``)."""

COLUMNS = [
    "grouping",
    "group_id",
    "group_name",
    "customers",
    "revenue",
    "revenue_share",
    "treatment_id",
    "treatment",
    "treatment_en",
    "treatment_zh",
]


def _rows(summary: pd.DataFrame, by: str, kind: str, lang: str) -> pd.DataFrame:
    """Return one row per group of ``summary`` with its treatment; a group the map lacks gets none."""
    if summary is None or summary.empty or by not in summary:
        return pd.DataFrame(columns=COLUMNS)
    s = summary[summary["customers"] > 0]
    total = s["revenue"].sum()
    action = s[by].map(ACTIONS).fillna("none")
    return pd.DataFrame(
        {
            "grouping": t(f"campaigns.kind.{kind}", lang),
            "group_id": s[by].to_numpy(),
            "group_name": [category(g, lang) for g in s[by]],
            "customers": s["customers"].astype(int).to_numpy(),
            "revenue": s["revenue"].astype(float).to_numpy(),
            "revenue_share": (s["revenue"] / total).to_numpy() if total else float("nan"),
            "treatment_id": action.to_numpy(),
            "treatment": [t(f"campaigns.action.{a}", lang) for a in action],
            "treatment_en": [t(f"campaigns.action.{a}", "en") for a in action],
            "treatment_zh": [t(f"campaigns.action.{a}", "zh") for a in action],
        }
    )


def segment_actions(segments: pd.DataFrame, tiers: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Return every value tier and RFM segment that has customers, with its treatment in both languages.

    ``segments`` is :func:`crmnb.analysis.segments.segment_summary`, ``tiers``
    :func:`crmnb.analysis.segments.tier_summary` (each: the group, customers, revenue).
    Revenue shares are within the tiers and within the segments. Columns :data:`COLUMNS`;
    ``treatment`` is in ``lang``.
    """
    out = pd.concat([_rows(tiers, "tier", "tier", lang), _rows(segments, "segment", "segment", lang)])
    return out.reset_index(drop=True)[COLUMNS]


PRIORITY: tuple[str, ...] = ("vip_service", "win_back_personal", "win_back", "targeted_campaign")
"""The treatments the plan names first: keep the best customers, win back the lapsing, grow the potential."""


def plan_rows(actions: pd.DataFrame, lang: str, top: int = 4) -> list[str]:
    """Return sentences for the groups the plan should act on first: for each treatment of
    :data:`PRIORITY`, its group with the most revenue: what to do, for how many customers, and the
    revenue they hold."""
    if actions.empty:
        return [t("campaigns.actions.none", lang)]
    rank = actions["treatment_id"].map({a: i for i, a in enumerate(PRIORITY)})
    seg = actions.assign(_rank=rank)[rank.notna()]
    seg = seg.sort_values(["_rank", "revenue"], ascending=[True, False], kind="stable")
    seg = seg.drop_duplicates("treatment_id")
    return [
        t(
            "campaigns.actions.sentence",
            lang,
            group=r.group_name,
            kind=r.grouping,
            customers=f"{r.customers:,}",
            revenue=f"{r.revenue:,.0f}",
            treatment=r.treatment,
        )
        for r in seg.head(top).itertuples()
    ] or [t("campaigns.actions.none", lang)]
