"""Test-only fault injection: make a runtime kill, interrupt or terminate itself at a named step.

The fault-injection suite runs the real console scripts and needs a signal to
arrive at a chosen point (between a member's data and its report, inside a
database load, …), which timing alone cannot promise. The lanes call
:func:`fault_point` at their step boundaries; it does nothing unless the
environment variable ``ETL_FAULT_AT`` names that step::

    ETL_FAULT_AT=<step>[:<action>[:<n>]]

``action`` is ``kill`` (SIGKILL, the default), ``interrupt`` (SIGINT, as Ctrl-C),
``terminate`` (SIGTERM, as ``docker stop``) or ``pause`` (log the step and
sleep ``ETL_FAULT_PAUSE`` seconds, default 5, so a test can send a real signal
there itself); ``n`` fires at the n-th time the step is reached (default
the first). The process signals itself, so its own handlers run exactly as they
would for an operator's signal.

Never set it in production. Unset, a fault point costs one dictionary lookup.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from etl_core.errors import ConfigError, FieldError

__all__ = [
    "FAULT_ENV",
    "PAUSE_ENV",
    "FaultAction",
    "FaultSpec",
    "Step",
    "fault_point",
    "fault_spec",
]

logger = logging.getLogger(__name__)

FAULT_ENV = "ETL_FAULT_AT"
PAUSE_ENV = "ETL_FAULT_PAUSE"
_DEFAULT_PAUSE = 5.0
_MAX_PAUSE = 600.0


class Step(StrEnum):
    """The named steps of the lanes where a fault can be injected."""

    DOWNLOAD = "download"
    """file_processing: the landing object is being copied to scratch."""
    DECRYPT = "decrypt"
    """file_processing: gpg is running and its first plaintext has arrived."""
    UNPACK = "unpack"
    """file_processing: a member was unpacked to scratch, before its checks."""
    CHECKS = "checks"
    """file_processing: a member's quality checks ran; its outputs are staged."""
    MEMBER_PUBLISH = "member_publish"
    """file_processing: a member's data is in validated/, its report is not."""
    REPORT_PUBLISH = "report_publish"
    """file_processing: a member's report is written; the delivery manifest is not."""
    DELIVERY_MANIFEST = "delivery_manifest"
    """file_processing: the delivery manifest is written; the ledger is not finished."""
    STALE_REMOVED = "stale_removed"
    """file_processing: what the earlier delivery of the key left that this validated one
    lacks is removed; the content index is not updated."""
    CONTENT_RECORDED = "content_recorded"
    """file_processing: the content index names the validated outputs; the earlier
    deliveries' quarantines are not closed."""
    SUPERSEDED = "superseded"
    """file_processing: the earlier deliveries' quarantines are closed; the ledger (and the
    database mirror) did not record it."""
    RECORDED = "recorded"
    """file_processing: the object's outcome is in the ledger (and the database mirror)."""
    TRANSFORM = "transform"
    """data_pipeline: the partition's Parquet is written to scratch, nothing uploaded."""
    PUBLISH = "publish"
    """data_pipeline: the generation's parts are uploaded; the curated manifest is not."""
    LOAD = "load"
    """data_pipeline: inside the load's transaction, new rows not all in (PostgreSQL: into
    the staging table of a partitioned table; otherwise: old rows deleted)."""
    LOAD_INDEX = "load_index"
    """data_pipeline, partitioned table: the staging table is filled and committed, its
    indexes not built."""
    LOAD_SWAP = "load_swap"
    """data_pipeline, partitioned table: the staging table is indexed, the swap not begun."""
    LOAD_ATTACH = "load_attach"
    """data_pipeline, partitioned table: inside the swap's transaction, the replaced
    partition detached and dropped, the staging table not attached."""
    WITHDRAW = "withdraw"
    """data_pipeline: a partition whose validated deliveries the file lane withdrew (its
    withdrawal notice) has its curated output removed; its loaded rows are not deleted yet."""
    WITHDRAWN = "withdrawn"
    """data_pipeline: a partition's withdrawal is recorded; the file lane's withdrawal notice
    it acted on is not removed yet."""


class FaultAction(StrEnum):
    """What happens at the step."""

    KILL = "kill"
    INTERRUPT = "interrupt"
    TERMINATE = "terminate"
    PAUSE = "pause"


_SIGNALS = {
    FaultAction.KILL: signal.SIGKILL,
    FaultAction.INTERRUPT: signal.SIGINT,
    FaultAction.TERMINATE: signal.SIGTERM,
}


@dataclass(frozen=True)
class FaultSpec:
    """A parsed ``ETL_FAULT_AT``: fire ``action`` the ``nth`` time ``step`` is reached."""

    step: Step
    action: FaultAction = FaultAction.KILL
    nth: int = 1


def fault_spec(env: Mapping[str, str] | None = None) -> FaultSpec | None:
    """The fault ``env`` (the process environment by default) asks for, if any.

    Raises:
        ConfigError: ``ETL_FAULT_AT`` is set but malformed (a runtime checks it at start-up).
    """
    raw = (os.environ if env is None else env).get(FAULT_ENV, "").strip()
    if not raw:
        return None
    parts = raw.split(":")
    try:
        if len(parts) > 3:
            raise ValueError("too many parts")
        step = Step(parts[0])
        action = FaultAction(parts[1]) if len(parts) > 1 else FaultAction.KILL
        nth = int(parts[2]) if len(parts) > 2 else 1
        if nth < 1:
            raise ValueError("n must be at least 1")
    except ValueError as exc:
        expected = (
            f"<step>[:<action>[:<n>]] with step one of {', '.join(Step)} and action one of "
            f"{', '.join(FaultAction)}"
        )
        raise ConfigError(
            f"{FAULT_ENV}={raw!r} is not a fault (test-only fault injection): {exc}",
            [FieldError(FAULT_ENV, f"expected {expected}", f"env {FAULT_ENV}")],
        ) from None
    return FaultSpec(step, action, nth)


_reached: Counter[str] = Counter()
_lock = threading.Lock()


def fault_point(step: Step) -> None:
    """Fire the fault ``ETL_FAULT_AT`` names if it names ``step`` (test-only; see the module)."""
    if FAULT_ENV not in os.environ:
        return
    spec = fault_spec()
    if spec is None or spec.step is not step:
        return
    with _lock:
        _reached[step] += 1
        if _reached[step] != spec.nth:
            return
    logger.warning(
        "%s: %s at %s",
        FAULT_ENV,
        spec.action,
        step,
        extra={"fault": f"{spec.action}@{step}", "pid": os.getpid()},
    )
    if spec.action is FaultAction.PAUSE:
        time.sleep(_pause_seconds())
        return
    os.kill(os.getpid(), _SIGNALS[spec.action])
    if spec.action is FaultAction.KILL:
        time.sleep(_MAX_PAUSE)  # SIGKILL cannot be caught: the process is gone before this ends


def _pause_seconds() -> float:
    try:
        seconds = float(os.environ.get(PAUSE_ENV, _DEFAULT_PAUSE))
    except ValueError:
        seconds = _DEFAULT_PAUSE
    return min(max(seconds, 0.0), _MAX_PAUSE)
