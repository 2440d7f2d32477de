"""crmnb: the helper package of the CRM case-analysis workbook."""

from .errors import CaseFileError, CrmnbError, DataError, HandoffMissing, StepFailed
from .params import CaseParams, load_case

__version__ = "0.1.0"

__all__ = ["CaseFileError", "CaseParams", "CrmnbError", "DataError", "HandoffMissing", "StepFailed",
           "load_case", "open_case", "__version__"]

_SUBMODULES = {"batch", "cases", "churn", "cleaning", "clv", "compare", "demo", "diagnosis", "display", "drivers", "forecast",
               "frames",
               "mail", "mappings", "marketing", "funnel", "i18n", "io", "metrics", "scaffold", "sources", "strip",
               "validate",
               "paths", "pii", "plots", "report", "runner", "schema", "scope", "segments", "validation"}


def __getattr__(name: str):
    """Import submodules on first use, so ``crmnb.metrics`` works without importing all of them up front."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'crmnb' has no attribute {name!r}")


def open_case(case_file: str, output_root: str = "outputs", case: dict | None = None):
    """Validate the case and return it with its output workspace; set the chart style.

    ``case`` is the settings mapping the runner passes (None: read ``case_file``).
    This is the first call of every step notebook, so a bad case stops the notebook
    in its first cell.
    """
    import pandas as pd

    from .io import Workspace
    from .paths import resolve
    from .plots import setup_style

    settings = case
    case = load_case(case_file, settings)
    from .i18n import set_language

    set_language(case.language)
    setup_style()
    pd.set_option("display.max_columns", 30)
    return case, Workspace(resolve(output_root), case.case_id)
