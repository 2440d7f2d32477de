"""The run history and why a goal KPI changed: records kept per run, listed, compared source by source."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from crmnb.analysis.why_changed import attribute, goal_units, restrict
from crmnb.present.since_block import attribution_line, runs_chart, since_lines
from crmnb.run.history import RECORD, history_table, keep_run, list_runs, previous_run

DEPT = "销售一部"
OPTS = {"conversion_window_days": 10}


def _tables(n_old: int, won_old: int, lost_again: int, n_new: int, won_new: int) -> dict[str, pd.DataFrame]:
    """Return leads and deals: ``n_old`` leads from 2025-10-01 (``won_old`` won, the first ``lost_again`` of them
    restated as lost), ``n_new`` leads from 2026-01-01 (``won_new`` won); leads elsewhere mark the data's ends."""
    t0, t1 = pd.Timestamp("2025-10-01 09:00"), pd.Timestamp("2026-01-01 09:00")
    created = [t0 + pd.Timedelta(hours=12 * i) for i in range(n_old)]
    created += [t1 + pd.Timedelta(hours=12 * i) for i in range(n_new)]
    ends = ["2025-12-31 12:00", *(["2026-02-28 12:00"] if n_new else [])]
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(len(created))] + [f"LX{i}" for i in range(len(ends))],
            "created_at": pd.to_datetime([*created, *ends]),
            "first_contact_at": pd.NaT,
            "department": [DEPT] * len(created) + ["other"] * len(ends),
            "owner_rep": "rep",
            "customer_id": [f"C{i}" for i in range(len(created))] + ["CX"] * len(ends),
        }
    )
    won = [*range(won_old), *range(n_old, n_old + won_new)]
    opps = pd.DataFrame(
        {
            "opportunity_id": [f"O{i}" for i in won],
            "lead_id": [f"L{i}" for i in won],
            "status": ["lost" if i < lost_again else "won" for i in won],
            "created_at": [created[i] + pd.Timedelta(days=1) for i in won],
            "closed_at": [created[i] + pd.Timedelta(days=5) for i in won],
            "department": DEPT,
            "owner_rep": "rep",
            "customer_id": [f"C{i}" for i in won],
        }
    )
    return {"leads": leads, "opportunities": opps}


def test_restrict_leaves_out_rows_dated_after_the_day():
    t = _tables(4, 2, 0, 3, 1)
    kept = restrict(t, "2025-12-31")
    assert len(kept["leads"]) == 5 and len(kept["opportunities"]) == 2


def test_attribution_splits_new_data_from_restated_history():
    old_t, new_t = _tables(100, 20, 0, 0, 0), _tables(100, 20, 5, 50, 25)
    old_window, new_window = ("2025-10-01", "2025-11-30"), ("2025-10-01", "2026-01-31")
    units = goal_units(old_t, "lead_conversion_rate", old_window, DEPT, OPTS)
    assert len(units) == 100 and units["value"].sum() == 20
    assert not units["key"].str.contains("C1").any()  # the customer id is hashed, not kept
    old = {"window": old_window, "opts": OPTS, "now": 0.20, "data_end": "2025-12-31", "units": units}
    new = {"metric": "lead_conversion_rate", "department": DEPT, "window": new_window, "opts": OPTS}
    att = attribute(old, new_t, new, code_changed=False)
    parts = {p["source"]: p for p in att["parts"]}
    assert att["to"] == pytest.approx((15 + 25) / 150)
    assert parts["restated"]["delta"] == pytest.approx(0.15 - 0.20)
    assert parts["restated"]["n"] == 5 and parts["restated"]["months"] == ["2025-10"]
    assert parts["new_data"]["delta"] == pytest.approx(40 / 150 - 0.15)
    assert parts["new_data"]["n"] == 50
    assert set(parts) == {"new_data", "restated"}  # neither the period's data nor the thresholds moved it
    assert sum(p["delta"] for p in att["parts"]) == pytest.approx(att["to"] - 0.20)
    line = attribution_line(att, "Lead conversion rate", "rate", "en")
    assert line == (
        "Why it moved: Lead conversion rate 20.0% → 26.7%: +11.7 pp from new data (50 more records counted, "
        "with rows dated after 2025-12-31); -5.0 pp from 5 restated records of the earlier span (2025-10)."
    )
    assert "5 条被修改的记录" in attribution_line(att, "线索转化率", "rate", "zh")


def test_changed_code_is_not_mixed_silently_into_restated_history():
    old_t, new_t = _tables(100, 20, 0, 0, 0), _tables(100, 20, 5, 0, 0)
    window = ("2025-10-01", "2025-11-30")
    units = goal_units(old_t, "lead_conversion_rate", window, DEPT, OPTS)
    old = {"window": window, "opts": OPTS, "now": 0.20, "data_end": "2025-12-31", "units": units}
    new = {"metric": "lead_conversion_rate", "department": DEPT, "window": window, "opts": OPTS}
    (part,) = attribute(old, new_t, new, code_changed=True)["parts"]
    assert part["source"] == "restated_or_code" and part["n"] == 5


def test_thresholds_changed_are_their_own_source():
    t = _tables(100, 20, 0, 0, 0)
    window = ("2025-10-01", "2025-11-30")
    units = goal_units(t, "lead_conversion_rate", window, DEPT, OPTS)
    old = {"window": window, "opts": OPTS, "now": 0.20, "data_end": "2025-12-31", "units": units}
    new = {
        "metric": "lead_conversion_rate",
        "department": DEPT,
        "window": window,
        "opts": {"conversion_window_days": 3},
    }
    (part,) = attribute(old, t, new, code_changed=False)["parts"]
    assert part["source"] == "thresholds" and part["delta"] == pytest.approx(-0.20)  # won after 5 days: none in 3


def _run_folder(tmp: Path, started: str, now: float, verdict: str, status: str = "ok") -> dict:
    """Write a case folder's hand-offs as a finished run leaves them; return its run record."""
    folder = tmp / "case"
    (folder / "data" / "report").mkdir(parents=True, exist_ok=True)
    summary = {"goal": {"metric": "lead_conversion_rate", "unit": "rate", "name": "Lead conversion rate",
                        "target": 0.2}, "now": now, "interval": [now - 0.02, now + 0.02], "verdict": verdict}  # fmt: skip
    (folder / "data" / "report" / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (folder / "report.html").write_text(f"<p>{now}</p>", encoding="utf-8")
    return {"case_id": "case", "started": started, "status": status, "goal": summary["goal"], "seconds": 3.0}


def test_each_run_keeps_a_record_without_data_and_is_listed(tmp_path):
    folder = tmp_path / "case"
    keep_run(folder, _run_folder(tmp_path, "2026-01-05T09:00:00+00:00", 0.18, "not_reached"))
    keep_run(folder, _run_folder(tmp_path, "2026-04-05T09:00:00+00:00", 0.21, "reached"))
    keep_run(folder, {**_run_folder(tmp_path, "2026-05-05T09:00:00+00:00", 0.0, ""), "status": "failed",
                      "reason": "DataError: table 'leads': file not found"})  # fmt: skip
    runs = list_runs(folder)
    assert [r["status"] for r in runs] == ["ok", "ok", "failed"]
    assert runs[1]["now"] == 0.21 and runs[1]["interval"] == [0.19, 0.21 + 0.02]
    assert (Path(runs[1]["_dir"]) / "report.html").read_text(encoding="utf-8") == "<p>0.21</p>"
    assert sorted(p.name for p in Path(runs[0]["_dir"]).iterdir()) == ["record.json", "report.html"]
    assert previous_run(folder, "2026-04-05T09:00:00+00:00")["now"] == 0.18
    assert previous_run(folder, None)["now"] == 0.21  # a failed run is never compared with
    table = history_table(folder).splitlines()
    assert len(table) == 4 and "21.0% (19.0%–23.0%)" in table[2] and "+3.0 pp" in table[2]
    assert "failed: DataError: table 'leads'" in table[3]
    assert json.loads((Path(runs[0]["_dir"]) / RECORD).read_text(encoding="utf-8"))["verdict"] == "not_reached"


def test_since_block_says_what_moved_and_whether_the_verdict_changed():
    summary = {"goal": {"metric": "lead_conversion_rate", "name": "Lead conversion rate", "unit": "rate"}}
    since = {
        "previous": {"started": "2026-01-05T09:00:00+00:00", "now": 0.201, "verdict": "on_track"},
        "now": 0.194,
        "verdict": "not_reached",
        "verdict_changed": True,
        "kpis": [{"metric": "lead_response_hours", "was": 19.0, "now": 17.5}],
        "problems_new": ["Leads never contacted"],
        "settings_changed": ["thresholds.conversion_window_days"],
        "code_changed": False,
        "attribution": None,
    }
    lines = since_lines(since, summary, "en")
    assert lines[0] == "Lead conversion rate: 20.1% at the run of 2026-01-05 09:00 → 19.4% now (-0.7 pp)."
    assert lines[1] == "Verdict changed: Within the margin of error → Target not reached."
    assert "Lead response time (hours): 19.0 h → 17.5 h." in lines
    assert any("proposed as new actions" in line and "Leads never contacted" in line for line in lines)
    assert lines[-1] == "Changed since: thresholds.conversion_window_days."
    assert since_lines(since, summary, "zh")[1] == "结论变化：在误差范围内 → 未达成目标。"


def test_runs_chart_draws_every_run_and_the_target():
    pts = [
        {"now": 0.18, "interval": [0.16, 0.2], "label": "01-05"},
        {"now": 0.21, "interval": None, "label": "this run"},
    ]
    svg = str(runs_chart(pts, "rate", 0.2, "en"))
    assert svg.count("<circle") == 2 and "class='target'" in svg and "01-05: 18.0%" in svg
    assert runs_chart(pts[:1], "rate", 0.2, "en") is None
