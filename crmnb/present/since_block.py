"""The report's "since the last run" block and the goal KPI over the case's runs (a small inline chart)."""

from __future__ import annotations

import html
import math

from markupsafe import Markup

from crmnb.present.summary import amount
from crmnb.present.words import fmt_value, has, t


def _verdict(v: str | None, lang: str) -> str:
    key = f"brief.verdict.{v}"
    return t(key, lang) if v and has(key) else str(v or "")


def _part(p: dict, unit: str, lang: str) -> str:
    """Return one source of a change: '−0.5 pp from 212 restated records (2025-09)'."""
    d = amount(p["delta"], unit, lang, signed=True)
    months = ", ".join(p.get("months") or [])
    return t(f"loop.part.{p['source']}", lang, d=d, n=f"{p.get('n') or 0:,}", months=months, after=p.get("after"))


def attribution_line(att: dict | None, name: str, unit: str, lang: str) -> str | None:
    """Return the one line that says where the goal KPI's change came from, or None without one."""
    if not att:
        return None
    parts = [_part(p, unit, lang) for p in att["parts"]] or [t("loop.part.none", lang)]
    return t(
        "loop.attribution",
        lang,
        name=name,
        was=fmt_value(att["from"], unit),
        now=fmt_value(att["to"], unit),
        parts=t("loop.list_sep", lang).join(parts),
    )


def since_lines(since: dict | None, summary: dict, lang: str, actions: list[dict] = ()) -> list[str]:
    """Return the block's lines: the goal's move and the verdict, why it moved, the other KPIs, problems, the
    ledger's scored and overdue ``actions`` (the tracking table's rows), what else changed."""
    if not since:
        return []
    from crmnb.analysis.metrics import CATALOGUE

    goal = summary["goal"]
    unit, prev = goal["unit"], since["previous"]
    lines = [
        t(
            "loop.since.goal",
            lang,
            name=goal["name"],
            when=str(prev.get("started") or "")[:16].replace("T", " "),
            was=fmt_value(prev.get("now"), unit),
            now=fmt_value(since.get("now"), unit),
            d=amount((since.get("now") or 0) - (prev.get("now") or 0), unit, lang, signed=True),
        ),
        t(
            "loop.since.verdict_changed" if since.get("verdict_changed") else "loop.since.verdict_same",
            lang,
            was=_verdict(prev.get("verdict"), lang),
            now=_verdict(since.get("verdict"), lang),
        ),
    ]
    why = attribution_line(since.get("attribution"), goal["name"], unit, lang)
    lines += [why] if why else []
    moved = [
        k
        for k in since.get("kpis") or []
        if k["metric"] != goal["metric"] and k["metric"] in CATALOGUE and abs(k["now"] - k["was"]) > 1e-9
    ]
    for k in moved[:4]:
        m = CATALOGUE[k["metric"]]
        was, now = fmt_value(k["was"], m.unit), fmt_value(k["now"], m.unit)
        lines.append(t("loop.since.kpi", lang, name=m.name(lang), was=was, now=now))
    for key in ("problems_new", "problems_gone"):
        if since.get(key):
            lines.append(t(f"loop.since.{key}", lang, items=t("loop.list_sep", lang).join(since[key])))
    scored = [
        a for a in actions if a.get("verdict_key") not in (None, "", "proposed", "not_started", "no_start", "dropped")
    ]
    shown = [
        t(
            "loop.since.action",
            lang,
            id=a["action"],
            verdict=", ".join(filter(None, [a.get("verdict"), a.get("overdue")])),
        )
        for a in [*scored, *(a for a in actions if a.get("overdue") and a not in scored)]
    ]
    if shown:
        lines.append(t("loop.since.actions", lang, items=t("loop.list_sep", lang).join(shown)))
    changed = [*(since.get("settings_changed") or []), *(["code"] if since.get("code_changed") else [])]
    if changed:
        lines.append(t("loop.since.changed", lang, items=", ".join(changed)))
    return lines


def runs_chart(points: list[dict], unit: str, target: float | None, lang: str) -> Markup | None:
    """Return an inline SVG of the goal KPI at each run (dot, interval bar, the target dashed); None under 2 runs."""
    pts = [p for p in points if p.get("now") is not None and math.isfinite(p["now"])]
    if len(pts) < 2:
        return None
    lows = [p["interval"][0] if p.get("interval") else p["now"] for p in pts]
    highs = [p["interval"][1] if p.get("interval") else p["now"] for p in pts]
    vals = [*lows, *highs, *([target] if target is not None else [])]
    lo, hi = min(vals), max(vals)
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad
    w, h, left, right = 480, 120, 60, 40
    step = (w - left - right) / max(1, len(pts) - 1)

    def y(v: float) -> float:
        return round(8 + (h - 28) * (hi - v) / (hi - lo), 1)

    parts = [f"<text x='4' y='{y(hi - pad) + 4}' class='ax'>{html.escape(fmt_value(hi - pad, unit))}</text>"]
    parts.append(f"<text x='4' y='{y(lo + pad) + 4}' class='ax'>{html.escape(fmt_value(lo + pad, unit))}</text>")
    if target is not None:
        ty = y(target)
        parts.append(f"<line x1='{left}' x2='{w - right}' y1='{ty}' y2='{ty}' class='target'/>")
    xs = [round(left + i * step, 1) for i in range(len(pts))]
    parts.append("<polyline class='kpi' points='" + " ".join(f"{x},{y(p['now'])}" for x, p in zip(xs, pts)) + "'/>")
    for x, p, a, b in zip(xs, pts, lows, highs):
        label = html.escape(f"{p.get('label', '')}: {fmt_value(p['now'], unit)}")
        parts.append(f"<line x1='{x}' x2='{x}' y1='{y(a)}' y2='{y(b)}' class='ci'/>")
        parts.append(f"<circle cx='{x}' cy='{y(p['now'])}' r='3.5'><title>{label}</title></circle>")
        parts.append(
            f"<text x='{x}' y='{h - 4}' class='ax' text-anchor='middle'>{html.escape(p.get('label', ''))}</text>"
        )
    title = html.escape(t("loop.chart.title", lang))
    return Markup(
        f"<svg class='runs-chart' viewBox='0 0 {w} {h}' role='img' aria-label='{title}'>"
        f"<title>{title}</title>{''.join(parts)}</svg>"
    )


def run_points(runs: list[dict], summary: dict, lang: str) -> list[dict]:
    """Return the goal KPI at each earlier successful run and at this one, each with a short date label."""
    pts = [
        {"now": r.get("now"), "interval": r.get("interval"), "label": str(r.get("started") or "")[5:10]}
        for r in runs
        if r.get("status") == "ok"
    ]
    return [*pts, {"now": summary.get("now"), "interval": summary.get("interval"), "label": t("loop.chart.this", lang)}]


def sparkline(values: list, unit: str, width: int = 96, height: int = 24) -> Markup | None:
    """Return a small inline SVG of a KPI over a case's runs (the index page), or None under two values."""
    vals = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if len(vals) < 2:
        return None
    lo, hi = min(vals), max(vals)
    span = (hi - lo) or 1.0
    step = (width - 4) / (len(vals) - 1)
    pts = " ".join(f"{2 + i * step:.1f},{height - 3 - (v - lo) / span * (height - 6):.1f}" for i, v in enumerate(vals))
    label = html.escape(" → ".join(fmt_value(v, unit) for v in vals[-4:]))
    return Markup(
        f"<svg class='spark' width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
        f"aria-label='{label}'><title>{label}</title><polyline points='{pts}' fill='none' stroke='#1f4e79' "
        f"stroke-width='1.5'/></svg>"
    )
