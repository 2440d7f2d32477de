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


# --------------------------------------------------------------------------- e-mail campaign events
EMAIL_EVENTS = ("sent", "open", "click", "bounce", "unsubscribe")
"""Kinds of e-mail event, as exported (``email_events.event``)."""

AB_CAMPAIGN = next(i for i, c in enumerate(CAMPAIGNS) if c[1] == "2025季度邮件营销")
AB_MONTHS = ("2025-10", "2025-11", "2025-12")
"""The mailings of :data:`AB_CAMPAIGN` that tested two subject lines against each other (planted)."""
AB_SUBJECTS = ("年终特惠：企业服务方案限时8折", "您的2026数字化升级清单（含专属报价）")
AB_OPEN = (0.18, 0.27)  # planted: variant B's subject line is opened half as often again as A's
OPEN_RATE, CLICK_GIVEN_OPEN, BOUNCE_RATE, UNSUBSCRIBE_GIVEN_OPEN = 0.20, 0.15, 0.02, 0.02
MAILING_LIST = 3000  # prospects on each mailing's list at scale 1
PROSPECTS = 15000  # the prospect pool the lists are drawn from at scale 1


@dataclass(frozen=True)
class EmailEvents:
    """Every e-mail event: who, which mailing and variant, what happened and when."""

    recipient: np.ndarray  # prospects 0..pool-1, then pool + lead index for leads
    lead: np.ndarray  # the lead the recipient became, or -1
    mailing: np.ndarray
    variant: np.ndarray  # 0 no test, 1 A, 2 B
    kind: np.ndarray  # index into EMAIL_EVENTS
    time: np.ndarray
    mailing_campaign: np.ndarray
    mailing_time: np.ndarray
    mailing_month: tuple[str, ...]
    pool: int


def mailings() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Return the e-mail mailings: campaign, send time (the 5th of each month, 10:00) and month."""
    camp, when, month = [], [], []
    for i, c in enumerate(CAMPAIGNS):
        if c[0] != "email":
            continue
        for m in np.arange(np.datetime64(c[2][:7]), np.datetime64(c[3][:7]) + 1):
            camp.append(i)
            when.append(ts(f"{m}-05T10:00:00"))
            month.append(str(m))
    return np.array(camp), np.array(when, dtype=np.int64), tuple(month)


def _responses(ctx: Context, n: int, variant: np.ndarray, sent: np.ndarray) -> list[np.ndarray]:
    """Return, per recipient, whether the mail bounced, was opened, clicked, and led to an unsubscribe."""
    rng = ctx.rng
    p_open = np.where(variant == 1, AB_OPEN[0], np.where(variant == 2, AB_OPEN[1], OPEN_RATE))
    bounce = rng.random(n) < BOUNCE_RATE
    opened = ~bounce & (rng.random(n) < p_open)
    clicked = opened & (rng.random(n) < CLICK_GIVEN_OPEN)
    unsub = opened & ~clicked & (rng.random(n) < UNSUBSCRIBE_GIVEN_OPEN)
    t_open = sent + (rng.exponential(6.0, n) * HOUR).astype(np.int64) + 300
    t_click = t_open + (rng.exponential(0.5, n) * HOUR).astype(np.int64) + 30
    return [bounce, opened, clicked, unsub, t_open, t_click]


def _lead_recipients(leads: Leads, touches: Touches, m_camp: np.ndarray, m_time: np.ndarray) -> np.ndarray:
    """Return, per lead, the e-mail mailing that brought it (the last of its campaign before it), or -1."""
    out = np.full(leads.n, -1)
    for c in np.unique(m_camp):
        ids = np.flatnonzero(m_camp == c)
        who = np.flatnonzero(touches.lead_campaign == c)
        j = np.searchsorted(m_time[ids], leads.created[who] - HOUR, side="right") - 1
        out[who[j >= 0]] = ids[j[j >= 0]]
    return out


def draw_email(ctx: Context, leads: Leads, touches: Touches) -> EmailEvents:
    """Return the e-mail events: each mailing to a list of prospects, and the leads its clicks brought.

    Leads whose last touch is an e-mail campaign received, opened and clicked that campaign's last
    mailing before they arrived. The Q4 2025 mailings of :data:`AB_CAMPAIGN` split their list 50/50
    between two subject lines; B is opened more often (:data:`AB_OPEN`).
    """
    rng = ctx.rng
    m_camp, m_time, m_month = mailings()
    pool, size = max(int(PROSPECTS * ctx.scale), 50), max(int(MAILING_LIST * ctx.scale), 20)
    ab = (m_camp == AB_CAMPAIGN) & np.isin(np.array(m_month), AB_MONTHS)
    rec = np.concatenate([rng.choice(pool, size, replace=False) for _ in m_camp])
    mail = np.repeat(np.arange(len(m_camp)), size)
    lead_mail = _lead_recipients(leads, touches, m_camp, m_time)
    who = np.flatnonzero(lead_mail >= 0)
    rec = np.concatenate([rec, pool + who])
    mail = np.concatenate([mail, lead_mail[who]])
    lead = np.concatenate([np.full(len(rec) - len(who), -1), who])
    n = len(rec)
    variant = np.where(ab[mail], rng.integers(1, 3, n), 0)
    sent = m_time[mail]
    bounce, opened, clicked, unsub, t_open, t_click = _responses(ctx, n, variant, sent)
    is_lead = lead >= 0
    created = np.where(is_lead, leads.created[np.maximum(lead, 0)], 0)
    # the leads clicked through before they arrived: their clicks land between the mailing and the lead
    t_click = np.where(is_lead, np.minimum(t_click, created - 300), t_click)
    t_open = np.where(is_lead, np.minimum(t_open, t_click - 60), t_open)
    bounce, unsub = bounce & ~is_lead, unsub & ~is_lead
    opened, clicked = opened | is_lead, clicked | is_lead
    parts = [(np.ones(n, bool), 0, sent), (opened, 1, t_open), (clicked, 2, t_click), (bounce, 3, sent + 120)]
    parts.append((unsub, 4, t_open + 90))
    idx = np.concatenate([np.flatnonzero(m) for m, _, _ in parts])
    kind = np.concatenate([np.full(int(m.sum()), k) for m, k, _ in parts])
    time = np.concatenate([t[m] for m, _, t in parts])
    order = sort_order(time, idx)
    idx, kind, time = idx[order], kind[order], time[order]
    return EmailEvents(rec[idx], lead[idx], mail[idx], variant[idx], kind, time, m_camp, m_time, m_month, pool)
