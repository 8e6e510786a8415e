"""Ask a lane's Celery workers whether they are alive (``etl-<lane> ping``: a health check).

A worker of a lane is named ``<queue>@<host>.<pid>`` (:func:`worker_name`), so the
workers of one lane, and of one host (a container), are told apart from every other
worker on the same broker by their name alone. :func:`ping_workers` broadcasts
Celery's ``ping`` control command and keeps the answers of the lane's workers, as
``celery inspect ping`` does: a worker answers from its main process, so an answer
means it is connected to the broker and its event loop runs.

Remote control needs a broker with broadcast (Redis, RabbitMQ); SQS has none, so a
worker on SQS cannot be pinged (:class:`PingUnsupportedError`).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from etl_core.errors import ConfigError, FieldError, RetryableError
from etl_core.runtime import RuntimeSettings
from etl_core.work.celery.config import REDIS, lane_queues

__all__ = [
    "BrokerRefusedError",
    "BrokerUnreachableError",
    "PingUnsupportedError",
    "check_broker",
    "lane_has_workers",
    "ping_workers",
    "worker_name",
]

NO_BROADCAST_SCHEMES = ("sqs",)
"""Brokers whose transport has no broadcast, hence no remote control."""


class BrokerUnreachableError(RetryableError):
    """The broker did not accept a connection within the ping's timeout."""


class BrokerRefusedError(ConfigError):
    """The broker (or the result backend's Redis) refused what its URL asks of it: the login
    (user, password, virtual host), the Redis database, or TLS of a plain-text port."""


_REFUSALS = frozenset({"AccessRefused", "AuthenticationError", "NotAllowed"})
"""Names of the login refusals of py-amqp (a user or password, a virtual host) and redis-py."""


class PingUnsupportedError(ConfigError):
    """The broker cannot carry remote-control commands (no broadcast: SQS)."""


def worker_name(settings: RuntimeSettings, lane: str, *, host: str | None = None) -> str:
    """The name a worker of ``lane`` takes on this host, in this process:
    ``<queue>@<host>.<pid>`` (``file_processing@4f2a9c.1``)."""
    return f"{_name_prefix(settings, lane, host or socket.gethostname())}{os.getpid()}"


def ping_workers(
    app: Any,
    settings: RuntimeSettings,
    lane: str,
    *,
    timeout: float,
    host: str | None = None,
    any_host: bool = False,
) -> list[str]:
    """The names of ``lane``'s workers that answered a ping within ``timeout`` seconds.

    Args:
        app: The lane's Celery application (:func:`~etl_core.work.celery.celery_app`).
        settings: The runtime settings (queue prefix, broker).
        lane: The lane whose workers are asked.
        timeout: Seconds to connect to the broker, and again to wait for answers.
        host: Only the workers of this host (default: this machine's host name).
        any_host: The lane's workers on every host instead.

    Raises:
        PingUnsupportedError: the broker has no broadcast (SQS).
        BrokerUnreachableError: no connection to the broker within ``timeout``.
    """
    scheme = str(settings.broker_url or "").split("://", 1)[0].lower()
    if scheme in NO_BROADCAST_SCHEMES:
        raise PingUnsupportedError(
            f"a {scheme}:// broker carries no remote control: workers cannot be pinged "
            "(check the worker process instead)"
        )
    prefix = _name_prefix(settings, lane, "" if any_host else host or socket.gethostname())
    with _connection(app, None, timeout) as connection:
        _connect(connection, timeout, "broker_url")
        replies = app.control.ping(timeout=timeout, connection=connection)
    return sorted(
        name
        for reply in replies or []
        for name, answer in reply.items()
        if name.startswith(prefix) and isinstance(answer, dict) and answer.get("ok") == "pong"
    )


def lane_has_workers(
    app: Any, settings: RuntimeSettings, lane: str, *, timeout: float = 2.0
) -> bool | None:
    """Whether any worker of ``lane``, on any host, answers a ping within ``timeout``;
    ``None`` when that cannot be told (SQS, or the broker unreachable just now)."""
    try:
        return bool(ping_workers(app, settings, lane, timeout=timeout, any_host=True))
    except (PingUnsupportedError, BrokerUnreachableError):
        return None


def _name_prefix(settings: RuntimeSettings, lane: str, host: str) -> str:
    queue = lane_queues(settings, lane).work
    return f"{queue}@{host}." if host else f"{queue}@"


def check_broker(app: Any, settings: RuntimeSettings, *, timeout: float = 5.0) -> None:
    """Connect to the broker once, within ``timeout``, before a command sends units: an
    unreachable broker or a refused login is then said at once, naming the broker (its
    password hidden), instead of a library's traceback after its own retries. An SQS
    broker is left to its first send (its connection is an AWS client, made lazily). A
    Redis ``result_backend`` other than the broker is connected to the same way.

    The connection checked is closed, not given to the application's pool: one the broker
    (or a load balancer) drops before the first send would fail that send with RabbitMQ's
    result backend, which opens its channel outside the publish's retries.

    Raises:
        BrokerUnreachableError: no connection within ``timeout`` (exit 1).
        BrokerRefusedError: the broker refused the login, the Redis database, or TLS
            (``rediss://``, ``amqps://`` at a plain-text port) (exit 2).
    """
    broker = str(settings.broker_url or "")
    if broker.split("://", 1)[0].lower() not in NO_BROADCAST_SCHEMES:
        with _connection(app, None, timeout) as connection:
            _connect(connection, timeout, "broker_url")
    backend = settings.result_backend
    if backend is not None and backend.scheme in REDIS and str(backend) != broker:
        with _connection(app, str(backend), timeout) as connection:
            _connect(connection, timeout, "result_backend")


_TLS_SCHEMES = ("rediss", "amqps")
"""The TLS schemes whose port is probed for a plain-text server when TLS fails."""

_PLAIN_GREETING = b"PING\r\nAMQP\x00\x00\x09\x01"
"""What the probe says first, whatever the URL's scheme: a Redis ``PING`` line, then AMQP
0-9-1's protocol header. A plain-text Redis answers the ``PING``; RabbitMQ reads 8 bytes
as a protocol header and answers the one it wants. So a ``rediss://`` URL at RabbitMQ's
port, or ``amqps://`` at Redis's, is told at once too (each protocol's own greeting left
the other server waiting for more: a wait of the whole timeout, then "did not answer")."""

_PLAIN_ANSWERS = (b"+", b"-", b"\x01", b"AMQP")
"""How a plain-text Redis (a reply or an error) or RabbitMQ (``Connection.Start``, or the
protocol header it wants) answers that greeting."""


def _connection(app: Any, url: str | None, timeout: float) -> Any:
    """A new connection to ``url`` (the broker's by default) that gives up after ``timeout``:
    on its connect, TLS handshake included (Redis's has no limit of its own, so
    ``rediss://`` at a plain-text port waited for an answer that never comes), and on a
    Redis server that accepts the connection but never answers."""
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    return app.connection_for_write(url, connect_timeout=timeout, transport_options=options)


def _connect(connection: Any, timeout: float, field: str) -> None:
    """Connect once, within ``timeout``: a health check must not wait on retries. ``field``
    is the setting the connection's URL came from (``broker_url``, ``result_backend``)."""
    what = "the broker" if field == "broker_url" else "the result backend"
    connection.connect_timeout = timeout
    try:
        connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # kombu's OperationalError, socket errors: all mean "not reached"
        uri = connection.as_uri()
        if _refused(exc):
            raise BrokerRefusedError(
                f"{what} {uri} refused the login: {exc}",
                [FieldError(field, "check its user, password and virtual host")],
            ) from exc
        if _refused_database(exc):
            raise BrokerRefusedError(
                f"{what} {uri} refused its database: {exc}",
                [FieldError(field, "check the Redis database number after the port")],
            ) from exc
        if _plain_text_server(connection, timeout):
            raise BrokerRefusedError(
                f"{what} {uri} asks for TLS, but the server at that port speaks plain text "
                f"(the TLS handshake failed: {exc})",
                [FieldError(field, "use the plain scheme (redis://, amqp://) for that port, "
                                   "or the server's TLS port")],
            ) from exc  # fmt: skip
        raise BrokerUnreachableError(
            f"{what} {uri} did not answer within {timeout:g}s (check {field}): {exc}"
        ) from exc


def _plain_text_server(connection: Any, timeout: float) -> bool:
    """Whether a TLS URL's (``rediss://``, ``amqps://``) port answers its protocol in
    plain text: TLS was asked of a server that does not speak it."""
    scheme = str(connection.as_uri()).split("://", 1)[0].lower()
    if scheme not in _TLS_SCHEMES or not connection.hostname:
        return False
    port = connection.port or connection.transport.default_port
    try:
        with socket.create_connection((connection.hostname, port), timeout=timeout) as sock:
            sock.sendall(_PLAIN_GREETING)
            return sock.recv(8).startswith(_PLAIN_ANSWERS)
    except OSError:  # nothing there, or no answer: said as not reached
        return False


def _refused_database(error: BaseException | None) -> bool:
    """Whether ``error``, or an error it was raised from, is Redis refusing to ``SELECT``
    the URL's database (``DB index is out of range``, older servers ``invalid DB index``):
    the server answered, so waiting for it would never help."""
    seen = 0
    while error is not None and seen < 10:
        if type(error).__name__ == "ResponseError" and "DB index" in str(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _refused(error: BaseException | None) -> bool:
    """Whether ``error``, or an error it was raised from, is a login refusal."""
    seen = 0
    while error is not None and seen < 10:
        if type(error).__name__ in _REFUSALS:
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False
