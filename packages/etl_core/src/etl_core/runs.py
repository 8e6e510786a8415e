"""Run recording: what a runtime says about each run, and the hook a run ledger plugs into.

etl_core knows no database. A run ledger (the platform database's, through a runtime's
``db`` adapter) implements :class:`RunRecorder`; a CLI hands a factory of it to
:func:`etl_core.runtime.open_session`, and each job command calls
:meth:`etl_core.runtime.Session.record_run`, which starts the run and returns a
:class:`RecordedRun` to count into. The run is finished with the status its exit code
means (0 succeeded, 3 partial, anything else failed) either by
:func:`~etl_core.runtime.run_entry_point` as the process exits, or by leaving the
``with`` block of a :class:`RecordedRun` used as a context manager.

A failure to *start* recording propagates: with a database configured, a run that cannot
be recorded does not start (a database that cannot be reached is retryable, one that is
misconfigured a configuration error). A failure to *finish* is logged and never changes
the run's own outcome, as for pushed metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from etl_core.errors import ConfigError, MissingDependencyError

__all__ = [
    "RecordedRun",
    "RunOutcome",
    "RunRecorder",
    "RunStart",
    "RunStatus",
    "exit_code_of",
    "finish_open_runs",
    "status_of",
]

logger = logging.getLogger(__name__)

RunStatus = Literal["succeeded", "partial", "failed"]

_OK, _FAILED, _USAGE, _PARTIAL = 0, 1, 2, 3  # etl_core.runtime.ExitCode, which imports this
_COUNTS = ("inputs", "outputs", "quarantined", "failed", "rows_written")
_open: list[RecordedRun] = []
_open_lock = threading.Lock()


@dataclass(frozen=True)
class RunStart:
    """A run as it starts: who runs what, and when."""

    run_id: str
    lane: str
    job: str
    """The subcommand or job name (``scan``, ``transform``, ``backfill``…)."""
    dataset: str
    """The dataset the run is about; ``""`` for several or none."""
    parameters: Mapping[str, object]
    """What the run was asked to do, JSON-serialisable (flags, dates)."""
    started_at: datetime
    holder: Mapping[str, object] = field(default_factory=dict)
    """The process running it (:meth:`etl_core.storage.leases.Holder.to_dict`), recorded so
    that a later run can tell when this one was left ``running`` by a killed process."""

    @staticmethod
    def holder_is_gone(holder: Mapping[str, object]) -> bool:
        """Whether the process of a run recorded with ``holder`` is known to have ended
        (same host, boot and pid namespace, and its pid gone or reused): a run ledger
        finishes such a run as failed. Another host's process is never judged gone."""
        from etl_core.storage.leases import Holder

        return Holder.from_dict(dict(holder)).is_gone()


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, with its counts."""

    status: RunStatus
    inputs: int = 0
    """Inputs considered (landing objects, partitions)."""
    outputs: int = 0
    """Outputs published (validated objects, curated partitions, loaded partitions)."""
    quarantined: int = 0
    failed: int = 0
    """Inputs or units that failed."""
    rows_written: int = 0
    error: str = ""
    """Why the run failed; ``""`` when it did not."""


class RunRecorder(Protocol):
    """A run ledger: where runs are recorded as they start and finish."""

    def start(self, run: RunStart) -> None:
        """Record that ``run`` started; an error here keeps the run from starting.

        A ledger may first finish as failed the runs its earlier processes left
        ``running`` when killed (:meth:`RunStart.holder_is_gone`).
        """

    def finish(self, run: RunStart, outcome: RunOutcome) -> None:
        """Record how ``run`` ended."""


def status_of(exit_code: int) -> RunStatus:
    """The run status an exit code means: 0 succeeded, 3 partial, anything else failed."""
    if exit_code == _OK:
        return "succeeded"
    return "partial" if exit_code == _PARTIAL else "failed"


def exit_code_of(error: BaseException) -> int:
    """The exit code an exception ending a run stands for.

    ``SystemExit`` and CLI exits carrying an ``exit_code`` (Typer's ``Exit``) give their
    code; a configuration error or a missing extra is 2; anything else 1.
    """
    if isinstance(error, SystemExit):
        code = error.code
        return code if isinstance(code, int) else (_OK if code is None else _FAILED)
    code = getattr(error, "exit_code", None)
    if isinstance(code, int):
        return code
    return _USAGE if isinstance(error, ConfigError | MissingDependencyError) else _FAILED


class RecordedRun:
    """A started run: count into it; it is finished once, with the status of its exit code.

    Without a recorder (no database configured) it only counts, so commands need not
    care whether runs are recorded.
    """

    def __init__(self, start: RunStart, recorder: RunRecorder | None) -> None:
        """Start recording ``start`` with ``recorder`` (nothing is recorded without one).

        Raises:
            Whatever ``recorder.start`` raises: the run must not start unrecorded.
        """
        self.started = start
        self._recorder = recorder
        self._counts: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self._error = ""
        self._lock = threading.Lock()
        self.finished: RunOutcome | None = None
        if recorder is not None:
            recorder.start(start)
            with _open_lock:
                _open.append(self)

    @property
    def recorded(self) -> bool:
        """Whether a run ledger records this run."""
        return self._recorder is not None

    def count(
        self,
        *,
        inputs: int = 0,
        outputs: int = 0,
        quarantined: int = 0,
        failed: int = 0,
        rows_written: int = 0,
    ) -> None:
        """Add to the run's counts (safe from several threads)."""
        added = {
            "inputs": inputs,
            "outputs": outputs,
            "quarantined": quarantined,
            "failed": failed,
            "rows_written": rows_written,
        }
        with self._lock:
            for name, value in added.items():
                self._counts[name] += value

    def note_error(self, message: str) -> None:
        """Say why the run failed (recorded if it ends failed); the last note wins."""
        with self._lock:
            self._error = message

    def exit_code(self) -> int:
        """The exit code the counts alone mean: 1 if any failed, 3 if any quarantined, else 0."""
        if self._counts["failed"]:
            return _FAILED
        return _PARTIAL if self._counts["quarantined"] else _OK

    def finish(self, exit_code: int, error: str = "") -> RunOutcome:
        """Record how the run ended; later calls return the first outcome unchanged.

        Args:
            exit_code: The process's exit code (0, 1, 2, 3), which gives the status.
            error: Why it failed, when the exit code says it did; the noted error (or
                the exit code) otherwise.
        """
        with self._lock:
            if self.finished is not None:
                return self.finished
            status = status_of(exit_code)
            why = "" if status != "failed" else error or self._error or f"exit code {exit_code}"
            self.finished = RunOutcome(status, **self._counts, error=why)
        with _open_lock:
            if self in _open:
                _open.remove(self)
        if self._recorder is not None:
            try:
                self._recorder.finish(self.started, self.finished)
            except Exception as exc:  # the run's own outcome matters more than its record
                logger.error(
                    "run %s of %s ended %s but was not recorded as such: %s",
                    self.started.run_id,
                    self.started.job,
                    status,
                    exc,
                )
        return self.finished

    def __enter__(self) -> RecordedRun:
        return self

    def __exit__(self, *raised: object) -> None:
        error = raised[1]
        if not isinstance(error, BaseException):
            self.finish(self.exit_code())
            return
        code = exit_code_of(error)
        self.finish(code, "" if code == _OK else str(error) or type(error).__name__)


def finish_open_runs(exit_code: int, error: str = "") -> None:
    """Finish every run this process started and has not finished (a CLI's exit)."""
    with _open_lock:
        runs = list(_open)
    for run in runs:
        run.finish(exit_code, error)
