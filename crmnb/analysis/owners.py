"""Who owns each action of the plan: the case file's ``action_owners``, checked against the diagnosis rules."""

from __future__ import annotations

from crmnb.errors import CaseFileError
from crmnb.params.model import CaseParams


def action_kinds() -> list[str]:
    """Return the kinds of problem the diagnosis can find and act on (every rule but the goal gap)."""
    from crmnb.analysis.diagnosis import RULES

    return [rule.kind for rule in RULES if rule.kind != "goal_gap"]


def action_owners(case: CaseParams) -> dict[str, dict]:
    """Return the case file's owner and deadline per kind of problem, refusing a kind no rule finds.

    A misspelt kind would otherwise leave its actions with the case owner, in silence.
    """
    kinds = action_kinds()
    unknown = sorted(set(case.action_owners) - set(kinds))
    if unknown:
        raise CaseFileError(
            f"{case.source_file}: action_owners: {', '.join(map(repr, unknown))} is not a kind of problem "
            f"the analysis finds; the kinds are: {', '.join(kinds)}"
        )
    return {kind: given.model_dump() for kind, given in case.action_owners.items()}
