"""crmnb.analysis.receipts: CRM won deals against finance receipts, every disagreement listed."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from crmnb.analysis.receipts import reconcile_receipts

T = pd.Timestamp


def opps(rows: list[tuple]) -> pd.DataFrame:
    """rows: (opportunity_id, status, amount, closed_at)."""
    return pd.DataFrame(
        [
            {
                "opportunity_id": o,
                "customer_id": "C" + o[1:],
                "status": s,
                "amount": float(a),
                "closed_at": T(c) if c else pd.NaT,
            }
            for o, s, a, c in rows
        ]
    )


def receipts(rows: list[tuple]) -> pd.DataFrame:
    """rows: (receipt_id, opportunity_id, amount)."""
    return pd.DataFrame(
        [
            {"receipt_id": r, "opportunity_id": o, "received_at": T("2025-02-01"), "amount": float(a)}
            for r, o, a in rows
        ],
        columns=["receipt_id", "opportunity_id", "received_at", "amount"],
    )


OPPS = opps(
    [
        ("O1", "won", 1000, "2025-01-10"),  # matched by two receipts, 0.50 off
        ("O2", "won", 2000, "2025-01-20"),  # 1.5% more in finance
        ("O3", "won", 500, "2025-01-25"),  # no receipt
        ("O4", "lost", 300, "2025-01-15"),  # lost, yet paid
        ("O5", "open", 700, None),  # open, no receipt: not a won deal, not listed
    ]
)
RECEIPTS = receipts(
    [
        ("R1", "O1", 600),
        ("R2", "O1", 400.5),
        ("R3", "O2", 2030),
        ("R4", "O4", 300),
    ]
)


def by_id(r) -> pd.DataFrame:
    return r.detail.set_index("opportunity_id")


def test_statuses_of_each_deal():
    r = reconcile_receipts(OPPS, RECEIPTS)
    d = by_id(r)
    assert d["status"].to_dict() == {
        "O1": "matched",
        "O2": "mismatch",
        "O3": "no receipt",
        "O4": "receipt without won deal",
    }
    assert d.loc["O1", "receipts"] == 2 and d.loc["O1", "finance_amount"] == 1000.5
    # problems first, in the order an analyst works through them
    assert r.detail["status"].tolist() == ["mismatch", "no receipt", "receipt without won deal", "matched"]


def test_mismatch_is_listed_with_its_difference_and_rate():
    d = by_id(reconcile_receipts(OPPS, RECEIPTS))
    assert d.loc["O2", "crm_amount"] == 2000
    assert d.loc["O2", "finance_amount"] == 2030
    assert d.loc["O2", "difference"] == 30
    assert d.loc["O2", "difference_rate"] == pytest.approx(0.015)


def test_deal_without_receipt_and_receipt_without_deal():
    d = by_id(reconcile_receipts(OPPS, RECEIPTS))
    assert d.loc["O3", "crm_amount"] == 500 and pd.isna(d.loc["O3", "finance_amount"])
    assert d.loc["O3", "difference"] == -500
    assert d.loc["O4", "finance_amount"] == 300 and pd.isna(d.loc["O4", "crm_amount"])
    assert d.loc["O4", "difference"] == 300


def test_receipt_for_an_unknown_opportunity_is_listed():
    r = reconcile_receipts(OPPS, receipts([("R9", "O99", 50)]))
    assert by_id(r).loc["O99", "status"] == "receipt without won deal"
    assert r.summary["stray_receipts"] == 1


def test_summary_counts_and_difference_rate_by_hand():
    s = reconcile_receipts(OPPS, RECEIPTS).summary
    assert (s["won_deals"], s["matched"], s["mismatched"], s["no_receipt"], s["stray_receipts"]) == (3, 1, 1, 1, 1)
    crm = 1000 + 2000 + 500
    abs_diff = 0.5 + 30 + 500 + 300
    assert s["crm_amount"] == crm
    assert s["finance_amount"] == 1000.5 + 2030 + 300
    assert s["abs_difference"] == pytest.approx(abs_diff)
    assert s["difference_rate"] == pytest.approx(abs_diff / crm)
    assert s["passes"] is False


def test_difference_rate_against_the_threshold():
    o = opps([("O1", "won", 1000, "2025-01-10"), ("O2", "won", 1000, "2025-01-11")])
    # 1.5% off on one of two deals: 15 / 2000 = 0.75%
    r = reconcile_receipts(o, receipts([("R1", "O1", 1015), ("R2", "O2", 1000)]), max_diff_rate=0.01)
    assert r.summary["difference_rate"] == pytest.approx(15 / 2000)
    assert r.summary["mismatched"] == 1
    assert r.summary["passes"] is True
    r = reconcile_receipts(o, receipts([("R1", "O1", 1015), ("R2", "O2", 1000)]), max_diff_rate=0.005)
    assert r.summary["passes"] is False
    assert r.summary["max_diff_rate"] == 0.005
    # exactly at the limit passes: 20 / 2000 = 1%
    r = reconcile_receipts(o, receipts([("R1", "O1", 1010), ("R2", "O2", 1010)]), max_diff_rate=0.01)
    assert r.summary["difference_rate"] == pytest.approx(0.01)
    assert r.summary["passes"] is True


def test_tolerance_is_respected():
    o = opps([("O1", "won", 1000, "2025-01-10"), ("O2", "won", 1000, "2025-01-11")])
    rec = receipts([("R1", "O1", 1001), ("R2", "O2", 998.5)])
    d = by_id(reconcile_receipts(o, rec, tolerance=1.0))
    assert d["status"].to_dict() == {"O1": "matched", "O2": "mismatch"}  # 1.00 within, 1.50 not
    d = by_id(reconcile_receipts(o, rec, tolerance=2.0))
    assert set(d["status"]) == {"matched"}
    d = by_id(reconcile_receipts(o, rec, tolerance=0.0))
    assert set(d["status"]) == {"mismatch"}


def test_start_end_limit_the_deals_to_those_closed_in_the_span():
    o = opps(
        [
            ("O1", "won", 1000, "2024-12-31 23:00"),  # before
            ("O2", "won", 2000, "2025-01-01 00:00"),  # first day
            ("O3", "won", 500, "2025-01-31 23:59"),  # last day, included
            ("O4", "won", 800, "2025-02-01 00:00"),  # after
            ("O5", "lost", 300, "2025-01-15"),  # lost in the span, yet paid
            ("O6", "lost", 400, "2025-03-15"),  # lost after the span, paid
        ]
    )
    rec = receipts([("R1", "O1", 1000), ("R2", "O2", 2000), ("R4", "O4", 10), ("R5", "O5", 300), ("R6", "O6", 400)])
    r = reconcile_receipts(o, rec, start="2025-01-01", end="2025-01-31")
    d = by_id(r)
    assert d["status"].to_dict() == {"O2": "matched", "O3": "no receipt", "O5": "receipt without won deal"}
    s = r.summary
    assert s["won_deals"] == 2
    assert s["crm_amount"] == 2500
    assert s["difference_rate"] == pytest.approx((500 + 300) / 2500)


def test_no_won_deals_passes_with_nan_rate():
    s = reconcile_receipts(opps([("O1", "lost", 100, "2025-01-01")]), receipts([])).summary
    assert s["won_deals"] == 0 and math.isnan(s["difference_rate"]) and s["passes"] is True
