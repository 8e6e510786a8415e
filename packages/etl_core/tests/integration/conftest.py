"""Shared fixtures for etl_core's integration tests: a moto S3 server and object stores;
the metric exporters' receivers (a StatsD agent, the Pushgateway binary) and a network
that refuses a StatsD export's second datagram."""

from __future__ import annotations

import errno
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from etl_core.metrics import StatsdClient
from etl_core.retry import RetryPolicy
from etl_core.storage import ObjectStore, S3ObjectStore, open_store
from etl_core.testing.fixtures import s3_bucket, s3_endpoint
from etl_core.testing.pushgateway import running_pushgateway
from etl_core.testing.statsd import statsd_agent

# Retries still happen in tests, only without long waits.
FAST_RETRY = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)

__all__ = ["s3_bucket", "s3_endpoint"]  # shared fixtures, re-exported for pytest


def s3_options(endpoint: str) -> dict[str, Any]:
    """Options that point an S3 store at the test server."""
    return {"endpoint_url": endpoint, "retry": FAST_RETRY}


@pytest.fixture
def s3_store_options(s3_endpoint: str) -> dict[str, Any]:
    """``open_store`` options for the test server: its endpoint and a fast retry policy."""
    return s3_options(s3_endpoint)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """The same contract, once per backend: a fresh local directory or a fresh S3 prefix."""
    if request.param == "local":
        with open_store(tmp_path / "store") as local:
            yield local
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    with open_store(f"s3://{bucket}/{uuid.uuid4().hex}", **s3_options(endpoint)) as remote:
        yield remote


@pytest.fixture
def reopen(store: ObjectStore) -> Iterator[Callable[[str], ObjectStore]]:
    """Open another store URL with the same backend options as ``store`` (closed afterwards)."""
    opened: list[ObjectStore] = []

    def open_url(url: str) -> ObjectStore:
        options = (
            s3_options(store.client.meta.endpoint_url) if isinstance(store, S3ObjectStore) else {}
        )
        opened.append(open_store(url, **options))
        return opened[-1]

    yield open_url
    for other in opened:
        other.close()


# ------------------------------------------------------------------ metric exporters


@pytest.fixture
def udp_server() -> Iterator[socket.socket]:
    """A StatsD agent: a UDP socket bound on 127.0.0.1 (``etl_core.testing.statsd``)."""
    with statsd_agent() as sock:
        yield sock


@pytest.fixture(scope="module")
def pushgateway() -> Iterator[str]:
    """The machine's Pushgateway binary on 127.0.0.1, in-memory only, for the whole module."""
    with running_pushgateway() as url:
        yield url


class _SecondDatagramRefused:
    """A real UDP socket whose second ``sendto`` the network refuses (fault injection: a
    send buffer that filled, a route that went away, mid-export)."""

    def __init__(self, sock: socket.socket, sent: list[bytes]) -> None:
        self._sock = sock
        self._sent = sent

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        self._sent.append(data)
        if len(self._sent) == 2:
            raise OSError(errno.ENOBUFS, "No buffer space available")
        return self._sock.sendto(data, address)

    def close(self) -> None:
        self._sock.close()


@dataclass
class RefusingNetwork:
    """A StatsD client to ``udp_server`` (512-byte datagrams) whose network refuses the
    second datagram it sends, until :meth:`heal`; ``tried`` holds every datagram tried."""

    client: StatsdClient
    tried: list[bytes]
    heal: Callable[[], None]


@pytest.fixture
def second_datagram_refused(
    udp_server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> RefusingNetwork:
    """A client whose export's second datagram the network refuses (the first and third
    go out), healed by ``heal()`` for the export that follows."""
    client = StatsdClient("127.0.0.1", udp_server.getsockname()[1], max_packet_bytes=512)
    opened = StatsdClient._connect
    tried: list[bytes] = []

    def connect(self: StatsdClient) -> tuple[Any, tuple[str, int]]:
        sock, address = opened(self)
        return _SecondDatagramRefused(sock, tried), address

    monkeypatch.setattr(StatsdClient, "_connect", connect)
    return RefusingNetwork(client, tried, monkeypatch.undo)
