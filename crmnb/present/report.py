"""The stakeholder report: one self-contained HTML page from the executed notebooks and step 7's summary."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import nbformat
from markupsafe import Markup
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from crmnb.handoffs import Workspace
from crmnb.params.model import CaseParams
from crmnb.present.fonts import CJK_FAMILY, FONT_STACK, cjk_font_face
from crmnb.present.templates import html_lang, render
from crmnb.present.words import department, fmt_value, step_title, t

HIDE_TAGS = {"analyst-only", "parameters", "injected-parameters", "remove"}


VERDICT_CLASS = {"reached": "ok", "improving": "warn", "flat": "warn", "worse": "bad"}
"""The summary's verdict, by the style of its line: reached in green, moving in amber, worse in red."""


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


def render_notebook(nb: nbformat.NotebookNode, language: str) -> str:
    """Return the reader's HTML of an executed notebook: markdown and outputs, never code or prompts.

    Cells tagged analyst-only are left out, and so are cells tagged for the other
    language (lang-en / lang-zh); a cell tagged lang-both shows its ``language`` half.
    """
    parts: list[str] = []
    first_md = True
    other = {"lang-en", "lang-zh"} - {f"lang-{language}"}
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & HIDE_TAGS or tags & other:
            continue
        if cell.cell_type == "markdown":
            src = one_language(cell.source, language) if BOTH_TAG in tags else cell.source
            if first_md:
                src, first_md = _drop_first_heading(src), False
            if src.strip():
                parts.append(_md(src))
        elif cell.cell_type == "code":
            parts.extend(render_output(o) for o in cell.get("outputs", []))
    return "\n".join(p for p in parts if p)


def step_sections(notebooks: Iterable[Path], lang: str) -> list[dict]:
    """Return each executed step notebook's number, title and reader's HTML (scripts removed), in step order."""
    steps = []
    for path in sorted(notebooks):
        step = int(path.name[:2])
        body = render_notebook(nbformat.read(path, as_version=4), lang)
        body = re.sub(r"<script\b.*?</script>", "", body, flags=re.S | re.I)  # outputs never need scripts
        # the notebooks' HTML is markup already: display helpers escape the CRM text they show
        steps.append({"number": step, "title": step_title(step, lang), "html": Markup(body)})
    return steps


def report_html(case: CaseParams, summary: dict, steps: list[dict], generated: datetime) -> str:
    """Return the report page: the summary, the notes, the contents and the steps, with the glyphs it needs."""
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
        verdict_class=VERDICT_CLASS[summary["verdict"]],
        steps=steps,
        font_stack=FONT_STACK,
        cjk_family=CJK_FAMILY,
    )
    page = render("report.html.j2", font_face="", **context)
    face = cjk_font_face(page, lang)  # just the glyphs the page shows
    return render("report.html.j2", font_face=Markup(face), **context) if face else page


def build_report(case: CaseParams, notebooks: Iterable[Path], ws: Workspace) -> Path:
    """Write ``report.html`` for the case from its executed notebooks and step 7's summary."""
    steps = step_sections(notebooks, case.language)
    page = report_html(case, ws.read_json("report/summary"), steps, datetime.now())
    out = ws.folder / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
