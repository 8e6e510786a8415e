"""Messages a lane's worker cannot even start, moved to the lane's dead-letter queue unchanged.

Celery drops a message on the worker's queue that it cannot run at all: one whose body it
refuses to decode (a content type other than JSON), one naming a task it does not know (a
producer's typo of ``file_processing.run_unit``) and one that is no task message. It logs
the message once and acknowledges or rejects it, and the work is gone. A message on a lane's
queue is work someone sent, so the consumer :func:`dead_lettering_consumer` builds first
moves it to ``<queue>.dead``: its body, content type and headers as they came, with the
header ``etl_dead_reason``, to be read, fixed and moved back (docs/events.md).
"""

from __future__ import annotations

import logging
from typing import Any

from etl_core.work.celery.task import DEAD_REASON_HEADER

__all__ = ["dead_lettering_consumer"]

logger = logging.getLogger(__name__)


def dead_lettering_consumer(dead_queue: str) -> type[Any]:
    """Celery's worker consumer, moving the messages it would drop to ``dead_queue`` first.

    If the move itself fails (the dead-letter queue refuses it, the broker gone meanwhile),
    the message is left unacknowledged, after an error naming it: the broker hands it out
    again when this worker's connection closes (RabbitMQ) or its visibility timeout ends
    (Redis), never in a loop, and it is not lost.
    """
    from celery.worker.consumer import Consumer

    class DeadLetteringConsumer(Consumer):  # type: ignore[misc]
        """Moves the messages no task can run to the lane's dead-letter queue."""

        def on_decode_error(self, message: Any, exc: Exception) -> None:
            reason = f"content type {message.content_type} refused: {exc}"
            if _move(self.app, message, dead_queue, reason):
                super().on_decode_error(message, exc)

        def on_unknown_message(self, body: Any, message: Any) -> None:
            if _move(self.app, message, dead_queue, "not a task message (no task header)"):
                super().on_unknown_message(body, message)

        def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
            name = (message.headers or {}).get("task", "?")
            reason = f"no task {name} on this worker: {type(exc).__name__}: {exc}"
            if _move(self.app, message, dead_queue, reason):
                super().on_unknown_task(body, message, exc)

        def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
            reason = f"invalid task message (content type {message.content_type}): {exc}"
            if _move(self.app, message, dead_queue, reason):
                super().on_invalid_task(body, message, exc)

    return DeadLetteringConsumer


def _move(app: Any, message: Any, dead_queue: str, reason: str) -> bool:
    """Publish ``message`` as it came (body, content type, headers) on ``dead_queue``;
    whether it was published (only then may the original be acknowledged)."""
    headers = {**(message.headers or {}), DEAD_REASON_HEADER: reason}
    properties = message.properties or {}
    try:
        queue = app.amqp.queues[dead_queue]  # declared as the dead-lettered units' queue is
        with app.producer_or_acquire() as producer:
            producer.publish(
                message.body,
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                declare=[queue],
                content_type=message.content_type or "application/data",
                content_encoding=message.content_encoding or "binary",
                headers=headers,
                correlation_id=properties.get("correlation_id"),
                retry=True,
                retry_policy={"max_retries": 3},
            )
    except Exception as exc:  # the broker's client errors: said, the message kept
        logger.error(
            "could not move a message to the dead-letter queue %s (%s): %s; it is left "
            "unacknowledged: delivered again when its connection closes or, on Redis, its "
            "visibility timeout ends",
            dead_queue, reason, exc, extra={"queue": dead_queue},
        )  # fmt: skip
        return False
    logger.error(
        "message moved to the dead-letter queue %s: %s",
        dead_queue, reason, extra={"queue": dead_queue, "task_id": headers.get("id")},
    )  # fmt: skip
    return True
