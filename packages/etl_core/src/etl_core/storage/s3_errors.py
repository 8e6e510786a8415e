"""Translation of botocore errors into the platform's error tree.

The S3 backend calls :func:`translate_s3_error` at its boundary: a missing key
becomes :class:`~etl_core.errors.ObjectNotFoundError`, throttling and 5xx
become :class:`~etl_core.storage.base.TransientStorageError` (retried by
:mod:`etl_core.retry`), credential problems a :class:`StorageError` with a hint.
Messages carry the operation, URL and S3's error code, never credentials or
signed URLs.
"""

from __future__ import annotations

from typing import Any

from etl_core.errors import (
    ObjectConflictError,
    ObjectNotFoundError,
    StorageConfigError,
    StorageError,
)
from etl_core.retry import parse_retry_after

from .base import TransientStorageError

__all__ = [
    "CREDENTIAL_ERROR_CODES",
    "NOT_FOUND_ERROR_CODES",
    "TRANSIENT_ERROR_CODES",
    "TRANSIENT_HTTP_STATUSES",
    "translate_s3_error",
]

NOT_FOUND_ERROR_CODES = frozenset({"NoSuchKey", "NoSuchUpload", "404", "NotFound"})
TRANSIENT_ERROR_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "500",
        "502",
        "503",
        "504",
    }
)
TRANSIENT_HTTP_STATUSES = frozenset({429, 500, 502, 503, 504})
CREDENTIAL_ERROR_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AccessDenied",
        "AllAccessDisabled",
        "403",
        "Forbidden",
    }
)
_CREDENTIALS_HINT = (
    "check the AWS credentials in use (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE "
    "or the instance/task role) and that they may access this bucket"
)


def translate_s3_error(
    exc: BaseException, *, operation: str, url: str, key: str | None = None
) -> StorageError | None:
    """The platform error for a botocore exception, or ``None`` if ``exc`` is not one.

    Args:
        exc: the exception raised by a boto3 client call.
        operation: what was being done, for the message (``"head"``, ``"upload part"``).
        url: the ``s3://`` URL of the object (or store) involved.
        key: the store-relative key involved, if any.
    """
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        return _from_client_error(exc.response, operation=operation, url=url, key=key)
    if isinstance(
        exc,
        bx.NoCredentialsError
        | bx.PartialCredentialsError
        | bx.CredentialRetrievalError
        | bx.ProfileNotFound,
    ):
        return StorageConfigError(
            f"S3 {operation} of {url} failed: no usable AWS credentials ({exc}); "
            f"{_CREDENTIALS_HINT}",
            key=key,
            url=url,
        )
    if isinstance(exc, bx.SSLError):
        return StorageError(f"S3 {operation} of {url} failed: TLS error: {exc}", key=key, url=url)
    if isinstance(exc, bx.HTTPClientError | bx.ConnectionError | bx.IncompleteReadError):
        return TransientStorageError(
            f"S3 {operation} of {url} failed: connection problem: {exc}", key=key, url=url
        )
    if isinstance(exc, bx.BotoCoreError):
        return StorageError(f"S3 {operation} of {url} failed: {exc}", key=key, url=url)
    if _is_cut_answer(exc):
        return TransientStorageError(
            f"S3 {operation} of {url} failed: connection problem: the answer was cut: {exc}",
            key=key,
            url=url,
        )
    return None


def _is_cut_answer(exc: BaseException) -> bool:
    """Whether ``exc`` is urllib3's error for an answer whose body broke off.

    botocore reads the body of an error answer (and of every non-streaming answer)
    itself, without wrapping urllib3's errors: a connection reset while a 404 or a 503
    arrives escapes as a bare ``ProtocolError`` rather than a botocore exception.
    Only the errors of a broken or stalled connection count: urllib3's other errors
    (a bad endpoint URL, a TLS or proxy failure) would fail the same way on every
    attempt, so they stay permanent.
    """
    try:
        from urllib3 import exceptions as u3
    except ImportError:  # pragma: no cover - botocore depends on urllib3
        return False
    return isinstance(
        exc, u3.ProtocolError | u3.ReadTimeoutError | u3.IncompleteRead | u3.InvalidChunkLength
    )


def _from_client_error(response: Any, *, operation: str, url: str, key: str | None) -> StorageError:
    error = response.get("Error", {})
    metadata = response.get("ResponseMetadata", {})
    code = str(error.get("Code", "") or "")
    status = metadata.get("HTTPStatusCode")
    message = error.get("Message") or code or f"HTTP {status}"
    where = f"S3 {operation} of {url} failed"
    if code == "NoSuchBucket":
        bucket = error.get("BucketName") or url
        return StorageError(f"{where}: bucket {bucket!r} does not exist", key=key, url=url)
    if code in ("PreconditionFailed", "ConditionalRequestConflict"):
        return ObjectConflictError(
            f"{where}: the object changed while it was being read or copied "
            "(precondition failed); try again",
            key=key,
            url=url,
        )
    if code in NOT_FOUND_ERROR_CODES:
        return ObjectNotFoundError(f"no object {key!r} at {url}", key=key, url=url)
    if code in TRANSIENT_ERROR_CODES or status in TRANSIENT_HTTP_STATUSES:
        headers = metadata.get("HTTPHeaders", {})
        hint = headers.get("retry-after") if isinstance(headers, dict) else None
        return TransientStorageError(
            f"{where}: {code or status} (transient): {message}",
            key=key,
            url=url,
            retry_after=parse_retry_after(hint) if isinstance(hint, str) else None,
        )
    if code in CREDENTIAL_ERROR_CODES or status == 403:
        return StorageError(
            f"{where}: {code or status}: {message}; {_CREDENTIALS_HINT}", key=key, url=url
        )
    return StorageError(f"{where}: {code or status}: {message}", key=key, url=url)
