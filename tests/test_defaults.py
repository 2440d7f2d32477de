"""Shared defaults: _defaults.yaml, then _departments/<department>.yaml, then the case file, which wins."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
import yaml

from crmnb.errors import CaseFileError
from crmnb.params import Thresholds, case_settings, deep_merge, load_case, read_case_mapping

ROOT = Path(__file__).resolve().parents[1]

CASE = """\
case_id: unit_case
title: Unit case
department: 销售一部
owner: Sales 1 operations lead
period: {start: 2025-07-01, end: 2025-12-31}
goal: {metric: lead_conversion_rate, baseline: 0.15, target: 0.20, deadline: 2026-06-30}
data: {dir: ../data}
"""


def _folder(tmp_path: Path, case: str = CASE, defaults: str | None = None, **departments: str) -> Path:
    folder = tmp_path / "parameters"
    folder.mkdir()
    (folder / "unit_case.yaml").write_text(case, encoding="utf-8")
    if defaults is not None:
        (folder / "_defaults.yaml").write_text(defaults, encoding="utf-8")
    if departments:
        (folder / "_departments").mkdir()
        for name, text in departments.items():
            (folder / "_departments" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder / "unit_case.yaml"


def test_mappings_merge_key_by_key_and_lists_and_scalars_replace():
    base = {"a": {"x": 1, "y": {"p": 1, "q": 2}}, "l": [1, 2, 3], "s": "base", "m": {"k": 1}}
    over = {"a": {"y": {"q": 9}}, "l": [7], "s": "over", "m": None, "new": 1}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": {"p": 1, "q": 9}}, "l": [7], "s": "over", "m": None, "new": 1}
    assert base["a"]["y"]["q"] == 2, "the inputs are left as they were"


def test_order_is_defaults_then_department_then_case(tmp_path):
    file = _folder(
        tmp_path,
        CASE + "thresholds:\n  tiers: {high_spend: 500000}\n  funnel_stages: [lead, proposal, won]\n",
        defaults="language: zh\nthresholds:\n  tiers: {high_spend: 200000, potential_spend: 50000}\n"
        "  cpa_overrun_max: 0.5\n  funnel_stages: [lead, first_contact, won]\n"
        "  dwell_benchmark_days: {proposal: 20}\n",
        销售一部="thresholds:\n  cpa_overrun_max: 0.4\n  dwell_benchmark_days: {negotiation: 30}\n",
    )
    case = load_case(file)
    t = case.thresholds
    assert case.language == "zh"  # from _defaults.yaml
    assert t.tiers.high_spend == 500_000  # the case wins …
    assert t.tiers.potential_spend == 50_000  # … over the one key it sets; the rest of the mapping stays
    assert t.cpa_overrun_max == 0.4  # the department wins over the shared defaults
    assert t.dwell_benchmark_days == {"proposal": 20, "negotiation": 30}  # mappings merge
    assert t.funnel_stages == ("lead", "proposal", "won")  # lists replace
    assert t.forecast_tolerance == Thresholds().forecast_tolerance  # untouched: the method's default


def test_department_file_with_a_chinese_name_is_found(tmp_path):
    file = _folder(tmp_path, defaults="", 销售一部="mask_pii: false\n", 客户服务部="language: zh\n")
    case = load_case(file)
    assert case.mask_pii is False and case.language == "en", "only the case's own department applies"
    raw, _ = read_case_mapping(file)
    assert [p.name for p in raw.defaults] == ["_defaults.yaml", "销售一部.yaml"]


def test_department_file_written_in_another_unicode_form_is_found(tmp_path):
    # macOS writes file names decomposed (NFD); the case file has the composed form
    composed = "Vente Île-de-France"
    file = _folder(
        tmp_path, CASE.replace("销售一部", composed), **{unicodedata.normalize("NFD", composed): "language: zh\n"}
    )
    assert load_case(file).language == "zh"


def test_without_defaults_files_the_case_file_alone_counts(tmp_path):
    file = _folder(tmp_path)
    raw, _ = read_case_mapping(file)
    assert dict(raw) == yaml.safe_load(CASE)
    assert load_case(file).thresholds == Thresholds()


def test_settings_passed_to_notebooks_are_the_merged_ones(tmp_path):
    file = _folder(tmp_path, defaults="thresholds:\n  clv_horizon_months: 6\n", 销售一部="cell_timeout_seconds: 120\n")
    settings = case_settings(file)
    assert settings["thresholds"]["clv_horizon_months"] == 6
    assert settings["cell_timeout_seconds"] == 120
    assert settings["period"]["start"] == "2025-07-01", "plain JSON values, as papermill records them"
    json.dumps(settings)
    # the notebook validates what it is passed: the same case as from the file
    assert load_case(file, settings) == load_case(file)


def test_bad_key_in_the_defaults_names_that_file(tmp_path):
    file = _folder(
        tmp_path, defaults="thresholds:\n  tiers: {high_spnd: 1}\n", 销售一部="thresholds:\n  cpa_overrun_max: -1\n"
    )
    with pytest.raises(CaseFileError) as exc:
        load_case(file)
    msg = str(exc.value)
    assert msg.startswith(f"{file}: invalid case file (merged with _defaults.yaml, _departments/销售一部.yaml)")
    assert "thresholds.tiers.high_spnd': unknown key (did you mean 'high_spend'?)" in msg
    assert f"(set in {file.parent / '_defaults.yaml'})" in msg
    line = next(x for x in msg.splitlines() if "cpa_overrun_max" in x)
    assert str(file.parent / "_departments" / "销售一部.yaml") in line


def test_bad_key_in_the_case_file_is_not_blamed_on_the_defaults(tmp_path):
    file = _folder(tmp_path, CASE.replace("baseline: 0.15", "baselin: 0.15"), defaults="language: en\n")
    with pytest.raises(CaseFileError) as exc:
        load_case(file)
    msg = str(exc.value)
    assert str(file) in msg and "merged with _defaults.yaml" in msg
    line = next(x for x in msg.splitlines() if "goal.baselin" in x)
    assert "set in" not in line


def test_case_overriding_a_bad_default_validates(tmp_path):
    file = _folder(tmp_path, CASE + "language: en\n", defaults="language: fr\n")
    assert load_case(file).language == "en"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("case_id: everyone\n", "key 'case_id' cannot be a default"),
        ("language: [en\n", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_unusable_defaults_file_is_named(tmp_path, text, expected):
    file = _folder(tmp_path, defaults=text)
    with pytest.raises(CaseFileError) as exc:
        load_case(file)
    assert str(exc.value).startswith(str(file.parent / "_defaults.yaml")) and expected in str(exc.value)


def test_department_file_cannot_change_the_department(tmp_path):
    file = _folder(tmp_path, 销售一部="department: 客户服务部\n")
    with pytest.raises(CaseFileError, match="_departments/销售一部.yaml: key 'department' cannot be a default"):
        load_case(file)


@pytest.mark.parametrize("key, value", [("timeout_minutes", 0), ("cell_timeout_seconds", -1)])
def test_time_limits_must_be_positive(tmp_path, key, value):
    with pytest.raises(CaseFileError, match=key):
        load_case(_folder(tmp_path, CASE + f"{key}: {value}\n"))


# --------------------------------------------------------------------------- the workbook's own files
def test_workbook_defaults_are_the_methods_defaults():
    raw = yaml.safe_load((ROOT / "parameters" / "_defaults.yaml").read_text(encoding="utf-8"))
    assert Thresholds.model_validate(raw["thresholds"]) == Thresholds()
    assert set(raw["thresholds"]) == set(Thresholds.model_fields), "every threshold shown with its default"


@pytest.mark.parametrize("name", ["lead_conversion_uplift", "repeat_purchase_optimisation"])
def test_demo_cases_get_their_departments_defaults(name):
    file = ROOT / "parameters" / f"{name}.yaml"
    raw, _ = read_case_mapping(file)
    case = load_case(file)
    assert [p.relative_to(ROOT / "parameters").as_posix() for p in raw.defaults] == [
        "_defaults.yaml",
        f"_departments/{case.department}.yaml",
    ]
    own = yaml.safe_load(file.read_text(encoding="utf-8"))
    assert len(own["thresholds"]) < len(Thresholds.model_fields), "the case file lists only what it cares about"
    assert case.thresholds == Thresholds()  # the demo results do not depend on where a threshold is written
