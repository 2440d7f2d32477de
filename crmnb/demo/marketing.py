"""Marketing: the campaigns, each lead's touches, and what each campaign spent.

Every lead is touched by 1-4 campaigns of channels active at the time; the last touch before the
lead arrived sets ``leads.channel`` and ``leads.campaign_id`` (last-touch attribution). Trade-show
leads keep coming for :data:`crmnb.demo.vocab.TRADE_SHOW_FOLLOW_UP_DAYS` days after the show.
Spend follows the customers each campaign acquired, at 0.6-1.1 times its CPA benchmark, except 2-3
of the busier campaigns that overspend (1.45-1.8 times): the analysis should flag those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmnb.demo.arrays import grouped_cumsum, pick, sort_order
from crmnb.demo.clock import DAY, HOUR, START, ts
from crmnb.demo.context import Context
from crmnb.demo.leads import Leads
from crmnb.demo.vocab import CAMPAIGNS, CHANNELS, LEAD_CHANNEL_WEIGHTS, TRADE_SHOW, TRADE_SHOW_FOLLOW_UP_DAYS

CAMPAIGN_CHANNEL = np.array([CHANNELS.index(c[0]) for c in CAMPAIGNS])
CAMPAIGN_START = np.array([ts(c[2]) for c in CAMPAIGNS])
CAMPAIGN_END = np.array([ts(c[3]) + DAY for c in CAMPAIGNS])  # exclusive
CPA_BENCHMARK = np.array([c[4] for c in CAMPAIGNS], dtype=np.float64)


@dataclass(frozen=True)
class Touches:
    """Each lead's last-touch channel and campaign, and every touch by time."""

    lead_channel: np.ndarray
    lead_campaign: np.ndarray
    lead: np.ndarray
    time: np.ndarray
    campaign: np.ndarray


def campaign_at(t: np.ndarray, ch: np.ndarray, lead_window: bool) -> np.ndarray:
    """Return the campaign of channel ``ch`` active at ``t`` (or -1)."""
    out = np.full(len(t), -1)
    for c in range(len(CHANNELS)):
        ids = np.flatnonzero(np.equal(CAMPAIGN_CHANNEL, c))
        m = ch == c
        if not m.any():
            continue
        j = np.searchsorted(CAMPAIGN_START[ids], t[m], side="right") - 1
        end = CAMPAIGN_END[ids] + (TRADE_SHOW_FOLLOW_UP_DAYS * DAY if (lead_window and c == TRADE_SHOW) else 0)
        ok = (j >= 0) & (t[m] < end[np.maximum(j, 0)])
        out[m] = np.where(ok, ids[np.maximum(j, 0)], -1)
    return out


def channel_at(ctx: Context, t: np.ndarray, lead_window: bool) -> tuple[np.ndarray, np.ndarray]:
    """Draw a channel with an active campaign at ``t`` and return (channel, campaign)."""
    avail = np.stack([campaign_at(t, np.full(len(t), c), lead_window) >= 0 for c in range(len(CHANNELS))], axis=1)
    ch = pick(ctx.rng, avail * np.asarray(LEAD_CHANNEL_WEIGHTS))
    return ch, campaign_at(t, ch, lead_window)


def last_touch(ctx: Context, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return each lead's last-touch channel, campaign and time (during the show for trade shows)."""
    rng = ctx.rng
    n = len(t)
    ch, camp = channel_at(ctx, t, True)
    lag = (rng.exponential(1.5, n) * DAY).astype(np.int64) + 600
    cs = CAMPAIGN_START[camp]
    last = np.where(t - lag > cs, t - lag, cs + ((t - cs) * rng.random(n)).astype(np.int64))
    show = ch == TRADE_SHOW
    event_end = np.minimum(CAMPAIGN_END[camp], t)
    last = np.where(show, cs + ((event_end - cs) * rng.random(n)).astype(np.int64), last)
    return ch, camp, last


def draw_touches(ctx: Context, leads: Leads) -> Touches:
    """Return the marketing touches: the last one per lead and up to three earlier ones."""
    rng = ctx.rng
    n = leads.n
    ch, camp, last = last_touch(ctx, leads.created)
    n_touch = rng.choice(4, n, p=[0.35, 0.30, 0.22, 0.13]) + 1
    extra = n_touch - 1
    lead = np.repeat(np.arange(n), extra)
    gaps = (rng.exponential(8.0, len(lead)) * DAY).astype(np.int64) + HOUR
    tt = last[lead] - grouped_cumsum(gaps, extra)
    keep = tt >= START
    lead, tt = lead[keep], tt[keep]
    _, ecamp = channel_at(ctx, tt, False)
    ok = ecamp >= 0
    touch_lead = np.concatenate([np.arange(n), lead[ok]])
    touch_time = np.concatenate([last, tt[ok]])
    touch_camp = np.concatenate([camp, ecamp[ok]])
    order = sort_order(touch_time, touch_lead)
    return Touches(ch, camp, touch_lead[order], touch_time[order], touch_camp[order])


@dataclass(frozen=True)
class Spend:
    """What each campaign spent and how many customers it acquired (last touch)."""

    spend: np.ndarray
    acquired: np.ndarray


def draw_spend(ctx: Context, lead_status: np.ndarray, lead_campaign: np.ndarray) -> Spend:
    """Return campaign spend from last-touch acquisitions; 2-3 campaigns overspend."""
    rng = ctx.rng
    conv = lead_status == 1
    acquired = np.bincount(lead_campaign[conv], minlength=len(CAMPAIGNS))
    bench = CPA_BENCHMARK
    ratio = rng.uniform(0.6, 1.1, len(CAMPAIGNS))
    ranked = np.argsort(-acquired, kind="stable")[: len(CAMPAIGNS) // 2]
    over = np.sort(rng.choice(ranked, int(rng.integers(2, 4)), replace=False))
    ratio[over] = rng.uniform(1.45, 1.8, len(over))
    spend = np.round(np.where(acquired > 0, acquired * bench * ratio, bench * rng.uniform(0.3, 0.8, len(bench))), -2)
    return Spend(spend, acquired)
