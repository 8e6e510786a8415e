"""``listen``: landing objects announced by S3 event notifications, each the unit ``scan`` makes.

S3 sends an ``ObjectCreated`` notification to an SQS queue for every new object;
:class:`NotificationHandler` turns a batch of those messages into landing-object
units (:mod:`file_processing.work`) and hands them to the executor: run here
(``local``) or enqueued on the lane's Celery queue (``celery``). A message is deleted
only after every unit it names ended well (processed, quarantined included) or was
enqueued; otherwise it is kept and SQS delivers it again. Delivery is at least once
and units are idempotent, so a second delivery of a message is harmless.

Objects outside the store (another bucket, another prefix), outside ``landing/``,
folder markers and checksum sidecars (read with their data file) are ignored; an
``s3:TestEvent`` too. A message that is not a notification, or a record of one that is
broken, is dead-lettered by :func:`etl_core.events.consume` (after the good records of
the same message were handled).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from etl_core.errors import ConfigError, FieldError
from etl_core.events import (
    CreatedObject,
    Disposition,
    NotificationError,
    QueueMessage,
    parse_notification,
)
from etl_core.layout import LANDING, zone_of
from etl_core.metrics import counter
from etl_core.storage import ObjectStore
from etl_core.work import Executor, WorkUnit
from file_processing.process import Processor
from file_processing.work import landing_object_unit, run_unit

__all__ = [
    "ListenTally",
    "NotificationHandler",
    "RunUnits",
    "UnitEnd",
    "enqueue_units",
    "run_units",
    "store_location",
]

logger = logging.getLogger(__name__)

RunUnits = Callable[[Sequence[WorkUnit]], Mapping[str, "UnitEnd"]]
"""Runs or enqueues units; how each ended, by landing key."""

_objects = counter(
    "etl_file_processing_listen_objects_total",
    "Landing objects announced by storage events, by what became of them",
    ["outcome"],
)


@dataclass(frozen=True)
class UnitEnd:
    """How a unit ended here: ``status`` (``validated``, ``quarantined``, ``skipped``,
    ``enqueued``, or ``failed`` with the ``error``)."""

    status: str
    error: str | None = None


@dataclass
class ListenTally:
    """What the announced objects became: ``done`` (run here: by status, or enqueued),
    ``ignored`` (not landing objects of this store), ``failed`` (kept for another try)."""

    done: Counter[str] = field(default_factory=Counter)
    ignored: int = 0
    failed: int = 0
    test_events: int = 0


class NotificationHandler:
    """Handles a batch of queue messages for :func:`etl_core.events.consume`."""

    def __init__(self, processor: Processor, run: RunUnits) -> None:
        self.processor = processor
        self.tally = ListenTally()
        self._run = run
        self._bucket, self._base = store_location(processor.store)

    def __call__(self, messages: Sequence[QueueMessage]) -> list[Disposition]:
        units: dict[str, WorkUnit] = {}
        read: list[tuple[list[str], str | None]] = []  # each message's keys, why it is dead
        for message in messages:
            try:
                notification = parse_notification(message.body)
            except NotificationError as error:
                read.append(([], str(error)))
                continue
            self.tally.test_events += notification.ignored.count("s3:TestEvent")
            keys = [k for k in map(self._landing_key, notification.created) if k is not None]
            units.update((key, landing_object_unit(key)) for key in keys)
            problems = "; ".join(str(problem) for problem in notification.problems)
            read.append((keys, problems or None))
        ends = self._run(list(units.values())) if units else {}
        for end in ends.values():
            if end.error is not None:
                self.tally.failed += 1
            else:
                self.tally.done[end.status] += 1
            _objects.labels(outcome=end.status).inc()
        return [_disposition(keys, dead, ends) for keys, dead in read]

    def _landing_key(self, created: CreatedObject) -> str | None:
        """``created``'s key in the store when it is a landing object to process, else None."""
        key = created.key[len(self._base) :] if created.key.startswith(self._base) else None
        if created.bucket != self._bucket or key is None:
            why = f"outside the store (s3://{self._bucket}/{self._base})"
        elif zone_of(key) != LANDING:
            why = "outside landing/"
        elif key.endswith("/") or self.processor.is_control_file(key):
            why = "a folder marker or a checksum sidecar"
        else:
            return key
        logger.info(
            "ignored s3://%s/%s: %s", created.bucket, created.key, why, extra={"key": created.key}
        )
        self.tally.ignored += 1
        _objects.labels(outcome="ignored").inc()
        return None


def _disposition(keys: list[str], dead: str | None, ends: Mapping[str, UnitEnd]) -> Disposition:
    failed = [f"{key}: {ends[key].error}" for key in keys if ends[key].error is not None]
    if failed:
        return Disposition("keep", "; ".join(failed))
    if dead is not None:
        return Disposition("dead", dead)
    return Disposition("delete")


def run_units(processor: Processor, executor: Executor) -> RunUnits:
    """Units run by ``executor`` in this process (``--executor local``)."""

    def run(units: Sequence[WorkUnit]) -> dict[str, UnitEnd]:
        ended: dict[str, UnitEnd] = {}
        for result in executor.run(partial(run_unit, processor), units):
            if result.ok and result.value is not None:
                ended[result.unit.key] = UnitEnd(result.value.status)
            else:
                error = f"{type(result.error).__name__}: {result.error}"
                ended[result.unit.key] = UnitEnd("failed", error)
        return ended

    return run


def enqueue_units(submit: Callable[[WorkUnit], object]) -> RunUnits:
    """Units enqueued on the lane's queue by ``submit`` (``--executor celery``)."""

    def run(units: Sequence[WorkUnit]) -> dict[str, UnitEnd]:
        ended: dict[str, UnitEnd] = {}
        for unit in units:
            try:
                submit(unit)
            except Exception as error:  # the broker's client errors: kept, tried again
                logger.warning("could not enqueue %s: %s", unit.key, error, extra={"key": unit.key})
                ended[unit.key] = UnitEnd("failed", f"{type(error).__name__}: {error}")
                continue
            ended[unit.key] = UnitEnd("enqueued")
        return ended

    return run


def store_location(store: ObjectStore) -> tuple[str, str]:
    """The store's bucket and key prefix (``prefix/`` or ``""``).

    Raises:
        ConfigError: the store is not on S3 (notifications name S3 objects); the
            ``storage_url`` field, whose source the entry point names.
    """
    bucket, prefix = getattr(store, "bucket", None), getattr(store, "prefix", None)
    if not isinstance(bucket, str) or not isinstance(prefix, str):
        raise ConfigError(
            "listen needs an s3:// store: the notifications it reads name S3 objects",
            [FieldError("storage_url", f"is {store.url}; expected s3://bucket[/prefix]")],
        )
    return bucket, f"{prefix.strip('/')}/" if prefix.strip("/") else ""
