"""A lane's store on S3 at start-up: a prefix holding nothing is said, since on S3 a
mistyped prefix is an empty store where a mistyped local directory is refused as missing."""

from __future__ import annotations

import uuid

import pytest

from etl_core.runtime import RuntimeSettings, open_session
from etl_core.storage import open_store
from etl_core.testing import capture_logs

pytestmark = pytest.mark.s3


def _store_warnings(endpoint: str, url: str, **extra: str) -> list[str]:
    env = {"ETL_STORAGE_URL": url, "ETL_S3_ENDPOINT_URL": endpoint, **extra}
    session = open_session("test", RuntimeSettings, env=env)
    with capture_logs() as logs, session.open_store():
        pass
    return [r["event"] for r in logs if r["level"] == "warning" and url in r["event"]]


def test_a_lane_on_an_s3_prefix_holding_nothing_says_so_naming_the_url(
    s3_endpoint: str, s3_bucket: str
) -> None:
    url = f"s3://{s3_bucket}/prd-{uuid.uuid4().hex}"  # the store is at .../prod: a typo

    warnings = _store_warnings(s3_endpoint, url)

    assert len(warnings) == 1
    assert "holds no object" in warnings[0]
    assert "ETL_STORAGE_URL" in warnings[0]


def test_an_s3_store_holding_objects_or_expected_empty_opens_without_a_warning(
    s3_endpoint: str, s3_bucket: str
) -> None:
    used = f"s3://{s3_bucket}/prod-{uuid.uuid4().hex}"
    with open_store(used, endpoint_url=s3_endpoint) as store:
        store.write_bytes("landing/pos/pos_20261101.csv", b"id\n1\n")
    new = f"s3://{s3_bucket}/new-{uuid.uuid4().hex}"

    assert _store_warnings(s3_endpoint, used) == []
    assert _store_warnings(s3_endpoint, new, ETL_CREATE_STORE="true") == []
