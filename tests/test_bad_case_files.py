"""Hostile case files: alias bombs refused fast, large files read in linear time, ${VAR} never expanded."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pytest
import yaml

from crmnb.errors import CaseFileError
from crmnb.params import case_settings, load_case
from crmnb.params.files import read_case_mapping

ROOT = Path(__file__).resolve().parents[1]
CASE = "lead_conversion_uplift"


@contextlib.contextmanager
def counted_calls():
    """Count the Python function calls made inside the block, into the one-item list it gives.

    A count of calls measures work the same on a busy machine and an idle one, where seconds do not.
    """
    calls = [0]

    def count(frame, event, arg):
        calls[0] += event == "call"

    sys.setprofile(count)
    try:
        yield calls
    finally:
        sys.setprofile(None)


def _case_text(tmp_path: Path, **changes) -> str:
    raw = yaml.safe_load((ROOT / "parameters" / f"{CASE}.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"dir": str(tmp_path / "data")}
    raw.update(changes)
    return yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


def _laughs(levels: int = 9, width: int = 9) -> str:
    """Return YAML whose nested mapping aliases expand to width**levels values."""
    lines = ["l0: &l0 {a: lol, b: lol}"]
    for i in range(1, levels + 1):
        refs = ", ".join(f"k{j}: *l{i - 1}" for j in range(width))
        lines.append(f"l{i}: &l{i} {{{refs}}}")
    return "\n".join(lines) + f"\nnotes: *l{levels}\n"


def test_a_billion_laughs_of_mappings_is_refused_fast(tmp_path):
    file = tmp_path / "laughs.yaml"
    file.write_text(_case_text(tmp_path) + _laughs(), encoding="utf-8")
    for read in (load_case, case_settings, read_case_mapping):
        with counted_calls() as calls, pytest.raises(CaseFileError) as err:
            read(file)
        assert calls[0] < 100_000, f"{read.__name__} expanded the aliases ({calls[0]:,} calls)"  # 9**9 leaves
        assert str(file) in str(err.value) and "aliases" in str(err.value)


def test_many_aliases_are_refused_and_a_few_accepted(tmp_path):
    many = tmp_path / "many.yaml"
    refs = "\n".join("  - *x" for _ in range(2000))
    many.write_text(_case_text(tmp_path) + f"x: &x 1\ny:\n{refs}\n", encoding="utf-8")
    with pytest.raises(CaseFileError, match=r"more than 500 YAML aliases"):
        read_case_mapping(many)
    few = tmp_path / "few.yaml"
    base = _case_text(tmp_path).replace("cell_timeout_seconds:", "cell_timeout_seconds: &limit")
    if "&limit" not in base:
        base += "cell_timeout_seconds: &limit 600\n"
    few.write_text(base, encoding="utf-8")
    assert load_case(few).cell_timeout_seconds > 0


def test_a_recursive_alias_is_refused(tmp_path):
    file = tmp_path / "loop.yaml"
    file.write_text(_case_text(tmp_path) + "loop: &a [1, *a]\n", encoding="utf-8")
    with pytest.raises(CaseFileError, match="refers to a value that contains it") as err:
        load_case(file)
    assert str(file) in str(err.value)


def _calls_to_read(tmp_path: Path, n: int) -> int:
    """Return how many Python function calls reading and refusing a case file with ``n`` extra keys makes."""
    leaves = "\n".join(f"  key_{i}: {{a: 1, b: 2, c: 3}}" for i in range(n))
    file = tmp_path / f"large-{n}.yaml"
    file.write_text(_case_text(tmp_path) + f"extra:\n{leaves}\n", encoding="utf-8")
    with counted_calls() as calls:
        raw, _ = read_case_mapping(file)
        with pytest.raises(CaseFileError) as err:
            load_case(file)
    assert len(raw["extra"]) == n and raw.origins[f"extra.key_{n - 1}.c"] == file
    assert "key 'extra': unknown key" in str(err.value)
    return calls[0]


def test_a_large_case_file_is_read_in_linear_time(tmp_path):
    """Twice the keys cost about twice the work: the settings once took minutes at 60,000 leaves (quadratic).

    Counted in function calls rather than seconds, so a busy machine cannot fail it.
    """
    small, large = _calls_to_read(tmp_path, 2_000), _calls_to_read(tmp_path, 8_000)
    assert large < 5 * small, f"4x the keys took {large / small:.1f}x the calls: not linear"


def test_a_default_replaced_by_a_scalar_names_the_case_file_below_it(tmp_path):
    (tmp_path / "_defaults.yaml").write_text("thresholds:\n  tiers: {high_spend: 5}\n", encoding="utf-8")
    file = tmp_path / "case.yaml"
    file.write_text(_case_text(tmp_path, thresholds=3), encoding="utf-8")
    raw, _ = read_case_mapping(file)
    assert raw.origins["thresholds"] == file and raw.origins["thresholds.tiers.high_spend"] == file


def test_recorded_settings_keep_environment_references_unexpanded(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_DB_PASSWORD", "s3cret-Pa55")
    file = tmp_path / "env.yaml"
    url = "postgresql://analyst:${CRM_DB_PASSWORD}@db.example.com/crm?password=${CRM_DB_PASSWORD}"
    file.write_text(_case_text(tmp_path, data={"dir": str(tmp_path), "sql_url": url}), encoding="utf-8")
    settings = case_settings(file)
    assert settings["data"]["sql_url"] == url
    assert "s3cret-Pa55" not in repr(settings)
