"""An SQS queue consumed at least once: long polling, delete after success, bounded redelivery.

:func:`consume` receives messages a batch at a time and hands them to a handler,
which says of each what became of it:

* ``delete``: done (its work was enqueued or ran); the message is deleted, only now;
* ``keep``: not done this time (a broker or store failure); the message is left alone
  and SQS shows it again once its visibility timeout ends;
* ``dead``: it can never be done (it is malformed): moved to the dead-letter queue,
  when one is given, with the reason as the message attribute ``etl_dead_reason``,
  otherwise logged whole, then deleted.

A message kept ``max_receives`` times is dead-lettered the same way, so no message
loops forever even on a queue without a redrive policy. SQS delivers at least once:
a handler must make a second delivery of a message harmless.

boto3 is imported when a queue is opened (extra ``s3``); importing this module
imports nothing outside the standard library.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from etl_core.errors import FatalError, MissingDependencyError, RetryableError

__all__ = [
    "DEAD_REASON_ATTRIBUTE",
    "ConsumeStats",
    "Disposition",
    "QueueError",
    "QueueMessage",
    "QueueUnavailableError",
    "SqsQueue",
    "consume",
]

logger = logging.getLogger(__name__)

DEAD_REASON_ATTRIBUTE = "etl_dead_reason"
"""The message attribute of a dead-lettered message that says why it was moved."""
MAX_BATCH = 10
"""SQS hands out at most ten messages per receive."""
_LOGGED_BODY = 65_536
_REGION_IN_URL = re.compile(r"^https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/", re.ASCII)
_TRANSIENT = frozenset(
    {"Throttling", "ThrottlingException", "RequestThrottled", "ServiceUnavailable",
     "InternalError", "InternalFailure", "KMS.ThrottlingException", "500", "502", "503", "504"}
)  # fmt: skip
_SLOWEST_RETRY = 20.0


class QueueError(FatalError):
    """An SQS call failed for good (no such queue, access denied, a malformed URL).

    Attributes:
        queue: The queue URL.
        code: SQS's error code, when it gave one.
    """

    def __init__(self, message: str, *, queue: str, code: str | None = None) -> None:
        self.queue = queue
        self.code = code
        super().__init__(f"{message} (queue {queue})")


class QueueUnavailableError(RetryableError):
    """SQS could not be reached or throttled the call: try again later."""

    def __init__(self, message: str, *, queue: str) -> None:
        self.queue = queue
        super().__init__(f"{message} (queue {queue})")


@dataclass(frozen=True)
class QueueMessage:
    """One received message.

    Attributes:
        id: SQS's message id.
        receipt: The receipt handle that deletes it (valid for this receive only).
        body: Its text.
        receive_count: How many times it was received, this time included.
    """

    id: str
    receipt: str
    body: str
    receive_count: int


@dataclass(frozen=True)
class Disposition:
    """What to do with a handled message (``reason`` says why for ``keep`` and ``dead``)."""

    action: Literal["delete", "keep", "dead"]
    reason: str = ""


@dataclass
class ConsumeStats:
    """What :func:`consume` did with the messages it received."""

    received: int = 0
    deleted: int = 0
    kept: int = 0
    dead_lettered: int = 0


class SqsQueue:
    """One SQS queue through a boto3 client (AWS, or an SQS-compatible endpoint such as moto).

    Args:
        url: The queue URL.
        endpoint_url: An SQS-compatible endpoint; AWS when unset.
        region: The region; from an AWS queue URL, else boto3's resolution.
        wait_seconds: Long polling: how long a receive waits for a message (0-20).
        visibility_timeout: Seconds a received message stays hidden from other
            consumers; the queue's own setting when unset.

    Raises:
        MissingDependencyError: boto3 is not installed (extra ``s3``).
        ValueError: ``wait_seconds`` is not from 0 to 20.
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        wait_seconds: int = 20,
        visibility_timeout: int | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        if not 0 <= wait_seconds <= 20:
            raise ValueError(f"wait_seconds must be from 0 to 20, got {wait_seconds}")
        self.url = url
        self.wait_seconds = wait_seconds
        self.visibility_timeout = visibility_timeout
        found = _REGION_IN_URL.match(url)
        self._client = _client(
            endpoint_url=endpoint_url,
            region=found.group(1) if found else region,
            connect_timeout=connect_timeout,
            read_timeout=wait_seconds + 10.0,
            queue=url,
        )

    def receive(self, limit: int = MAX_BATCH) -> list[QueueMessage]:
        """Up to ``limit`` (1-10) messages, waiting up to ``wait_seconds`` for the first."""
        options: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max(1, min(limit, MAX_BATCH)),
            "WaitTimeSeconds": self.wait_seconds,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if self.visibility_timeout is not None:
            options["VisibilityTimeout"] = self.visibility_timeout
        answer = self._call("receive", lambda: self._client.receive_message(**options))
        return [
            QueueMessage(
                id=str(m["MessageId"]),
                receipt=str(m["ReceiptHandle"]),
                body=str(m.get("Body", "")),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            )
            for m in answer.get("Messages", [])
        ]

    def delete(self, message: QueueMessage) -> None:
        """Delete ``message`` (a second delete of the same one is harmless)."""
        self._call(
            "delete",
            lambda: self._client.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt),
        )

    def send(self, body: str, attributes: dict[str, str] | None = None) -> str:
        """Send ``body`` with string message ``attributes``; the new message's id."""
        extra = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in (attributes or {}).items()
        }
        answer = self._call(
            "send",
            lambda: self._client.send_message(
                QueueUrl=self.url, MessageBody=body, MessageAttributes=extra
            ),
        )
        return str(answer["MessageId"])

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def __enter__(self) -> SqsQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, operation: str, call: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            message = f"SQS {operation} failed: {code} {error.get('Message', '')}".rstrip()
            if code in _TRANSIENT or status in (429, 500, 502, 503, 504):
                raise QueueUnavailableError(message, queue=self.url) from exc
            raise QueueError(message, queue=self.url, code=code) from exc
        except BotoCoreError as exc:  # connection refused, timeouts, no credentials
            name = type(exc).__name__
            if "Credentials" in name:
                raise QueueError(f"SQS {operation} failed: {exc}", queue=self.url) from exc
            raise QueueUnavailableError(f"SQS {operation} failed: {exc}", queue=self.url) from exc


def consume(
    queue: SqsQueue,
    handle: Callable[[Sequence[QueueMessage]], Sequence[Disposition]],
    *,
    dead_letter: SqsQueue | None = None,
    max_receives: int = 5,
    max_messages: int | None = None,
    idle_exit: float | None = None,
    batch: int = MAX_BATCH,
) -> ConsumeStats:
    """Receive and handle messages until ``max_messages`` were received or none came for
    ``idle_exit`` seconds (forever when both are unset; Ctrl-C and SIGTERM end it between
    batches, or after the batch in hand).

    Raises:
        QueueError: the queue cannot be used (no such queue, access denied).
        ValueError: ``max_receives`` is below 1.
    """
    if max_receives < 1:
        raise ValueError(f"max_receives must be at least 1, got {max_receives}")
    stats = ConsumeStats()
    idle_since = time.monotonic()
    failures = 0
    while max_messages is None or stats.received < max_messages:
        wanted = batch if max_messages is None else min(batch, max_messages - stats.received)
        try:
            messages = queue.receive(wanted)
        except QueueUnavailableError as exc:
            failures += 1
            delay = min(_SLOWEST_RETRY, 0.5 * 2 ** min(failures, 10))
            logger.warning("cannot receive, trying again in %.1f s: %s", delay, exc)
            messages = []
            time.sleep(delay)
        else:
            failures = 0
        if not messages:
            if idle_exit is not None and time.monotonic() - idle_since >= idle_exit:
                break
            continue
        idle_since = time.monotonic()
        stats.received += len(messages)
        for message, disposition in zip(messages, handle(messages), strict=True):
            _settle(queue, message, disposition, dead_letter, max_receives, stats)
    return stats


def _settle(
    queue: SqsQueue,
    message: QueueMessage,
    disposition: Disposition,
    dead_letter: SqsQueue | None,
    max_receives: int,
    stats: ConsumeStats,
) -> None:
    if disposition.action == "keep" and message.receive_count >= max_receives:
        reason = f"not done after {message.receive_count} receive(s): {disposition.reason}"
        disposition = Disposition("dead", reason)
    try:
        if disposition.action == "keep":
            logger.warning(
                "message %s kept for another try (receive %d of %d): %s",
                message.id, message.receive_count, max_receives, disposition.reason,
                extra={"message_id": message.id},
            )  # fmt: skip
            stats.kept += 1
            return
        if disposition.action == "dead":
            _dead_letter(message, disposition.reason, dead_letter)
            stats.dead_lettered += 1
        queue.delete(message)
        stats.deleted += 1
    except (QueueUnavailableError, QueueError) as exc:  # the message comes back: harmless
        logger.warning("could not settle message %s: %s", message.id, exc)


def _dead_letter(message: QueueMessage, reason: str, dead_letter: SqsQueue | None) -> None:
    if dead_letter is None:
        logger.error(
            "message %s dropped (no dead-letter queue is set): %s; its body: %s",
            message.id, reason, message.body[:_LOGGED_BODY],
            extra={"message_id": message.id},
        )  # fmt: skip
        return
    dead_letter.send(
        message.body, {DEAD_REASON_ATTRIBUTE: reason[:1000], "etl_source_message_id": message.id}
    )
    logger.error(
        "message %s moved to the dead-letter queue %s: %s",
        message.id, dead_letter.url, reason,
        extra={"message_id": message.id, "queue": dead_letter.url},
    )  # fmt: skip


def _client(
    *,
    endpoint_url: str | None,
    region: str | None,
    connect_timeout: float,
    read_timeout: float,
    queue: str,
) -> Any:
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise MissingDependencyError("SQS queues", package="etl-core", extra="s3") from exc
    config = Config(
        retries={"total_max_attempts": 3, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    try:
        session = boto3.session.Session(region_name=region)
        return session.client("sqs", endpoint_url=endpoint_url, config=config)
    except (BotoCoreError, ValueError) as exc:
        raise QueueError(f"cannot create an SQS client: {exc}", queue=queue) from exc
