"""The answer key, ``planted.json``: the planted effects and faults, named by the ids in the files.

Tests read it to check that the analysis finds what was planted; the analysis itself never reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crmnb.demo.clock import DAY, NAT
from crmnb.demo.faults import DUPLICATE_VARIANTS, PHONE_FORMATS
from crmnb.demo.orders import quarter_counts
from crmnb.demo.sales import strong_pair
from crmnb.demo.service import planted_themes
from crmnb.demo.story import (
    CONTROL_DEPARTMENT,
    INTERVENTION_DEPARTMENT,
    QUARTER_END_PUSH,
    REPORTED_QUARTERS,
    SHOW_LAG_DAYS,
    SHOW_LEAD_LIFT,
)
from crmnb.demo.text import id_width
from crmnb.demo.vocab import CAMPAIGNS, INDUSTRIES
from crmnb.demo.world import World
from crmnb.intake.schema import DEFAULT_FILES, DEPARTMENTS


class Ids:
    """Format the ids of one run's customers, opportunities and receipts."""

    def __init__(self, w: World) -> None:
        self.rank = w.accounts.rank
        self.w_c = id_width(w.accounts.n, 6)
        self.w_o = id_width(w.opps.n, 6)
        self.w_r = id_width(len(w.receipts.opp), 6)

    def customer(self, i: int) -> str:
        """Return the customer id of an account."""
        return f"C{int(self.rank[i]) + 1:0{self.w_c}d}"

    def opportunity(self, i: int) -> str:
        """Return the id of an opportunity."""
        return f"OPP{int(i) + 1:0{self.w_o}d}"

    def receipt(self, i: int) -> str:
        """Return the id of a receipt (by position)."""
        return f"RC{i + 1:0{self.w_r}d}"


def duplicates(w: World, ids: Ids) -> list[dict[str, str]]:
    """Return each duplicate customer record with its original and how it differs."""
    d = w.dup
    return [
        {
            "original": ids.customer(o),
            "duplicate": ids.customer(i),
            "name_variant": DUPLICATE_VARIANTS[int(v)],
            "phone_format": PHONE_FORMATS[int(f)],
        }
        for o, i, v, f in zip(d.orig, d.index, d.variant, d.phone_fmt)
    ]


def receipt_mismatches(w: World, ids: Ids) -> list[dict[str, Any]]:
    """Return the receipts whose amount differs from their deal's, by receipt id."""
    r = w.receipts
    pos = {int(o): i for i, o in enumerate(r.opp)}
    out = []
    for o in r.mismatch_opps:
        i = pos[int(o)]
        out.append(
            {
                "receipt_id": ids.receipt(i),
                "opportunity_id": ids.opportunity(o),
                "crm_amount": round(float(w.opps.amount[o]), 2),
                "receipt_amount": round(float(r.amount[i]), 2),
            }
        )
    return sorted(out, key=lambda m: m["receipt_id"])


def over_benchmark(w: World) -> list[dict[str, Any]]:
    """Return the campaigns whose cost per acquired customer is over 1.3 times their benchmark."""
    spend, acquired = w.spend.spend, w.spend.acquired
    cpa = spend / np.maximum(acquired, 1)
    return [
        {
            "campaign_id": f"CMP{i + 1:03d}",
            "spend": float(spend[i]),
            "acquired_customers": int(acquired[i]),
            "cpa": round(float(cpa[i]), 2),
            "cpa_benchmark": float(c[4]),
        }
        for i, c in enumerate(CAMPAIGNS)
        if acquired[i] > 0 and cpa[i] > 1.3 * c[4]
    ]


def planted_effects(w: World) -> dict[str, dict[str, float]]:
    """Return lead conversion and repeat-purchase rate per department, either side of the intervention."""
    conversion, repeat = {}, {}
    for q, label in REPORTED_QUARTERS:
        for d, dept in enumerate(DEPARTMENTS):
            m = (w.leads.quarter == q) & (w.leads.dept == d)
            conversion[f"{dept} {label}"] = round(float((w.opps.lead_status[m] == 1).mean()), 4)
    for q, label in REPORTED_QUARTERS:
        for d, dept in enumerate(DEPARTMENTS):
            cnt = quarter_counts(w.orders, w.accounts, q, d)[1]
            repeat[f"{dept} {label}"] = round(float((cnt >= 2).sum() / max((cnt >= 1).sum(), 1)), 4)
    return {"lead_conversion": conversion, "repeat_purchase_rate": repeat}


def email_planted(w: World) -> dict[str, Any]:
    """Return the planted A/B test of the e-mail events and how the leads' landing URLs carry UTM parameters."""
    from crmnb.demo.marketing import AB_CAMPAIGN, AB_MONTHS, AB_OPEN, AB_SUBJECTS
    from crmnb.demo.marketing_tables import UNTRACKED_EVERY, UTM_OF_CHANNEL

    e = w.email
    ab = np.isin(np.array(e.mailing_month), AB_MONTHS) & (e.mailing_campaign == AB_CAMPAIGN)
    return {
        "email_ab_test": {
            "campaign_id": f"CMP{AB_CAMPAIGN + 1:03d}",
            "email_ids": [f"M{int(m) + 1:03d}" for m in np.flatnonzero(ab)],
            "months": list(AB_MONTHS),
            "subjects": {"A": AB_SUBJECTS[0], "B": AB_SUBJECTS[1]},
            "planted_open_rate": {"A": AB_OPEN[0], "B": AB_OPEN[1]},  # among prospects; the leads all opened
            "finding": "variant B is opened more often than A; the click rate given an open is the same",
        },
        "utm": {
            "column": "leads.landing_url",
            "utm_campaign": "the lead's campaign_id",
            "channels": {c: {"utm_source": s, "utm_medium": m} for c, (_, s, m) in UTM_OF_CHANNEL.items()},
            "without_landing_page": ["trade_show", "referral"],
            "untracked": f"one lead in {UNTRACKED_EVERY} (by row) of the other channels",
        },
    }


def rep_strengths(w: World) -> list[dict[str, Any]]:
    """Return the planted strong rep x industry pairs with their closed deals' win rate against the rest's."""
    o, reps = w.opps, w.ctx.reps
    strong = strong_pair(w.ctx, w.leads)[o.lead]
    closed, won, industry = o.status > 0, o.status == 1, w.leads.industry[o.lead]
    out = []
    for r, i in sorted({(int(r), int(i)) for r, i in zip(o.rep[strong], industry[strong])}):
        m = closed & (o.rep == r) & (industry == i)
        rest = closed & (o.dept == reps.dept[r]) & (industry == i) & (o.rep != r)
        out.append(
            {
                "department": DEPARTMENTS[int(reps.dept[r])],
                "owner_rep": reps.name[r],
                "industry": INDUSTRIES[i][0],
                "closed_deals": int(m.sum()),
                "win_rate": round(float(won[m].mean()), 4),
                "others_win_rate": round(float(won[rest].mean()), 4),
            }
        )
    return out


def pipeline_structure(w: World) -> dict[str, Any]:
    """Return the planted pipeline: win rate from each stage, close-date slippage, seasonality, lead lag."""
    o = w.opps
    closed, won = o.status > 0, o.status == 1
    slip = (o.closed[won] - o.expected_close[won]) / DAY
    return {
        "stage_win_rates": {
            stage: round(float(won[closed & (o.entered[:, k] != NAT)].mean()), 4)
            for k, stage in enumerate(("needs_confirmed", "proposal", "negotiation"))
        },
        "rep_industry_strengths": rep_strengths(w),
        "close_date_slippage": {
            "won_after_expected_share": round(float((slip > 0).mean()), 4),
            "median_days_late": round(float(np.median(slip)), 1),
        },
        "seasonality": {"won_amount_factor_by_month_of_quarter": list(QUARTER_END_PUSH)},
        "campaign_lead_lag": {
            "campaigns": [f"CMP{i + 1:03d}" for i, c in enumerate(CAMPAIGNS) if c[0] == "trade_show"],
            "days_after_end": list(SHOW_LAG_DAYS),
            "arrival_lift": SHOW_LEAD_LIFT,
        },
    }


def planted_facts(w: World, rows: dict[str, int]) -> dict[str, Any]:
    """Return the answer key: planted faults, effects and rows per table."""
    ids = Ids(w)
    acc, act = w.accounts, w.activities
    return {
        "seed": w.ctx.seed,
        "scale": w.ctx.scale,
        "export_date": "2026-03-31",
        "intervention_date": "2025-10-01",
        "intervention_department": DEPARTMENTS[INTERVENTION_DEPARTMENT],
        "control_department": DEPARTMENTS[CONTROL_DEPARTMENT],
        "care_program_date": "2025-10-01",
        "care_program_department": DEPARTMENTS[CONTROL_DEPARTMENT],
        "rows": rows,
        "duplicates": duplicates(w, ids),
        "missing_phone": sorted(ids.customer(i) for i in np.flatnonzero(acc.no_phone)),
        "missing_email": sorted(ids.customer(i) for i in np.flatnonzero(acc.no_email)),
        "heavy_customer": {
            "customer_id": ids.customer(act.heavy),
            "activities": int((act.tasks.acc == act.heavy).sum()),
        },
        "receipt_mismatches": receipt_mismatches(w, ids),
        "won_without_receipt": [ids.opportunity(o) for o in w.receipts.missing_opps],
        "tricky_notes": [ids.opportunity(o) for o in w.opps.tricky],
        "over_benchmark_campaigns": over_benchmark(w),
        "campaigns_without_acquisitions": [f"CMP{i + 1:03d}" for i in np.flatnonzero(w.spend.acquired == 0)],
        "campaign_attribution": "last touch: converted leads per leads.campaign_id",
        "mixed_date_formats": {
            "file": DEFAULT_FILES["activities"],
            "columns": ["due_at", "completed_at"],
            "slash_rows": int((act.fmt == 1).sum()),
            "chinese_rows": int((act.fmt == 2).sum()),
        },
        **planted_effects(w),
        "complaint_themes": planted_themes(w.tickets, w.accounts.dept[w.tickets.acc], DEPARTMENTS),
        **email_planted(w),
        "pipeline": pipeline_structure(w),
    }
