"""The S3 backend (``s3://bucket/prefix``), for AWS and S3-compatible servers (MinIO, moto).

boto3 is imported only when a store is created, so ``etl_core`` stays standard
library at import time; without it, creating a store raises
:class:`~etl_core.errors.MissingDependencyError` naming the extra ``s3``.

Retries: every request goes through an :class:`~etl_core.retry.RetryPolicy`
(throttling, 5xx and dropped connections are retried with jittered backoff,
honouring ``Retry-After``). botocore's own retries are switched off
(``total_max_attempts=1``) so the two layers do not multiply into a retry storm.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypeVar

from etl_core.errors import (
    InvalidKeyError,
    MissingDependencyError,
    ObjectConflictError,
    ObjectNotFoundError,
    StorageConfigError,
    StorageError,
)
from etl_core.retry import RetryPolicy, RetryState

from .base import (
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    ObjectInfo,
    ObjectStore,
    ObjectWriter,
    TransientStorageError,
    VersionedObject,
    check_expires,
    check_part_size,
    check_range,
)
from .keys import validate_key, validate_prefix
from .s3_errors import translate_s3_error
from .url import InvalidStoreURLError, parse_store_url

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, CopySourceTypeDef

__all__ = ["DEFAULT_S3_RETRY", "MAX_PARTS", "S3ObjectStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
AddressingStyle = Literal["path", "virtual", "auto"]

MAX_PARTS = 10_000
"""S3's limit on the number of parts of one multipart upload."""
_COPY_PART_SIZE = 512 * 1024 * 1024
_READ_CHUNK = 1024 * 1024

PUT_ID_METADATA = "etl-put-id"
"""User metadata a conditional put stores: an id of that call, so that its retry can
tell its own earlier write from another writer's (``x-amz-meta-etl-put-id``)."""

DEFAULT_S3_RETRY = RetryPolicy(
    attempts=5, initial_delay=0.2, max_delay=20.0, multiplier=2.0, deadline=120.0
)
"""Five attempts with full-jitter backoff from 0.2 s, capped at 20 s per wait and at
two minutes for a whole call: a batch job fails instead of hanging on a stalled store."""


class S3ObjectStore(ObjectStore):
    """Objects under ``s3://bucket/prefix``, through one thread-safe boto3 client.

    Args:
        bucket: the bucket name.
        prefix: key prefix of the store inside the bucket (``""`` for the whole bucket).
        endpoint_url: an S3-compatible endpoint (MinIO, moto); path-style
            addressing is used with it unless ``addressing_style`` says otherwise.
        region: the AWS region; defaults to boto3's resolution (``AWS_REGION``...).
        profile: a named profile from the AWS config files.
        retry: the retry policy for every request; defaults to :data:`DEFAULT_S3_RETRY`.
        page_size: keys per listing request (1-1000).
        multipart_copy_threshold: objects larger than this are copied part by
            part (S3 refuses single copies above 5 GiB).
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds to wait for response data.
        max_connections: size of the HTTP connection pool (threads sharing the store).
        addressing_style: ``"path"``, ``"virtual"`` or ``"auto"``.
        client: a ready boto3 S3 client to use instead of creating one (tests,
            custom sessions); the store then does not close it.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        retry: RetryPolicy | None = None,
        page_size: int = 1000,
        multipart_copy_threshold: int = MAX_PART_SIZE,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_connections: int = 10,
        addressing_style: AddressingStyle | None = None,
        client: S3Client | None = None,
    ) -> None:
        location = parse_store_url(f"s3://{bucket}/{prefix}")
        assert location.bucket is not None
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be between 1 and 1000 keys, got {page_size}")
        if not MIN_PART_SIZE <= multipart_copy_threshold <= MAX_PART_SIZE:
            raise ValueError(
                f"multipart_copy_threshold must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} "
                f"bytes, got {multipart_copy_threshold}"
            )
        self._bucket = location.bucket
        self._prefix = location.prefix
        self._key_base = f"{location.prefix}/" if location.prefix else ""
        self._url = location.url
        policy = retry or DEFAULT_S3_RETRY
        if policy.before_sleep is None:  # its line replaces the generic one: one per retry
            policy = policy.with_options(before_sleep=_log_retry, log_retries=False)
        self._retry = policy
        self._page_size = page_size
        self._copy_threshold = multipart_copy_threshold
        self._owns_client = client is None
        self._client_options: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region": region,
            "profile": profile,
            "addressing_style": addressing_style or ("path" if endpoint_url else "auto"),
            "url": self._url,
        }
        self._client: S3Client = client or _create_client(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_connections=max_connections,
            **self._client_options,
        )

    @property
    def url(self) -> str:
        return self._url

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self._bucket

    @property
    def prefix(self) -> str:
        """The store's key prefix inside the bucket, without slashes (``""`` for none)."""
        return self._prefix

    @property
    def client(self) -> S3Client:
        """The underlying boto3 client, for operations this interface does not cover."""
        return self._client

    # ------------------------------------------------------------------ reads

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        return self._list_pages(prefix)

    def list_unaddressable(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        return self._list_pages(prefix, addressable=False)

    def list_every(self, prefix: str = "") -> Iterator[tuple[ObjectInfo, bool]]:
        validate_prefix(prefix)
        return self._list_every(prefix)

    def head_unaddressable(self, key: str) -> ObjectInfo:
        return self._head(key, self._raw_key(key))

    def copy_unaddressable(self, key: str, dst: str, *, etag: str) -> None:
        full_src = self._raw_key(key)
        full_dst = self._full_key(dst)
        info = self.head_unaddressable(key)
        if info.etag != etag:
            raise ObjectConflictError(
                f"{key!r} changed before it was copied (expected ETag {etag}, found {info.etag})",
                key=key,
                url=self._url,
            )
        self._copy_version(info, full_src, dst, full_dst)

    def head(self, key: str) -> ObjectInfo:
        return self._head(key, self._full_key(key))

    def open_read(self, key: str, *, start: int | None = None, end: int | None = None) -> BinaryIO:
        first, end = check_range(start, end)
        self._full_key(key)
        if end == first:
            self.head(key)  # an empty range still says whether the object exists
            return io.BytesIO(b"")
        body = _S3Body(self, key, first, end)
        if not body.open_at(first, etag=None):
            return io.BytesIO(b"")
        return io.BufferedReader(body, buffer_size=_READ_CHUNK)

    def read_versioned(self, key: str) -> VersionedObject:
        full = self._full_key(key)

        def get() -> tuple[bytes, str]:
            # The body is read inside the attempt: a dropped connection repeats the GET.
            response = self._client.get_object(Bucket=self._bucket, Key=full)
            body = response["Body"]
            try:
                return body.read(), _unquote_etag(response["ETag"])
            finally:
                body.close()

        data, etag = self._call("read", key, get)
        return VersionedObject(key, data, etag)

    # ----------------------------------------------------------------- writes

    def open_write(self, key: str, *, part_size: int = DEFAULT_PART_SIZE) -> ObjectWriter:
        check_part_size(part_size)
        return _S3Writer(self, key, part_size)

    def copy(self, src: str, dst: str) -> None:
        full_src = self._full_key(src)
        full_dst = self._full_key(dst)
        info = self.head(src)
        if src == dst:
            return
        self._copy_version(info, full_src, dst, full_dst)

    def put_if(self, key: str, data: ReadableBuffer, *, etag: str | None) -> str:
        full = self._full_key(key)
        body = bytes(data)
        # Marks this call's write (every retry of it sends the same id): a retry refused
        # by the object this call wrote itself is told apart from another writer's win.
        metadata = {PUT_ID_METADATA: uuid.uuid4().hex}
        tries = 0

        def put() -> Any:
            nonlocal tries
            tries += 1
            if etag is None:
                return self._client.put_object(
                    Bucket=self._bucket, Key=full, Body=body, Metadata=metadata, IfNoneMatch="*"
                )
            return self._client.put_object(
                Bucket=self._bucket, Key=full, Body=body, Metadata=metadata, IfMatch=f'"{etag}"'
            )

        try:
            response = self._call("conditional put", key, put)
        except ObjectConflictError:
            if tries > 1 and (own := self._written_by_lost_attempt(key, full, metadata)):
                return own
            raise
        except ObjectNotFoundError as exc:  # IfMatch on a missing key
            raise ObjectConflictError(
                f"conditional put of {self.url_for(key)} failed: expected ETag {etag}, "
                "but the object does not exist",
                key=key,
                url=self.url,
            ) from exc
        return _unquote_etag(response["ETag"])

    def _written_by_lost_attempt(self, key: str, full: str, metadata: dict[str, str]) -> str | None:
        """The ETag of ``key`` if an earlier attempt of this very put wrote it, else ``None``.

        A conditional put whose answer was lost (a reset connection, a timeout) may have
        been done by S3; its retry is then refused (412) by the object it wrote itself.
        Reporting a conflict then would make a compare-and-put loop apply its change a
        second time, or a lease holder believe another holds its lease. The object's
        put id (metadata) tells: equal bytes do not, since another writer may have
        computed the same document from the same version (two counters' increments,
        two creates of one claim) and won; the loser must then see its conflict.
        """
        try:
            response = self._call(
                "head", key, lambda: self._client.head_object(Bucket=self._bucket, Key=full)
            )
        except ObjectNotFoundError:
            return None
        if response.get("Metadata", {}).get(PUT_ID_METADATA) != metadata[PUT_ID_METADATA]:
            return None
        logger.info("the retried conditional put of %s found its own write", self.url_for(key))
        return _unquote_etag(response["ETag"])

    def delete_if(self, key: str, *, etag: str) -> None:
        full = self._full_key(key)
        try:
            self._call(
                "conditional delete",
                key,
                lambda: self._client.delete_object(
                    Bucket=self._bucket, Key=full, IfMatch=f'"{etag}"'
                ),
            )
        except ObjectNotFoundError:  # gone already (or by this call's lost first attempt)
            return

    def delete(self, key: str) -> None:
        full = self._full_key(key)
        self._call("delete", key, lambda: self._client.delete_object(Bucket=self._bucket, Key=full))

    # ------------------------------------------------------------------- URLs

    def presigned_url(self, key: str, *, expires: float | timedelta = 3600) -> str:
        seconds = check_expires(expires)
        full = self._full_key(key)
        return self._call(
            "presign",
            key,
            lambda: self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": full}, ExpiresIn=seconds
            ),
        )

    def url_for(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._full_key(key)}"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def check(self, *, timeout: float = 5.0) -> None:
        # A client of its own with short timeouts, so a stalled endpoint fails in seconds.
        probe = (
            _create_client(
                connect_timeout=timeout,
                read_timeout=timeout,
                max_connections=1,
                **self._client_options,
            )
            if self._owns_client
            else self._client
        )
        try:
            self._call(
                "check",
                None,
                lambda: probe.head_bucket(Bucket=self._bucket),
                policy=RetryPolicy(attempts=1),
            )
        except ObjectNotFoundError as exc:
            raise StorageConfigError(
                f"the bucket {self._bucket!r} of {self._url} does not exist", url=self._url
            ) from exc
        finally:
            if probe is not self._client:
                probe.close()

    def check_present(self) -> None:
        """Nothing to ask: a deleted bucket fails the next listing (``NoSuchBucket``), with
        the store's retries, where :meth:`check` would open a client every cycle (a session,
        credentials, a TLS handshake) and fail the cycle on one transient 503; an empty
        prefix is an empty store, not a gone one."""

    def holds_objects(self) -> bool:
        """Whether any object lies under the store's prefix: one listing request for one key.

        A mistyped prefix is an empty store on S3, where a mistyped local directory does
        not exist; the runtime asks this at start-up to say so.
        """
        page = self._call(
            "list",
            None,
            lambda: self._client.list_objects_v2(
                Bucket=self._bucket, Prefix=self._key_base, MaxKeys=1
            ),
        )
        return bool(page.get("Contents"))

    # -------------------------------------------------------------- internals

    def _head(self, key: str, full: str) -> ObjectInfo:
        """HEAD the S3 key ``full`` (the store's ``key``)."""
        response = self._call(
            "head", key, lambda: self._client.head_object(Bucket=self._bucket, Key=full)
        )
        return ObjectInfo(
            key=key,
            size=response["ContentLength"],
            etag=_unquote_etag(response["ETag"]),
            last_modified=response["LastModified"].astimezone(UTC),
        )

    def _copy_version(self, info: ObjectInfo, full_src: str, dst: str, full_dst: str) -> None:
        """Copy the version ``info`` describes: one request up to the copy threshold,
        else a multipart copy; either is refused if the source no longer has its ETag."""
        if info.size > self._copy_threshold:
            self._copy_multipart(info, full_src, dst, full_dst)
            return
        source: CopySourceTypeDef = {"Bucket": self._bucket, "Key": full_src}
        self._call(
            "copy",
            dst,
            lambda: self._client.copy_object(
                Bucket=self._bucket,
                Key=full_dst,
                CopySource=source,
                CopySourceIfMatch=f'"{info.etag}"',
            ),
        )

    def _full_key(self, key: str) -> str:
        return self._key_base + validate_key(key)

    def _raw_key(self, key: str) -> str:
        """The S3 key of an unaddressable key as stored: S3 keys are opaque strings, so
        ``..`` names no parent; only an empty key is refused."""
        if not isinstance(key, str) or not key:
            raise InvalidKeyError(f"invalid key {key!r}: it is empty", key=key, url=self._url)
        return self._key_base + key

    def _call(
        self,
        operation: str,
        key: str | None,
        request: Callable[[], T],
        *,
        policy: RetryPolicy | None = None,
    ) -> T:
        """Run one request under the retry policy, translating botocore errors."""
        url = f"s3://{self._bucket}/{self._key_base}{key}" if key else self._url

        def attempt() -> T:
            try:
                return request()
            except Exception as exc:
                translated = translate_s3_error(exc, operation=operation, url=url, key=key)
                if translated is None:
                    raise
                raise translated from exc

        return (policy or self._retry).call(attempt)

    def remove_abandoned_writes(self, older_than: timedelta, prefix: str = "") -> int:
        validate_prefix(prefix)
        cutoff = datetime.now(UTC) - older_than
        params: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self._key_base + prefix}
        removed = 0
        while True:
            page = self._call(
                "list multipart uploads",
                prefix or None,
                lambda: self._client.list_multipart_uploads(**params),
            )
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    self._abort_upload(upload["Key"], upload["UploadId"])
                    removed += 1
            if not page.get("IsTruncated"):
                break
            params["KeyMarker"] = page["NextKeyMarker"]
            params["UploadIdMarker"] = page["NextUploadIdMarker"]
        if removed:
            logger.info("aborted %d abandoned multipart upload(s) under %s", removed, self.url)
        return removed

    def _abort_upload(self, full_key: str, upload_id: str) -> None:
        """Abort one multipart upload; one already gone (aborted, completed) is done."""
        key = full_key[len(self._key_base) :]
        try:
            self._call(
                "abort multipart upload",
                key,
                lambda: self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=full_key, UploadId=upload_id
                ),
            )
        except ObjectNotFoundError:
            return

    def _list_pages(self, prefix: str, *, addressable: bool = True) -> Iterator[ObjectInfo]:
        for item in self._list_items(prefix):
            info = self._listed(item) if addressable else self._unaddressable(item)
            if info is not None:
                yield info

    def _list_every(self, prefix: str) -> Iterator[tuple[ObjectInfo, bool]]:
        for item in self._list_items(prefix):
            if (info := self._listed(item)) is not None:
                yield info, True
            elif (info := self._unaddressable(item)) is not None:
                yield info, False

    def _list_items(self, prefix: str) -> Iterator[Any]:
        """The raw ``list_objects_v2`` entries under ``prefix``, page by page."""
        params: dict[str, Any] = {
            "Bucket": self._bucket,
            "Prefix": self._key_base + prefix,
            "MaxKeys": self._page_size,
        }
        while True:
            page = self._call(
                "list", prefix or None, lambda: self._client.list_objects_v2(**params)
            )
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            params["ContinuationToken"] = page["NextContinuationToken"]

    def _listed(self, item: Any) -> ObjectInfo | None:
        key = item["Key"][len(self._key_base) :]
        try:
            validate_key(key)
        except InvalidKeyError as exc:
            logger.debug("listing leaves out an S3 key the platform cannot address: %s", exc)
            return None
        return _item_info(key, item)

    def _unaddressable(self, item: Any) -> ObjectInfo | None:
        """An object :meth:`list` leaves out (not an empty folder marker), else ``None``."""
        key = item["Key"][len(self._key_base) :]
        if not key or (key.endswith("/") and item["Size"] == 0):
            return None  # the prefix itself, or a folder marker made by a console
        try:
            validate_key(key)
        except InvalidKeyError:
            return _item_info(key, item)
        return None

    def _copy_multipart(self, info: ObjectInfo, full_src: str, dst: str, full_dst: str) -> None:
        part_size = max(min(self._copy_threshold, _COPY_PART_SIZE), -(-info.size // MAX_PARTS))
        upload = _MultipartUpload(self, dst, full_dst)
        try:
            for number, first in enumerate(range(0, info.size, part_size), start=1):
                last = min(first + part_size, info.size) - 1
                upload.copy_part(number, full_src, f"bytes={first}-{last}", info.etag)
            upload.complete()
        except BaseException:
            upload.abort_quietly()
            raise


class _MultipartUpload:
    """One multipart upload: parts in order, then complete (or abort)."""

    def __init__(self, store: S3ObjectStore, key: str, full_key: str) -> None:
        self._store = store
        self._key = key
        self._full_key = full_key
        self._parts: list[CompletedPartTypeDef] = []
        client, bucket = store._client, store._bucket
        response = store._call(
            "start multipart upload",
            key,
            lambda: client.create_multipart_upload(Bucket=bucket, Key=full_key),
        )
        self._upload_id = response["UploadId"]

    @property
    def next_part_number(self) -> int:
        return len(self._parts) + 1

    def upload_part(self, data: bytes) -> None:
        number = self._check_part_number()
        client, bucket = self._store._client, self._store._bucket
        response = self._store._call(
            "upload part",
            self._key,
            lambda: client.upload_part(
                Bucket=bucket,
                Key=self._full_key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            ),
        )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})

    def copy_part(self, number: int, full_src: str, source_range: str, etag: str) -> None:
        self._check_part_number()
        client, bucket = self._store._client, self._store._bucket
        response = self._store._call(
            "copy part",
            self._key,
            lambda: client.upload_part_copy(
                Bucket=bucket,
                Key=self._full_key,
                UploadId=self._upload_id,
                PartNumber=number,
                CopySource={"Bucket": bucket, "Key": full_src},
                CopySourceRange=source_range,
                CopySourceIfMatch=f'"{etag}"',
            ),
        )
        self._parts.append({"ETag": response["CopyPartResult"]["ETag"], "PartNumber": number})

    def complete(self) -> None:
        client, bucket = self._store._client, self._store._bucket
        self._store._call(
            "complete multipart upload",
            self._key,
            lambda: client.complete_multipart_upload(
                Bucket=bucket,
                Key=self._full_key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            ),
        )

    def abort(self) -> None:
        self._store._abort_upload(self._full_key, self._upload_id)

    def abort_quietly(self) -> None:
        try:
            self.abort()
        except Exception:
            logger.warning(
                "could not abort multipart upload of %r; a bucket lifecycle rule for "
                "incomplete uploads will remove its parts",
                self._full_key,
                exc_info=True,
            )

    def _check_part_number(self) -> int:
        number = self.next_part_number
        if number > MAX_PARTS:
            raise StorageError(
                f"object {self._key!r} needs more than {MAX_PARTS} parts; use a larger part_size",
                key=self._key,
            )
        return number


class _S3Writer(ObjectWriter):
    """Buffers one part in memory; a single PUT if the object fits, else a multipart upload."""

    def __init__(self, store: S3ObjectStore, key: str, part_size: int) -> None:
        full_key = store._full_key(key)
        super().__init__(key)
        self._store = store
        self._full_key = full_key
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload: _MultipartUpload | None = None

    def _stage(self, data: memoryview) -> None:
        while data:
            take = min(self._part_size - len(self._buffer), data.nbytes)
            self._buffer += data[:take]
            data = data[take:]
            if len(self._buffer) >= self._part_size:
                self._send_part()

    def _send_part(self) -> None:
        if self._upload is None:
            self._upload = _MultipartUpload(self._store, self.key, self._full_key)
        self._upload.upload_part(bytes(self._buffer))
        self._buffer.clear()

    def _publish(self) -> None:
        if self._upload is None:
            body = bytes(self._buffer)
            client, bucket = self._store._client, self._store._bucket
            self._store._call(
                "put",
                self.key,
                lambda: client.put_object(Bucket=bucket, Key=self._full_key, Body=body),
            )
        else:
            if self._buffer:
                self._send_part()
            self._upload.complete()
        self._buffer.clear()

    def _discard(self) -> None:
        self._buffer.clear()
        if self._upload is not None:
            upload, self._upload = self._upload, None
            upload.abort()


class _S3Body(io.RawIOBase):
    """A GET response body that resumes from its position after a dropped connection.

    A resumed request asks for the same ETag (``If-Match``), so a reader never
    splices two versions of an object together.
    """

    def __init__(self, store: S3ObjectStore, key: str, start: int, end: int | None) -> None:
        super().__init__()
        self._store = store
        self._key = key
        self._position = start
        self._end = end
        self._etag: str | None = None
        self._body: Any = None

    def open_at(self, position: int, *, etag: str | None) -> bool:
        """Start a GET from ``position``; False when it lies at or past the end of the object."""
        store = self._store
        params: dict[str, Any] = {"Bucket": store._bucket, "Key": store._full_key(self._key)}
        last = "" if self._end is None else str(self._end - 1)
        if position or self._end is not None:
            params["Range"] = f"bytes={position}-{last}"
        if etag is not None:
            params["IfMatch"] = f'"{etag}"'
        try:
            response = store._call("read", self._key, lambda: store._client.get_object(**params))
        except StorageError as exc:
            if _is_unsatisfiable_range(exc):
                return False
            raise
        self._body = response["Body"]
        self._etag = _unquote_etag(response["ETag"])
        return True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._end is not None:
            view = view[: max(0, self._end - self._position)]
        if not view.nbytes:
            return 0
        data = self._store._retry.call(self._read_once, view.nbytes)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _read_once(self, size: int) -> bytes:
        if self._body is None and not self.open_at(self._position, etag=self._etag):
            return b""
        try:
            data: bytes = self._body.read(size)
        except Exception as exc:
            self._drop_body()
            url = self._store.url_for(self._key)
            translated = translate_s3_error(exc, operation="read", url=url, key=self._key)
            if isinstance(exc, OSError) and translated is None:
                translated = TransientStorageError(
                    f"S3 read of {url} failed: connection problem: {exc}", key=self._key, url=url
                )
            if translated is None:
                raise
            raise translated from exc
        return data

    def _drop_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            try:
                body.close()
            except Exception:
                logger.debug("error closing an S3 response body", exc_info=True)

    def close(self) -> None:
        self._drop_body()
        super().close()


def _is_unsatisfiable_range(exc: StorageError) -> bool:
    """Whether a GET failed only because the range starts at or past the end (HTTP 416)."""
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    if not isinstance(response, dict):
        return False
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return bool(code == "InvalidRange" or status == 416)


def _unquote_etag(etag: str) -> str:
    return etag.strip('"')


def _item_info(key: str, item: Any) -> ObjectInfo:
    """The object a ``list_objects_v2`` entry describes, under the store's ``key``."""
    return ObjectInfo(
        key=key,
        size=item["Size"],
        etag=_unquote_etag(item["ETag"]),
        last_modified=item["LastModified"].astimezone(UTC),
    )


def _log_retry(state: RetryState) -> None:
    """Say at the first failed attempt, not after the last, that the store is struggling."""
    logger.warning(
        "%s; attempt %d failed, retrying in %.1f s",
        state.error,
        state.attempt,
        state.delay,
        extra={"attempt": state.attempt, "elapsed_seconds": round(state.elapsed, 1)},
    )


def _create_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
    addressing_style: AddressingStyle,
    url: str,
) -> S3Client:
    """A boto3 S3 client with botocore's retries off (our retry policy does that)."""
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise MissingDependencyError("S3 storage", package="etl-core", extra="s3") from exc
    if addressing_style not in {"path", "virtual", "auto"}:
        raise InvalidStoreURLError(
            f"addressing_style must be 'path', 'virtual' or 'auto', got {addressing_style!r}",
            url=url,
        )
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        signature_version="s3v4",
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_connections,
        s3={"addressing_style": addressing_style},
    )
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        return session.client("s3", endpoint_url=endpoint_url, config=config)
    except BotoCoreError as exc:
        translated = translate_s3_error(exc, operation="connect", url=url)
        raise (translated or StorageError(str(exc), url=url)) from exc
    except ValueError as exc:  # botocore's message for a malformed endpoint URL
        raise InvalidStoreURLError(f"cannot create an S3 client for {url}: {exc}", url=url) from exc
