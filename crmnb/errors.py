"""Errors that carry a message an analyst can act on."""

from __future__ import annotations


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

    ``en`` and ``zh`` say so in plain words: what was not done, what it needs and what
    the data has ("Lifetime value not estimated: it needs at least 10 customers with
    repeat purchases; this data has 3."). ``needed`` and ``found`` are the figures. A
    step catches it, shows :meth:`say` in the report and goes on; it is a ValueError
    too, so code that caught the analyses' ValueError before still does.

    >>> e = NotEnoughData("Forecast not made: it needs 8 weeks; this data has 2.", "未做预测。", 8, 2)
    >>> str(e), e.needed, e.found
    ('Forecast not made: it needs 8 weeks; this data has 2.', 8, 2)
    """

    def __init__(self, en: str, zh: str, needed: float | None = None, found: float | None = None):
        super().__init__(en)
        self.en, self.zh, self.needed, self.found = en, zh, needed, found

    def say(self) -> str:
        """Return the message in the report's language."""
        from crmnb.present.words import say

        return say(self.en, self.zh)


def attempt(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)``; return ``(result, None)``, or ``(None, gap)`` when it raises
    :class:`NotEnoughData`. Every other error is raised as it is.

    >>> def needs_two(xs):
    ...     if len(xs) < 2:
    ...         raise NotEnoughData(f"Not done: it needs 2 values; this data has {len(xs)}.", "未完成。", 2, len(xs))
    ...     return sum(xs)
    >>> attempt(needs_two, [1, 2]), attempt(needs_two, [1])[1].found
    ((3, None), 1)
    """
    try:
        return fn(*args, **kwargs), None
    except NotEnoughData as gap:
        return None, gap
