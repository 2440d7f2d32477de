"""The BG/NBD and Gamma-Gamma log-likelihoods as the optimisers call them: each term on its distinct inputs.

An optimiser evaluates a likelihood thousands of times on the same data. Most of its terms depend on one
input only (frequency x, recency t_x, age T: whole periods, a few hundred distinct values) or on one pair
of them, so each is evaluated once per distinct value or pair and spread by index. Every element goes
through the same floating-point operations, in the same order, as in the elementwise definitions
(:func:`crmnb.analysis.bgnbd._bgnbd_loglik`, :func:`crmnb.analysis.bgnbd._gg_loglik`), and the sum runs
over the same array: the fits come out identical to the last bit, only sooner.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from scipy import special

PARALLEL_MIN = 20_000
"""Fewest distinct customers for which the BG/NBD's logaddexp is split over two threads: below it, handing
the second half to a thread costs about what it saves."""


def _cpus() -> int:
    """Return the number of CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_TEXT = pd.Series(["a"]).dtype
"""The type a column of text values is given when a frame is built from them."""


def customer_codes(ids: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Return integer codes of customer ids that sort as the ids do, and the sorted distinct ids.

    The ids are taken as a frame built from their values would hold them (an object column of text
    becomes a string column), so the distinct ids keep the type the per-customer tables always had;
    text already in a string column is factorised where it is, without a round trip through Python."""
    if ids.dtype != _TEXT:
        ids = pd.Series(ids.to_numpy())
    code, distinct = pd.factorize(ids, sort=True)
    return code, pd.Index(distinct)


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct values and each element's index into them."""
    distinct, at = np.unique(values, return_inverse=True)
    return distinct, at.ravel()


def _pairs(first: np.ndarray, second: np.ndarray, n_second: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return, for the distinct pairs of two index arrays, each pair's first and second index and each
    element's pair."""
    pair, at = _codes(first.astype(np.int64) * n_second + second)
    return pair // n_second, pair % n_second, at


def _where(mask: np.ndarray) -> slice | np.ndarray:
    """Return the positions of a mask, as a slice when they are one run (a sorted x puts x > 0 last)."""
    idx = np.flatnonzero(mask)
    if idx.size and idx[-1] - idx[0] + 1 == idx.size:
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


class BGNBDTerms:
    """The BG/NBD data prepared once per fit; :meth:`loglik` and :meth:`weighted_sum` evaluate it."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
        """Index frequency, recency and age by their distinct values and pairs."""
        self.n = x.size
        self.ux, ix = _codes(x)
        self.uT, iT = _codes(T)
        # x·T pairs for the term of customers alive at T, x·t_x pairs (repeat buyers) for the dropout term
        self.px3, self.pT3, self.at3 = _pairs(ix, iT, self.uT.size)
        rep = x > 0
        self.rep = _where(rep)
        self.x_rep = self.ux > 0  # the distinct x of repeat buyers, in order
        ix_rep = ix[rep] - int(np.count_nonzero(~self.x_rep))  # positions among the repeat x
        self.ut, it = _codes(t_x[rep])
        self.px4, self.pt4, self.at4 = _pairs(ix_rep, it, self.ut.size)
        self.ix = ix
        self.a3 = np.empty(self.n)
        self.a4 = np.full(self.n, -np.inf)  # non-repeat buyers have no dropout term: log 0
        self.pool: ThreadPoolExecutor | None = None

    @contextlib.contextmanager
    def parallel(self) -> Iterator[None]:
        """Split logaddexp over two threads while in the block, on large data and more than one CPU.

        logaddexp is most of an evaluation and releases the GIL; each element is computed alone, so
        halves give the same numbers. The thread lives only for the fit (no pool survives a fork)."""
        if self.n < PARALLEL_MIN or _cpus() < 2:
            yield
            return
        with ThreadPoolExecutor(1, thread_name_prefix="bgnbd") as self.pool:
            try:
                yield
            finally:
                self.pool = None

    def _logaddexp(self) -> np.ndarray:
        """Return logaddexp(a3, a4) written into a3, the second half on the pool's thread when there is one."""
        a3, a4 = self.a3, self.a4
        if self.pool is None:
            return np.logaddexp(a3, a4, out=a3)
        h = self.n // 2
        done = self.pool.submit(np.logaddexp, a3[h:], a4[h:], out=a3[h:])
        np.logaddexp(a3[:h], a4[:h], out=a3[:h])
        done.result()
        return a3

    def loglik(self, r: float, alpha: float, a: float, b: float) -> np.ndarray:
        """Return each customer's BG/NBD log-likelihood, equal bit for bit to ``_bgnbd_loglik``, in a buffer
        that the next call overwrites."""
        xs = self.ux
        a12 = (special.gammaln(r + xs) - special.gammaln(r) + r * np.log(alpha)) + (
            special.betaln(a, b + xs) - special.betaln(a, b)
        )
        neg_rx = -(r + xs)
        log_T = np.log(alpha + self.uT)
        np.take(neg_rx[self.px3] * log_T[self.pT3], self.at3, out=self.a3)
        xr = xs[self.x_rep]
        c4 = np.log(a) - np.log(b + xr - 1)
        log_t = np.log(alpha + self.ut)
        self.a4[self.rep] = (c4[self.px4] - (r + xr)[self.px4] * log_t[self.pt4])[self.at4]
        out = self._logaddexp()
        return np.add(a12[self.ix], out, out=out)

    def weighted_sum(self, weight: np.ndarray, r: float, alpha: float, a: float, b: float) -> float:
        """Return sum(weight × log-likelihood), summed as ``np.sum`` sums the elementwise products."""
        ll = self.loglik(r, alpha, a, b)
        return float(np.sum(np.multiply(weight, ll, out=ll)))


class GammaGammaTerms:
    """The Gamma-Gamma data of the repeat buyers prepared once per fit; :meth:`loglik` evaluates it."""

    def __init__(self, x: np.ndarray, m: np.ndarray) -> None:
        """Index frequency by its distinct values and keep the terms free of parameters."""
        self.ux, self.ix = _codes(x)
        self.log_m = np.log(m)
        self.mx = m * x
        self.log_ux = np.log(self.ux)
        self.buf = np.empty(x.size)
        self.tmp = np.empty(x.size)

    def loglik(self, p: float, q: float, gamma: float) -> np.ndarray:
        """Return each repeat buyer's Gamma-Gamma log-likelihood, equal bit for bit to ``_gg_loglik``, in a
        buffer that the next call overwrites."""
        px = p * self.ux
        head = special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(gamma)
        out, tmp = self.buf, self.tmp
        np.take(head, self.ix, out=out)
        np.multiply((px - 1)[self.ix], self.log_m, out=tmp)
        out += tmp
        out += (px * self.log_ux)[self.ix]
        np.add(gamma, self.mx, out=tmp)
        np.log(tmp, out=tmp)
        np.multiply((px + q)[self.ix], tmp, out=tmp)
        out -= tmp
        return out
