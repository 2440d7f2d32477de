"""Inbound leads: when they arrive, who owns them, how fast they are first contacted.

Leads arrive in every department-quarter (:data:`crmnb.demo.story.LEADS_PER_QUARTER`). About 6 % come
from existing customers and reuse that customer's contact person, department and rep; the rest are
new people. From the intervention on, Sales 1's median first-response time is halved. About 6 % of
leads are never contacted; a contact planned after the export date is not in the export either.
From two to six weeks after each trade show more leads arrive (:data:`crmnb.demo.story.SHOW_LEAD_LIFT`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmnb.demo.arrays import scaled
from crmnb.demo.clock import DAY, EXPORT_END, HOUR, NAT, QUARTER_STARTS, office_time, ts
from crmnb.demo.context import Context
from crmnb.demo.people import People
from crmnb.demo.story import (
    EXISTING_LEAD_SHARE,
    INTERVENTION,
    INTERVENTION_DEPARTMENT,
    LEADS_PER_QUARTER,
    NEVER_CONTACTED,
    REMINDER_RESPONSE_FACTOR,
    RESPONSE_MEDIAN_H,
    RESPONSE_SIGMA,
    SHOW_LAG_DAYS,
    SHOW_LEAD_LIFT,
)
from crmnb.demo.vocab import CAMPAIGNS
from crmnb.intake.schema import DEPARTMENTS


@dataclass(frozen=True)
class Arrivals:
    """When each lead arrived and where, sorted by arrival."""

    created: np.ndarray
    dept: np.ndarray
    quarter: np.ndarray


@dataclass(frozen=True)
class Leads:
    """The leads, one row each, in order of arrival."""

    created: np.ndarray
    dept: np.ndarray
    quarter: np.ndarray
    rep: np.ndarray
    existing: np.ndarray
    """The pre-existing customer a lead comes from, or -1 for a new person."""
    person: np.ndarray
    email_missing: np.ndarray
    resp_h: np.ndarray
    """Planned hours to the first contact."""
    never: np.ndarray
    """Never contacted at all."""
    first_contact: np.ndarray
    """The first contact as exported (NAT when never or after the export date)."""
    industry: np.ndarray
    """The industry of the lead's company (index into vocab.INDUSTRIES)."""

    @property
    def n(self) -> int:
        """Return the number of leads."""
        return len(self.created)


SHOW_ENDS = np.array([ts(c[3]) + DAY for c in CAMPAIGNS if c[0] == "trade_show"])


def arrival_days(rng: np.random.Generator, lo: int, hi: int, n: int) -> np.ndarray:
    """Return ``n`` random midnights in [lo, hi): weekends less likely, the weeks after a trade show more."""
    day = np.arange(lo // DAY, -(-hi // DAY), dtype=np.int64)
    w = np.where((day + 3) % 7 >= 5, 0.3, 1.0)
    since = day[:, None] * DAY - SHOW_ENDS[None, :]
    after_show = ((since >= SHOW_LAG_DAYS[0] * DAY) & (since < SHOW_LAG_DAYS[1] * DAY)).any(axis=1)
    w = w * np.where(after_show, SHOW_LEAD_LIFT, 1.0)
    return rng.choice(day, size=n, p=w / w.sum()) * DAY


def draw_arrivals(ctx: Context) -> Arrivals:
    """Return the leads' arrival times per department and quarter, sorted by time."""
    created, dept, quarter = [], [], []
    for q in range(len(LEADS_PER_QUARTER)):
        for d in range(len(DEPARTMENTS)):
            n = scaled(LEADS_PER_QUARTER[q], ctx.scale, 20)
            t = arrival_days(ctx.rng, QUARTER_STARTS[q], QUARTER_STARTS[q + 1], n) + office_time(ctx.rng, n)
            created.append(np.minimum(t, EXPORT_END))
            dept.append(np.full(n, d))
            quarter.append(np.full(n, q))
    created_a = np.concatenate(created)
    order = np.argsort(created_a, kind="stable")
    return Arrivals(created_a[order], np.concatenate(dept)[order], np.concatenate(quarter)[order])


def draw_owners(
    ctx: Context, arr: Arrivals, pre_dept: np.ndarray, pre_rep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return each lead's rep and the pre-existing customer it comes from (-1: a new person)."""
    rng = ctx.rng
    n = len(arr.created)
    rep = ctx.pick_reps(arr.dept)
    existing = rng.random(n) < EXISTING_LEAD_SHARE
    of = np.full(n, -1)
    for d in range(len(DEPARTMENTS)):
        m = existing & (arr.dept == d)
        cands = np.flatnonzero(pre_dept == d)
        of[m] = cands[rng.integers(0, len(cands), int(m.sum()))]
    rep = np.where(of >= 0, pre_rep[np.maximum(of, 0)], rep)
    return rep, of


def draw_leads(ctx: Context, arr: Arrivals, pre_dept: np.ndarray, pre_rep: np.ndarray) -> tuple[Leads, People]:
    """Return the leads and every contact person (pre-existing customers first, then each new lead)."""
    rng = ctx.rng
    n, n_pre = len(arr.created), len(pre_dept)
    rep, existing = draw_owners(ctx, arr, pre_dept, pre_rep)
    new_lead = existing < 0
    people = People(rng, n_pre + int(new_lead.sum()))
    person = np.where(new_lead, n_pre + np.cumsum(new_lead) - 1, existing)
    email_missing = rng.random(n) < 0.08

    after = (arr.dept == INTERVENTION_DEPARTMENT) & (arr.created >= INTERVENTION)
    median = RESPONSE_MEDIAN_H * np.where(after, REMINDER_RESPONSE_FACTOR, 1.0) * ctx.reps.speed[rep]
    hours = np.clip(median * np.exp(rng.normal(0.0, RESPONSE_SIGMA, n)), 0.05, 24 * 30)
    never = rng.random(n) < NEVER_CONTACTED
    fc = (arr.created + (hours * HOUR).astype(np.int64)) // 60 * 60  # minutes, as the first task
    leads = Leads(
        created=arr.created,
        dept=arr.dept,
        quarter=arr.quarter,
        rep=rep,
        existing=existing,
        person=person,
        email_missing=email_missing,
        resp_h=hours,
        never=never,
        first_contact=np.where(never | (fc > EXPORT_END), NAT, fc),
        industry=people.industry[person],
    )
    return leads, people
