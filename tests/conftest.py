"""Shared test set-up."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# the fits' numbers do not depend on which OpenBLAS kernel this machine's CPU picks (tests/golden.py): set
# before anything loads numpy, for this process's tests as for the kernels they start
from golden import pin_blas_kernel

pin_blas_kernel()

from crmnb.run.steps import prefer_this_python  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# nbval and papermill start the kernel "python3": make it this environment's Python.
prefer_this_python()

# reports keep their font subsets in a cache of this test run, not in the user's
if "CRMNB_CACHE_DIR" not in os.environ:
    os.environ["CRMNB_CACHE_DIR"] = tempfile.mkdtemp(prefix="crmnb-test-cache-")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def demo_outputs(tmp_path_factory) -> dict[str, Path]:
    """Run the two demo cases once, on small demo data; return their output folders by case id."""
    from golden import run_demo_cases

    return run_demo_cases(tmp_path_factory.mktemp("demo_reports"))


@pytest.fixture(scope="session")
def demo_reports(demo_outputs) -> dict[str, Path]:
    """The two demo cases' report.html by language (en, zh)."""
    from crmnb.params import load_case

    reports = {}
    for folder in demo_outputs.values():
        nb = folder / "notebooks"
        case_file = folder.parents[1] / "parameters" / f"{folder.name}.yaml"
        reports[load_case(case_file).language] = folder / "report.html"
        assert nb.is_dir()
    assert set(reports) == {"en", "zh"}, f"the demo cases should report in English and Chinese, not {set(reports)}"
    return reports
