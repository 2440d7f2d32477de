"""After-sales: service tickets and web/app/store visits of buying customers.

Unhappy customers complain more (and churn earlier, see :mod:`crmnb.demo.orders`); slow resolution
lowers csat and nps. Visits fade out over the four months before a customer churns, which is what a
churn model should pick up. About half of a duplicated customer's later tickets and visits land on
its duplicate record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmnb.demo.clock import DAY, EXPORT_END, HOUR, NAT, snap
from crmnb.demo.context import Context
from crmnb.demo.customers import Accounts
from crmnb.demo.faults import Duplicates, move_to_duplicates
from crmnb.demo.orders import Buyers, activity_window, poisson_times
from crmnb.demo.vocab import TICKET_NOTES, VISIT_CHANNEL_WEIGHTS, VISIT_CHANNELS


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
    return Tickets(a[o], t[o], typ[o], resolved[o], csat[o], nps[o], note[o])


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
