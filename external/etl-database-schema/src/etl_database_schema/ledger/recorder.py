"""Run recording: each run of a runtime as one row of ``etl_pipeline_run``.

:class:`RunLedger` is what a runtime hands its run-recording hook. It has the shape of the
platform's recorder interface (``start(run)``, ``finish(run, outcome)``) without importing
the platform: it reads the attributes it needs from the values it is given. A run has
``run_id``, ``lane``, ``job``, ``dataset``, ``parameters`` (a mapping), ``started_at``
(timezone-aware) and, optionally, ``holder`` (a mapping naming its process) and
``holder_is_gone(holder)`` (whether a recorded holder's process has ended); an outcome
``status`` (``succeeded``, ``partial``, ``failed``), the counts ``inputs``, ``outputs``,
``quarantined``, ``failed``, ``rows_written`` and ``error``.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from etl_database_schema.door import CallerErrors, connect, raising_as
from etl_database_schema.ledger.queries import abandon_runs, finish_run, start_run

__all__ = ["RunLedger"]

logger = logging.getLogger(__name__)

_OUTCOME_FIELDS = ("inputs", "outputs", "quarantined", "failed", "rows_written", "error")


class RunLedger:
    """Records runs in the database at ``database_url`` (the door opens on the first start).

    With ``errors``, its failures are raised as the caller's classes (:func:`raising_as`).
    """

    def __init__(self, database_url: str, *, errors: CallerErrors | None = None) -> None:
        self.database_url = database_url
        self.errors = errors

    def start(self, run: Any) -> None:
        """Insert the ``running`` row of ``run``, after finishing as failed the runs left
        ``running`` by a process that is gone (:func:`abandon_runs`), when ``run`` can
        tell (``holder_is_gone``).

        Raises:
            DatabaseUnavailableError, MigrationsPendingError, DatabaseRefusedError: As
                :func:`~etl_database_schema.connect` and :func:`start_run` do.
        """
        with self._raising():
            connect(self.database_url)
            is_gone = getattr(run, "holder_is_gone", None)
            if is_gone is not None:
                for gone in abandon_runs(is_gone):
                    logger.warning(
                        "run %s was left running by a process that is gone (killed?): "
                        "recorded as failed",
                        gone,
                    )
            start_run(
                run.run_id,
                lane=run.lane,
                job=run.job,
                dataset=run.dataset,
                parameters=run.parameters,
                started_at=run.started_at,
                holder=getattr(run, "holder", None),
            )

    def finish(self, run: Any, outcome: Any) -> None:
        """Record the outcome of ``run`` (started by :meth:`start`).

        Raises:
            DatabaseUnavailableError, DatabaseRefusedError: As :func:`finish_run` does.
        """
        with self._raising():
            counts = {name: getattr(outcome, name) for name in _OUTCOME_FIELDS}
            finish_run(run.run_id, outcome.status, **counts)

    def _raising(self) -> AbstractContextManager[object]:
        return nullcontext() if self.errors is None else raising_as(self.errors, "run recording")
