"""Shared test set-up."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from crmnb.runner import prefer_this_python

ROOT = Path(__file__).resolve().parents[1]

# nbval and papermill start the kernel "python3": make it this environment's Python.
prefer_this_python()

# reports keep their font subsets in a cache of this test run, not in the user's
if "CRMNB_CACHE_DIR" not in os.environ:
    os.environ["CRMNB_CACHE_DIR"] = tempfile.mkdtemp(prefix="crmnb-test-cache-")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def demo_reports(tmp_path_factory) -> dict[str, Path]:
    """Run the two demo cases once, on small demo data; return their report.html by language (en, zh).

    The case files, shared defaults and department files are copied from parameters/,
    with only the data folder changed.
    """
    import shutil

    import yaml

    from crmnb.demo import generate
    from crmnb.runner import run_case

    tmp = tmp_path_factory.mktemp("demo_reports")
    generate(tmp / "data", scale=0.3, seed=7)
    shutil.copytree(ROOT / "parameters", tmp / "parameters")
    reports = {}
    for name in ("lead_conversion_uplift", "repeat_purchase_optimisation"):
        path = tmp / "parameters" / f"{name}.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["data"] = {"dir": str(tmp / "data")}
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
        reports[raw.get("language", "en")] = run_case(path, tmp / "outputs", progress=None, index=False).report
    assert set(reports) == {"en", "zh"}, f"the demo cases should report in English and Chinese, not {set(reports)}"
    return reports
