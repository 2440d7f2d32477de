"""Personal data kept out of the step hand-offs: contacts replaced by keyed hashes, free text masked.

Step 4 finds duplicate customers by their phone or e-mail, so the hand-offs must still tell two
equal contacts apart from two different ones, but never hold the contact itself. Intake writes
each phone and e-mail normalised (digits only, lower case) and then as an HMAC-SHA256 under a key
that is never written anywhere: equal contacts get equal keys, and nobody can turn a key back into
a number by trying all 11-digit mobiles without the key. The shown column keeps the contact as a
reader sees it (``138****5678``), and notes have their resident IDs, bank cards, phones and
e-mails masked (:func:`crmnb.present.masking.mask_text`).

The key is drawn at random once per process (one run's kernel), unless ``CRMNB_CONTACT_KEY`` is
set: then it is derived from that secret and the case id, so a department's runs give the same
keys from one run to the next (to follow a customer across batches) and only to those who hold it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmnb.intake.duplicates import normalise_email, normalise_phone
from crmnb.intake.parse import Intake, distinct_share
from crmnb.present.masking import mask_email, mask_phone, mask_text

CONTACT_KEY_ENV = "CRMNB_CONTACT_KEY"
"""The environment variable that holds a department's secret for contact keys (optional)."""

KEY_COLUMNS: dict[str, str] = {"phone": "phone_key", "email": "email_key"}
"""The column that holds each contact column's keyed hash in the hand-offs."""

CONTACTS = (("phone", normalise_phone, mask_phone), ("email", normalise_email, mask_email))
"""Each contact column with the function that normalises it for matching and the one that masks it."""

FREE_TEXT = ("note",)
"""The free-text columns: a rep's notes, where anything personal may be written."""

REWRITTEN_COLUMNS: dict[str, str] = {"phone": "phone_rewritten", "email": "email_rewritten"}
"""The column that says which contacts intake found written other than normalised, for step 4's log."""

_RUN_KEY = secrets.token_bytes(32)  # this process's own: never written, gone when the run ends


def contact_key(case_id: str) -> bytes:
    """Return the key contacts are hashed under: derived from ``CRMNB_CONTACT_KEY`` and the case, else this run's."""
    secret = os.environ.get(CONTACT_KEY_ENV, "")
    if not secret:
        return _RUN_KEY
    return hmac.new(secret.encode("utf-8"), f"crmnb contact key {case_id}".encode(), hashlib.sha256).digest()


IN_ENGINE_FROM = 20_000
"""From how many contacts in one batch (or distinct contacts, when they repeat) :func:`keyed` hashes them in
DuckDB: it computes SHA-256 over Arrow's text on every core, over twice as fast as Python's ``hashlib`` one value
at a time (a large department's customers and leads bring millions of distinct contacts); fewer are not worth a
connection's start (about 25 ms)."""


def keyed(values: pd.Series, key: bytes, arr: pa.Array | None = None) -> pd.Series:
    """Return each value's HMAC-SHA256 under ``key`` (32 hex digits); missing stays missing. ``arr``: the
    values as Arrow text, when the caller has them.

    >>> keyed(pd.Series(["13812345678", None, "13812345678"]), b"k").tolist()
    ['c365caf352e309a6776df9ae371e47d9', None, 'c365caf352e309a6776df9ae371e47d9']
    """
    arr = _as_arrow(values) if arr is None else arr
    if len(values) >= IN_ENGINE_FROM and distinct_share(values) > 0.5:
        got = _hmacs_in_engine(arr, key)  # every row: finding the distinct ones would cost more than it spares
        return pd.Series(np.asarray(got.to_numpy(zero_copy_only=False), dtype=object), index=values.index, dtype=object)
    found = pc.dictionary_encode(arr)  # each distinct value hashed once: an e-mail's events repeat its address
    codes = pc.fill_null(found.indices, -1).to_numpy(zero_copy_only=False)
    distinct = found.dictionary
    if len(distinct) >= IN_ENGINE_FROM:
        out = _hmacs_in_engine(distinct, key).to_numpy(zero_copy_only=False)
    else:
        out = _hmacs(distinct.to_pylist(), key)
    digests = np.array([*out, None], dtype=object)
    return pd.Series(digests[np.where(codes < 0, len(out), codes)], index=values.index, dtype=object)


def _hmacs(distinct: list[str], key: bytes) -> list[str]:
    """Return each text's HMAC-SHA256 under ``key`` (RFC 2104, written out from the keyed pads' states), 32 hex digits."""
    inner, outer = (hashlib.sha256(pad) for pad in _pads(key))
    out = []
    for v in distinct:
        h = inner.copy()
        h.update(v.encode("utf-8"))
        o = outer.copy()
        o.update(h.digest())
        out.append(o.hexdigest()[:32])
    return out


def _hmacs_in_engine(texts: pa.Array, key: bytes) -> pa.Array:
    """Return :func:`_hmacs` of Arrow text, computed by DuckDB: SHA-256 of the outer pad and
    the inner digest (``unhex`` of the hex DuckDB gives), the text taken as its UTF-8 bytes. The key's pads are the
    query's parameters: never written, gone with the in-memory connection."""
    import duckdb

    inner, outer = _pads(key)
    sql = "SELECT left(sha256($o::BLOB || unhex(sha256($i::BLOB || encode(v)))), 32) AS k FROM texts"
    with duckdb.connect() as con:
        con.register("texts", pa.table({"v": texts}))
        return con.sql(sql, params={"o": outer, "i": inner}).to_arrow_table().column("k")


def _pads(key: bytes) -> tuple[bytes, bytes]:
    """Return the key XOR ipad and XOR opad (RFC 2104), a block of SHA-256 each: a hash started from their states
    and copied per value costs a third of what a new HMAC of each value costs, and gives the same bytes."""
    if len(key) > 64:  # SHA-256's block: a longer key is hashed first, as hmac does
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


_PLAIN = {"phone": r"^[0-9]{7,}$", "email": r"^[a-z0-9._%+-]+@[a-z0-9.-]+$"}
"""Contacts, as normalised, whose masked form Arrow builds as :mod:`crmnb.present.masking` would: ASCII digits
(seven or more) and ASCII addresses with one @; any other value is masked by the function itself."""


def masked_contacts(new: pd.Series, col: str, mask: Any, arr: pa.Array | None = None) -> pd.Series:
    """Return normalised contacts masked as ``mask`` masks each (``138****5678``, ``z***@x.cn``), the plain ones
    (:data:`_PLAIN`) by Arrow's string kernels at once, the rest one by one; missing stays missing.
    ``arr``: the contacts as Arrow text (:func:`_as_arrow`), when the caller has them."""
    arr = _as_arrow(new) if arr is None else arr
    plain = np.asarray(pc.fill_null(pc.match_substring_regex(arr, _PLAIN[col]), False), dtype=bool)
    if col == "phone":
        built = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(arr, 0, 3), pc.utf8_slice_codeunits(arr, -4), pa.scalar("****", pa.large_string())
        )
    else:
        parts = pc.extract_regex(arr, r"^(?P<first>.)[^@]*@(?P<domain>.*)$")
        built = pc.binary_join_element_wise(
            pc.struct_field(parts, "first"), pc.struct_field(parts, "domain"), pa.scalar("***@", pa.large_string())
        )
    out = np.asarray(built.to_numpy(zero_copy_only=False), dtype=object)
    rest = np.flatnonzero(~plain & np.asarray(pc.is_valid(arr), dtype=bool))  # a missing one stays missing
    out[rest] = [mask(v) for v in new.to_numpy(dtype=object)[rest]]
    return pd.Series(out, index=new.index, dtype=object).astype("str")


def masked_text(s: pd.Series) -> pd.Series:
    """Return free text with its personal numbers and addresses masked; text without a digit or @ is left as it is."""
    text = s.astype("str")
    # Arrow's RE2, with \p{Nd} for every digit Python's \d matches (full-width ones too)
    found = pc.match_substring_regex(pa.array(text, type=pa.large_string(), from_pandas=True), r"\p{Nd}|@")
    has = pd.Series(np.asarray(pc.fill_null(found, False).to_numpy(zero_copy_only=False), dtype=bool), index=s.index)
    if not has.any():
        return s
    out = text.copy()
    out[has] = text[has].map(mask_text)
    return out


def _as_arrow(new: pd.Series) -> pa.Array:
    """Return normalised contacts (Python strings, None where missing) as Arrow text."""
    return pa.array(new.astype(object), type=pa.large_string(), from_pandas=True)


def _rewritten(src: pd.Series, new: pa.Array) -> np.ndarray:
    """Return, per row, whether a contact was written (``src``) other than normalised (``new``): a value
    that normalises to nothing counts, a missing one does not. Compared by Arrow, byte for byte."""
    written = pa.array(src.astype("str"), type=pa.large_string(), from_pandas=True)
    if isinstance(written, pa.ChunkedArray):
        written = written.combine_chunks()
    other = pc.fill_null(pc.not_equal(new, written), True)
    return np.asarray(pc.and_(pc.is_valid(written), other).to_numpy(zero_copy_only=False), dtype=bool)


def protect(got: Intake, key: bytes) -> None:
    """Replace the contacts of one taken-in table by their keys and masked forms, and mask its notes.

    Which contacts were written other than normalised is kept (:data:`REWRITTEN_COLUMNS`): step 4's
    log counts those of the rows it keeps.
    """
    df = got.table
    for col, normalise, mask in CONTACTS:
        if col not in df.columns:
            continue
        src, new = df[col], normalise(df[col])
        arr = _as_arrow(new)  # once, for the three uses below
        df[REWRITTEN_COLUMNS[col]] = _rewritten(src, arr)
        df[KEY_COLUMNS[col]] = keyed(new, key, arr)
        df[col] = masked_contacts(new, col, mask, arr)
    for col in FREE_TEXT:
        if col in df.columns:
            df[col] = masked_text(df[col])
