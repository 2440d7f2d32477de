"""Complaint themes from ticket text, in Chinese and English: a lexicon of service topics, counted and trended.

Chinese text is cut into words by jieba, with every lexicon word added to its dictionary so that a topic's
words come out whole (登录不了, 打不通); English text is matched word by word. A complaint may touch several
themes; one that touches none is counted as unclassified. A theme rises when its share of complaints in the
after window is above the before window's beyond chance (Newcombe's interval, Holm-adjusted over the themes).
These are associations in time, not causes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats

from crmnb.analysis.compare import holm, newcombe
from crmnb.present.masking import show_text
from crmnb.present.words import t

LEXICON: dict[str, tuple[str, ...]] = {
    "delivery": ("快递", "发货", "物流", "配送", "送货", "到货", "delivery", "shipping", "shipment", "courier"),
    "quality": ("质量", "破损", "瑕疵", "坏了", "损坏", "次品", "quality", "broken", "damaged", "defect", "defective"),
    "billing": ("账单", "扣费", "退款", "发票", "收费", "多收", "bill", "billing", "invoice", "refund", "charged"),
    "attitude": ("态度", "不耐烦", "没礼貌", "rude", "attitude", "impolite", "unfriendly"),
    "response": (
        "响应",
        "打不通",
        "没人回复",
        "等了很久",
        "回复慢",
        "slow response",
        "no reply",
        "waiting",
        "unanswered",
    ),
    "faults": (
        "闪退",
        "登录不了",
        "无法登录",
        "卡顿",
        "系统故障",
        "崩溃",
        "报错",
        "crash",
        "login",
        "error",
        "bug",
        "outage",
    ),
    "features": ("宣传不符", "功能不符", "承诺", "不一样", "not as advertised", "missing feature", "promised"),
}
"""The service topics and the words that mark them; a case file's ``service.themes`` adds themes and words."""

OTHER = "unclassified"
"""The theme of a complaint no lexicon word marks."""

THEME_COLUMNS = [
    "theme",
    "complaints_before",
    "share_before",
    "complaints_after",
    "share_after",
    "share_change",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "rising",
    "example",
]
TREND_COLUMNS = ["month", "theme", "complaints", "share"]


def lexicon(extra: Mapping[str, list[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """Return the lexicon with a case file's themes added; a theme already there gains the words.

    >>> lexicon({"faults": ["白屏"], "安装": ["安装"]})["faults"][-1], lexicon({"安装": ["安装"]})["安装"]
    ('白屏', ('安装',))
    """
    out = dict(LEXICON)
    for theme, words in (extra or {}).items():
        out[theme] = tuple(dict.fromkeys([*out.get(theme, ()), *words]))
    return out


def _is_chinese(word: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", word))


@lru_cache(maxsize=8)
def _tokenizer(words: tuple[str, ...]):
    """Return a jieba tokenizer that knows the lexicon's Chinese words; its start-up log kept quiet."""
    import jieba

    logging.getLogger("jieba").setLevel(logging.ERROR)  # its dictionary-loading chatter never reaches a log
    tok = jieba.Tokenizer()
    tok.initialize()
    for w in words:
        tok.add_word(w, freq=100_000)
    return tok


def tokens(text: str, lex: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Return the words of one text: jieba's cut for Chinese, lower-case words for English.

    >>> sorted(tokens("新版本登录不了, app crash", LEXICON) & {"登录不了", "crash", "app"})
    ['app', 'crash', '登录不了']
    """
    return _words(text, _chinese_words(lex))


def _chinese_words(lex: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Return the lexicon's Chinese words, sorted: the words jieba's dictionary is given."""
    return tuple(sorted({w for ws in lex.values() for w in ws if _is_chinese(w)}))


def _words(text: str, zh: tuple[str, ...]) -> set[str]:
    out = {w.strip().casefold() for w in _tokenizer(zh).lcut(text, HMM=False) if w.strip()}
    return out | set(re.findall(r"[a-z0-9']+", text.casefold()))


def tag(text: pd.Series, lex: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
    """Return, for each text, whether each theme's words occur in it (one bool column per theme, and ``other``).

    Each distinct text is read once: a large company's complaints repeat a few hundred texts (142,000
    complaints, 345 texts at 100 times the demo). A text that holds none of the lexicon's words, even as
    part of a longer word, is not cut: no word of it can be one of theirs.
    """
    phrases = {th: [w.casefold() for w in ws if " " in w] for th, ws in lex.items()}
    single = {th: {w.casefold() for w in ws if " " not in w} for th, ws in lex.items()}
    every = {w for ws in single.values() for w in ws}
    zh = _chinese_words(lex)
    codes, distinct = pd.factorize(text.fillna("").astype(str).to_numpy(dtype=object))
    rows = []
    for v in distinct:
        low = v.casefold()
        words = _words(v, zh) if any(w in low for w in every) else set()
        rows.append([bool(single[th] & words) or any(p in low for p in phrases[th]) for th in lex])
    flags = np.array(rows, dtype=bool).reshape(len(distinct), len(lex))[codes]
    out = pd.DataFrame(flags, columns=list(lex), index=text.index, dtype=bool)
    out[OTHER] = ~out.any(axis=1) if len(lex) else True
    return out


def complaints(tickets: pd.DataFrame, department: str | None, start, end) -> pd.DataFrame:
    """Return the complaints created from ``start`` to ``end`` (dates, both included), of ``department`` when the
    tickets say which department they belong to."""
    t = tickets[tickets["type"] == "complaint"]
    if department is not None and "department" in t and t["department"].notna().any():
        t = t[t["department"] == department]
    when = pd.to_datetime(t["created_at"])
    keep = (when >= pd.Timestamp(start)) & (when < pd.Timestamp(end) + pd.Timedelta(days=1))
    return t[keep.to_numpy()]


def theme_name(theme: str, language: str) -> str:
    """Return a theme's name in ``language``: the lexicon's own themes translated, a case file's as written."""
    return t(f"service.theme.{theme}", language) if theme in LEXICON or theme == OTHER else theme


def _example(text: pd.Series, flags: pd.Series) -> str:
    """Return the theme's most common text, masked and shortened, as its example."""
    hit = text[flags.to_numpy()].dropna().astype(str)
    return "" if not len(hit) else str(show_text(hit.value_counts().index[0], mask=True, limit=60))


def _p_two(k1: int, n1: int, k2: int, n2: int) -> float:
    """Return the two-sided p-value of the pooled two-proportion z-test (NaN when it cannot be computed)."""
    p = (k1 + k2) / (n1 + n2)
    se = np.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(k2 / n2 - k1 / n1) / se)) if se > 0 else float("nan")


def theme_table(before: pd.DataFrame, after: pd.DataFrame, lex: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
    """Return each theme's complaints and share of complaints either side, the change with its 95% interval and
    Holm-adjusted p-value, whether it rose beyond chance, and a masked example; most complaints after first."""
    tb, ta = tag(before["note"], lex), tag(after["note"], lex)
    n1, n2 = len(before), len(after)
    rows = []
    for th in ta.columns:
        k1, k2 = int(tb[th].sum()), int(ta[th].sum())
        low, high = newcombe(k1, n1, k2, n2) if n1 and n2 else (np.nan, np.nan)
        rows.append(
            {
                "theme": th,
                "complaints_before": k1,
                "share_before": k1 / n1 if n1 else np.nan,
                "complaints_after": k2,
                "share_after": k2 / n2 if n2 else np.nan,
                "share_change": k2 / n2 - k1 / n1 if n1 and n2 else np.nan,
                "ci_low": low,
                "ci_high": high,
                "p_value": _p_two(k1, n1, k2, n2) if n1 and n2 else np.nan,
                "example": _example(pd.concat([before["note"], after["note"]]), pd.concat([tb[th], ta[th]])),
            }
        )
    out = pd.DataFrame(rows, columns=[c for c in THEME_COLUMNS if c not in ("p_holm", "rising")])
    out["p_holm"] = holm(out["p_value"]) if len(out) else []
    out["rising"] = (out["ci_low"] > 0) & (out["p_holm"] < 0.05) & (out["theme"] != OTHER)
    out = out[(out["complaints_before"] + out["complaints_after"]) > 0]
    return out.sort_values(["complaints_after", "complaints_before"], ascending=False, kind="stable")[
        THEME_COLUMNS
    ].reset_index(drop=True)


def theme_trend(complaints_: pd.DataFrame, lex: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
    """Return each month's complaints per theme and the theme's share of that month's complaints."""
    if not len(complaints_):
        return pd.DataFrame(columns=TREND_COLUMNS)
    flags = tag(complaints_["note"], lex)
    month = pd.to_datetime(complaints_["created_at"]).dt.strftime("%Y-%m").to_numpy()
    counts = flags.groupby(month).sum()
    totals = pd.Series(month).value_counts()
    long = counts.reset_index(names="month").melt(id_vars="month", var_name="theme", value_name="complaints")
    long["share"] = long["complaints"] / long["month"].map(totals)
    long = long[long.groupby("theme")["complaints"].transform("sum") > 0]
    return long[TREND_COLUMNS].sort_values(["theme", "month"], kind="stable").reset_index(drop=True)


def theme_sentences(table: pd.DataFrame, language: str, top: int = 5) -> list[str]:
    """Return what a reader is told: each theme that rose beyond chance, with its interval and a masked example,
    or that none did; then the top themes of the after window."""
    if not len(table):
        return [t("service.no_complaints", language)]
    out = []
    for _, r in table[table["rising"]].sort_values("share_change", ascending=False).iterrows():
        p = "< 0.001" if r["p_holm"] < 0.001 else f"= {r['p_holm']:.3f}"
        out.append(
            t(
                "service.rising",
                language,
                theme=theme_name(r["theme"], language),
                before=f"{r['share_before']:.0%}",
                after=f"{r['share_after']:.0%}",
                diff=100 * r["share_change"],
                low=100 * r["ci_low"],
                high=100 * r["ci_high"],
                p=p,
                example=r["example"],
            )
        )
    if not out:
        out.append(t("service.no_rising", language))
    named = table[table["theme"] != OTHER].head(top)
    listed = ", " if language == "en" else "、"
    themes = listed.join(f"{theme_name(r['theme'], language)} ({r['complaints_after']})" for _, r in named.iterrows())
    return [*out, t("service.top", language, themes=themes)] if themes else out


def trend_matrix(trend: pd.DataFrame, table: pd.DataFrame, language: str, top: int = 5) -> pd.DataFrame:
    """Return the top themes' monthly shares of complaints as a theme × month matrix, themes named in ``language``."""
    keep = [th for th in table["theme"].head(top) if th != OTHER]
    m = trend[trend["theme"].isin(keep)].pivot(index="theme", columns="month", values="share").reindex(keep)
    m = m.dropna(how="all")
    m.index = [theme_name(th, language) for th in m.index]
    return m
