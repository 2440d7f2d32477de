"""The sales funnel: which leads become opportunities, how far each gets, and the stage history.

Conversion is calibrated per department-quarter (:func:`stage_quotas`): the number of leads passing
each stage is fixed first, then *which* leads pass is a draw weighted by response time (faster first
contact, better odds; a rep's strong industries, better odds after the first stage). Each deal's
expected close date is optimistic (:data:`crmnb.demo.story.EXPECTED_CLOSE_SHARE`), and deals won in a
quarter's last month are larger (:data:`crmnb.demo.story.QUARTER_END_PUSH`). Lost deals get a stage-dependent loss reason; a slow first response (over
48 h) makes ``slow_response`` three times as likely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmnb.demo.arrays import pick, sort_order, top_k
from crmnb.demo.clock import DAY, EXPORT_END, HOUR, NAT, gamma_seconds
from crmnb.demo.context import Context
from crmnb.demo.faults import plant_tricky_notes
from crmnb.demo.leads import Leads
from crmnb.demo.story import (
    CONVERSION,
    EXPECTED_CLOSE_SHARE,
    LEADS_PER_QUARTER,
    OPP_AMOUNT_MEDIAN,
    OPP_AMOUNT_SIGMA,
    QUARTER_END_PUSH,
    REP_STRENGTH_BONUS,
    REP_STRENGTHS,
    RESPONSE_MEDIAN_H,
    STAGE_DWELL_DAYS,
    STAGE_PASS,
    conversion_target,
)
from crmnb.demo.vocab import LOSS_WEIGHTS, OPP_NOTES, OPP_TO_LEAD_STATUS
from crmnb.intake.schema import DEPARTMENTS


@dataclass(frozen=True)
class Opportunities:
    """The opportunities in order of creation, and each lead's outcome."""

    lead: np.ndarray
    created: np.ndarray
    entered: np.ndarray
    """When each of needs_confirmed, proposal, negotiation, won was entered (n, 4; NAT: not reached)."""
    lost_at: np.ndarray
    status: np.ndarray
    stage: np.ndarray
    closed: np.ndarray
    reason: np.ndarray
    amount: np.ndarray
    note: np.ndarray
    dept: np.ndarray
    rep: np.ndarray
    tricky: np.ndarray
    """The opportunities carrying a tricky note (planted), sorted."""
    lead_opp: np.ndarray
    """Per lead: its opportunity, or -1."""
    lead_status: np.ndarray
    """Per lead: index into schema.LEAD_STATUSES."""
    expected_close: np.ndarray
    """The rep's expected close date (midnight; may lie after the export date)."""

    @property
    def n(self) -> int:
        """Return the number of opportunities."""
        return len(self.lead)


def stage_quotas(ctx: Context, cell: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return per department-quarter cell how many leads reach needs, proposal, negotiation and won."""
    n_cells = len(LEADS_PER_QUARTER) * len(DEPARTMENTS)
    cell_n = np.bincount(cell, minlength=n_cells)
    k = np.zeros((4, n_cells), np.int64)  # needs, proposal, negotiation, won
    for c in range(n_cells):
        q, d = divmod(c, len(DEPARTMENTS))
        w = conversion_target(d, q) + float(np.clip(ctx.rng.normal(0.0, 0.003), -0.007, 0.007))
        g = (w / CONVERSION["sales_before"]) ** 0.25
        b, cc, dd = (p * g for p in STAGE_PASS)
        k[3, c] = round(cell_n[c] * w)
        k[2, c] = round(k[3, c] / dd)
        k[1, c] = round(k[2, c] / cc)
        k[0, c] = round(k[1, c] / b)
    return k[0], k[1], k[2], k[3]


def strong_pair(ctx: Context, leads: Leads) -> np.ndarray:
    """Return, per lead, whether its rep is planted as strong in its industry."""
    first = {d: int(np.flatnonzero(ctx.reps.dept == d)[0]) for d in np.unique(ctx.reps.dept)}
    strong = np.zeros(leads.n, bool)
    for d, place, industry in REP_STRENGTHS:
        strong |= (leads.rep == first[d] + place) & (leads.industry == industry)
    return strong


def furthest_stage(ctx: Context, leads: Leads) -> np.ndarray:
    """Return how far each lead is planned to get: 0 none, 1 needs_confirmed .. 4 won."""
    rng = ctx.rng
    n = leads.n
    cell = leads.quarter * len(DEPARTMENTS) + leads.dept
    k_needs, k_prop, k_neg, k_won = stage_quotas(ctx, cell)
    lr = -np.log(leads.resp_h / RESPONSE_MEDIAN_H)
    contacted = ~leads.never  # planned contact (timing may fall after the export)
    bonus = np.where(strong_pair(ctx, leads), REP_STRENGTH_BONUS, 0.0)

    def gumbel() -> np.ndarray:
        return rng.gumbel(0.0, 1.0, n)

    needs = top_k(cell, 0.5 * lr + 0.5 * (leads.existing >= 0) + gumbel(), contacted, k_needs)
    prop = top_k(cell, 0.2 * lr + bonus + gumbel(), needs, k_prop)
    neg = top_k(cell, 0.15 * lr + bonus + gumbel(), prop, k_neg)
    won = top_k(cell, 0.15 * lr + bonus + gumbel(), neg, k_won)
    return needs.astype(np.int64) + prop + neg + won


def draw_timeline(ctx: Context, leads: Leads, opp_leads: np.ndarray, fs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return, per planned opportunity, when each stage was entered, the stage lost at and when."""
    rng = ctx.rng
    m = len(opp_leads)
    fc_planned = leads.created[opp_leads] + (leads.resp_h[opp_leads] * HOUR).astype(np.int64)
    created = fc_planned + gamma_seconds(rng, 4.0, 1.5, m)
    dwell = np.stack([gamma_seconds(rng, STAGE_DWELL_DAYS[k], 2.0, m) for k in range(3)], axis=1)
    entered = np.full((m, 4), NAT)
    entered[:, 0] = created
    for k in range(1, 4):
        entered[:, k] = np.where(fs >= k + 1, entered[:, k - 1] + dwell[:, k - 1], NAT)
    lost_stage = np.where(fs < 4, fs - 1, -1)  # 0 needs, 1 proposal, 2 negotiation
    stall = (dwell[np.arange(m), np.maximum(lost_stage, 0)] * rng.uniform(0.9, 1.8, m)).astype(np.int64)
    lost_at = np.where(fs < 4, entered[np.arange(m), np.maximum(lost_stage, 0)] + stall, NAT)
    share = EXPECTED_CLOSE_SHARE * np.exp(rng.normal(0.0, 0.25, m))  # optimistic, some reps more than others
    expected = (created + (share * dwell.sum(axis=1)).astype(np.int64)) // DAY * DAY
    return created, entered, lost_stage, lost_at, expected


def lead_status(leads: Leads, final: np.ndarray, lead_opp: np.ndarray, opp_status: np.ndarray) -> np.ndarray:
    """Return each lead's status: its opportunity's, else open while in progress, else lost."""
    has_fc = leads.first_contact != NAT
    status = np.where(lead_opp >= 0, opp_status[np.maximum(lead_opp, 0)], -1)
    lost_old_lead = np.where(has_fc, leads.first_contact < EXPORT_END - 30 * DAY, leads.created < EXPORT_END - 14 * DAY)
    return np.select(
        [
            status >= 0,  # open / won / lost opportunity
            (final >= 1) & has_fc,  # opportunity not opened by the export date
            ~has_fc & ~leads.never,  # contact due after the export date
        ],
        [np.asarray(OPP_TO_LEAD_STATUS)[np.maximum(status, 0)], 0, 0],
        np.where(lost_old_lead, 2, 0),
    )


def quarter_end_push(closed: np.ndarray, won: np.ndarray) -> np.ndarray:
    """Return the seasonal factor on each deal's amount: by the month of the quarter a won deal closes in."""
    month = np.where(won, closed, 0).astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 3
    return np.where(won, np.asarray(QUARTER_END_PUSH)[month], 1.0)


def draw_opportunities(ctx: Context, leads: Leads) -> Opportunities:
    """Return the opportunities of the leads that reach needs_confirmed by the export date."""
    rng = ctx.rng
    final = furthest_stage(ctx, leads)
    opp_leads = np.flatnonzero(final >= 1)
    created, entered, lost_stage, lost_at, expected = draw_timeline(ctx, leads, opp_leads, final[opp_leads])
    keep = np.flatnonzero(created <= EXPORT_END)
    opp_leads, entered, lost_stage, lost_at = opp_leads[keep], entered[keep], lost_stage[keep], lost_at[keep]
    expected = expected[keep]
    entered = np.where(entered > EXPORT_END, NAT, entered)
    is_won = entered[:, 3] != NAT
    is_lost = (lost_at != NAT) & (lost_at <= EXPORT_END)
    lost_at = np.where(is_lost, lost_at, NAT)
    status = np.where(is_won, 1, np.where(is_lost, 2, 0))
    last_entered = (entered[:, :3] != NAT).sum(axis=1) - 1
    stage = np.where(is_won, 3, np.where(is_lost, 4, last_entered))
    closed = np.where(is_won, entered[:, 3], lost_at)

    # loss reasons: stage-dependent, slow first response -> slow_response
    mo = len(opp_leads)
    w = LOSS_WEIGHTS[np.maximum(lost_stage, 0)].copy()
    w[:, 3] *= np.where(leads.resp_h[opp_leads] > 48, 3.0, 1.0)
    reason = np.where(is_lost, pick(rng, w), -1)
    amount = np.clip(np.exp(rng.normal(np.log(OPP_AMOUNT_MEDIAN), OPP_AMOUNT_SIGMA, mo)), 3_000, 1_000_000)
    amount = np.round(amount * quarter_end_push(closed, is_won), -2)
    note = np.where(rng.random(mo) < 0.7, rng.integers(0, len(OPP_NOTES), mo), -1)

    o = np.argsort(entered[:, 0], kind="stable")
    note = note[o]
    tricky = plant_tricky_notes(ctx, note)
    lead_opp = np.full(leads.n, -1)
    lead_opp[opp_leads[o]] = np.arange(mo)
    return Opportunities(
        lead=opp_leads[o],
        created=entered[o, 0],
        entered=entered[o],
        lost_at=lost_at[o],
        status=status[o],
        stage=stage[o],
        closed=closed[o],
        reason=reason[o],
        amount=amount[o],
        note=note,
        dept=leads.dept[opp_leads[o]],
        rep=leads.rep[opp_leads[o]],
        tricky=tricky,
        lead_opp=lead_opp,
        lead_status=lead_status(leads, final, lead_opp, status[o]),
        expected_close=expected[o],
    )


@dataclass(frozen=True)
class StageHistory:
    """One row per stage an opportunity entered, by opportunity and stage."""

    opp: np.ndarray
    stage: np.ndarray
    entered: np.ndarray
    exited: np.ndarray


def stage_history(opps: Opportunities) -> StageHistory:
    """Return the stage history: each stage entered, left when the next began or the deal was lost."""
    ent = opps.entered
    sh_opp, sh_stage, sh_in, sh_out = [], [], [], []
    for k in range(3):
        m = ent[:, k] != NAT
        nxt = ent[:, k + 1]
        exit_t = np.where(nxt != NAT, nxt, np.where(opps.status == 2, opps.lost_at, NAT))
        sh_opp.append(np.flatnonzero(m))
        sh_stage.append(np.full(int(m.sum()), k))
        sh_in.append(ent[m, k])
        sh_out.append(exit_t[m])
    for stage, m, t in ((3, ent[:, 3] != NAT, ent[:, 3]), (4, opps.status == 2, opps.lost_at)):
        sh_opp.append(np.flatnonzero(m))
        sh_stage.append(np.full(int(m.sum()), stage))
        sh_in.append(t[m])
        sh_out.append(np.full(int(m.sum()), NAT))
    s_opp = np.concatenate(sh_opp)
    s_stage = np.concatenate(sh_stage)
    order = sort_order(s_opp, s_stage)
    return StageHistory(s_opp[order], s_stage[order], np.concatenate(sh_in)[order], np.concatenate(sh_out)[order])
