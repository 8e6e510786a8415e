"""serve's cycle over an S3 store (moto behind a fault-injecting proxy): an empty prefix is
an empty store, not a gone one; a bucket gone fails the cycle; the per-cycle store check
opens no client and makes no request a fault could fail without the store's retries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from etl_core.retry import RetryPolicy
from etl_core.storage import S3ObjectStore
from etl_core.testing.s3 import aws_test_environment, create_bucket
from etl_core.testing.s3_faults import Fault, FaultyS3Proxy, faulty_s3_proxy
from observability.service import StatusService

pytest.importorskip("boto3", reason="the S3 backend needs the 's3' extra (boto3)")
pytestmark = pytest.mark.s3

FAST_RETRY = RetryPolicy(attempts=4, initial_delay=0.01, max_delay=0.05, deadline=20)


@pytest.fixture(scope="module")
def proxy(s3_endpoint: str) -> Iterator[FaultyS3Proxy]:
    with faulty_s3_proxy(s3_endpoint) as running:
        yield running


@pytest.fixture
def store(proxy: FaultyS3Proxy, s3_bucket: str) -> Iterator[S3ObjectStore]:
    """A store of its own client (as the runtime opens it) under a fresh, empty prefix."""
    proxy.clear()
    with (
        aws_test_environment(),
        S3ObjectStore(
            s3_bucket, f"serve-{uuid.uuid4().hex[:8]}", endpoint_url=proxy.url, retry=FAST_RETRY
        ) as opened,
    ):
        yield opened
    proxy.clear()


def service(store: Any, clock: Any, weekday_contract: Any) -> StatusService:
    clock.set(datetime(2026, 12, 21, 10, tzinfo=UTC))
    contract = weekday_contract(expected=None)
    return StatusService([contract], store, clock, interval=timedelta(minutes=5))


def test_a_prefix_with_no_objects_is_an_empty_store_not_a_gone_one(
    store: S3ObjectStore, clock: Any, weekday_contract: Any
) -> None:
    snapshot = service(store, clock, weekday_contract).refresh()

    assert snapshot.error == ""
    assert snapshot.evaluation is not None


def test_an_empty_bucket_is_an_empty_store_for_serve_and_a_monitor_unit(
    proxy: FaultyS3Proxy, clock: Any, weekday_contract: Any
) -> None:
    from etl_core.contracts import ContractSet
    from etl_core.work.events import monitor_unit
    from observability.work import MonitorContext, run_unit

    with aws_test_environment():
        bucket = create_bucket(proxy.url)
        with S3ObjectStore(bucket, endpoint_url=proxy.url, retry=FAST_RETRY) as empty:
            snapshot = service(empty, clock, weekday_contract).refresh()
            context = MonitorContext(empty, ContractSet((weekday_contract(expected=None),)))
            status = run_unit(context, monitor_unit("pos", clock.now()))

    assert snapshot.error == ""
    assert status.dataset == "pos"


def test_a_bucket_deleted_while_serving_fails_the_cycle_and_keeps_the_last_results(
    s3_endpoint: str, clock: Any, weekday_contract: Any
) -> None:
    """No request of its own tells S3's store is gone: its listing does (NoSuchBucket)."""
    import boto3

    with aws_test_environment():
        bucket = create_bucket(s3_endpoint)
        client = boto3.client("s3", endpoint_url=s3_endpoint)
        with S3ObjectStore(bucket, "lake", endpoint_url=s3_endpoint, retry=FAST_RETRY) as gone:
            watched = service(gone, clock, weekday_contract)
            good = watched.refresh()
            client.delete_bucket(Bucket=bucket)
            clock.advance(timedelta(minutes=5))
            failed = watched.refresh()

    assert good.error == ""
    assert failed.error != ""
    assert failed.evaluation == good.evaluation


def test_the_per_cycle_store_check_opens_no_s3_client(
    store: S3ObjectStore, clock: Any, weekday_contract: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client per cycle (or per monitor unit) is a session, a credential resolution (an
    STS call under a web identity) and a TLS handshake each time: the check reuses none."""
    from etl_core.storage import s3

    created: list[object] = []
    real = s3._create_client
    monkeypatch.setattr(s3, "_create_client", lambda **kw: created.append(kw) or real(**kw))
    watched = service(store, clock, weekday_contract)

    for _ in range(3):
        assert watched.refresh().error == ""
        clock.advance(timedelta(minutes=5))

    assert created == []


def test_a_transient_s3_fault_at_the_cycles_start_is_retried_not_a_failed_cycle(
    store: S3ObjectStore, proxy: FaultyS3Proxy, s3_bucket: str, clock: Any, weekday_contract: Any
) -> None:
    """S3 answers 503 SlowDown now and then: the store retries its reads, and the cycle's
    check must not be the one request that fails the cycle (and readiness) on the first."""
    proxy.inject(
        Fault("error", "HEAD", f"^/{s3_bucket}/?$", status=503, code="SlowDown"),
        Fault("error", "GET", f"^/{s3_bucket}/?$", status=503, code="SlowDown"),
    )

    snapshot = service(store, clock, weekday_contract).refresh()

    assert snapshot.error == ""
