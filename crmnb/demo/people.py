"""Contact persons and their companies: drawn as codes, turned into names, phones and e-mails on demand."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crmnb.demo.arrays import unique_redraw
from crmnb.demo.vocab import (
    BRAND_FIRST,
    BRAND_SECOND,
    CITIES,
    CITY_WEIGHTS,
    EMAIL_DOMAINS,
    GIVEN_NAMES,
    INDUSTRIES,
    INDUSTRY_WEIGHTS,
    MOBILE_PREFIXES,
    SURNAMES,
)

SUR_H = pa.array([s for s, _ in SURNAMES])
SUR_P = pa.array([p for _, p in SURNAMES])
GIV_H = pa.array([g for g, _ in GIVEN_NAMES])
GIV_P = pa.array([p for _, p in GIVEN_NAMES])
SUR_PID = np.unique([p for _, p in SURNAMES], return_inverse=True)[1]
GIV_PID = np.unique([p for _, p in GIVEN_NAMES], return_inverse=True)[1]
IND_WORDS = [w for _, ws in INDUSTRIES for w in ws]
IND_WORD_START = np.cumsum([0] + [len(ws) for _, ws in INDUSTRIES])[:-1]
IND_WORD_COUNT = np.array([len(ws) for _, ws in INDUSTRIES])


class People:
    """Contact persons and their companies, as codes; strings are built on demand."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.n = n
        self.sur = rng.integers(0, len(SURNAMES), n)
        self.giv = rng.integers(0, len(GIVEN_NAMES), n)
        self.prefix = np.asarray(MOBILE_PREFIXES)[rng.integers(0, len(MOBILE_PREFIXES), n)]
        self.mobile = self.prefix * 10**8 + rng.integers(0, 10**8, n)
        self.pattern = rng.integers(0, 3, n)
        self.num = rng.integers(1, 1000, n)
        self.domain = (rng.random(n) < 0.3).astype(np.int64)
        self.city = rng.choice(len(CITIES), n, p=np.asarray(CITY_WEIGHTS) / sum(CITY_WEIGHTS))
        self.industry = rng.choice(len(INDUSTRIES), n, p=np.asarray(INDUSTRY_WEIGHTS) / sum(INDUSTRY_WEIGHTS))
        self.word = IND_WORD_START[self.industry] + (rng.random(n) * IND_WORD_COUNT[self.industry]).astype(np.int64)
        self.b1 = rng.integers(0, len(BRAND_FIRST), n)
        self.b2 = rng.integers(0, len(BRAND_SECOND), n)

        def redraw_mobile(i: np.ndarray) -> None:
            self.mobile[i] = self.prefix[i] * 10**8 + rng.integers(0, 10**8, len(i))

        def redraw_num(i: np.ndarray) -> None:
            self.num[i] = rng.integers(1, 100_000, len(i))

        unique_redraw(rng, lambda: self.mobile, redraw_mobile)
        unique_redraw(rng, self._email_code, redraw_num)

    def _email_code(self) -> np.ndarray:
        """Return one integer per e-mail address (equal codes = equal addresses)."""
        c = self.pattern * len(SURNAMES) + SUR_PID[self.sur]
        c = c * len(GIVEN_NAMES) + GIV_PID[self.giv]
        return (c * 100_000 + self.num) * 2 + self.domain

    def name(self, i: np.ndarray, sep: str = "") -> pa.Array:
        """Return contact names like 王磊 (``sep`` between surname and given name)."""
        return pc.binary_join_element_wise(SUR_H.take(pa.array(self.sur[i])), GIV_H.take(pa.array(self.giv[i])), sep)

    def phone(self, i: np.ndarray) -> pa.Array:
        """Return mobile numbers, 11 digits."""
        return pa.array(self.mobile[i]).cast(pa.string())

    def email(self, i: np.ndarray) -> pa.Array:
        """Return e-mail addresses like zhangwei88@example.com."""
        s = SUR_P.take(pa.array(self.sur[i]))
        g = GIV_P.take(pa.array(self.giv[i]))
        num = pa.array(self.num[i]).cast(pa.string())
        pat = self.pattern[i]
        local = pc.if_else(
            pa.array(pat == 0),
            pc.binary_join_element_wise(s, g, num, ""),
            pc.if_else(
                pa.array(pat == 1),
                pc.binary_join_element_wise(g, ".", s, num, ""),
                pc.binary_join_element_wise(s, "_", g, num, ""),
            ),
        )
        return pc.binary_join_element_wise(local, pa.array(EMAIL_DOMAINS).take(pa.array(self.domain[i])), "@")

    def company(self, i: np.ndarray, suffix: str = "有限公司") -> pa.Array:
        """Return company names like 杭州云启科技有限公司."""
        return pc.binary_join_element_wise(
            pa.array(CITIES).take(pa.array(self.city[i])),
            pa.array(BRAND_FIRST).take(pa.array(self.b1[i])),
            pa.array(BRAND_SECOND).take(pa.array(self.b2[i])),
            pa.array(IND_WORDS).take(pa.array(self.word[i])),
            suffix,
            "",
        )
