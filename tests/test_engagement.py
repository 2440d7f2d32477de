"""Tests of crmnb.analysis.engagement and crmnb.intake.utm: the e-mail funnel, A/B readouts, UTM parsing."""

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import engagement as en
from crmnb.analysis import engagement_text as et
from crmnb.analysis.compare import wilson
from crmnb.intake.utm import add_utm, utm_of

T = pd.Timestamp


def _events() -> pd.DataFrame:
    """Campaign C1, mailing M1 to four recipients: r1 opened and clicked (became lead L1, won), r2 opened,
    r3 bounced, r4 only received it. Campaign C2 (no mailing id) to r5, who unsubscribed after opening."""
    rows = [
        ("C1", "M1", "r1", None, "sent", "2025-03-01"),
        ("C1", "M1", "r1", None, "open", "2025-03-01"),
        ("C1", "M1", "r1", "L1", "click", "2025-03-02"),
        ("C1", "M1", "r2", None, "sent", "2025-03-01"),
        ("C1", "M1", "r2", None, "open", "2025-03-03"),
        ("C1", "M1", "r3", None, "sent", "2025-03-01"),
        ("C1", "M1", "r3", None, "bounce", "2025-03-01"),
        ("C1", "M1", "r4", None, "sent", "2025-03-01"),
        ("C2", None, "r5", None, "open", "2025-03-05"),  # a membership export: no 'sent' row of its own
        ("C2", None, "r5", None, "unsubscribe", "2025-03-05"),
        ("C1", "M0", "r1", None, "sent", "2025-01-01"),  # before the window
    ]
    return pd.DataFrame(
        {
            "event_id": [f"E{i}" for i in range(len(rows))],
            "campaign_id": [r[0] for r in rows],
            "email_id": [r[1] for r in rows],
            "recipient_id": [r[2] for r in rows],
            "lead_id": [r[3] for r in rows],
            "event": [r[4] for r in rows],
            "occurred_at": [T(r[5]) for r in rows],
        }
    )


LEADS = pd.DataFrame({"lead_id": ["L1", "L2"], "created_at": [T("2025-03-02"), T("2025-03-04")]})
OPPS = pd.DataFrame({"lead_id": ["L1"], "status": ["won"]})
CAMPAIGNS = pd.DataFrame({"campaign_id": ["C1", "C2"], "name": ["Spring mail", "Newsletter"]})


def test_funnel_counts_sends_by_hand():
    f = en.email_funnel(_events(), LEADS, OPPS, CAMPAIGNS, "2025-02-01", "2025-03-31")
    c1 = f[f["campaign_id"] == "C1"].set_index("stage")
    assert c1["count"].to_dict() == {
        "sent": 4,
        "opened": 2,
        "clicked": 1,
        "lead": 1,
        "won": 1,
        "bounced": 1,
        "unsubscribed": 0,
    }
    assert c1.loc["opened", "rate"] == pytest.approx(0.5)  # 2 of 4 sent
    assert c1.loc["clicked", "rate"] == pytest.approx(0.5)  # 1 of 2 opened
    assert c1.loc["won", "rate"] == pytest.approx(1.0)
    assert c1.loc["bounced", "of_sent"] == pytest.approx(0.25)
    lo, hi = wilson(2, 4)
    assert (c1.loc["opened", "ci_low"], c1.loc["opened", "ci_high"]) == pytest.approx((lo, hi), abs=1e-4)
    assert np.isnan(c1.loc["sent", "rate"])
    c2 = f[f["campaign_id"] == "C2"].set_index("stage")["count"]
    assert (c2["sent"], c2["opened"], c2["unsubscribed"]) == (1, 1, 1)  # an open implies a send
    assert set(f["campaign"]) == {"Spring mail", "Newsletter"}


def _ab(n_a: int, k_a: int, n_b: int, k_b: int) -> pd.DataFrame:
    """Sends of one campaign split between A and B, k of each opened."""
    rows = []
    for v, n, k in (("A", n_a, k_a), ("B", n_b, k_b)):
        for i in range(n):
            rows.append(("C1", "M1", f"{v}{i}", v, f"Subject {v}", "sent"))
            if i < k:
                rows.append(("C1", "M1", f"{v}{i}", v, f"Subject {v}", "open"))
    df = pd.DataFrame(rows, columns=["campaign_id", "email_id", "recipient_id", "variant", "subject", "event"])
    return df.assign(occurred_at=T("2025-03-01"))


def test_ab_readout_names_the_test_and_gives_the_interval():
    ab = en.ab_tests(_ab(100, 20, 100, 35), CAMPAIGNS)
    row = ab.set_index("metric").loc["open_rate"]
    assert row["ab_test"] == "Spring mail (C1): A “Subject A” / B “Subject B”"
    assert (row["rate_a"], row["rate_b"], row["difference"]) == pytest.approx((0.20, 0.35, 0.15))
    # the pooled z-test by hand: p = 0.275, se = sqrt(p(1-p)(2/100))
    se = np.sqrt(0.275 * 0.725 * 0.02)
    from scipy import stats

    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(0.15 / se))
    assert row["ci_low"] > 0 and row["ci_high"] < 0.3
    text = et.ab_sentences(ab, "en")[0]
    assert "Spring mail (C1)" in text and "+15.0 points" in text and "goes with" in text
    assert "与" in et.ab_sentences(ab, "zh")[0]


def test_ab_readout_leaves_out_small_variants_and_says_when_there_is_no_test():
    assert en.ab_tests(_ab(100, 20, en.MIN_PER_VARIANT - 1, 10), CAMPAIGNS).empty
    assert et.ab_sentences(en.ab_tests(_events(), CAMPAIGNS), "en")[0].startswith("No A/B test")


def test_missing_events_say_so_and_return_empty_tables():
    f, why = en.funnel_or_gap(_events().iloc[:0], LEADS, OPPS, CAMPAIGNS)
    assert f.empty and why == "no_rows"
    assert "no e-mail events" in et.gap(why, "en") and "rest of the case" in et.gap(why, "en")
    assert en.funnel_or_gap(None, LEADS, OPPS, CAMPAIGNS)[1] == "no_table"
    assert en.funnel_or_gap(_events().drop(columns="event"), LEADS, OPPS, CAMPAIGNS)[1] == "no_columns"
    assert en.ab_or_empty(_events().iloc[:0], CAMPAIGNS).empty


def test_utm_parsed_from_landing_urls_keeping_what_the_export_has():
    assert utm_of("https://a.cn/p?utm_source=Baidu&utm_medium=CPC&utm_campaign=Spring%20Sale") == (
        "baidu",
        "cpc",
        "Spring Sale",
    )
    assert utm_of("https://a.cn/p?x=1") == (None, None, None)
    assert utm_of(np.nan) == (None, None, None)
    df = pd.DataFrame(
        {
            "landing_url": ["https://a.cn/?utm_source=wechat&utm_medium=social", "https://a.cn/?utm_source=x"],
            "utm_source": [None, "kept"],
        }
    )
    out = add_utm(df, "leads")
    assert out["utm_source"].tolist() == ["wechat", "kept"]
    assert out["utm_medium"].iloc[0] == "social" and pd.isna(out["utm_medium"].iloc[1])
    assert "utm_source" not in add_utm(pd.DataFrame({"x": [1]}), "orders")


def test_utm_leads_conversion_by_source():
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4"],
            "created_at": [T("2025-03-01")] * 4,
            "utm_source": ["baidu", "baidu", "wechat", None],
            "utm_medium": ["cpc", "cpc", "social", None],
        }
    )
    out = en.utm_leads(leads, pd.DataFrame({"lead_id": ["L1", "L4"], "status": ["won", "won"]}))
    assert out[["utm_source", "leads", "won"]].values.tolist() == [["baidu", 2, 1], ["wechat", 1, 0], ["(none)", 1, 1]]
    assert "50.0%" not in et.utm_sentence(out, "en") and "75.0%" in et.utm_sentence(out, "en")
    assert en.utm_leads(leads.drop(columns=["utm_source", "utm_medium"]), OPPS).empty
    assert et.utm_sentence(en.utm_leads(leads.iloc[3:], OPPS), "en").startswith("UTM channels not analysed")
