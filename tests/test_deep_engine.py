"""The deep dive's engine paths give the figures of the pandas functions: the e-mail funnel and A/B readout
counted by DuckDB over hand-off files, and the department's rows read with filters pushed into the read."""

import pandas as pd
import pytest

from crmnb.analysis import case_rows, engagement, engagement_engine, funnel, scope
from crmnb.handoffs import Workspace
from crmnb.params.model import CaseParams

T = pd.Timestamp


def _events() -> pd.DataFrame:
    """Campaign C1 in two variants (A to r1-r3, B to r4-r6), r1's subject only on its second event; r2 and r4
    clicked, r2 became lead L1 (won) and r5 lead L2 (open); C2 without mailing id; one send before the window;
    one event without a recipient, which no send counts."""
    rows = [
        ("C1", "M1", "r1", None, "A", None, "sent", "2025-03-01"),
        ("C1", "M1", "r1", None, "A", "Spring A", "open", "2025-03-02"),
        ("C1", "M1", "r2", None, "A", "Spring A2", "sent", "2025-03-01"),
        ("C1", "M1", "r2", "L1", None, None, "click", "2025-03-03"),
        ("C1", "M1", "r3", None, "A", None, "bounce", "2025-03-01"),
        ("C1", "M1", "r4", None, "B", "Spring B", "sent", "2025-03-01"),
        ("C1", "M1", "r4", None, "B", None, "click", "2025-03-01"),
        ("C1", "M1", "r5", "L2", "B", None, "sent", "2025-03-01"),
        ("C1", "M1", "r6", None, "B", None, "unsubscribe", "2025-03-04"),
        ("C2", None, "r7", None, None, None, "open", "2025-03-05"),
        ("C2", None, None, None, None, None, "open", "2025-03-05"),
        ("C1", "M0", "r1", None, "A", "Old", "sent", "2025-01-01"),
    ]
    cols = ["campaign_id", "email_id", "recipient_id", "lead_id", "variant", "subject", "event"]
    df = pd.DataFrame([r[:7] for r in rows], columns=cols)
    df.insert(0, "event_id", [f"E{i}" for i in range(len(rows))])
    df["occurred_at"] = [T(r[7]) for r in rows]
    return df


LEADS = pd.DataFrame(
    {
        "lead_id": ["L1", "L2", "L3", "L4"],
        "created_at": [T("2025-03-02"), T("2025-03-04"), T("2025-03-10"), T("2025-06-01")],
        "first_contact_at": [T("2025-03-03"), pd.NaT, T("2025-03-11"), pd.NaT],
        "department": ["Sales", "Sales", "Service", "Sales"],
        "channel": ["email", "email", "search", "search"],
        "contact_name": ["Ann", "Bo", "Cy", "Di"],
    }
)
OPPS = pd.DataFrame(
    {
        "opportunity_id": ["O1", "O2", "O3"],
        "lead_id": ["L1", "L3", "L2"],
        "department": ["Sales", "Service", "Sales"],
        "status": ["won", "lost", "open"],
        "created_at": [T("2025-03-04"), T("2025-03-12"), T("2025-03-06")],
        "loss_reason": [None, "price", None],
        "note": ["a", "b", "c"],
    }
)
STAGES = pd.DataFrame(
    {
        "opportunity_id": ["O1", "O1", "O2", "O3"],
        "stage": ["needs_confirmed", "won", "proposal", "needs_confirmed"],
        "entered_at": [T("2025-03-04"), T("2025-03-09"), T("2025-03-12"), T("2025-03-06")],
        "exited_at": [T("2025-03-09"), pd.NaT, T("2025-03-20"), pd.NaT],
    }
)
CAMPAIGNS = pd.DataFrame({"campaign_id": ["C1", "C2"], "name": ["Spring mail", "Newsletter"]})


def _tables(tmp_path, events: pd.DataFrame | None = None):
    """Return a workspace's cleaned tables holding the frames above, each in its hand-off file."""
    ws = Workspace(tmp_path, "case")
    frames = {"email_events": _events() if events is None else events, "leads": LEADS, "opportunities": OPPS}
    frames |= {"campaigns": CAMPAIGNS, "stage_history": STAGES}
    for name, df in frames.items():
        ws.write(f"clean/{name}", df.assign(_row=range(len(df))))
    return ws.tables("clean")


@pytest.mark.parametrize("read_leads", [False, True])
def test_engine_funnel_is_the_pandas_funnel(tmp_path, read_leads):
    t = _tables(tmp_path)
    if read_leads:  # the leads read whole already: the engine takes their ids from the frame
        t["leads"]
    got, gap = engagement_engine.funnel_or_gap(t, "2025-02-01", "2025-03-31")
    want = engagement.email_funnel(_events(), LEADS, OPPS, CAMPAIGNS, "2025-02-01", "2025-03-31")
    assert gap is None
    pd.testing.assert_frame_equal(got, want)
    c1 = got[got["campaign_id"] == "C1"].set_index("stage")["count"].to_dict()
    assert c1 == {"sent": 6, "opened": 3, "clicked": 2, "lead": 2, "won": 1, "bounced": 1, "unsubscribed": 1}


def test_engine_ab_is_the_pandas_ab(tmp_path):
    t = _tables(tmp_path)
    got = engagement_engine.ab_or_empty(t, "2025-02-01", "2025-03-31", min_sends=1)
    want = engagement.ab_tests(_events(), CAMPAIGNS, "2025-02-01", "2025-03-31", min_sends=1)
    pd.testing.assert_frame_equal(got, want)
    # r1's first event has no subject: the variant's subject is its first send's, read in the file's order
    assert got["ab_test"].iloc[0] == "Spring mail (C1): A “Spring A” / B “Spring B”"
    assert got[["sends_a", "sends_b"]].iloc[0].tolist() == [
        3,
        3,
    ]  # r2 is A by its first event, though its click names none
    assert engagement_engine.ab_or_empty(t, "2025-02-01", "2025-03-31", min_sends=4).empty


@pytest.mark.parametrize("parts", [3, 5, 7])
def test_events_counted_in_parts_give_the_one_pass_figures(tmp_path, monkeypatch, parts):
    """A large events file is counted over shares of the recipients and added: the same funnel and A/B readout.
    In 5 and 7 parts r1 and r2 fall in different ones: variant A's subject line is still r1's, its first send
    with one, from whichever part holds it."""
    t = _tables(tmp_path)
    path = engagement_engine.event_file(t)
    monkeypatch.setattr(engagement_engine, "EVENTS_PER_PART", 5)
    assert engagement_engine._parts(path) == 3  # 12 events, 5 a part
    monkeypatch.setattr(engagement_engine, "_parts", lambda _path: parts)
    got, _ = engagement_engine.funnel_or_gap(t, "2025-02-01", "2025-03-31")
    want = engagement.email_funnel(_events(), LEADS, OPPS, CAMPAIGNS, "2025-02-01", "2025-03-31")
    pd.testing.assert_frame_equal(got, want)
    engagement_engine._LAST.clear()
    ab = engagement_engine.ab_or_empty(t, "2025-02-01", "2025-03-31", min_sends=1)
    pd.testing.assert_frame_equal(
        ab, engagement.ab_tests(_events(), CAMPAIGNS, "2025-02-01", "2025-03-31", min_sends=1)
    )
    assert ab["ab_test"].iloc[0] == "Spring mail (C1): A “Spring A” / B “Spring B”"


def test_engine_says_why_without_events(tmp_path):
    t = _tables(tmp_path, _events().iloc[:0])
    assert engagement_engine.funnel_or_gap(t)[1] == "no_rows"
    assert engagement_engine.ab_or_empty(t).empty


def test_case_rows_are_the_whole_table_filters(tmp_path):
    case = CaseParams.model_validate(
        {
            "case_id": "c",
            "title": "c",
            "department": "Sales",
            "owner": "o",
            "period": {"start": "2025-03-01", "end": "2025-03-31"},
            "goal": {"metric": "lead_conversion_rate", "baseline": 0.1, "target": 0.2, "deadline": "2025-06-30"},
            "data": {"dir": str(tmp_path)},
        }
    )
    t = case_rows.narrow(_tables(tmp_path))
    assert "contact_name" not in t["leads"] and "note" not in t["opportunities"]
    leads = case_rows.case_leads(t, case)
    whole = scope.leads_in({"leads": LEADS}, case)
    assert leads["lead_id"].tolist() == whole["lead_id"].tolist() == ["L1", "L2"]
    stages = case_rows.case_stages(t, leads, "Sales")
    assert sorted(stages["opportunity_id"].unique()) == ["O1", "O3"]  # O2 is Service's, of a Service lead
    args = {"stages": ["lead", "first_contact", "needs_confirmed", "proposal", "won"]}
    pd.testing.assert_frame_equal(
        funnel.funnel(leads, OPPS, stages, **args), funnel.funnel(whole, OPPS, STAGES, **args), check_dtype=False
    )


def test_case_losses_and_outcome_columns_read_only_what_they_use(tmp_path):
    from crmnb.analysis import losses, marketing

    t = _tables(tmp_path)
    ws = Workspace(tmp_path, "case")
    ws.write(
        "clean/orders",
        pd.DataFrame(
            {
                "customer_id": ["K1"],
                "opportunity_id": ["O1"],
                "order_date": [T("2025-03-09")],
                "amount": [5.0],
                "department": ["Sales"],
            }
        ),
    )
    leads, deals, orders = marketing.outcome_tables(t)
    assert list(leads) == ["lead_id", "created_at", "channel"]  # the demo's leads here lack campaign and customer
    assert "note" not in deals and "department" not in orders
    assert "leads" not in repr(t).split("read so far:")[1]  # nothing was read whole
    case = CaseParams.model_validate(
        {
            "case_id": "c",
            "title": "c",
            "department": "Service",
            "owner": "o",
            "period": {"start": "2025-03-01", "end": "2025-03-31"},
            "goal": {"metric": "lead_conversion_rate", "baseline": 0.1, "target": 0.2, "deadline": "2025-06-30"},
            "data": {"dir": str(tmp_path)},
        }
    )
    got = losses.case_losses(t, case)
    want = losses.losses_of(scope.leads_in({"leads": LEADS}, case), OPPS, STAGES)
    assert got["opportunity_id"].tolist() == want["opportunity_id"].tolist() == ["O2"]
    assert got["lost_at_stage"].tolist() == want["lost_at_stage"].tolist() == ["proposal"]


def test_a_narrowed_table_keeps_what_the_analyses_read_and_reads_other_columns_from_its_file(tmp_path):
    t = case_rows.narrow(_tables(tmp_path))
    assert "leads" not in repr(t).split("read so far:")[1]  # narrowing reads nothing yet
    held = t["leads"]
    assert "contact_name" not in held and held["lead_id"].tolist() == LEADS["lead_id"].tolist()
    # a column the frame held does not have comes from the file, with the table's values, in its order
    names = t.columns("leads", ["lead_id", "contact_name"])
    assert names.values.tolist() == LEADS[["lead_id", "contact_name"]].values.tolist()
    sales = t.where("leads", "department", ["Sales"], ["lead_id", "contact_name"])
    assert sales.values.tolist() == [["L1", "Ann"], ["L2", "Bo"], ["L4", "Di"]]
    # the company's leads are held without their department; a department's rows keep it, read from the file
    assert "department" not in held
    rows = t.where("leads", "department", ["Sales"])
    assert list(rows) == ["lead_id", "created_at", "first_contact_at", "department", "channel"]
    assert rows["lead_id"].tolist() == ["L1", "L2", "L4"]
    t["leads"] = held.assign(department=LEADS["department"])  # a table a notebook sets is taken as it is
    assert t.where("leads", "department", ["Service"])["lead_id"].tolist() == ["L3"]
    # a table not read yet gives its narrowed columns to a filtered read as well
    deals = t.where("opportunities", "department", ["Sales"])
    assert "note" not in deals and deals["opportunity_id"].tolist() == ["O1", "O3"]
    assert "opportunities" not in repr(t).split("read so far:")[1]


def test_engine_funnel_runs_again_with_more_memory_when_duckdb_runs_out(tmp_path, monkeypatch):
    import duckdb

    t = _tables(tmp_path)
    want = engagement.email_funnel(_events(), LEADS, OPPS, CAMPAIGNS, "2025-02-01", "2025-03-31")
    monkeypatch.setattr(engagement_engine, "MEMORY_LIMITS", ("0KB",))
    with pytest.raises(duckdb.OutOfMemoryException):  # out of memory at the last limit: said, never a guess
        engagement_engine.funnel_or_gap(t, "2025-02-01", "2025-03-31")
    monkeypatch.setattr(engagement_engine, "MEMORY_LIMITS", ("0KB", "256MB"))
    got, gap = engagement_engine.funnel_or_gap(t, "2025-02-01", "2025-03-31")
    assert gap is None
    pd.testing.assert_frame_equal(got, want)
