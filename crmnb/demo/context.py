"""What every builder shares: the one random generator, the scale, the seed and the sales reps.

All tables draw from one :class:`numpy.random.Generator`, so the builders must run in the order
:func:`crmnb.demo.world.build` calls them: the same seed then gives the same files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crmnb.demo.vocab import GIVEN_NAMES, SURNAMES
from crmnb.intake.schema import DEPARTMENTS


@dataclass(frozen=True)
class Reps:
    """The sales reps: 5-8 per department, with a Chinese name, a workload and a speed."""

    name: list[str]
    dept: np.ndarray
    load: np.ndarray
    """Relative share of new leads and customers a rep is given."""
    speed: np.ndarray
    """Factor on the rep's first-response time (above 1: slower)."""


def draw_reps(rng: np.random.Generator) -> Reps:
    """Return the sales reps of both departments."""
    counts = rng.integers(5, 9, len(DEPARTMENTS))
    total = int(counts.sum())
    combo = rng.choice(len(SURNAMES) * len(GIVEN_NAMES), total, replace=False)
    name = [SURNAMES[c // len(GIVEN_NAMES)][0] + GIVEN_NAMES[c % len(GIVEN_NAMES)][0] for c in combo]
    dept = np.repeat(np.arange(len(DEPARTMENTS)), counts)
    load = rng.uniform(0.6, 1.4, total)
    speed = np.exp(rng.normal(0.0, 0.15, total))
    return Reps(name=name, dept=dept, load=load, speed=speed)


@dataclass(frozen=True)
class Context:
    """One generation run's shared state, passed explicitly from builder to builder."""

    rng: np.random.Generator
    scale: float
    seed: int
    reps: Reps

    def pick_reps(self, dept: np.ndarray) -> np.ndarray:
        """Return a rep of the given department for each row, weighted by workload."""
        out = np.empty(len(dept), np.int64)
        for d in range(len(DEPARTMENTS)):
            m = dept == d
            idx = np.flatnonzero(self.reps.dept == d)
            out[m] = self.rng.choice(idx, int(m.sum()), p=self.reps.load[idx] / self.reps.load[idx].sum())
        return out


def new_context(scale: float, seed: int) -> Context:
    """Return the context of a run: the seeded generator and the reps, drawn first."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    rng = np.random.default_rng(seed)
    return Context(rng=rng, scale=float(scale), seed=int(seed), reps=draw_reps(rng))
