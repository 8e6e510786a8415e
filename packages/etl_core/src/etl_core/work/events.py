"""The platform's event contract: the work units one lane (or a scheduler) sends another.

A runtime never imports another (architecture section 1), so a unit one lane hands to
another's workers is built here, once, and documented in docs/events.md: the file lane's
worker enqueues the transform of a partition it just validated on the ``data_pipeline``
queue, a scheduler enqueues any lane's units. Each unit travels as the one argument of
the task ``<lane>.run_unit`` (:func:`etl_core.work.celery.task_name`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from etl_core.work.unit import InvalidUnitError, WorkUnit

__all__ = [
    "API_WINDOW",
    "DATA_PIPELINE",
    "FILE_PROCESSING",
    "LANDING_OBJECT",
    "MONITOR",
    "OBSERVABILITY",
    "PARTITION",
    "landing_object_unit",
    "monitor_unit",
    "partition_unit",
]

FILE_PROCESSING = "file_processing"
DATA_PIPELINE = "data_pipeline"
OBSERVABILITY = "observability"

LANDING_OBJECT = "landing_object"
"""``file_processing``: one landing object; key ``landing/<source>/<file>``."""
PARTITION = "partition"
"""``data_pipeline``: transform and/or load one partition; key ``<dataset>/<YYYY-MM-DD>``."""
API_WINDOW = "api_window"
"""``data_pipeline``: one API endpoint window; key ``<source>/<endpoint>/<window>``."""
MONITOR = "monitor"
"""``observability``: every monitor of one dataset at one instant; key ``<dataset>``."""


def landing_object_unit(key: str, *, force: bool = False) -> WorkUnit:
    """Process the landing object ``key`` (``force`` redoes a done one)."""
    return WorkUnit(FILE_PROCESSING, LANDING_OBJECT, key, {"force": force} if force else {})


def partition_unit(
    dataset: str,
    dt: date,
    *,
    transform: bool = True,
    load: bool = True,
    purpose: str = "run",
    job: str | None = None,
) -> WorkUnit:
    """Transform and/or load one partition (of backfill ``job``, if given).

    ``purpose`` ``run`` (what the file lane sends after a validated delivery) redoes only
    what is pending once the partition's lease is held, and skips a partition another
    writer holds; any other purpose (``backfill <job>``) redoes it whole.
    """
    params: dict[str, object] = {"transform": transform, "load": load, "purpose": purpose}
    if job is not None:
        params["job"] = job
    return WorkUnit(DATA_PIPELINE, PARTITION, f"{dataset}/{dt.isoformat()}", params)


def monitor_unit(dataset: str, at: datetime) -> WorkUnit:
    """Evaluate every monitor of ``dataset`` as at the instant ``at``.

    Raises:
        InvalidUnitError: ``at`` has no time zone.
    """
    if at.tzinfo is None:
        raise InvalidUnitError(f"expected a time zone in {at.isoformat()}", field="params.at")
    return WorkUnit(OBSERVABILITY, MONITOR, dataset, {"at": at.astimezone(UTC).isoformat()})
