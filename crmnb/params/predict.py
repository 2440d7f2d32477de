"""The case file's ``predict:`` settings: lead and deal scoring, the pipeline to work, routing, the pipeline forecast.

>>> PredictSettings().high_probability
0.4
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PredictSettings(BaseModel):
    """Scoring cut-off and window, the high-probability threshold, staleness rules, routing and the forecast's backtest."""

    # the same strictness as every other block of a case file (crmnb.params.model._Model)
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)

    window_days: int = Field(
        90,
        gt=0,
        le=365,
        description="a scored lead or deal counts as won if won within this many days after the scoring date; "
        "the model trains two windows before the period end and is judged one window before it (1-365)",
    )
    high_probability: float = Field(
        0.4, gt=0, lt=1, description="a record at or above this probability of winning is high-probability (0-1)"
    )
    stale_uncontacted_hours: float = Field(
        24, gt=0, description="a lead not contacted this many hours after it arrived is going stale (> 0)"
    )
    stale_dwell_factor: float = Field(
        1.0,
        gt=0,
        description="a deal longer in its stage than this times the stage's dwell benchmark is going stale (> 0)",
    )
    work_list_rows: int = Field(50, gt=0, le=1000, description="rows of the pipeline to work shown (1-1000)")
    high_value_share: float = Field(
        0.25, gt=0, le=1, description="routing advises on the open deals in the top this share by amount (0-1]"
    )
    prior_strength: float | None = Field(
        None,
        gt=0,
        description="deals' worth of weight the rep's and the segment's rates carry in a shrunk rep x segment "
        "win rate (> 0); left out, it is estimated from the data (empirical Bayes)",
    )
    backtest_origins: int = Field(
        20, ge=4, le=104, description="weekly origins of the pipeline forecast's rolling backtest (4-104)"
    )
