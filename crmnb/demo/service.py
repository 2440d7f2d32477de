"""After-sales: service tickets and web/app/store visits of buying customers.

Unhappy customers complain more (and churn earlier, see :mod:`crmnb.demo.orders`); slow resolution
lowers csat and nps. Visits fade out over the four months before a customer churns, which is what a
churn model should pick up. About half of a duplicated customer's later tickets and visits land on
its duplicate record.

Each ticket also has the fields a service desk exports (:class:`Desk`): channel, priority, first response,
reopened and product, drawn from a stream of their own so that no other table moves. Complaints are written
in Chinese about one of seven themes; after :data:`PRODUCT_CHANGE` (a new release of 智能版) most of that
product's complaints are about faults (系统故障), so that theme's share of complaints rises (planted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmnb.demo.clock import DAY, EXPORT_END, HOUR, NAT, snap, ts
from crmnb.demo.context import Context
from crmnb.demo.customers import Accounts
from crmnb.demo.faults import Duplicates, move_to_duplicates
from crmnb.demo.orders import Buyers, activity_window, poisson_times
from crmnb.demo.text import ColumnFn, col_cat, col_datetime, col_int
from crmnb.demo.vocab import (
    CHANGED_PRODUCT,
    COMPLAINT_TAILS,
    COMPLAINT_THEMES,
    FAULT_THEME,
    FIRST_RESPONSE_MEDIAN_HOURS,
    PRIORITY_WEIGHTS,
    PRODUCT_WEIGHTS,
    PRODUCTS,
    THEME_WEIGHTS,
    TICKET_CHANNEL_WEIGHTS,
    TICKET_CHANNELS,
    TICKET_NOTES,
    TICKET_PRIORITIES,
    VISIT_CHANNEL_WEIGHTS,
    VISIT_CHANNELS,
)

PRODUCT_CHANGE = ts("2025-10-08")
"""The day 智能版's new release ships; from then most of its complaints are about faults (planted)."""
FAULT_SHARE_AFTER = 0.9
"""The share of the changed product's complaints about faults after the release."""
PRIORITY_FACTOR = (0.4, 0.7, 1.0, 1.3)
"""Factor on the first-response time by priority: urgent tickets are answered first."""


@dataclass(frozen=True)
class Desk:
    """The service desk's fields of each ticket, in the tickets' order."""

    channel: np.ndarray
    priority: np.ndarray
    first_response: np.ndarray
    reopened: np.ndarray
    product: np.ndarray
    theme: np.ndarray
    """The complaint's theme (index into COMPLAINT_THEMES); -1 for a request."""
    text: np.ndarray
    """Index into :func:`complaint_texts` for a complaint; -1 for a request."""


@dataclass(frozen=True)
class Tickets:
    """Service tickets by creation time."""

    acc: np.ndarray
    time: np.ndarray
    type: np.ndarray
    resolved: np.ndarray
    csat: np.ndarray
    nps: np.ndarray
    note: np.ndarray
    desk: Desk


@dataclass(frozen=True)
class Visits:
    """Visits by time."""

    acc: np.ndarray
    time: np.ndarray
    channel: np.ndarray


def draw_ticket_times(ctx: Context, acc: Accounts, buyers: Buyers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the tickets' buyer (position in buyers.index), type and creation time."""
    rng = ctx.rng
    who_acc = buyers.index
    lo, hi = activity_window(acc, buyers, who_acc, 30)
    rate = np.full(len(who_acc), 0.10) * np.exp(rng.normal(0, 0.3, len(who_acc)))
    who_r, t_r = poisson_times(ctx, rate, lo, hi)
    crate = 0.033 * np.exp(0.7 * buyers.unhappy[who_acc] - 0.245)
    who_c, t_c = poisson_times(ctx, crate, lo, hi)
    who = np.concatenate([who_r, who_c])
    typ = np.concatenate([np.zeros(len(who_r), np.int64), np.ones(len(who_c), np.int64)])
    t = np.minimum(snap(rng, np.concatenate([t_r, t_c])), EXPORT_END)
    return who, typ, t


def draw_tickets(ctx: Context, acc: Accounts, buyers: Buyers, dup: Duplicates) -> Tickets:
    """Return requests and complaints; unhappy customers complain more (and churn more)."""
    rng = ctx.rng
    who, typ, t = draw_ticket_times(ctx, acc, buyers)
    n = len(t)
    med = np.where(typ == 1, 30.0, 8.0)
    res_h = med * np.exp(rng.normal(0, 0.9, n))
    resolved = t + (res_h * HOUR).astype(np.int64)
    unresolved = (rng.random(n) < 0.02) | (resolved > EXPORT_END)
    resolved = np.where(unresolved, NAT, resolved)
    lr = np.log(res_h / med)
    surveyed = (rng.random(n) < 0.6) & ~unresolved
    csat = np.clip(np.round(np.where(typ == 1, 3.0, 4.3) - 0.3 * lr + rng.normal(0, 0.8, n)), 1, 5)
    csat = np.where(surveyed, csat, -1).astype(np.int64)
    nps_s = (rng.random(n) < 0.4) & ~unresolved
    nps = np.clip(np.round(np.where(typ == 1, 5.5, 8.3) - 0.6 * lr + rng.normal(0, 1.7, n)), 0, 10)
    nps = np.where(nps_s, nps, -1).astype(np.int64)
    note_start = np.where(typ == 1, len(TICKET_NOTES[0]), 0)
    note_n = np.where(typ == 1, len(TICKET_NOTES[1]), len(TICKET_NOTES[0]))
    note = note_start + (rng.random(n) * note_n).astype(np.int64)
    a = move_to_duplicates(ctx, dup, acc.n, buyers.index[who], t, np.ones(n, bool))
    o = np.argsort(t, kind="stable")
    desk = draw_desk(ctx.seed, typ[o], t[o], resolved[o])
    return Tickets(a[o], t[o], typ[o], resolved[o], csat[o], nps[o], note[o], desk)


def complaint_texts() -> list[str]:
    """Return every complaint text the demo writes: product × theme phrase × tail, in that order."""
    phrases = [p for _, ps in COMPLAINT_THEMES for p in ps]
    return [f"{prod}：{p}{tail}" for prod in PRODUCTS for p in phrases for tail in COMPLAINT_TAILS]


def draw_themes(rng: np.random.Generator, t: np.ndarray, product: np.ndarray) -> np.ndarray:
    """Return each complaint's theme: the changed product's complaints are mostly about faults after its release."""
    theme = rng.choice(len(COMPLAINT_THEMES), len(t), p=THEME_WEIGHTS)
    after = (t >= PRODUCT_CHANGE) & (product == CHANGED_PRODUCT) & (rng.random(len(t)) < FAULT_SHARE_AFTER)
    return np.where(after, FAULT_THEME, theme)


def draw_desk(seed: int, typ: np.ndarray, t: np.ndarray, resolved: np.ndarray) -> Desk:
    """Return the service desk's fields, from a stream of their own (no other table's draws move)."""
    rng = np.random.default_rng([seed, 18])
    n = len(t)
    channel = rng.choice(len(TICKET_CHANNELS), n, p=TICKET_CHANNEL_WEIGHTS)
    priority = np.empty(n, np.int64)
    for k, w in enumerate(PRIORITY_WEIGHTS):
        priority[typ == k] = rng.choice(len(TICKET_PRIORITIES), int((typ == k).sum()), p=w)
    hours = np.asarray(FIRST_RESPONSE_MEDIAN_HOURS)[channel] * np.asarray(PRIORITY_FACTOR)[priority]
    first = t + (hours * np.exp(rng.normal(0, 0.7, n)) * HOUR).astype(np.int64)
    first = np.where(resolved != NAT, np.minimum(first, resolved), first)
    first = np.where(first > EXPORT_END, NAT, first)
    reopened = (rng.random(n) < np.where(typ == 1, 0.09, 0.03)).astype(np.int64)
    reopened = np.where(resolved == NAT, 0, reopened + (rng.random(n) < 0.15 * reopened))
    product = rng.choice(len(PRODUCTS), n, p=PRODUCT_WEIGHTS)
    theme = np.where(typ == 1, draw_themes(rng, t, product), -1)
    starts = np.cumsum([0] + [len(ps) for _, ps in COMPLAINT_THEMES])
    sizes = np.diff(starts)
    phrase = starts[np.maximum(theme, 0)] + (rng.random(n) * sizes[np.maximum(theme, 0)]).astype(np.int64)
    tail = rng.choice(len(COMPLAINT_TAILS), n, p=(0.4, 0.2, 0.15, 0.15, 0.1))
    text = (product * starts[-1] + phrase) * len(COMPLAINT_TAILS) + tail
    return Desk(channel, priority, first, reopened, product, theme, np.where(typ == 1, text, -1))


def draw_visits(ctx: Context, acc: Accounts, buyers: Buyers, dup: Duplicates) -> Visits:
    """Return web/app/store visits; they fade out over the months before churn."""
    rng = ctx.rng
    who_acc = buyers.index
    lo, hi = activity_window(acc, buyers, who_acc, 0)
    rate = rng.gamma(2.0, 1.4 / 2.0, len(who_acc))
    who, t = poisson_times(ctx, rate, lo, hi)
    churn = buyers.churn[who_acc][who]
    fade = np.clip((churn.astype(np.float64) - t) / (120 * DAY), 0.0, 1.0)
    keep = rng.random(len(t)) < fade
    who, t = who[keep], t[keep]
    hour = np.clip(rng.normal(14.0, 4.5, len(t)), 0, 23.99)
    t = np.minimum(t // DAY * DAY + (hour * HOUR).astype(np.int64), EXPORT_END)
    ch = rng.choice(len(VISIT_CHANNELS), len(t), p=VISIT_CHANNEL_WEIGHTS)
    a = move_to_duplicates(ctx, dup, acc.n, who_acc[who], t, np.ones(len(t), bool))
    o = np.argsort(t, kind="stable")
    return Visits(a[o], t[o], ch[o])


def desk_columns(k: Tickets) -> dict[str, ColumnFn]:
    """Return the service desk's columns of the tickets table, and the note: a complaint's text, a request's note."""
    d = k.desk
    texts = list(TICKET_NOTES[0]) + complaint_texts()
    note = np.where(d.text >= 0, len(TICKET_NOTES[0]) + d.text, np.minimum(k.note, len(TICKET_NOTES[0]) - 1))
    return {
        "channel": col_cat(TICKET_CHANNELS, d.channel),
        "priority": col_cat(TICKET_PRIORITIES, d.priority),
        "first_response_at": col_datetime(d.first_response),
        "reopened": col_int(d.reopened),
        "product": col_cat(PRODUCTS, d.product),
        "note": col_cat(texts, note),
    }


def planted_themes(k: Tickets, dept: np.ndarray, names: tuple[str, ...]) -> dict[str, object]:
    """Return the answer key's complaint themes: the rising one, and each department's share of it either side."""
    d = k.desk
    complaint = k.type == 1
    shares = {}
    for i, name in enumerate(names):
        for label, when in (
            ("before", (k.time >= ts("2025-07-01")) & (k.time < ts("2025-10-01"))),
            ("after", (k.time >= ts("2025-10-01")) & (k.time < ts("2026-01-01"))),
        ):
            m = complaint & when & (dept == i)
            shares[f"{name} {label}"] = round(float((d.theme[m] == FAULT_THEME).mean()), 4) if m.any() else None
    return {
        "rising_theme": COMPLAINT_THEMES[FAULT_THEME][0],
        "product": PRODUCTS[CHANGED_PRODUCT],
        "product_change_date": "2025-10-08",
        "share_of_complaints": shares,
        "themes": [name for name, _ in COMPLAINT_THEMES],
        "slow_first_response_channel": TICKET_CHANNELS[int(np.argmax(FIRST_RESPONSE_MEDIAN_HOURS))],
    }
