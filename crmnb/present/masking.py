"""Masking of personal data for reports and workbooks."""

from __future__ import annotations

import re
import unicodedata

import pandas as pd


def mask_phone(v: object) -> object:
    """Mask a phone number, keeping the first three and last four digits.

    >>> mask_phone("13812345678")
    '138****5678'
    """
    if not isinstance(v, str) or not v:
        return v
    d = re.sub(r"\D", "", v)
    if len(d) == 13 and d.startswith("86"):  # +86 country code
        d = d[2:]
    if len(d) < 7:
        return "*" * len(d)
    return f"{d[:3]}****{d[-4:]}"


def mask_email(v: object) -> object:
    """Mask an e-mail address, keeping its first letter and domain.

    >>> mask_email("zhangwei88@example.com")
    'z***@example.com'
    """
    if not isinstance(v, str) or not v:
        return v
    if "@" not in v:  # not an address: hide it all rather than show it
        return "*" * min(len(v.strip()), 6)
    local, _, domain = v.strip().partition("@")
    return f"{local[:1]}***@{domain}"


def mask_name(v: object) -> object:
    """Mask a person's name, keeping the family name.

    >>> mask_name("张伟")
    '张*'
    """
    if not isinstance(v, str) or not v:
        return v
    v = v.strip()
    return v[:1] + "*" * max(1, len(v) - 1)


def mask_company(v: object) -> object:
    """Mask a company name, keeping only its legal form.

    >>> mask_company("杭州云启科技有限公司")
    '*科技有限公司'
    """
    if not isinstance(v, str) or not v:
        return v
    m = re.search(_LEGAL_FORM + "$", v)
    return "*" + m.group(0) if m else "*" * min(len(v), 6)


_LEGAL_FORM = "(?:科技|信息|贸易|咨询|制造|实业|网络|软件|电子|商贸|物流|医药|教育|文化)?(?:股份)?有限(?:责任)?公司"
"""The end of a company's name :func:`mask_company` keeps: its line of business and legal form."""


def mask_companies(names: pd.Series) -> pd.Series:
    """Return :func:`mask_company` of each name, the regular expression run over the whole column at once.

    A customer list of a large company is hundreds of thousands of names. Names with a line break fall back
    to :func:`mask_company` (Python's ``$`` also matches before a last newline), as does a column that is
    not text.

    >>> mask_companies(pd.Series(["杭州云启科技有限公司", "Acme", "", None], dtype="str")).tolist()
    ['*科技有限公司', '****', '', nan]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pd.api.types.is_string_dtype(names.dtype) or names.dtype == object:
        return names.map(mask_company)
    text = pa.array(names.array).cast(pa.large_string())
    star = pa.scalar("*", pa.large_string())
    kept = pc.struct_field(pc.extract_regex(text, f"(?P<m>{_LEGAL_FORM})$"), [0])
    stars = pc.binary_repeat(star, pc.min_element_wise(pc.utf8_length(text), 6, skip_nulls=False))
    masked = pc.if_else(
        pc.is_valid(kept), pc.binary_join_element_wise(star, kept, pa.scalar("", pa.large_string())), stars
    )
    out = pd.Series(masked.to_pandas(), index=names.index).astype(names.dtype)
    odd = pc.fill_null(pc.match_substring(text, "\n"), False).to_numpy(zero_copy_only=False)
    if odd.any():
        out[odd] = names[odd].map(mask_company)
    return out


_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_SEP = "[ \\-\u00a0\u3000\u2010-\u2015\uff0d]"
_NUMBER = re.compile(rf"\+?(?<!\d)\d(?:{_SEP}?\d)*[Xx]?")
"""A run of digits with single spaces or dashes between them, and an ID's closing X: one number as written."""

_MOBILE = re.compile(r"1[3-9]\d{9}")

SHOWN_CHARACTERS = 200
"""Free text longer than this is cut for display, with an ellipsis."""


def _digits(run: str) -> str:
    return "".join(str(unicodedata.digit(c)) for c in run if c.isdigit())


def _masked(d: str, x: bool = False) -> str | None:
    """Return the mask of one number given by its digits (``x``: written with a closing X), or None."""
    if x:  # a resident ID: 17 digits and the check character X
        return f"{d[:3]}{'*' * 11}{d[-3:]}X" if len(d) == 17 else None
    if len(d) == 18:  # a resident ID
        return f"{d[:3]}{'*' * 11}{d[-4:]}"
    if len(d) == 13 and d.startswith("86") and _MOBILE.fullmatch(d[2:]):  # +86 and a mobile
        return mask_phone(d[2:])
    if len(d) == 11 and _MOBILE.fullmatch(d):
        return mask_phone(d)
    if 13 <= len(d) <= 19:  # a bank card: its last four digits, as on a receipt
        return f"{'*' * (len(d) - 4)}{d[-4:]}"
    return None


def _mask_number(m: re.Match) -> str:
    """Mask the IDs, phones and cards in one run of digits and separators: from its left, the longest
    stretch of whole groups that is one of them ("电话 138 1234 5678 2次" masks the phone, not the 2)."""
    run = m.group(0)
    x = run[-1] in "Xx"
    parts = re.split(f"({_SEP})", run[:-1] if x else run)
    groups, seps = parts[0::2], parts[1::2] + [""]
    out, i = [], 0
    while i < len(groups):
        best, d = None, ""
        for j in range(i, len(groups)):
            d += _digits(groups[j])
            if len(d) > 19:
                break
            last = x and j == len(groups) - 1
            got = (_masked(d, x=True) if last else None) or _masked(d)
            if got:
                best = (j, got, last and got.endswith("X"))
        if best is None:
            g = groups[i]
            out.append((g if len(_digits(g)) <= 19 else "*" * (len(g) - 4) + g[-4:]) + seps[i])
            i += 1
            continue
        j, got, took_x = best
        at_end = j == len(groups) - 1
        out.append(got + (run[-1] if x and at_end and not took_x else "") + seps[j])
        x = x and not at_end  # the closing X is written once: with the ID, after the last group, or below
        i = j + 1
    return "".join(out) + (run[-1] if x else "")


def mask_text(v: object) -> object:
    """Mask the resident ID numbers, bank cards, mobile phones and e-mail addresses written in free text.

    >>> mask_text("身份证11010119900307851X, 卡号6222 0212 3456 7890 123, 电话+86 139-8765-4321")
    '身份证110***********851X, 卡号***************0123, 电话139****4321'
    >>> mask_text("回访 wangxm77@example.org, 订单 2025-03-04 金额 12800")
    '回访 w***@example.org, 订单 2025-03-04 金额 12800'
    """
    if not isinstance(v, str) or not v:
        return v
    return _NUMBER.sub(_mask_number, _EMAIL.sub(lambda m: mask_email(m.group(0)), v))


def shorten(v: object, limit: int = SHOWN_CHARACTERS) -> object:
    """Cut text longer than ``limit`` characters, ending it with an ellipsis.

    >>> shorten("跟进" * 150, 10)
    '跟进跟进跟进跟进跟…'
    """
    if not isinstance(v, str) or len(v) <= limit:
        return v
    return v[: limit - 1] + "…"


def show_text(v: object, mask: bool = True, limit: int = SHOWN_CHARACTERS) -> object:
    """Return free text (a note) as it is shown: personal numbers and addresses masked unless ``mask`` is
    False, and cut to ``limit`` characters. Masked first, so a cut never leaves part of a number readable."""
    if isinstance(v, str):  # a 1 MB note: only its start is ever shown, so only its start is read
        v = v[: limit + 50]
    return shorten(mask_text(v) if mask else v, limit)


MASKERS = {
    "phone": mask_phone,
    "email": mask_email,
    "name": mask_name,
    "contact_name": mask_name,
    "company": mask_company,
    "note": show_text,
}


def mask_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``df`` with every personal-data column it has masked."""
    out = df.copy()
    for col, fn in MASKERS.items():
        if col in out.columns:
            out[col] = out[col].map(fn)
    return out
