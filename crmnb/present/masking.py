"""Masking of personal data for reports and workbooks."""

from __future__ import annotations

import re

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
    m = re.search(r"(科技|信息|贸易|咨询|制造|实业|网络|软件|电子|商贸|物流|医药|教育|文化)?(股份)?有限(责任)?公司$", v)
    return "*" + m.group(0) if m else "*" * min(len(v), 6)


MASKERS = {
    "phone": mask_phone,
    "email": mask_email,
    "name": mask_name,
    "contact_name": mask_name,
    "company": mask_company,
}


def mask_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``df`` with every personal-data column it has masked."""
    out = df.copy()
    for col, fn in MASKERS.items():
        if col in out.columns:
            out[col] = out[col].map(fn)
    return out
