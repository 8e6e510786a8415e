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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from etl_core.retry import RetryPolicy
from etl_core.work.celery.config import task_name
from etl_core.work.celery.messages import RemoteUnitError, unit_result
from etl_core.work.executor import DEFAULT_POLICY, Executor, RunUnit
from etl_core.work.result import UnitResult
from etl_core.work.unit import WorkUnit

__all__ = ["CeleryExecutor"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_FASTEST_POLL, _SLOWEST_POLL = 0.02, 0.5


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
    ) -> None:
        if not 1 <= window <= 10_000:
            raise ValueError(f"window must be from 1 to 10000, got {window}")
        super().__init__(policy=policy)
        self.app = app
        self.decode = decode
        self.window = window
        self.drain_timeout = drain_timeout

    def submit(self, unit: WorkUnit) -> str:
        """Enqueue ``unit`` on its lane's queue without following it; its task id."""
        result = self.app.send_task(task_name(unit.lane), args=[unit.to_dict()])
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
            self.app.signature(task_name(unit.lane), args=[unit.to_dict()], immutable=True)
            for unit in units
        ]
        return str(chain(*signatures).apply_async().id)

    def run(self, run_unit: RunUnit[T], units: Iterable[WorkUnit]) -> Iterator[UnitResult[T]]:
        pending = iter(units)
        running: dict[str, tuple[WorkUnit, Any]] = {}
        poll = _FASTEST_POLL
        try:
            while True:
                while len(running) < self.window:
                    unit = next(pending, None)
                    if unit is None:
                        break
                    sent = self.app.send_task(task_name(unit.lane), args=[unit.to_dict()])
                    running[str(sent.id)] = (unit, sent)
                if not running:
                    return
                ended = self._ended(running)
                if not ended:
                    time.sleep(poll)
                    poll = min(poll * 2, _SLOWEST_POLL)
                    continue
                poll = _FASTEST_POLL
                for task_id in ended:
                    unit, sent = running.pop(task_id)
                    yield self._result(unit, sent)
        finally:  # done, or interrupted: nothing new starts, units running end
            if running:
                self._stop(running)

    def _ended(self, running: dict[str, tuple[WorkUnit, Any]]) -> list[str]:
        return [task_id for task_id, (_, sent) in running.items() if sent.ready()]

    def _result(self, unit: WorkUnit, sent: Any) -> UnitResult[T]:
        state, document = str(sent.state), sent.result
        sent.forget()
        if state == "SUCCESS":
            return unit_result(document, unit, self.decode)
        # the task itself broke (a time limit, a lost worker, a revoke): no document
        error = RemoteUnitError(type(document).__name__, f"task {state.lower()}: {document}")
        return UnitResult(unit, "failed", error=error, attempts=1)

    def _stop(self, running: dict[str, tuple[WorkUnit, Any]]) -> None:
        """Revoke the units not started and wait, bounded, for those running to end."""
        try:
            self.app.control.revoke(list(running))
        except NotImplementedError:  # a broker without remote control (SQS)
            logger.warning("%d enqueued unit(s) will still run: the broker cannot revoke them",
                           len(running))  # fmt: skip
            return
        deadline = time.monotonic() + self.drain_timeout
        try:
            while running and time.monotonic() < deadline:
                for task_id in self._ended(running):
                    running.pop(task_id)
                time.sleep(_FASTEST_POLL * 5)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            pass
        if running:
            logger.warning(
                "stopped following %d unit(s) still running on workers; they finish there",
                len(running),
            )
