"""Headline figures recomputed straight from the raw demo exports, with pandas only.

The end-to-end tests compare what a case reports with these; they share no code with crmnb.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def lead_conversion(data: Path, department: str, start, end, window_days: int) -> tuple[float, int]:
    """Return the share of the department's leads created from start to end (inclusive) won within the window, and n."""
    leads = pd.read_csv(data / "leads.csv", encoding="utf-8-sig", dtype=str)
    opps = pd.read_csv(data / "opportunities.csv", encoding="utf-8-sig", dtype=str)
    leads["created_at"] = pd.to_datetime(leads["created_at"])
    opps["closed_at"] = pd.to_datetime(opps["closed_at"])
    mine = leads[
        (leads["department"] == department)
        & (leads["created_at"] >= str(start))
        & (leads["created_at"] < pd.Timestamp(end) + pd.Timedelta(days=1))
    ]
    won = opps[opps["status"] == "won"].groupby("lead_id")["closed_at"].min()
    first_win = mine["lead_id"].map(won)
    converted = first_win.notna() & (first_win <= mine["created_at"] + pd.Timedelta(days=window_days))
    return float(converted.mean()), len(mine)
