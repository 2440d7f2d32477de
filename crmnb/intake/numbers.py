"""Reading amounts as exports write them: decimal comma or point, thousands separators, currencies.

Each value is read in the one way its text allows (``1.234,50`` is 1234.50, ``1,234.50`` too,
``7000,00`` is 7000.00); a value that two conventions read differently (``1,234``: 1234 or
1.234) takes the convention the rest of its column shows, and a column that shows none is
refused with a message saying how to declare it (``decimal`` on the table's source). A currency
symbol or code (``¥1,234.50``, ``CNY 1234.5``) is stripped and named in a note; ``inf`` and
``NaN`` are not amounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crmnb.errors import DataError

CURRENCY_SYMBOLS: dict[str, str] = {"¥": "CNY", "￥": "CNY", "元": "CNY", "$": "USD", "€": "EUR", "£": "GBP"}
"""Currency symbols stripped from an amount, with the currency they are taken for ($ as USD)."""

CURRENCY_CODES: tuple[str, ...] = ("CNY", "RMB", "USD", "EUR", "HKD", "GBP", "JPY", "TWD", "SGD", "AUD", "CAD")
"""ISO currency codes stripped from an amount (RMB as CNY)."""

DECIMALS = {".": "decimal point", ",": "decimal comma"}
"""The decimal separators a source may declare (``decimal: ","``)."""

_CUR = "|".join(re.escape(c) for c in (*CURRENCY_SYMBOLS, *CURRENCY_CODES))
_MONEY = re.compile(
    rf"^(?P<s1>[-+]?)\s*(?P<c1>{_CUR})?\s*(?P<s2>[-+]?)(?P<body>[\d.,]+|[\d.]+[eE][-+]?\d+)\s*(?P<c2>{_CUR})?$"
)

# the forms of a number's body; a first group of thousands never starts with 0
_FORMS: tuple[tuple[str, re.Pattern], ...] = (
    ("plain", re.compile(r"^\d+(?:[eE][-+]?\d+)?$")),
    ("either_dot", re.compile(r"^[1-9]\d{0,2}\.\d{3}$")),  # 1.234: 1.234 or 1234
    ("either_comma", re.compile(r"^[1-9]\d{0,2},\d{3}$")),  # 1,234: 1234 or 1.234
    ("comma", re.compile(r"^[1-9]\d{0,2}(?:\.\d{3})+$")),  # 1.234.567: dots group thousands
    ("point", re.compile(r"^[1-9]\d{0,2}(?:,\d{3})+$")),  # 1,234,567: commas group thousands
    ("point", re.compile(r"^(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)?\.\d+(?:[eE][-+]?\d+)?$")),  # 1,234.50 / 1234.5
    ("point", re.compile(r"^\d+\.$")),  # 1234.
    ("comma", re.compile(r"^(?:[1-9]\d{0,2}(?:\.\d{3})+|\d+)?,\d+$")),  # 1.234,50 / 7000,00
)


@dataclass
class Numbers:
    """A column of amounts as read: the numbers, which values could not be read, and what was noticed."""

    values: pd.Series  # float, NaN where empty or unreadable
    bad: pd.Series  # bool: written but unreadable
    notes: list[str] = field(default_factory=list)
    local: bool = True  # False when the column's convention or currency was needed: the whole column decides


def _forms(body: pd.Series) -> pd.Series:
    """Return the form of each number's body (see ``_FORMS``), 'bad' where it has none; the first form wins."""
    forms = pd.Series("bad", index=body.index, dtype=object)
    body = body.astype("string[pyarrow]")  # Arrow's regular expressions: many times faster
    for name, pattern in reversed(_FORMS):
        forms[body.str.fullmatch(pattern.pattern).fillna(False).astype(bool).to_numpy()] = name
    return forms


def _as_number(body: str, decimal: str) -> float:
    thousands = "," if decimal == "." else "."
    return float(body.replace(thousands, "").replace(decimal, "."))


def read_numbers(text: pd.Series, where: str, column: str, table: str, decimal: str | None = None) -> Numbers:
    """Read a column of amounts written as text; ``decimal`` ('.' or ',') is the declared convention.

    Raises :class:`DataError` naming ``where``, the column and rows when values read two ways and
    nothing in the column (or the case file) says which.

    >>> got = read_numbers(pd.Series(["7000,00", "1.234,50", ""]), "f.csv", "amount", "orders")
    >>> got.values.tolist()[:2], got.bad.tolist()
    ([7000.0, 1234.5], [False, False, False])
    """
    s = text.astype("string").str.strip()
    filled = (s.notna() & (s != "")).fillna(False).astype(bool)
    values = pd.Series(np.nan, index=s.index, dtype=float)
    bad = pd.Series(False, index=s.index)
    # the common case first, at full speed: plain numbers that only one convention reads
    integer = _matches(s, r"[-+]?\d+")
    point = _matches(s, r"[-+]?(?:\d*\.\d+(?:[eE][-+]?\d+)?|\d+\.|\d+[eE][-+]?\d+)") & ~_matches(
        s, r"[-+]?[1-9]\d{0,2}\.\d{3}"
    )
    quick = filled & (integer | (point if decimal != "," else False))
    values[quick] = pd.to_numeric(s[quick], errors="coerce")
    rest = filled & ~quick
    if not rest.any():
        return _finite(values, bad, s, [])
    m = _split(s[rest])
    bad[m.index[m["body"].isna().to_numpy()]] = True
    m = m[m["body"].notna()]
    forms = _forms(m["body"])
    bad[forms.index[(forms == "bad").to_numpy()]] = True
    m, forms = m[forms != "bad"], forms[forms != "bad"]
    notes = _currency_notes(m, where, column, table, s)
    used = set(forms) | ({"point"} if (quick & point).any() else set())
    chosen = decimal or _column_convention(used, forms, m["body"], where, column, table)
    dec = forms.map({"comma": ",", "point": "."}).fillna(chosen or ".")
    if decimal is not None:  # a value only the other convention reads is not read as declared
        other = dec != decimal
        bad[dec.index[other.to_numpy()]] = True
        m, dec = m[~other], dec[~other]
    body = m["body"].astype("string[pyarrow]")
    for d, thousands in ((",", "."), (".", ",")):
        on = dec == d
        body[on] = body[on].str.replace(thousands, "", regex=False).str.replace(d, ".", regex=False)
    sign = np.where((m["s1"].fillna("") + m["s2"].fillna("")).str.contains("-", regex=False), -1.0, 1.0)
    values[body.index] = pd.to_numeric(body, errors="coerce").to_numpy() * sign
    notes += _convention_notes(m["body"], dec, decimal, column)
    got = _finite(values, bad, s, notes)
    got.local = not notes and not forms.isin(["either_dot", "either_comma"]).any()
    return got


def _split(s: pd.Series) -> pd.DataFrame:
    """Return each amount's sign, currency and body (``_MONEY``'s groups); bare bodies without a regex."""
    bare = _matches(s, r"[-+]?[\d.,]+").to_numpy()
    m = pd.DataFrame(index=s.index, columns=["s1", "c1", "s2", "body", "c2"], dtype=object)
    if bare.any():
        b = s[bare].astype(str)
        signed = b.str[:1].isin(["-", "+"])
        m.loc[bare, "s1"] = b.str[:1].where(signed, "").to_numpy()
        m.loc[bare, "body"] = b.where(~signed, b.str[1:]).to_numpy()
    if (~bare).any():
        m.loc[~bare] = s[~bare].str.extract(_MONEY).to_numpy()
    return m


def _matches(s: pd.Series, pattern: str) -> pd.Series:
    return s.str.fullmatch(pattern).fillna(False).astype(bool)


def _finite(values: pd.Series, bad: pd.Series, s: pd.Series, notes: list[str]) -> Numbers:
    """Refuse infinities and NaN written as words (inf, Infinity, NaN) or as a number too large."""
    words = _matches(s, r"(?i)[-+]?(?:inf|infinity|nan)")
    nonfinite = (values.notna() & ~np.isfinite(values.fillna(0))) | words
    bad = bad | nonfinite
    values[bad] = np.nan
    return Numbers(values, bad, notes)


def _column_convention(used: set, forms: pd.Series, body: pd.Series, where: str, column: str, table: str) -> str | None:
    """Return the column's decimal separator from the values only one convention reads; raise when undecided."""
    either = forms[forms.isin(["either_dot", "either_comma"])]
    point, comma = "point" in used, "comma" in used
    if point != comma:
        return "." if point else ","
    if not len(either):
        return None
    rows = [int(i) + 1 for i in either.index[:5]]
    example = body[either.index[0]]
    why = (
        "the column holds both values only a decimal point reads and values only a decimal comma reads"
        if point
        else "nothing else in the column says which"
    )
    raise DataError(
        f"{where} (table '{table}'): column '{column}': {len(either):,} value(s) read two ways, e.g. "
        f"{example!r} in export row(s) {', '.join(map(str, rows))}{' …' if len(either) > 5 else ''}: "
        f"{_as_number(example, '.'):g} with a decimal point or {_as_number(example, ','):g} with a decimal comma, "
        f"and {why}; declare it in the case file: "
        f'data.tables.{table}.decimal: "," (1.234,50 is 1234.50) or "." (1,234.50 is 1234.50)'
    )


def _currency_notes(m: pd.DataFrame, where: str, column: str, table: str, s: pd.Series) -> list[str]:
    """Return a note naming the currency stripped from the column; raise when it holds several."""
    marks = m["c1"].fillna(m["c2"]).dropna()
    if not len(marks):
        return []
    codes = marks.map(lambda c: CURRENCY_SYMBOLS.get(c, "CNY" if c == "RMB" else c))
    if codes.nunique() > 1:
        shown = "; ".join(
            f"{c} in {n:,} row(s), e.g. {s[i[0]]!r} in export row(s) {', '.join(str(int(r) + 1) for r in i[:5])}"
            for c, n in codes.value_counts().items()
            for i in [codes.index[(codes == c).to_numpy()]]
        )
        raise DataError(
            f"{where} (table '{table}'): column '{column}' mixes currencies: {shown}; amounts in different "
            f"currencies cannot be added up: convert them to one currency in a copy of the export"
        )
    written = ", ".join(sorted(set(marks)))
    return [f"column '{column}': currency {codes.iloc[0]} stripped ({written}) from {len(marks):,} value(s)"]


def _convention_notes(body: pd.Series, dec: pd.Series, decimal: str | None, column: str) -> list[str]:
    """Return notes saying how many values were read with a decimal comma or a thousands separator."""
    how = " (declared)" if decimal else ""
    comma = int((dec == ",").sum())
    grouped = int(((dec == ".") & body.str.contains(",", regex=False)).sum())
    notes = []
    if comma:
        notes.append(f"column '{column}': {comma:,} value(s) read with a decimal comma{how}: 1.234,50 as 1234.50")
    if grouped:
        notes.append(
            f"column '{column}': {grouped:,} value(s) read with ',' between thousands{how}: 1,234.50 as 1234.50"
        )
    return notes
