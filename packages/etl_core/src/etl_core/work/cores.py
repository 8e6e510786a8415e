"""How many threads one work unit's engine may start: the host's cores shared by the units
that run at once.

A pool of N threads, or a Celery worker of N processes, runs N units at once; a unit that
opens DuckDB with its default (one thread per core) would start C threads on C cores,
N x C threads in all, which only wait for each other and cost CPU in switching. The
executor that runs N units at once says so (:func:`sharing_cores`), and a unit asks
:func:`unit_threads` for its share, unless a setting names the threads.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

__all__ = ["host_cores", "share_cores_in_process", "sharing_cores", "unit_threads", "units_at_once"]

_UNITS_AT_ONCE: ContextVar[int] = ContextVar("units_at_once")
"""Units running at once on this host (the current one included), as a pool says it."""

_in_process = 1
"""The same for the whole process (and those it forks), where no pool says otherwise."""

CPU_QUOTA = Path("/sys/fs/cgroup/cpu.max")
"""A container's CPU quota (cgroup v2: ``<quota> <period>`` microseconds, or ``max``)."""

CPU_QUOTA_V1 = Path("/sys/fs/cgroup/cpu")
"""The same on a host still on cgroup v1: ``cpu.cfs_quota_us`` (-1: none) over
``cpu.cfs_period_us``, in this directory."""


def host_cores() -> int:
    """The cores this process may run on: its CPU affinity (where the OS tells it), no more
    than its container's CPU quota allows (a 2-CPU container on a 64-core host: 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _quota_cores()
    if quota is not None:
        cores = min(cores, quota)
    return max(1, cores)


def _quota_cores() -> int | None:
    """The cores a container's CPU quota allows (rounded up), cgroup v2's or else v1's;
    None without one (``max``, -1, no such file, unreadable, or a value naming no cores)."""
    for read in (_v2_quota, _v1_quota):
        try:
            quota, period = read()
        except (OSError, ValueError):  # not this cgroup version, or no quota
            continue
        if quota > 0 and period > 0:
            return math.ceil(quota / period)
    return None


def _v2_quota() -> tuple[int, int]:
    quota, period = CPU_QUOTA.read_text().split()[:2]
    return int(quota), int(period)  # ``max``: ValueError, no quota


def _v1_quota() -> tuple[int, int]:
    quota = (CPU_QUOTA_V1 / "cpu.cfs_quota_us").read_text()
    return int(quota), int((CPU_QUOTA_V1 / "cpu.cfs_period_us").read_text())


def units_at_once() -> int:
    """How many units the executor running the current one runs at once (1 outside one)."""
    return _UNITS_AT_ONCE.get(_in_process)


@contextlib.contextmanager
def sharing_cores(units: int) -> Iterator[None]:
    """Within the block, ``units`` units run at once on this host's cores (at least 1)."""
    token = _UNITS_AT_ONCE.set(max(1, units))
    try:
        yield
    finally:
        _UNITS_AT_ONCE.reset(token)


def share_cores_in_process(units: int) -> None:
    """From now on ``units`` units run at once in this process and those it forks (a Celery
    worker's ``--concurrency``, said before its pool forks the processes that run them)."""
    global _in_process
    _in_process = max(1, units)


def unit_threads(setting: int = 0, *, parts: int = 1) -> int:
    """Threads for one engine of the current unit: ``setting`` when positive; else the
    host's cores divided among the units running at once and the ``parts`` of this unit
    that run at once themselves (an archive's members), at least 1."""
    if setting > 0:
        return setting
    return max(1, host_cores() // (units_at_once() * max(1, parts)))
