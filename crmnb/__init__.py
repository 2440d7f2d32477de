"""crmnb: the helper package of the CRM case-analysis workbook."""

from crmnb.errors import CaseFileError, CrmnbError, DataError, HandoffMissing, StepFailed
from crmnb.params import CaseParams, load_case

__version__ = "0.1.0"

__all__ = [
    "CaseFileError",
    "CaseParams",
    "CrmnbError",
    "DataError",
    "HandoffMissing",
    "StepFailed",
    "load_case",
    "open_case",
    "__version__",
]

PACKAGES = ("analysis", "demo", "intake", "present", "run")
MODULES = ("cli", "errors", "frames", "handoffs", "params", "paths")


def __getattr__(name: str):
    """Import a part of the package on first use, so ``crmnb.analysis`` works without importing all of it."""
    if name in PACKAGES or name in MODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'crmnb' has no attribute {name!r}")


def open_case(case_file: str, output_root: str = "outputs", case: dict | None = None):
    """Validate the case and return it with its output workspace; set the chart style.

    ``case`` is the settings mapping the runner passes (None: read ``case_file``).
    This is the first call of every step notebook, so a bad case stops the notebook
    in its first cell. The report language is ``case.language``: pass it on to what
    words a table, chart or sentence.
    """
    import pandas as pd

    from crmnb.handoffs import Workspace
    from crmnb.paths import resolve
    from crmnb.present.charts import setup_style

    settings = case
    case = load_case(case_file, settings)
    setup_style()
    pd.set_option("display.max_columns", 30)
    return case, Workspace(resolve(output_root), case.case_id)
