"""S3 event notifications as S3 (or SNS in front of it) writes them to a queue, parsed.

An ``ObjectCreated`` notification carries one or more records, each naming a bucket
and an object key. S3 URL-encodes the key, with ``+`` for a space (``orders 1.csv``
arrives as ``orders+1.csv``, a real ``+`` as ``%2B``), so the key is decoded with
:func:`urllib.parse.unquote_plus`. A bucket's notification set-up first sends an
``s3:TestEvent``, which names no object. A notification that went through SNS
(without raw message delivery) arrives wrapped: ``{"Type": "Notification",
"Message": "<the S3 JSON>"}``; the wrapper is removed.

Every record is judged on its own: a message holding one good and one broken
record yields the good object and a problem naming the other (record index and
field), so nothing that could be processed is dropped with the broken part.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from etl_core.errors import EtlError

__all__ = ["CreatedObject", "Notification", "NotificationError", "parse_notification"]

TEST_EVENT = "s3:TestEvent"
_CREATED = "ObjectCreated:"


class NotificationError(EtlError, ValueError):
    """A queue message is not an S3 event notification, or one of its records is broken.

    Attributes:
        field: The offending field (``body``, ``Records[1].s3.object.key``).
    """

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(f"not an S3 event notification, field {field!r}: {message}")


@dataclass(frozen=True)
class CreatedObject:
    """An object an ``ObjectCreated:*`` record announces.

    Attributes:
        bucket: The bucket.
        key: The object key, decoded (``+`` is a space).
        event: The event name (``ObjectCreated:Put``, ``ObjectCreated:CompleteMultipartUpload``).
        size: Its size in bytes, when the record says.
        etag: Its ETag, when the record says.
    """

    bucket: str
    key: str
    event: str
    size: int | None = None
    etag: str | None = None


@dataclass(frozen=True)
class Notification:
    """What one queue message says.

    Attributes:
        created: The objects its ``ObjectCreated`` records announce, in order.
        ignored: Events of other kinds (``s3:TestEvent``, ``ObjectRemoved:Delete``).
        problems: Its broken records, each a :class:`NotificationError`; empty when whole.
    """

    created: tuple[CreatedObject, ...] = ()
    ignored: tuple[str, ...] = ()
    problems: tuple[NotificationError, ...] = field(default=())


def parse_notification(body: str | bytes) -> Notification:
    """Read one queue message body.

    Raises:
        NotificationError: the body is not JSON, or is JSON but neither an S3 test
            event nor a notification with a ``Records`` list (field ``body``,
            ``Message`` or ``Records``). A broken record is not raised: it is one of
            the result's ``problems``.
    """
    document = _json(body, "body")
    if isinstance(document, Mapping) and document.get("Type") == "Notification":
        message = document.get("Message")
        if not isinstance(message, str):
            raise NotificationError("an SNS envelope without a text Message", field="Message")
        document = _json(message, "Message")
    if not isinstance(document, Mapping):
        raise NotificationError(f"expected a JSON object, got {_kind(document)}", field="body")
    if document.get("Event") == TEST_EVENT:
        return Notification(ignored=(TEST_EVENT,))
    records = document.get("Records")
    if not isinstance(records, list) or not records:
        raise NotificationError("expected a non-empty list of records", field="Records")
    created: list[CreatedObject] = []
    ignored: list[str] = []
    problems: list[NotificationError] = []
    for index, record in enumerate(records):
        try:
            found = _record(record, f"Records[{index}]")
        except NotificationError as problem:
            problems.append(problem)
            continue
        if isinstance(found, CreatedObject):
            created.append(found)
        else:
            ignored.append(found)
    return Notification(tuple(created), tuple(ignored), tuple(problems))


def _record(record: object, where: str) -> CreatedObject | str:
    """The object a record announces, or the name of an event that is not a creation."""
    if not isinstance(record, Mapping):
        raise NotificationError(f"expected an object, got {_kind(record)}", field=where)
    event = _text(record, "eventName", where)
    if not event.startswith(_CREATED):
        return event
    s3 = _mapping(record, "s3", where)
    bucket = _text(_mapping(s3, "bucket", f"{where}.s3"), "name", f"{where}.s3.bucket")
    obj = _mapping(s3, "object", f"{where}.s3")
    raw_key = _text(obj, "key", f"{where}.s3.object")
    size, etag = obj.get("size"), obj.get("eTag")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise NotificationError(
            f"expected a size in bytes, got {size!r}", field=f"{where}.s3.object.size"
        )
    return CreatedObject(
        bucket=bucket,
        key=unquote_plus(raw_key),
        event=event,
        size=size,
        etag=etag if isinstance(etag, str) and etag else None,
    )


def _json(text: str | bytes, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotificationError(f"not JSON ({exc})", field=where) from None


def _mapping(parent: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = parent.get(name)
    if not isinstance(value, Mapping):
        raise NotificationError(f"expected an object, got {_kind(value)}", field=f"{where}.{name}")
    return value


def _text(parent: Mapping[str, Any], name: str, where: str) -> str:
    value = parent.get(name)
    if not isinstance(value, str) or not value:
        raise NotificationError(
            f"expected non-empty text, got {_kind(value)}", field=f"{where}.{name}"
        )
    return value


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__
