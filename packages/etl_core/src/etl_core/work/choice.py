"""Which executor a fanning-out command uses: the ``executor`` setting, checked.

Every command that fans work units out (``scan``, ``run``, ``backfill``, ``ingest``,
``check``) asks :func:`unit_executor`; a setting it cannot honour is a configuration
error (exit 2), never silently replaced by the local pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from etl_core.errors import ConfigError, FieldError
from etl_core.runtime import RuntimeSettings
from etl_core.work.executor import Executor

if TYPE_CHECKING:
    from etl_core.work.celery import CeleryExecutor

__all__ = ["EXECUTORS", "require_broker", "unit_executor", "unit_sender"]

EXECUTORS = ("local", "celery")
"""The executors a fanning-out command takes (``--executor``, ``ETL_EXECUTOR``)."""


def _as_is(value: Any) -> Any:
    return value


def unit_executor(
    settings: RuntimeSettings,
    lane: str,
    *,
    local: Callable[[], Executor],
    decode: Callable[[Any], Any] = _as_is,
    window: int = 256,
    scratch: bool = False,
) -> Executor:
    """``local()`` for ``executor = "local"``; for ``celery``, one task per unit on
    ``lane``'s queue, results rebuilt by ``decode``. ``scratch``: the units make scratch
    directories under ``work_dir``, so the local executor first checks that one can be
    made there (the Celery workers' ``work_dir`` is theirs, checked by their units).

    Raises:
        ConfigError: an executor other than ``local`` or ``celery``, or Celery settings
            that do not hold (no broker, a login the broker refuses); with ``scratch``,
            a local ``work_dir`` where no directory can be made (``WorkDirError``).
        RetryableError: the broker did not answer (``BrokerUnreachableError``).
        MissingDependencyError: ``celery`` without the ``celery`` extra.
    """
    if settings.executor == "local":
        if scratch:
            from etl_core.scratch import check_work_dir

            check_work_dir(settings.work_dir)
        return local()
    if settings.executor == "celery":
        from etl_core.work.celery import CeleryExecutor, celery_app, check_broker
        from etl_core.work.celery.config import following
        from etl_core.work.celery.ping import lane_has_workers

        app = following(celery_app(settings, lane))  # a Redis restart survived, ~20 s
        check_broker(app, settings)  # said at once, not as a traceback after the retries
        return CeleryExecutor(
            app,
            decode=decode,
            window=window,
            workers_of=lambda waiting: lane_has_workers(app, settings, waiting),
        )
    raise ConfigError(
        f"unknown executor {settings.executor!r}",
        [FieldError("executor", f"expected one of {', '.join(EXECUTORS)}")],
    )


def require_broker(settings: RuntimeSettings, what: str, *, flag: bool = True) -> None:
    """Refuse ``what`` (``--no-wait``, ``schedule``) unless units go to a broker.

    ``flag`` says whether the command takes ``--executor``: the refusal names the flag only
    then (``schedule`` has none, so it is told the setting alone, never an option that
    would be refused in turn).

    Raises:
        ConfigError: the ``executor`` setting is not ``celery``.
    """
    if settings.executor != "celery":
        how = (
            "--executor celery (ETL_EXECUTOR=celery)"
            if flag
            else 'ETL_EXECUTOR=celery (or executor = "celery" in etl.toml)'
        )
        raise ConfigError(
            f"{what} needs {how}: it enqueues work units on the broker for the workers",
            [FieldError("executor", f"is {settings.executor!r}; expected 'celery'")],
        )


def unit_sender(settings: RuntimeSettings, lane: str, what: str) -> CeleryExecutor:
    """The lane's Celery executor for ``what`` (``--no-wait``), which enqueues units and
    returns: its broker is reached once first, so an unreachable broker or a refused login
    is said at once, naming the broker, before anything is recorded or enqueued (not a
    library's traceback at the first send, after a backfill job was started).

    Raises:
        ConfigError: the ``executor`` setting is not ``celery``, or Celery settings that do
            not hold (no broker, a login the broker refuses).
        RetryableError: the broker did not answer (``BrokerUnreachableError``).
    """
    require_broker(settings, what)
    from etl_core.work.celery import CeleryExecutor, celery_app, check_broker

    app = celery_app(settings, lane)
    check_broker(app, settings)
    return CeleryExecutor(app)
