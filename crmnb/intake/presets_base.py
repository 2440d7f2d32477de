"""What a mapping preset is, shared by the preset modules: the dataclass and the helper-column prefix."""

from __future__ import annotations

from dataclasses import dataclass, field

HELPER = "__"
"""Prefix of the helper columns a mapping keeps for derivations (``__is_won``); intake ignores them."""


@dataclass(frozen=True)
class Preset:
    """A ready-made mapping from one CRM's export of one object onto one canonical table."""

    name: str
    table: str
    crm: str
    description: str
    columns: dict[str, tuple[str, ...]]
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    helpers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    derive: tuple[str, ...] = ()
