"""Sentences of the e-mail engagement analyses: the funnel per campaign, the A/B readouts, what is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmnb.present.words import category, t


def _pct(x: float) -> str:
    """Return a share as a percentage with one decimal."""
    return "–" if pd.isna(x) else f"{100 * x:.1f}%"


def gap(reason: str, lang: str) -> str:
    """Return the sentence saying why the e-mail analyses were left out (see :func:`engagement.lacks`)."""
    return t(f"campaigns.email.{reason}", lang)


def funnel_sentences(funnel: pd.DataFrame, lang: str) -> list[str]:
    """Return one sentence per campaign: sends, open and click rates with intervals, leads and wins."""
    if funnel.empty:
        return [t("campaigns.email.no_sends", lang)]
    out = []
    for _, f in funnel.groupby("campaign_id", sort=True):
        s = f.set_index("stage")
        out.append(
            t(
                "campaigns.email.funnel",
                lang,
                campaign=s["campaign"].iloc[0],
                sent=f"{int(s.loc['sent', 'count']):,}",
                open=_pct(s.loc["opened", "rate"]),
                open_low=_pct(s.loc["opened", "ci_low"]),
                open_high=_pct(s.loc["opened", "ci_high"]),
                click=_pct(s.loc["clicked", "rate"]),
                click_low=_pct(s.loc["clicked", "ci_low"]),
                click_high=_pct(s.loc["clicked", "ci_high"]),
                leads=f"{int(s.loc['lead', 'count']):,}",
                won=f"{int(s.loc['won', 'count']):,}",
            )
        )
    return out


def ab_sentences(ab: pd.DataFrame, lang: str) -> list[str]:
    """Return one sentence per A/B comparison: both rates, the difference with its interval and p-value,
    and whether the interval excludes no difference."""
    if ab.empty:
        return [t("campaigns.ab.none", lang)]
    out = []
    for r in ab.itertuples():
        clear = bool(r.ci_low > 0 or r.ci_high < 0)
        out.append(
            t(
                "campaigns.ab.clear" if clear else "campaigns.ab.unclear",
                lang,
                test=r.ab_test,
                metric=t(f"campaigns.ab.metric.{r.metric}", lang),
                a=r.variant_a,
                b=r.variant_b,
                rate_a=_pct(r.rate_a),
                rate_b=_pct(r.rate_b),
                diff=f"{100 * r.difference:+.1f}",
                low=f"{100 * r.ci_low:+.1f}",
                high=f"{100 * r.ci_high:+.1f}",
                p=f"p = {r.p_value:.4f}" if r.p_value >= 1e-4 else "p < 0.0001",
                n_a=f"{r.sends_a:,}",
                n_b=f"{r.sends_b:,}",
            )
        )
    return out


def utm_sentence(utm: pd.DataFrame, lang: str) -> str:
    """Return what the UTM table shows, or that the leads' landing URLs carry no UTM parameters."""
    if utm.empty:
        return t("campaigns.utm.none", lang)
    tagged = utm[utm["utm_source"] != "(none)"]
    share = tagged["leads"].sum() / utm["leads"].sum() if utm["leads"].sum() else np.nan
    top = tagged.iloc[0] if len(tagged) else utm.iloc[0]
    return t(
        "campaigns.utm.summary",
        lang,
        share=_pct(share),
        source=category(top["utm_source"], lang),
        medium=category(top["utm_medium"], lang),
        leads=f"{int(top['leads']):,}",
    )
