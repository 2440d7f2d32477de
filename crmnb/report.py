"""The stakeholder report (one self-contained HTML file) and the Excel workbook of template tables."""

from __future__ import annotations

import hashlib
import html
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Iterable

import nbformat
import pandas as pd
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from .i18n import STEP_TITLES, department, fmt_value, word
from .io import Workspace
from .params import CaseParams
from .paths import bundled_cjk_font

HIDE_TAGS = {"analyst-only", "parameters", "injected-parameters", "remove"}

CJK_FAMILY = "crmnb CJK"
"""The family of the embedded Chinese glyphs (see :func:`cjk_font_face`)."""

FONT_STACK = (f'"{CJK_FAMILY}",-apple-system,"Segoe UI",Roboto,"Noto Sans SC","PingFang SC","Microsoft YaHei",'
              'Arial,sans-serif')
"""The report's font stack. The embedded face comes first: its unicode-range limits it to the
characters it holds, so Latin text still uses the reader's fonts. Placed after a family the
machine has (Arial is Liberation Sans through fontconfig), Chromium drew some runs, e.g. the
first heading of a size, with that font's empty box instead of falling back to it."""

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
        f"{word('due', lang)}: {html.escape(str(a['deadline']))}</li>" for a in summary["actions"][:3])
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
        title = STEP_TITLES[lang][step]
        toc.append(f"<li><a href='#step-{step}'>{html.escape(title)}</a></li>")
        sections.append(f"<section id='step-{step}'><h2>{step}. {html.escape(title)}</h2>"
                        f"{render_notebook(nb, lang)}</section>")
    notes = (f"<h3>{word('notes', lang)}</h3><p>{html.escape(case.notes)}</p>" if case.notes.strip() else "")
    meta = (f"{word('department', lang)}: {html.escape(department(case.department, lang))} · "
            f"{word('period', lang)}: {case.period.start} – {case.period.end} · "
            f"{word('case_owner', lang)}: {html.escape(case.owner)} · "
            f"{word('generated', lang)}: {datetime.now():%Y-%m-%d %H:%M}"
            + (f" · {word('masked', lang)}" if case.mask_pii else ""))
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


def cjk_font_face(text: str, language: str = "en") -> str:
    """Return an @font-face rule embedding just the glyphs ``text`` needs, or '' when it has no Chinese.

    A reader whose mail client has no Chinese font still sees the characters, and
    the report stays small: a subset of Noto Sans SC is ~100 KB for a whole report.
    In a Chinese document (``language`` zh) the subset also holds the other non-ASCII
    characters the font has (“”, —, →, ×, ·…), so a Chinese sentence is drawn in one
    font; an English one keeps the reader's fonts for those. The ``unicode-range``
    names exactly the characters embedded: the face can come first in the font stack
    without taking Latin text from the reader's fonts. Bold text uses the same face,
    emboldened by the browser.
    """
    chars = set(html.unescape(text))  # markdown headings come as &#NNNN;
    if not any(ord(c) >= 0x2E80 for c in chars):
        return ""
    wanted = {c for c in chars if ord(c) >= (0x80 if language == "zh" else 0x2E80)}
    path = bundled_cjk_font()
    if path is None:
        return ""  # the readers' own fonts will do
    cached = _subset_cache(path, language, wanted)
    if cached is not None and cached.is_file():
        return cached.read_text(encoding="utf-8")
    rule = _font_face(path, wanted)
    if rule and cached is not None:
        try:  # written whole, then renamed: two cases at once never read half a file
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
            tmp.write_text(rule, encoding="utf-8")
            tmp.replace(cached)
        except OSError:
            pass  # no cache: the next report subsets the font again
    return rule


def _subset_cache(font: Path, language: str, wanted: set[str]) -> Path | None:
    """Return where the @font-face rule for these characters is kept between runs.

    Subsetting loads the 10 MB font, about half a second of every report; a case re-run
    while an analyst works on it uses the same characters. The key is the font file (path,
    size, modification time) and the characters, so a changed font or text makes a new rule.
    The folder is ``$XDG_CACHE_HOME/crmnb`` (default ``~/.cache/crmnb``); CRMNB_CACHE_DIR moves it.
    """
    try:
        st = font.stat()
    except OSError:
        return None
    base = os.environ.get("CRMNB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "crmnb")
    key = hashlib.sha256(f"{font}|{st.st_size}|{st.st_mtime_ns}|{language}|{''.join(sorted(wanted))}"
                         .encode("utf-8") + Path(__file__).read_bytes()).hexdigest()[:32]  # and this code
    return Path(base) / "font-subsets" / f"{key}.css"


def _font_face(path: Path, wanted: set[str]) -> str:
    """Return the @font-face rule with the subset of the font at ``path`` holding ``wanted``."""
    try:
        import base64
        import io

        from fontTools import subset
        from fontTools.ttLib import TTFont

        font = TTFont(str(path))
    except (ImportError, OSError):
        return ""
    cmap = font.getBestCmap()
    codes = sorted(ord(c) for c in wanted if ord(c) in cmap)
    opts = subset.Options()
    opts.layout_features, opts.name_IDs, opts.hinting, opts.desubroutinize = [], [], False, True
    opts.notdef_outline = True  # a character the subset lacks shows as a box, never as nothing
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=codes)
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f"@font-face{{font-family:'{CJK_FAMILY}';src:url(data:font/otf;base64,{data}) format('opentype');"
            f"unicode-range:{unicode_range(codes)}}}")


def unicode_range(codes: Iterable[int]) -> str:
    """Return a CSS ``unicode-range`` value listing ``codes``, runs of neighbours as ranges.

    >>> unicode_range([0x4E2D, 0x4E00, 0x4E01, 0x4E02])
    'U+4E00-4E02,U+4E2D'
    """
    runs: list[list[int]] = []
    for c in sorted(set(codes)):
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(f"U+{a:X}" if a == b else f"U+{a:X}-{b:X}" for a, b in runs)


# --------------------------------------------------------------------------- Excel
HEADER_FILL = PatternFill("solid", fgColor="2F6F9F")
HEADER_FONT = Font(bold=True, color="FFFFFF")


def _cell_value(v):
    if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if hasattr(v, "item"):
        return v.item()
    return v


def write_sheet(wb: Workbook, name: str, df: pd.DataFrame, percent: Iterable[str] = (),
                money: Iterable[str] = ()) -> None:
    """Add a sheet with a styled, frozen header, fitted widths and number formats; text is never a formula."""
    ws = wb.create_sheet(name[:31])
    percent, money = set(percent), set(money)
    ws.append([str(c) for c in df.columns])
    for cell in ws[1]:
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    for row in df.itertuples(index=False):
        ws.append([_cell_value(v) for v in row])
    for j, col in enumerate(df.columns, start=1):
        letter = get_column_letter(j)
        fmt = "0.0%" if col in percent else "#,##0" if col in money else None
        width = max([len(str(col))] + [len(str(v)) for v in df[col].head(200)]) + 2
        ws.column_dimensions[letter].width = min(max(width * (1.6 if df[col].astype(str).str.contains(
            r"[\u4e00-\u9fff]").any() else 1.0), 8), 60)
        for cell in ws[letter][1:]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # '=SUM(…)' from the CRM stays text
            elif fmt and isinstance(cell.value, (int, float)):
                cell.number_format = fmt
            elif hasattr(cell.value, "year"):
                cell.number_format = "yyyy-mm-dd"
    ws.freeze_panes = "A2"


def build_workbook(case: CaseParams, ws: Workspace) -> Path:
    """Write ``tables.xlsx``: the case card, KPI comparison, improvement plan and the step tables."""
    wb = Workbook()
    wb.remove(wb.active)
    sheets = [
        ("Table 1 case card", "scope/case_card", [], []),
        ("Table 2 KPI before-after", "report/kpi_compare", [], []),
        ("Table 3 improvement plan", "plan/plan", [], []),
        ("Metric catalogue", "metrics/catalogue", [], []),
        ("Headline metrics", "metrics/headline", [], []),
        ("Data inventory", "intake/inventory", ["coverage"], []),
        ("Cleaning log", "clean/log", [], []),
        ("Row reconciliation", "clean/reconciliation", [], []),
        ("Receipts check", "clean/receipts", ["difference_rate"], ["crm_amount", "finance_amount", "difference"]),
        ("Funnel", "deep_dive/funnel", ["conversion_rate", "overall_rate"], []),
        ("Value tiers", "deep_dive/tiers", ["revenue_share", "customer_share"], ["revenue"]),
        ("RFM segments", "deep_dive/segments", ["revenue_share", "customer_share"], ["revenue"]),
        ("Metrics by rep", "metrics/by_rep", ["followup_ontime_rate", "lead_conversion_rate", "opportunity_win_rate"], []),
        ("CAC and LTV", "metrics/unit_economics", [], []),
        ("Response-time drivers", "deep_dive/response_buckets", ["conversion_rate", "ci_low", "ci_high"], []),
        ("CLV by tier", "deep_dive/clv_by_tier", ["prob_alive"], ["clv", "clv_total"]),
        ("Channels", "deep_dive/channels", ["conversion", "roi"], ["spend", "cac", "revenue"]),
        ("Campaigns", "deep_dive/campaigns", ["conversion", "roi"], ["spend", "cac", "revenue"]),
        ("Attribution", "deep_dive/attribution", [], []),
        ("CPA alerts", "plan/cpa_alerts", ["overrun"], ["spend", "cac", "excess_spend"]),
        ("Churn model", "plan/churn_model", [], []),
        ("Churn watch list", "plan/watch_list", ["churn_probability"], []),
        ("Problems", "plan/problems", [], []),
        ("Forecast", "report/forecast", [], ["forecast", "lower", "upper"]),
        ("Forecast accuracy", "report/forecast_accuracy", ["wape", "bias", "total_wape", "total_bias"], []),
        ("Action tracking", "report/tracking", [], []),
    ]
    for title, name, pct, money in sheets:
        if ws.exists(name):
            write_sheet(wb, title, ws.read(name), pct, money)
    out = ws.folder / "tables.xlsx"
    wb.save(out)
    return out


def make_summary(case: CaseParams, kpi: pd.DataFrame, problems: pd.DataFrame, plan: pd.DataFrame) -> dict:
    """Return the executive summary: goal, before → now against target, verdict, three findings, top actions."""
    from .compare import describe_change
    from .metrics import CATALOGUE

    g = case.goal
    m = CATALOGUE[g.metric]
    row = kpi.set_index("metric").loc[g.metric]
    now, before = float(row["after"]), float(row["before"])
    up = g.higher_is_better
    significant = row["ci_low"] > 0 or row["ci_high"] < 0
    if (now >= g.target) if up else (now <= g.target):
        verdict = "reached"
    elif significant and ((row["difference"] > 0) == up):
        verdict = "improving"
    elif significant:
        verdict = "worse"
    else:
        verdict = "flat"
    findings = [describe_change(row)]
    others = kpi[(kpi["metric"] != g.metric) & ((kpi["ci_low"] > 0) | (kpi["ci_high"] < 0))]
    # the response time is the lever the method watches first; then the clearest other change
    others = others.assign(_first=others["metric"] != "lead_response_hours").sort_values(["_first", "p_value"])
    for _, r in others.head(1).iterrows():
        findings.append(describe_change(r))
    for _, p in problems[problems["kind"] != "goal_gap"].head(3 - len(findings)).iterrows():
        findings.append(f"{p['problem']}: {p['evidence']}.")
    actions = plan.head(3)[["measure", "owner", "deadline"]].astype(str).to_dict("records")
    return {
        "goal": {"metric": g.metric, "name": m.name(case.language), "unit": m.unit, "baseline": g.baseline,
                 "target": g.target, "deadline": str(g.deadline)},
        "before": before,
        "now": now,
        "verdict": verdict,
        "findings": findings,
        "actions": actions,
    }
