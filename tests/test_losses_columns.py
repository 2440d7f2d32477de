"""The case's losses read only the columns they use, and are the losses of the department's leads read whole."""

from __future__ import annotations

import pandas as pd
import pytest

from crmnb.analysis import case_rows, losses
from crmnb.analysis.funnel import loss_stage
from crmnb.handoffs import Workspace
from crmnb.params.model import CaseParams

T = pd.Timestamp


def _case(department: str) -> CaseParams:
    return CaseParams.model_validate(
        {
            "case_id": "c",
            "title": "c",
            "department": department,
            "owner": "o",
            "period": {"start": "2025-03-01", "end": "2025-03-31"},
            "goal": {"metric": "lead_conversion_rate", "baseline": 0.1, "target": 0.2, "deadline": "2025-06-30"},
            "data": {"dir": "."},
        }
    )


def _tables(tmp_path):
    """Return cleaned tables: leads of two departments, in and out of March, with contact columns; their deals,
    lost from several stages (one with two stages entered at the same instant), and the stages."""
    leads = pd.DataFrame(
        {
            "lead_id": ["L1", "L2", "L3", "L4", "L5"],
            "created_at": [T("2025-03-01"), T("2025-03-31 23:00"), T("2025-04-01"), T("2025-03-10"), T("2025-02-28")],
            "department": ["Sales", "Sales", "Sales", "Service", "Sales"],
            "contact_name": ["王芳", "李雷", "A", "B", "C"],
            "phone": ["1", "2", "3", "4", "5"],
        }
    )
    opps = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2", "O3", "O4", "O5", "O6"],
            "lead_id": ["L1", "L1", "L2", "L3", "L4", "L2"],
            "status": ["lost", "won", "lost", "lost", "lost", "lost"],
            "loss_reason": ["price", None, "competitor", "price", "timing", ""],
            "note": ["x"] * 6,
        }
    )
    stages = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O1", "O3", "O3", "O4", "O2"],
            "stage": ["needs_confirmed", "proposal", "proposal", "negotiation", "proposal", "won"],
            "entered_at": [
                T("2025-03-02"),
                T("2025-03-05"),
                T("2025-04-02"),
                T("2025-04-02"),
                T("2025-04-03"),
                T("2025-03-09"),
            ],
        }
    )
    ws = Workspace(tmp_path, "case")
    for name, df in {"leads": leads, "opportunities": opps, "stage_history": stages}.items():
        ws.write(f"clean/{name}", df)
    return ws


@pytest.mark.parametrize("department", ["Sales", "Service", "Nobody"])
def test_case_losses_are_those_of_the_whole_rows(tmp_path, department):
    ws = _tables(tmp_path)
    case = _case(department)
    t = ws.tables("clean")
    whole = ws.tables("clean")
    deals = case_rows.deals_of(whole, case_rows.case_leads(whole, case))
    want = loss_stage(deals, case_rows.stages_of(whole, deals))
    got = losses.case_losses(t, case)
    pd.testing.assert_frame_equal(got, want)
    assert "read so far: none" in repr(t), "no table was read whole"
    if department == "Sales":  # L1's O1 lost at proposal, L2's O3 and O6 (no stage: the first deal stage)
        assert got["opportunity_id"].tolist() == ["O1", "O3", "O6"]
        assert got["lost_at_stage"].tolist()[::2] == ["proposal", "needs_confirmed"]


def test_case_losses_of_tables_read_whole_or_plain_frames(tmp_path):
    ws = _tables(tmp_path)
    case = _case("Sales")
    t = ws.tables("clean")
    want = losses.case_losses(ws.tables("clean"), case)
    t["leads"], t["opportunities"]  # read whole already: the rows are picked from the frames
    pd.testing.assert_frame_equal(losses.case_losses(t, case), want)
    frames = {n: ws.read(f"clean/{n}") for n in ("leads", "opportunities", "stage_history")}
    pd.testing.assert_frame_equal(losses.case_losses(frames, case), want)
