"""A scored record's reasons in words, a column at a time: each message filled once per distinct value.

At 100 times the demo some 200,000 open records get three reasons each; filling the messages record by
record was 600,000 Python-level ``str.format`` calls and a loop around them (3.5 s). Here each reason
slot is worded for every record at once: a category's wording and a number's once per distinct value
(its exact bits, so ``-0.0`` keeps its own ``-0``), the raising or lowering frame by joining text around
the wording (what ``str.format`` with ``{reason}`` alone does), and the slots joined by the separator.
The text is the same as filling each message with ``str.format`` as :func:`crmnb.present.words.t` does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmnb.analysis.scoring_features import CATEGORICAL, STAGES
from crmnb.present.words import category, t

LEAD_STAGES = STAGES[:2]
_MARK = "\x00"
"""Stands for the reason while a frame (raises / lowers the odds) is split into the text around it."""


def _around(message: str) -> tuple[str, str]:
    """Return the text before and after ``{reason}`` in a filled frame."""
    before, after = message.format(reason=_MARK).split(_MARK)
    return before, after


def _distinct(values: np.ndarray, word) -> np.ndarray:
    """Return ``word(value)`` for each value, called once per distinct value (numbers by their exact bits)."""
    if values.dtype.kind == "f":
        uniq, back = np.unique(values.view(np.int64), return_inverse=True)
        return np.array([word(float(v)) for v in uniq.view(np.float64)], dtype=object)[back.reshape(-1)]
    if pd.isna(values).any():  # None and NaN may read apart: each its own call
        return np.array([word(v) for v in values], dtype=object)
    back, uniq = pd.factorize(values.astype(object))
    return np.array([word(v) for v in uniq], dtype=object)[back]


def _slot(x: pd.DataFrame, names: list[str], column: np.ndarray, lang: str, said: dict[str, str]) -> np.ndarray:
    """Return the wording of one reason slot for every record (None where the slot is skipped)."""
    what = np.full(len(x), None, dtype=object)
    kinds, stages = x["kind"].to_numpy(dtype=object), x["stage"].to_numpy(dtype=object)
    lead_stage = {s: t(f"predict.stage.{s}", lang) for s in LEAD_STAGES}
    for j, f in enumerate(names):
        rows = np.flatnonzero(column == j)
        if f == "log_amount":  # a lead has no deal size
            rows = rows[kinds[rows] != "lead"]
        if f == "stage":  # a lead's stage reads as where the lead stands
            early = np.isin(stages[rows], np.array(LEAD_STAGES, dtype=object))
            what[rows[early]] = [lead_stage[s] for s in stages[rows[early]]]
            rows = rows[~early]
        if not len(rows):
            continue
        message = said[f]
        if f in CATEGORICAL:
            values = x[f].to_numpy(dtype=object)[rows]
            what[rows] = _distinct(values, lambda v, m=message: m.format(value=category(v, lang)))
        else:
            values = x["amount" if f == "log_amount" else f].to_numpy(dtype=float)[rows]
            values = np.where(np.isnan(values), 0.0, values)
            what[rows] = _distinct(values, lambda v, m=message: m.format(value=v))
    return what


def worded(x: pd.DataFrame, names: list[str], vals: np.ndarray, order: np.ndarray, lang: str) -> list[str]:
    """Return each record's reasons joined in words: feature ``names[order[i]]`` raising or lowering its odds."""
    sep = t("predict.reason.sep", lang)
    up, down = (_around(t(f"predict.reason.{k}", lang)) for k in ("up", "down"))
    said = {f: t(f"predict.reason.{f}", lang) for f in names}
    text = np.full(len(x), "", dtype=object)
    has = np.zeros(len(x), dtype=bool)
    for k in range(order.shape[1]):
        column = order[:, k]
        what = _slot(x, names, column, lang, said)
        here = np.flatnonzero(what != None)  # noqa: E711 (elementwise: the slots worded)
        if not len(here):
            continue
        raises = vals[here, column[here]] > 0
        part = np.where(raises, up[0], down[0]).astype(object) + what[here] + np.where(raises, up[1], down[1])
        text[here] = np.where(has[here], text[here] + sep + part, part)
        has[here] = True
    return text.tolist()
