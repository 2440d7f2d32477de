"""The loop end to end: run a demo case, edit its ledger, run it on the later extract when it is due, read
the scores, the attribution and the alert mail, as a department does."""

from __future__ import annotations

import email
import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from datetime import date
from email import policy
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml
from openpyxl import load_workbook
from smtp_inbox import smtp_server

from crmnb.cli import main
from crmnb.demo.generator import generate
from crmnb.demo.later import extend
from crmnb.run.due import review_state
from crmnb.run.history import list_runs

ROOT = Path(__file__).resolve().parents[1]
CASE = "lead_conversion_uplift"
pytestmark = pytest.mark.e2e


def _cli(*args) -> SimpleNamespace:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([str(a) for a in args])
    return SimpleNamespace(rc=rc, out=out.getvalue(), err=err.getvalue())


@pytest.fixture(scope="module")
def smtp():
    with smtp_server() as server:
        yield server


def _set(path: Path, **changes) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        *head, last = key.split(".")
        d = raw
        for h in head:
            d = d.setdefault(h, {})
        d[last] = value
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def loop(tmp_path_factory, smtp) -> SimpleNamespace:
    """Two runs of the lead case: the first extract, then (the ledger edited, the case due) the later one."""
    tmp = tmp_path_factory.mktemp("loop")
    generate(tmp / "data" / "first", scale=0.3, seed=7)
    later_data = shutil.copytree(tmp / "data" / "first", tmp / "data" / "later")
    planted = extend(later_data, seed=7)
    params = shutil.copytree(ROOT / "parameters", tmp / "parameters")
    for f in params.glob("*.actions.yaml"):
        f.unlink()
    case = params / f"{CASE}.yaml"
    (params / "repeat_purchase_optimisation.yaml").unlink()
    _set(case, data={"dir": str(tmp / "data" / "first")}, review_every="3 months")
    out = tmp / "outputs"
    first = _cli("batch", params, "--due", "--output-root", out)
    # the analyst starts two actions on 1 April and leaves one planned past its due date
    ledger_file = params / f"{CASE}.actions.yaml"
    ledger = yaml.safe_load(ledger_file.read_text(encoding="utf-8"))
    for a in ledger["actions"]:
        if a["kind"] in ("uncontacted", "slow_response"):
            a.update(start=planted["actions"]["start"], status="in progress")
        elif a["kind"] == "weak_stage":
            a.update(due="2026-05-31", note="coaching not booked yet")
    ledger_file.write_text(yaml.safe_dump(ledger, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _set(case, **{"data.dir": str(later_data), "period.end": "2026-06-30"})
    not_due = _cli("batch", params, "--due", "--output-root", out)
    # three months and more pass: the last run's record says so
    (rec_file,) = (out / CASE / "runs").glob("*/record.json")
    rec = json.loads(rec_file.read_text(encoding="utf-8"))
    rec["finished"] = rec["started"] = "2026-01-05T09:00:00+08:00"
    rec_file.write_text(json.dumps(rec), encoding="utf-8")
    second = _cli("batch", params, "--due", "--output-root", out, "--mail-on", "alert",
                  "--to", "manager@example.com", "--smtp", smtp.address)  # fmt: skip
    smtp.inbox.wait_for(1)
    return SimpleNamespace(first=first, not_due=not_due, second=second, out=out, case=case, planted=planted,
                           ledger=ledger_file, later=later_data, smtp=smtp)  # fmt: skip


def test_each_run_leaves_a_record_and_history_lists_them(loop):
    assert loop.first.rc == 0 and loop.second.rc == 0, loop.first.err + loop.second.err
    runs = list_runs(loop.out / CASE)
    assert [r["status"] for r in runs] == ["ok", "ok"]
    assert all((Path(r["_dir"]) / "report.html").is_file() for r in runs)
    res = _cli("history", loop.case, "--output-root", loop.out)
    assert res.rc == 0 and len(res.out.splitlines()) == 3 and " pp " in res.out.splitlines()[2] + " "


def test_a_case_not_due_is_not_run(loop):
    assert "not due (next review " in loop.not_due.err and "0 cases" in loop.not_due.out


def test_the_second_report_says_what_changed_and_why(loop):
    since = list_runs(loop.out / CASE)[-1]["since_last_run"]
    parts = {p["source"]: p for p in since["attribution"]["parts"]}
    leads = pd.read_csv(loop.later / "leads.csv", dtype=str)
    opps = pd.read_csv(loop.later / "opportunities.csv", dtype=str)
    restated = opps[opps["opportunity_id"].isin(loop.planted["restated"]["opportunities"])]
    others = opps[opps["lead_id"].isin(restated["lead_id"]) & (opps["status"] == "won")]
    hit = set(restated["lead_id"]) - set(others["lead_id"])  # leads with no other won deal lose their conversion
    assert parts["restated"]["n"] == len(hit) > 0 and parts["restated"]["months"] == ["2025-11"]
    assert parts["restated"]["delta"] < 0 and "new_data" in parts and "code" not in parts
    n_old = leads["created_at"].between("2025-10-01", "2025-12-31 23:59:59") & (leads["department"] == "销售一部")
    assert parts["restated"]["delta"] == pytest.approx(-len(hit) / n_old.sum(), abs=0.002)
    html = (loop.out / CASE / "report.html").read_text(encoding="utf-8")
    assert "Since the last run" in html and f"from {len(hit)} restated records of the earlier span (2025-11)" in html
    assert "class='runs-chart'" in html


def test_the_ledger_survives_and_its_actions_are_scored(loop):
    assert "coaching not booked yet" in loop.ledger.read_text(encoding="utf-8")
    tr = pd.read_parquet(loop.out / CASE / "data" / "report" / "tracking.parquet").set_index("kpi")
    assert tr.loc["uncontacted_share", "verdict_key"] == "working"
    assert tr.loc["lead_response_hours", "verdict_key"] != "working"
    assert (
        tr.loc["uncontacted_share", "ci_high"] < 0
        and "against the control" in tr.loc["uncontacted_share", "metric_change"]
    )
    assert (tr["overdue"] == "overdue").sum() >= 1
    sheet = load_workbook(loop.out / CASE / "tables.xlsx")["Action tracking"]
    head = [c.value for c in sheet[1]]
    rows = [dict(zip(head, [c.value for c in r])) for r in sheet.iter_rows(min_row=2)]
    assert {"Verdict", "Metric change", "Next-iteration advice", "Started"} <= set(head)
    assert any(r["Verdict"] == "working" and r["Completion"] == "in progress" for r in rows)


def test_an_alert_mails_the_report_with_its_reasons(loop):
    assert "mailed to manager@example.com" in loop.second.out
    (env,) = loop.smtp.inbox.messages
    got = email.message_from_bytes(env.content, policy=policy.default)
    assert got["Subject"].startswith(f"crmnb alert: {CASE}: ") and "turned overdue" in got["Subject"]
    assert "Main findings" in got.get_body(("html",)).get_content()
    assert [a.get_filename() for a in got.iter_attachments()][0] == f"{CASE}_report.html"


def test_review_state_of_a_case(tmp_path):
    assert review_state(tmp_path / "none", "3 months")["due"]  # never run: due
    folder = tmp_path / "case" / "runs" / "r1"
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps({"status": "ok", "started": "2026-01-05T09:00:00"}), "utf-8")
    s = review_state(tmp_path / "case", "3 months", today=date(2026, 4, 15))
    assert s["due"] and s["next"] == "2026-04-05" and s["overdue_days"] == 10
    assert not review_state(tmp_path / "case", "3 months", today=date(2026, 4, 4))["due"]
    assert not review_state(tmp_path / "case", None, today=date(2027, 1, 1))["due"]
