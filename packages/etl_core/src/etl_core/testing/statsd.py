"""A StatsD agent for a test: a UDP socket bound on 127.0.0.1, read back line by line.

:func:`statsd_agent` yields the bound socket (``agent.recv`` waits up to its timeout for
the next datagram); :func:`agent_address` is the ``statsd_address`` that reaches it, and
:func:`drained` the lines received so far, without waiting (a sender that has exited sent
everything it will: on the loopback a datagram is in the socket's buffer once sent).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

__all__ = ["agent_address", "drained", "received_lines", "statsd_agent"]


@contextlib.contextmanager
def statsd_agent(timeout: float = 5.0) -> Iterator[socket.socket]:
    """A UDP socket bound on a free port of 127.0.0.1 whose ``recv`` waits ``timeout``
    seconds at most, closed after."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        yield sock


def agent_address(agent: socket.socket) -> str:
    """``127.0.0.1:<port>``: the setting ``statsd_address`` of ``agent``."""
    return f"127.0.0.1:{agent.getsockname()[1]}"


def received_lines(agent: socket.socket) -> list[str]:
    """The lines of the next datagram (waiting the agent's timeout for it)."""
    return agent.recv(65535).decode("utf-8").splitlines()


def drained(agent: socket.socket, *, limit: int = 10_000) -> list[str]:
    """Every line already received, without waiting (at most ``limit`` datagrams)."""
    timeout = agent.gettimeout()
    agent.setblocking(False)
    lines: list[str] = []
    try:
        for _ in range(limit):
            try:
                lines += agent.recv(65535).decode("utf-8").splitlines()
            except BlockingIOError:
                break
    finally:
        agent.settimeout(timeout)
    return lines
