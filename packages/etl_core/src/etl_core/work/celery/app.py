"""A lane's Celery application, configured from the runtime settings; Celery imported lazily."""

from __future__ import annotations

from typing import Any

from etl_core.errors import MissingDependencyError
from etl_core.runtime import RuntimeSettings
from etl_core.work.celery.config import celery_config
from etl_core.work.celery.origin import ORIGIN_SETTING, unit_origin

__all__ = ["celery_app"]


def celery_app(settings: RuntimeSettings, lane: str) -> Any:
    """A Celery application for ``lane``: the shared configuration, no task registered yet.

    The caller that enqueues needs no task (it sends by name); a worker registers its
    lane's task with :func:`~etl_core.work.celery.task.register_lane_task`.

    Raises:
        MissingDependencyError: Celery is not installed (extra ``celery``).
        ConfigError: the Celery settings are invalid.
    """
    config = celery_config(settings, lane)
    try:
        from celery import Celery
    except ImportError as exc:
        raise MissingDependencyError(
            "the Celery executor", package="etl-core", extra="celery"
        ) from exc
    app = Celery(f"etl.{lane}", set_as_current=False)
    app.conf.update(config)
    # the store and database its units are made for (origin.py): sent with each unit,
    # checked by a worker against its own
    app.conf.update({ORIGIN_SETTING: unit_origin(settings)})
    return app
