"""botocore errors become platform errors, and transient ones are retried.

Requests are answered by botocore's Stubber, so nothing leaves the process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.stub import Stubber
from urllib3 import exceptions as urllib3_errors

from etl_core.errors import (
    MissingDependencyError,
    ObjectNotFoundError,
    RetryableError,
    StorageConfigError,
    StorageError,
)
from etl_core.retry import RetryPolicy
from etl_core.storage import S3ObjectStore, TransientStorageError, open_store
from etl_core.storage.s3_errors import translate_s3_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

URL = "s3://bucket/pre/k"
HEAD_OK = {
    "ContentLength": 3,
    "ETag": '"acbd18db4cc2f85cedef654fccc4a4d8"',
    "LastModified": datetime(2024, 5, 1, tzinfo=UTC),
}


@pytest.fixture
def client() -> Iterator[S3Client]:
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="unit", aws_secret_access_key="unit"
    )
    yield s3
    s3.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def store(client: S3Client, sleeps: list[float]) -> S3ObjectStore:
    policy = RetryPolicy(attempts=3, initial_delay=0.5, jitter=False, sleep=sleeps.append)
    return S3ObjectStore("bucket", "pre", client=client, retry=policy)


def client_error(code: str, status: int, headers: dict[str, str] | None = None) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    return ClientError(response, "HeadObject")


def translate(exc: BaseException) -> StorageError | None:
    return translate_s3_error(exc, operation="head", url=URL, key="k")


# ----------------------------------------------------------- translation


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("SlowDown", 503),
        ("Throttling", 400),
        ("ThrottlingException", 400),
        ("RequestLimitExceeded", 400),
        ("InternalError", 500),
        ("503", 503),
        ("", 500),
        ("BadGateway", 502),
        ("GatewayTimeout", 504),
    ],
)
def test_throttling_and_5xx_become_retryable_storage_errors(code: str, status: int) -> None:
    error = translate(client_error(code, status))

    assert isinstance(error, TransientStorageError)
    assert isinstance(error, RetryableError)
    assert error.key == "k"
    assert URL in str(error)


def test_retry_after_header_is_carried_as_a_hint() -> None:
    error = translate(client_error("SlowDown", 503, {"retry-after": "7"}))

    assert isinstance(error, TransientStorageError)
    assert error.retry_after == 7.0


@pytest.mark.parametrize(("code", "status"), [("NoSuchKey", 404), ("404", 404), ("NotFound", 404)])
def test_missing_keys_become_object_not_found(code: str, status: int) -> None:
    error = translate(client_error(code, status))

    assert isinstance(error, ObjectNotFoundError)
    assert not isinstance(error, RetryableError)
    assert "'k'" in str(error)


def test_missing_bucket_is_a_storage_error_naming_it() -> None:
    response: Any = {
        "Error": {"Code": "NoSuchBucket", "Message": "nope", "BucketName": "bucket"},
        "ResponseMetadata": {"HTTPStatusCode": 404},
    }

    error = translate(ClientError(response, "ListObjectsV2"))

    assert type(error) is StorageError
    assert "bucket 'bucket' does not exist" in str(error)


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDenied", 403), ("InvalidAccessKeyId", 403), ("SignatureDoesNotMatch", 403)],
)
def test_credential_failures_are_fatal_with_a_hint(code: str, status: int) -> None:
    error = translate(client_error(code, status))

    assert type(error) is StorageError
    assert code in str(error)
    assert "AWS_PROFILE" in str(error)


def test_missing_credentials_are_a_configuration_error_naming_where_they_come_from() -> None:
    error = translate(NoCredentialsError())

    assert type(error) is StorageConfigError
    assert "no usable AWS credentials" in str(error)
    assert "AWS_ACCESS_KEY_ID" in str(error)


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:9"),
    ],
)
def test_connection_failures_are_transient(exc: Exception) -> None:
    assert isinstance(translate(exc), TransientStorageError)


@pytest.mark.parametrize(
    "exc",
    [
        urllib3_errors.ProtocolError("Connection broken", ConnectionResetError(104, "reset")),
        urllib3_errors.ReadTimeoutError(None, "/k", "Read timed out."),  # type: ignore[arg-type]
    ],
    ids=["cut", "stalled"],
)
def test_a_cut_or_stalled_answer_is_transient(exc: Exception) -> None:
    assert isinstance(translate(exc), TransientStorageError)


@pytest.mark.parametrize(
    "exc",
    [
        urllib3_errors.LocationParseError("http://[bad"),
        urllib3_errors.ProxySchemeUnknown("socks9"),
        urllib3_errors.SSLError("certificate verify failed"),
    ],
    ids=["bad-url", "bad-proxy", "tls"],
)
def test_urllib3_errors_other_than_a_cut_answer_are_not_retried(exc: Exception) -> None:
    assert not isinstance(translate(exc), RetryableError)


def test_other_exceptions_are_not_translated() -> None:
    assert translate(ValueError("not botocore")) is None


def test_other_client_errors_keep_code_and_message() -> None:
    error = translate(client_error("InvalidObjectState", 403 - 3))

    assert type(error) is StorageError
    assert "InvalidObjectState: InvalidObjectState happened" in str(error)


# ------------------------------------------------------- retry through a client


def test_throttled_request_is_retried_honouring_retry_after(
    client: S3Client, store: S3ObjectStore, sleeps: list[float]
) -> None:
    with Stubber(client) as stub:
        stub.add_client_error(
            "head_object",
            "SlowDown",
            http_status_code=503,
            response_meta={"HTTPHeaders": {"retry-after": "2"}},
        )
        stub.add_client_error("head_object", "InternalError", http_status_code=500)
        stub.add_response("head_object", HEAD_OK, {"Bucket": "bucket", "Key": "pre/k"})

        info = store.head("k")

        stub.assert_no_pending_responses()
    assert info.size == 3
    assert info.etag == "acbd18db4cc2f85cedef654fccc4a4d8"
    assert sleeps == [2.0, 1.0]  # the server's hint, then backoff 0.5 * 2


def test_retries_give_up_with_the_last_transient_error(
    client: S3Client, store: S3ObjectStore, sleeps: list[float]
) -> None:
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_client_error("head_object", "SlowDown", http_status_code=503)

        with pytest.raises(TransientStorageError, match="SlowDown") as caught:
            store.head("k")

    assert isinstance(caught.value, StorageError)
    assert len(sleeps) == 2
    assert any("gave up after 3 attempts" in note for note in caught.value.__notes__)


def test_not_found_is_not_retried(
    client: S3Client, store: S3ObjectStore, sleeps: list[float]
) -> None:
    with Stubber(client) as stub:
        stub.add_client_error("head_object", "404", http_status_code=404)

        assert store.exists("k") is False

    assert sleeps == []


def test_each_listing_page_is_retried_on_its_own(
    client: S3Client, store: S3ObjectStore, sleeps: list[float]
) -> None:
    item = {"Key": "pre/a", "Size": 1, "ETag": '"e"', "LastModified": datetime(2024, 5, 1)}
    with Stubber(client) as stub:
        stub.add_response(
            "list_objects_v2",
            {"Contents": [item], "IsTruncated": True, "NextContinuationToken": "t1"},
        )
        stub.add_client_error("list_objects_v2", "SlowDown", http_status_code=503)
        stub.add_response(
            "list_objects_v2",
            {"Contents": [{**item, "Key": "pre/b"}], "IsTruncated": False},
            {"Bucket": "bucket", "Prefix": "pre/", "MaxKeys": 1000, "ContinuationToken": "t1"},
        )

        listed = [info.key for info in store.list()]

    assert listed == ["a", "b"]
    assert sleeps == [0.5]


def test_failing_upload_part_aborts_the_multipart_upload(
    client: S3Client, store: S3ObjectStore
) -> None:
    upload = {"Bucket": "bucket", "Key": "pre/big", "UploadId": "u1"}
    with Stubber(client) as stub:
        stub.add_response("create_multipart_upload", {"UploadId": "u1"})
        for _ in range(3):
            stub.add_client_error("upload_part", "InternalError", http_status_code=500)
        stub.add_response("abort_multipart_upload", {}, upload)

        def write_one_part() -> None:
            with store.open_write("big", part_size=5 * 1024 * 1024) as writer:
                writer.write(b"x" * (5 * 1024 * 1024))  # a full part goes up at once

        with pytest.raises(TransientStorageError, match="upload part"):
            write_one_part()

        stub.assert_no_pending_responses()


# -------------------------------------------------------- configuration


def test_client_retries_are_off_so_retries_do_not_multiply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unit")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit")

    with open_store(
        "s3://bucket/x", endpoint_url="http://127.0.0.1:9", region="eu-west-1"
    ) as store:
        assert isinstance(store, S3ObjectStore)
        config = store.client.meta.config
        assert getattr(config, "retries", None) == {"total_max_attempts": 1, "mode": "standard"}
        assert getattr(config, "s3", None) == {"addressing_style": "path"}
        assert getattr(config, "signature_version", None) == "s3v4"
        assert store.client.meta.region_name == "eu-west-1"


def test_missing_credentials_fail_with_a_hint_before_any_request(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    store = open_store("s3://bucket/x", endpoint_url="http://127.0.0.1:9", region="us-east-1")

    with pytest.raises(StorageError, match="no usable AWS credentials") as caught:
        store.head("k")

    assert not isinstance(caught.value, RetryableError)


def test_unknown_profile_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="no-such-profile-etl"):
        open_store("s3://bucket/x", profile="no-such-profile-etl")


def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)

    with pytest.raises(MissingDependencyError, match=r"pip install 'etl-core\[s3\]'"):
        open_store("s3://bucket/x")


@pytest.mark.parametrize(
    ("option", "value"),
    [("page_size", 0), ("page_size", 1001), ("multipart_copy_threshold", 1024)],
)
def test_out_of_range_s3_options_are_refused(client: S3Client, option: str, value: int) -> None:
    options: dict[str, Any] = {option: value}

    with pytest.raises(ValueError, match=option):
        S3ObjectStore("bucket", client=client, **options)
