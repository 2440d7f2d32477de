"""An ordered registry: rules and other entries declared one by one, kept in the order they were declared.

The cleaning rules (:mod:`crmnb.intake.cleaning_rules`) and the diagnosis rules
(:mod:`crmnb.analysis.diagnosis`) are each one registry: a new rule is one function registered
with a decorator, and its place in its file is its place in the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name, in the order they were added; a name is added once.

    >>> r = Registry("colour")
    >>> r.add("red", 1); r.add("blue", 2)
    >>> [*r], len(r), "red" in r, r.get("blue")
    ([1, 2], 2, True, 2)
    >>> r.add("red", 3)
    Traceback (most recent call last):
    ValueError: a colour named 'red' is registered already
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> None:
        """Add ``entry`` under ``name``, after every entry added before it."""
        if name in self._entries:
            raise ValueError(f"a {self.what} named {name!r} is registered already")
        self._entries[name] = entry

    def get(self, name: str) -> T:
        """Return the entry named ``name``; an unknown name is refused, listing the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"no {self.what} named {name!r}; the known ones: {', '.join(self._entries)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
