"""The brief a case's e-mail carries: built from step 7's summary hand-off, as HTML (CSS inlined) and plain text.

The body is the brief alone: the goal as four tiles (baseline, now with its interval, target, verdict),
three findings, three actions with owner and date, and at most two charts, sent as ``cid:`` image parts
(the common clients block ``data:`` images). The full report and the workbook are attachments.
"""

from __future__ import annotations

import base64
import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import css_inline
from markupsafe import Markup

from crmnb.errors import CrmnbError
from crmnb.present.report import VERDICT_CLASS, brief_charts, kpi_tiles, verdict_label
from crmnb.present.templates import html_lang, render
from crmnb.present.words import department, fmt_value, has, t

MAX_CHARTS = 2
"""The brief shows at most this many charts."""


@dataclass(frozen=True)
class Chart:
    """One chart of the brief: its PNG bytes, its content id (without brackets) and its text alternative."""

    png: bytes
    cid: str
    alt: str


@dataclass
class Brief:
    """What the e-mail says, in the case's language."""

    lang: str
    title: str
    headline: str
    verdict_class: str
    tiles: list[dict]
    findings: list[str]
    actions: list[dict]
    verdict_text: str = ""
    baseline_note: str = ""
    meta: str = ""
    attached: str = ""
    files: list[str] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)

    @property
    def subject(self) -> str:
        """Return the subject: the title and the headline, which carries the verdict."""
        return t("mail.subject", self.lang, title=self.title, headline=self.headline)

    @property
    def html_lang(self) -> str:
        """Return the page's ``lang`` attribute."""
        return html_lang(self.lang)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def report_language(report: Path) -> str:
    """Return the report's language from its ``<html lang>`` (zh-CN is zh; anything else en)."""
    head = Path(report).read_text(encoding="utf-8")[:2000]
    m = re.search(r"<html[^>]*\blang=['\"]?([A-Za-z-]+)", head)
    return "zh" if m and m.group(1).lower().startswith("zh") else "en"


def _title(report: Path, run: dict) -> str:
    if run.get("title"):
        return str(run["title"])
    m = re.search(r"<title>(.*?)</title>", report.read_text(encoding="utf-8")[:5000], re.S)
    return m.group(1).strip() if m else report.parent.name


def make_brief(report: Path, files: list[str]) -> Brief:
    """Return the brief of the case whose report is ``report``, from the summary hand-off beside it.

    ``files`` are the names of the attached outputs, named in the brief's last line.
    """
    folder = Path(report).parent
    path = folder / "data" / "report" / "summary.json"
    summary = _read_json(path)
    if not summary.get("goal"):
        raise CrmnbError(f"no summary at {path}: run the case (crmnb run parameters/<case>.yaml) before e-mailing it")
    run = _read_json(folder / "run.json")
    lang = report_language(report)
    goal, verdict = summary["goal"], summary["verdict"]
    unit = goal["unit"]
    verdict_text = summary.get("verdict_text") or verdict_label(verdict, lang)
    headline = summary.get("headline") or t(
        "mail.headline",
        lang,
        verdict=verdict_text,
        now=fmt_value(summary["now"], unit),
        target=fmt_value(goal["target"], unit),
    )
    css = VERDICT_CLASS.get(verdict, "warn")
    goal_line = f"{goal['name']} {fmt_value(goal['baseline'], unit)} → {fmt_value(goal['target'], unit)}"
    meta = t("mail.meta", lang, department=department(str(run.get("department", "–")), lang), goal=goal_line)
    names = [t(f"mail.file.{name}", lang) if has(f"mail.file.{name}") else name for name in files]
    return Brief(
        lang=lang,
        title=_title(Path(report), run),
        headline=headline,
        verdict_class=css,
        tiles=kpi_tiles(summary, lang),
        verdict_text=verdict_text,
        baseline_note=summary.get("baseline_note") or "",
        findings=[str(f) for f in summary.get("findings", [])[:3]],
        actions=[
            {k: str(a.get(k, "")) for k in ("measure", "owner", "deadline")} for a in summary.get("actions", [])[:3]
        ],
        meta=meta,
        attached=t("mail.attached", lang, files=t("mail.list_sep", lang).join(names)) if names else "",
        files=list(files),
        charts=mail_charts(folder / "notebooks", lang),
    )


def mail_charts(notebooks: Path, lang: str) -> list[Chart]:
    """Return the brief's charts as image parts: the report's own choice (:func:`crmnb.present.report.brief_charts`)."""
    paths = sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb"))
    return [
        Chart(base64.b64decode(c["png"]), f"chart{i + 1}.brief@crmnb", c["alt"] or "chart")
        for i, c in enumerate(brief_charts(paths, lang, MAX_CHARTS))
    ]


def brief_html(brief: Brief) -> str:
    """Return the brief as one HTML page with its style inlined into the elements (css-inline).

    Only the phone-width rule stays in ``<style>``: a rule for a screen width cannot be inlined.
    """
    page = render("mail.html.j2", lang=brief.lang, t=t, brief=brief, css=Markup(render("mail.css")))
    return css_inline.CSSInliner(keep_at_rules=True).inline(page)


def brief_text(brief: Brief, width: int = 72) -> str:
    """Return the brief as plain text: the same content, wrapped at ``width``, the attachments named."""
    lang = brief.lang
    columns = width // 2 if lang == "zh" else width  # a Chinese character takes two columns

    def para(text: str, indent: str = "") -> str:
        return textwrap.fill(text, columns, initial_indent=indent, subsequent_indent=" " * len(indent))

    lines = [brief.title, "=" * min(width, max(len(brief.title), 8)), "", para(brief.headline), ""]
    if brief.meta:
        lines += [para(brief.meta), ""]
    for tile in brief.tiles:
        note = t("mail.paren", lang, text=" · ".join(tile["lines"])) if tile["lines"] else ""
        lines.append(para(t("mail.pair", lang, label=tile["label"], value=tile["value"]) + note, "  "))
    lines += [""] + [para(s) for s in (brief.verdict_text, brief.baseline_note) if s]
    lines += ["", t("report.findings", lang), "-" * 8]
    lines += [para(f, f"{i}. ") for i, f in enumerate(brief.findings, 1)]
    lines += ["", t("report.actions", lang), "-" * 8]
    for i, a in enumerate(brief.actions, 1):
        due = t("mail.owner_due", lang, owner=a["owner"], deadline=a["deadline"])
        lines.append(para(a["measure"] + t("mail.paren", lang, text=due), f"{i}. "))
    if brief.charts:
        names = t("mail.list_sep", lang).join(re.split(r"\. |。", c.alt)[0] for c in brief.charts)
        lines += ["", para(t("mail.chart_note", lang, names=names))]
    if brief.attached:
        lines += ["", para(brief.attached)]
    return "\n".join(lines) + "\n"
