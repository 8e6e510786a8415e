"""A lane's one Celery task: rebuild the unit from its JSON, run it, return its end as JSON.

The worker builds the lane's context (store, contracts, settings from its own
environment) once per worker process, as the process starts, after the fork (so its
first unit does not wait for it; a build that fails there is tried again by the first
unit, whose result then carries the error). Each unit then runs through the lane's
idempotent ``run_unit``:

* a retryable error (:class:`~etl_core.errors.RetryableError`) is retried in the task,
  backing off per the policy (``task_attempts``), exactly as the local executors do. Not
  Celery's own ``retry``: its re-sent message never reports back through the ``rpc://``
  result backend of a RabbitMQ broker, and a backoff is seconds, well inside the limits;
* any other error is the unit's result (``failed``), never a retry: a refused input
  is an outcome, a bug or a fatal error would fail the same way again; a unit stopped at
  ``task_soft_time_limit`` fails with :class:`UnitTimeLimitError`, whatever its cleanup
  raised after the limit. A unit's waits (a busy lease, a retry's back-off) give up
  :func:`give_up_margin` before that limit (:mod:`etl_core.work.limits`), so a unit
  behind another writer ends with its own busy error instead;
* a unit waiting (for a busy lease, in a retry's back-off) when its worker begins a warm
  shutdown (SIGTERM) stops waiting and is handed back: its message goes back to the queue
  unacknowledged (``Reject(requeue=True)``), for another worker, without counting as a
  delivery; the shutdown no longer waits out the lease wait and the retries (minutes),
  after which the unit ended busy and was acknowledged;
* a message delivered more often than its ``DeliveryLimit`` allows without its unit
  ever ending (the unit kills its worker process: acks late would redeliver it
  forever; :mod:`~etl_core.work.celery.deliveries`), a unit whose retryable errors
  outlast its attempts (not a busy lease: its writer is alive, the unit fails busy), or
  a message this worker can never run (not a unit at all, a
  unit of another lane, or one its lane refuses: :class:`InvalidUnitError`, a kind or a
  parameter it does not know; never retried) is a poison message:
  it is moved to the lane's dead-letter queue (``<lane>.dead``, consumed by no worker)
  with the reason in its headers, and its result says so. A worker of that queue
  re-drives them once the cause is fixed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from etl_core.errors import ConfigError, FatalError, LeaseBusyError, LeaseWaitStoppedError
from etl_core.retry import RetryPolicy
from etl_core.runtime import name_setting_sources
from etl_core.work.celery.config import task_name
from etl_core.work.celery.deliveries import DeliveryLimit, ProcessCounter, TooManyDeliveriesError
from etl_core.work.celery.messages import error_document, result_document
from etl_core.work.celery.origin import (
    DATABASE_HEADER,
    DATABASE_ID_HEADER,
    STORE_HEADER,
    app_origin,
    foreign_unit,
)
from etl_core.work.executor import RunUnit, attempt_unit
from etl_core.work.limits import unit_limits
from etl_core.work.result import UnitResult
from etl_core.work.unit import InvalidUnitError, WorkUnit

__all__ = ["DEAD_REASON_HEADER", "LaneRunner", "UnitTimeLimitError", "register_lane_task"]

RESULT_LOG_CHARS = 240
"""Characters of a unit's result document in Celery's "succeeded" log line (Celery's
default, 1,024, made every unit's line ~1 kB of a repr built on the unit's path)."""

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEAD_REASON_HEADER = "etl_dead_reason"
"""The header of a dead-lettered message that says why it was moved there."""
_ORIGIN_HEADERS = (STORE_HEADER, DATABASE_HEADER, DATABASE_ID_HEADER)
"""The headers naming a unit's store and database (origin.py), kept by a dead-lettered one."""


class LaneRunner:
    """The lane's ``run_unit`` with its context, built by ``build`` once in each worker
    process, after the fork (so nothing built before a fork is shared by two processes):
    by :meth:`warm` as the process starts, else by its first unit.

    ``build`` enters what it opens (store, processor) into the exit stack it is given;
    :meth:`close` closes them when the worker process shuts down.
    """

    def __init__(self, build: Callable[[contextlib.ExitStack], RunUnit[Any]]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._run: RunUnit[Any] | None = None
        self._opened = contextlib.ExitStack()

    def __call__(self, unit: WorkUnit) -> Any:
        with self._lock:
            if self._run is None:
                self._run = self._built()
            run = self._run
        return run(unit)

    def warm(self) -> bool:
        """Build the context now, unless built; whether it is. A failure is logged, not
        raised: the first unit builds again and its result carries the error."""
        started = time.monotonic()
        with self._lock:
            if self._run is not None:
                return True
            try:
                self._run = self._built()
            except Exception as exc:
                self._opened.close()  # what the failed build opened
                logger.error(
                    "worker process %d: the lane's context was not built (%s); "
                    "its first unit tries again",
                    os.getpid(),
                    exc,
                    exc_info=True,
                )
                return False
        seconds = time.monotonic() - started
        logger.info(
            "worker process %d warm: the lane's context built in %.2f s",
            os.getpid(),
            seconds,
            extra={"seconds": round(seconds, 3)},
        )
        return True

    def _built(self) -> RunUnit[Any]:
        """The lane's context, built; a configuration error raised building it names each
        setting as the operator set it (``ETL_DATABASE_URL``, ``--database-url``), not the
        name it has in the code (``DATABASE_URL`` of a database not migrated): no command
        ends with it, whose way out would have named them."""
        try:
            return self._build(self._opened)
        except ConfigError as error:
            name_setting_sources(error)
            raise

    def close(self) -> None:
        """Close what the lane's context opened; the next unit builds it again."""
        with self._lock:
            self._run = None
            self._opened.close()


def register_lane_task(
    app: Any,
    lane: str,
    build: Callable[[contextlib.ExitStack], RunUnit[T]],
    *,
    encode: Callable[[T], object],
    policy: RetryPolicy,
    dead_queue: str,
    on_result: Callable[[UnitResult[T]], None] | None = None,
    deliveries: DeliveryLimit | None = None,
) -> Any:
    """Register ``lane``'s task on ``app``: units run through the ``run_unit`` that ``build``
    returns, values go back as ``encode(value)``, retryable errors retried per ``policy``,
    poison messages moved to ``dead_queue``. ``on_result`` sees each unit's end on the
    worker (after its last attempt), before the result is sent back: what a unit must
    record even when nobody follows it (``--no-wait``); an error it raises is logged.
    With ``deliveries``, a message delivered more often than its limit is moved to
    ``dead_queue`` too, instead of being run once more.

    Returns:
        The Celery task.
    """
    runner = LaneRunner(build)
    stopping = _set_on_warm_shutdown()
    _warm_on_process_init(runner.warm)
    _close_on_process_shutdown(runner.close)
    counter = ProcessCounter(deliveries) if deliveries is not None else None
    if counter is not None:
        _close_on_process_shutdown(counter.close)

    def run_unit(task: Any, unit_data: object) -> dict[str, Any]:
        redelivered = counter is not None and _redelivered(task)
        if redelivered:
            assert counter is not None
            poison = _over_limit(counter, str(task.request.id))
            if poison is not None:
                _dead_letter(task, unit_data, dead_queue, poison, poison.deliveries - 1)
                counter.get().forget(poison.task_id)
                return _dead_document(unit_data, poison, poison.deliveries - 1)
        try:
            unit = _lane_unit(lane, unit_data)
        except InvalidUnitError as error:
            _dead_letter(task, unit_data, dead_queue, error, 1)
            return _dead_document(unit_data, error, 1)
        foreign = foreign_unit(_headers(task), app_origin(task.app), unit)
        if foreign is not None:  # its keys name another store's objects: never run here
            _dead_letter(task, unit_data, dead_queue, foreign, 1)
            _forget_count(counter, task, redelivered)
            return _dead_document(unit_data, foreign, 1)
        soft_limit = float(task.app.conf.task_soft_time_limit or 0)
        result = _attempt_within_limit(runner, unit, policy, soft_limit, stopping)
        if _cut_short(result, policy, stopping):
            _hand_back(task, result, counter)  # raises: the message goes back to its queue
        if on_result is not None:
            _tell(on_result, result)
        dead = _poison(result, policy)
        if dead:
            assert result.error is not None
            _dead_letter(task, unit_data, dead_queue, result.error, result.attempts)
        elif not result.ok:  # said here too: a chained or --no-wait unit has no one following
            _say_failed(result)
        _forget_count(counter, task, redelivered)  # it ended: its count is of no more use
        return result_document(result, encode, dead_lettered=dead)

    task = app.task(  # not shared: another app of this process must not get it
        name=task_name(lane),
        bind=True,
        max_retries=0,
        acks_late=True,
        shared=False,
        resultrepr_maxsize=RESULT_LOG_CHARS,
    )
    return task(run_unit)


class UnitTimeLimitError(FatalError):
    """A unit ran past ``task_soft_time_limit`` and was stopped; never retried (it would run
    as long again). Whatever its cleanup raised meanwhile is said, not reported instead.

    Attributes:
        unit_id: The unit's id.
        seconds: The soft time limit.
        field: ``task_soft_time_limit``.
    """

    def __init__(self, unit_id: str, seconds: float, cleanup: str | None = None) -> None:
        self.unit_id = unit_id
        self.seconds = seconds
        self.field = "task_soft_time_limit"
        said = f"work unit {unit_id} ran past task_soft_time_limit ({seconds:g} s): stopped"
        super().__init__(f"{said} (its cleanup then raised {cleanup})" if cleanup else said)


def _attempt_within_limit(
    run: RunUnit[T],
    unit: WorkUnit,
    policy: RetryPolicy,
    seconds: float,
    stop: threading.Event | None = None,
) -> UnitResult[T]:
    """:func:`attempt_unit`, whose end at the soft time limit is a :class:`UnitTimeLimitError`
    result wherever the limit strikes: in an attempt, or in the backoff between two (where
    it escaped as Celery's own failure, unrecorded, unlogged by the lane)."""
    attempts: list[int] = []

    def counted(unit: WorkUnit) -> T:
        attempts.append(1)
        return run(unit)

    started = time.monotonic()
    deadline = started + seconds - give_up_margin(seconds) if seconds > 0 else None
    try:
        with unit_limits(deadline=deadline, stop=stop):  # waits give up before the limit
            return attempt_unit(_stopped_at_soft_limit(counted, seconds), unit, policy)
    except Exception as error:
        if not _soft_limit_in(error):
            raise
        stopped = UnitTimeLimitError(unit.id, seconds)
        elapsed = time.monotonic() - started
        return UnitResult(unit, "failed", error=stopped, attempts=len(attempts), seconds=elapsed)


def give_up_margin(seconds: float) -> float:
    """How long before ``task_soft_time_limit`` a unit gives up waiting (for a busy lease, a
    retry's back-off), so its end is its own busy error, said and sent back, not the limit:
    a tenth of the limit, at most 10 s."""
    return min(seconds / 10, 10.0)


def _stopped_at_soft_limit(run: RunUnit[T], seconds: float) -> RunUnit[T]:
    """``run``, whose end at the soft time limit is reported as :class:`UnitTimeLimitError`,
    whatever the unit's cleanup raised after it (DuckDB's "connection is busy" while its
    interrupted query unwinds)."""

    def run_within_limit(unit: WorkUnit) -> T:
        try:
            return run(unit)
        except Exception as error:
            if not _soft_limit_in(error):
                raise
            cleanup = None if _soft_limit_in(error, depth=1) else f"{type(error).__name__}: {error}"
            raise UnitTimeLimitError(unit.id, seconds, cleanup) from error

    return run_within_limit


def _soft_limit_in(error: BaseException | None, *, depth: int = 10) -> bool:
    """Whether ``error``, or one of the ``depth`` errors it was raised from or while, is
    Celery's soft time limit."""
    from celery.exceptions import SoftTimeLimitExceeded

    seen = 0
    while error is not None and seen < depth:
        if isinstance(error, SoftTimeLimitExceeded):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _lane_unit(lane: str, data: object) -> WorkUnit:
    """The unit ``data`` holds, if a worker of ``lane`` can run it at all.

    Raises:
        InvalidUnitError: ``data`` is no unit, or a unit of another lane (field ``lane``).
    """
    unit = WorkUnit.from_dict(data)
    if unit.lane != lane:
        raise InvalidUnitError(
            f"a {unit.lane} unit on the {lane} lane's queue (send it as {task_name(unit.lane)})",
            field="lane",
        )
    return unit


def _poison(result: UnitResult[Any], policy: RetryPolicy) -> bool:
    """Whether the unit's message goes to the dead-letter queue: the lane refused the unit
    itself (an :class:`InvalidUnitError`: a kind it does not run, a parameter it does not
    know; it can never run, so it is never retried), or its retryable errors outlasted its
    attempts. A unit that ends because another live writer still holds its lease
    (:class:`~etl_core.errors.LeaseBusyError`, after the lane's wait) is not poison: that
    writer is doing the work or the next run does it; its result says busy."""
    error = result.error
    if result.ok or error is None or isinstance(error, LeaseBusyError):
        return False
    return isinstance(error, InvalidUnitError) or policy.is_retryable(error)


def _say_failed(result: UnitResult[Any]) -> None:
    """Log a unit that failed for good on this worker (Celery itself logs the task as
    succeeded: it returned its result document)."""
    error = result.error
    said = f"{type(error).__name__}: {error}" if error is not None else "no error recorded"
    logger.error(
        "work unit %s failed after %d attempt(s): %s", result.unit.id, result.attempts, said,
        extra={"unit": result.unit.id, "attempts": result.attempts},
    )  # fmt: skip


def _tell(on_result: Callable[[UnitResult[T]], None], result: UnitResult[T]) -> None:
    try:
        on_result(result)
    except Exception as exc:  # the unit's own end stands; what follows it failed
        logger.error("after work unit %s: %s", result.unit.id, exc, exc_info=True)


def _redelivered(task: Any) -> bool:
    """Whether the broker marked this delivery as a redelivery (Redis and RabbitMQ do)."""
    info = task.request.delivery_info or {}
    return bool(info.get("redelivered"))


def _over_limit(counter: ProcessCounter, task_id: str) -> TooManyDeliveriesError | None:
    """Count this redelivery; the error saying so when it is one too many."""
    deliveries = counter.get().redelivered(task_id)
    limit = counter.limit.max_deliveries
    if deliveries <= limit:
        logger.warning(
            "task %s delivered again (delivery %d of at most %d): its last worker was lost "
            "or, shutting down, handed it back",
            task_id, deliveries, limit, extra={"task_id": task_id, "deliveries": deliveries},
        )  # fmt: skip
        return None
    return TooManyDeliveriesError(task_id, deliveries, limit)


SHUTDOWN_POLL_SECONDS = 0.5
"""How often each worker process looks whether its worker began a warm shutdown."""


def _set_on_warm_shutdown() -> threading.Event:
    """An event set in every process of this worker once the worker begins its warm shutdown
    (SIGTERM, a first Ctrl-C), so a unit waiting (for a busy lease, a retry's back-off) stops
    waiting and is handed back (:func:`_hand_back`) instead of holding the shutdown for its
    whole wait. The main process is told (``worker_shutting_down``) and raises a flag in
    memory its pool's processes share (forked after it is made); a thread of each process
    looks at it every :data:`SHUTDOWN_POLL_SECONDS`. A flag, not a ``multiprocessing.Event``:
    setting one waits for its sleepers to wake, and a process killed while waiting (a unit
    that crashes its process) never does: the worker hung in its shutdown."""
    import multiprocessing

    from celery.signals import worker_process_init, worker_shutting_down

    shared = multiprocessing.RawValue("b", 0)
    stopping = threading.Event()

    def on_shutdown(**_: object) -> None:  # warm (a cold one kills the processes anyway)
        shared.value = 1
        stopping.set()  # a pool running units in this process (solo, threads)

    def watch() -> None:
        while not shared.value:
            time.sleep(SHUTDOWN_POLL_SECONDS)
        stopping.set()

    def on_process_init(**_: object) -> None:
        threading.Thread(target=watch, name="etl-warm-shutdown", daemon=True).start()

    worker_shutting_down.connect(on_shutdown, weak=False)
    worker_process_init.connect(on_process_init, weak=False)
    return stopping


def _cut_short(result: UnitResult[Any], policy: RetryPolicy, stopping: threading.Event) -> bool:
    """Whether the unit ended only because its worker is shutting down: it was waiting for
    a busy lease, or a retryable error's back-off was cut (attempts were left)."""
    error = result.error
    if result.ok or error is None or not stopping.is_set():
        return False
    seen: BaseException | None = error
    for _ in range(5):  # a lane's own error raised from it (a window's IngestStoppedError)
        if seen is None:
            break
        if isinstance(seen, LeaseWaitStoppedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return policy.is_retryable(error) and result.attempts < policy.attempts


def _hand_back(task: Any, result: UnitResult[Any], counter: ProcessCounter | None) -> NoReturn:
    """Give the message back to its queue, unacknowledged as done: the unit did not end, its
    worker is shutting down; another worker runs it. This delivery is not counted against
    ``task_max_deliveries`` (it is no crash: :meth:`DeliveryCounter.handed_back`), unless
    its count cannot be updated: a store failing then did not fail the unit, acknowledged
    and lost, but leaves this delivery counted."""
    from celery.exceptions import Reject

    task_id = str(task.request.id)
    if counter is not None:
        try:
            counter.get().handed_back(task_id)
        except Exception as error:  # the store failing: handed back all the same, counted
            logger.warning(
                "task %s handed back counted as a delivery: its count was not updated (%s)",
                task_id, error, extra={"task_id": task_id},
            )  # fmt: skip
    logger.warning(
        "work unit %s handed back to its queue: this worker is shutting down (%s: %s)",
        result.unit.id, type(result.error).__name__, result.error,
        extra={"unit": result.unit.id, "task_id": task_id},
    )  # fmt: skip
    raise Reject(f"worker shutting down: {result.unit.id} handed back", requeue=True)


def _forget_count(counter: ProcessCounter | None, task: Any, redelivered: bool) -> None:
    """Remove the delivery count of a redelivered message whose unit ended."""
    if redelivered and counter is not None:
        counter.get().forget(str(task.request.id))


def _headers(task: Any) -> dict[str, object]:
    """The headers of the message being run (Celery keeps a producer's own ones there)."""
    request = task.request
    headers = dict(getattr(request, "headers", None) or {})
    for name in _ORIGIN_HEADERS:  # also set on the request itself
        value = getattr(request, name, None)
        if name not in headers and value is not None:
            headers[name] = value
    return headers


def _dead_document(unit_data: object, error: BaseException, attempts: int) -> dict[str, Any]:
    return {"status": "failed", "unit": unit_data, "attempts": attempts,
            "dead_lettered": True, "error": error_document(error)}  # fmt: skip


def _warm_on_process_init(warm: Callable[[], object]) -> None:
    """Build the lane's context in each worker process as it starts (Celery waits for it:
    ``worker_proc_alive_timeout``), not on its first unit."""
    from celery.signals import worker_process_init

    def init(**_: object) -> None:
        warm()

    worker_process_init.connect(init, weak=False)


def _close_on_process_shutdown(close_it: Callable[[], None]) -> None:
    from celery.signals import worker_process_shutdown

    def close(**_: object) -> None:
        close_it()

    worker_process_shutdown.connect(close, weak=False)


def _dead_letter(
    task: Any, unit_data: object, dead_queue: str, error: BaseException, attempts: int
) -> None:
    """Move the message to the dead-letter queue: the same task, the same argument."""
    reason = f"{type(error).__name__} after {attempts} attempt(s): {error}"
    logger.error(
        "work unit moved to the dead-letter queue %s: %s",
        dead_queue,
        reason,
        extra={"queue": dead_queue, "attempts": attempts},
    )
    origin = {name: value for name, value in _headers(task).items()
              if name in _ORIGIN_HEADERS}  # fmt: skip  # re-driven: checked again
    task.app.send_task(
        task.name, args=[unit_data], queue=dead_queue,
        headers={**origin, DEAD_REASON_HEADER: reason},
    )  # fmt: skip
