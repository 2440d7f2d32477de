"""A case's settings: the typed, validated model of a case file (``model``) and the reading of case files with
their shared and per-department defaults (``files``)."""

from crmnb.params.files import (
    DEFAULTS_FILE,
    DEPARTMENTS_DIR,
    CaseMapping,
    case_settings,
    deep_merge,
    department_defaults_file,
    load_case,
    merged_defaults,
    parse_case,
    read_case_mapping,
)
from crmnb.params.model import (
    GOAL_METRICS,
    CaseParams,
    ChurnThresholds,
    DataSource,
    Goal,
    Period,
    PlanItem,
    Thresholds,
    TierThresholds,
)

__all__ = [
    "DEFAULTS_FILE",
    "DEPARTMENTS_DIR",
    "GOAL_METRICS",
    "CaseMapping",
    "CaseParams",
    "ChurnThresholds",
    "DataSource",
    "Goal",
    "Period",
    "PlanItem",
    "Thresholds",
    "TierThresholds",
    "case_settings",
    "deep_merge",
    "department_defaults_file",
    "load_case",
    "merged_defaults",
    "parse_case",
    "read_case_mapping",
]
