"""The service desk's settings of a case file (``service:``): response and resolution targets, the theme lexicon."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ServiceSettings(BaseModel):
    """Targets by ticket channel and priority, and the complaint-theme lexicon's additions.

    >>> ServiceSettings().first_response_hours["chat"], ServiceSettings().resolution_hours["urgent"]
    (0.5, 8.0)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)

    first_response_hours: dict[str, float] = Field(
        default_factory=lambda: {"phone": 1.0, "chat": 0.5, "e-mail": 8.0, "social": 4.0, "web": 8.0},
        description="first reply within this many hours, by ticket channel (phone, e-mail, chat, social, web); "
        "a channel not listed gets first_response_default_hours",
    )
    first_response_default_hours: float = Field(4.0, gt=0, description="first-reply target of any other channel (> 0)")
    resolution_hours: dict[str, float] = Field(
        default_factory=lambda: {"urgent": 8.0, "high": 24.0, "normal": 48.0, "low": 72.0},
        description="resolved within this many hours, by ticket priority (urgent, high, normal, low); "
        "a priority not listed gets resolution_default_hours",
    )
    resolution_default_hours: float = Field(48.0, gt=0, description="resolution target of any other priority (> 0)")
    themes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="complaint themes to add to the lexicon: theme name -> words that mark it (Chinese or English); "
        "a theme already in the lexicon gains the words",
    )
    top_themes: int = Field(5, gt=0, le=20, description="how many complaint themes the report shows (1-20)")

    @field_validator("first_response_hours", "resolution_hours")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, h in v.items() if not h > 0]
        if bad:
            raise ValueError(f"targets must be more than 0 hours; not so for {', '.join(bad)}")
        from crmnb.analysis.service import ticket_channel

        return {ticket_channel(k): float(h) for k, h in v.items()}

    @field_validator("themes")
    @classmethod
    def _words(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        empty = [k for k, words in v.items() if not [w for w in words if str(w).strip()]]
        if empty:
            raise ValueError(f"theme(s) {', '.join(empty)} list no words")
        return {str(k).strip(): [str(w).strip() for w in words if str(w).strip()] for k, words in v.items()}
