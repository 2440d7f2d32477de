"""Orders: one per won deal, then each buying customer's repeat orders until it churns.

Repeat purchases follow a BG/NBD-like process: each customer buys at its own Gamma-distributed
monthly rate and may drop out after every purchase; repeat spend follows the Gamma-Gamma model,
growing mildly with the first deal's size. The care programme (:mod:`crmnb.demo.story`) makes
客户服务部's customers buy faster from 2025-10-01; :func:`calibrate_repeat` then adds or removes a
few repeat orders so that its 2025-Q3/Q4 repeat-purchase rate sits on target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmnb.demo.arrays import group_starts, grouped_cumsum, sort_order
from crmnb.demo.clock import DAY, EXPORT_END, MONTH, NEVER, QUARTER_STARTS, START, snap
from crmnb.demo.context import Context
from crmnb.demo.customers import PRE_EXISTING, WON, Accounts
from crmnb.demo.faults import Duplicates, move_to_duplicates
from crmnb.demo.sales import Opportunities
from crmnb.demo.story import (
    CARE_PROGRAM,
    CARE_RATE_FACTOR,
    CONTROL_DEPARTMENT,
    OPP_AMOUNT_MEDIAN,
    PURCHASE_RATE_MEAN,
    PURCHASE_RATE_SHAPE,
    REPEAT_SIZE_ELASTICITY,
    REPEAT_SPEND_MEDIAN,
    REPEAT_SPEND_Q,
    REPEAT_TARGET,
)


@dataclass(frozen=True)
class Buyers:
    """The buying customers' hidden traits, indexed by account (zero for the others)."""

    index: np.ndarray
    """The buying accounts."""
    churn: np.ndarray
    """When each account stops buying (:data:`crmnb.demo.clock.NEVER`: not before the export)."""
    unhappy: np.ndarray
    """How unhappy a customer is: more complaints, earlier drop-out."""
    mean_amt: np.ndarray
    """A customer's mean repeat-order amount."""


@dataclass(frozen=True)
class Orders:
    """The orders: account, time, the won deal behind it (-1 for repeat orders), amount."""

    acc: np.ndarray
    time: np.ndarray
    opp: np.ndarray
    amount: np.ndarray

    def take(self, idx: np.ndarray) -> Orders:
        """Return the orders at ``idx`` (a mask or positions)."""
        return Orders(self.acc[idx], self.time[idx], self.opp[idx], self.amount[idx])


def repeat_amount(ctx: Context, buyers: Buyers, acc: np.ndarray) -> np.ndarray:
    """Return repeat-order amounts around each customer's mean."""
    x = ctx.rng.gamma(3.0, 1.0, len(acc)) * buyers.mean_amt[acc] / 3.0
    return np.round(np.maximum(x, 200.0), 2)


def draw_traits(ctx: Context, acc: Accounts, buyers: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return the buyers' purchase rate per second, unhappiness, drop-out chance and mean spend."""
    rng = ctx.rng
    nb = len(buyers)
    lam = np.minimum(rng.gamma(PURCHASE_RATE_SHAPE, PURCHASE_RATE_MEAN / PURCHASE_RATE_SHAPE, nb), 4.0) / MONTH
    unhappy = rng.normal(0.0, 1.0, nb)
    p_drop = np.clip(rng.beta(2.0, 14.0, nb) * np.exp(0.45 * unhappy - 0.1), 0.02, 0.8)
    # customer mean repeat spend = p / nu with nu ~ Gamma(q): the Gamma-Gamma spend model's own shape,
    # scaled mildly with the first deal's size (big accounts reorder bigger)
    nu = rng.gamma(REPEAT_SPEND_Q, 1.0, nb) / (REPEAT_SPEND_Q - 1.0)
    mean_amt = (REPEAT_SPEND_MEDIAN * (acc.size[buyers] / OPP_AMOUNT_MEDIAN) ** REPEAT_SIZE_ELASTICITY) / nu
    return lam, unhappy, p_drop, mean_amt


def draw_repeats(
    ctx: Context, s0: np.ndarray, lam: np.ndarray, care: np.ndarray, k: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the repeat orders' buyer and time, and each buyer's last purchase (from ``s0`` on)."""
    rep_c = np.repeat(np.arange(len(s0)), k)
    gaps = ctx.rng.exponential(1.0, len(rep_c)) / lam[rep_c]
    cum = grouped_cumsum(gaps, k)
    st = group_starts(k)
    has = k > 0
    # operational time -> calendar time (care programme speeds up 客户服务部)
    a0 = np.where(s0 <= CARE_PROGRAM, s0, CARE_PROGRAM + care * (s0 - CARE_PROGRAM)).astype(np.float64)
    a = a0[rep_c] + cum
    cr = care[rep_c]
    t = np.where(a <= CARE_PROGRAM, a, CARE_PROGRAM + (a - CARE_PROGRAM) / cr)
    t = np.minimum(t, 4e9).astype(np.int64)
    last = np.where(k > 0, 0, s0).astype(np.int64)
    if len(rep_c):
        last_pos = st + k - 1
        last[has] = t[last_pos[has]]
    return rep_c, t, last


def draw_orders(ctx: Context, acc: Accounts, opps: Opportunities) -> tuple[Orders, Buyers]:
    """Return the deal orders, pre-2024 history and repeat orders (unsorted), and the buyers."""
    rng = ctx.rng
    buyers = np.flatnonzero(acc.kind <= WON)
    pre = acc.kind[buyers] == PRE_EXISTING
    created = acc.created[buyers]
    lam, unhappy, p_drop, mean_amt = draw_traits(ctx, acc, buyers)
    care = np.where(acc.dept[buyers] == CONTROL_DEPARTMENT, CARE_RATE_FACTOR, 1.0)

    # history before 2024 for pre-existing customers
    hist_c = np.repeat(np.arange(len(buyers)), np.where(pre, rng.poisson(lam * np.maximum(START - created, 0)), 0))
    hist_t = created[hist_c] + (rng.random(len(hist_c)) * (START - created[hist_c])).astype(np.int64)

    # from s0 on: exponential gaps, dropout after each purchase
    s0 = np.where(pre, START, created)
    k = rng.geometric(p_drop) - np.where(pre, 0, 1)
    k = np.minimum(k, np.ceil((EXPORT_END - s0) * lam * care * 2 + 10).astype(np.int64))
    rep_c, t, last = draw_repeats(ctx, s0, lam, care, k)
    next_gap = (rng.exponential(1.0, len(buyers)) / lam).astype(np.int64)
    keep = t <= EXPORT_END
    rep_c, t = rep_c[keep], t[keep]

    traits = Buyers(buyers, np.full(acc.n, NEVER), np.zeros(acc.n), np.zeros(acc.n))
    traits.churn[buyers] = np.where(last + next_gap <= EXPORT_END, last + next_gap, NEVER)
    traits.unhappy[buyers] = unhappy
    traits.mean_amt[buyers] = mean_amt

    won = np.flatnonzero(opps.status == 1)
    first_pre = np.flatnonzero(pre)
    orders = Orders(
        acc=np.concatenate([acc.of_opp[won], buyers[first_pre], buyers[hist_c], buyers[rep_c]]),
        time=np.concatenate([opps.closed[won], created[first_pre], hist_t, t]),
        opp=np.concatenate([won, np.full(len(first_pre) + len(hist_c) + len(rep_c), -1)]),
        amount=np.concatenate(
            [
                opps.amount[won],
                acc.size[buyers[first_pre]],
                repeat_amount(ctx, traits, buyers[hist_c]),
                repeat_amount(ctx, traits, buyers[rep_c]),
            ]
        ),
    )
    return orders, traits


def quarter_counts(orders: Orders, acc: Accounts, q: int, dept: int) -> tuple[np.ndarray, np.ndarray]:
    """Return which orders fall in quarter ``q`` for a department's customers, and orders per account."""
    lo, hi = QUARTER_STARTS[q], QUARTER_STARTS[q + 1]
    inq = (orders.time >= lo) & (orders.time < hi) & (acc.dept[orders.acc] == dept)
    return inq, np.bincount(orders.acc[inq], minlength=acc.n)


def nudge_quarter(ctx: Context, orders: Orders, acc: Accounts, buyers: Buyers, q: int, target: float) -> Orders:
    """Return the orders with a few repeat orders added or removed to hit a quarter's repeat rate."""
    rng = ctx.rng
    lo, hi = QUARTER_STARTS[q], QUARTER_STARTS[q + 1]
    inq, cnt = quarter_counts(orders, acc, q, CONTROL_DEPARTMENT)
    n1, n2 = int((cnt >= 1).sum()), int((cnt >= 2).sum())
    need = int(round(target * n1)) - n2
    if need > 0:
        ones = np.flatnonzero(cnt == 1)
        pick = np.sort(rng.choice(ones, min(need, len(ones)), replace=False))
        start = np.maximum(lo, acc.created[pick])
        end = np.minimum(hi, EXPORT_END)
        when = snap(rng, start + ((end - start) * rng.random(len(pick))).astype(np.int64))
        when = np.clip(when, start, end - 1)
        return Orders(
            acc=np.concatenate([orders.acc, pick]),
            time=np.concatenate([orders.time, when]),
            opp=np.concatenate([orders.opp, np.full(len(pick), -1)]),
            amount=np.concatenate([orders.amount, repeat_amount(ctx, buyers, acc.orig[pick])]),
        )
    if need < 0:
        twos = cnt == 2
        cand = np.flatnonzero(inq & (orders.opp < 0) & twos[orders.acc])
        # one removable order per customer
        _, first = np.unique(orders.acc[cand], return_index=True)
        cand = cand[first]
        drop = rng.choice(cand, min(-need, len(cand)), replace=False)
        keep = np.ones(len(orders.acc), bool)
        keep[drop] = False
        return orders.take(keep)
    return orders


def settle_orders(ctx: Context, orders: Orders, acc: Accounts, dup: Duplicates, buyers: Buyers) -> Orders:
    """Return the final orders: partly on duplicate records, calibrated, sorted by time and account."""
    moved = move_to_duplicates(ctx, dup, acc.n, orders.acc, orders.time, orders.opp < 0)
    orders = Orders(moved, orders.time, orders.opp, orders.amount)
    for q, target in REPEAT_TARGET.items():
        orders = nudge_quarter(ctx, orders, acc, buyers, q, target + float(ctx.rng.uniform(-0.004, 0.004)))
    return orders.take(sort_order(orders.time, orders.acc))


def activity_window(acc: Accounts, buyers: Buyers, who: np.ndarray, tail_days: int) -> tuple[np.ndarray, np.ndarray]:
    """Return each buyer's [from, to) window of activity: from 2024 or creation to churn plus a tail."""
    lo = np.maximum(acc.created[who], START)
    churn = buyers.churn[who]
    hi = np.where(churn < EXPORT_END, np.minimum(churn.astype(np.float64) + tail_days * DAY, EXPORT_END), EXPORT_END)
    hi = hi.astype(np.int64)
    return lo, np.maximum(hi, lo)


def poisson_times(ctx: Context, rate: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return Poisson events (row of ``rate``, time) at ``rate`` per month within [lo, hi)."""
    cnt = ctx.rng.poisson(rate * (hi - lo) / MONTH)
    who = np.repeat(np.arange(len(rate)), cnt)
    t = lo[who] + (ctx.rng.random(len(who)) * (hi - lo)[who]).astype(np.int64)
    return who, t
