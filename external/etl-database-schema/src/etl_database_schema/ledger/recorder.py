"""Run recording: each run of a runtime as one row of ``etl_pipeline_run``.

:class:`RunLedger` is what a runtime hands its run-recording hook. It has the shape of the
platform's recorder interface (``start(run)``, ``finish(run, outcome)``) without importing
the platform: it reads the attributes it needs from the values it is given, as the
:class:`StartedRun` and :class:`EndedRun` protocols describe.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from etl_database_schema.door import connect
from etl_database_schema.ledger.queries import finish_run, start_run

__all__ = ["EndedRun", "RunLedger", "StartedRun"]


class StartedRun(Protocol):
    """What :meth:`RunLedger.start` reads of a run."""

    @property
    def run_id(self) -> str:
        """The runtime's run id."""

    @property
    def lane(self) -> str:
        """The runtime (``file_processing``, ``data_pipeline``, ``observability``)."""

    @property
    def job(self) -> str:
        """The subcommand or job name."""

    @property
    def dataset(self) -> str:
        """The dataset of the run, ``""`` for several or none."""

    @property
    def parameters(self) -> Mapping[str, Any]:
        """What the run was asked to do (JSON-serialisable)."""

    @property
    def started_at(self) -> datetime:
        """When the run started (timezone-aware)."""


class EndedRun(Protocol):
    """What :meth:`RunLedger.finish` reads of a run's outcome."""

    @property
    def status(self) -> str:
        """``succeeded``, ``partial`` or ``failed``."""

    @property
    def inputs(self) -> int:
        """Inputs the run considered."""

    @property
    def outputs(self) -> int:
        """Outputs it published."""

    @property
    def quarantined(self) -> int:
        """Inputs it quarantined."""

    @property
    def failed(self) -> int:
        """Inputs (or units) that failed."""

    @property
    def rows_written(self) -> int:
        """Rows written to outputs or tables."""

    @property
    def error(self) -> str:
        """Why the run failed, ``""`` when it did not."""


class RunLedger:
    """Records runs in the database at ``database_url`` (the door opens on the first start)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def start(self, run: StartedRun) -> None:
        """Insert the ``running`` row of ``run``.

        Raises:
            DatabaseUnavailableError, MigrationsPendingError, DatabaseRefusedError: As
                :func:`~etl_database_schema.connect` and :func:`start_run` do.
        """
        connect(self.database_url)
        start_run(
            run.run_id,
            lane=run.lane,
            job=run.job,
            dataset=run.dataset,
            parameters=run.parameters,
            started_at=run.started_at,
        )

    def finish(self, run: StartedRun, outcome: EndedRun) -> None:
        """Record the outcome of ``run`` (started by :meth:`start`).

        Raises:
            DatabaseUnavailableError, DatabaseRefusedError: As :func:`finish_run` does.
        """
        finish_run(
            run.run_id,
            outcome.status,
            inputs=outcome.inputs,
            outputs=outcome.outputs,
            quarantined=outcome.quarantined,
            failed=outcome.failed,
            rows_written=outcome.rows_written,
            error=outcome.error,
        )
