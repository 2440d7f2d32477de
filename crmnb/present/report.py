"""The stakeholder report (one self-contained HTML file) and the Excel workbook of template tables."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import nbformat
from nbconvert.filters.markdown_mistune import markdown2html_mistune

from crmnb.handoffs import Workspace
from crmnb.params.model import CaseParams
from crmnb.present.fonts import CJK_FAMILY, FONT_STACK, cjk_font_face
from crmnb.present.words import department, fmt_value, step_title, word

HIDE_TAGS = {"analyst-only", "parameters", "injected-parameters", "remove"}


CSS = """
body{font-family:%(stack)s;
color:#1f2933;margin:0;background:#f5f7fa;line-height:1.5}
code,pre,kbd,samp{font-family:"%(cjk)s",ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.92em}
main{max-width:960px;margin:0 auto;background:#fff;padding:24px 32px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;border-bottom:2px solid #2f6f9f;padding-bottom:4px;margin-top:36px}
h3{font-size:16px;margin-top:22px}.meta{color:#52606d;font-size:13px;margin:0 0 16px}
.summary{background:#eef4f8;border-left:5px solid #2f6f9f;padding:12px 18px;margin:16px 0}
.verdict{font-size:18px;font-weight:bold}.ok{color:#2e7d32}.warn{color:#b26a00}.bad{color:#c62828}
.kpi{font-size:15px}.toc ol{margin:4px 0}
table.t{border-collapse:collapse;font-size:13px;margin:8px 0}
table.t th{background:#2f6f9f;color:#fff;text-align:left;padding:4px 8px}
table.t td{border-bottom:1px solid #e4e7eb;padding:3px 8px;vertical-align:top}
.caption{font-weight:bold;margin:12px 0 2px}.more{color:#52606d;font-size:12px}
figure{margin:12px 0}figure img{max-width:100%%;height:auto}
""" % {"stack": FONT_STACK, "cjk": CJK_FAMILY}


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


def render_notebook(nb: nbformat.NotebookNode, language: str = "en") -> str:
    """Return the reader's HTML of an executed notebook: markdown and outputs, never code or prompts.

    Cells tagged analyst-only are left out, and so are cells tagged for the other
    language (lang-en / lang-zh).
    """
    parts: list[str] = []
    first_md = True
    other = {"lang-en", "lang-zh"} - {f"lang-{language}"}
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & HIDE_TAGS or tags & other:
            continue
        if cell.cell_type == "markdown":
            src = cell.source
            if first_md:
                src, first_md = _drop_first_heading(src), False
            if src.strip():
                parts.append(_md(src))
        elif cell.cell_type == "code":
            parts.extend(render_output(o) for o in cell.get("outputs", []))
    return "\n".join(p for p in parts if p)


def _summary_html(case: CaseParams, summary: dict) -> str:
    lang = case.language
    g = summary["goal"]
    unit = g["unit"]
    verdict = summary["verdict"]
    cls = {"reached": "ok", "improving": "warn", "flat": "warn", "worse": "bad"}[verdict]
    findings = "".join(f"<li>{html.escape(f)}</li>" for f in summary["findings"][:3])
    actions = "".join(
        f"<li>{html.escape(a['measure'])} — {word('owner', lang)}: {html.escape(str(a['owner']))}, "
        f"{word('due', lang)}: {html.escape(str(a['deadline']))}</li>"
        for a in summary["actions"][:3]
    )
    ci = summary.get("change_sentence", "")
    return (
        f"<section class='summary' id='summary'><h2 style='border:0;margin-top:0'>{word('summary', lang)}</h2>"
        f"<p class='kpi'><strong>{word('goal', lang)}:</strong> {html.escape(g['name'])} "
        f"{fmt_value(g['baseline'], unit)} → {fmt_value(g['target'], unit)} "
        f"({word('deadline', lang)} {html.escape(str(g['deadline']))})</p>"
        f"<p class='kpi'>{word('baseline', lang)} {fmt_value(summary['before'], unit)} → "
        f"{word('now', lang)} <strong>{fmt_value(summary['now'], unit)}</strong> "
        f"({word('target', lang)} {fmt_value(g['target'], unit)})</p>"
        f"<p class='verdict {cls}'>{word('verdict', lang)}: {word(verdict, lang)}</p>"
        + (f"<p>{html.escape(ci)}</p>" if ci else "")
        + f"<h3>{word('findings', lang)}</h3><ol>{findings}</ol>"
        f"<h3>{word('actions', lang)}</h3><ol>{actions}</ol></section>"
    )


def build_report(case: CaseParams, notebooks: Iterable[Path], ws: Workspace) -> Path:
    """Write ``report.html`` for the case from its executed notebooks and step 7's summary."""
    lang = case.language
    summary = ws.read_json("report/summary")
    sections, toc = [], []
    for path in sorted(notebooks):
        step = int(path.name[:2])
        nb = nbformat.read(path, as_version=4)
        title = step_title(step, lang)
        toc.append(f"<li><a href='#step-{step}'>{html.escape(title)}</a></li>")
        sections.append(
            f"<section id='step-{step}'><h2>{step}. {html.escape(title)}</h2>{render_notebook(nb, lang)}</section>"
        )
    notes = f"<h3>{word('notes', lang)}</h3><p>{html.escape(case.notes)}</p>" if case.notes.strip() else ""
    meta = (
        f"{word('department', lang)}: {html.escape(department(case.department, lang))} · "
        f"{word('period', lang)}: {case.period.start} – {case.period.end} · "
        f"{word('case_owner', lang)}: {html.escape(case.owner)} · "
        f"{word('generated', lang)}: {datetime.now():%Y-%m-%d %H:%M}"
        + (f" · {word('masked', lang)}" if case.mask_pii else "")
    )
    doc = (
        f"<!DOCTYPE html><html lang='{'zh-CN' if lang == 'zh' else 'en'}'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(case.title)}</title><style>{CSS}</style></head><body><main>"
        f"<h1>{html.escape(case.title)}</h1><p class='meta'>{meta}</p>"
        f"{_summary_html(case, summary)}{notes}"
        f"<nav class='toc'><h3>{word('contents', lang)}</h3><ol>{''.join(toc)}</ol></nav>"
        f"{''.join(sections)}</main></body></html>"
    )
    doc = re.sub(r"<script\b.*?</script>", "", doc, flags=re.S | re.I)  # outputs never need scripts
    doc = doc.replace("<style>", f"<style>{cjk_font_face(doc, lang)}", 1)
    out = ws.folder / "report.html"
    out.write_text(doc, encoding="utf-8")
    return out
