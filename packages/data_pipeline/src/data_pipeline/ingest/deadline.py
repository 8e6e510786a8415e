"""A deadline over a whole HTTP request, response headers included.

httpx's timeouts bound each network operation, not the request: a server sending its
status line and headers a byte now and then (each read answered within the timeout)
would hold the run for as long as it kept sending, up to the 64 kB a response head may
have, which at a byte every 29 seconds is three weeks. :func:`deadline_transport` gives
an httpx transport whose every connect, read and write waits no longer than what is left
of the deadline :func:`request_deadline` sets for the requests of the current thread;
past it, a read times out as httpx's own timeouts do (``httpx.ReadTimeout``).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

__all__ = ["deadline_transport", "request_deadline"]

_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)


@contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Bound the network operations of this thread's requests to ``seconds`` from now
    (a deadline set already, and nearer, stays: a token fetched inside a page request
    is bounded by both)."""
    deadline = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(deadline if current is None else min(current, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline_transport() -> httpx.HTTPTransport:
    """An httpx transport (the default one) whose network operations keep the deadline of
    :func:`request_deadline`; without one set, they are httpx's own."""
    transport = httpx.HTTPTransport()
    pool = transport._pool  # httpx has no public way to give httpcore's pool a backend
    pool._network_backend = _Backend(pool._network_backend)
    return transport


def _left(timeout: float | None) -> float | None:
    """``timeout`` shortened to what is left of the deadline.

    Raises:
        httpcore.ReadTimeout: the deadline passed.
    """
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A connection whose every operation keeps the deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    """Opens connections that keep the deadline."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout)
        return _Stream(self._backend.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._backend.connect_unix_socket(path, _left(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)
