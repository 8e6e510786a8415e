"""An S3 endpoint that accepts connections and never answers: the store says so early and fails
in seconds, not after minutes of silence."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from etl_core.errors import StorageError
from etl_core.retry import RetryPolicy
from etl_core.storage import S3ObjectStore
from etl_core.testing import capture_logs
from etl_core.testing.s3 import aws_test_environment

pytest.importorskip("boto3", reason="the S3 backend needs the 's3' extra (boto3)")


@pytest.fixture
def stalled_endpoint() -> Iterator[str]:
    """A server on 127.0.0.1 that accepts every connection and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    with aws_test_environment():
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for connection in held:
        connection.close()
    server.close()


def test_the_start_up_check_of_a_stalled_endpoint_fails_in_seconds(stalled_endpoint: str) -> None:
    store = S3ObjectStore("stalled-bucket", endpoint_url=stalled_endpoint)
    started = time.monotonic()
    with pytest.raises(StorageError, match="check"):
        store.check(timeout=1)
    assert time.monotonic() - started < 5
    store.close()


def test_the_first_retry_is_logged_as_it_happens(stalled_endpoint: str) -> None:
    policy = RetryPolicy(attempts=2, initial_delay=0, jitter=False)
    store = S3ObjectStore(
        "stalled-bucket", endpoint_url=stalled_endpoint, read_timeout=0.5, retry=policy
    )
    with capture_logs() as logs, pytest.raises(StorageError):
        store.head("some/key")
    retries = [r for r in logs if "retrying in" in r["event"]]
    assert len(retries) == 1
    assert retries[0]["level"] == "warning"
    assert retries[0]["attempt"] == 1
    assert "head" in retries[0]["event"]
    store.close()


def test_each_retry_of_an_unreachable_endpoint_is_logged_once_naming_the_url() -> None:
    refusing = socket.create_server(("127.0.0.1", 0))
    port = refusing.getsockname()[1]
    refusing.close()  # nothing listens there now: connections are refused
    policy = RetryPolicy(attempts=3, initial_delay=0, jitter=False)
    with aws_test_environment():
        store = S3ObjectStore("gone-bucket", endpoint_url=f"http://127.0.0.1:{port}", retry=policy)
        with capture_logs() as logs, pytest.raises(StorageError):
            store.head("some/key")
        store.close()
    warnings = [r for r in logs if r["level"] == "warning"]
    assert [r["attempt"] for r in warnings] == [1, 2]
    assert all("s3://gone-bucket/some/key" in r["event"] for r in warnings)
