"""Errors that carry a message an analyst can act on."""

from __future__ import annotations

import functools

from crmnb.present.words import t


class CrmnbError(Exception):
    """Base of every error crmnb raises on purpose; its message is for the analyst."""


class CaseFileError(CrmnbError):
    """A case file is missing, unreadable or invalid."""


class DataError(CrmnbError):
    """A data file or table cannot be used as it is."""


class HandoffMissing(CrmnbError):
    """A step needs a hand-off that an earlier step has not written yet."""


class StepFailed(CrmnbError):
    """A notebook step failed while running a case."""


class NotEnoughData(CrmnbError, ValueError):
    """An analysis cannot be done on this case's data: it needs more of something than the data holds.

    ``key`` names the message in the catalogue that says so in plain words, filled with
    ``values``: what was not done, what it needs and what the data has ("Lifetime value
    not estimated: it needs at least 10 customers with repeat purchases; this data has
    3."). ``needed`` and ``found`` are the figures. A step catches it, shows
    :meth:`say` in the report's language and goes on; it is a ValueError too, so code
    that caught the analyses' ValueError before still does.

    >>> e = NotEnoughData("attribution.none", 1, 0)
    >>> str(e), e.needed, e.found
    ('Attribution not done: it needs leads won in the period, to credit them to the marketing touches before them; this data has none.', 1, 0)
    """

    def __init__(self, key: str, needed: float | None = None, found: float | None = None, **values: object):
        self.key, self.values, self.needed, self.found = key, values, needed, found
        super().__init__(self.say("en"))

    def __reduce__(self):
        """Pickle by key and values, which the message is made from."""
        return functools.partial(NotEnoughData, **self.values), (self.key, self.needed, self.found)

    def say(self, lang: str) -> str:
        """Return the message in ``lang``."""
        return t(self.key, lang, **self.values)

    @property
    def en(self) -> str:
        """Return the message in English."""
        return self.say("en")

    @property
    def zh(self) -> str:
        """Return the message in Chinese."""
        return self.say("zh")


def attempt(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)``; return ``(result, None)``, or ``(None, gap)`` when it raises
    :class:`NotEnoughData`. Every other error is raised as it is.

    >>> def needs_two(xs):
    ...     if len(xs) < 2:
    ...         raise NotEnoughData("attribution.none", 2, len(xs))
    ...     return sum(xs)
    >>> attempt(needs_two, [1, 2]), attempt(needs_two, [1])[1].found
    ((3, None), 1)
    """
    try:
        return fn(*args, **kwargs), None
    except NotEnoughData as gap:
        return None, gap
