"""The window's rows read from hand-off files give the deep dive's company-wide figures the whole tables give:
campaigns and channels, attribution, UTM, the service analyses; and no table is read whole for them."""

import pandas as pd
import pytest

from crmnb.analysis import attribution, engagement, marketing, service, window_rows
from crmnb.analysis.outcome_rows import window_outcome_tables
from crmnb.handoffs import Workspace

T = pd.Timestamp
START, END = "2025-03-01", "2025-03-31"

LEADS = pd.DataFrame(
    {
        "lead_id": ["L1", "L2", "L3", "L4", "L5", "L6"],
        "created_at": [
            T("2025-02-27"),
            T("2025-03-01"),
            T("2025-03-15"),
            T("2025-03-31 23:00"),
            T("2025-04-01"),
            pd.NaT,
        ],
        "channel": ["search", "email", None, "search", "email", "search"],
        "campaign_id": ["C1", "C2", "C1", None, "C2", "C1"],
        "customer_id": ["K1", "K2", "K3", "K4", "K5", None],
        "utm_source": [None, "news", None, "ads", None, None],
        "utm_medium": [None, "mail", None, "cpc", None, None],
        "contact_name": ["Ann", "Bo", "Cy", "Di", "Ed", "Flo"],
    }
)
OPPS = pd.DataFrame(
    {
        "opportunity_id": ["O1", "O2", "O3", "O4", "O5", "O6"],
        "lead_id": ["L1", "L2", "L3", "L3", "L4", "L2"],
        "customer_id": ["K1", "K2", None, "K3", "K4", "K2"],
        "status": ["won", "won", "lost", "won", "won", "won"],
        "amount": [100.0, 50.0, 80.0, 70.0, 30.0, 20.0],
        "created_at": [
            T("2025-02-28"),
            T("2025-03-02"),
            T("2025-03-16"),
            T("2025-03-17"),
            T("2025-03-31"),
            T("2025-03-05"),
        ],
        "closed_at": [T("2025-03-02"), T("2025-03-10"), T("2025-03-20"), T("2025-03-25"), pd.NaT, T("2025-04-02")],
        "note": ["a", "b", "c", "d", "e", "f"],
    }
)
ORDERS = pd.DataFrame(
    {
        "customer_id": ["K1", "K2", "K2", "K3", "K3", "K2", "K4"],
        "opportunity_id": ["O1", "O2", None, "O4", None, None, None],
        "order_date": [
            T("2025-03-02"),
            T("2025-03-10"),
            T("2025-03-20"),
            T("2025-03-25"),
            T("2025-03-28"),
            T("2025-04-05"),
            pd.NaT,
        ],
        "amount": [100.0, 50.0, 12.5, 70.0, None, 9.0, 4.0],
        "department": ["Sales"] * 7,
    }
)
CAMPAIGNS = pd.DataFrame(
    {
        "campaign_id": ["C1", "C2"],
        "name": ["Search", "Mail"],
        "channel": ["search", "email"],
        "spend": [300.0, 100.0],
        "start_date": [T("2025-02-01"), T("2025-03-01")],
        "end_date": [T("2025-03-31"), T("2025-04-30")],
        "cpa_benchmark": [150.0, 60.0],
    }
)
TICKETS = pd.DataFrame(
    {
        "customer_id": ["K1", "K2", "K3", "K2", None],
        "department": ["Sales", "Service", "Sales", None, "Sales"],
        "type": ["complaint", "request", "complaint", "complaint", "request"],
        "created_at": [T("2025-03-02"), T("2025-03-03"), T("2025-03-04"), T("2025-03-05"), T("2025-03-06")],
        "channel": ["phone", "chat", None, "phone", "e-mail"],
        "priority": [None] * 5,
        "note": ["late", "hello", "broken", "late again", None],
        "product": ["A"] * 5,
    }
)
LEADS, OPPS, ORDERS, CAMPAIGNS, TICKETS = (  # times in nanoseconds, as the cleaning writes them
    df.astype({c: "datetime64[ns]" for c in df if df[c].dtype.kind == "M"})
    for df in (LEADS, OPPS, ORDERS, CAMPAIGNS, TICKETS)
)
FRAMES = {"leads": LEADS, "opportunities": OPPS, "orders": ORDERS, "campaigns": CAMPAIGNS, "tickets": TICKETS}


def _tables(tmp_path, frames=FRAMES):
    ws = Workspace(tmp_path, "case")
    for name, df in frames.items():
        ws.write(f"clean/{name}", df)
    return ws.tables("clean")


def _read_whole(t) -> str:
    return repr(t).split("read so far:")[1]


def test_the_window_readers_keep_the_rows_the_whole_table_filters_keep(tmp_path):
    t = _tables(tmp_path)
    leads = window_rows.window_leads(t, START, END, ["lead_id", "created_at"])
    assert leads["lead_id"].tolist() == ["L2", "L3", "L4"]  # the end day is whole; no date is no window
    _, won, orders = window_outcome_tables(t, START, END)
    assert won["opportunity_id"].tolist() == ["O1", "O2", "O4", "O6"]  # O5 has no close date
    assert orders["order_date"].tolist() == [T("2025-03-02"), T("2025-03-10"), T("2025-03-20"), T("2025-03-25")]
    assert list(orders) == ["customer_id", "opportunity_id", "order_date", "amount"]
    assert window_rows.latest(t, "orders", "order_date") == T("2025-04-05")
    for name in ("leads", "opportunities", "orders"):
        assert name not in _read_whole(t)
    # on frames, and on a table the step has read whole, the same filter runs on the frame
    for source in (FRAMES, _tables(tmp_path / "read")):
        if not isinstance(source, dict):
            source["leads"], source["orders"]
        got = window_rows.window_leads(source, START, END, ["lead_id", "created_at"])
        pd.testing.assert_frame_equal(got, leads)


@pytest.mark.parametrize("ltv", [None, 500.0])
def test_campaigns_and_channels_from_the_window_rows_are_those_of_the_whole_tables(tmp_path, ltv):
    t = _tables(tmp_path)
    rows = window_outcome_tables(t, START, END)
    for table in (marketing.campaign_performance, marketing.channel_performance):
        got = table(CAMPAIGNS, *rows, START, END, ltv_per_customer=ltv)
        want = table(CAMPAIGNS, LEADS, OPPS, ORDERS, START, END, ltv_per_customer=ltv)
        pd.testing.assert_frame_equal(got, want)
    channels, campaigns = window_rows.performance(_tables(tmp_path / "both"), START, END, ltv)
    pd.testing.assert_frame_equal(
        channels, marketing.channel_performance(CAMPAIGNS, LEADS, OPPS, ORDERS, START, END, ltv)
    )
    pd.testing.assert_frame_equal(
        campaigns, marketing.campaign_performance(CAMPAIGNS, LEADS, OPPS, ORDERS, START, END, ltv)
    )
    # L2's customer K2 bought again on 20 March, outside a won deal: a repeat the window's orders keep
    out = marketing.lead_outcomes(*rows, START, END).set_index("lead_id")
    assert out.loc["L2", "repeat_revenue"] == 12.5 and out.loc["L2", "deal_revenue"] == 50.0
    assert not any(n in _read_whole(t) for n in ("leads", "opportunities", "orders"))


def test_attribution_and_utm_from_the_window_leads_and_their_deals_are_those_of_the_whole_tables(tmp_path):
    from crmnb.analysis import case_rows

    t = _tables(tmp_path)
    leads = window_rows.window_leads(t, START, END)
    deals = case_rows.deals_of(t, leads)
    got = attribution.won_leads(leads, deals, START, END)
    want = attribution.won_leads(LEADS, OPPS, START, END)
    assert got["lead_id"].tolist() == want["lead_id"].tolist() == ["L2", "L3"]
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    utm = engagement.utm_leads(LEADS, OPPS, START, END)
    pd.testing.assert_frame_equal(engagement.utm_leads(leads, deals, START, END), utm)
    # the readers the deep dive calls: only the columns each reads, nothing read whole
    t2 = _tables(tmp_path / "slim")
    pd.testing.assert_frame_equal(window_rows.utm_leads(t2, START, END), utm)
    # L2 (news/mail), L4 (ads/cpc: its won deal has no close date, which utm_leads does not ask) and L3 (none)
    assert utm["won"].tolist() == [1, 1, 1] and utm["utm_source"].tolist() == ["news", "ads", "(none)"]
    got = window_rows.conversions(t2, START, END)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    assert not any(n in _read_whole(t2) for n in ("leads", "opportunities"))


def test_the_department_tickets_and_the_fields_they_lack_are_those_of_the_whole_table(tmp_path):
    from crmnb.analysis import case_rows

    t = case_rows.narrow(_tables(tmp_path))
    tickets = window_rows.department_tickets(t, "Sales")
    assert tickets["customer_id"].fillna("-").tolist() == ["K1", "K3", "-"]
    want = service.of_department(TICKETS, "Sales", START, END)
    got = service.of_department(tickets, "Sales", START, END)
    assert got["customer_id"].tolist() == want["customer_id"].tolist()
    # priority is empty in every row; product is not among the columns the step reads: both lacking, as on the frame
    missing, n = window_rows.ticket_fields(t)
    assert n == 5 and "priority" in missing and "channel" not in missing
    narrowed = TICKETS[[c for c in case_rows.TICKET_COLUMNS if c in TICKETS]]
    assert service.lacking_fields(missing, n, "en") == service.lacking(narrowed, "en")
    assert "tickets" not in _read_whole(t)
    # tickets that name no department: every ticket is the department's, as of_department keeps them all
    t2 = _tables(tmp_path / "nodept", {"tickets": TICKETS.assign(department=None)})
    assert len(window_rows.department_tickets(t2, "Sales")) == 5
    empty = _tables(tmp_path / "empty", {"tickets": TICKETS.iloc[:0]})
    assert service.lacking_fields(*window_rows.ticket_fields(empty), "en") == service.lacking(TICKETS.iloc[:0], "en")


def test_a_window_without_leads_has_no_conversion_and_no_utm_row(tmp_path):
    t = _tables(tmp_path)
    got = window_rows.conversions(t, "2024-01-01", "2024-01-31")
    assert got.empty and list(got) == list(attribution.won_leads(LEADS, OPPS, "2024-01-01", "2024-01-31"))
    assert window_rows.utm_leads(t, "2024-01-01", "2024-01-31").empty
