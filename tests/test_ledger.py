"""The action ledger: written on the first run from the plan, never overwritten, validated, its actions scored."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from crmnb.analysis.action_scores import score_action
from crmnb.analysis.action_tracking import tracking
from crmnb.errors import CaseFileError
from crmnb.params import load_case
from crmnb.params.loop import LedgerAction, next_review
from crmnb.run.ledger import ledger_path, open_ledger, read_ledger

ROOT = Path(__file__).resolve().parents[1]
DEPT, CONTROL = "销售一部", "客户服务部"


def _leads(rng, dept: str, start: str, days: int, p_uncontacted: float) -> pd.DataFrame:
    created = pd.Timestamp(start) + pd.to_timedelta(np.arange(days * 10) * 2.4, unit="h")
    contacted = rng.random(len(created)) >= p_uncontacted
    hours = rng.uniform(1, 30, len(created))
    first = pd.Series(created + pd.to_timedelta(hours, unit="h")).where(contacted)
    return pd.DataFrame({"lead_id": [f"{dept}{start}{i}" for i in range(len(created))], "created_at": created,
                         "first_contact_at": first.to_numpy(), "department": dept, "owner_rep": "rep",
                         "customer_id": None})  # fmt: skip


def _tables(after_uncontacted: float, control_after: float = 0.2) -> dict[str, pd.DataFrame]:
    """Return leads of two departments, 10 a day: 20% never contacted before 2026-04-01, then as given."""
    rng = np.random.default_rng(1)
    parts = [
        _leads(rng, DEPT, "2026-01-01", 90, 0.2),
        _leads(rng, DEPT, "2026-04-01", 91, after_uncontacted),
        _leads(rng, CONTROL, "2026-01-01", 90, 0.2),
        _leads(rng, CONTROL, "2026-04-01", 91, control_after),
    ]
    return {"leads": pd.concat(parts, ignore_index=True), "opportunities": pd.DataFrame()}


def _action(**changes) -> LedgerAction:
    base = {"id": "A1", "problem": "Leads never contacted", "measure": "work every lead", "owner": "ops",
            "due": "2026-09-30", "kpi": "uncontacted_share", "scope": DEPT, "start": "2026-04-01",
            "status": "in progress"}  # fmt: skip
    return LedgerAction.model_validate({**base, **changes})


def test_an_action_that_worked_is_scored_working_with_its_interval():
    s = score_action(_action(), _tables(0.0), date(2026, 6, 30), CONTROL, {})
    assert s["verdict"] == "working" and not s["overdue"]
    assert s["after"] == 0.0 and s["before"] == pytest.approx(0.2, abs=0.03)
    assert s["ci_low"] < s["change"] < s["ci_high"] < 0  # against the control, whose share stayed at 20%
    assert s["change"] == pytest.approx(-s["before"] - s["control_change"])


def test_no_effect_worse_too_early_and_overdue():
    same = score_action(_action(), _tables(0.2), date(2026, 6, 30), CONTROL, {})
    assert same["verdict"] == "no_effect" and same["ci_low"] < 0 < same["ci_high"]
    worse = score_action(_action(), _tables(0.35), date(2026, 6, 30), None, {})
    assert worse["verdict"] == "worse" and np.isnan(worse["control_change"])
    early = score_action(_action(start="2026-06-20"), _tables(0.0), date(2026, 6, 30), CONTROL, {})
    assert early["verdict"] == "too_early"
    late = score_action(
        _action(due="2026-05-31", start=None, status="planned"), _tables(0.0), date(2026, 6, 30), None, {}
    )
    assert late["verdict"] == "not_started" and late["overdue"]
    assert not score_action(_action(due="2026-05-31", status="done"), _tables(0.0), date(2026, 6, 30), None, {})[
        "overdue"
    ]


def _case(tmp_path: Path):
    raw = yaml.safe_load((ROOT / "parameters" / "lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(tmp_path)}
    path = tmp_path / "lead_conversion_uplift.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_case(path)


PLAN = pd.DataFrame({"problem": ["Leads never contacted", "Too many leads wait past the first-contact target"],
                     "measure": ["work them", "SLA"], "owner": ["ops", "ops"], "deadline": ["2026-06-30"] * 2,
                     "kpi": ["share never contacted", "within 24 h"], "expected_effect": ["none left", "faster"],
                     "target": ["92 leads", "374 leads"]})  # fmt: skip
PROBLEMS = pd.DataFrame({"problem": PLAN["problem"], "kind": ["uncontacted", "slow_response"]})


def test_first_run_writes_the_ledger_later_runs_read_it_and_propose_new_problems(tmp_path):
    case = _case(tmp_path)
    first = tracking(PLAN, case, _tables(0.0), PROBLEMS)
    path = ledger_path(case)
    assert path == tmp_path / "lead_conversion_uplift.actions.yaml" and path.is_file()
    assert first["status"].tolist() == ["planned", "planned"] and first["verdict_key"].eq("not_started").all()
    ledger = read_ledger(path)
    assert [(a.id, a.kpi, a.scope) for a in ledger.actions] == [("A1", "uncontacted_share", DEPT),
                                                                 ("A2", "lead_response_hours", DEPT)]  # fmt: skip
    text = path.read_text(encoding="utf-8").replace("status: planned", "status: in progress", 1)
    path.write_text(text.replace("start: null", "start: '2026-04-01'", 1) + "# my note\n", encoding="utf-8")
    more = pd.concat([PLAN, pd.DataFrame({"problem": ["Deals lost for price"], "measure": ["pricing guide"]})])
    again = tracking(more, case, _tables(0.0), PROBLEMS)
    assert path.read_text(encoding="utf-8").endswith("# my note\n")  # never overwritten
    assert again["status"].tolist() == ["in progress", "planned", "proposed"]
    assert again["verdict"].tolist()[:2] == ["working", "not started"]
    assert "against the control" in again["metric_change"].iloc[0] and "95% CI" in again["metric_change"].iloc[0]
    assert again["note"].iloc[2] == "Deals lost for price" and "add it to the ledger" in again["advice"].iloc[2]
    assert len(read_ledger(path).actions) == 2  # the proposal is not written into the ledger
    assert open_ledger(more, case)[2] is False


@pytest.mark.parametrize(
    "edit, named",
    [
        (("status: planned", "status: finished"), "key 'actions.0.status'"),
        (("owner: ops", "ownr: ops"), "key 'actions.0.ownr': unknown key (did you mean 'owner'?)"),
        (("due: '2026-06-30'", "due: next spring"), "key 'actions.0.due'"),
    ],
)
def test_a_bad_ledger_names_the_file_and_the_key(tmp_path, edit, named):
    case = _case(tmp_path)
    tracking(PLAN, case, _tables(0.0), PROBLEMS)
    path = ledger_path(case)
    path.write_text(path.read_text(encoding="utf-8").replace(*edit, 1), encoding="utf-8")
    with pytest.raises(CaseFileError) as exc:
        tracking(PLAN, case, _tables(0.0), PROBLEMS)
    assert str(path) in str(exc.value) and named in str(exc.value)


def test_review_every_is_validated_and_gives_the_next_review():
    assert next_review(date(2025, 11, 30), "3 months") == date(2026, 2, 28)
    assert next_review(date(2026, 1, 1), "30 days") == date(2026, 1, 31)
    with pytest.raises(CaseFileError, match="review_every"):
        load_case_text("review_every: quarterly")


def load_case_text(line: str):
    """Load the demo case with one more line."""
    from crmnb.params.files import parse_case

    raw = yaml.safe_load((ROOT / "parameters" / "lead_conversion_uplift.yaml").read_text(encoding="utf-8"))
    raw.update(yaml.safe_load(line))
    return parse_case(raw, ROOT / "parameters" / "x.yaml")
