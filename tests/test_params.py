"""crmnb.params.model: case files are checked up front, and a bad one names the file, the key and the fix."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import pytest
import yaml

from crmnb.errors import CaseFileError
from crmnb.params import GOAL_METRICS, CaseParams, load_case, parse_case

ROOT = Path(__file__).resolve().parents[1]
CASE_FILES = sorted(
    p
    for p in (ROOT / "parameters").glob("*.yaml")
    if not p.name.startswith("_") and not p.name.endswith(".actions.yaml")
)

# A valid case written the way YAML hands it over: dates as date objects.
BASE = {
    "case_id": "unit_case",
    "title": "Unit case",
    "department": "销售一部",
    "control_department": "客户服务部",
    "owner": "Sales 1 operations lead",
    "period": {"start": date(2025, 7, 1), "end": date(2025, 12, 31)},
    "goal": {"metric": "lead_conversion_rate", "baseline": 0.15, "target": 0.20, "deadline": date(2026, 6, 30)},
    "intervention_date": date(2025, 10, 1),
    "data": {"dir": "../data/demo"},
}
SOURCE = "/cases/sub/unit_case.yaml"


def raw(**changes) -> dict:
    """Return a deep copy of BASE; ``changes`` maps dotted keys to new values (None deletes)."""
    r = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = r
        for p in parents:
            node = node[p]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return r


def refused(r: dict, source: str = SOURCE) -> str:
    with pytest.raises(CaseFileError) as exc:
        parse_case(r, source)
    return str(exc.value)


# --------------------------------------------------------------------------- the real case files
def test_there_are_real_case_files():
    assert len(CASE_FILES) >= 2


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.name)
def test_real_case_file_loads(path: Path):
    case = load_case(path)
    assert isinstance(case, CaseParams)
    assert case.case_id == path.stem
    assert case.goal.metric in GOAL_METRICS
    assert case.period.start < case.period.end
    assert case.source_file == path
    # data.dir is relative in the files; loading makes it absolute from the file's folder
    assert case.data.dir.is_absolute()
    assert case.data.dir == (path.parent / yaml.safe_load(path.read_text("utf-8"))["data"]["dir"]).resolve()


def test_base_case_is_valid():
    case = parse_case(raw(), SOURCE)
    assert case.goal.target == 0.20
    assert case.goal.higher_is_better
    assert case.period.days == 184


# --------------------------------------------------------------------------- refusals
def test_misspelt_key_names_key_and_file_and_suggests_the_right_one():
    r = raw()
    r["goal"]["targt"] = r["goal"].pop("target")
    msg = refused(r)
    assert SOURCE in msg
    assert "goal.targt" in msg
    assert "unknown key" in msg
    assert "did you mean 'target'?" in msg


def test_misspelt_top_level_and_threshold_keys_are_suggested():
    r = raw()
    r["titel"] = r.pop("title")
    r["thresholds"] = {"conversion_windw_days": 60}
    msg = refused(r)
    assert "'titel': unknown key (did you mean 'title'?)" in msg
    assert "'thresholds.conversion_windw_days': unknown key (did you mean 'conversion_window_days'?)" in msg


def test_misspelt_key_in_a_real_file_names_that_file(tmp_path: Path):
    text = (ROOT / "parameters" / "lead_conversion_uplift.yaml").read_text("utf-8")
    bad = tmp_path / "bad_case.yaml"
    bad.write_text(text.replace("  baseline: 0.15", "  baselin: 0.15"), encoding="utf-8")
    with pytest.raises(CaseFileError) as exc:
        load_case(bad)
    msg = str(exc.value)
    assert str(bad) in msg
    assert "goal.baselin" in msg and "did you mean 'baseline'?" in msg


def test_missing_key():
    msg = refused(raw(owner=None))
    assert SOURCE in msg
    assert "key 'owner': missing key" in msg


def test_missing_nested_key():
    msg = refused(raw(**{"goal.deadline": None}))
    assert "key 'goal.deadline': missing key" in msg


def test_wrong_type_names_key_and_value():
    msg = refused(raw(**{"goal.baseline": "fifteen percent"}))
    assert "goal.baseline" in msg
    assert "'fifteen percent'" in msg
    msg = refused(raw(thresholds={"conversion_window_days": "ninety"}))
    assert "thresholds.conversion_window_days" in msg and "'ninety'" in msg


def test_target_equal_to_baseline_is_refused():
    msg = refused(raw(**{"goal.target": 0.15}))
    assert "goal" in msg and "target equals baseline" in msg


def test_period_end_before_start_is_refused():
    msg = refused(raw(period={"start": date(2025, 7, 1), "end": date(2025, 6, 1)}))
    assert "period" in msg
    assert "2025-06-01" in msg and "2025-07-01" in msg


def test_rate_baseline_written_as_percent_is_refused_with_the_fix():
    msg = refused(raw(**{"goal.baseline": 15}))
    assert "baseline 15" in msg
    assert "0.15" in msg  # tells the analyst how to write it


def test_non_rate_goal_accepts_numbers_above_one():
    case = parse_case(
        raw(goal={"metric": "lead_response_hours", "baseline": 48, "target": 24, "deadline": date(2026, 6, 30)}), SOURCE
    )
    assert case.goal.baseline == 48
    assert not case.goal.higher_is_better


def test_unknown_goal_metric_is_refused_and_lists_the_known_ones():
    msg = refused(raw(**{"goal.metric": "conversion"}))
    assert "goal.metric" in msg and "'conversion'" in msg
    assert "lead_conversion_rate" in msg and "repeat_purchase_rate" in msg


def test_intervention_outside_period_is_refused():
    msg = refused(raw(intervention_date=date(2026, 1, 1)))
    assert "intervention_date 2026-01-01 must fall within the period 2025-07-01 .. 2025-12-31" in msg
    assert "key ''" not in msg  # a check across keys names them in its message, not as an empty key


def test_intervention_before_period_is_refused():
    msg = refused(raw(intervention_date=date(2025, 6, 30)))
    assert "intervention_date 2025-06-30" in msg


def test_control_department_equal_to_department_is_refused():
    msg = refused(raw(control_department="销售一部"))
    assert "control_department must differ from department" in msg
    assert "key ''" not in msg


def test_source_file_key_cannot_be_set():
    msg = refused(raw(source_file="/elsewhere.yaml"))
    assert "source_file" in msg


def test_case_file_not_found(tmp_path: Path):
    with pytest.raises(CaseFileError, match="case file not found"):
        load_case(tmp_path / "nope.yaml")


def test_case_file_not_yaml_mapping(tmp_path: Path):
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(CaseFileError, match="expected a mapping"):
        load_case(f)


# --------------------------------------------------------------------------- dates and windows
def test_dates_as_strings_parse_the_same_as_yaml_dates():
    as_dates = parse_case(raw(), SOURCE)
    as_text = parse_case(
        raw(
            period={"start": "2025-07-01", "end": "2025-12-31"},
            intervention_date="2025-10-01",
            **{"goal.deadline": "2026-06-30"},
        ),
        SOURCE,
    )
    assert as_text.period == as_dates.period
    assert as_text.period.start == date(2025, 7, 1) and type(as_text.period.start) is date
    assert as_text.intervention_date == as_dates.intervention_date
    assert as_text.goal.deadline == as_dates.goal.deadline
    assert as_text.windows == as_dates.windows


def test_windows_for_an_intervention_inside_the_period():
    case = parse_case(raw(intervention_date=date(2025, 10, 1)), SOURCE)
    # after: 1 Oct .. 31 Dec = 92 days; before: the 92 days just before 1 Oct
    assert case.windows["after"] == (date(2025, 10, 1), date(2025, 12, 31))
    assert case.windows["before"] == (date(2025, 7, 1), date(2025, 9, 30))
    b0, b1 = case.windows["before"]
    a0, a1 = case.windows["after"]
    assert (b1 - b0).days == (a1 - a0).days


def test_windows_for_an_intervention_that_opens_the_period():
    case = parse_case(raw(intervention_date=date(2025, 7, 1)), SOURCE)
    # after is the whole period (184 days); before is the 184 days just before it
    assert case.windows["after"] == (date(2025, 7, 1), date(2025, 12, 31))
    assert case.windows["before"] == (date(2024, 12, 29), date(2025, 6, 30))


def test_windows_without_intervention_split_the_period():
    case = parse_case(raw(intervention_date=None), SOURCE)
    # 184 days: the second half starts on day 93, 1 October
    assert case.windows["after"] == (date(2025, 10, 1), date(2025, 12, 31))
    assert case.windows["before"] == (date(2025, 7, 1), date(2025, 9, 30))


# --------------------------------------------------------------------------- data folder
def test_relative_data_dir_is_resolved_against_the_case_file_folder(tmp_path: Path):
    cases = tmp_path / "work" / "parameters"
    cases.mkdir(parents=True)
    f = cases / "unit_case.yaml"
    r = raw()
    f.write_text(yaml.safe_dump(r, allow_unicode=True), encoding="utf-8")
    case = load_case(f)
    assert case.data.dir == (tmp_path / "work" / "data" / "demo").resolve()
    assert case.data_path("customers") == case.data.dir / "customers.csv"
    assert case.data_path("campaigns") == case.data.dir / "campaigns.xlsx"


def test_absolute_data_dir_is_kept(tmp_path: Path):
    case = parse_case(raw(data={"dir": str(tmp_path), "files": {"orders": "orders_2025.csv"}}), SOURCE)
    assert case.data.dir == tmp_path
    assert case.data_path("orders") == tmp_path / "orders_2025.csv"


def test_unknown_table_in_data_files_is_refused():
    msg = refused(raw(data={"dir": "x", "files": {"order": "o.csv"}}))
    assert "data.files" in msg and "order" in msg


def test_goal_metrics_are_the_catalogue_entries_marked_goal():
    from crmnb.analysis.metrics import CATALOGUE

    assert {mid: m.unit for mid, m in CATALOGUE.items() if m.goal} == GOAL_METRICS
    assert "lead_conversion_rate" in GOAL_METRICS and "nps" not in GOAL_METRICS


def test_the_goal_metrics_are_the_catalogues_and_checking_a_case_imports_no_analysis():
    import subprocess
    import sys

    from crmnb.analysis.metrics import CATALOGUE

    assert {m.id: m.unit for m in CATALOGUE.values() if m.goal} == GOAL_METRICS
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, crmnb.cli; print(sorted(m for m in ('scipy', 'sklearn', 'crmnb.analysis.metrics') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"
