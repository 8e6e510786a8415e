"""Real brokers for the Celery tests: the machine's Redis and RabbitMQ, one queue prefix per test.

``celery_broker`` is a fixture parametrized over both brokers (marks ``redis`` and
``rabbitmq``); an absent server skips the test, or fails it under
``ETL_REQUIRE_SERVICES=1``. Each test gets its own ``queue_prefix``, so parallel runs
never take each other's tasks, and its queues are deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from etl_core.config import URL
from etl_core.runtime import LANES, RuntimeSettings
from etl_core.testing.services import port_open, service_unavailable
from etl_core.work.celery.config import lane_queues

__all__ = ["BROKER_URLS", "TestBroker", "broker_for", "celery_broker"]

BROKER_URLS = {
    "redis": os.environ.get("ETL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("ETL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
"""The test brokers (``ETL_TEST_REDIS_URL``, ``ETL_TEST_RABBITMQ_URL``)."""


@dataclass(frozen=True)
class TestBroker:
    """One test's broker: its URL and the queue prefix no other test uses."""

    __test__ = False  # not a test class, whatever its name

    kind: str
    url: str
    prefix: str

    def settings(self, **values: Any) -> RuntimeSettings:
        """Runtime settings pointing at this broker with this test's prefix."""
        base = RuntimeSettings(broker_url=URL(self.url), queue_prefix=self.prefix)
        return replace(base, **values)

    def env(self) -> dict[str, str]:
        """The same, as a worker process's environment."""
        return {"ETL_BROKER_URL": self.url, "ETL_QUEUE_PREFIX": self.prefix}

    def queue_length(self, queue: str) -> int:
        """Messages waiting in ``queue`` (0 when it does not exist)."""
        with _connect(self.url) as connection:
            try:
                return int(connection.SimpleQueue(queue).qsize())
            except Exception:  # a passive declare of a missing queue
                return 0

    def messages(
        self, queue: str, *, limit: int = 100, raw: bool = False
    ) -> list[tuple[Mapping[str, Any], Any]]:
        """Take up to ``limit`` messages off ``queue``: each one's headers and body (decoded,
        or with ``raw`` its bytes and content type as they lie on the queue, undecoded)."""
        taken: list[tuple[Mapping[str, Any], Any]] = []
        with _connect(self.url) as connection:
            if raw:  # a basic get: no consumer, which would decode (and refuse pickle)
                channel = connection.default_channel
                for _ in range(limit):
                    got = channel.basic_get(queue, no_ack=False)
                    if got is None:
                        break
                    message = channel.message_to_python(got)
                    taken.append((dict(message.headers), (message.body, message.content_type)))
                    message.ack()
                return taken
            simple = connection.SimpleQueue(queue)
            for _ in range(limit):
                try:
                    message = simple.get(block=True, timeout=1)
                except simple.Empty:
                    break
                taken.append((dict(message.headers), message.decode()))
                message.ack()
            simple.close()
        return taken

    def delete_queues(self, lanes: tuple[str, ...]) -> None:
        """Delete this test's work and dead-letter queues of ``lanes``."""

        settings = self.settings()
        with _connect(self.url) as connection:
            for lane in lanes:
                queues = lane_queues(settings, lane)
                for name in (queues.work, queues.dead):
                    with contextlib.suppress(Exception):
                        connection.default_channel.queue_delete(name)


def _connect(url: str) -> Any:
    """A kombu connection to ``url`` (kombu types it only in part)."""
    from kombu import Connection

    factory: Any = Connection
    return factory(url)


@contextlib.contextmanager
def broker_for(kind: str) -> Iterator[TestBroker]:
    """The machine's ``redis`` or ``rabbitmq`` with a fresh queue prefix, its queues
    deleted afterwards; absent, the test is skipped (failed under ETL_REQUIRE_SERVICES=1)."""
    url = BROKER_URLS[kind]
    parts = urlsplit(url)
    if not port_open(parts.hostname or "127.0.0.1", parts.port or 0):
        service_unavailable(kind, f"nothing listens at {parts.hostname}:{parts.port}")
    broker = TestBroker(kind, url, f"t{uuid.uuid4().hex[:10]}.")
    try:
        yield broker
    finally:
        broker.delete_queues((*LANES, "test_lane"))


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ]
)
def celery_broker(request: pytest.FixtureRequest) -> Iterator[TestBroker]:
    """A real broker (Redis, then RabbitMQ) with a queue prefix of this test's own."""
    with broker_for(str(request.param)) as broker:
        yield broker
