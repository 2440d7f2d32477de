"""Batches of an export read one ahead, in a thread of their own, while the batch before is taken in."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

_END = object()
"""What the reading thread puts when the batches are all read."""


class _Failed:
    """What the reading thread puts when reading raised: the exception, raised again where it is read."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(batches: Iterator[Any]) -> Iterator[Any]:
    """Yield what ``batches`` yields, in order, the next one read in a thread meanwhile; raise where it raises.

    Arrow's CSV reader lets go of Python while it parses, so reading the next batch costs almost nothing
    beside taking in this one on a machine of two cores. At most one batch waits, read, besides the one
    being read and the one taken in. When the caller stops early, the thread stops at its next batch.
    """
    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_END)
        except BaseException as exc:  # raised again in the caller's thread, where it reads the batch
            put(_Failed(exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name="crmnb-read", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
            del item
    finally:
        stop.set()
        thread.join()
