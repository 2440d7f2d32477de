"""Why a pipeline forecast missed: its error over a window split into parts that add up to the total.

For a forecast made at an origin and the weeks after it: deals open at the origin that did not close
within the window (slipped: won later or still open) and those lost within it were forecast at their
weight but brought nothing; those won within it brought their whole amount against their weight; new
deals brought what they brought against the run-rate (taken back to its level without campaigns when the
campaign driver is used); the campaign driver added its lift, which brought nothing of its own; and the
seasonal factor moved the new-deal part.
Each part's error is forecast − actual, so the parts add up to the window's total error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmnb.analysis.pipeline_forecast import COMPONENTS, forecast_parts, week_end
from crmnb.present.words import t


def miss_breakdown(
    opp, sh, weekly: pd.DataFrame, origin: pd.Timestamp, horizon: int, seasonal: bool, lang: str, flow=None
) -> pd.DataFrame:
    """Return the window's error by part: component, forecast, actual_revenue, error, share of the error, remedy
    (the campaign driver's part with a ``flow`` of new deals and leads, else zero)."""
    p = forecast_parts(opp, sh, weekly, pd.Timestamp(origin), horizon, seasonal, flow)
    end = week_end(p.weeks[-1])
    y = weekly.set_index("week")["revenue"].reindex(p.weeks).fillna(0.0).to_numpy(float)
    out = p.deals.merge(opp[["opportunity_id", "status", "closed_at"]], on="opportunity_id", how="left")
    won_in = (out["status"] == "won") & (out["closed_at"] <= end)
    lost_in = (out["status"] == "lost") & (out["closed_at"] <= end)
    slipped = ~won_in & ~lost_in
    won_amount = float(out.loc[won_in, "amount"].fillna(0.0).sum())
    rows = {
        "slipped": (out.loc[slipped, "forecast"].sum(), 0.0),
        "lost_deals": (out.loc[lost_in, "forecast"].sum(), 0.0),
        "won_above_weight": (out.loc[won_in, "forecast"].sum(), won_amount),
        "new_deals": (p.new_plain.sum(), y.sum() - won_amount),
        "campaign": (p.campaign_part.sum(), 0.0),
        "seasonality": ((p.new_deals - p.new_plain - p.campaign_part).sum(), 0.0),
    }
    df = pd.DataFrame([(c, *rows[c]) for c in COMPONENTS], columns=["component", "forecast", "actual_revenue"])
    df["error"] = df["forecast"] - df["actual_revenue"]
    total = float(p.total.sum() - y.sum())
    df["share_of_error"] = df["error"] / total + 0.0 if total else np.nan  # + 0.0: a part of zero reads 0%, not -0%
    df["remedy"] = [t(f"predict.remedy.{c}", lang) for c in df["component"]]
    df.attrs.update(
        origin=pd.Timestamp(origin), total_error=total, actual=float(y.sum()), forecast=float(p.total.sum())
    )
    return df


def coverage(parts_pipeline: np.ndarray, weekly: pd.DataFrame, horizon: int, weeks: int = 13) -> dict[str, float]:
    """Return pipeline coverage: the weighted pipeline due within the horizon ÷ what keeping the last
    ``weeks`` weeks' pace of won revenue needs over it."""
    pace = float(weekly["revenue"].tail(weeks).mean()) if len(weekly) else np.nan
    need = pace * horizon
    weighted = float(np.nansum(parts_pipeline))
    return {
        "weighted_pipeline": weighted,
        "need": need,
        "coverage": weighted / need if need else float("nan"),
        "pace_weeks": weeks,
    }
