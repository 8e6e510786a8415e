"""Storage events: S3 event notifications read from an SQS queue, consumed at least once.

A lane that reacts to new objects (``etl-file-processing listen``) reads the queue
with :func:`consume`, parses each message with :func:`parse_notification` and hands
the objects it names to its executor. boto3 is imported only when a queue is opened
(extra ``s3``).
"""

from etl_core.events.s3_notifications import (
    CreatedObject,
    Notification,
    NotificationError,
    parse_notification,
)
from etl_core.events.sqs import (
    DEAD_REASON_ATTRIBUTE,
    ConsumeStats,
    Disposition,
    QueueError,
    QueueMessage,
    QueueUnavailableError,
    SqsQueue,
    consume,
)

__all__ = [
    "DEAD_REASON_ATTRIBUTE",
    "ConsumeStats",
    "CreatedObject",
    "Disposition",
    "Notification",
    "NotificationError",
    "QueueError",
    "QueueMessage",
    "QueueUnavailableError",
    "SqsQueue",
    "consume",
    "parse_notification",
]
