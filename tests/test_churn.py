"""Tests of churn early warning: rule levels, leak-free features and labels, the models, the watch list."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import churn, churn_model, watch
from crmnb.demo.generator import generate
from crmnb.errors import NotEnoughData
from crmnb.intake.parse import intake
from crmnb.intake.read import read_export
from crmnb.intake.schema import DEFAULT_FILES, TABLES

AS_OF = pd.Timestamp("2026-04-01")
EVENT_TABLES = ("customers", "orders", "visits", "tickets", "activities")


def _frame(table: str, rows: list[dict]) -> pd.DataFrame:
    """Return a canonical table with the given rows, every column present and typed."""
    cols = TABLES[table].columns
    df = pd.DataFrame(rows, columns=list(cols))
    for c, kind in cols.items():
        if kind == "datetime":
            df[c] = pd.to_datetime(df[c], format="ISO8601")
        elif kind in ("float", "int"):
            df[c] = df[c].astype(float)
        else:
            df[c] = df[c].astype(object)
    return df


def _hand_built() -> dict[str, pd.DataFrame]:
    """Customers A–J with visits, orders and complaints worked out by hand for AS_OF (lookback 2026-01-01 to 03-31)."""
    ids = list("ABCDEFGHIJK")
    customers = _frame(
        "customers",
        [
            {
                "customer_id": c,
                "name": f"客户{c}",
                "company": f"杭州{c}科技有限公司",
                "phone": f"1381234{i:04d}",
                "email": f"user{c.lower()}@example.com",
                "department": "销售一部",
                "owner_rep": "王芳",
                "created_at": "2024-01-01",
            }
            for i, c in enumerate(ids)
        ],
    )
    # visits in the lookback (one per day from Jan 5): A 6 = 2.0/month, B 9 = exactly 3.0/month, C/D/E 8 = 2.67,
    # F 12 = 4.0, G 0 (but 20 in Dec 2025), H 8 plus one at 2026-01-01 00:00 (in) = 9, K 8 plus one at AS_OF (out)
    n_visits = {"A": 6, "B": 9, "C": 8, "D": 8, "E": 8, "F": 12, "G": 0, "H": 8, "K": 8}
    visits = [
        {"customer_id": c, "visited_at": pd.Timestamp("2026-01-05") + pd.Timedelta(days=k)}
        for c, n in n_visits.items()
        for k in range(n)
    ]
    visits += [{"customer_id": "G", "visited_at": pd.Timestamp("2025-12-01") + pd.Timedelta(days=k)} for k in range(20)]
    visits += [
        {"customer_id": "H", "visited_at": pd.Timestamp("2026-01-01 00:00:00")},
        {"customer_id": "K", "visited_at": AS_OF},
    ]
    visits = _frame("visits", [dict(v, visit_id=f"V{i}") for i, v in enumerate(visits)])
    # every buyer ordered in Oct 2025 (active, but no order in the lookback); D and E also in Feb 2026;
    # I last ordered 400 days before AS_OF (lapsed, not graded); J never ordered (a prospect)
    orders = [{"customer_id": c, "order_date": "2025-10-15", "amount": 1000.0} for c in "ABCDEFGHK"]
    orders += [{"customer_id": c, "order_date": "2026-02-10", "amount": 500.0} for c in "DE"]
    orders += [{"customer_id": "I", "order_date": AS_OF - pd.Timedelta(days=400), "amount": 800.0}]
    orders += [{"customer_id": "K", "order_date": AS_OF, "amount": 900.0}]  # at AS_OF: not in the lookback
    orders = _frame("orders", [dict(o, order_id=f"O{i}") for i, o in enumerate(orders)])
    # complaints: A 1, B 1, D 1, F 2; G one just before the lookback; C a request only
    tickets = [
        ("A", "complaint", "2026-02-01"),
        ("B", "complaint", "2026-02-01"),
        ("D", "complaint", "2026-03-01"),
        ("F", "complaint", "2026-01-10"),
        ("F", "complaint", "2026-03-10"),
        ("G", "complaint", "2025-12-31 23:59:59"),
        ("C", "request", "2026-02-01"),
    ]
    tickets = _frame(
        "tickets",
        [
            {"ticket_id": f"T{i}", "customer_id": c, "type": t, "created_at": when}
            for i, (c, t, when) in enumerate(tickets)
        ],
    )
    return {"customers": customers, "orders": orders, "visits": visits, "tickets": tickets}


def _rules(t: dict[str, pd.DataFrame], rules=None) -> pd.DataFrame:
    return churn.rule_risk(t["customers"], t["orders"], t["visits"], t["tickets"], AS_OF, rules).set_index(
        "customer_id"
    )


def test_rule_levels_by_hand():
    r = _rules(_hand_built())
    assert list(r.index) == list("ABCDEFGHK")  # I lapsed, J never bought
    assert r["visits"].to_dict() == {"A": 6, "B": 9, "C": 8, "D": 8, "E": 8, "F": 12, "G": 0, "H": 9, "K": 8}
    assert r.loc["B", "visits_per_month"] == 3.0
    assert r["orders"].to_dict() == {"A": 0, "B": 0, "C": 0, "D": 1, "E": 1, "F": 0, "G": 0, "H": 0, "K": 0}
    assert r["complaints"].to_dict() == {"A": 1, "B": 1, "C": 0, "D": 1, "E": 0, "F": 2, "G": 0, "H": 0, "K": 0}
    assert r["risk_level"].to_dict() == {
        "A": "high",  # 2.0 < 3, no order, complaint
        "B": "low",  # exactly 3 visits/month is not below 3
        "C": "medium",  # low visits and no order, no complaint
        "D": "medium",  # complaint and low visits, but ordered
        "E": "low",  # low visits but ordered, no complaint
        "F": "low",  # complaints and no order, but 4 visits/month
        "G": "medium",  # its complaint and visits were before the lookback
        "H": "low",  # its visit at the first instant of the lookback counts: 9 visits = 3.0/month
        "K": "medium",  # its visit and order at AS_OF are after the lookback: 2.7 visits/month, no order
    }
    assert r.loc["A", "reasons"] == "2.0 visits/month < 3; no order in 3 months; 1 complaint"
    assert r.loc["B", "reasons"] == "3.0 visits/month; no order in 3 months; 1 complaint"
    assert r.loc["D", "reasons"] == "2.7 visits/month < 3; 1 order in 3 months; 1 complaint"
    assert r.loc["F", "reasons"] == "4.0 visits/month; no order in 3 months; 2 complaints"
    assert r.loc["A", "last_order"] == pd.Timestamp("2025-10-15")


def test_changing_a_threshold_changes_the_levels():
    t = _hand_built()
    base = _rules(t)["risk_level"]
    fewer = _rules(t, churn.ChurnRules(min_visits_per_month=2))["risk_level"]
    assert base["A"] == "high" and fewer["A"] == "low"  # 2.0 is not below 2
    assert base["C"] == "medium" and fewer["C"] == "low"
    more = _rules(t, {"min_complaints": 2})["risk_level"]  # a plain dict works too
    assert more["A"] == "medium" and more["F"] == "low"
    one_order = _rules(t, {"max_orders": 1})["risk_level"]
    assert base["D"] == "medium" and one_order["D"] == "high"
    everyone = _rules(t, {"active_within_days": None})
    assert "I" in everyone.index and "J" not in everyone.index
    with pytest.raises(ValueError, match="unknown churn rule"):
        churn.as_rules({"min_visit": 2})


def test_watch_list_from_rules_alone():
    t = _hand_built()
    rules = churn.rule_risk(t["customers"], t["orders"], t["visits"], t["tickets"], AS_OF)
    w = watch.watch_list(t["customers"], rules, top_n=None, language="en")
    assert list(w.columns) == watch.WATCH_COLUMNS
    assert list(w["customer_id"]) == ["A", "C", "D", "G", "K", "B", "E", "F", "H"]  # by level, then id
    assert w["churn_probability"].isna().all()
    a = w.set_index("customer_id").loc["A"]
    assert a["name"] == "客**" and a["phone"] == "138****0000" and a["company"] == "*科技有限公司"
    assert "service recovery call" in a["action"] and "re-engagement offer" in a["action"]
    assert w.set_index("customer_id").loc["E", "action"] == "keep the regular contact plan"
    assert watch.watch_list(t["customers"], rules, top_n=2, language="en")["customer_id"].tolist() == ["A", "C"]


@pytest.mark.parametrize("top_n", [2, None])
def test_the_listed_customers_give_the_watch_list_of_the_department(tmp_path, top_n):
    """The rows of the listed customers alone (read from the hand-off or taken of a frame) give the same list."""
    from crmnb.handoffs import Workspace

    t = _hand_built()
    rules = churn.rule_risk(t["customers"], t["orders"], t["visits"], t["tickets"], AS_OF)
    customers = t["customers"].assign(department=["销售一部"] * 5 + ["客户服务部"] * 6)
    # a customer of the other department listed first in the table: the department's own row is taken
    customers = pd.concat([customers.iloc[[5]].assign(customer_id="A"), customers], ignore_index=True)
    ws = Workspace(tmp_path, "case")
    ws.write("clean/customers", customers)
    department = customers[customers["department"] == "销售一部"].reset_index(drop=True)
    want = watch.watch_list(department, rules, top_n=top_n, language="en")
    for tables in (ws.tables("clean"), {"customers": customers}):
        shown = watch.listed_customers(tables, "销售一部", rules, top_n=top_n)
        assert len(shown) <= len(department)
        pd.testing.assert_frame_equal(watch.watch_list(shown, rules, top_n=top_n, language="en"), want)


# --------------------------------------------------------------------------- demo data
@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("churn_demo")
    generate(folder, scale=0.3)
    return {t: intake(read_export(folder / DEFAULT_FILES[t], t), t).table for t in EVENT_TABLES}


def _args(t: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, ...]:
    return tuple(t[name] for name in EVENT_TABLES)


def _truncate(t: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Return the tables as they stood at ``cutoff``: later events gone, later resolutions and completions blank."""
    out = {"customers": t["customers"]}
    out["orders"] = t["orders"][t["orders"]["order_date"] < cutoff]
    out["visits"] = t["visits"][t["visits"]["visited_at"] < cutoff]
    tk = t["tickets"][t["tickets"]["created_at"] < cutoff].copy()
    late = ~(tk["resolved_at"] < cutoff)
    tk.loc[late, "resolved_at"] = pd.NaT
    tk.loc[late, ["csat", "nps"]] = np.nan
    out["tickets"] = tk
    act = t["activities"].copy()
    act.loc[~(act["completed_at"] < cutoff), "completed_at"] = pd.NaT
    out["activities"] = act[(act["due_at"] < cutoff) | act["completed_at"].notna()]
    return out


def _add_future(t: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Return the tables with events at and after ``cutoff`` added for every customer, prospects included."""
    ids = t["customers"]["customer_id"].dropna().unique()
    n = len(ids)
    at = [cutoff, cutoff + pd.Timedelta(days=1)]
    out = dict(t)
    out["orders"] = pd.concat(
        [
            t["orders"],
            _frame(
                "orders",
                [
                    {"order_id": f"F{k}{i}", "customer_id": c, "order_date": w, "amount": 1e6}
                    for k, w in enumerate(at)
                    for i, c in enumerate(ids)
                ],
            ),
        ],
        ignore_index=True,
    )
    out["visits"] = pd.concat(
        [
            t["visits"],
            _frame(
                "visits",
                [
                    {"visit_id": f"F{k}{i}", "customer_id": c, "visited_at": w}
                    for k, w in enumerate(at)
                    for i, c in enumerate(ids)
                ],
            ),
        ],
        ignore_index=True,
    )
    out["tickets"] = pd.concat(
        [
            t["tickets"],
            _frame(
                "tickets",
                [
                    {
                        "ticket_id": f"F{i}",
                        "customer_id": c,
                        "type": "complaint",
                        "created_at": at[1],
                        "resolved_at": at[1],
                        "csat": 1.0,
                    }
                    for i, c in enumerate(ids)
                ],
            ),
        ],
        ignore_index=True,
    )
    act = t["activities"].copy()
    # an open task due before the cutoff gets done after it: still overdue at the cutoff
    act.loc[act["completed_at"].isna() & (act["due_at"] < cutoff), "completed_at"] = at[1]
    out["activities"] = pd.concat(
        [
            act,
            _frame(
                "activities",
                [
                    {"activity_id": f"F{i}", "customer_id": c, "due_at": at[0], "completed_at": at[1]}
                    for i, c in enumerate(ids)
                ],
            ),
        ],
        ignore_index=True,
    )
    # tickets open at the cutoff get resolved and rated after it: their CSAT was not yet known
    tk = out["tickets"]
    early = tk.index[(tk["created_at"] < cutoff) & tk["resolved_at"].isna()]
    tk.loc[early, "resolved_at"] = at[1]
    tk.loc[early, "csat"] = 1.0
    assert len(early) > 0 and n > 0
    return out


def test_features_unchanged_by_events_after_the_cutoff(demo):
    cutoff = pd.Timestamp("2025-10-01")
    base = churn.build_features(*_args(demo), cutoff)
    assert list(base.columns) == list(churn.FEATURES)
    assert not base.isna().any().any()
    past_only = churn.build_features(*_args(_truncate(demo, cutoff)), cutoff)
    pd.testing.assert_frame_equal(base, past_only)
    with_future = churn.build_features(*_args(_add_future(_truncate(demo, cutoff), cutoff)), cutoff)
    pd.testing.assert_frame_equal(base, with_future)
    # and events before the cutoff do count
    moved = churn.build_features(*_args(_add_future(demo, cutoff - pd.Timedelta(days=2))), cutoff)
    assert (moved["visits_30"] > base.reindex(moved.index)["visits_30"].fillna(0)).all()


def test_labels_read_only_the_window_after_the_cutoff():
    cutoff = pd.Timestamp("2026-01-01")
    end = cutoff + pd.Timedelta(days=90)
    one = pd.Timedelta(seconds=1)
    orders = _frame(
        "orders",
        [
            {"order_id": "1", "customer_id": "before", "order_date": cutoff - one, "amount": 1.0},
            {"order_id": "2", "customer_id": "at_cutoff", "order_date": cutoff, "amount": 1.0},
            {"order_id": "3", "customer_id": "last_second", "order_date": end - one, "amount": 1.0},
            {"order_id": "4", "customer_id": "at_end", "order_date": end, "amount": 1.0},
            {"order_id": "5", "customer_id": "no_date", "order_date": pd.NaT, "amount": 1.0},
        ],
    )
    who = pd.Index(["before", "at_cutoff", "last_second", "at_end", "no_date", "never"], name="customer_id")
    y = churn.label_churn(orders, who, cutoff, horizon_days=90)
    assert y.to_dict() == {"before": 1, "at_cutoff": 0, "last_second": 0, "at_end": 1, "no_date": 1, "never": 1}
    inside = orders[(orders["order_date"] >= cutoff) & (orders["order_date"] < end)]
    pd.testing.assert_series_equal(y, churn.label_churn(inside, who, cutoff, horizon_days=90))


def test_models_on_demo_data(demo):
    res = churn_model.train_and_evaluate(*_args(demo), AS_OF)
    assert res.train_cutoff == AS_OF - pd.Timedelta(days=180) and res.holdout_cutoff == AS_OF - pd.Timedelta(days=90)
    m = res.metrics.set_index("model")
    assert set(m.index) == {"logistic", "tree"}
    assert (m["roc_auc"] > 0.6).all(), m  # the demo supports about 0.65-0.70 at this scale
    assert m.loc[res.chosen, "pr_auc"] == m["pr_auc"].max() and m["chosen"].sum() == 1
    assert (m["pr_auc"] > m["base_rate"]).all()
    for name, lift in res.lift.items():
        assert list(lift["decile"]) == list(range(1, 11))
        assert lift["customers"].sum() == m.loc[name, "n_holdout"] == len(res.holdout)
        assert lift["churners"].sum() == res.holdout["churned"].sum()
        assert lift["lift"].iloc[0] >= 1
        assert lift["cumulative_capture"].iloc[-1] == pytest.approx(1.0)
    assert set(res.importance["logistic"]["feature"]) == set(churn.FEATURES)
    assert "coefficient" in res.importance["logistic"] and "importance" in res.importance["tree"]
    again = churn_model.train_and_evaluate(*_args(demo), AS_OF)  # deterministic
    pd.testing.assert_frame_equal(res.metrics, again.metrics)

    features = churn.build_features(*_args(demo), AS_OF)
    p = churn_model.score(res, features)
    assert p.index.equals(features.index) and p.between(0, 1).all()
    for model in res.models.values():  # drivers work for both kinds of model
        c = churn_model.contributions(model, features)
        assert c.shape == features.shape and np.isfinite(c.to_numpy()).all()
        d = churn_model.drivers(model, features)
        assert d.index.equals(features.index) and (d != "").mean() > 0.5


def test_watch_list_masks_and_explains(demo):
    t = demo
    res = churn_model.train_and_evaluate(*_args(t), AS_OF)
    features = churn.build_features(*_args(t), AS_OF)
    rules = churn.rule_risk(t["customers"], t["orders"], t["visits"], t["tickets"], AS_OF)
    p = churn_model.score(res, features)
    w = watch.watch_list(
        t["customers"], rules, p, top_n=None, drivers=churn_model.drivers(res, features), language="en"
    )
    assert len(w) == len(rules) and set(w["customer_id"]) == set(features.index)
    assert w["risk_level"].isin(churn.RISK_LEVELS).all()
    assert w["churn_probability"].between(0, 1).all()
    assert (w["reasons"].str.len() > 0).all() and (w["action"].str.len() > 0).all()
    assert w["reasons"].str.contains("; model: ").mean() > 0.5
    rank = w["risk_level"].map({"high": 0, "medium": 1, "low": 2})
    assert rank.is_monotonic_increasing
    for _, g in w.groupby("risk_level"):
        assert g["churn_probability"].is_monotonic_decreasing
    assert w.loc[w["reasons"].str.contains(r"\d complaint"), "action"].str.contains("service recovery").all()

    raw = t["customers"]
    exact = set(raw["name"].dropna()) | set(raw["company"].dropna())
    contained = set(raw["phone"].dropna()) | set(raw["email"].dropna())
    for col in w.columns.drop(["department", "owner_rep"]):
        cells = w[col].dropna().astype(str)
        assert not cells.isin(exact).any(), col
        text = "\n".join(cells)
        assert not any(v in text for v in contained), col
    assert w["phone"].dropna().str.fullmatch(r"\d{3}\*{4}\d{4}").all()
    assert "email" not in w.columns

    top = watch.watch_list(t["customers"], rules, p, top_n=20, language="zh")
    assert len(top) == 20 and top["risk_level"].iloc[0] == "high"
    assert top["action"].str.contains("48小时").any()


def test_no_buyers_before_the_cutoff_is_a_clear_error(demo):
    first = demo["orders"]["order_date"].min()
    with pytest.raises(ValueError, match="no customers with an order before the cutoff"):
        churn.build_features(*_args(demo), first)
    with pytest.raises(
        NotEnoughData,
        match=r"^Churn model not trained: it needs customers who bought before the "
        r"training cutoff .*; this data has 0 such customers, 0 of whom stopped\.$",
    ):
        churn_model.train_and_evaluate(*_args(demo), first + pd.Timedelta(days=100))


def test_too_few_churners_says_what_the_model_needs(demo):
    t = {k: v.copy() for k, v in demo.items()}
    few = t["customers"]["customer_id"].drop_duplicates().head(4)
    t["customers"] = t["customers"][t["customers"]["customer_id"].isin(few)]
    with pytest.raises(NotEnoughData) as err:
        churn_model.train_and_evaluate(*_args(t), demo["orders"]["order_date"].max())
    assert err.value.en.startswith("Churn model not trained: it needs customers who bought before the training cutoff")
    assert re.search(
        r"at least 3 who then stopped buying and 3 who went on; this data has [0-4] such customers?, "
        r"\d of whom stopped\.$",
        err.value.en,
    )
    assert err.value.zh.startswith("未训练流失预测模型")
    probability, reasons = churn_model.score_at(None, *_args(t), demo["orders"]["order_date"].max())
    assert probability is None and reasons is None
    assert list(churn_model.empty_metrics().columns) == churn_model.METRIC_COLUMNS
    assert churn_model.empty_lift().empty and "lift" in churn_model.empty_lift().columns
