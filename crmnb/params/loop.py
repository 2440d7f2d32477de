"""The loop's settings: the case's review interval, and the action ledger the analyst keeps beside the case file.

``review_every: 3 months`` in a case file says when the case is due again (the index page lists the
cases due, ``crmnb batch --due`` runs only those). The ledger, ``<case_id>.actions.yaml`` beside the
case file, holds the improvement plan's actions: what each answers, who does it by when, its own KPI,
the effect expected, when it started and its status; every run scores the started ones.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

STATUSES = ("planned", "in progress", "done", "dropped")
"""An action's status, as the analyst sets it in the ledger."""

_EVERY = re.compile(r"^\s*(\d+)\s*(day|week|month)s?\s*$")


def _review_every(text: str) -> str:
    """Return a review interval as written ('3 months', '2 weeks', '30 days'), or say what is expected."""
    m = _EVERY.match(str(text))
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"expected a number and days, weeks or months, e.g. '3 months' (found {text!r})")
    return f"{int(m.group(1))} {m.group(2)}{'s' if int(m.group(1)) > 1 else ''}"


ReviewEvery = Annotated[str, AfterValidator(_review_every)]
"""A case's review interval: '3 months', '2 weeks', '30 days'."""


def next_review(last: date, every: str) -> date:
    """Return the day a case is due again, ``every`` after its last run on ``last``.

    >>> next_review(date(2026, 1, 31), "1 month"), next_review(date(2026, 1, 1), "2 weeks")
    (datetime.date(2026, 2, 28), datetime.date(2026, 1, 15))
    """
    n, unit = _EVERY.match(every).groups()
    n = int(n)
    if unit == "day":
        return last + timedelta(days=n)
    if unit == "week":
        return last + timedelta(weeks=n)
    month = last.month - 1 + n
    year, month = last.year + month // 12, month % 12 + 1
    for day in range(last.day, 27, -1):  # the 31st of a shorter month is its last day
        try:
            return date(year, month, day)
        except ValueError:
            continue
    return date(year, month, min(last.day, 28))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedgerAction(_Model):
    """One action of the improvement plan as the analyst keeps it."""

    id: str = Field(description="the action's id: A1, A2, …; never reused")
    problem: str = Field(description="the problem it answers")
    kind: str = Field("", description="the problem's kind (slow_response, uncontacted…), as step 6 found it")
    measure: str = Field(description="what is done")
    owner: str = Field(description="who does it")
    due: date = Field(description="by when, YYYY-MM-DD")
    kpi: str = Field(description="its own KPI: a metric id of the catalogue, or uncontacted_share")
    kpi_name: str = Field("", description="what the plan said to watch, in its words (the score reads kpi)")
    scope: str = Field(description="the department whose units the KPI measures")
    expected_effect: str = Field("", description="the effect expected, stated before it starts")
    start: date | None = Field(None, description="when it started, YYYY-MM-DD; empty while planned")
    status: Literal[STATUSES] = Field("planned", description="planned, in progress, done or dropped")
    note: str = Field("", description="completion note")


class Ledger(_Model):
    """The action ledger of a case: written on its first run, edited by the analyst, never overwritten."""

    case_id: str
    actions: tuple[LedgerAction, ...] = ()
