"""The action ledger file beside the case file: written on the case's first run, then only read.

``parameters/<case_id>.actions.yaml`` holds the improvement plan's actions (see
:class:`crmnb.params.loop.LedgerAction`). The first run writes it from step 6's plan, every action
``planned``; the analyst then sets owners, dates, start dates and statuses. Later runs never write
it: the problems they find that no action answers are proposed (in the tracking table and the
report), for the analyst to add.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd
import yaml
from pydantic import ValidationError

from crmnb.errors import CaseFileError
from crmnb.params.files import _describe, _suggest
from crmnb.params.loop import Ledger, LedgerAction

SUFFIX = ".actions.yaml"

KIND_KPI = {
    "slow_response": "lead_response_hours",
    "uncontacted": "uncontacted_share",
    "followup_late": "followup_ontime_rate",
}
"""The KPI an action of each problem kind is scored by; an action of another kind, by the goal metric."""

HEADER = (
    "# The action ledger of case {case_id}: written by its first run, never overwritten. Edit it: set each\n"
    "# action's start (YYYY-MM-DD) when it starts, its status (planned, in progress, done, dropped), its owner,\n"
    "# due date and a completion note. kpi is a metric id (crmnb.analysis.metrics) or uncontacted_share; scope\n"
    "# the department it measures. Each run scores every started action against its start.\n"
)


def ledger_path(case) -> Path:
    """Return the case's ledger file: ``<case_id>.actions.yaml`` beside its case file."""
    base = Path(case.source_file) if case.source_file else Path("parameters") / f"{case.case_id}.yaml"
    return base.with_name(f"{case.case_id}{SUFFIX}")


def parse_ledger(raw: object, source: Path) -> Ledger:
    """Validate a ledger mapping; a bad key or value raises :class:`CaseFileError` naming the file and the key."""
    if not isinstance(raw, dict):
        raise CaseFileError(f"{source}: expected a mapping with case_id and actions, found {type(raw).__name__}")
    try:
        return Ledger.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors()[:30]:
            loc, msg = _describe(err)
            hint = _hint(loc) if msg == "unknown key" else ""
            lines.append(f"  - key '{loc}': {msg}{hint}")
        raise CaseFileError(f"{source}: invalid action ledger:\n" + "\n".join(lines)) from None


def _hint(loc: str) -> str:
    """Return ' (did you mean X?)' for a misspelt key of the ledger or of one of its actions."""
    parts = loc.split(".")
    if len(parts) == 3 and parts[0] == "actions" and parts[1].isdigit():
        close = difflib.get_close_matches(parts[2], list(LedgerAction.model_fields), n=1, cutoff=0.6)
        return f" (did you mean '{close[0]}'?)" if close else ""
    return _suggest(loc, Ledger)


def read_ledger(path: Path) -> Ledger | None:
    """Return the ledger at ``path``, validated, or None when there is none yet."""
    if not path.is_file():
        return None
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CaseFileError(f"{path}: not valid YAML: {exc}") from None
    return parse_ledger(raw, path)


def from_plan(plan: pd.DataFrame, case) -> Ledger:
    """Return a new ledger from step 6's plan: one planned action per row, its KPI from its problem's kind."""
    actions = []
    for i, row in enumerate(plan.to_dict("records"), start=1):
        kind = str(row.get("kind") or "")
        actions.append(
            {
                "id": f"A{i}",
                "problem": str(row.get("problem") or ""),
                "kind": kind,
                "measure": str(row.get("measure") or ""),
                "owner": str(row.get("owner") or case.owner),
                "due": str(row.get("deadline") or case.goal.deadline),
                "kpi": KIND_KPI.get(kind, case.goal.metric),
                "kpi_name": str(row.get("kpi") or ""),
                "scope": case.department,
                "expected_effect": str(row.get("expected_effect") or ""),
            }
        )
    return parse_ledger({"case_id": case.case_id, "actions": actions}, Path("<plan>"))


def write_ledger(path: Path, ledger: Ledger) -> Path:
    """Write the ledger as YAML with its header (only when there is none: the analyst's file is never overwritten)."""
    if path.exists():
        raise FileExistsError(f"{path}: the action ledger exists and is never overwritten")
    data = ledger.model_dump(mode="json")
    text = HEADER.format(case_id=ledger.case_id) + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as f:  # "x": a ledger written meanwhile is kept, not replaced
        f.write(text)
    return path


def open_ledger(plan: pd.DataFrame, case) -> tuple[Ledger, Path, bool]:
    """Return the case's ledger, its file and whether this run wrote it (its first run: from the plan)."""
    path = ledger_path(case)
    ledger = read_ledger(path)
    if ledger is not None:
        return ledger, path, False
    ledger = from_plan(plan, case)
    try:
        write_ledger(path, ledger)
    except FileExistsError:
        return read_ledger(path), path, False
    return ledger, path, True


def proposed(plan: pd.DataFrame, ledger: Ledger) -> pd.DataFrame:
    """Return the plan's rows whose problem no action of the ledger answers: proposed as new actions."""
    known = {a.problem for a in ledger.actions}
    return plan[~plan["problem"].astype(str).isin(known)] if len(plan) else plan
