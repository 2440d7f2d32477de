"""Generate the demo: draw the company, write one file per table and the answer key."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from crmnb.demo.answers import planted_facts
from crmnb.demo.tables import BUILDERS
from crmnb.demo.world import build
from crmnb.demo.write import Progress, to_sqlite, write_tables

__all__ = ["generate", "to_sqlite", "DEFAULT_SEED"]

DEFAULT_SEED = 20250701
"""The seed used when none is given."""


def generate(
    out_dir: str | Path,
    scale: float = 1.0,
    seed: int = DEFAULT_SEED,
    progress: Progress | None = None,
) -> dict:
    """Write the demo CRM exports to out_dir and return a summary (rows per table, planted facts)."""
    world = build(scale, seed)
    out = Path(out_dir)
    rows = write_tables(out, {table: partial(fn, world) for table, fn in BUILDERS.items()}, progress)
    facts = planted_facts(world, rows)
    (out / "planted.json").write_text(json.dumps(facts, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if progress:
        progress("wrote planted.json")
    return facts
