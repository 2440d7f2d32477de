"""Where to move budget: each channel's return per CNY spent, with its uncertainty, and one suggested move.

The return of a channel is the revenue of its leads of the period (last touch, as
:func:`crmnb.analysis.marketing.channel_performance` counts it) per CNY of its spend in the period. Its 95%
interval comes from the spread of revenue between leads (normal approximation of the sum: n × variance).
With a handful of campaigns per channel, the curve of revenue against spend cannot be fitted, so the
average return at the current spend stands for the marginal one: a move is sized small (a share of the
weaker channel's spend) so that returns may be assumed to stay as they are. It is an **association** from
past campaigns, not a tested effect: the suggestion says so and proposes to try it on part of the budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmnb.analysis.marketing import as_label, lead_outcomes
from crmnb.present.words import category, t

Z = 1.959964
MIN_LEADS = 30
"""Fewest leads a channel needs in the period to be compared."""

COLUMNS = ["channel", "spend", "leads", "revenue", "return_per_cny", "ci_low", "ci_high", "comparable"]


def channel_returns(
    campaigns: pd.DataFrame,
    channels: pd.DataFrame,
    leads: pd.DataFrame,
    opportunities: pd.DataFrame,
    orders: pd.DataFrame,
    start=None,
    end=None,
) -> pd.DataFrame:
    """Return per channel with spend: spend and revenue of the period, revenue per CNY and its 95% interval.

    ``channels`` is the channel table of :func:`~crmnb.analysis.marketing.channel_performance` (its spend);
    the revenue is recounted per lead from :func:`~crmnb.analysis.marketing.lead_outcomes`. A channel is
    ``comparable`` with spend and at least :data:`MIN_LEADS` leads.
    """
    out = lead_outcomes(leads, opportunities, orders, start, end)
    camp_channel = campaigns.drop_duplicates("campaign_id").set_index("campaign_id")["channel"]
    out = out.assign(channel=as_label(out["channel"].fillna(out["campaign_id"].map(camp_channel))))
    g = out.groupby("channel")["revenue"]
    per = pd.DataFrame({"leads": g.size(), "revenue": g.sum(), "var": g.var(ddof=1)})
    spend = channels.set_index("channel")["spend"].astype(float)
    df = per.join(spend, how="right").fillna({"leads": 0, "revenue": 0.0, "var": 0.0})
    df = df[df["spend"] > 0]
    r = df["revenue"] / df["spend"]
    se = np.sqrt(df["leads"] * df["var"]) / df["spend"]
    df = df.assign(return_per_cny=r, ci_low=(r - Z * se).clip(lower=0), ci_high=r + Z * se)
    df["leads"] = df["leads"].astype(int)
    df["comparable"] = df["leads"] >= MIN_LEADS
    df["_se"] = se
    return df.sort_values("return_per_cny", ascending=False).reset_index()[[*COLUMNS, "_se"]]


def suggest_move(returns: pd.DataFrame, share: float = 0.1) -> dict | None:
    """Return the suggested move from the weakest comparable channel to the strongest, or None with
    fewer than two comparable channels.

    ``clear`` is True when the weaker channel's interval lies wholly below the stronger one's. The
    move is ``share`` of the weaker channel's spend; the revenue it goes with is that amount times the
    difference in return, with the interval of that difference (independent channels).
    """
    c = returns[returns["comparable"]]
    if len(c) < 2:
        return None
    to, frm = c.iloc[0], c.iloc[-1]
    amount = float(frm["spend"] * share)
    diff = float(to["return_per_cny"] - frm["return_per_cny"])
    se = float(np.hypot(to["_se"], frm["_se"]))
    return {
        "from": frm["channel"],
        "to": to["channel"],
        "amount": amount,
        "share": share,
        "return_from": float(frm["return_per_cny"]),
        "return_to": float(to["return_per_cny"]),
        "gain": amount * diff,
        "gain_low": amount * (diff - Z * se),
        "gain_high": amount * (diff + Z * se),
        "clear": bool(frm["ci_high"] < to["ci_low"]),
    }


def move_sentence(move: dict | None, lang: str) -> str:
    """Return the suggestion in ``lang``: the move, what it goes with and how sure that is, or why there is none."""
    if move is None:
        return t("campaigns.budget.none", lang)
    key = "campaigns.budget.move" if move["clear"] else "campaigns.budget.unclear"
    return t(
        key,
        lang,
        frm=category(move["from"], lang),
        to=category(move["to"], lang),
        amount=f"{move['amount']:,.0f}",
        share=f"{100 * move['share']:.0f}%",
        r_from=f"{move['return_from']:.2f}",
        r_to=f"{move['return_to']:.2f}",
        gain=f"{move['gain']:,.0f}",
        low=f"{move['gain_low']:,.0f}",
        high=f"{move['gain_high']:,.0f}",
    )
