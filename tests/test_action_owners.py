"""The case file's action_owners: each kind of action gets its own owner and date; a wrong kind is refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crmnb.analysis.diagnosis import improvement_plan
from crmnb.analysis.owners import action_kinds, action_owners
from crmnb.errors import CaseFileError
from crmnb.params import load_case
from crmnb.run.preflight import validate_case

ROOT = Path(__file__).resolve().parents[1]


def _case(tmp_path: Path, owners: dict) -> Path:
    raw = yaml.safe_load((ROOT / "parameters" / "repeat_purchase_optimisation.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(tmp_path / "data")}
    raw["action_owners"] = owners
    file = tmp_path / "repeat_purchase_optimisation.yaml"
    file.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return file


def test_each_kind_of_action_gets_the_owner_and_date_the_case_file_gives(tmp_path):
    case = load_case(_case(tmp_path, {"complaints": {"owner": "Service quality lead", "deadline": "2026-02-15"}}))
    problems = pd.DataFrame(
        {
            "kind": ["complaints", "churn_risk"],
            "problem": ["complaints", "churn"],
            "cause": ["c", "c"],
            "bears_on_goal": [True, True],
        }
    )
    plan = improvement_plan(problems, [], case.owner, case.goal.deadline, "en", owners=action_owners(case))
    assert plan["owner"].tolist() == ["Service quality lead", case.owner]
    assert plan["deadline"].tolist() == [date(2026, 2, 15), case.goal.deadline]


def test_an_owner_without_a_date_keeps_the_goal_deadline(tmp_path):
    case = load_case(_case(tmp_path, {"churn_risk": {"owner": "Retention lead"}}))
    assert action_owners(case) == {"churn_risk": {"owner": "Retention lead", "deadline": None}}


def test_a_misspelt_kind_is_refused_naming_the_file_and_the_kinds(tmp_path):
    file = _case(tmp_path, {"complaint": {"owner": "Service quality lead"}})
    with pytest.raises(CaseFileError) as err:
        action_owners(load_case(file))
    assert str(file) in str(err.value) and "'complaint'" in str(err.value) and "complaints" in str(err.value)
    said: list[str] = []
    assert validate_case(file, say=said.append) == 1
    assert "'complaint' is not a kind of problem" in said[0]


def test_the_kinds_are_the_diagnosis_rules_but_the_goal_gap():
    kinds = action_kinds()
    assert "goal_gap" not in kinds and {"complaints", "slow_response", "churn_risk", "weak_stage"} <= set(kinds)
