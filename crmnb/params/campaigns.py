"""Case-file settings of the campaign analyses: attribution, A/B readouts and budget moves (``campaigns:``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CampaignSettings(BaseModel):
    """How the campaign analyses weigh touches, read A/B tests and size a budget move; each has the method's default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attribution_half_life_days: float = Field(
        7.0, gt=0, le=365, description="time-decay attribution: a touch this many days older counts half (> 0)"
    )
    ab_min_sends: int = Field(
        30, ge=1, description="fewest sends a variant needs before the A/B readout compares it (>= 1)"
    )
    budget_move_share: float = Field(
        0.1,
        gt=0,
        le=0.5,
        description="share of the weaker channel's spend the budget suggestion moves; small, so returns may be assumed to hold (0-0.5)",
    )
