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
