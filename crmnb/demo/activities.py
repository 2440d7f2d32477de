"""Follow-up tasks (activities) for leads and customers, and whether they were done on time.

Each lead gets a first task "contact within 24 h" (done at the first contact) and more tasks over its
life, more for deals that get further. Buying customers get periodic tasks; from 2025-10-01
客户服务部's customers also get care calls (:data:`crmnb.demo.vocab.NOTE_CARE`). From the
intervention on, Sales 1's reminder makes its tasks punctual more often (:data:`crmnb.demo.story.ON_TIME`).
One large, loyal customer gets 130-160 activities (planted: the analysis should notice it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from crmnb.demo.clock import DAY, EXPORT_END, HOUR, NAT, START, snap
from crmnb.demo.context import Context
from crmnb.demo.customers import PRE_EXISTING, Accounts
from crmnb.demo.faults import Duplicates, mixed_date_formats
from crmnb.demo.leads import Leads
from crmnb.demo.orders import Buyers, activity_window, poisson_times
from crmnb.demo.sales import Opportunities
from crmnb.demo.story import CARE_PROGRAM, CONTROL_DEPARTMENT, INTERVENTION, INTERVENTION_DEPARTMENT, ON_TIME
from crmnb.demo.vocab import (
    ACTIVITY_NOTES,
    ACTIVITY_TYPE_WEIGHTS,
    ACTIVITY_TYPES,
    CUSTOMER_ACTIVITY_WEIGHTS,
    NOTE_CARE,
    NOTE_FIRST_CONTACT,
)

NOTE_VOCAB = [x for notes in ACTIVITY_NOTES for x in notes] + [NOTE_FIRST_CONTACT, NOTE_CARE]
"""Every activity note: the notes per type, then the first-contact and care-call notes."""
FIRST_NOTE, CARE_NOTE = len(NOTE_VOCAB) - 2, len(NOTE_VOCAB) - 1
NOTE_STARTS = np.cumsum([0] + [len(x) for x in ACTIVITY_NOTES])[:-1]
NOTE_COUNTS = np.array([len(x) for x in ACTIVITY_NOTES])


@dataclass(frozen=True)
class Tasks:
    """A group of activities, in the order drawn."""

    lead: np.ndarray
    acc: np.ndarray
    dept: np.ndarray
    rep: np.ndarray
    type: np.ndarray
    due: np.ndarray
    done: np.ndarray


@dataclass(frozen=True)
class Activities:
    """The activities by due time, with the date format each row is written in."""

    tasks: Tasks
    note: np.ndarray
    """Index into :data:`NOTE_VOCAB`."""
    fmt: np.ndarray
    """0 ISO, 1 '2025/3/4 10:05', 2 '2025年3月4日 10:05' (planted, see :mod:`crmnb.demo.faults`)."""
    heavy: int
    """The account with the planted pile of follow-ups."""


def complete(ctx: Context, due: np.ndarray, dept: np.ndarray, can: np.ndarray, not_before: np.ndarray) -> np.ndarray:
    """Return the completion time per task (NAT = not done); reminders make 销售一部 punctual."""
    rng = ctx.rng
    n = len(due)
    done = can & (rng.random(n) < 0.86)
    after = (dept == INTERVENTION_DEPARTMENT) & (due >= INTERVENTION)
    on_time = rng.random(n) < np.where(after, ON_TIME["sales_after"], ON_TIME["before"])
    early = due - (rng.exponential(5.0, n) * HOUR).astype(np.int64)
    early = np.minimum(np.maximum(early, not_before + 60), due)
    late = due + (rng.exponential(28.0, n) * HOUR).astype(np.int64) + 60
    t = np.where(on_time, early, late)
    return np.where(done & (t <= EXPORT_END), t, NAT)


def notes(ctx: Context, typ: np.ndarray) -> np.ndarray:
    """Return a random note of each task's type."""
    return NOTE_STARTS[typ] + (ctx.rng.random(len(typ)) * NOTE_COUNTS[typ]).astype(np.int64)


def task_counts(ctx: Context, leads: Leads, opps: Opportunities) -> np.ndarray:
    """Return the number of tasks per lead: more for deals that got further, at most 8."""
    rng, n, opp = ctx.rng, leads.n, opps.lead_opp
    fs = np.where(opp >= 0, opps.stage[np.maximum(opp, 0)], -1)
    n_task = np.where(
        opp >= 0,
        np.select([fs == 0, fs == 1, fs == 2, fs == 3], [3, 3, 4, 5], 3) + rng.integers(0, 3, n),
        np.where(leads.first_contact != NAT, 2 + (rng.random(n) < 0.15), 2),
    )
    return np.minimum(n_task, 8)


def first_tasks(ctx: Context, leads: Leads, lead_acc: np.ndarray) -> Tasks:
    """Return the first task of every lead: contact within 24 h, done at the first contact."""
    typ0 = np.where(ctx.rng.random(leads.n) < 0.7, 0, 3)
    lead = np.arange(leads.n)
    due = leads.created + DAY
    return Tasks(lead, lead_acc, leads.dept, leads.rep, typ0, due, leads.first_contact)


def later_tasks(ctx: Context, leads: Leads, opps: Opportunities, lead_acc: np.ndarray, others: np.ndarray) -> Tasks:
    """Return the further tasks of each lead, spread over its life (until its deal closes)."""
    rng, n, opp = ctx.rng, leads.n, opps.lead_opp
    has_fc = leads.first_contact != NAT
    lead = np.repeat(np.arange(n), others)
    closed = np.where(opp >= 0, opps.closed[np.maximum(opp, 0)], NAT)
    fc = leads.first_contact
    life_from = np.where(has_fc, fc, leads.created + DAY + 12 * HOUR)
    life_to = np.where(
        opp >= 0,
        np.where(closed != NAT, closed, EXPORT_END),
        np.where(has_fc, fc + (rng.uniform(5, 25, n) * DAY).astype(np.int64), leads.created + 7 * DAY),
    )
    life_to = np.maximum(life_to, life_from + HOUR)
    span = (life_to - life_from)[lead]
    due = snap(rng, life_from[lead] + (rng.random(len(lead)) * span).astype(np.int64))
    due = np.maximum(due, life_from[lead])
    typ = rng.choice(len(ACTIVITY_TYPES), len(lead), p=ACTIVITY_TYPE_WEIGHTS)
    dept = leads.dept[lead]
    done = complete(ctx, due, dept, has_fc[lead], leads.created[lead])
    return Tasks(lead, lead_acc[lead], dept, leads.rep[lead], typ, due, done)


def customer_tasks(ctx: Context, acc: Accounts, buyers: Buyers) -> tuple[np.ndarray, ...]:
    """Return periodic customer tasks (buyer, time, type) and the care calls (buyer, time)."""
    rng, b = ctx.rng, buyers.index
    lo, hi = activity_window(acc, buyers, b, 45)
    who, tc = poisson_times(ctx, np.full(len(b), 0.2), lo, hi)
    ctyp = rng.choice(len(ACTIVITY_TYPES), len(who), p=CUSTOMER_ACTIVITY_WEIGHTS)
    clo = np.maximum(lo, CARE_PROGRAM)
    chi = np.maximum(hi, clo)
    who2, tc2 = poisson_times(ctx, np.where(acc.dept[b] == CONTROL_DEPARTMENT, 0.45, 0.0), clo, chi)
    return who, tc, ctyp, who2, tc2


def draw_heavy(
    ctx: Context, acc: Accounts, buyers: Buyers, dup: Duplicates, have: tuple[np.ndarray, np.ndarray]
) -> tuple[int, np.ndarray, np.ndarray]:
    """Pick a big loyal customer; return its buyer position and its extra tasks' times and types.

    ``have`` holds the accounts of the tasks drawn so far and their buyer positions, so the customer
    ends with 130-160 activities in all.
    """
    rng, b = ctx.rng, buyers.index
    eligible = np.flatnonzero((acc.kind[b] == PRE_EXISTING) & (buyers.churn[b] > EXPORT_END) & ~np.isin(b, dup.orig))
    big = eligible[np.argsort(-acc.size[b[eligible]], kind="stable")[: max(1, len(eligible) // 20)]]
    heavy_b = int(big[rng.integers(0, len(big))])
    target = int(rng.integers(130, 161))
    extra = max(0, target - int((have[1] == heavy_b).sum()) - int((have[0] == b[heavy_b]).sum()))
    te = START + (rng.random(extra) * (EXPORT_END - START)).astype(np.int64)
    etyp = rng.choice(len(ACTIVITY_TYPES), extra, p=CUSTOMER_ACTIVITY_WEIGHTS)
    return heavy_b, te, etyp


def customer_task_group(
    ctx: Context, acc: Accounts, buyers: Buyers, who: np.ndarray, due: np.ndarray, typ: np.ndarray
) -> Tasks:
    """Return customer tasks of the given buyers, with their completion."""
    a = buyers.index[who]
    done = complete(ctx, due, acc.dept[a], np.ones(len(due), bool), acc.created[a])
    return Tasks(np.full(len(due), -1), a, acc.dept[a], acc.rep[a], typ, due, done)


def concat(groups: list[Tasks]) -> Tasks:
    """Return the tasks of all groups, one after the other."""
    return Tasks(*(np.concatenate([getattr(g, f.name) for g in groups]) for f in fields(Tasks)))


def draw_activities(
    ctx: Context, leads: Leads, opps: Opportunities, acc: Accounts, buyers: Buyers, dup: Duplicates
) -> Activities:
    """Return every activity due by the export date, by due time, in minutes."""
    opp = opps.lead_opp
    lead_acc = np.where(opp >= 0, acc.of_opp[np.maximum(opp, 0)], leads.existing)
    n_task = task_counts(ctx, leads, opps)
    first = first_tasks(ctx, leads, lead_acc)
    later = later_tasks(ctx, leads, opps, lead_acc, n_task - 1)
    who, tc, ctyp, who2, tc2 = customer_tasks(ctx, acc, buyers)
    have = (np.concatenate([first.acc, later.acc]), np.concatenate([who, who2]))
    heavy_b, te, etyp = draw_heavy(ctx, acc, buyers, dup, have)
    c_who = np.concatenate([who, who2, np.full(len(te), heavy_b)])
    c_due = snap(ctx.rng, np.concatenate([tc, tc2, te]))
    c_typ = np.concatenate([ctyp, np.zeros(len(who2), np.int64), etyp])
    c_care = np.concatenate([np.zeros(len(who), bool), np.ones(len(who2), bool), np.zeros(len(te), bool)])
    cust = customer_task_group(ctx, acc, buyers, c_who, c_due, c_typ)

    note = np.concatenate(
        [np.full(leads.n, FIRST_NOTE), notes(ctx, later.type), np.where(c_care, CARE_NOTE, notes(ctx, c_typ))]
    )
    tasks = concat([first, later, cust])
    order = np.flatnonzero(tasks.due <= EXPORT_END)
    order = order[np.argsort(tasks.due[order], kind="stable")]
    tasks = Tasks(*(getattr(tasks, f.name)[order] for f in fields(Tasks)))
    fmt = mixed_date_formats(ctx, len(order))
    # minute resolution everywhere in this file, so every format holds the same value
    due = tasks.due // 60 * 60
    done = np.where(tasks.done == NAT, NAT, tasks.done // 60 * 60)
    tasks = Tasks(tasks.lead, tasks.acc, tasks.dept, tasks.rep, tasks.type, due, done)
    return Activities(tasks, note[order], fmt, int(buyers.index[heavy_b]))
