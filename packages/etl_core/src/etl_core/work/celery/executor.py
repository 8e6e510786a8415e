"""The Celery executor: one task per unit on its lane's queue, results followed as they end.

Units are enqueued a window at a time (more as results come back), so a scan of
100,000 objects holds at most ``window`` messages in flight and a Ctrl-C leaves
little behind. The lane's ``run_unit`` handed to :meth:`CeleryExecutor.run` is not
sent anywhere (a function does not cross a broker): the worker runs the lane's
registered task, which rebuilds the same ``run_unit`` from its own settings.

Interrupted (Ctrl-C, SIGTERM, the caller leaving the loop), the executor stops
enqueueing, revokes the units enqueued but not started (a worker that receives one
drops it), and waits up to ``drain_timeout`` seconds for the units already running
to end, as the local pool does; a second Ctrl-C stops that wait. Units still
running then finish on their workers and their effects land in the ledger, which the
next run reads. An SQS broker has no remote control: there, units already enqueued
are not revoked and run later, harmlessly (units are idempotent).

A broker (or result backend) lost while a run is followed ends it with
:class:`BrokerLostError`, at once: how many units finished, that those enqueued may
still run on the workers, what to do next; nothing is revoked then (a revoke needs the
broker: it would wait on the connection's retries, ~20 s, for nothing).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from typing import Any, TypeVar

from etl_core.errors import RetryableError
from etl_core.retry import RetryPolicy
from etl_core.work.celery.config import FOLLOWER_OUTAGE_SECONDS, task_name
from etl_core.work.celery.messages import RemoteUnitError, unit_result
from etl_core.work.celery.origin import app_origin, origin_headers
from etl_core.work.executor import DEFAULT_POLICY, Executor, RunUnit
from etl_core.work.result import UnitResult
from etl_core.work.unit import WorkUnit

__all__ = ["BrokerLostError", "CeleryExecutor"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FASTEST_POLL, _SLOWEST_POLL, _CHECK_EVERY = 0.02, 0.5, 2.0
POLL_OUTAGE_SECONDS = FOLLOWER_OUTAGE_SECONDS
"""Seconds a followed run's polls of the results may keep failing on a lost connection
before the run ends with :class:`BrokerLostError`: as long as its result stream reconnects."""
QUIET_AFTER = 60.0
"""Seconds without an ended unit before a followed run asks whether its lane has workers."""


class BrokerLostError(RetryableError):
    """The broker or the result backend was lost while a run was followed (exit 1); the
    message names which (``broker_url`` or ``result_backend``, when a server of its own).

    Attributes:
        url: The lost server's URL, its password hidden.
        finished: Units whose results arrived before the loss.
        enqueued: Units sent and not ended: they may still run on the workers.
    """

    def __init__(self, message: str, *, url: str, finished: int, enqueued: int) -> None:
        self.url = url
        self.finished = finished
        self.enqueued = enqueued
        super().__init__(message)


def _as_is(value: Any) -> Any:
    return value


class CeleryExecutor(Executor):
    """Runs units as tasks of a Celery application (:func:`~etl_core.work.celery.celery_app`).

    Args:
        app: The Celery application (its broker, result backend and routes).
        decode: Turns a task's JSON value back into the lane's value.
        window: Units enqueued and not yet ended, at most.
        drain_timeout: Seconds an interrupted run waits for its running units.
        policy: Kept for the interface; the retry policy that applies is the worker's
            (``task_attempts``), since retries happen there.
        workers_of: Whether a worker of a lane answers (``None``: cannot tell); asked when
            no unit has ended for ``quiet_after`` seconds, so that a run waiting on a queue
            nobody consumes says so instead of showing "0 finished" forever.
        quiet_after: Seconds without an ended unit before ``workers_of`` is asked.

    Raises:
        ValueError: ``window`` is not from 1 to 10,000.
    """

    name = "celery"

    def __init__(
        self,
        app: Any,
        *,
        decode: Callable[[Any], Any] = _as_is,
        window: int = 64,
        drain_timeout: float = 30.0,
        policy: RetryPolicy = DEFAULT_POLICY,
        workers_of: Callable[[str], bool | None] | None = None,
        quiet_after: float = QUIET_AFTER,
    ) -> None:
        if not 1 <= window <= 10_000:
            raise ValueError(f"window must be from 1 to 10000, got {window}")
        super().__init__(policy=policy)
        self.app = app
        self.decode = decode
        self.window = window
        self.drain_timeout = drain_timeout
        self.workers_of = workers_of
        self.quiet_after = quiet_after

    def submit(self, unit: WorkUnit) -> str:
        """Enqueue ``unit`` on its lane's queue without following it; its task id.

        Nobody waits for its result, so none is kept: the worker stores nothing in the
        result backend, and this process subscribes to nothing (a long-running producer,
        ``listen``, would otherwise gather a result subscription per unit it enqueued).
        """
        result = self.app.send_task(
            task_name(unit.lane), args=[unit.to_dict()], ignore_result=True,
            headers=self._headers(unit),
        )  # fmt: skip
        return str(result.id)

    def submit_chain(self, units: Sequence[WorkUnit]) -> str:
        """Enqueue ``units`` to run one after another (each once the one before it ended,
        however it ended) without following them; the first task's id.

        Raises:
            ValueError: no unit given.
        """
        if not units:
            raise ValueError("a chain needs at least one unit")
        from celery import chain

        signatures = [
            self.app.signature(
                task_name(unit.lane),
                args=[unit.to_dict()],
                immutable=True,
                headers=self._headers(unit),
            )
            for unit in units
        ]
        return str(chain(*signatures).apply_async().id)

    def run(self, run_unit: RunUnit[T], units: Iterable[WorkUnit]) -> Iterator[UnitResult[T]]:
        """Enqueue ``units`` a window at a time and yield each result as it arrives.

        Raises:
            BrokerLostError: the broker or the result backend went away meanwhile.
        """
        total = len(units) if isinstance(units, Sized) else None
        pending = iter(units)
        running: dict[str, tuple[WorkUnit, Any]] = {}
        waiter = _ResultWaiter(self.app, lost=self._lost_connection)
        quiet = _QuietWatch(self.app, self.workers_of, self.quiet_after)
        finished, lost = 0, False
        try:
            while True:
                while len(running) < self.window:
                    unit = next(pending, None)
                    if unit is None:
                        break
                    sent = self.app.send_task(
                        task_name(unit.lane), args=[unit.to_dict()], headers=self._headers(unit)
                    )
                    running[str(sent.id)] = (unit, sent)
                    waiter.follow(sent)
                if not running:
                    return
                ended = waiter.ended(running)
                quiet.check(running, ended=bool(ended))
                for task_id in ended:
                    unit, sent = running.pop(task_id)
                    result: UnitResult[T] = self._result(unit, sent)
                    finished += 1
                    yield result
        except Exception as error:
            cause = self._lost_connection(error)
            if cause is None:
                raise
            lost = True
            raise self._lost(cause, self._lost_field(), finished, len(running), total) from error
        finally:  # done, or interrupted: nothing new starts, units running end
            if running and not lost:
                self._stop(running, waiter)

    def _headers(self, unit: WorkUnit) -> dict[str, str]:
        """The store (and database) ``unit`` is made for, checked by its worker (origin.py)."""
        return origin_headers(app_origin(self.app), unit)

    def _lost_connection(self, error: BaseException) -> BaseException | None:
        """The broker's or the result backend's connection error that ``error`` is or was
        raised from, if any (Celery's Redis result consumer raises a ``RuntimeError`` from
        the connection error once its reconnections are spent)."""
        from kombu.exceptions import OperationalError

        backend = tuple(getattr(self.app.backend, "connection_errors", ()))
        try:
            transport = tuple(self.app.connection_for_write().connection_errors)
        except Exception:  # a transport that cannot even be built: not a lost connection
            transport = ()
        kinds = (OperationalError, ConnectionError, TimeoutError, *backend, *transport)
        seen: BaseException | None = error
        for _ in range(5):
            if seen is None or isinstance(seen, kinds):
                return seen
            seen = seen.__cause__ or seen.__context__
        return None

    def _lost_field(self) -> str:
        """The setting naming the server lost: ``result_backend`` when it is a server of its
        own and does not answer a ``PING`` (bounded by its timeouts), else ``broker_url``
        (also the results' server when it is the broker's Redis or ``rpc://``). Sending a
        unit and reading its result both touch the two, so where the error arose does not
        tell."""
        backend = str(self.app.conf.result_backend or "")
        if not backend or backend.lower().startswith("rpc") or backend == self.app.conf.broker_url:
            return "broker_url"
        ping = getattr(getattr(self.app.backend, "client", None), "ping", None)
        if ping is None:
            return "broker_url"
        try:
            ping()
        except Exception:  # any failure: it does not answer
            return "result_backend"
        return "broker_url"

    def _lost(
        self, error: BaseException, field: str, finished: int, enqueued: int, total: int | None
    ) -> BrokerLostError:
        if field == "result_backend":  # its password hidden, as the broker's
            what, url = "result backend", str(self.app.backend.as_uri())
        else:
            what, url = "broker", str(self.app.connection_for_write().as_uri())
        of = f" of {total}" if total is not None else ""
        command = f"etl-{str(self.app.main).removeprefix('etl.').replace('_', '-')}"
        return BrokerLostError(
            f"lost the {what} {url} ({field}) while following the run ({error}): "
            f"{finished}{of} unit(s) finished; {enqueued} enqueued unit(s) may still run on "
            f"the workers. Once it answers again ({command} ping), see what is done (the "
            "command's status) and run the command again: units are idempotent, what "
            "finished is not done twice",
            url=url,
            finished=finished,
            enqueued=enqueued,
        )

    def _result(self, unit: WorkUnit, sent: Any) -> UnitResult[T]:
        state, document = str(sent.state), sent.result
        sent.forget()
        if state == "SUCCESS":
            return unit_result(document, unit, self.decode)
        # the task itself broke (a time limit, a lost worker, a revoke): no document
        error = RemoteUnitError(type(document).__name__, f"task {state.lower()}: {document}")
        return UnitResult(unit, "failed", error=error, attempts=1)

    def _stop(self, running: dict[str, tuple[WorkUnit, Any]], waiter: _ResultWaiter) -> None:
        """Revoke the units not started and wait, bounded, for those running to end (not
        at all once the broker is found gone: they may still run on the workers).

        Their ends are taken as the run took them (``waiter``): with ``rpc://`` (a RabbitMQ
        broker's results) the reply queue's messages go to the run's consumer, so asking the
        backend (``ready()``, a ``basic_get`` on that queue) never saw them, and every
        interrupted run waited out ``drain_timeout`` for units that had long ended."""
        try:
            self.app.control.revoke(list(running))
        except NotImplementedError:  # a broker without remote control (SQS)
            logger.warning("%d enqueued unit(s) will still run: the broker cannot revoke them",
                           len(running))  # fmt: skip
            return
        except Exception as error:
            if self._lost_connection(error) is None:
                raise
            logger.warning("%d enqueued unit(s) not revoked, the broker is gone (%s): they may "
                           "still run on the workers", len(running), error)  # fmt: skip
            return
        deadline = time.monotonic() + self.drain_timeout
        try:
            while running and time.monotonic() < deadline:
                for task_id in waiter.ended(running):
                    running.pop(task_id, None)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            pass
        except Exception as error:
            if self._lost_connection(error) is None:
                raise
            logger.warning("the result backend is gone (%s)", error)
        if running:
            logger.warning(
                "stopped following %d unit(s) still running on workers; they finish there",
                len(running),
            )


class _QuietWatch:
    """Warns, every ``after`` seconds without an ended unit, about each lane of the units
    waiting that no worker answers for: long units stay silent, an absent worker does not."""

    def __init__(
        self, app: Any, workers_of: Callable[[str], bool | None] | None, after: float
    ) -> None:
        self._app = app
        self._workers_of = workers_of
        self._after = after
        self._since = time.monotonic()

    def check(self, running: dict[str, tuple[WorkUnit, Any]], *, ended: bool) -> None:
        now = time.monotonic()
        if ended or self._workers_of is None:
            self._since = now
            return
        if now - self._since < self._after:
            return
        self._since = now
        for lane in sorted({unit.lane for unit, _ in running.values()}):
            if self._workers_of(lane) is False:
                route = self._app.conf.task_routes.get(task_name(lane), {})
                logger.warning(
                    "no unit has ended for %gs and no %s worker answers: %d unit(s) wait on "
                    "queue %r until one starts (etl-%s worker; etl-%s ping --any-host)",
                    self._after,
                    lane,
                    sum(unit.lane == lane for unit, _ in running.values()),
                    route.get("queue", self._app.conf.task_default_queue),
                    lane.replace("_", "-"),
                    lane.replace("_", "-"),
                )


def _polled(running: dict[str, tuple[WorkUnit, Any]]) -> list[str]:
    """The units whose results are in, asking the result backend of each (a round trip)."""
    return [task_id for task_id, (_, sent) in running.items() if sent.ready()]


class _ResultWaiter:
    """Waits for the results of the units running, as they arrive.

    With a result backend that pushes results (Redis: pub/sub; ``rpc://``: a reply
    queue), each result is taken from that stream the moment it is published: no
    polling interval stands between a unit's end and its caller (the round trip of
    an empty unit on Redis went from 23-30 ms, polling every 20 ms and up, to a few).
    Every ``_CHECK_EVERY`` seconds without news, and with any other backend, the
    backend is polled instead, backing off from 20 to 500 ms.
    """

    def __init__(
        self, app: Any, lost: Callable[[BaseException], BaseException | None] = lambda _: None
    ) -> None:
        self._lost = lost
        self._failing_since: float | None = None
        backend = app.backend
        self._consumer = (
            getattr(backend, "result_consumer", None)
            if hasattr(backend, "add_pending_result")
            else None
        )
        self._arrived: deque[str] = deque()
        self._poll = _FASTEST_POLL
        self._news_at = time.monotonic()

    def follow(self, sent: Any) -> None:
        """Be told when ``sent``'s result arrives."""
        if self._consumer is not None:
            sent.then(lambda result: self._arrived.append(str(result.id)))

    def ended(self, running: dict[str, tuple[WorkUnit, Any]]) -> list[str]:
        """The units of ``running`` that ended, waiting a moment for one when none has."""
        if self._consumer is not None:
            if not self._arrived:
                self._drain()
            if self._arrived:  # the results' server answered: any outage of it is over
                self._news_at = time.monotonic()
                self._failing_since = None
                arrived = {self._arrived.popleft() for _ in range(len(self._arrived))}
                return [task_id for task_id in arrived if task_id in running]
            if time.monotonic() - self._news_at < _CHECK_EVERY:
                return []
            self._news_at = time.monotonic()  # a result missed by the stream: poll once
        ended = self._polled(running)
        if ended:
            self._poll = _FASTEST_POLL
        elif self._consumer is None:
            time.sleep(self._poll)
            self._poll = min(self._poll * 2, _SLOWEST_POLL)
        return ended

    def _polled(self, running: dict[str, tuple[WorkUnit, Any]]) -> list[str]:
        """:func:`_polled`, a lost connection (a Redis restart) taken as no news until it has
        lasted as long as the result stream's reconnections do (``FOLLOWER_RETRY_POLICY``):
        a poll landing in a restart ended runs the stream itself survived."""
        started = time.monotonic()
        try:
            ended = _polled(running)
        except Exception as error:
            if self._lost(error) is None:
                raise
            self._failing_since = self._failing_since or started
            if time.monotonic() - self._failing_since >= POLL_OUTAGE_SECONDS:
                raise
            logger.debug("a poll of the results failed (%s): asking again", error)
            return []
        self._failing_since = None
        return ended

    def _drain(self) -> None:
        assert self._consumer is not None
        with contextlib.suppress(TimeoutError):  # nothing arrived in time
            self._consumer.drain_events(timeout=_SLOWEST_POLL)
