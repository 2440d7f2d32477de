"""The e-mail brief as a mail client gets it: sent to a real SMTP server on loopback, the received message parsed."""

from __future__ import annotations

import base64
import email
import io
import json
import re
from email import policy
from pathlib import Path

import nbformat
import pytest
from smtp_inbox import smtp_server

from crmnb.present.mail import build_message, send
from crmnb.present.mail_brief import mail_charts
from crmnb.present.report import brief_charts as report_brief_charts
from crmnb.present.report import kpi_tiles

SUMMARY = {
    "goal": {
        "metric": "lead_conversion_rate",
        "name": {"en": "Lead conversion rate", "zh": "线索转化率"},
        "unit": "rate",
        "baseline": 0.15,
        "target": 0.2,
        "deadline": "2026-06-30",
    },
    "before": 0.151875,
    "now": 0.20125,
    "verdict": "reached",
    "findings": {
        "en": [
            "Conversion rose 4.9 pp against the control.",
            "Response time fell by half.",
            "Most leads stop after first contact.",
        ],
        "zh": ["线索转化率比对照组高 4.9 个百分点。", "响应时长减半。", "首次联系后流失最多。"],
    },
    "actions": [
        {"measure": "Coach the stage weekly", "owner": "Sales 1 operations lead", "deadline": "2026-06-30"},
        {"measure": "Call every high-risk account within 48 h", "owner": "Service lead", "deadline": "2026-05-31"},
        {"measure": "Review overdue follow-ups", "owner": "Team leads", "deadline": "2026-04-30"},
        {"measure": "A fourth action the brief leaves out", "owner": "Nobody", "deadline": "2027-01-01"},
    ],
}


def _png(label: str) -> str:
    """Return a real PNG chart (base64, as a notebook stores it) whose pixels differ by label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    ax.plot([1, 2, 3], [len(label), 2, 1])
    ax.set_title(label)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _image_cell(source: str, label: str, tags: list[str] = ()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)})
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": _png(label), "text/plain": f"{label}. Line chart."})
    ]
    return cell


def make_case(folder: Path, lang: str, tagged: int = 2, **extra) -> Path:
    """Write a case folder as a run leaves it: report, workbook, run record, summary, step 5 and 7 notebooks."""
    (folder / "data" / "report").mkdir(parents=True)
    (folder / "notebooks").mkdir()
    title = "Lead conversion uplift"
    big = "<p>" + "detail " * 40_000 + "</p>"  # the full report is long: it must never be the body
    (folder / "report.html").write_text(
        f"<!DOCTYPE html><html lang='{'zh-CN' if lang == 'zh' else 'en'}'><head><title>{title}</title></head>"
        f"<body><img src='data:image/png;base64,AAAA'>{big}</body></html>",
        encoding="utf-8",
    )
    (folder / "tables.xlsx").write_bytes(b"PK\x03\x04 workbook bytes")
    (folder / "run.json").write_text(json.dumps({"title": title, "department": "销售一部"}), encoding="utf-8")
    summary = {**SUMMARY, "goal": {**SUMMARY["goal"], "name": SUMMARY["goal"]["name"][lang]}}
    summary["findings"] = SUMMARY["findings"][lang]
    (folder / "data" / "report" / "summary.json").write_text(json.dumps({**summary, **extra}), encoding="utf-8")
    five = nbformat.v4.new_notebook(cells=[_image_cell("bars(tiers)", f"tagged {i}", ["brief"]) for i in range(tagged)])
    seven = nbformat.v4.new_notebook(
        cells=[_image_cell("forecast()", "Forecast"), _image_cell("trend(case.goal.metric)", "Goal by month")]
    )
    nbformat.write(five, folder / "notebooks" / "05_case_deep_dive.ipynb")
    nbformat.write(seven, folder / "notebooks" / "07_report_and_iteration.ipynb")
    return folder / "report.html"


def receive(msg) -> email.message.EmailMessage:
    """Send the message to a real SMTP server on loopback and return the message it received, parsed."""
    with smtp_server() as smtp:
        send(msg, smtp.host, smtp.port)
        smtp.inbox.wait_for(1)
    inbox = smtp.inbox
    assert len(inbox.messages) == 1
    return email.message_from_bytes(inbox.messages[0].content, policy=policy.default)


@pytest.mark.parametrize(
    ("lang", "verdict", "now_label", "attached_word"),
    [("en", "Target reached", "Now", "Attached"), ("zh", "已达成目标", "当前", "附件")],
)
def test_received_brief_survives_a_mail_client(tmp_path, lang, verdict, now_label, attached_word):
    report = make_case(tmp_path / "lead_conversion_uplift", lang)
    got = receive(build_message(report, ["manager@example.com"], "crm@example.com"))

    assert got["Subject"].startswith("Lead conversion uplift") and verdict in got["Subject"]
    assert "20.1%" in got["Subject"] and "20.0%" in got["Subject"]

    html_part = got.get_body(("html",))
    html = html_part.get_content()
    assert len(html.encode("utf-8")) < 100_000
    assert "data:" not in html and "detail detail" not in html  # the brief alone, no embedded image
    assert f'lang="{"zh-CN" if lang == "zh" else "en"}"' in html
    assert verdict in html and now_label in html and "20.1%" in html and "15.2%" in html
    for finding in SUMMARY["findings"][lang]:
        assert finding in html
    assert "Call every high-risk account within 48 h" in html and "Service lead" in html and "2026-05-31" in html
    assert "A fourth action" not in html

    # every cid: in the HTML resolves to an image part of the same multipart/related
    cids = re.findall(r"""src=["']cid:([^"']+)["']""", html)
    assert len(cids) == 2
    related = next(p for p in got.walk() if p.get_content_type() == "multipart/related")
    images = {p["Content-ID"].strip("<>"): p for p in related.iter_parts() if p.get_content_maintype() == "image"}
    assert set(cids) == set(images)
    assert all(p.get_content()[:8] == b"\x89PNG\r\n\x1a\n" for p in images.values())

    # the style is inlined into the elements; only the phone-width rule stays in <style>
    assert re.search(r"<td[^>]*class=\"tile\"[^>]*style=\"[^\"]*background", html)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    assert all(s.strip().startswith("@media") for s in styles)

    attached = {a.get_filename(): a for a in got.iter_attachments()}
    assert set(attached) == {"lead_conversion_uplift_report.html", "lead_conversion_uplift_tables.xlsx"}
    assert attached["lead_conversion_uplift_report.html"].get_content() == report.read_text(encoding="utf-8")
    assert attached["lead_conversion_uplift_tables.xlsx"].get_content() == (report.parent / "tables.xlsx").read_bytes()

    text = got.get_body(("plain",)).get_content()
    assert verdict in text and SUMMARY["findings"][lang][2] in text and "Team leads" in text
    assert attached_word in text and "report.html" in text and "tables.xlsx" in text
    assert "<" not in text and "detail" not in text
    if lang == "en":
        assert max(len(line) for line in text.splitlines()) <= 72


def test_summary_headline_interval_and_month_are_used_when_given(tmp_path):
    """The summary's newer keys (headline, verdict text, interval, month, baseline note) replace the fallbacks."""
    report = make_case(
        tmp_path / "case",
        "en",
        headline="within the margin of error, 20.1% vs target 20%",
        verdict_text="Within the margin of error",
        interval=[0.182, 0.221],
        latest_month={"month": "2025-12", "value": 0.181, "n": 530},
        windows={"before": ["2025-07-01", "2025-09-30"], "after": ["2025-10-01", "2025-12-31"]},
        baseline_note="July to September",
    )
    got = email.message_from_bytes(
        build_message(report, ["a@example.com"], "x@example.com").as_bytes(), policy=policy.default
    )
    # a long subject is folded after "Subject:"; unfolding leaves the fold's space, which clients drop
    assert got["Subject"].strip() == "Lead conversion uplift: within the margin of error, 20.1% vs target 20%"
    html = got.get_body(("html",)).get_content()
    tiles = kpi_tiles(json.loads((report.parent / "data/report/summary.json").read_text("utf-8")), "en")
    said = ("Within the margin of error", "95% CI 18.2–22.1%", "December alone: 18.1%", "July to September")
    for text in (*said, "2025-10-01 – 2025-12-31"):
        assert text in html
    assert [line for tile in tiles for line in tile["lines"] if line not in html] == []  # the report's tiles
    assert "95% CI 18.2–22.1%" in got.get_body(("plain",)).get_content()


def test_charts_are_the_cells_the_report_shows_in_its_brief(tmp_path):
    three = make_case(tmp_path / "three", "en", tagged=3).parent / "notebooks"
    assert [c.alt for c in mail_charts(three, "en")] == ["tagged 0. Line chart.", "tagged 1. Line chart."]
    report_alts = [c["alt"] for c in report_brief_charts(sorted(three.glob("*.ipynb")), "en")]
    assert [c.alt for c in mail_charts(three, "en")] == report_alts  # one choice for the report and the e-mail
    untagged = make_case(tmp_path / "none", "en", tagged=0).parent / "notebooks"
    assert mail_charts(untagged, "en") == []  # as the report's brief: no tagged cell, no chart
    assert mail_charts(tmp_path / "nowhere", "en") == []


def test_no_summary_says_to_run_the_case(tmp_path):
    from crmnb.errors import CrmnbError

    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "report.html").write_text("<html><title>x</title></html>", encoding="utf-8")
    with pytest.raises(CrmnbError, match=r"no summary at .*summary\.json: run the case"):
        build_message(folder / "report.html", ["a@example.com"], "x@example.com")


def test_demo_briefs_in_both_languages(demo_reports):
    """The demo cases' real messages: small HTML, cid charts, the verdict in the subject."""
    for lang, report in demo_reports.items():
        msg = build_message(report, ["m@example.com"], "x@example.com")
        got = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
        html = got.get_body(("html",)).get_content()
        assert len(html.encode("utf-8")) < 100_000 and "data:" not in html
        assert "cid:" in html
        verdict = json.loads((report.parent / "data" / "report" / "summary.json").read_text(encoding="utf-8"))
        from crmnb.present.words import t

        word = verdict.get("verdict_text") or t(f"report.{verdict['verdict']}", lang)
        assert word in got["Subject"] or verdict.get("headline", "\0") in got["Subject"]
        names = {a.get_filename().split("_")[-1] for a in got.iter_attachments()}
        assert {"report.html", "tables.xlsx"} <= names
