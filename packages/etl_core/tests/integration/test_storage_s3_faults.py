"""The S3 store against an S3 that fails mid-conversation (a fault-injecting proxy before moto).

Retryable faults (503 SlowDown, 500 InternalError, a reset connection, a short body, a
200 carrying an error) are retried and the operation ends as if nothing happened; a
refusal (403) fails at once naming the key; nothing half-written becomes visible.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from etl_core.errors import StorageError
from etl_core.retry import RetryPolicy
from etl_core.storage import S3ObjectStore
from etl_core.testing.s3_faults import Fault, FaultyS3Proxy, faulty_s3_proxy

pytest.importorskip("boto3", reason="the S3 backend needs the 's3' extra (boto3)")
pytestmark = pytest.mark.s3

FAST_RETRY = RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05, deadline=20)
PART = 5 * 1024 * 1024  # S3's smallest part: a 6 MiB object is two parts
BIG = os.urandom(PART + 1024 * 1024)


@pytest.fixture(scope="module")
def proxy(s3_endpoint: str) -> Iterator[FaultyS3Proxy]:
    with faulty_s3_proxy(s3_endpoint) as running:
        yield running


@pytest.fixture
def store(proxy: FaultyS3Proxy, s3_bucket: str) -> Iterator[S3ObjectStore]:
    proxy.clear()
    with S3ObjectStore(
        s3_bucket,
        f"faults-{uuid.uuid4().hex[:8]}",
        endpoint_url=proxy.url,
        retry=FAST_RETRY,
        read_timeout=2,
    ) as opened:
        yield opened
    proxy.clear()


def _fired(proxy: FaultyS3Proxy) -> None:
    assert proxy.applied, f"no fault fired; requests: {proxy.requests}"
    assert not proxy.pending(), "a fault was armed but not reached"


@pytest.mark.parametrize(
    "fault",
    [
        Fault("error", "GET", "a.csv", status=503, code="SlowDown", times=2),
        Fault("error", "GET", "a.csv", status=500, code="InternalError"),
        Fault("reset", "GET", "a.csv"),
        Fault("truncate", "GET", "a.csv"),
        Fault("slow", "GET", "a.csv", delay=3),
    ],
    ids=["503", "500", "reset", "truncated", "slow"],
)
def test_a_read_through_a_retryable_fault_returns_the_whole_object(
    store: S3ObjectStore, proxy: FaultyS3Proxy, fault: Fault
) -> None:
    data = os.urandom(300_000)
    store.write_bytes("a.csv", data)
    proxy.inject(fault)
    assert store.read_bytes("a.csv") == data
    _fired(proxy)


@pytest.mark.parametrize("kind", ["truncate", "reset"])
def test_a_download_cut_mid_body_resumes_and_is_whole(
    store: S3ObjectStore, proxy: FaultyS3Proxy, tmp_path: object, kind: str
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    store.write_bytes("big.bin", data)
    proxy.inject(Fault("truncate" if kind == "truncate" else "reset", "GET", "big.bin"))
    target = f"{tmp_path}/big.bin"
    assert store.download("big.bin", target) == len(data)
    with open(target, "rb") as got:
        assert got.read() == data
    _fired(proxy)


def test_a_versioned_read_of_a_truncated_body_is_retried(
    store: S3ObjectStore, proxy: FaultyS3Proxy
) -> None:
    store.write_bytes("state.json", b'{"x": 1}' * 1000)
    proxy.inject(Fault("truncate", "GET", "state.json"))
    assert store.read_versioned("state.json").data == b'{"x": 1}' * 1000
    _fired(proxy)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("error", "PUT", "out.csv", status=503, code="SlowDown"),
        Fault("reset", "PUT", "out.csv"),
        Fault("reset", "PUT", "out.csv", forward=True),
    ],
    ids=["503", "reset", "reset-after-write"],
)
def test_a_put_through_a_retryable_fault_is_written_once(
    store: S3ObjectStore, proxy: FaultyS3Proxy, fault: Fault
) -> None:
    proxy.inject(fault)
    store.write_bytes("out.csv", b"a,b\n1,2\n")
    _fired(proxy)
    assert store.read_bytes("out.csv") == b"a,b\n1,2\n"


@pytest.mark.parametrize(
    "fault",
    [
        Fault("error", "PUT", "big.bin", query="partNumber=2", status=500, code="InternalError"),
        Fault("reset", "PUT", "big.bin", query="partNumber=1"),
        Fault("error", "POST", "big.bin", query="uploadId=", status=503, code="SlowDown"),
        Fault("error_in_200", "POST", "big.bin", query="uploadId=", code="InternalError"),
        Fault("reset", "POST", "big.bin", query="uploadId="),
    ],
    ids=["part-500", "part-reset", "complete-503", "complete-200-error", "complete-reset"],
)
def test_a_multipart_upload_through_a_retryable_fault_is_whole(
    store: S3ObjectStore, proxy: FaultyS3Proxy, fault: Fault
) -> None:
    proxy.inject(fault)
    with store.open_write("big.bin", part_size=PART) as writer:
        writer.write(BIG)
    _fired(proxy)
    assert store.read_bytes("big.bin") == BIG
    assert store.remove_abandoned_writes(older_than=timedelta(0)) == 0


def test_a_completion_whose_answer_is_lost_is_not_reported_as_a_failure(
    store: S3ObjectStore, proxy: FaultyS3Proxy
) -> None:
    """S3 did complete the upload, the connection dropped before its answer: the retried
    completion finds no such upload any more, and the object is there, whole."""
    proxy.inject(Fault("reset", "POST", "big.bin", query="uploadId=", forward=True))
    with store.open_write("big.bin", part_size=PART) as writer:
        writer.write(BIG)
    _fired(proxy)
    assert store.read_bytes("big.bin") == BIG


def test_a_refusal_fails_at_once_naming_the_key(store: S3ObjectStore, proxy: FaultyS3Proxy) -> None:
    proxy.inject(Fault("error", "PUT", "out.csv", status=403, code="AccessDenied"))
    with pytest.raises(StorageError, match=r"out\.csv") as raised:
        store.write_bytes("out.csv", b"x")
    assert raised.value.key == "out.csv"
    assert "AccessDenied" in str(raised.value)
    assert not store.exists("out.csv")


def test_exhausted_retries_fail_naming_the_key_and_leave_nothing(
    store: S3ObjectStore, proxy: FaultyS3Proxy
) -> None:
    proxy.inject(
        Fault("error", "POST", "big.bin", query="uploadId=", status=503, code="SlowDown", times=9)
    )
    with (
        pytest.raises(StorageError, match=r"big\.bin") as raised,
        store.open_write("big.bin", part_size=PART) as writer,
    ):
        writer.write(BIG)
    assert "complete multipart upload" in str(raised.value)
    assert not store.exists("big.bin")
    assert store.remove_abandoned_writes(older_than=timedelta(0)) == 0  # aborted, not left


def test_a_conditional_create_whose_answer_is_lost_is_not_a_conflict_with_itself(
    store: S3ObjectStore, proxy: FaultyS3Proxy
) -> None:
    """The create reached S3, its answer did not: the retry's 412 is the store's own write."""
    proxy.inject(Fault("reset", "PUT", "alerts.json", forward=True))
    etag = store.put_if("alerts.json", b"[1]", etag=None)
    _fired(proxy)
    assert store.read_versioned("alerts.json").etag == etag


@pytest.mark.parametrize(
    "fault",
    [
        Fault("error_in_200", "PUT", "copy.csv", code="InternalError"),
        Fault("reset", "PUT", "copy.csv", forward=True),
    ],
    ids=["copy-200-error", "copy-reset-after-write"],
)
def test_a_move_through_a_retryable_fault_leaves_one_whole_object(
    store: S3ObjectStore, proxy: FaultyS3Proxy, fault: Fault
) -> None:
    store.write_bytes("src.csv", b"a,b\n1,2\n")
    proxy.inject(fault)
    store.move("src.csv", "copy.csv")
    _fired(proxy)
    assert store.read_bytes("copy.csv") == b"a,b\n1,2\n"
    assert not store.exists("src.csv")


@pytest.mark.parametrize(
    "fault",
    [
        Fault("truncate", "GET", query="list-type=2"),
        Fault("error", "GET", query="list-type=2", status=500, code="InternalError"),
        Fault("reset", "DELETE", "gone.csv", forward=True),
    ],
    ids=["list-truncated", "list-500", "delete-reset-after"],
)
def test_a_listing_or_delete_through_a_retryable_fault_completes(
    store: S3ObjectStore, proxy: FaultyS3Proxy, fault: Fault
) -> None:
    for name in ("a.csv", "b.csv", "gone.csv"):
        store.write_bytes(name, b"x")
    proxy.inject(fault)
    if fault.method == "DELETE":
        store.delete("gone.csv")
        assert not store.exists("gone.csv")
    else:
        assert sorted(info.key for info in store.list()) == ["a.csv", "b.csv", "gone.csv"]
    _fired(proxy)


def test_a_cut_error_answer_is_retried_not_raised_raw(
    store: S3ObjectStore, proxy: FaultyS3Proxy
) -> None:
    """The 404 of a GET arrives with half its body: botocore reads error bodies itself and
    lets urllib3's ProtocolError out; the store retries it and says the key is missing."""
    from etl_core.errors import ObjectNotFoundError

    proxy.inject(Fault("truncate", "GET", "missing.json"))
    with pytest.raises(ObjectNotFoundError, match=r"missing\.json"):
        store.read_versioned("missing.json")
    _fired(proxy)


def test_a_conditional_update_whose_answer_is_lost_is_not_a_conflict_with_itself(
    store: S3ObjectStore, proxy: FaultyS3Proxy
) -> None:
    first = store.put_if("lease.json", b'{"n": 1}', etag=None)
    proxy.inject(Fault("reset", "PUT", "lease.json", forward=True))
    second = store.put_if("lease.json", b'{"n": 2}', etag=first)
    _fired(proxy)
    assert store.read_versioned("lease.json").etag == second != first


def test_a_conditional_put_that_lost_to_another_writer_is_still_a_conflict(
    store: S3ObjectStore, proxy: FaultyS3Proxy
) -> None:
    """The retry's 412 is another writer's when the object holds other bytes."""
    from etl_core.errors import ObjectConflictError

    first = store.put_if("lease.json", b'{"holder": "a"}', etag=None)
    store.write_bytes("lease.json", b'{"holder": "b"}')
    proxy.inject(Fault("reset", "PUT", "lease.json"))  # the first try never reaches S3
    with pytest.raises(ObjectConflictError):
        store.put_if("lease.json", b'{"holder": "c"}', etag=first)
    _fired(proxy)
    assert store.read_bytes("lease.json") == b'{"holder": "b"}'


@pytest.mark.parametrize("update", [False, True], ids=["create", "update"])
def test_a_conditional_put_that_lost_to_identical_bytes_is_still_a_conflict(
    store: S3ObjectStore, proxy: FaultyS3Proxy, s3_endpoint: str, s3_bucket: str, update: bool
) -> None:
    """Another writer computed the same document from the same version and won while
    this put's first try (never reaching S3) waited for its retry: equal bytes are not
    this put's own write. Taking them for it would tell two counters' increments that
    both counted (one is lost), or two creators of one claim that both hold it."""
    from etl_core.errors import ObjectConflictError

    key = "deliveries.json"
    expected = store.put_if(key, b'{"deliveries": 1}', etag=None) if update else None
    document = b'{"deliveries": 2}' if update else b'{"deliveries": 1}'
    with S3ObjectStore(s3_bucket, store.prefix, endpoint_url=s3_endpoint) as other:
        won: list[str] = []

        def other_writer_wins(state: object) -> None:
            if not won:
                won.append(other.put_if(key, document, etag=expected))

        loser_retry = FAST_RETRY.with_options(before_sleep=other_writer_wins)
        with S3ObjectStore(
            s3_bucket, store.prefix, endpoint_url=proxy.url, retry=loser_retry, read_timeout=2
        ) as loser:
            proxy.inject(Fault("error", "PUT", key, status=503, code="SlowDown"))
            with pytest.raises(ObjectConflictError):
                loser.put_if(key, document, etag=expected)
    _fired(proxy)
    assert won
    assert store.read_versioned(key).etag == won[0]


def test_the_proxy_closes_a_connection_left_idle(s3_endpoint: str) -> None:
    """A pooled keep-alive connection never closed does not hold a proxy thread forever."""
    import socket
    from urllib.parse import urlsplit

    with faulty_s3_proxy(s3_endpoint, idle_timeout=0.5) as idle:
        port = urlsplit(idle.url).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            assert client.recv(1) == b""  # closed by the proxy, well before the 10 s bound
