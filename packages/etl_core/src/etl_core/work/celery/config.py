"""The Celery configuration every lane shares, from the runtime settings (no Celery import).

One function turns :class:`~etl_core.runtime.RuntimeSettings` into Celery's settings
mapping, so the caller that enqueues and the worker that runs a lane's tasks agree on
the broker, the queues and the delivery guarantees:

* JSON only, for the task arguments and the results (a unit is plain JSON);
* acks late and prefetch 1: a message is acknowledged after its unit ended, so a worker
  that dies mid-unit leaves it to be redelivered, and a worker holds one unit at a time;
* a killed worker process rejects its message back to the queue (redelivered);
* a visibility timeout above the hard time limit (Redis, SQS), so a unit still running
  is never handed to a second worker;
* a hard time limit at least :data:`TIME_LIMIT_GAP` above the soft one, so a unit stopped
  at the soft limit has the time to clean up and report it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from etl_core.errors import ConfigError, FieldError
from etl_core.redaction import unencoded_password
from etl_core.retry import RetryPolicy
from etl_core.runtime import LANES, RuntimeSettings

__all__ = [
    "BROKER_SCHEMES",
    "FOLLOWER_CONNECT_TIMEOUT",
    "FOLLOWER_OUTAGE_SECONDS",
    "FOLLOWER_RETRY_POLICY",
    "RESULT_STORE_RETRIES",
    "LaneQueues",
    "celery_config",
    "following",
    "lane_queues",
    "task_name",
    "task_policy",
]

BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "sqs")
"""Broker URL schemes the platform configures and tests (SQS needs ``celery[sqs]``)."""

REDIS = ("redis", "rediss")
"""The Redis schemes, whose URL names a database (``/0``) for a broker or a result backend."""

AMQP = ("amqp", "amqps")
"""The RabbitMQ schemes (AMQP 0-9-1, plain text or TLS)."""

WORKER_START_TIMEOUT = 120.0
"""Seconds a worker process may take to start, its lane's context built (Celery's default,
4 s, would kill a process still loading its contracts on a busy host)."""

TIME_LIMIT_GAP = timedelta(seconds=5)
"""The least time between ``task_soft_time_limit`` and ``task_time_limit``: a unit stopped
at the soft limit unwinds (DuckDB interrupts its query and closes, scratch is removed) before
the hard limit kills its process; 2 s killed some in their cleanup."""

REDIS_CONNECT_TIMEOUT = 10.0
"""Seconds a worker or a caller gives a Redis broker or result backend to accept a
connection: without it, an unreachable host is waited for without a word."""

FOLLOWER_OUTAGE_SECONDS = 20.0
"""Seconds a command following its units waits out a lost Redis result backend (its
reconnections and its polls together) before it ends with
:class:`~etl_core.work.celery.executor.BrokerLostError`."""

FOLLOWER_CONNECT_TIMEOUT = 5.0
"""Seconds a command following its units gives each connection to its Redis result backend
(a worker: :data:`REDIS_CONNECT_TIMEOUT`), as its start-up check does: with twenty
reconnections of 10 s each, a host that drops packets held a followed run ~220 s."""

FOLLOWER_RETRY_POLICY = {
    "max_retries": 20,
    "interval_start": 0,
    "interval_step": 1,
    "interval_max": 1,
    "timeout": FOLLOWER_OUTAGE_SECONDS,
}
"""How a command following its units reconnects to a lost Redis result backend: up to
twenty times, a second apart, for at most :data:`FOLLOWER_OUTAGE_SECONDS` in all, so a
Redis restart or failover of up to ~20 s is survived (the units go on on the workers and
their results are read once it answers); a Redis still gone then ends the run with
:class:`~etl_core.work.celery.executor.BrokerLostError`. Three reconnections (~2 s) ended a
long followed run at every Redis restart; without the ``timeout`` a host that drops packets
(each reconnection waiting out its connect timeout) held it ~220 s. Workers keep Celery's
policy: they store results whoever follows them."""


RESULT_STORE_RETRIES = 15
RESULT_STORE_PAUSE_MS = 2000
"""How a worker stores a unit's result in a lost Redis result backend (a restart): up to
:data:`RESULT_STORE_RETRIES` more tries, each after a pause Celery draws under
``RESULT_STORE_PAUSE_MS`` (~15 s on average, 30 s at most), so a unit ending while Redis
restarts is stored as it ended once Redis answers. Celery's default stores once: such a
unit, its work done, was reported failed with the ``ConnectionError``."""


def following(app: Any) -> Any:
    """``app`` set up to follow results: a lost Redis result backend is said after
    :data:`FOLLOWER_RETRY_POLICY`, each connection given :data:`FOLLOWER_CONNECT_TIMEOUT`
    (set before the backend is first used); its reads are not
    tried again as a worker's stores are (:data:`RESULT_STORE_RETRIES`): a silent Redis
    would hold each for ``REDIS_READ_TIMEOUT`` more."""
    app.conf.result_backend_always_retry = False
    if app.conf.redis_socket_connect_timeout:  # a Redis result backend: reconnections bounded
        app.conf.redis_socket_connect_timeout = FOLLOWER_CONNECT_TIMEOUT
    options = dict(app.conf.result_backend_transport_options or {})
    app.conf.result_backend_transport_options = {
        **options,
        "retry_policy": FOLLOWER_RETRY_POLICY,
    }
    return app


REDIS_READ_TIMEOUT = 20.0
"""Seconds a worker or a caller waits for a Redis reply once a command is sent (the
connection's greeting too), so a server that accepts and never answers is said as a
connection error (a worker retries, logging it). It cannot cut a queue's wait: the
broker library sends ``BRPOP`` with a one-second server-side timeout and reads its
reply only once the socket is readable, as it does a broadcast's."""

VISIBILITY_MARGIN = timedelta(minutes=10)
"""How far the default visibility timeout lies beyond the hard time limit."""


def task_name(lane: str) -> str:
    """The name of ``lane``'s task that runs one work unit (``file_processing.run_unit``)."""
    return f"{lane}.run_unit"


def task_policy(settings: RuntimeSettings) -> RetryPolicy:
    """How a worker retries a unit's retryable errors: ``task_attempts`` tries, backing off
    from one second to a minute between them."""
    return RetryPolicy(attempts=settings.task_attempts, initial_delay=1.0, max_delay=60.0)


@dataclass(frozen=True)
class LaneQueues:
    """A lane's queues: the one its workers consume, and where poison messages are moved."""

    work: str
    dead: str


def lane_queues(settings: RuntimeSettings, lane: str) -> LaneQueues:
    """``lane``'s queue names, with the settings' ``queue_prefix``."""
    name = f"{settings.queue_prefix}{lane}"
    return LaneQueues(work=name, dead=f"{name}.dead")


def celery_config(settings: RuntimeSettings, lane: str) -> dict[str, Any]:
    """Celery's settings for ``lane`` (``app.conf.update(...)``).

    Raises:
        ConfigError: no broker, an unsupported broker scheme, no result backend for
            SQS, or time limits and visibility timeout out of order; every field at once.
    """
    broker = _broker(settings)
    soft = settings.task_soft_time_limit.total_seconds()
    hard = settings.task_time_limit.total_seconds()
    visibility = (
        settings.broker_visibility_timeout or settings.task_time_limit + VISIBILITY_MARGIN
    ).total_seconds()
    problems = _setting_problems(settings, soft, hard, visibility)
    backend = _result_backend(settings, broker, problems)
    if problems:
        raise ConfigError("the Celery settings are invalid", problems)
    queues = lane_queues(settings, lane)
    return {
        "broker_url": broker,
        "result_backend": backend,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": soft,
        "task_time_limit": hard,
        "broker_transport_options": {
            "visibility_timeout": visibility,
            # Redis: look for messages of dead workers every 10 s, not every 100 s
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            **_redis_socket_options(broker),
        },
        "result_backend_transport_options": {"visibility_timeout": visibility},
        # a unit's result stored once Redis answers again, not failed by a restart
        "result_backend_always_retry": True,
        "result_backend_max_retries": RESULT_STORE_RETRIES,
        "result_backend_base_sleep_between_retries_ms": RESULT_STORE_PAUSE_MS,
        "result_backend_max_sleep_between_retries_ms": RESULT_STORE_PAUSE_MS,
        **_redis_socket_options(backend, "redis_"),
        "task_default_queue": queues.work,
        "task_routes": {  # every lane's task to its own queue, so a lane may enqueue another's
            task_name(other): {"queue": lane_queues(settings, other).work} for other in LANES
        },
        "broker_connection_retry_on_startup": True,
        "worker_proc_alive_timeout": WORKER_START_TIMEOUT,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": False,
        "result_expires": timedelta(days=1),
    }


def _redis_socket_options(url: str, prefix: str = "") -> dict[str, Any]:
    """Connect and read timeouts and TCP keepalive for ``url`` when it is Redis's, under
    ``prefix`` (a broker's transport options: none; Celery's result backend settings:
    ``redis_``); nothing for RabbitMQ, whose client has its own, or SQS."""
    if url.partition("://")[0].lower() not in REDIS:
        return {}
    return {
        f"{prefix}socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        f"{prefix}socket_timeout": REDIS_READ_TIMEOUT,
        f"{prefix}socket_keepalive": True,
    }


def _broker(settings: RuntimeSettings) -> str:
    url = settings.broker_url
    if url is None:
        raise ConfigError(
            "the Celery executor and workers need a broker",
            [FieldError("broker_url", "not set (ETL_BROKER_URL=redis://host:6379/0)")],
        )
    if url.scheme not in BROKER_SCHEMES:
        expected = ", ".join(f"{s}://" for s in BROKER_SCHEMES)
        raise ConfigError(
            "the Celery settings are invalid",
            [FieldError("broker_url", f"scheme {url.scheme!r} is not one of {expected}")],
        )
    if any(unencoded_password(node) for node in str(url).split(";")):
        problem: str | None = UNENCODED_PASSWORD
    elif url.scheme in REDIS:
        problem = _redis_database_problem(str(url))
    else:
        problem = _amqp_tls_problem(str(url)) if url.scheme in AMQP else None
    if problem is not None:
        raise ConfigError("the Celery settings are invalid", [FieldError("broker_url", problem)])
    return _lower_scheme(str(url))


UNENCODED_PASSWORD = (
    "its user-info, read up to its last '@', holds a password with an unencoded '/', '?' "
    "or '#', where the broker library reads the host, port or database (and quoted what it "
    "found there in its error): percent-encode it ('/' as %2F, '?' as %3F, '#' as %23, "
    "'@' as %40); or, with no such password, an '@' in a query value made the URL read "
    "so: write that '@' as %40"
)
"""What is said of a broker or result backend URL whose password holds an unencoded
``/``, ``?`` or ``#`` (:func:`~etl_core.redaction.unencoded_password`; each URL of a
broker's ``;``-separated failover list on its own). Read to the last
``@``, a URL with an ``@`` in a query value (``?client_name=etl@prod``) reads as one, and
cannot be told from one: the message says both."""


def _lower_scheme(url: str) -> str:
    """``url`` with its scheme in lower case: Celery and kombu look a scheme up as written,
    so ``Redis://`` or ``RPC://``, which the settings take, failed at the first use with
    ``No module named 'Redis'``."""
    scheme, separator, rest = url.partition("://")
    return f"{scheme.lower()}{separator}{rest}"


_REDIS_DATABASE = re.compile(r"/?[0-9]*")
"""A Redis URL's path: nothing, ``/`` or ``/<database number>``."""


def _redis_database_problem(url: str) -> str | None:
    """What is wrong with how a Redis URL names its database, if anything: a path other
    than a number (the broker library would report it as a broker not answering, so a
    worker waits for it forever) or ``?db=`` (which it refuses with a ``TypeError``)."""
    parts = urlsplit(url)
    if not _REDIS_DATABASE.fullmatch(parts.path):
        return f"expected the Redis database as a number after the port (/0), got {parts.path!r}"
    if "db" in parse_qs(parts.query, keep_blank_values=True):
        return "give the Redis database as a number after the port (/0), not as ?db="
    return None


def _amqp_tls_problem(url: str) -> str | None:
    """What the RabbitMQ client refuses in ``url``'s query, if anything: ``ssl_*`` options
    (``?ssl_cert_reqs=``), which the broker library hands to the TLS socket under names it
    does not take (a ``TypeError`` at connect, said as a broker that did not answer)."""
    options = parse_qs(urlsplit(url).query, keep_blank_values=True)
    refused = sorted(name for name in options if name.startswith("ssl_"))
    if not refused:
        return None
    return (
        f"the RabbitMQ client takes no TLS options in the URL (got {', '.join(refused)}): "
        "use amqps://… without them, which checks the server's certificate against the "
        "system's certificate authorities (SSL_CERT_FILE names another bundle)"
    )


_TLS_CERT_CHECKS = ("required", "optional", "none", "CERT_REQUIRED", "CERT_OPTIONAL", "CERT_NONE")
"""The ``ssl_cert_reqs`` values Celery's Redis result backend takes."""


def _redis_backend_problem(url: str) -> str | None:
    """What is wrong with a Redis result backend's URL, if anything: its database or TLS."""
    return _redis_database_problem(url) or _redis_tls_problem(url)


def _redis_tls_problem(url: str) -> str | None:
    """What Celery's Redis result backend refuses in ``url``'s TLS options, if anything
    (with a ``ValueError`` at the first result, on every worker and caller): a
    ``rediss://`` URL without ``ssl_cert_reqs``, or a ``redis://`` one with ``ssl_*``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    if parts.scheme.lower() == "redis":
        if any(name.startswith("ssl_") for name in query):
            return "ssl_* options need the rediss:// scheme (TLS), not redis://"
        return None
    checks = query.get("ssl_cert_reqs", [])
    if len(checks) != 1 or checks[0] not in _TLS_CERT_CHECKS:
        return (
            "a rediss:// result backend needs ?ssl_cert_reqs=required (or optional, none: "
            "how the server's certificate is checked), got "
            + (", ".join(repr(check) for check in checks) if checks else "none")
        )
    return None


def _result_backend(settings: RuntimeSettings, broker: str, problems: list[FieldError]) -> str:
    backend = settings.result_backend
    if backend is not None:
        problem = _redis_backend_problem(str(backend)) if backend.scheme in REDIS else None
        if unencoded_password(str(backend)):
            problem = UNENCODED_PASSWORD
        if problem is not None:
            problems.append(FieldError("result_backend", problem))
        return _lower_scheme(str(backend))
    scheme = broker.split("://", 1)[0].lower()
    if scheme in REDIS:
        problem = _redis_tls_problem(broker)
        if problem is not None:  # the broker's database was checked with the broker
            said = f"{problem} (result_backend is not set: the broker's Redis keeps the results)"
            problems.append(FieldError("broker_url", said))
        return broker
    if scheme in ("amqp", "amqps"):
        return "rpc://"
    problems.append(
        FieldError("result_backend", f"a {scheme}:// broker keeps no results: set one (redis://…)")
    )
    return ""


_QUEUE_PREFIX = re.compile(r"[A-Za-z0-9._:-]*")
"""What ``queue_prefix`` may hold: characters every broker names a queue with, none of them
invisible at the end of an environment variable."""


def _setting_problems(
    settings: RuntimeSettings, soft: float, hard: float, visibility: float
) -> list[FieldError]:
    problems = []
    if not _QUEUE_PREFIX.fullmatch(settings.queue_prefix):
        problems.append(
            FieldError(
                "queue_prefix",
                f"expected letters, digits and '.', '_', '-', ':' only (such as 'staging.'), "
                f"got {settings.queue_prefix!r}: a space or another character makes queues "
                "that a producer and its workers set up apart do not share",
            )
        )
    if soft <= 0:
        problems.append(FieldError("task_soft_time_limit", "must be positive"))
    if hard < soft + TIME_LIMIT_GAP.total_seconds():
        problems.append(
            FieldError(
                "task_time_limit",
                f"must be at least {TIME_LIMIT_GAP.total_seconds():g}s above "
                f"task_soft_time_limit (got {hard:g}s and {soft:g}s): a unit stopped at the "
                "soft limit needs the time to clean up before its process is killed",
            )
        )
    if visibility <= hard:
        problems.append(FieldError("broker_visibility_timeout", "must be above task_time_limit"))
    if not 1 <= settings.task_attempts <= 100:
        problems.append(FieldError("task_attempts", "must be from 1 to 100"))
    if not 1 <= settings.task_max_deliveries <= 1000:
        problems.append(FieldError("task_max_deliveries", "must be from 1 to 1000"))
    return problems
