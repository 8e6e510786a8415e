"""A deadline over a whole HTTP request, response headers included.

httpx's timeouts bound each network operation, not the request: a server sending its
status line and headers a byte now and then (each read answered within the timeout)
would hold the run for as long as it kept sending, up to the 64 kB a response head may
have, which at a byte every 29 seconds is three weeks. :func:`keep_deadline` makes the
connections of an httpx client's transports (its default one, and those httpx makes for
the environment's proxies) wait no longer, in every connect, read and write, than what is
left of the deadline :func:`request_deadline` sets for the requests of the current thread;
past it, a read times out as httpx's own timeouts do (``httpx.ReadTimeout``).

httpx has no public way to give its connection pool (httpcore's) a network backend: the
pool's ``_network_backend`` is set here, found through the client's ``_transport`` and
``_mounts``. When an httpx or httpcore release no longer has them, the client refuses to
start (:class:`~data_pipeline.errors.HttpDeadlineUnsupportedError`, naming both versions
and what is missing) rather than run without the deadline.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from data_pipeline.errors import HttpDeadlineUnsupportedError, ProxySettingError

__all__ = ["client_keeping_deadline", "keep_deadline", "request_deadline"]

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
"""The proxy variables httpx reads (each in upper or lower case; ``NO_PROXY`` besides)."""

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


def client_keeping_deadline(
    transport: httpx.BaseTransport | None = None, **settings: Any
) -> httpx.Client:
    """An ``httpx.Client(transport=transport, **settings)`` keeping the deadline
    (:func:`keep_deadline`); without a ``transport``, through the environment's proxies.

    Raises:
        ProxySettingError: a proxy variable names one httpx cannot use (an unknown
            scheme, ``socks5://`` without ``socksio``): said as a setting to fix, naming
            the variable and its scheme, never its value (it may carry a password).
        HttpDeadlineUnsupportedError: httpx or httpcore no longer has what this sets.
    """
    try:
        client = httpx.Client(transport=transport, **settings)
    except (ImportError, ValueError) as exc:
        variables = _proxy_variables() if transport is None else ()
        if not variables:
            raise
        problem = (
            "a socks5:// proxy needs the socksio package (pip install 'httpx[socks]')"
            if isinstance(exc, ImportError)
            else "httpx has no transport for such a proxy URL (http://, https://, socks5://)"
        )
        raise ProxySettingError(variables, problem=problem) from None  # its text: the URL
    return keep_deadline(client, given=transport)


def _proxy_variables() -> tuple[str, ...]:
    """The proxy variables set, each as ``NAME=scheme://…`` (the scheme only)."""
    found = []
    for upper in PROXY_VARIABLES:
        for name in (upper, upper.lower()):
            value = os.environ.get(name, "").strip()
            if value:
                scheme = value.split("://", 1)[0] + "://…" if "://" in value else "(no scheme)"
                found.append(f"{name}={scheme}")
    return tuple(found)


def keep_deadline(client: httpx.Client, *, given: httpx.BaseTransport | None) -> httpx.Client:
    """``client`` with its transports keeping the deadline of :func:`request_deadline`
    (without one set, their network operations are httpx's own): its default transport
    and those httpx made for the environment's proxies (``HTTP_PROXY``, ``HTTPS_PROXY``,
    ``ALL_PROXY``, ``NO_PROXY`` honoured). The client must be built without a transport
    of its own for these: httpx ignores the environment's proxies when given one. The
    transport it was ``given`` (a test's), unless an httpx one, is left as it is.

    Raises:
        HttpDeadlineUnsupportedError: httpx or httpcore no longer has what this sets.
    """
    default = getattr(client, "_transport", None)
    mounts = getattr(client, "_mounts", None)
    if not isinstance(default, httpx.HTTPTransport) and (given is None or default is not given):
        # (no transport given and none found is a release without the field, not a pass)
        raise _unsupported("httpx.Client._transport (an httpx.HTTPTransport by default)")
    if not isinstance(mounts, dict):
        raise _unsupported("httpx.Client._mounts (the transports of its proxies)")
    if given is None and not all(
        mount is None or isinstance(mount, httpx.HTTPTransport) for mount in mounts.values()
    ):  # a proxy's transport this cannot reach into would go without the deadline
        raise _unsupported("httpx.HTTPTransport as the transport of a proxy (httpx.Client._mounts)")
    for transport in (default, *mounts.values()):
        if isinstance(transport, httpx.HTTPTransport):
            _keeping_deadline(transport)
    return client


def _keeping_deadline(transport: httpx.HTTPTransport) -> httpx.HTTPTransport:
    """``transport`` with its pool's network backend keeping the deadline (once)."""
    pool = getattr(transport, "_pool", None)  # httpx has no public way to set the backend
    if not isinstance(pool, httpcore.ConnectionPool):
        raise _unsupported("httpx.HTTPTransport._pool (an httpcore.ConnectionPool)")
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore.NetworkBackend):
        raise _unsupported("httpcore.ConnectionPool._network_backend (an httpcore.NetworkBackend)")
    if not isinstance(backend, _Backend):
        pool._network_backend = _Backend(backend)
    return transport


def _unsupported(missing: str) -> HttpDeadlineUnsupportedError:
    return HttpDeadlineUnsupportedError(
        missing, httpx_version=httpx.__version__, httpcore_version=httpcore.__version__
    )


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
