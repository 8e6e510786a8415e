"""Shared fixtures for etl_core's integration tests: a moto S3 server and object stores."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from etl_core.retry import RetryPolicy
from etl_core.storage import ObjectStore, S3ObjectStore, open_store
from etl_core.testing.fixtures import s3_bucket, s3_endpoint

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
