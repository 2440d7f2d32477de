"""Vectorised numpy helpers the builders share: scaled counts, grouped sums, ranked picks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def scaled(base: float, scale: float, minimum: int = 1) -> int:
    """Return a scaled count, at least ``minimum``."""
    return max(minimum, int(round(base * scale)))


def pick(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Return one drawn column index per row of a row-stochastic (unnormalised) matrix."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), p.shape[1] - 1)


def group_starts(counts: np.ndarray) -> np.ndarray:
    """Return the first position of each group in a repeated array."""
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)


def grouped_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Return cumulative sums restarting at each group of a repeated array."""
    cum = np.cumsum(values)
    if len(values) == 0:
        return cum
    st = group_starts(counts)
    has = counts > 0
    base = np.zeros(len(counts), dtype=cum.dtype)
    base[has] = cum[st[has]] - values[st[has]]
    return cum - np.repeat(base, counts)


def rank_in_group(group: np.ndarray) -> np.ndarray:
    """Return 0, 1, 2, ... within runs of equal values of a sorted array."""
    n = len(group)
    if n == 0:
        return np.zeros(0, np.int64)
    new = np.concatenate(([True], group[1:] != group[:-1]))
    start = np.maximum.accumulate(np.where(new, np.arange(n), 0))
    return np.arange(n) - start


def top_k(group: np.ndarray, key: np.ndarray, eligible: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Mark, in each group, the ``k[group]`` eligible rows with the largest key."""
    idx = np.flatnonzero(eligible)
    order = idx[np.lexsort((-key[idx], group[idx]))]
    rank = rank_in_group(group[order])
    chosen = np.zeros(len(group), bool)
    chosen[order[rank < k[group[order]]]] = True
    return chosen


def unique_redraw(
    rng: np.random.Generator, codes: Callable[[], np.ndarray], redraw: Callable[[np.ndarray], None]
) -> None:
    """Redraw the rows whose code repeats an earlier row until all codes are unique."""
    for _ in range(50):
        c = codes()
        _, first = np.unique(c, return_index=True)
        dup = np.ones(len(c), bool)
        dup[first] = False
        if not dup.any():
            return
        redraw(np.flatnonzero(dup))
    raise RuntimeError("could not make values unique")


def sort_order(*keys: np.ndarray) -> np.ndarray:
    """Return a stable order by the given keys (first key most significant)."""
    return np.lexsort(tuple(reversed(keys)))


def ranks(order: np.ndarray) -> np.ndarray:
    """Return the inverse of a permutation: the position of each row in ``order``."""
    r = np.empty(len(order), np.int64)
    r[order] = np.arange(len(order))
    return r
