"""A limit on how often one message is delivered: the poison message that kills its worker.

Acks late means a message is acknowledged after its unit ended. A unit that kills
its worker process every time (a segfault in a native library, the kernel's OOM
killer, a hard time limit) never ends, so the broker delivers it again, forever,
and every worker that takes it dies. The task's own retries cannot see that: the
process that would count them is gone.

So the count lives outside the worker, in the lane's store, as a record changed by
compare-and-put (:class:`~etl_core.storage.Records`), one per message
(``_state/<lane>/deliveries/<task id>.json``). A first delivery costs nothing: only a
message the broker marks *redelivered* (Redis restores it with the flag, RabbitMQ sets
it) is counted, and the record is removed when that unit ends. Once a message has been
delivered ``max_deliveries`` times without ending, the next delivery moves it to the
dead-letter queue instead of running it.

A redelivery for another reason (a lost connection) counts too: the limit is on
deliveries, not on crashes; except a unit handed back by a worker shutting down while the
unit waited for a busy lease or a retry (``handed_back``: the next delivery counts as that
one did), which never failed.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from etl_core.errors import FatalError, ObjectNotFoundError
from etl_core.layout import state_key

if TYPE_CHECKING:
    from etl_core.runtime import RuntimeSettings, Session
    from etl_core.storage import ObjectStore

__all__ = ["DeliveryCounter", "DeliveryLimit", "TooManyDeliveriesError", "store_delivery_limit"]

S = TypeVar("S", bound="RuntimeSettings")


class TooManyDeliveriesError(FatalError):
    """A message was delivered more often than the limit without its unit ending.

    Attributes:
        task_id: The message's task id.
        deliveries: Deliveries so far, this one included.
    """

    def __init__(self, task_id: str, deliveries: int, limit: int) -> None:
        self.task_id = task_id
        self.deliveries = deliveries
        super().__init__(
            f"task {task_id} was delivered {deliveries} times (limit {limit}) and never ended: "
            "its unit kills the worker process (crash, memory, hard time limit)"
        )


class DeliveryCounter:
    """Counts redeliveries of a lane's messages in records of ``store``."""

    def __init__(self, store: ObjectStore, lane: str) -> None:
        from etl_core.storage import Records

        self.store = store
        self.lane = lane
        self._records: Records[int] = Records(
            store, decode=_decode, encode=lambda n: json.dumps({"deliveries": n}).encode()
        )

    def redelivered(self, task_id: str) -> int:
        """Count one more delivery of ``task_id``, a redelivery; deliveries so far (2 or more)."""
        update = self._records.update(self._key(task_id), lambda n: (1 if n is None else n) + 1)
        assert update.after is not None
        return update.after.value

    def handed_back(self, task_id: str) -> None:
        """Uncount this delivery of ``task_id``: its worker gave the message back, shutting
        down while the unit waited (no crash), so its next delivery counts as this one did."""
        self._records.update(self._key(task_id), lambda n: (1 if n is None else n) - 1)

    def forget(self, task_id: str) -> None:
        """Remove ``task_id``'s count (its unit ended)."""
        with contextlib.suppress(ObjectNotFoundError):
            self.store.delete(self._key(task_id))

    def _key(self, task_id: str) -> str:
        return state_key(self.lane, "deliveries", f"{task_id}.json")


@dataclass(frozen=True)
class DeliveryLimit:
    """At most ``max_deliveries`` deliveries of one message; ``open_counter`` builds the
    counter in each worker process (entering what it opens into the stack it is given)."""

    max_deliveries: int
    open_counter: Callable[[contextlib.ExitStack], DeliveryCounter]

    def __post_init__(self) -> None:
        if self.max_deliveries < 1:
            raise ValueError(f"max_deliveries must be at least 1, got {self.max_deliveries}")


def store_delivery_limit(session: Session[S], lane: str) -> DeliveryLimit:
    """``task_max_deliveries`` of ``session``'s settings, counted in ``lane``'s records of
    the session's store (each worker process opens the store itself)."""

    def open_counter(opened: contextlib.ExitStack) -> DeliveryCounter:
        return DeliveryCounter(opened.enter_context(session.open_store()), lane)

    return DeliveryLimit(session.settings.task_max_deliveries, open_counter)


class ProcessCounter:
    """``limit``'s counter, built on first use in this process; :meth:`close` closes it."""

    def __init__(self, limit: DeliveryLimit) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._counter: DeliveryCounter | None = None
        self._opened = contextlib.ExitStack()

    def get(self) -> DeliveryCounter:
        """The counter of this process."""
        with self._lock:
            if self._counter is None:
                self._counter = self.limit.open_counter(self._opened)
            return self._counter

    def close(self) -> None:
        """Close what the counter opened; the next use builds it again."""
        with self._lock:
            self._counter = None
            self._opened.close()


def _decode(data: bytes, key: str) -> int:
    try:
        value = json.loads(data)["deliveries"]
    except (ValueError, KeyError, TypeError):
        return 1  # unreadable: counted again from the first delivery, never blocking
    return value if isinstance(value, int) and value >= 0 else 1
