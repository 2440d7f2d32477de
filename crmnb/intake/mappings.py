"""Column mappings: bring a real CRM export (Salesforce, HubSpot, Zoho, or any other) onto a canonical table.

A mapping says, for one canonical table, which export column holds each canonical
column, how export values (deal stages, lead statuses) translate into canonical
ones, which columns are one constant for the whole export (the department), and
which columns are derived (a deal's status from ``IsWon``/``IsClosed`` or from its
stage). It works on the export as text, before intake types it, and keeps every row
and its order, so row numbers in messages stay those of the export.

In a case file a table's ``mapping`` is a preset name or a mapping written out;
a written-out mapping may start from a preset and override parts of it::

    data:
      tables:
        opportunities:
          file: Opportunity.csv
          mapping: salesforce_opportunity
        leads:
          file: Lead.csv
          mapping:
            preset: salesforce_lead
            constants: {department: 销售一部}          # every lead belongs to Sales 1
            values:
              status: {"Nurturing": open}              # a custom lead status
        tickets:
          file: cases.csv
          mapping:                                     # no preset: columns named one by one
            columns: {ticket_id: Case Number, customer_id: Account ID, type: Case Type,
                      created_at: Opened}
            values: {type: {Problem: complaint, Question: request}}

Presets (:data:`PRESETS`) read both the names the CRM's API and data-export tools
write and the labels its CSV export from the web interface writes (for HubSpot:
``dealstage`` and ``Deal Stage``). Stage values are matched ignoring case, spaces
and punctuation, and a trailing pipeline name in brackets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from crmnb.errors import DataError
from crmnb.intake.presets import DERIVATIONS, HELPER, PRESETS
from crmnb.intake.schema import OPPORTUNITY_STAGES, TABLES


# --------------------------------------------------------------------------- the case-file model
class MappingSpec(BaseModel):
    """A column mapping as written in a case file (``data.tables.<table>.mapping``).

    - ``preset``: start from a named preset (see :data:`PRESETS`); optional.
    - ``columns``: canonical column → export column (or a list of candidates, the
      first present wins); overrides the preset's choice for that column. An export
      column already named like a canonical column maps onto it unless told otherwise.
    - ``values``: canonical column → {export value → canonical value}; merged over
      the preset's table (``stage``: onto needs_confirmed / proposal / negotiation /
      won / lost).
    - ``constants``: canonical column → one value for every row (``department``);
      a constant wins over a column.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    preset: str | None = None
    columns: dict[str, str | list[str]] = Field(default_factory=dict)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    constants: dict[str, str] = Field(default_factory=dict)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        if v is not None and v not in PRESETS:
            raise ValueError(f"unknown mapping preset {v!r}; expected one of {', '.join(PRESETS)}")
        return v

    @field_validator("values")
    @classmethod
    def _values_are_text(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        return {col: {str(k): str(val) for k, val in m.items()} for col, m in v.items()}

    @field_validator("constants")
    @classmethod
    def _constants_are_text(cls, v: dict[str, str]) -> dict[str, str]:
        return {col: str(val) for col, val in v.items()}

    def check_table(self, table: str) -> list[str]:
        """Return what is wrong with this mapping for canonical ``table`` (empty when fine)."""
        problems = []
        if self.preset and PRESETS[self.preset].table != table:
            problems.append(f"preset {self.preset!r} maps the table '{PRESETS[self.preset].table}', not '{table}'")
        known = TABLES[table].columns
        for part in ("columns", "values", "constants"):
            bad = sorted(set(getattr(self, part)) - set(known))
            if bad:
                problems.append(
                    f"{part}: unknown column(s) {', '.join(bad)} of table '{table}'; "
                    f"expected some of {', '.join(known)}"
                )
        return problems


# --------------------------------------------------------------------------- applying a mapping
def normalise_value(v: str) -> str:
    """Return a value reduced for matching: case, spaces and punctuation ignored.

    >>> normalise_value("Decision Maker Bought-In"), normalise_value("decisionmakerboughtin")
    ('decisionmakerboughtin', 'decisionmakerboughtin')
    """
    return re.sub(r"[\W_]+", "", str(v).casefold())


def _without_pipeline(v: str) -> str:
    return re.sub(r"\s*\([^()]*\)\s*$", "", str(v))


def _norm_col(name: str) -> str:
    return re.sub(r"\s+", " ", str(name)).strip().casefold()


@dataclass(frozen=True)
class Mapping:
    """A mapping ready to apply: a preset merged with the case file's overrides."""

    table: str
    name: str  # the preset's name, or 'custom'
    columns: dict[str, tuple[str, ...]]
    values: dict[str, dict[str, str]]
    constants: dict[str, str]
    helpers: dict[str, tuple[str, ...]]
    derive: tuple[str, ...]

    def expected_columns(self) -> list[str]:
        """Return every export column name the mapping looks for (to recognise the delimiter)."""
        out = [c for cands in self.columns.values() for c in cands]
        return out + [c for cands in self.helpers.values() for c in cands]

    def apply(self, raw: pd.DataFrame, source: str = "") -> pd.DataFrame:
        """Return the export's rows with canonical column names and values, every row kept in order.

        Raises :class:`DataError` naming the file and the export column when a
        required canonical column has no source.
        """
        out, mapped = self.take_columns(raw)
        for col, table in self.values.items():
            if col in out:
                out[col] = translate(out[col], table)
        for name in self.derive:
            DERIVATIONS[name](out, mapped)
        derived = {c for c in out.columns if not c.startswith(HELPER)} - mapped
        missing = [c for c in TABLES[self.table].required if c not in mapped and c not in derived]
        if missing:
            raise DataError(self.missing_message(missing, raw, source))
        return out.reset_index(drop=True)

    def take_columns(self, raw: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
        """Return the export's columns under their canonical names, the constants and the helper
        columns, with the set of canonical columns so filled."""
        find = column_finder(raw)
        out = pd.DataFrame(index=raw.index)
        mapped: set[str] = set()
        for col, cands in self.columns.items():
            src = find(cands)
            if src is not None:
                out[col] = raw[src]
                mapped.add(col)
        for col in TABLES[self.table].columns:  # a column already named canonically maps onto itself
            if col not in mapped and col not in self.constants and col in raw.columns:
                out[col] = raw[col]
                mapped.add(col)
        for col, value in self.constants.items():
            out[col] = value
            mapped.add(col)
        for helper, cands in self.helpers.items():
            src = find(cands)
            if src is not None:
                out[f"{HELPER}{helper}"] = raw[src]
        return out, mapped

    def missing_message(self, missing: list[str], raw: pd.DataFrame, source: str = "") -> str:
        """Return the message for required canonical columns the export has no source for."""
        where = (
            f"{source} (table '{self.table}', mapping {self.name})"
            if source
            else f"table '{self.table}' (mapping {self.name})"
        )
        lines = []
        for c in missing:
            cands = self.columns.get(c)
            looked = (
                f"export column {' or '.join(repr(x) for x in cands)} not found"
                if cands
                else "the mapping names no export column for it"
            )
            lines.append(
                f"'{c}': {looked}; map it with columns: {{{c}: <export column>}}"
                + (f" or constants: {{{c}: <value>}}" if c == "department" else "")
            )
        return (
            f"{where}: required column(s) missing:\n    "
            + "\n    ".join(lines)
            + f"\n  the export's columns: {', '.join(map(str, raw.columns)) or 'none'}"
        )


def column_finder(raw: pd.DataFrame) -> Callable[[tuple[str, ...]], str | None]:
    """Return a lookup of the first of some candidate names that is a column of ``raw``: as written
    first, then ignoring case and runs of spaces."""
    by_norm: dict[str, str] = {}
    for c in raw.columns:
        by_norm.setdefault(_norm_col(c), c)

    def find(cands: tuple[str, ...]) -> str | None:
        for c in cands:
            if c in raw.columns:
                return c
        for c in cands:
            if _norm_col(c) in by_norm:
                return by_norm[_norm_col(c)]
        return None

    return find


def translate(values: pd.Series, table: dict[str, str]) -> pd.Series:
    """Return values translated through ``table`` (matched ignoring case, spaces, punctuation and a
    trailing '(pipeline)'); values not in the table are kept as written.

    >>> translate(pd.Series(["Closed Won (Sales Pipeline)", "closedlost", "x"]),
    ...           {"closedwon": "won", "Closed Lost": "lost"}).tolist()
    ['won', 'lost', 'x']
    """
    norm = {normalise_value(k): v for k, v in table.items()}

    def one(v):
        if not isinstance(v, str) or not v.strip():
            return v
        hit = norm.get(normalise_value(v))
        if hit is None:
            hit = norm.get(normalise_value(_without_pipeline(v)))
        return v.strip() if hit is None else hit

    return values.map(one)


def resolve(spec: str | MappingSpec | None, table: str) -> Mapping | None:
    """Return the mapping for ``table`` from a case file's declaration (preset name or spec), or None."""
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = MappingSpec(preset=spec)
    problems = spec.check_table(table)
    if problems:
        raise DataError(f"table '{table}': mapping: " + "; ".join(problems))
    base = PRESETS[spec.preset] if spec.preset else None
    columns = dict(base.columns) if base else {}
    for col, src in spec.columns.items():
        columns[col] = (src,) if isinstance(src, str) else tuple(src)
    values = {k: dict(v) for k, v in base.values.items()} if base else {}
    for col, table_ in spec.values.items():
        values.setdefault(col, {}).update(table_)
    return Mapping(
        table=table,
        name=spec.preset or "custom",
        columns=columns,
        values=values,
        constants=dict(spec.constants),
        helpers=dict(base.helpers) if base else {},
        derive=base.derive if base else (),
    )


def link_converted_leads(frames: dict[str, pd.DataFrame]) -> int:
    """Fill ``opportunities.lead_id`` from the leads' converted-opportunity ids (Salesforce's
    ``Lead.ConvertedOpportunityId``) where the opportunity export has none; return how many were filled."""
    leads, opps = frames.get("leads"), frames.get("opportunities")
    col = f"{HELPER}converted_opportunity_id"
    if leads is None or opps is None or col not in leads or "lead_id" not in leads:
        return 0
    link = leads[[col, "lead_id"]].dropna()
    link = link[link[col].astype(str).str.strip() != ""].drop_duplicates(col)
    to_lead = dict(zip(link[col].astype(str).str.strip(), link["lead_id"]))
    if "opportunity_id" not in opps:
        return 0
    have = opps["lead_id"] if "lead_id" in opps else pd.Series(None, index=opps.index, dtype=object)
    empty = have.isna() | (have.astype("string").str.strip() == "")
    fill = opps["opportunity_id"].astype("string").str.strip().map(to_lead)
    todo = empty & fill.notna()
    if todo.any():
        opps["lead_id"] = have.astype(object).where(~todo, fill)
    return int(todo.sum())


def stage_values() -> tuple[str, ...]:
    """Return the canonical stages a stage mapping may point at."""
    return OPPORTUNITY_STAGES
