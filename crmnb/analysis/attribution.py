"""Attribution of won deals to marketing touches: first, last, linear, position-based, time-decay and W-shaped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmnb.analysis.marketing import MODELS, NO_TOUCH, as_label, check_table, day_bounds, in_window
from crmnb.errors import NotEnoughData
from crmnb.frames import isin


# --------------------------------------------------------------------------- attribution
def won_leads(leads: pd.DataFrame, opportunities: pd.DataFrame, start=None, end=None) -> pd.DataFrame:
    """Return the conversions to attribute: one row per won lead created in the window, with its won amount.

    Columns: lead_id, created_at, converted_at (first win), value (all its won amounts, CNY) and
    opportunity_at (when its first opportunity was created, for the W-shaped model; missing when the
    export has no opportunity creation time).

    >>> leads = pd.DataFrame({"lead_id": ["L1", "L2"], "created_at": pd.to_datetime(["2025-01-02", "2025-01-03"])})
    >>> opps = pd.DataFrame({"lead_id": ["L1", "L1", "L2"], "status": ["won", "won", "lost"],
    ...                      "amount": [100.0, 50.0, 80.0], "closed_at": pd.to_datetime(["2025-02-01"] * 3)})
    >>> won_leads(leads, opps)[["lead_id", "value"]].values.tolist()
    [['L1', 150.0]]
    """
    check_table(leads, "leads", ["lead_id", "created_at"])
    check_table(opportunities, "opportunities", ["lead_id", "status", "amount", "closed_at"], allow_empty=True)
    lo, hi = day_bounds(start, end)
    cohort = leads[in_window(leads["created_at"], lo, hi)].drop_duplicates("lead_id")
    opp = opportunities
    won = opp[
        (opp["status"] == "won")
        & opp["closed_at"].notna()
        & isin(opp["lead_id"], cohort["lead_id"])
        & in_window(opp["closed_at"], None, hi)
    ]
    g = won.groupby("lead_id")
    per = pd.DataFrame({"converted_at": g["closed_at"].min(), "value": g["amount"].sum()})
    out = cohort[["lead_id", "created_at"]].join(per, on="lead_id", how="inner")
    if "created_at" in opp:
        first_opp = opp[isin(opp["lead_id"], out["lead_id"])].groupby("lead_id")["created_at"].min()
        out["opportunity_at"] = pd.to_datetime(out["lead_id"].map(first_opp)) if len(out) else pd.NaT
    else:
        out["opportunity_at"] = pd.NaT
    return out.reset_index(drop=True)


def empty_attribution(models: Sequence[str] = MODELS) -> pd.DataFrame:
    """Return the per-channel attribution table with no rows (the columns of :attr:`Attribution.channel`)."""
    cols = {"channel": pd.Series(dtype=object)}
    for m in models:
        cols[f"{m}_conversions"] = pd.Series(dtype=float)
        cols[f"{m}_revenue"] = pd.Series(dtype=float)
    return pd.DataFrame(cols)


@dataclass
class Attribution:
    """Credits of each conversion to its touches, and their totals per channel and per campaign."""

    credits: pd.DataFrame  # one row per counted touch (or unattributed conversion): a credit column per model
    channel: pd.DataFrame  # channel, then <model>_conversions and <model>_revenue for each model
    campaign: pd.DataFrame  # campaign_id, channel, then the same columns
    models: tuple[str, ...]


def _position_credit(pos: np.ndarray, n: np.ndarray, weights: tuple[float, float, float]) -> np.ndarray:
    """Return position-based credits: first w0, last w2, w1 spread over the middle touches.

    One touch takes everything; with two, the middle share goes to first and last in
    proportion to their weights (50/50 for the default 40/20/40).
    """
    w0, w1, w2 = weights
    first, last = pos == 0, pos == n - 1
    middle = np.where(n > 2, w1 / np.maximum(n - 2, 1), 0.0)
    two = np.where(first, w0, w2) / (w0 + w2) if (w0 + w2) > 0 else np.full(len(pos), 0.5)
    many = np.where(first, w0, np.where(last, w2, middle))
    return np.where(n == 1, 1.0, np.where(n == 2, two, many))


W_SHAPED: tuple[float, float, float] = (0.3, 0.3, 0.3)
"""W-shaped shares of the first touch, the lead-creation touch and the opportunity-creation touch;
the remaining 10% is spread evenly over the other touches."""


def _time_decay_credit(t: pd.DataFrame, half_life_days: float) -> np.ndarray:
    """Return time-decay credits: a touch ``d`` days before the conversion's reference time weighs
    0.5 ** (d / half_life_days), normalised per conversion.

    The reference time is the conversion's cut-off, or its last counted touch when there is none.
    """
    last = t.groupby("lead_id", sort=False)["touched_at"].transform("max")
    ref = t["_cutoff"].where(t["_cutoff"].notna(), last) if "_cutoff" in t else last
    age = ((ref - t["touched_at"]) / pd.Timedelta(days=1)).clip(lower=0).to_numpy(dtype=float)
    weight = pd.Series(0.5 ** (age / half_life_days), index=t.index)
    return (weight / weight.groupby(t["lead_id"], sort=False).transform("sum")).to_numpy()


def _milestone(t: pd.DataFrame, pos: np.ndarray, n: np.ndarray, column: str) -> np.ndarray:
    """Return each row's milestone position: its conversion's last counted touch at or before ``column``
    (the first touch when none is before it, the last touch when the time is missing)."""
    if column not in t:
        return n - 1
    at = t[column]
    before = pd.Series(np.where((t["touched_at"] <= at).to_numpy(), pos, -1), index=t.index)
    last_before = before.groupby(t["lead_id"], sort=False).transform("max").to_numpy()
    return np.where(at.isna().to_numpy(), n - 1, np.maximum(last_before, 0))


def _w_shaped_credit(t: pd.DataFrame, pos: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Return W-shaped credits: 30% each to the first, lead-creation and opportunity-creation touches
    (shares add up where two are the same touch), 10% over the rest, normalised per conversion when
    there is no other touch."""
    lead_pos = _milestone(t, pos, n, "_lead_at")
    opp_pos = _milestone(t, pos, n, "_opportunity_at")
    w0, w1, w2 = W_SHAPED
    share = w0 * (pos == 0) + w1 * (pos == lead_pos) + w2 * (pos == opp_pos)
    milestone = pd.Series(share > 0, index=t.index)
    others = n - milestone.groupby(t["lead_id"], sort=False).transform("sum").to_numpy()
    rest = 1.0 - sum(W_SHAPED)
    credit = pd.Series(np.where(share > 0, share, rest / np.maximum(others, 1)), index=t.index)
    return (credit / credit.groupby(t["lead_id"], sort=False).transform("sum")).to_numpy()


def _checked(
    touches: pd.DataFrame,
    conversions: pd.DataFrame,
    models: Sequence[str],
    position_weights: tuple[float, float, float],
    cutoff: str | None,
) -> tuple[tuple[str, ...], tuple[float, float, float]]:
    """Return the models and position weights of :func:`attribute` once its inputs are checked.

    Raises ValueError naming what is wrong, :class:`NotEnoughData` when there is no conversion.
    """
    check_table(touches, "touches", ["touch_id", "lead_id", "channel", "touched_at"], allow_empty=True)
    need = ["lead_id", "value"] + ([cutoff] if cutoff else [])
    check_table(conversions, "conversions", need, allow_empty=True)
    if conversions.empty:
        raise NotEnoughData("attribution.none", 1, 0)
    models = tuple(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(
            f"unknown attribution model(s) {', '.join(unknown) or '(none given)'}; expected some of {', '.join(MODELS)}"
        )
    w = tuple(float(x) for x in position_weights)
    if len(w) != 3 or min(w) < 0 or not np.isclose(sum(w), 1.0):
        raise ValueError(
            f"position_weights must be three shares ≥ 0 summing to 1 (first, middle, last), got {position_weights}"
        )
    if conversions["lead_id"].duplicated().any():
        dup = conversions.loc[conversions["lead_id"].duplicated(), "lead_id"].iloc[0]
        raise ValueError(f"table 'conversions': one row per converted lead, {dup!r} appears more than once")
    return models, w


def _credits(
    touches: pd.DataFrame,
    conv: pd.DataFrame,
    models: tuple[str, ...],
    w: tuple[float, float, float],
    half_life_days: float = 7.0,
) -> pd.DataFrame:
    """Return one row per counted touch with each model's credit, and a ``(no touch)`` row per conversion
    without any."""
    cols = ["touch_id", "lead_id", "channel", "touched_at"] + (["campaign_id"] if "campaign_id" in touches else [])
    t = touches[cols].merge(conv, on="lead_id", how="inner")
    keep = t["touched_at"].notna() & (t["_cutoff"].isna() | (t["touched_at"] <= t["_cutoff"]))
    t = t[keep].sort_values(["lead_id", "touched_at", "touch_id"], kind="stable").reset_index(drop=True)
    if "campaign_id" not in t:
        t["campaign_id"] = None
    g = t.groupby("lead_id", sort=False)
    pos = g.cumcount().to_numpy()
    n = g["touch_id"].transform("size").to_numpy()
    t["position"] = pos + 1
    t["touches"] = n
    credit = {
        "first_touch": lambda: (pos == 0).astype(float),
        "last_touch": lambda: (pos == n - 1).astype(float),
        "linear": lambda: 1.0 / np.maximum(n, 1),
        "position_based": lambda: _position_credit(pos, n, w),
        "time_decay": lambda: _time_decay_credit(t, half_life_days),
        "w_shaped": lambda: _w_shaped_credit(t, pos, n),
    }
    for m in models:
        t[m] = credit[m]()
    none = conv[~isin(conv["lead_id"], t["lead_id"])]
    if len(none):
        extra = pd.DataFrame(
            {
                "touch_id": None,
                "lead_id": none["lead_id"].to_numpy(),
                "channel": NO_TOUCH,
                "touched_at": pd.NaT,
                "value": none["value"].to_numpy(),
                "campaign_id": NO_TOUCH,
                "position": 0,
                "touches": 0,
                **dict.fromkeys(models, 1.0),
            }
        )
        t = pd.concat([t, extra], ignore_index=True)
    t["channel"] = as_label(t["channel"])
    t["campaign_id"] = as_label(t["campaign_id"])
    credits = t[
        ["lead_id", "touch_id", "channel", "campaign_id", "touched_at", "position", "touches", "value", *models]
    ]
    return credits


def _credit_table(credits: pd.DataFrame, models: tuple[str, ...], keys: list[str]) -> pd.DataFrame:
    """Return the conversions and revenue credited per ``keys`` under each model, most revenue first."""
    parts = {}
    for m in models:
        parts[f"{m}_conversions"] = credits[m]
        parts[f"{m}_revenue"] = credits[m] * credits["value"]
    df = pd.DataFrame(parts).join(credits[keys]).groupby(keys, sort=False).sum()
    by = "linear" if "linear" in models else models[0]
    return df.sort_values(f"{by}_revenue", ascending=False, kind="stable").reset_index()


def attribute(
    touches: pd.DataFrame,
    conversions: pd.DataFrame,
    models: Sequence[str] = MODELS,
    position_weights: tuple[float, float, float] = (0.4, 0.2, 0.4),
    cutoff: str | None = "created_at",
    half_life_days: float = 7.0,
) -> Attribution:
    """Spread each conversion over the touches before it under several models, side by side.

    ``conversions`` has one row per converted lead: lead_id, value (CNY, the won amount;
    missing counts as 0) and the ``cutoff`` column (default: the lead's ``created_at``;
    ``converted_at`` to count touches up to the win; None for every touch). Only
    touches at or before the cut-off count; a lead's touches are ordered by time (then
    touch_id). Models:

    * ``first_touch`` / ``last_touch``: all credit to the first / last touch;
    * ``linear``: 1/n to each of n touches;
    * ``position_based``: ``position_weights`` (default 40% first, 20% spread evenly over
      the middle touches, 40% last); with one touch it takes 100%, with two they share
      the middle part in proportion to their weights (50/50 by default);
    * ``time_decay``: a touch ``d`` days before the cut-off weighs 0.5 ** (d / half_life_days)
      (default half-life 7 days), the weights normalised to 1;
    * ``w_shaped``: 30% each to the first touch, the lead-creation touch (the last one at or
      before ``created_at``) and the opportunity-creation touch (the last one at or before
      ``opportunity_at``, when the conversions have it), 10% over the other touches; where
      two milestones are the same touch their shares add up, and without other touches the
      milestones' shares are scaled to 1.

    Each conversion's credits sum to 1 under every model; a conversion without any
    counted touch is credited whole to ``(no touch)``, so the totals always equal the
    number of conversions and their value.
    """
    models, w = _checked(touches, conversions, models, position_weights, cutoff)
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be > 0 (days), got {half_life_days}")
    times = {"_lead_at": "created_at", "_opportunity_at": "opportunity_at"}
    conv = pd.DataFrame(
        {
            "lead_id": conversions["lead_id"].to_numpy(),
            "value": pd.to_numeric(conversions["value"]).fillna(0.0).to_numpy(dtype=float),
            "_cutoff": conversions[cutoff].to_numpy() if cutoff else pd.NaT,
            **{k: pd.to_datetime(conversions[c]).to_numpy() for k, c in times.items() if c in conversions},
        }
    )
    credits = _credits(touches, conv, models, w, half_life_days)
    return Attribution(
        credits.reset_index(drop=True),
        _credit_table(credits, models, ["channel"]),
        _credit_table(credits, models, ["campaign_id", "channel"]),
        models,
    )
