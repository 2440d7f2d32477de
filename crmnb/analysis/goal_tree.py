"""The goal metric broken down into its drivers, and how much of the gap to target each could close.

The decomposition is one stated rule, used for every driver and every subgroup of the driver scan
(:mod:`crmnb.analysis.scan`): of the N units the goal metric averages (leads, customers, tickets…),
the n_g of a segment g score v_g and the others v_rest. Had the segment scored like the others, the
goal metric would move by ``gain = n_g / N × (v_rest − v_g)`` (sign turned so that a gain is
always towards the target). Its share of the gap is ``gain / |target − now|``, missing when the
target is already met. This is an association: it says what the gap would be if the segment did as
well as the rest, not that the driver causes it.

>>> round(gain_if_like_rest(n=40, value=0.10, rest=0.30, total=100, higher_is_better=True), 3)
0.08
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from crmnb.analysis.churn_engine import tasks_typed
from crmnb.analysis.goal_rows import first_rows, traced_rows
from crmnb.analysis.metric_engine import unread_file
from crmnb.analysis.metric_units import in_period
from crmnb.analysis.metrics import units
from crmnb.present.words import category, fmt_value, stage_labels, t

UNIT_ROWS: dict[str, tuple[str, str]] = {
    "lead_response_hours": ("leads", "lead_id"),
    "lead_conversion_rate": ("leads", "lead_id"),
    "opportunity_win_rate": ("opportunities", "opportunity_id"),
    "sales_cycle_days": ("opportunities", "opportunity_id"),
    "avg_order_value": ("orders", "order_id"),
    "followup_ontime_rate": ("activities", "activity_id"),
    "csat": ("tickets", "ticket_id"),
    "complaint_resolution_hours": ("tickets", "ticket_id"),
}
"""Which table's rows a metric's units are, and their id; a metric not named here has one unit per customer."""

CUSTOMER_TRAITS = ("owner_rep", "channel", "industry", "city")
"""What a unit takes from its customer: the rep (of a unit without one), channel, industry and city."""

DIMENSIONS: tuple[str, ...] = ("industry", "channel", "tier", "rep", "region")
"""The dimensions a unit is traced to: the customer's industry, the channel, the value tier, the rep, the city."""

STAGE_STEP = 0.05
"""The rise in a stage's conversion the weak-stage measure aims at (its expected effect says 5 points)."""


class _Swapped(Mapping):
    """The tables with one of them replaced, read lazily like the workspace's tables."""

    def __init__(self, tables: Mapping, name: str, frame: pd.DataFrame):
        self._tables, self._name, self._frame = tables, name, frame

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self._frame if name == self._name else self._tables[name]

    def unread_file(self, name: str) -> Path | None:
        """Return the hand-off file of a table the step has not read (never the one swapped in), else None.

        So the metric engine reads only the columns it needs of the other tables (the latest date of
        each, the units' columns) instead of every table whole.
        """
        unread = getattr(self._tables, "unread_file", None)
        return None if name == self._name or unread is None else unread(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)


def traced_units(
    metric: str, tables: Mapping, start, end, department: str | None, tiers: pd.DataFrame | None = None, **opts
) -> pd.DataFrame:
    """Return the goal metric's units with what each belongs to: row_id, customer_id, value, rep, channel,
    industry, region and tier (a dimension the data does not carry is left out)."""
    table, key = UNIT_ROWS.get(metric, ("customers", "customer_id"))
    if table == "customers":
        u = units(metric, tables, start, end, department, **opts).assign(row_id=lambda d: d["customer_id"])
    else:
        # DuckDB names each unit's row while the tables are unread; else the frames do
        u = traced_rows(metric, tables, table, key, start, end, department, **opts)
        if u is None:
            u = _traced_frames(metric, tables, table, key, start, end, department, **opts)
    cust = first_rows(tables, "customers", "customer_id", u["customer_id"], CUSTOMER_TRAITS)
    out = u[["row_id", "customer_id", "when", "value"]].copy()
    # a unit without a rep of its own (a ticket, an order) belongs to its customer's rep
    out["rep"] = u["owner_rep"].where(u["owner_rep"].notna(), out["customer_id"].map(cust.get("owner_rep")))
    out["channel"] = _channel(out, table, tables, cust)
    out["industry"] = out["customer_id"].map(cust.get("industry"))
    out["region"] = out["customer_id"].map(cust.get("city"))
    if tiers is not None and len(tiers):
        out["tier"] = out["customer_id"].map(tiers.drop_duplicates("customer_id").set_index("customer_id")["tier"])
    if table == "leads":  # a lead names its customer only once it is won: the customer's traits would be the outcome
        out = out.drop(columns=["industry", "region", "tier"], errors="ignore")
    if table in ("customers", "orders", "opportunities"):
        # tiers are cut, at the period's end, by spend and repeat share: for buyers, orders and deals won
        # the tier would be the outcome itself
        out = out.drop(columns=["tier"], errors="ignore")
    keep = [c for c in out.columns if c not in DIMENSIONS or out[c].notna().any()]
    return out[keep].reset_index(drop=True)


def _traced_frames(
    metric: str, tables: Mapping, table: str, key: str, start, end, department: str | None, **opts
) -> pd.DataFrame:
    """Return the goal metric's units with ``row_id`` from the frames: the unit functions keep each row's
    customer_id, so given the row's own id there, each unit names its row."""
    rows = tables[table]
    marked = rows.assign(customer_id=rows[key])
    u = units(metric, _Swapped(tables, table, marked), start, end, department, **opts)
    u["row_id"] = u["customer_id"]
    real = rows.set_index(key)["customer_id"] if "customer_id" in rows else pd.Series(dtype=object)
    u["customer_id"] = u["row_id"].map(real[~real.index.duplicated()])
    return u


def _channel(out: pd.DataFrame, table: str, tables: Mapping, cust: pd.DataFrame) -> pd.Series:
    """Return each unit's channel: a lead's own, a deal's lead's (else its customer's), else the customer's."""
    by_customer = out["customer_id"].map(cust.get("channel")) if "channel" in cust else pd.Series(np.nan, out.index)
    if table == "leads":
        return out["row_id"].map(first_rows(tables, "leads", "lead_id", out["row_id"], ("channel",))["channel"])
    if table == "opportunities":
        lead = out["row_id"].map(_deal_leads(tables, out["row_id"]))
        via_lead = lead.map(first_rows(tables, "leads", "lead_id", lead, ("channel",))["channel"])
        return via_lead.where(via_lead.notna(), by_customer)
    return by_customer


def _deal_leads(tables: Mapping, ids: pd.Series) -> pd.Series:
    """Return the lead of each deal among ``ids``, by deal id."""
    return first_rows(tables, "opportunities", "opportunity_id", ids, ("lead_id",))["lead_id"]


def lead_response_hours(u: pd.DataFrame, table: str, tables: Mapping) -> pd.Series:
    """Return, per unit (a lead, or a deal through its lead), the hours from the lead to its first contact."""
    ids = u["row_id"]
    if table == "opportunities":
        ids = ids.map(_deal_leads(tables, ids))
    leads = first_rows(tables, "leads", "lead_id", ids, ("created_at", "first_contact_at"))

    def at(column: str) -> pd.Series:
        # by label, so that no matching lead (deals of an export without leads) gives NaT, not a float cast
        return pd.Series(leads[column].reindex(ids.to_numpy()).to_numpy(), index=ids.index)

    return (at("first_contact_at") - at("created_at")).dt.total_seconds() / 3600


def gap_to_target(goal: Mapping) -> float:
    """Return how far the goal metric is short of its target, in its unit (0 or less when the target is met).

    >>> round(gap_to_target({"now": 0.17, "target": 0.2, "higher_is_better": True}), 3)
    0.03
    """
    now, target = goal["now"], goal["target"]
    if now is None or pd.isna(now):
        return float("nan")
    return float(target - now) if goal["higher_is_better"] else float(now - target)


def gain_if_like_rest(n: int, value: float, rest: float, total: int, higher_is_better: bool) -> float:
    """Return how far the goal metric would move towards its target had ``n`` of ``total`` units scoring
    ``value`` scored ``rest`` like the others (negative when the segment does better than the rest)."""
    if not total or not n or pd.isna(value) or pd.isna(rest):
        return float("nan")
    step = (rest - value) if higher_is_better else (value - rest)
    return float(n / total * step)


def share_of_gap(gain: float, gap: float) -> float:
    """Return ``gain`` as a fraction of the gap to target; NaN when the target is met or nothing is known.

    >>> share_of_gap(0.015, 0.03), share_of_gap(0.01, -0.001)
    (0.5, nan)
    """
    if pd.isna(gain) or pd.isna(gap) or gap <= 0:
        return float("nan")
    return float(gain / gap)


def split(u: pd.DataFrame, mask: pd.Series, higher_is_better: bool) -> dict:
    """Return the segment ``mask`` of the units against the rest: n, value, rest value and gain."""
    mask = pd.Series(np.asarray(mask, bool), index=u.index)
    seg, rest = u.loc[mask, "value"], u.loc[~mask, "value"]
    v, r = (seg.mean() if len(seg) else np.nan), (rest.mean() if len(rest) else np.nan)
    return {
        "n": int(mask.sum()),
        "value": float(v),
        "rest_value": float(r),
        "gain": gain_if_like_rest(int(mask.sum()), v, r, len(u), higher_is_better),
    }


# --------------------------------------------------------------------------- the drivers of each goal metric
def _customers_with(frame: pd.DataFrame, col: str, start, end, keep: pd.Series | None = None) -> set:
    """Return the customers with a row of ``frame`` dated by ``col`` in the window (and ``keep``)."""
    f = in_period(frame, col, start, end)
    if keep is not None:
        f = f[keep.reindex(f.index).fillna(False).to_numpy(bool)]
    return set(f["customer_id"].dropna())


FOLLOWED_UP_SQL = """
SELECT DISTINCT customer_id FROM read_parquet($path)
WHERE completed_at >= $lo AND completed_at < $hi AND customer_id IS NOT NULL
"""
"""The customers with a follow-up task completed in the window."""


def _followed_up(tables: Mapping, start, end) -> set:
    """Return the customers with a follow-up completed in the window: DuckDB reads the activities' hand-off while
    the step has not read the table (the largest one), else the frame is filtered."""
    path = unread_file(tables, "activities")
    if path is None or not tasks_typed(path):
        return _customers_with(tables["activities"], "completed_at", start, end)
    from crmnb.frames import connect

    lo = pd.Timestamp(start)
    params = {
        "path": str(path),
        "lo": lo.to_pydatetime(),
        "hi": (pd.Timestamp(end) + pd.Timedelta(days=1)).to_pydatetime(),
    }
    con = connect()
    try:
        return {row[0] for row in con.execute(FOLLOWED_UP_SQL, params).fetchall()}
    finally:
        con.close()


def repeat_drivers(u: pd.DataFrame, tables: Mapping, start, end, churn_rules: pd.DataFrame | None) -> list[dict]:
    """Return the drivers of repeat purchase: follow-up, complaints, satisfaction and churn risk of the buyers."""
    tk = tables["tickets"]
    followed = _followed_up(tables, start, end)
    complained = _customers_with(tk, "created_at", start, end, tk["type"] == "complaint")
    unhappy = _customers_with(tk, "created_at", start, end, tk["csat"] <= 3)
    cid = u["customer_id"]
    out = [
        {"kind": "no_followup", **split(u, ~cid.isin(followed), True)},
        {"kind": "complaints", **split(u, cid.isin(complained), True)},
        {"kind": "low_satisfaction", **split(u, cid.isin(unhappy), True)},
    ]
    if churn_rules is not None and len(churn_rules):
        risky = set(churn_rules.loc[churn_rules["risk_level"].isin(["high", "medium"]), "customer_id"])
        out.append({"kind": "churn_risk", **split(u, cid.isin(risky), True)})
    return out


def lead_drivers(u: pd.DataFrame, tables: Mapping, response_target_hours: float) -> list[dict]:
    """Return the drivers of lead conversion: late first contact, no contact, the weakest channel."""
    hours = lead_response_hours(u, "leads", tables)
    contacted = u["row_id"].map(
        first_rows(tables, "leads", "lead_id", u["row_id"], ("first_contact_at",))["first_contact_at"]
    )
    out = [
        {"kind": "slow_response", **split(u, hours > response_target_hours, True)},
        {"kind": "uncontacted", **split(u, contacted.isna(), True)},
    ]
    worst = worst_subgroup(u, "channel", True)
    return out + ([{"kind": "channel_mix", **worst}] if worst is not None else [])


def deal_drivers(u: pd.DataFrame, tables: Mapping, response_target_hours: float, higher: bool) -> list[dict]:
    """Return the drivers of a deal metric (win rate, cycle): its lead's late first contact, the weakest channel."""
    hours = lead_response_hours(u, "opportunities", tables)
    out = [{"kind": "slow_response", **split(u, hours > response_target_hours, higher)}]
    worst = worst_subgroup(u, "channel", higher)
    return out + ([{"kind": "channel_mix", **worst}] if worst is not None else [])


def off_hours_driver(u: pd.DataFrame, tables: Mapping) -> dict:
    """Return the leads created at the weekend or outside 9:00-18:00, whose first contact waits longest."""
    created = u["row_id"].map(first_rows(tables, "leads", "lead_id", u["row_id"], ("created_at",))["created_at"])
    off = (created.dt.dayofweek >= 5) | (created.dt.hour < 9) | (created.dt.hour >= 18)
    return {"kind": "off_hours", **split(u, off, False)}


def worst_subgroup(u: pd.DataFrame, dim: str, higher_is_better: bool, min_n: int = 20) -> dict | None:
    """Return the subgroup of ``dim`` (of at least ``min_n`` units) whose catching up with the rest gains most."""
    if dim not in u or u[dim].nunique() < 2:
        return None
    best = None
    for name, grp in u.groupby(dim, observed=True):
        if len(grp) < min_n:
            continue
        s = {"segment": str(name), **split(u, u[dim] == name, higher_is_better)}
        if best is None or s["gain"] > best["gain"]:
            best = s
    return best


def stage_driver(funnel: pd.DataFrame, now: float, stages: tuple[str, ...] | None = None) -> dict | None:
    """Return the weakest funnel stage and what 5 more points of its conversion would add to the goal metric:
    the goal metric is the product of the stages' conversions, so it rises by now × 0.05 / p_stage."""
    f = funnel.dropna(subset=["conversion_rate"])
    if stages is not None:
        f = f[f["stage"].isin(stages)]
    f = f[f["conversion_rate"] > 0]
    if not len(f) or pd.isna(now):
        return None
    weak = f.loc[f["conversion_rate"].idxmin()]
    p = float(weak["conversion_rate"])
    return {
        "kind": "weak_stage",
        "segment": str(weak["stage"]),
        "n": int(weak["entered"]),
        "value": p,
        "rest_value": min(1.0, p + STAGE_STEP),
        "gain": float(now * min(STAGE_STEP, 1 - p) / p),
    }


def cycle_driver(funnel: pd.DataFrame) -> dict | None:
    """Return the stage whose dwell is furthest over its benchmark: days the cycle would lose at the benchmark."""
    f = funnel.dropna(subset=["avg_dwell_days", "dwell_benchmark_days"])
    f = f.assign(excess=f["avg_dwell_days"] - f["dwell_benchmark_days"])
    f = f[f["excess"] > 0]
    if not len(f):
        return None
    s = f.loc[f["excess"].idxmax()]
    return {
        "kind": "slow_stage",
        "segment": str(s["stage"]),
        "n": int(s["entered"]),
        "value": float(s["avg_dwell_days"]),
        "rest_value": float(s["dwell_benchmark_days"]),
        "gain": float(s["excess"]),
    }


def ticket_drivers(u: pd.DataFrame, tables: Mapping) -> list[dict]:
    """Return the drivers of satisfaction: complaints against requests, and the slowest quarter of resolutions."""
    tk = tables["tickets"].drop_duplicates("ticket_id").set_index("ticket_id")
    kind = u["row_id"].map(tk["type"])
    hours = (u["row_id"].map(tk["resolved_at"]) - u["row_id"].map(tk["created_at"])).dt.total_seconds() / 3600
    slow = hours.isna() | (hours > hours.quantile(0.75))
    return [
        {"kind": "complaints", **split(u, kind == "complaint", True)},
        {"kind": "slow_resolution", **split(u, slow, True)},
    ]


def _task_type(u: pd.DataFrame, tables: Mapping) -> dict | None:
    """Return the kind of follow-up task (call, visit, e-mail…) done on time least often, against the rest."""
    kinds = u["row_id"].map(tables["activities"].drop_duplicates("activity_id").set_index("activity_id")["type"])
    worst = worst_subgroup(u.assign(task_type=kinds), "task_type", True)
    return {"kind": "task_type", **worst} if worst is not None else None


def goal_drivers(
    metric: str,
    u: pd.DataFrame,
    tables: Mapping,
    window: tuple,
    goal: Mapping,
    funnel: pd.DataFrame,
    churn_rules: pd.DataFrame | None = None,
    response_target_hours: float = 24.0,
) -> pd.DataFrame:
    """Return the goal metric's drivers, most of the gap first: kind, segment, n, value, rest_value, gain,
    share_of_gap. ``u`` are the metric's traced units in ``window`` (:func:`traced_units`).

    Average order value and complaint resolution time have no driver of their own here: the driver scan's
    subgroups (rep, channel, industry, city) are theirs."""
    found: list[dict | None] = []
    higher = bool(goal["higher_is_better"])
    if metric == "repeat_purchase_rate":
        found += repeat_drivers(u, tables, *window, churn_rules)
    elif metric == "lead_conversion_rate":
        found += [*lead_drivers(u, tables, response_target_hours), stage_driver(funnel, goal["now"])]
    elif metric == "opportunity_win_rate":
        found += deal_drivers(u, tables, response_target_hours, higher)
        found += [stage_driver(funnel, goal["now"], ("needs_confirmed", "proposal", "negotiation"))]
    elif metric == "sales_cycle_days":
        found += [*deal_drivers(u, tables, response_target_hours, higher), cycle_driver(funnel)]
    elif metric == "csat":
        found += ticket_drivers(u, tables)
    elif metric == "lead_response_hours":
        worst = worst_subgroup(u, "channel", higher)
        found += [off_hours_driver(u, tables), {"kind": "channel_mix", **worst} if worst else None]
    elif metric == "followup_ontime_rate":
        found += [_task_type(u, tables)]
    rows = [f for f in found if f is not None and f["n"] and pd.notna(f["gain"])]
    out = pd.DataFrame(rows, columns=["kind", "segment", "n", "value", "rest_value", "gain"])
    gap = gap_to_target(goal)
    out["share_of_gap"] = [share_of_gap(g, gap) for g in out["gain"]]
    return out.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)


def readable_drivers(drivers: pd.DataFrame, language: str) -> pd.DataFrame:
    """Return the drivers as a reader sees them: driver and segment in words, n, value, rest, gain, share of gap."""
    stages = stage_labels(language)

    def who(r: pd.Series) -> str:
        seg = r["segment"] if isinstance(r["segment"], str) else ""
        seg = stages.get(seg) or str(category(seg, language))
        return t(f"scan.driver.{r['kind']}.who", language, segment=seg)

    out = drivers.copy()
    out.insert(0, "driver", [t(f"scan.driver.{k}", language) for k in drivers["kind"]])
    out.insert(1, "who", [who(r) for _, r in drivers.iterrows()] if len(drivers) else [])
    return out.drop(columns=["kind", "segment"])


def gap_sentence(goal: Mapping, language: str) -> str:
    """Return what the drivers' shares are shares of: the gap to target, or why there is none to share.

    >>> gap_sentence({"name": "Lead conversion", "now": 0.17, "target": 0.2, "unit": "rate", "higher_is_better": True}, "en")[:59]
    'Lead conversion: 17.0% now against a target of 20.0%, a gap'
    """
    gap, unit = gap_to_target(goal), goal["unit"]
    words = {"name": goal["name"], "now": fmt_value(goal["now"], unit), "target": fmt_value(goal["target"], unit)}
    if pd.isna(gap):
        return t("scan.gap.unknown", language, **words)
    gap_words = t("scan.gain.rate", language, pp=gap * 100) if unit == "rate" else fmt_value(gap, unit)
    return t("scan.gap.open" if gap > 0 else "scan.gap.met", language, **words, gap=gap_words)
