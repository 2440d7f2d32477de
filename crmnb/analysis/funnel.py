"""The sales funnel: how many enter each stage, how many go on, how long they stay, why they drop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crmnb.frames import isin
from crmnb.intake.schema import FUNNEL_STAGES
from crmnb.present.words import t

OPPORTUNITY_COLUMNS = ("opportunity_id", "lead_id", "status", "created_at", "loss_reason")
"""The columns of the deals the funnel reads."""


def conversion_table(stages: Sequence[str], entered: Sequence[int]) -> pd.DataFrame:
    """Return entered, converted to the next stage and conversion rate for each stage.

    >>> conversion_table(["a", "b", "c"], [1000, 800, 500])["conversion_rate"].tolist()[:2]
    [0.8, 0.625]
    """
    if len(stages) != len(entered):
        raise ValueError(f"{len(stages)} stages but {len(entered)} counts")
    e = np.asarray(entered, dtype=float)
    if (np.diff(e) > 0).any():
        raise ValueError(f"a funnel cannot grow from one stage to the next: {list(entered)}")
    nxt = np.append(e[1:], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(e > 0, nxt / e, np.nan)
    out = pd.DataFrame(
        {
            "stage": list(stages),
            "entered": e.astype(int),
            "converted": pd.array(np.append(e[1:], np.nan), dtype="Int64"),
            "conversion_rate": rate,
        }
    )
    out.loc[out.index[-1], "conversion_rate"] = np.nan
    out["overall_rate"] = e / e[0] if e[0] else np.nan
    return out


def stage_reach(
    leads: pd.DataFrame, opportunities: pd.DataFrame, stage_history: pd.DataFrame, stages: Sequence[str] = FUNNEL_STAGES
) -> pd.DataFrame:
    """Return, per lead, the furthest funnel stage it reached (index into ``stages``).

    A lead reaches ``first_contact`` when it was contacted, and an opportunity stage
    when one of its opportunities entered that stage or a later one.
    """
    order = {s: i for i, s in enumerate(FUNNEL_STAGES)}
    reach = pd.Series(0, index=leads["lead_id"].to_numpy())
    reach[leads["first_contact_at"].notna().to_numpy()] = order["first_contact"]
    sh = stage_history[stage_history["stage"].isin(order)]
    sh = sh.merge(opportunities[["opportunity_id", "lead_id"]], on="opportunity_id", how="inner")
    sh = sh[isin(sh["lead_id"], reach.index)]
    if len(sh):
        best = sh.assign(k=sh["stage"].map(order)).groupby("lead_id")["k"].max()
        reach.loc[best.index] = np.maximum(reach.loc[best.index].to_numpy(), best.to_numpy())
    won_leads = opportunities.loc[opportunities["status"] == "won", "lead_id"]
    reach[reach.index.isin(won_leads)] = order["won"]
    return reach.rename("reach").rename_axis("lead_id").reset_index()


def dwell_days(leads: pd.DataFrame, opportunities: pd.DataFrame, stage_history: pd.DataFrame) -> pd.DataFrame:
    """Return one row per stage visit with its dwell time in days: stage, lead_id, days."""
    parts = []
    contacted = leads[leads["first_contact_at"].notna()]
    parts.append(
        pd.DataFrame(
            {
                "stage": "lead",
                "lead_id": contacted["lead_id"].to_numpy(),
                "days": (
                    (contacted["first_contact_at"] - contacted["created_at"]).dt.total_seconds() / 86400
                ).to_numpy(),
            }
        )
    )
    first_opp = opportunities.dropna(subset=["lead_id"]).groupby("lead_id")["created_at"].min()
    fc = contacted.set_index("lead_id")["first_contact_at"]
    both = fc.index.intersection(first_opp.index)
    parts.append(
        pd.DataFrame(
            {
                "stage": "first_contact",
                "lead_id": both,
                "days": ((first_opp[both] - fc[both]).dt.total_seconds() / 86400).to_numpy(),
            }
        )
    )
    # inner: only the stage visits of the given opportunities (the cohort's), not every deal's
    sh = stage_history[stage_history["exited_at"].notna()].merge(
        opportunities[["opportunity_id", "lead_id"]], on="opportunity_id", how="inner"
    )
    parts.append(
        pd.DataFrame(
            {
                "stage": sh["stage"].to_numpy(),
                "lead_id": sh["lead_id"].to_numpy(),
                "days": ((sh["exited_at"] - sh["entered_at"]).dt.total_seconds() / 86400).to_numpy(),
            }
        )
    )
    out = pd.concat(parts, ignore_index=True)
    return out[out["days"] >= 0]


def loss_stage(opportunities: pd.DataFrame, stage_history: pd.DataFrame) -> pd.DataFrame:
    """Return lost opportunities with the stage they were lost from and their loss reason."""
    lost = opportunities[opportunities["status"] == "lost"]
    sh = stage_history[
        isin(stage_history["opportunity_id"], lost["opportunity_id"]) & stage_history["stage"].isin(FUNNEL_STAGES)
    ]
    last = sh.sort_values("entered_at").groupby("opportunity_id")["stage"].last()
    out = lost[["opportunity_id", "lead_id", "loss_reason"]].copy()
    out["lost_at_stage"] = out["opportunity_id"].map(last).fillna("needs_confirmed")
    return out


def funnel(
    leads: pd.DataFrame,
    opportunities: pd.DataFrame,
    stage_history: pd.DataFrame,
    stages: Sequence[str] = FUNNEL_STAGES,
    benchmarks: dict[str, float] | None = None,
    top_reasons: int = 2,
) -> pd.DataFrame:
    """Return the funnel of a cohort of leads: per stage entered, converted, rate, dwell, loss reasons, alert.

    The cohort is ``leads``; pass the leads created in the period (and department).
    ``benchmarks`` maps a stage to its dwell benchmark in days: the alert fires when
    the stage's average dwell exceeds it.
    """
    idx = {s: FUNNEL_STAGES.index(s) for s in stages}
    # the cohort's deals and their stage visits, picked once and only the columns used: every part below
    # joins only those
    opportunities = opportunities[[c for c in OPPORTUNITY_COLUMNS if c in opportunities.columns]]
    opportunities = opportunities[isin(opportunities["lead_id"], leads["lead_id"])]
    stage_history = stage_history[isin(stage_history["opportunity_id"], opportunities["opportunity_id"])]
    reach = stage_reach(leads, opportunities, stage_history)
    entered = [int((reach["reach"] >= idx[s]).sum()) for s in stages]
    table = conversion_table(stages, entered)
    d = dwell_days(leads, opportunities, stage_history)
    g = d.groupby("stage")["days"]
    table["avg_dwell_days"] = table["stage"].map(g.mean())
    table["median_dwell_days"] = table["stage"].map(g.median())
    losses = loss_stage(opportunities, stage_history)
    tops = {}
    for st, grp in losses.dropna(subset=["loss_reason"]).groupby("lost_at_stage"):
        vc = grp["loss_reason"].value_counts()
        tops[st] = ", ".join(f"{r} ({n})" for r, n in vc.head(top_reasons).items())
    # leads lost before any contact: no first contact and no deal that got further
    never = int(((reach["reach"] == 0).to_numpy() & leads["first_contact_at"].isna().to_numpy()).sum())
    if never:
        tops["lead"] = f"never contacted ({never})"
    table["top_loss_reasons"] = [tops.get(s, "") for s in table["stage"]]
    bench = benchmarks or {}
    table["dwell_benchmark_days"] = table["stage"].map(bench)
    table["dwell_alert"] = table["avg_dwell_days"] > table["dwell_benchmark_days"]
    table.loc[table["stage"] == stages[-1], ["avg_dwell_days", "median_dwell_days"]] = np.nan
    return table


def gaps(leads: pd.DataFrame, opportunities: pd.DataFrame, stage_history: pd.DataFrame, lang: str) -> list[str]:
    """Return what the funnel of ``leads`` could not trace, in plain words (empty when nothing is missing):
    no leads, none of ``opportunities`` (the department's deals) linked to a lead, no stage history for them.

    >>> none = pd.DataFrame({"lead_id": [], "opportunity_id": []})
    >>> gaps(none, none, none, "en")[0]
    'Funnel not traced: it needs leads of the department created in the period; this data has none.'
    """
    if not len(leads):
        return [t("funnel.no_leads", lang)]
    out = []
    linked = (
        opportunities["lead_id"].notna() if "lead_id" in opportunities else pd.Series(False, index=opportunities.index)
    )
    if len(opportunities) and not linked.any():
        n = len(opportunities)
        out.append(t("funnel.unlinked.one" if n == 1 else "funnel.unlinked.many", lang, n=n))
    if len(opportunities) and not isin(stage_history["opportunity_id"], opportunities["opportunity_id"]).any():
        out.append(t("funnel.no_history", lang))
    return out
