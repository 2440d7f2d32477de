"""crmnb new: a case file with every key explained, valid as written once its data exists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from crmnb.cli import main
from crmnb.demo.generator import generate
from crmnb.errors import CaseFileError
from crmnb.params import GOAL_METRICS, CaseParams, DataSource, Thresholds, load_case
from crmnb.run.scaffold import DOC, new_case

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("demo")
    generate(data, scale=0.2)
    return data


@pytest.fixture
def workbook(tmp_path) -> Path:
    """A workbook with the shared and department defaults, and no case yet."""
    params = tmp_path / "parameters"
    params.mkdir()
    shutil.copy(ROOT / "parameters" / "_defaults.yaml", params)
    shutil.copytree(ROOT / "parameters" / "_departments", params / "_departments")
    return tmp_path


def test_new_case_validates_as_written(workbook, demo, monkeypatch, capsys):
    monkeypatch.chdir(workbook)
    rc = main(
        [
            "new",
            "churn_watch",
            "--department",
            "销售一部",
            "--title",
            "Churn watch Q3",
            "--owner",
            "Sales 1 operations lead",
            "--data-dir",
            str(demo),
        ]
    )
    out = capsys.readouterr().out
    path = workbook / "parameters" / "churn_watch.yaml"
    assert rc == 0 and str(path) in out and "fill in:" in out
    case = load_case(path)
    assert (case.case_id, case.department, case.title, case.owner) == (
        "churn_watch",
        "销售一部",
        "Churn watch Q3",
        "Sales 1 operations lead",
    )
    assert case.data.dir == demo.resolve()
    assert not Path(yaml.safe_load(path.read_text("utf-8"))["data"]["dir"]).is_absolute(), (
        "the data folder is written relative to the case file, so the workbook can move"
    )
    assert main(["validate", str(path)]) == 0


def test_new_case_refuses_to_overwrite(workbook, monkeypatch, capsys):
    monkeypatch.chdir(workbook)
    path = workbook / "parameters" / "lead_conversion_uplift.yaml"
    path.write_text("# the analyst's own work\n", encoding="utf-8")
    assert main(["new", "lead_conversion_uplift", "--department", "销售一部"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert path.read_text(encoding="utf-8") == "# the analyst's own work\n"


@pytest.mark.parametrize("case_id", ["Bad Id", "../escape", ""])
def test_new_case_refuses_a_bad_id_and_writes_nothing(workbook, case_id):
    with pytest.raises(CaseFileError, match="case_id"):
        new_case(case_id, "销售一部", parameters_dir=workbook / "parameters")
    assert sorted(p.name for p in (workbook / "parameters").glob("*.yaml")) == ["_defaults.yaml"]


@pytest.mark.parametrize("metric", list(GOAL_METRICS))
def test_every_goal_metric_gives_a_valid_file(workbook, metric):
    path, todo = new_case(f"case_{metric}", "客户服务部", metric=metric, parameters_dir=workbook / "parameters")
    case = load_case(path)
    assert case.goal.metric == metric
    assert "owner" in todo and any(t.startswith("data:") for t in todo), "the data folder does not exist yet"


def _dotted(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        if name == "source_file":
            continue
        key = prefix + name
        keys.add(key)
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel) and kind is not DataSource:
            keys |= _dotted(kind, key + ".")  # data's sources are crmnb.intake.sources' to explain: one level only
    return keys


def test_template_explains_every_key_of_the_case_model(workbook):
    from crmnb.params import PlanItem

    expected = (
        _dotted(CaseParams)
        | {f"data.{k}" for k in DataSource.model_fields}
        | {f"plan.{k}" for k in PlanItem.model_fields}
    )
    missing = sorted(expected - set(DOC))
    assert not missing, (
        f"give these settings a Field(description=...) in crmnb/params/model.py so `crmnb new` explains them: {missing}"
    )
    path, _ = new_case("every_key", "销售一部", parameters_dir=workbook / "parameters")
    text = path.read_text(encoding="utf-8")
    for key in expected:
        assert f"{key.split('.')[-1]}:" in text, key


def test_defaults_shown_in_the_template_are_the_ones_the_case_gets(workbook):
    (workbook / "parameters" / "_departments" / "销售一部.yaml").write_text(
        "thresholds:\n  cpa_overrun_max: 0.45\n", encoding="utf-8"
    )
    path, _ = new_case("shown_defaults", "销售一部", parameters_dir=workbook / "parameters")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert any(x.startswith("#   cpa_overrun_max: 0.45 ") for x in lines)
    # uncommenting the whole thresholds block gives the very thresholds the case has without it
    start = lines.index(next(x for x in lines if x.startswith("# thresholds:")))
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    block = [x[2:] for x in lines[start:end]]
    uncommented = lines[:start] + block + lines[end:]
    path.write_text("\n".join(uncommented) + "\n", encoding="utf-8")
    assert load_case(path).thresholds.cpa_overrun_max == 0.45
    assert load_case(path).thresholds.model_dump() == {**Thresholds().model_dump(), "cpa_overrun_max": 0.45}


def test_the_template_explains_a_key_with_its_field_description():
    from crmnb.params import ChurnThresholds, Goal

    assert DOC["thresholds.cpa_overrun_max"] == Thresholds.model_fields["cpa_overrun_max"].description
    assert DOC["thresholds.churn.horizon_days"] == ChurnThresholds.model_fields["horizon_days"].description
    assert DOC["goal.metric"] == Goal.model_fields["metric"].description
    assert "source_file" not in DOC
