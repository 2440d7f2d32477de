"""UTM parameters from landing URLs, parsed at intake: source, medium and campaign of each row.

Row-local: each row's parameters come from its own ``landing_url`` alone, so a table can be taken
in whole or in batches alike. A value the export already has is kept.

>>> df = pd.DataFrame({"landing_url": ["https://x.cn/a?utm_source=baidu&utm_medium=cpc&utm_campaign=CMP002", None]})
>>> out = add_utm(df, "leads")[["utm_source", "utm_medium", "utm_campaign"]]
>>> out.iloc[0].tolist(), bool(out.iloc[1].isna().all())
(['baidu', 'cpc', 'CMP002'], True)
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmnb.intake.schema import TABLES, UTM_COLUMNS

URL_COLUMN = "landing_url"


def utm_of(url: object) -> tuple[str | None, str | None, str | None]:
    """Return a URL's utm_source, utm_medium and utm_campaign (None where absent or unreadable).

    >>> utm_of("www.x.cn/?UTM_SOURCE=WeChat&utm_medium=social#top")
    ('wechat', 'social', None)
    """
    if not isinstance(url, str) or "utm_" not in url.lower():
        return (None, None, None)
    try:
        query = parse_qs(urlsplit(url.strip()).query, keep_blank_values=False)
    except ValueError:
        return (None, None, None)
    params = {k.lower(): v[0].strip() for k, v in query.items() if v and v[0].strip()}
    # source and medium name channels (case carries no meaning there); a campaign keeps its id as written
    source, medium = params.get("utm_source"), params.get("utm_medium")
    return (source.lower() if source else None, medium.lower() if medium else None, params.get("utm_campaign"))


def add_utm(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """Fill the UTM columns of a table whose schema has them from its landing URLs, in place; return it."""
    if URL_COLUMN not in TABLES[name].columns or URL_COLUMN not in table or table.empty:
        return table
    # each distinct address parsed once (found by Arrow, without a Python string per row): a campaign's
    # landing page repeats over its leads
    codes, distinct = pd.factorize(table[URL_COLUMN], use_na_sentinel=True)
    found = np.array([*(utm_of(u) for u in distinct), (None, None, None)], dtype=object).reshape(-1, 3)
    at = pa.array(np.where(codes < 0, len(distinct), codes))
    dtype = table[URL_COLUMN].dtype
    for i, col in enumerate(UTM_COLUMNS):
        parsed = pa.array(found[:, i], type=pa.large_string()).take(at)
        if col in table and table[col].notna().any():
            parsed = pc.coalesce(pa.array(table[col].astype(dtype), type=pa.large_string(), from_pandas=True), parsed)
        table[col] = pd.Series(pd.array(parsed, dtype=dtype), index=table.index)
    return table
