"""Why a goal KPI changed between two runs of a case, without keeping the earlier run's data.

The earlier run keeps its goal metric's units (a pseudonymised key, the date, the value), its
window, the latest date of its data and its thresholds. The new run's cleaned tables are then
measured step by step back towards the earlier run, one source at a time:

1. the new tables, the new window, the new thresholds: the new value;
2. the same, every row dated after the earlier data's end left out: the difference is *new data*;
3. the same, in the earlier window: the difference is the *period* (a setting);
4. the same, with the earlier thresholds: the difference is the *thresholds* (settings);
5. what is left against the earlier value is *restated history* (rows of the earlier span that were
   edited, added or removed; counted unit by unit against the kept units) and, when the code
   changed too, the code: the two cannot be told apart without the earlier code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

SOURCES = ("new_data", "period", "thresholds", "restated", "code", "restated_or_code")
"""The sources of a change, in the order a reviewer asks about them."""


def restrict(tables: Mapping[str, pd.DataFrame], end: date | str) -> dict[str, pd.DataFrame]:
    """Return the tables as they read on ``end``: each row with a date after that day left out.

    A deal closed after ``end`` was open then; leaving its row out measures it as not won, as the
    earlier extract did.
    """
    limit = pd.Timestamp(end) + pd.Timedelta(days=1)
    out = {}
    for name, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            continue
        keep = np.ones(len(df), dtype=bool)
        for col in df.columns:
            if pd.api.types.is_datetime64_any_dtype(df[col]):
                s = df[col]
                if getattr(s.dt, "tz", None) is not None:
                    s = s.dt.tz_localize(None)
                keep &= ~(s >= limit).to_numpy()
        out[name] = df[keep]
    return out


def data_end(tables: Mapping[str, pd.DataFrame]) -> str | None:
    """Return the last day the data record an event on (as the metrics read it), as YYYY-MM-DD."""
    from crmnb.analysis.metric_units import data_end as metrics_end

    end = metrics_end(tables)
    return None if end == pd.Timestamp.max else str((end - pd.Timedelta(days=1)).date())


def unit_keys(u: pd.DataFrame) -> pd.Series:
    """Return each unit's key: a hash of its customer and its date, so no CRM id or name is kept."""
    who = u["customer_id"].astype(object).where(u["customer_id"].notna(), "").map(str)
    text = who + "|" + pd.to_datetime(u["when"]).astype(object).map(str)
    return text.map(lambda s: hashlib.sha256(str(s).encode("utf-8")).hexdigest()[:16])


def goal_units(tables, metric: str, window, department: str, opts: dict) -> pd.DataFrame | None:
    """Return the goal metric's units in ``window`` (key, month, value), or None for a ratio of totals."""
    from crmnb.analysis.metrics import CATALOGUE, units

    if CATALOGUE[metric].units is None:
        return None
    u = units(metric, tables, *window, department, **opts)
    return pd.DataFrame(
        {
            "key": unit_keys(u).to_numpy() if len(u) else np.array([], dtype=object),
            "month": pd.to_datetime(u["when"]).dt.strftime("%Y-%m").to_numpy() if len(u) else [],
            "value": u["value"].to_numpy(dtype=float),
        }
    )


def _value(metric: str, tables, window, department: str, opts: dict) -> float:
    from crmnb.analysis.metrics import value

    return value(metric, tables, *window, department, **opts)


def restated_units(old: pd.DataFrame | None, now: pd.DataFrame | None) -> tuple[int, list[str]]:
    """Return how many units of the earlier span changed value, appeared or went, and their commonest months."""
    if old is None or now is None:
        return 0, []
    a = old.drop_duplicates("key").set_index("key")
    b = now.drop_duplicates("key").set_index("key")
    both = a.index.intersection(b.index)
    changed = both[~np.isclose(a.loc[both, "value"].to_numpy(), b.loc[both, "value"].to_numpy(), equal_nan=True)]
    gone, added = a.index.difference(b.index), b.index.difference(a.index)
    months = pd.concat([a.loc[changed, "month"], a.loc[gone, "month"], b.loc[added, "month"]])
    return len(changed) + len(gone) + len(added), months.value_counts().index[:2].tolist()


def attribute(old: dict, tables, new: dict, code_changed: bool) -> dict:
    """Return the change of the goal KPI from the earlier run ``old`` to the new run, source by source.

    ``old`` and ``new``: metric, department, window (two dates), opts (thresholds); ``old`` also
    now (its value), data_end and units (its kept units, or None). ``tables``: the new run's
    cleaned tables. Each part: source, delta (in the metric's unit) and n (units behind it).
    """
    metric, dept = new["metric"], new["department"]
    k1 = _value(metric, tables, new["window"], dept, new["opts"])
    then = restrict(tables, old["data_end"]) if old.get("data_end") else dict(tables)
    k_r = _value(metric, then, new["window"], dept, new["opts"])
    k_w = _value(metric, then, old["window"], dept, new["opts"])
    k_t = _value(metric, then, old["window"], dept, old["opts"])
    n_new = 0
    if old.get("data_end"):
        u_new = goal_units(tables, metric, new["window"], dept, new["opts"])
        u_then = goal_units(then, metric, new["window"], dept, new["opts"])
        n_new = 0 if u_new is None else len(u_new) - len(u_then)
    n_restated, months = restated_units(old.get("units"), goal_units(then, metric, old["window"], dept, old["opts"]))
    rest = "restated_or_code" if code_changed and n_restated else ("code" if code_changed else "restated")
    parts = [
        {"source": "new_data", "delta": k1 - k_r, "n": n_new, "after": old.get("data_end")},
        {"source": "period", "delta": k_r - k_w, "n": None},
        {"source": "thresholds", "delta": k_w - k_t, "n": None},
        {"source": rest, "delta": k_t - float(old["now"]), "n": n_restated, "months": months},
    ]
    keep = [p for p in parts if np.isfinite(p["delta"]) and (abs(p["delta"]) > 1e-12 or p["n"])]
    return {"metric": metric, "from": float(old["now"]), "to": k1, "parts": keep}
