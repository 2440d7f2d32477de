"""E-mail: the brief as HTML body with the report and workbook attached, over a real SMTP server on loopback."""

from __future__ import annotations

import email
import json
from email import policy

import pytest
from smtp_inbox import smtp_server

from crmnb.errors import CrmnbError
from crmnb.present.mail import build_message, send, write_eml


@pytest.fixture
def report(tmp_path):
    folder = tmp_path / "case_x"
    folder.mkdir()
    (folder / "report.html").write_text(
        "<!DOCTYPE html><html><head><title>Lead conversion uplift</title><style>p{}</style></head>"
        "<body><h2>Executive summary</h2><p>Verdict: Target reached &amp; more</p></body></html>",
        encoding="utf-8",
    )
    (folder / "tables.xlsx").write_bytes(b"PK\x03\x04 not really a workbook, but bytes to carry")
    (folder / "data" / "report").mkdir(parents=True)
    summary = {
        "goal": {
            "name": "Lead conversion rate",
            "unit": "rate",
            "baseline": 0.15,
            "target": 0.2,
            "deadline": "2026-06-30",
        },
        "before": 0.15,
        "now": 0.21,
        "verdict": "reached",
        "findings": ["Target reached & more"],
        "actions": [],
    }
    (folder / "data" / "report" / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return folder / "report.html"


def test_report_is_received_with_its_workbook(report):
    with smtp_server() as smtp:
        msg = build_message(report, ["manager@example.com"], "crm-analytics@example.com")
        send(msg, smtp.host, smtp.port)
        smtp.inbox.wait_for(1)
    inbox = smtp.inbox
    assert len(inbox.messages) == 1
    env = inbox.messages[0]
    assert env.rcpt_tos == ["manager@example.com"]
    got = email.message_from_bytes(env.content, policy=policy.default)
    assert got["Subject"] == "Lead conversion uplift: Target reached, 21.0% vs target 20.0%"
    html = got.get_body(("html",)).get_content()
    assert "Main findings" in html and "Target reached &amp; more" in html
    assert "1. Target reached & more" in got.get_body(("plain",)).get_content()
    attachments = list(got.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["case_x_report.html", "case_x_tables.xlsx"]
    assert attachments[1].get_content() == (report.parent / "tables.xlsx").read_bytes()


def test_eml_file_opens_as_the_same_message(report, tmp_path):
    path = write_eml(
        build_message(report, ["a@example.com", "b@example.com"], "x@example.com", subject="Q4"), tmp_path / "out.eml"
    )
    got = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert got["To"] == "a@example.com, b@example.com" and got["Subject"] == "Q4"
    assert len(list(got.iter_attachments())) == 2


def test_errors_name_the_problem(report, tmp_path):
    with pytest.raises(CrmnbError, match="report not found"):
        build_message(tmp_path / "nope" / "report.html", ["a@example.com"], "x@example.com")
    with pytest.raises(CrmnbError, match="no recipient"):
        build_message(report, [], "x@example.com")
    msg = build_message(report, ["a@example.com"], "x@example.com")
    with pytest.raises(CrmnbError, match=r"could not send through SMTP server 127\.0\.0\.1:1"):
        send(msg, "127.0.0.1", 1, timeout=2)


def test_email_command_writes_an_eml(report, tmp_path, capsys):
    from crmnb.cli import main

    out = tmp_path / "case.eml"
    assert main(["email", str(report), "--to", "m@example.com", "--eml", str(out)]) == 0
    got = email.message_from_bytes(out.read_bytes(), policy=policy.default)
    assert got["To"] == "m@example.com" and len(list(got.iter_attachments())) == 2
    assert main(["email", str(tmp_path / "missing.html"), "--to", "m@example.com", "--eml", str(out)]) == 2
    assert "report not found" in capsys.readouterr().err


def test_every_output_beside_the_report_is_attached(report, monkeypatch):
    """The attachments come from the output registries: a new format is attached without a change here."""
    import dataclasses

    from crmnb.present import outputs

    extra = dataclasses.replace(outputs.OUTPUTS["tables.xlsx"], name="plan.csv", key="csv", media_type="text/csv")
    monkeypatch.setattr(outputs, "ON_REQUEST", {**outputs.ON_REQUEST, "plan.csv": extra})
    (report.parent / "report.pdf").write_bytes(b"%PDF-1.4 a report to print")
    (report.parent / "plan.csv").write_text("action,owner\n", encoding="utf-8")
    got = email.message_from_bytes(
        build_message(report, ["a@example.com"], "x@example.com").as_bytes(), policy=policy.default
    )
    attached = {a.get_filename(): a.get_content_type() for a in got.iter_attachments()}
    assert attached == {
        "case_x_report.html": "text/html",
        "case_x_tables.xlsx": outputs.XLSX,
        "case_x_report.pdf": "application/pdf",
        "case_x_plan.csv": "text/csv",
    }
    only = build_message(report, ["a@example.com"], "x@example.com", attachments=[])
    assert not list(only.iter_attachments())
