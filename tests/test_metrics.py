"""crmnb.analysis.metrics: every catalogue metric on a few rows, against figures worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis.metrics import CATALOGUE, HEADLINE, compute, headline, units, value

T = pd.Timestamp
NaT = pd.NaT
START, END = "2025-03-01", "2025-03-31"


def frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """Return the rows typed as the cleaned tables are: datetimes, floats, text."""
    df = pd.DataFrame(rows, columns=columns)
    for c in columns:
        if c.endswith("_at") or c.endswith("_date"):
            df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
        elif c in ("amount", "csat", "nps"):
            df[c] = df[c].astype(float)
        else:
            df[c] = df[c].astype(object)
    return df


LEAD_COLS = ["lead_id", "created_at", "first_contact_at", "department", "owner_rep", "channel", "status", "customer_id"]
OPP_COLS = [
    "opportunity_id",
    "lead_id",
    "customer_id",
    "department",
    "owner_rep",
    "created_at",
    "stage",
    "status",
    "amount",
    "closed_at",
]
ACT_COLS = ["activity_id", "customer_id", "department", "owner_rep", "due_at", "completed_at"]
ORDER_COLS = ["order_id", "customer_id", "department", "order_date", "amount"]
TICKET_COLS = ["ticket_id", "customer_id", "department", "type", "created_at", "resolved_at", "csat", "nps"]
CUST_COLS = ["customer_id", "department", "owner_rep"]


def lead(lid, created, contacted=NaT, dep="D1", rep="r1"):
    return {
        "lead_id": lid,
        "created_at": T(created),
        "first_contact_at": T(contacted) if contacted else NaT,
        "department": dep,
        "owner_rep": rep,
        "channel": "web",
        "status": "open",
        "customer_id": None,
    }


def opp(oid, lid, status, closed=None, created="2025-03-01", amount=100.0, dep="D1", rep="r1"):
    return {
        "opportunity_id": oid,
        "lead_id": lid,
        "customer_id": "C1",
        "department": dep,
        "owner_rep": rep,
        "created_at": T(created),
        "stage": status,
        "status": status,
        "amount": amount,
        "closed_at": T(closed) if closed else NaT,
    }


def order(oid, cid, date, amount, dep="D1"):
    return {"order_id": oid, "customer_id": cid, "department": dep, "order_date": T(date), "amount": amount}


def ticket(tid, created, kind="request", resolved=None, csat=np.nan, nps=np.nan, dep="D1"):
    return {
        "ticket_id": tid,
        "customer_id": "C1",
        "department": dep,
        "type": kind,
        "created_at": T(created),
        "resolved_at": T(resolved) if resolved else NaT,
        "csat": csat,
        "nps": nps,
    }


def tables(**t) -> dict[str, pd.DataFrame]:
    out = {
        "leads": frame([], LEAD_COLS),
        "opportunities": frame([], OPP_COLS),
        "activities": frame([], ACT_COLS),
        "orders": frame([], ORDER_COLS),
        "tickets": frame([], TICKET_COLS),
        "customers": frame([], CUST_COLS),
    }
    cols = {
        "leads": LEAD_COLS,
        "opportunities": OPP_COLS,
        "activities": ACT_COLS,
        "orders": ORDER_COLS,
        "tickets": TICKET_COLS,
        "customers": CUST_COLS,
    }
    for name, rows in t.items():
        out[name] = frame(rows, cols[name])
    return out


# --------------------------------------------------------------------------- efficiency
def test_lead_response_hours():
    t = tables(
        leads=[
            lead("L1", "2025-03-01 09:00", "2025-03-01 15:00"),  # 6 h
            lead("L2", "2025-03-10 00:00", "2025-03-11 06:00"),  # 30 h
            lead("L3", "2025-03-12 00:00"),  # never contacted: not averaged
            lead("L4", "2025-02-28 23:00", "2025-03-01 00:00"),  # created before the period
            lead("L5", "2025-03-31 23:00", "2025-04-01 01:00"),  # last day of the period: 2 h
        ]
    )
    r = compute("lead_response_hours", t, START, END)
    assert r["n"].iloc[0] == 3
    assert r["value"].iloc[0] == pytest.approx((6 + 30 + 2) / 3)


def test_followup_ontime_rate():
    t = tables(
        activities=[
            {"activity_id": "A1", "due_at": T("2025-03-05 10:00"), "completed_at": T("2025-03-05 09:00")},  # on time
            {"activity_id": "A2", "due_at": T("2025-03-05 10:00"), "completed_at": T("2025-03-06 10:00")},  # late
            {"activity_id": "A3", "due_at": T("2025-03-20 10:00"), "completed_at": NaT},  # not done
            {"activity_id": "A4", "due_at": T("2025-03-31 18:00"), "completed_at": T("2025-03-31 18:00")},  # at due
            {"activity_id": "A5", "due_at": T("2025-04-01 09:00"), "completed_at": T("2025-04-01 08:00")},  # outside
        ]
    )
    r = compute("followup_ontime_rate", t, START, END)
    assert (r["value"].iloc[0], r["n"].iloc[0]) == (0.5, 4)


def test_lead_conversion_rate_counts_wins_within_the_window_only():
    t = tables(
        leads=[
            lead("L1", "2025-03-01"),
            lead("L2", "2025-03-10"),
            lead("L3", "2025-03-15"),
            lead("L4", "2025-03-05"),
            lead("L5", "2025-02-20"),
        ],
        opportunities=[
            opp("O1", "L1", "won", "2025-03-20"),  # 19 days
            opp("O2", "L2", "won", "2025-04-20"),  # 41 days: outside a 30-day window
            opp("O3", "L3", "lost", "2025-03-25"),
            opp("O4", "L4", "won", "2025-04-04"),  # exactly 30 days: counts
            opp("O5", "L4", "won", "2025-06-01"),  # a later second win of L4 changes nothing
            opp("O6", "L5", "won", "2025-03-01"),  # lead created before the period
        ],
        orders=[order("X1", "CX", "2025-12-31", 1.0)],  # the data run to the year's end: every window is over
    )
    assert value("lead_conversion_rate", t, START, END, conversion_window_days=30) == 2 / 4
    assert value("lead_conversion_rate", t, START, END, conversion_window_days=90) == 3 / 4
    assert value("lead_conversion_rate", t, START, END, conversion_window_days=10) == 0 / 4


def test_opportunity_win_rate():
    t = tables(
        opportunities=[
            opp("O1", "L1", "won", "2025-03-02"),
            opp("O2", "L2", "won", "2025-03-31 20:00"),
            opp("O3", "L3", "lost", "2025-03-10"),
            opp("O4", "L4", "open"),
            opp("O5", "L5", "won", "2025-04-01"),
            opp("O6", "L6", "lost", "2025-02-28"),
        ]
    )
    r = compute("opportunity_win_rate", t, START, END)
    assert r["n"].iloc[0] == 3
    assert r["value"].iloc[0] == pytest.approx(2 / 3)


def test_sales_cycle_days_from_lead_else_from_deal():
    t = tables(
        leads=[lead("L1", "2025-03-01")],
        opportunities=[
            opp("O1", "L1", "won", "2025-03-11", created="2025-03-05"),  # from the lead: 10 days
            opp("O2", None, "won", "2025-03-25", created="2025-03-05"),  # no lead: from the deal, 20 days
            opp("O3", "L1", "lost", "2025-03-30"),
        ],
    )
    r = compute("sales_cycle_days", t, START, END)
    assert (r["value"].iloc[0], r["n"].iloc[0]) == (15.0, 2)


# --------------------------------------------------------------------------- effect
def test_avg_order_value():
    t = tables(
        orders=[
            order("O1", "C1", "2025-03-01", 100.0),
            order("O2", "C2", "2025-03-15", 200.0),
            order("O3", "C3", "2025-03-31 23:59:59", 600.0),
            order("O4", "C4", "2025-04-01", 10_000.0),
            order("O5", "C5", "2025-03-20", np.nan),
        ]
    )
    r = compute("avg_order_value", t, START, END)
    assert (r["value"].iloc[0], r["n"].iloc[0]) == (300.0, 3)


def test_repeat_purchase_rate_is_share_of_buyers_who_also_bought_in_the_90_days_before():
    t = tables(
        orders=[
            order("O0", "C9", "2024-01-01", 10.0),  # the data's first day, long before the period
            order("O1", "C1", "2025-03-02", 10.0),
            order("O2", "C1", "2025-03-20", 10.0),  # 2 in March
            order("O3", "C2", "2024-11-10", 10.0),
            order("O4", "C2", "2025-03-05", 10.0),  # 115 days after the one before: not repeating
            order("O5", "C3", "2025-03-01", 10.0),
            order("O6", "C3", "2025-03-01", 10.0),
            order("O7", "C3", "2025-03-31", 10.0),  # 3 in March
            order("O8", "C4", "2025-04-02", 10.0),
            order("O9", "C4", "2025-04-03", 10.0),  # none in March
        ],
        customers=[{"customer_id": c, "department": "D1", "owner_rep": "r1"} for c in ("C1", "C2", "C3", "C4", "C9")],
    )
    r = compute("repeat_purchase_rate", t, START, END)
    assert r["n"].iloc[0] == 3
    assert r["value"].iloc[0] == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- experience
def test_csat():
    t = tables(
        tickets=[
            ticket("T1", "2025-03-01", csat=5.0),
            ticket("T2", "2025-03-02", csat=4.0),
            ticket("T3", "2025-03-03"),
            ticket("T4", "2025-03-31", csat=3.0),
            ticket("T5", "2025-04-01", csat=1.0),
        ]
    )
    r = compute("csat", t, START, END)
    assert (r["value"].iloc[0], r["n"].iloc[0]) == (4.0, 3)


def test_nps():
    # 3 promoters (10, 9, 9), 1 passive (8), 1 detractor (3): 60% − 20% = 40 points
    t = tables(
        tickets=[
            ticket("T1", "2025-03-01", nps=10.0),
            ticket("T2", "2025-03-02", nps=9.0),
            ticket("T3", "2025-03-03", nps=9.0),
            ticket("T4", "2025-03-04", nps=8.0),
            ticket("T5", "2025-03-05", nps=3.0),
            ticket("T6", "2025-03-06"),
            ticket("T7", "2025-04-01", nps=0.0),
        ]
    )
    r = compute("nps", t, START, END)
    assert r["n"].iloc[0] == 5
    assert r["value"].iloc[0] == pytest.approx(40.0)


def test_nps_boundaries_seven_is_passive_six_is_detractor():
    t = tables(tickets=[ticket("T1", "2025-03-01", nps=7.0), ticket("T2", "2025-03-02", nps=6.0)])
    assert value("nps", t, START, END) == pytest.approx((0 - 100) / 2)


def test_complaint_resolution_hours():
    t = tables(
        tickets=[
            ticket("T1", "2025-03-01 00:00", "complaint", "2025-03-01 12:00"),  # 12 h
            ticket("T2", "2025-03-02 00:00", "complaint", "2025-03-04 00:00"),  # 48 h
            ticket("T3", "2025-03-03 00:00", "complaint"),  # unresolved: not averaged
            ticket("T4", "2025-03-03 00:00", "request", "2025-03-03 01:00"),  # not a complaint
            ticket("T5", "2025-04-01 00:00", "complaint", "2025-04-01 01:00"),  # outside the period
        ]
    )
    r = compute("complaint_resolution_hours", t, START, END)
    assert (r["value"].iloc[0], r["n"].iloc[0]) == (30.0, 2)


# --------------------------------------------------------------------------- breakdowns
def test_the_method_metrics_are_in_the_catalogue():
    tested = {
        "lead_response_hours",
        "followup_ontime_rate",
        "lead_conversion_rate",
        "opportunity_win_rate",
        "sales_cycle_days",
        "avg_order_value",
        "repeat_purchase_rate",
        "csat",
        "nps",
        "complaint_resolution_hours",
    }
    assert tested <= set(CATALOGUE)
    assert set(HEADLINE) <= tested
    assert not CATALOGUE["lead_response_hours"].higher_is_better
    assert CATALOGUE["lead_conversion_rate"].higher_is_better


def test_breakdown_by_department():
    t = tables(
        orders=[
            order("O1", "C1", "2025-03-01", 100.0, "D1"),
            order("O2", "C2", "2025-03-02", 300.0, "D1"),
            order("O3", "C3", "2025-03-03", 600.0, "D2"),
        ]
    )
    r = compute("avg_order_value", t, START, END, by="department").set_index("department")
    assert r["value"].to_dict() == {"D1": 200.0, "D2": 600.0}
    assert r["n"].to_dict() == {"D1": 2, "D2": 1}
    assert value("avg_order_value", t, START, END, department="D2") == 600.0


def test_breakdown_by_owner_rep():
    t = tables(
        leads=[
            lead("L1", "2025-03-01 00:00", "2025-03-01 02:00", rep="wang"),
            lead("L2", "2025-03-02 00:00", "2025-03-02 04:00", rep="wang"),
            lead("L3", "2025-03-03 00:00", "2025-03-04 00:00", rep="li"),
        ]
    )
    r = compute("lead_response_hours", t, START, END, by="owner_rep").set_index("owner_rep")
    assert r["value"].to_dict() == {"li": 24.0, "wang": 3.0}


def test_breakdown_by_month():
    t = tables(
        orders=[
            order("O1", "C1", "2025-01-31 23:00", 100.0),
            order("O2", "C2", "2025-02-01", 200.0),
            order("O3", "C3", "2025-02-28", 400.0),
            order("O4", "C4", "2025-03-31", 50.0),
        ]
    )
    r = compute("avg_order_value", t, "2025-01-01", "2025-03-31", by="month")
    assert r["month"].tolist() == [T("2025-01-01"), T("2025-02-01"), T("2025-03-01")]
    assert r["value"].tolist() == [100.0, 300.0, 50.0]
    assert r["n"].tolist() == [1, 2, 1]


def test_period_end_date_is_inclusive_to_the_last_second():
    t = tables(
        orders=[
            order("O1", "C1", "2025-03-31 23:59:59", 100.0),
            order("O2", "C2", "2025-04-01 00:00:00", 900.0),
            order("O3", "C3", "2025-03-01 00:00:00", 300.0),
            order("O4", "C4", "2025-02-28 23:59:59", 700.0),
        ]
    )
    r = compute("avg_order_value", t, START, END)
    assert (r["value"].iloc[0], r["n"].iloc[0]) == (200.0, 2)
    # dates as date objects work the same as text
    from datetime import date

    assert value("avg_order_value", t, date(2025, 3, 1), date(2025, 3, 31)) == 200.0


def test_empty_period_gives_nan_not_an_error():
    t = tables(orders=[order("O1", "C1", "2025-01-01", 100.0)])
    r = compute("avg_order_value", t, START, END)
    assert r["n"].iloc[0] == 0 and np.isnan(r["value"].iloc[0])


def test_unknown_metric_raises_key_error_naming_it():
    with pytest.raises(KeyError) as exc:
        units("conversion_rate", tables(), START, END)
    assert "conversion_rate" in str(exc.value)
    assert "lead_conversion_rate" in str(exc.value)  # and lists the known ones


def test_headline_lists_the_headline_metrics():
    t = tables(
        orders=[order("O1", "C1", "2025-03-01", 100.0)],
        customers=[{"customer_id": "C1", "department": "D1", "owner_rep": "r1"}],
    )
    h = headline(t, START, END, language="en")
    assert h["metric"].tolist() == list(HEADLINE)
    row = h.set_index("metric").loc["avg_order_value"]
    assert (row["value"], row["n"], row["unit"]) == (100.0, 1, "CNY")


def test_lead_conversion_is_zero_when_nothing_was_won_yet():
    # a new case, or a department without a win: every lead counts as not converted, no error
    t = tables(
        leads=[lead("L1", "2025-03-01"), lead("L2", "2025-03-02")],
        opportunities=[opp("O1", "L1", "lost", "2025-03-10"), opp("O2", "L2", "open")],
        orders=[order("X1", "CX", "2025-12-31", 1.0)],  # the data run to the year's end: every window is over
    )
    r = compute("lead_conversion_rate", t, START, END)
    assert (r["value"].iloc[0], r["n"].iloc[0]) == (0.0, 2)


def test_sales_cycle_without_any_lead_rows_counts_from_the_deal():
    t = tables(opportunities=[opp("O1", "L1", "won", "2025-03-11", created="2025-03-01")])
    assert value("sales_cycle_days", t, START, END) == 10.0


def test_breakdown_when_leads_have_no_reps_but_deals_do():
    """Exports without lead owners (a deals-only CRM export) still give the by-rep table."""
    from crmnb.analysis.metrics import breakdown

    t = tables(
        leads=[
            lead("L1", "2025-03-01 00:00", "2025-03-01 02:00", rep=None),
            lead("L2", "2025-03-02 00:00", "2025-03-02 04:00", rep=None),
        ],
        opportunities=[opp("O1", "L1", "won", "2025-03-05", rep="wang")],
    )
    r = breakdown(t, START, END, None, "owner_rep", ["lead_response_hours", "opportunity_win_rate"])
    by = {("–" if pd.isna(k) else k): row for k, row in r.set_index("owner_rep").iterrows()}
    assert set(by) == {"–", "wang"}
    assert by["–"]["lead_response_hours"] == 3.0 and by["wang"]["opportunity_win_rate"] == 1.0


def test_metric_words_come_from_the_message_catalogue():
    from crmnb.present.words import t

    for mid, m in CATALOGUE.items():
        for lang in ("en", "zh"):
            assert m.name(lang) == t(f"metric.{mid}.name", lang)
            assert m.formula_in(lang) == t(f"metric.{mid}.formula", lang, **dict(m.opts))
    assert CATALOGUE["csat"].name("zh") == "客户满意度评分（CSAT）"
