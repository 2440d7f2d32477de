"""The stakeholder report: one self-contained HTML page from the executed notebooks and step 7's summary."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import nbformat
import pandas as pd
from markupsafe import Markup
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from crmnb.handoffs import Workspace
from crmnb.params.model import CaseParams
from crmnb.present.fonts import CJK_FAMILY, FONT_STACK, cjk_font_face
from crmnb.present.summary import latest_sentence, span
from crmnb.present.templates import html_lang, render
from crmnb.present.words import department, fmt_value, has, step_title, t

HIDE_TAGS = {"analyst-only", "parameters", "injected-parameters", "remove"}
"""Cells tagged so stay out of the report (``remove``: said elsewhere in the report, e.g. the brief)."""

WORKBOOK_TAG = "workbook-only"
"""Cells tagged so (model diagnostics, long lists) leave the report for one line pointing to the notebook."""

BRIEF_TAG = "brief"
"""Cells tagged so carry the goal: their charts open the report (at most :data:`BRIEF_CHARTS`) and the e-mail."""

BRIEF_CHARTS = 2


VERDICT_CLASS = {"reached": "ok", "on_track": "warn", "not_reached": "bad", "wrong_way": "bad", "not_measured": "warn"}
"""The summary's verdict (crmnb.analysis.verdict.VERDICTS), by the style of its tile: reached in green, within
the margin of error or not measured in amber, not reached or moving the wrong way in red."""


def stylesheet() -> str:
    """Return the report's style sheet (templates/report.css), its font stacks filled in."""
    return render("report.css", font_stack=FONT_STACK, cjk_family=CJK_FAMILY)


CSS = stylesheet()
"""The report's style sheet as inlined in every report."""


# --------------------------------------------------------------------------- HTML
def _md(source: str) -> str:
    out = markdown2html_mistune(source)
    return re.sub(r"<a class=.anchor-link.[^>]*>.*?</a>", "", out)


def _drop_first_heading(source: str) -> str:
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()


def render_output(out: dict) -> str:
    """Return the HTML of one notebook output; streams, errors and widgets are left out."""
    if out.get("output_type") not in ("display_data", "execute_result"):
        return ""
    data = out.get("data", {})
    if "image/png" in data:
        alt = html.escape(str(data.get("text/plain", "chart")).strip(), quote=True)
        return f'<figure><img alt="{alt}" src="data:image/png;base64,{data["image/png"].strip()}"></figure>'
    if "text/html" in data:
        return str(data["text/html"])
    if "text/markdown" in data:
        return _md(str(data["text/markdown"]))
    if "text/plain" in data:
        return f"<pre>{html.escape(str(data['text/plain']))}</pre>"
    return ""


BOTH_TAG = "lang-both"
"""A markdown cell written in both languages: each heading reads ``English | 中文``, each paragraph is in one."""

HEADING_SPLIT = " | "
"""Between a two-language heading's English and Chinese titles."""


def one_language(source: str, language: str) -> str:
    r"""Return the ``language`` half of a two-language markdown cell (tag ``lang-both``).

    A heading ``### Case card | 案例信息`` keeps the title of ``language``; a paragraph
    (a block between blank lines) is Chinese when it holds a Chinese character, and is
    kept in the report of its own language only.

    >>> one_language("## Metrics | 指标\n\nThe metrics.\n\n各项指标。", "zh")
    '## 指标\n\n各项指标。'
    """
    keep = []
    for block in re.split(r"\n\s*\n", source.strip()):
        lines = block.splitlines()
        if lines and lines[0].lstrip().startswith("#") and HEADING_SPLIT in lines[0]:
            marks, _, titles = lines[0].strip().partition(" ")
            en, _, zh = titles.partition(HEADING_SPLIT)
            keep.append(f"{marks} {(zh if language == 'zh' else en).strip()}")
            block = "\n".join(lines[1:]).strip()
            if not block:
                continue
        if any(ord(c) >= 0x2E80 for c in block) == (language == "zh"):
            keep.append(block)
    return "\n\n".join(keep)


def _hidden(tags: set[str], language: str) -> bool:
    """Return whether a cell with ``tags`` stays out of the report in ``language``."""
    other = {"lang-en", "lang-zh"} - {f"lang-{language}"}
    return bool(tags & HIDE_TAGS or tags & other)


def render_notebook(nb: nbformat.NotebookNode, language: str, pointer: str = "", in_brief: Iterable[int] = ()) -> str:
    """Return the reader's HTML of an executed notebook: markdown and outputs, never code or prompts.

    Cells tagged analyst-only are left out, and so are cells tagged for the other language (lang-en /
    lang-zh); a cell tagged lang-both shows its ``language`` half. A cell tagged workbook-only (model
    diagnostics, long lists) becomes the one line ``pointer``, once for a run of such cells; a cell whose chart the brief shows (its index in
    ``in_brief``) becomes a line pointing up to it.
    """
    parts: list[str] = []
    first_md = True
    briefed = set(in_brief)
    for index, cell in enumerate(nb.cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if _hidden(tags, language):
            continue
        if WORKBOOK_TAG in tags or index in briefed:
            line = _pointer_line(t("brief.in_brief", language)) if index in briefed else _pointer_line(pointer)
            if line and (not parts or parts[-1] != line):
                parts.append(line)
        elif cell.cell_type == "markdown":
            src = one_language(cell.source, language) if BOTH_TAG in tags else cell.source
            if first_md:
                src, first_md = _drop_first_heading(src), False
            if src.strip():
                parts.append(_md(src))
        elif cell.cell_type == "code":
            parts.extend(render_output(o) for o in cell.get("outputs", []))
    return "\n".join(p for p in parts if p)


def _pointer_line(text: str) -> str:
    """Return a one-line pointer (to the brief, to the analyst's notebook) as the report shows it."""
    return f"<p class='pointer'>{html.escape(text)}</p>" if text else ""


def brief_charts(notebooks: Iterable[Path], lang: str, limit: int = BRIEF_CHARTS) -> list[dict]:
    """Return the charts of the cells tagged ``brief`` in the executed notebooks, in step order, at most
    ``limit``: each its notebook's file name, the cell's index, the PNG (base64) and its alt text.

    The report's brief shows them; the e-mail takes the same ones.
    """
    charts: list[dict] = []
    for path in sorted(notebooks):
        nb = nbformat.read(path, as_version=4)
        for index, cell in enumerate(nb.cells):
            tags = set(cell.get("metadata", {}).get("tags", []))
            if BRIEF_TAG not in tags or _hidden(tags, lang):
                continue
            png = next((o["data"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})), None)
            if png and len(charts) < limit:
                alt = str(png.get("text/plain", "chart")).strip()
                charts.append({"notebook": path.name, "cell": index, "png": png["image/png"].strip(), "alt": alt})
    return charts


def step_sections(notebooks: Iterable[Path], lang: str, charts: Iterable[dict] = ()) -> list[dict]:
    """Return each executed step notebook's number, title and reader's HTML (scripts removed), in step order.

    The cells whose charts are in the brief (``charts``, from :func:`brief_charts`) point up to it.
    """
    steps = []
    for path in sorted(notebooks):
        step = int(path.name[:2])
        shown = [c["cell"] for c in charts if c["notebook"] == path.name]
        pointer = t("brief.workbook_only", lang, step=step)
        body = render_notebook(nbformat.read(path, as_version=4), lang, pointer, shown)
        body = re.sub(r"<script\b.*?</script>", "", body, flags=re.S | re.I)  # outputs never need scripts
        # the notebooks' HTML is markup already: display helpers escape the CRM text they show
        steps.append({"number": step, "title": step_title(step, lang), "html": Markup(body)})
    return steps


def verdict_label(verdict: str, lang: str) -> str:
    """Return a verdict's words (a summary from before the verdict had its interval keeps its own words)."""
    for key in (f"brief.verdict.{verdict}", f"report.{verdict}"):
        if has(key):
            return t(key, lang)
    return verdict


def kpi_tiles(summary: dict, lang: str) -> list[dict]:
    """Return the brief's tiles: the measured baseline, now with its interval and latest month, the target,
    the verdict; each its label, value, lines under it and style. The report and the e-mail show these."""
    goal = summary["goal"]
    unit = goal["unit"]
    windows = summary.get("windows") or {}  # a summary from before it named them shows no window

    def window(name: str) -> list[str]:
        if name not in windows:
            return []
        start, end = windows[name]
        return [t("brief.tile.window", lang, start=start, end=end)]

    now_lines = window("after")
    if summary.get("interval"):
        now_lines.insert(0, t("brief.tile.ci", lang, interval=span(*summary["interval"], unit)))
    if summary.get("latest_month"):
        latest = {**summary["latest_month"], "n": None}  # the month's interval is in the verdict's text
        now_lines.append(latest_sentence(latest, unit, lang).rstrip("。."))
    verdict = summary["verdict"]
    return [
        {"label": t("report.baseline", lang), "value": fmt_value(summary["before"], unit),
         "lines": window("before"), "style": ""},
        {"label": t("report.now", lang), "value": fmt_value(summary["now"], unit), "lines": now_lines, "style": ""},
        {"label": t("report.target", lang), "value": fmt_value(goal["target"], unit),
         "lines": [t("brief.tile.by", lang, deadline=goal["deadline"])], "style": ""},
        {"label": t("report.verdict", lang), "value": verdict_label(verdict, lang), "lines": [],
         "style": f"verdict {VERDICT_CLASS.get(verdict, 'warn')}"},
    ]  # fmt: skip


def report_html(
    case: CaseParams,
    summary: dict,
    steps: list[dict],
    generated: datetime,
    charts: Iterable[dict] = (),
    since: dict | None = None,
) -> str:
    """Return the report page: the brief (tiles, verdict, since the last run, findings, actions, charts), then
    the seven steps, each collapsed, with the glyphs it needs. ``since``: from :func:`since_view`."""
    lang = case.language
    context = dict(
        case=case,
        lang=lang,
        html_lang=html_lang(lang),
        t=t,
        fmt_value=fmt_value,
        department=department,
        generated=f"{generated:%Y-%m-%d %H:%M}",
        summary=summary,
        tiles=kpi_tiles(summary, lang),
        verdict_text=summary.get("verdict_text") or verdict_label(summary["verdict"], lang),
        charts=list(charts),
        steps=steps,
        since=since or {},
        font_stack=FONT_STACK,
        cjk_family=CJK_FAMILY,
    )
    page = render("report.html.j2", font_face="", **context)
    face = cjk_font_face(page, lang)  # just the glyphs the page shows
    return render("report.html.j2", font_face=Markup(face), **context) if face else page


def since_view(case: CaseParams, ws: Workspace, summary: dict) -> dict:
    """Return the brief's since-the-last-run lines and the goal KPI over the runs (empty on a first run)."""
    from crmnb.present.since_block import run_points, runs_chart, since_lines
    from crmnb.run.history import case_folder, list_runs
    from crmnb.run.since import since_last_run

    since = since_last_run(case, ws)
    if since is None:
        return {}
    before = str((since.get("previous") or {}).get("started") or "")
    runs = [r for r in list_runs(case_folder(ws.root, case.case_id)) if str(r.get("started", "")) <= before]
    goal = summary["goal"]
    chart = runs_chart(run_points(runs, summary, case.language), goal["unit"], goal.get("target"), case.language)
    path = ws.data / "report" / "tracking.parquet"
    actions = pd.read_parquet(path).to_dict("records") if path.is_file() else []
    return {"lines": since_lines(since, summary, case.language, actions), "chart": chart}


def build_report(case: CaseParams, notebooks: Iterable[Path], ws: Workspace) -> Path:
    """Write ``report.html`` for the case from its executed notebooks and step 7's summary."""
    books = sorted(notebooks)
    charts = brief_charts(books, case.language)
    steps = step_sections(books, case.language, charts)
    summary = ws.read_json("report/summary")
    page = report_html(case, summary, steps, datetime.now(), charts, since_view(case, ws, summary))
    out = ws.folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
