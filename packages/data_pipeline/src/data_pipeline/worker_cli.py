"""``etl-data-pipeline worker`` and ``schedule``: the lane's units on a broker.

``worker`` consumes the ``data_pipeline`` queue: partition units (from ``run``,
``backfill``, the file lane's validated deliveries, the scheduler) and API window
units (from ``ingest``, the scheduler). ``schedule`` enqueues, while it leads, the
pending partitions every ``schedule_run_interval`` and each API source's windows on
its ``schedule`` cron (docs/events.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from data_pipeline import db
from data_pipeline.settings import PipelineSettings
from data_pipeline.validate import transform_problems
from etl_core.cli import LaneTask, RuntimeCLI
from etl_core.contracts import ContractSet, load_contracts
from etl_core.errors import ConfigError, FieldError
from etl_core.runtime import Session, new_run_id
from etl_core.storage import ObjectStore, store_identity
from etl_core.work.events import DATA_PIPELINE as LANE
from etl_core.work.events import partition_unit

if TYPE_CHECKING:  # the units' modules are imported by the commands that run units
    from data_pipeline.ledger import Ledger
    from data_pipeline.tasks import LaneValue
    from etl_core.contracts import Source
    from etl_core.scheduler import NextTime
    from etl_core.work import RunUnit, UnitResult, WorkUnit

__all__ = ["add_worker_commands", "source_schedule"]

Settings = Session[PipelineSettings]

_FEATURE = "etl-data-pipeline worker"
"""What needs the database, as a worker's database errors say."""


def add_worker_commands(cli: RuntimeCLI[PipelineSettings]) -> None:
    """Add ``worker`` and ``schedule`` to the runtime's CLI."""
    cli.add_worker(
        _worker_task,
        help="Run partition and API window units from the data_pipeline queue until stopped."
        "\n\nSIGTERM or Ctrl-C: a warm shutdown (the units in hand finish, no new one is "
        "taken).",
        concurrency_help="Units at once, one process each.",
        max_concurrency=64,
        concurrency=1,
        scratch=True,
    )

    @cli.app.command()
    def schedule(
        ctx: typer.Context,
        max_ticks: Annotated[
            int | None,
            typer.Option("--max-ticks", min=1, help="Stop after this many ticks (default: never)."),
        ] = None,
    ) -> None:
        """Enqueue pending partitions and API windows on their schedules, while leading.

        Pending partitions every schedule_run_interval; each API source's windows
        on its schedule cron.

        One scheduler leads at a time (a lease in the store); others stand by and take
        over when it stops. Needs ETL_EXECUTOR=celery (this command has no --executor flag).
        """
        from etl_core.work import require_broker

        session = cli.session(ctx)
        settings = session.settings
        require_broker(settings, "schedule", flag=False)
        from etl_core.contracts.sources import load_sources  # API sources: the scheduler's
        from etl_core.scheduler import Job, every  # the scheduler's: not every command's
        from etl_core.work.celery import CeleryExecutor, celery_app  # the broker's path only

        sender = CeleryExecutor(celery_app(settings, LANE))
        contracts = load_contracts(
            settings.config_dir,
            validators=[transform_problems],
            memo_dir=settings.contract_memo_dir(),
        )
        sources = load_sources(settings.config_dir, contracts=contracts)
        with session.open_store() as store:
            run_job = Job(
                "run",
                every(settings.schedule_run_interval),
                partial(_enqueue_pending, store, contracts, sender.submit, settings),
            )
            jobs = [run_job] + [
                Job(
                    f"ingest {source.source}",
                    source_schedule(source),
                    partial(_enqueue_source, source, sender.submit_chain),
                    at_start=False,
                )
                for source in sources
                if source.schedule is not None
            ]
            cli.run_scheduler(session, store, jobs, max_ticks=max_ticks)


def _worker_task(session: Settings) -> LaneTask[LaneValue]:
    """What ``worker`` runs: partition and API window units, a backfill unit's end
    recorded in its job's ledger."""
    from data_pipeline.tasks import encode_value

    ledgers: list[Ledger] = []  # this worker process's, once it built its context
    url = session.settings.database_url
    storage = str(session.settings.storage_url)
    store = store_identity(storage) or storage
    return LaneTask(
        partial(_worker_context, session, ledgers),
        encode=encode_value,
        on_result=partial(_after_unit, ledgers),
        # every unit connects to it: a login the server refuses stops the worker at start;
        # another deployment's rows in it are said there, once, before the processes fork
        check=None if url is None else partial(db.check_login, url, feature=_FEATURE, store=store),
    )


def _worker_context(
    session: Settings, ledgers: list[Ledger], opened: contextlib.ExitStack
) -> RunUnit[LaneValue]:
    """A worker process's ``run_unit``: its own store, contracts, ledger and API clients."""
    from data_pipeline.ingest import DatabaseStateStore, IngestContext, ObjectStateStore
    from data_pipeline.ledger import open_ledger
    from data_pipeline.tasks import LaneContext, run_lane_unit
    from data_pipeline.work import PipelineContext
    from etl_core.contracts.sources import load_sources

    settings = session.settings
    store = opened.enter_context(session.open_store())
    contracts = load_contracts(
        settings.config_dir, validators=[transform_problems], memo_dir=settings.contract_memo_dir()
    )
    url = settings.database_url
    if url is not None:
        db.connect(url, feature=_FEATURE)
        # another deployment's rows: said once before it forked (its processes inherit that
        # it was, so this says nothing), else here (the database was down at start-up)
        db.warn_other_stores(store.identity)
    ledger = open_ledger(store, url)
    ledgers[:] = [ledger]
    sources = load_sources(settings.config_dir, contracts=contracts)
    states = DatabaseStateStore() if url is not None else ObjectStateStore(store)
    ingest = IngestContext(
        store,
        sources,
        states,
        session.run_id,
        lease_seconds=float(settings.lease_seconds),
        lease_wait_seconds=float(settings.lease_wait_seconds),
        contracts=contracts,  # the drift report's columns
    )
    opened.callback(ingest.close)
    pipeline = PipelineContext(store, contracts, settings, session.run_id, ledger)
    return partial(run_lane_unit, LaneContext(pipeline, ingest))


def _after_unit(ledgers: list[Ledger], result: UnitResult[LaneValue]) -> None:
    """A backfill unit's end goes into its job's ledger on the worker."""
    from data_pipeline.tasks import record_backfill_end

    if ledgers:
        record_backfill_end(ledgers[0], result)


def _enqueue_pending(
    store: ObjectStore,
    contracts: ContractSet,
    submit: Callable[[WorkUnit], object],
    settings: PipelineSettings,
) -> int:
    """Enqueue a unit for every partition ``run`` would process; loads only with a database."""
    from data_pipeline.pipeline import pending_partitions, retire_spent_notices

    load = settings.database_url is not None
    count = 0
    for contract in contracts:
        retire_spent_notices(store, contract, lease_seconds=settings.lease_seconds)
        for pending in pending_partitions(store, contract, load=load):
            unit = partition_unit(
                contract.dataset, pending.dt, transform=pending.transform, load=pending.load
            )
            submit(unit)
            count += 1
    return count


def _enqueue_source(source: Source, submit_chain: Callable[[Sequence[WorkUnit]], object]) -> int:
    """Enqueue every endpoint's window of ``source``, parents first, one after another."""
    from data_pipeline.ingest import plan_units
    from data_pipeline.tasks import with_run_id

    run_id = new_run_id()
    units = [
        with_run_id(unit, run_id)
        for endpoint in source.ordered()
        for unit in plan_units(source, endpoint)
    ]
    submit_chain(units)
    return len(units)


def source_schedule(source: Source) -> NextTime:
    """The next times of ``source``'s ``schedule`` cron, in UTC.

    Raises:
        ConfigError: the expression does not parse (naming the source's file).
    """
    from cronsim import CronSim, CronSimError

    expression = str(source.schedule)
    try:
        next(CronSim(expression, datetime(2000, 1, 1)))
    except (CronSimError, StopIteration) as exc:
        raise ConfigError(
            f"source {source.source!r}: schedule {expression!r} is not a usable cron",
            [FieldError("schedule", f"not a valid cron expression ({exc})", source.origin)],
        ) from None

    def next_time(after: datetime) -> datetime:
        return next(CronSim(expression, after.replace(microsecond=0)))

    return next_time
