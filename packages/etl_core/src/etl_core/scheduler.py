"""``etl-<runtime> schedule``: fire a lane's jobs on their intervals, one scheduler at a time.

Any number of schedulers may run (one per host, a spare for fail-over); one leads. The
leader holds the lane's scheduler lease (``_state/<lane>/scheduler.lease.json``,
:mod:`etl_core.storage.leases`: compare-and-put, a heartbeat, a fencing token); the
others stand by, trying for the lease every tick, and take over once it is free (its
holder stopped, died, or stalled past its expiry). A leader checks its lease right
before each firing, so one whose lease was taken over fires nothing more.

A job's firing enqueues work units (the scheduler never runs them itself): firing
twice, or late, is harmless, since units are idempotent. On becoming leader, every
interval job fires at once and each cron job at its next time; a firing that fails
(the broker unreachable) is logged and tried again at the job's next time.

A scheduler counts in the default registry what it does, for the exporters
(``metrics_exporters``; ``etl-<runtime> schedule`` exports after every tick):
``etl_<lane>_scheduler_ticks_total`` (``role``: ``leading`` or ``standing_by``),
``etl_<lane>_scheduler_firings_total`` (``scheduled_job``, ``outcome``: ``fired`` or
``failed``) and ``etl_<lane>_scheduler_units_enqueued_total`` (``scheduled_job``): the job's
name with ``_`` for each space (``ingest_shop``: a StatsD tag holds no space); not ``job``,
the label Prometheus and the Pushgateway give the scraped or pushed job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from etl_core.errors import LeaseBusyError, LeaseLostError
from etl_core.layout import state_key
from etl_core.metrics.registry import Counter
from etl_core.storage import Lease, ObjectStore, acquire_lease

__all__ = ["Job", "Scheduler", "SchedulerSummary", "every", "scheduler_lease_key"]

logger = logging.getLogger(__name__)

NextTime = Callable[[datetime], datetime]
"""A job's next firing strictly after the given instant (UTC)."""
AfterTick = Callable[[bool], None]
"""Called after each tick with whether a job fired (or failed to) in it."""


def every(interval: timedelta) -> NextTime:
    """Fire every ``interval``.

    Raises:
        ValueError: ``interval`` is not positive.
    """
    if interval <= timedelta(0):
        raise ValueError(f"a schedule interval must be positive, got {interval}")
    return lambda after: after + interval


@dataclass(frozen=True)
class Job:
    """One scheduled job of a lane.

    Attributes:
        name: What it does, for logs (``scan``, ``ingest shop``).
        next_time: Its next firing after an instant.
        fire: Enqueues its units; returns how many, for the log.
        at_start: Fire as soon as this scheduler leads (interval jobs), rather than at
            ``next_time(now)`` (cron jobs).
    """

    name: str
    next_time: NextTime
    fire: Callable[[], int]
    at_start: bool = True


@dataclass(frozen=True)
class SchedulerSummary:
    """What one scheduler did: ticks run, ticks led, firings per job, failed firings."""

    ticks: int
    led: int
    fired: dict[str, int]
    failed: int


def scheduler_lease_key(lane: str) -> str:
    """The lease only the leading scheduler of ``lane`` holds."""
    return state_key(lane, "scheduler.lease.json")


class Scheduler:
    """Fires ``jobs`` while it holds ``lane``'s scheduler lease in ``store``.

    Args:
        store: Where the lease lives (the environment's store, shared by every host).
        lane: The runtime whose jobs these are.
        jobs: What to fire.
        tick: Seconds between two looks at the clock (and, standing by, at the lease).
        lease_seconds: How long the lease lasts without its heartbeat (renewed every third).
        clock: The current instant (tests).

    Raises:
        ValueError: ``tick`` is not positive or not below ``lease_seconds``.
    """

    def __init__(
        self,
        store: ObjectStore,
        lane: str,
        jobs: list[Job],
        *,
        tick: float = 1.0,
        lease_seconds: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if tick <= 0 or lease_seconds <= tick:
            raise ValueError(f"expected 0 < tick < lease_seconds, got {tick} and {lease_seconds}")
        self.store = store
        self.lane = lane
        self.jobs = jobs
        self.tick = tick
        self.lease_seconds = lease_seconds
        self.clock = clock
        self._due: dict[str, datetime] = {}
        self._fired = dict.fromkeys((job.name for job in jobs), 0)
        self._failed = 0
        self._standing_by = False
        self._leading = False
        self._ticks = Counter(
            f"etl_{lane}_scheduler_ticks_total",
            "Scheduler ticks, by role (leading or standing_by).",
            ["role"],
        )
        self._firings = Counter(
            f"etl_{lane}_scheduler_firings_total",
            "Scheduled job firings, by job and outcome (fired or failed).",
            ["scheduled_job", "outcome"],
        )
        self._enqueued = Counter(
            f"etl_{lane}_scheduler_units_enqueued_total",
            "Work units the scheduler's firings enqueued, by job.",
            ["scheduled_job"],
        )

    def run(
        self,
        *,
        max_ticks: int | None = None,
        stop: threading.Event | None = None,
        after_tick: AfterTick | None = None,
    ) -> SchedulerSummary:
        """Lead or stand by until ``stop`` is set, ``max_ticks`` ticks passed, or an
        interruption (Ctrl-C, SIGTERM) propagates; the lease is released on the way out.

        ``after_tick`` runs after each tick, before the wait for the next (``schedule``
        exports its metrics there), told whether a job fired or failed to in it.
        """
        stopped = stop or threading.Event()
        lease: Lease | None = None
        ticks = led = 0
        try:
            while (max_ticks is None or ticks < max_ticks) and not stopped.is_set():
                ticks += 1
                if lease is None or lease.lost:
                    lease = self._lead()
                attempts = sum(self._fired.values()) + self._failed
                leading = lease is not None
                if lease is not None:
                    led += 1
                    lease = self._fire_due(lease)
                self._leading = lease is not None
                self._ticks.labels(role="leading" if leading else "standing_by").inc()
                if after_tick is not None:
                    after_tick(sum(self._fired.values()) + self._failed != attempts)
                stopped.wait(self.tick)
        finally:
            if lease is not None and not lease.lost:
                lease.release()
        return SchedulerSummary(ticks, led, dict(self._fired), self._failed)

    @property
    def leading(self) -> bool:
        """Whether it held the lease at the end of its latest tick (still ``True`` once
        :meth:`run` released it on its way out: it led until then)."""
        return self._leading

    def _lead(self) -> Lease | None:
        key = scheduler_lease_key(self.lane)
        try:
            lease = acquire_lease(
                self.store, key, ttl=self.lease_seconds, purpose=f"{self.lane} scheduler"
            )
        except LeaseBusyError as busy:
            if not self._standing_by:
                logger.info("scheduler standing by: %s leads", busy.holder)
                self._standing_by = True
            return None
        self._standing_by = False
        now = self.clock()
        self._due = {job.name: now if job.at_start else job.next_time(now) for job in self.jobs}
        logger.info(
            "scheduler leading (fencing token %d): %s",
            lease.token,
            ", ".join(f"{job.name} next at {self._due[job.name]:%H:%M:%S}" for job in self.jobs),
        )
        return lease

    def _fire_due(self, lease: Lease) -> Lease | None:
        for job in self.jobs:
            now = self.clock()
            if self._due[job.name] > now:
                continue
            try:
                lease.check()
            except LeaseLostError as lost:
                logger.warning("scheduler lease taken over; standing by: %s", lost)
                self._due.clear()
                return None
            self._due[job.name] = job.next_time(now)
            self._fire(job)
        return lease

    def _fire(self, job: Job) -> None:
        try:
            count = job.fire()
        except Exception as exc:  # a broker or store outage must not end the scheduler
            self._failed += 1
            self._firings.labels(scheduled_job=_label(job.name), outcome="failed").inc()
            again = f"{self._due[job.name]:%H:%M:%S}"
            logger.error("scheduled %s failed, tried again at %s: %s", job.name, again, exc)
            return
        self._fired[job.name] += 1
        self._firings.labels(scheduled_job=_label(job.name), outcome="fired").inc()
        self._enqueued.labels(scheduled_job=_label(job.name)).inc(count)
        logger.info(
            "scheduled %s fired: %d unit(s) enqueued",
            job.name,
            count,
            extra={"job": job.name, "units": count},
        )


def _label(name: str) -> str:
    """A job's name as a metric label: ``_`` for each space (``ingest shop``), which a
    StatsD tag cannot hold."""
    return "_".join(name.split())
