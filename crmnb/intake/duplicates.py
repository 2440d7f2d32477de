"""Duplicate customers: contact fields normalised for matching, and the records that are one customer."""

from __future__ import annotations

import unicodedata

import pandas as pd

from crmnb.intake.ledger import MERGE_COLUMNS
from crmnb.intake.schema import ROW


# --------------------------------------------------------------------------- normalisers
def normalise_phone(s: pd.Series) -> pd.Series:
    """Return mobile numbers as bare digits without the +86 prefix; empty stays missing.

    >>> normalise_phone(pd.Series(["+86 138-1234-5678", "13812345678", None])).tolist()
    ['13812345678', '13812345678', None]
    """
    digits = s.astype("string").str.replace(r"\D", "", regex=True)
    digits = digits.where(~(digits.str.len().eq(13) & digits.str.startswith("86")), digits.str[2:])
    out = digits.astype(object).where(digits.notna() & (digits != ""), None)
    return out


def normalise_email(s: pd.Series) -> pd.Series:
    """Return e-mail addresses trimmed and lower-cased; empty stays missing."""
    e = s.astype("string").str.strip().str.lower()
    return e.astype(object).where(e.notna() & (e != ""), None)


def normalise_name(s: pd.Series) -> pd.Series:
    """Return names in NFKC form (full-width to half-width) without spaces, for matching only.

    >>> normalise_name(pd.Series(["张 伟", "ＡＢＣ科技"])).tolist()
    ['张伟', 'ABC科技']
    """
    return s.map(lambda x: unicodedata.normalize("NFKC", x).replace(" ", "").strip() if isinstance(x, str) else None)


# --------------------------------------------------------------------------- duplicates
def _matchable(customers: pd.DataFrame, col: str, normalise) -> pd.Series:
    """Return what a contact column is matched by: its key when intake keyed it, else it normalised."""
    key = f"{col}_key"  # crmnb.intake.protect.KEY_COLUMNS, which imports this module
    if key in customers.columns:
        return customers[key].astype(object).where(customers[key].notna(), None)
    return normalise(customers[col])


def find_duplicate_customers(customers: pd.DataFrame) -> pd.DataFrame:
    """Return duplicate customer records and the record each merges into.

    Two records are the same customer when their normalised phone or e-mail match
    (directly or through a third record). The earliest created record, then the
    smallest id, is kept. Columns: duplicate_id, kept_id, match_on, duplicate_row.
    Contacts that intake keyed (``phone_key``, ``email_key``: hashes of the normalised
    contact) are compared by their keys.
    """
    c = customers[["customer_id", "created_at", ROW]].copy()
    c["phone_n"] = _matchable(customers, "phone", normalise_phone)
    c["email_n"] = _matchable(customers, "email", normalise_email)
    c = c[c["customer_id"].notna()].sort_values(["created_at", "customer_id"], na_position="last", kind="stable")
    c = c.reset_index(drop=True)  # a record's place in this order is its number below: the earliest is kept
    # only records sharing a contact with another take part (at 100x the demo: 20 K of 660 K records)
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    match_on: dict[int, str] = {}
    for key, label in (("phone_n", "phone"), ("email_n", "e-mail")):
        sub = c[c[key].notna() & c[key].duplicated(keep=False)]
        first = sub.index.to_series().groupby(sub[key].to_numpy(), sort=False).transform("first").to_numpy()
        at = sub.index.to_numpy()
        moved = at != first  # a record matched to an earlier one
        for dup, keep in zip(at[moved].tolist(), first[moved].tolist()):
            a, b = root(keep), root(dup)
            if a != b:
                parent[max(a, b)] = min(a, b)
            match_on.setdefault(dup, label)
    ids, row_numbers = c["customer_id"].to_numpy(dtype=object), c[ROW].to_numpy()
    rows = []
    for i in sorted(parent):
        r = root(i)
        if r != i:
            rows.append(
                {
                    "duplicate_id": ids[i],
                    "kept_id": ids[r],
                    "match_on": match_on.get(i, "phone"),
                    "duplicate_row": int(row_numbers[i]),
                }
            )
    return pd.DataFrame(rows, columns=MERGE_COLUMNS)
