"""What a batch shows while it runs: the cases done and failed, each running case's current step."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable
from typing import IO, Protocol


class Running(Protocol):
    """A running case, as the status line shows it."""

    case_id: str
    step: str
    """The step running now, '' before the first."""


class Progress:
    """Progress on stderr: one redrawn status line on a terminal, plain lines in a log."""

    def __init__(self, stream: IO[str], total: int):
        self.stream = stream
        self.total = total
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.lock = threading.Lock()
        self.done = self.failed = self.timeouts = 0
        self._shown = ""

    def counts(self) -> str:
        """Return the counts so far: '[3/5 done, 1 failed, 1 timed out]'."""
        timeouts = f", {self.timeouts} timed out" if self.timeouts else ""
        return f"[{self.done}/{self.total} done, {self.failed} failed{timeouts}]"

    def line(self, msg: str) -> None:
        """Print a line that stays."""
        with self.lock:
            if self.tty and self._shown:
                self.stream.write("\r\x1b[K")
            self.stream.write(f"{self.counts()} {msg}\n")
            self._shown = ""
            self.stream.flush()

    def status(self, running: Iterable[Running]) -> None:
        """Redraw the status line (a terminal only): each running case's current step."""
        if not self.tty:
            return
        now = " | ".join(f"{j.case_id}: {j.step or 'starting'}" for j in running)
        text = f"{self.counts()} {now}"
        width = _terminal_width()
        text = text if len(text) < width else text[: width - 2] + "…"
        with self.lock:
            if text != self._shown:
                self.stream.write("\r\x1b[K" + text)
                self.stream.flush()
                self._shown = text

    def clear(self) -> None:
        """Remove the status line (a terminal only), so what follows starts on a clean line."""
        with self.lock:
            if self.tty and self._shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            self._shown = ""


def _terminal_width() -> int:
    """Return the terminal's width in columns (100 when it is not a terminal)."""
    return shutil.get_terminal_size((100, 20)).columns
