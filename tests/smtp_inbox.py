"""A real SMTP server on loopback that keeps what it receives: the mail tests send to it and parse what came."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest


class Inbox:
    """The aiosmtpd handler that keeps every envelope it is given."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"

    def wait_for(self, n: int, seconds: float = 5.0) -> None:
        """Wait until ``n`` messages have arrived or ``seconds`` have passed."""
        deadline = time.time() + seconds
        while len(self.messages) < n and time.time() < deadline:
            time.sleep(0.05)


@contextlib.contextmanager
def smtp_server() -> Iterator[SimpleNamespace]:
    """Run an SMTP server on a free loopback port; yield its inbox, host, port and ``host:port`` address."""
    controller = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd is in the test extra")
    inbox = Inbox()
    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctl = controller.Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield SimpleNamespace(inbox=inbox, host="127.0.0.1", port=port, address=f"127.0.0.1:{port}")
    finally:
        ctl.stop()
