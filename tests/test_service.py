"""Service analytics on small hand-computed frames, the complaint themes in Chinese and English, the planted
rising theme of the demo, and the service problems in the diagnosis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crmnb.analysis import service, service_problems, themes
from crmnb.params.service import ServiceSettings

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return c - h, c + h


def _tickets() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": ["T1", "T2", "T3", "T4", "T5"],
            "customer_id": ["C1", "C2", "C3", "C1", "C4"],
            "type": ["complaint", "request", "request", "complaint", "request"],
            "channel": ["Phone", "phone", "Email", "e-mail", "chat"],
            "priority": ["high", "high", "normal", "normal", "low"],
            "created_at": pd.to_datetime(["2025-01-01 09:00"] * 5),
            "first_response_at": pd.to_datetime(
                ["2025-01-01 09:30", "2025-01-01 11:00", "2025-01-01 12:00", None, "2025-01-01 09:10"]
            ),
            "resolved_at": pd.to_datetime(
                ["2025-01-01 21:00", "2025-01-03 09:00", "2025-01-02 09:00", "2025-01-05 09:00", None]
            ),
            "reopened": [0, 1, 0, 2, 0],
            "csat": [2.0, 4.0, 5.0, np.nan, 4.0],
            "nps": [3.0, 9.0, 10.0, 6.0, np.nan],
        }
    )


def test_tickets_against_targets_by_channel_and_priority():
    out = service.against_targets(_tickets(), ServiceSettings())
    got = out.set_index(["channel", "priority"])
    # phone/high: two tickets, first replies after 0.5 h and 2 h against 1 h; resolved after 12 h and 48 h against 24 h
    ph = got.loc[("phone", "high")]
    assert ph["tickets"] == 2 and ph["first_response_target"] == 1.0 and ph["resolution_target"] == 24.0
    assert ph["first_response_within"] == pytest.approx(0.5) and ph["resolution_within"] == pytest.approx(0.5)
    assert ph["first_response_hours"] == pytest.approx(1.25) and ph["reopened_rate"] == pytest.approx(0.5)
    # "Email" and "e-mail" are one channel; the unanswered ticket is not within its 8 h target
    em = got.loc[("e-mail", "normal")]
    assert em["tickets"] == 2 and em["first_response_within"] == pytest.approx(0.5)
    assert em["resolution_within"] == pytest.approx(0.5)  # 24 h within 48 h; 96 h not
    # an unresolved chat ticket is not resolved within target
    assert got.loc[("chat", "low"), "resolution_within"] == 0.0
    assert list(dict.fromkeys(out["channel"])) == ["phone", "e-mail", "chat"]  # in the channels' order


def test_targets_come_from_the_case_file():
    s = ServiceSettings(first_response_hours={"Phone": 3}, resolution_hours={"high": 100})
    got = service.against_targets(_tickets(), s).set_index(["channel", "priority"]).loc[("phone", "high")]
    assert got["first_response_within"] == 1.0 and got["resolution_within"] == 1.0
    assert got["first_response_target"] == 3.0


def test_satisfaction_intervals_by_channel():
    tk = _tickets()
    out = service.satisfaction(tk, {"channel": tk["channel"].map(service.ticket_channel)}).set_index("group")
    # phone: CSAT 2 and 4 -> mean 3, t interval 3 ± 12.706 * sd(1.414)/sqrt(2), kept within 1-5
    assert out.loc["phone", "csat"] == 3.0 and out.loc["phone", "csat_n"] == 2
    assert out.loc["phone", "csat_low"] == 1.0 and out.loc["phone", "csat_high"] == 5.0
    # phone NPS: 3 (detractor), 9 (promoter) -> 0; e-mail: 10, 6 -> 0 as well
    assert out.loc["phone", "nps"] == 0.0 and out.loc["e-mail", "nps"] == 0.0
    u = np.array([1, -1, 1, -1, 1, 1, 0, 0])
    n, low, high = service.nps_interval(np.array([9, 0, 10, 5, 9, 9, 7, 8]))
    half = 1.959964 * u.std(ddof=1) / math.sqrt(8)
    assert n == pytest.approx(25.0) and low == pytest.approx(100 * (0.25 - half))
    assert high == pytest.approx(100 * (0.25 + half))


def test_complaint_and_later_buying_with_newcombe_interval():
    tk = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(8)],
            "type": ["complaint"] * 4 + ["request"] * 4,
            "created_at": pd.to_datetime(["2025-01-10"] * 8),
        }
    )
    # complainants C0..C3: C0 buys within 90 days; requesters C4..C7: C4, C5, C6 do; C7 buys after 100 days
    orders = pd.DataFrame(
        {
            "customer_id": ["C0", "C4", "C5", "C6", "C7", "C1"],
            "order_date": pd.to_datetime(
                ["2025-02-01", "2025-01-20", "2025-03-01", "2025-04-01", "2025-04-25", "2025-01-01"]
            ),
        }
    )
    out = service.complaint_outcomes(tk, orders, "2025-12-31").set_index("outcome")
    r = out.loc["repeat_90d"]
    assert (r["complainants"], r["requesters"]) == (4, 4)
    assert r["complainant_rate"] == 0.25 and r["requester_rate"] == 0.75 and r["rate_difference"] == -0.5
    (l1, u1), (l2, u2) = _wilson(3, 4), _wilson(1, 4)
    assert r["ci_low"] == pytest.approx(-0.5 - math.hypot(0.25 - l2, u1 - 0.75))
    assert r["ci_high"] == pytest.approx(-0.5 + math.hypot(u2 - 0.25, 0.75 - l1))
    lapsed = out.loc["lapsed_180d"]  # no order within 180 days: C1, C2, C3 of the complainants; none of the rest
    assert lapsed["complainant_rate"] == 0.75 and lapsed["requester_rate"] == 0.0
    # the data end before the 90 days are over: nobody counts
    assert service.complaint_outcomes(tk, orders, "2025-02-01")["complainants"].eq(0).all()


def test_an_export_without_the_service_fields_says_so_plainly():
    bare = _tickets()[["ticket_id", "customer_id", "type", "created_at"]].assign(note=None)
    said = service.lacking(bare, "en")
    assert any("no channel, priority, first_response_at" in s for s in said)
    assert any(s.startswith("Complaint themes: not done") and "note" in s for s in said)
    assert "the rest of the case runs" in said[0]
    out = service.against_targets(bare, ServiceSettings())  # still a table, nothing made up
    assert out["first_response_within"].isna().all() and out["tickets"].sum() == 5
    assert service.lacking(_tickets().assign(note="x"), "zh") == []


def test_themes_in_chinese_and_english():
    lex = themes.lexicon()
    flags = themes.tag(
        pd.Series(["升级后APP闪退", "快递一直没到，请尽快处理", "The agent was rude", "咨询续费方案", None]), lex
    )
    assert flags.loc[0, "faults"] and flags.loc[1, "delivery"] and flags.loc[2, "attitude"]
    assert flags.loc[3, themes.OTHER] and flags.loc[4, themes.OTHER]
    assert flags.iloc[:3][themes.OTHER].sum() == 0
    # the case file's words extend a theme and add one
    more = themes.lexicon({"faults": ["白屏"], "安装": ["安装失败"]})
    got = themes.tag(pd.Series(["打开就白屏", "安装失败了"]), more)
    assert got.loc[0, "faults"] and got.loc[1, "安装"]
    assert themes.theme_name("安装", "zh") == "安装" and themes.theme_name("faults", "zh") == "系统故障"


def test_each_complaint_is_tagged_as_its_own_words_say_however_often_its_text_repeats():
    """Complaints are tagged by distinct text, and a text holding no lexicon word is not cut: each complaint's
    themes are still those its own words give, word by word."""
    lex = themes.lexicon({"安装": ["安装失败"], "english": ["not as advertised"]})
    texts = ["升级后APP闪退", "质量好的产品", "The agent was RUDE", "咨询续费方案", "", "Not as advertised at all"]
    column = pd.Series(texts * 50 + [None], dtype="str").sample(frac=1.0, random_state=3)
    got = themes.tag(column, lex)
    for i, v in column.items():
        v = v if isinstance(v, str) else ""
        words, low = themes.tokens(v, lex), v.casefold()
        want = {
            th: bool({w.casefold() for w in ws if " " not in w} & words)
            or any(w.casefold() in low for w in ws if " " in w)
            for th, ws in lex.items()
        }
        assert got.loc[i, list(lex)].to_dict() == want, v
    assert list(got.index) == list(column.index)
    assert got[themes.OTHER].sum() == 50 * 2 + 1  # 咨询续费方案, the empty text and the missing one


def test_rising_theme_with_interval_and_masked_example():
    before = pd.DataFrame({"note": ["快递一直没到"] * 18 + ["闪退了"] * 2})
    after = pd.DataFrame({"note": ["快递一直没到"] * 10 + ["新版本登录不了，回电13812345678"] * 10})
    out = themes.theme_table(before, after, themes.lexicon()).set_index("theme")
    f = out.loc["faults"]
    assert (f["complaints_before"], f["complaints_after"]) == (2, 10)
    assert f["share_before"] == 0.1 and f["share_after"] == 0.5 and f["share_change"] == pytest.approx(0.4)
    (l1, u1), (l2, u2) = _wilson(2, 20), _wilson(10, 20)
    assert f["ci_low"] == pytest.approx(0.4 - math.hypot(0.5 - l2, u1 - 0.1))
    assert f["ci_high"] == pytest.approx(0.4 + math.hypot(u2 - 0.5, 0.1 - l1))
    assert bool(f["rising"]) and not bool(out.loc["delivery", "rising"])
    assert "13812345678" not in f["example"] and "138****5678" in f["example"]
    said = themes.theme_sentences(out.reset_index(), "en")
    assert said[0].startswith("Complaints about faults and log-in rose from 10% to 50% of complaints (+40.0 pp")


def test_jieba_start_up_is_quiet(capfd, caplog):
    themes.tokens("一个新的词典", {"x": ("从未见过的词",)})
    err = capfd.readouterr().err
    assert "Building prefix dict" not in err and "Loading model" not in err
    assert not [r for r in caplog.records if r.name == "jieba"]


def test_the_planted_rising_theme_is_found_on_the_demo():
    planted = json.loads((DEMO / "planted.json").read_text(encoding="utf-8"))["complaint_themes"]
    tickets = pd.read_csv(DEMO / "tickets.csv", dtype=str)
    dept = "客户服务部"
    table = themes.theme_table(
        themes.complaints(tickets, dept, "2025-07-01", "2025-09-30"),
        themes.complaints(tickets, dept, "2025-10-01", "2025-12-31"),
        themes.lexicon(),
    )
    rising = table[table["rising"]]
    assert [themes.theme_name(th, "zh") for th in rising["theme"]] == [planted["rising_theme"]]
    r = rising.iloc[0]
    shares = planted["share_of_complaints"]
    assert r["share_after"] == pytest.approx(shares[f"{dept} after"], abs=0.03)
    assert r["ci_low"] > 0.1 and r["p_holm"] < 0.001
    assert planted["product"] in r["example"]


def _context(drivers: pd.DataFrame, metric: str):
    from crmnb.analysis.diagnosis import Context

    goal = {"metric": metric, "name": "Repeat", "unit": "rate", "now": 0.5, "target": 0.6, "higher_is_better": True}
    empty = pd.DataFrame(columns=["stage", "conversion_rate", "dwell_alert", "top_loss_reasons"])
    return Context(
        pd.DataFrame({"metric": [], "value": []}),
        empty,
        {},
        pd.DataFrame(columns=["rule", "table", "rows"]),
        24,
        0.8,
        goal,
        drivers=drivers,
    ), goal


def test_service_findings_feed_the_diagnosis_of_a_retention_goal():
    from crmnb.analysis.diagnosis import find_problems

    before = pd.DataFrame({"note": ["快递一直没到"] * 18 + ["闪退了"] * 2})
    after = pd.DataFrame({"note": ["快递一直没到"] * 10 + ["新版本登录不了"] * 10})
    table = themes.theme_table(before, after, themes.lexicon())
    targets = pd.DataFrame(
        {
            "channel": ["phone", "social"],
            "priority": ["normal", "normal"],
            "tickets": [100, 40],
            "first_response_hours": [0.5, 9.0],
            "first_response_target": [1.0, 4.0],
            "first_response_within": [0.9, 0.2],
        }
    )
    outcomes = pd.DataFrame(columns=service.OUTCOME_COLUMNS)
    drivers = pd.DataFrame(columns=["kind", "segment", "n", "value", "rest_value", "gain", "share_of_gap"])
    for metric, expect in (("repeat_purchase_rate", True), ("lead_conversion_rate", False)):
        ctx, goal = _context(drivers, metric)
        more = service_problems.with_service(drivers, table, targets, outcomes, goal, "en")
        ctx, _ = _context(more, metric)
        problems = find_problems(ctx, "en").set_index("kind")
        assert ("rising_theme" in problems.index) is expect and ("service_targets" in problems.index) is expect
    assert list(problems.index) == ["goal_gap"]  # a sales goal: no service problem
    ctx, goal = _context(
        service_problems.with_service(drivers, table, targets, outcomes, {**goal, "metric": "csat"}, "en"), "csat"
    )
    p = find_problems(ctx, "en").set_index("kind")
    assert p.loc["rising_theme", "problem"] == "Complaints about faults and log-in are rising"
    assert bool(p.loc["rising_theme", "bears_on_goal"]) and "+40.0 pp" in p.loc["rising_theme", "evidence"]
    assert p.loc["service_targets", "problem"] == "social media tickets are answered too slowly"
    assert "20.0% of 40 social media tickets answered within the 4 h target" in p.loc["service_targets", "evidence"]


def test_case_file_service_settings_are_checked():
    with pytest.raises(ValueError, match="list no words"):
        ServiceSettings(themes={"安装": []})
    with pytest.raises(ValueError, match="more than 0 hours"):
        ServiceSettings(first_response_hours={"phone": 0})
    with pytest.raises(ValueError, match="extra"):
        ServiceSettings(first_respons_hours={"phone": 1})
