"""``etl-data-pipeline``: transforms, enrichment, backfills, API ingestion and loads."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, timedelta
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from data_pipeline import db
from data_pipeline.ingest_cli import add_ingest_commands
from data_pipeline.layout import remove_abandoned_writes
from data_pipeline.pipeline import (
    PartitionOutcome,
    pending_partitions,
    process_partition,
    retire_spent_notices,
)
from data_pipeline.settings import PipelineSettings
from data_pipeline.validate import transform_problems
from data_pipeline.worker_cli import add_worker_commands
from etl_core.cli import RuntimeCLI
from etl_core.contracts import Contract, ContractError, ContractSet, load_contracts, parse_day
from etl_core.errors import ConfigError, FieldError
from etl_core.logging import redact
from etl_core.progress import WorkProgress
from etl_core.runtime import ExitCode, Session
from etl_core.storage import ObjectStore, store_identity
from etl_core.work.events import DATA_PIPELINE as LANE

if TYPE_CHECKING:  # imported by the commands that use it (issue 16, start-up)
    from collections.abc import Callable

    from rich.table import Table

    from data_pipeline.backfill import BackfillSummary
    from data_pipeline.db import BackfillJobRecord, BackfillPartitionRecord
    from data_pipeline.ledger import Ledger
    from etl_core.work import WorkUnit
    from etl_core.work.celery import CeleryExecutor

cli = RuntimeCLI(
    name="etl-data-pipeline",
    lane="data_pipeline",
    help="S3 transforms, enrichment, backfills, API ingestion and database loads.",
    settings=PipelineSettings,
    validators=[transform_problems],
    recorder=db.run_recorder,
)
app, out, err = cli.app, cli.out, cli.err
main = cli.main
db_app = typer.Typer(help="The platform database (needs the 'schema' extra).", no_args_is_help=True)
app.add_typer(db_app, name="db")
add_ingest_commands(cli)
add_worker_commands(cli)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="postgresql:// or sqlite:/// (default: the database_url setting).",
    ),
]
ExecutorOption = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="local: this process; celery: the broker's data_pipeline workers (setting).",
    ),
]
NoWait = Annotated[
    bool,
    typer.Option("--no-wait", help="With --executor celery: enqueue the partitions, return."),
]

TRANSFORM_JOB = "etl_data_pipeline_transform"
LOAD_JOB = "etl_data_pipeline_load"
RUN_JOB = "etl_data_pipeline_run"
BACKFILL_JOB = "etl_data_pipeline_backfill"
"""The jobs ``transform``, ``load``, ``run`` and ``backfill`` export their metrics as,
however they end (not with ``--no-wait``: the workers count the partitions enqueued)."""


@db_app.command("status")
def db_status(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Check that the database is reachable and fully migrated (exit 2 when it is not)."""
    url = cli.session(ctx, database_url="database_url").settings.database_url
    db.connect(url, feature="etl-data-pipeline db status")
    out.print(f"database {redact(url or '')} is reachable and fully migrated".strip())


Dataset = Annotated[str, typer.Option("--dataset", help="Dataset name (its contract's dataset).")]
PartitionDate = Annotated[
    str, typer.Option("--date", help="Partition date, YYYY-MM-DD.", metavar="DATE")
]


def _date(value: str, option: str) -> date:
    """``option``'s value, exactly ``YYYY-MM-DD`` (else a usage error naming it)."""
    return parse_day(value, option)


def _contracts(session: Session[PipelineSettings]) -> ContractSet:
    """Every contract of the config dir, judged whole (one bad file stops the run)."""
    settings = session.settings
    return load_contracts(
        settings.config_dir,
        validators=[transform_problems],
        memo_dir=settings.contract_memo_dir(),
    )


def _contract(session: Session[PipelineSettings], dataset: str) -> Contract:
    return _contracts(session).get(dataset)


def _load_contract(session: Session[PipelineSettings], dataset: str) -> Contract:
    """The contract of a ``load``, every contract judged by the platform's rules but the
    transform SQL not bound: a load runs no transform (it reads the curated output a
    checked transform wrote), so it does not start DuckDB (issue 16, start-up)."""
    return load_contracts(session.settings.config_dir).get(dataset)


def _check_load_tables(session: Session[PipelineSettings], contracts: list[Contract]) -> None:
    """A ``[load] table`` the schema does not have stops the run before any work is done;
    a database holding another deployment's rows is warned about (once per process)."""
    known = ", ".join(sorted(db.CURATED_TABLES))
    errors = [
        FieldError(
            "load.table", f"{c.load.table!r} is not a curated table (known: {known})", c.origin
        )
        for c in contracts
        if c.load is not None and c.load.table not in db.CURATED_TABLES
    ]
    if errors:
        raise ContractError("a contract loads into a table the database does not have", errors)
    _warn_other_stores(session.settings)


def _warn_other_stores(settings: PipelineSettings) -> None:
    """Warn when the open database holds ledger rows of object stores other than this
    deployment's (``storage_url``'s identity): docs/architecture.md section 5."""
    url = str(settings.storage_url)
    db.warn_other_stores(store_identity(url) or url)


def _note_unloaded(contracts: list[Contract]) -> None:
    """Say which of ``contracts`` asked to load have no ``[load]`` section: their
    partitions are transformed and not loaded (unlike ``load``, not refused: a
    transform-only dataset is a configuration), which the operator should not learn
    from an empty table."""
    for contract in contracts:
        if contract.load is None:
            cli.notice(
                f"dataset {contract.dataset!r} has no [load] section: its partitions are "
                "transformed, not loaded",
                fields={"dataset": contract.dataset},
            )


def _connect_for_joins(session: Session[PipelineSettings], contracts: list[Contract]) -> None:
    """Open the database when an enrichment join reads one of its reference tables."""
    if any(join.table for contract in contracts for join in contract.enrich):
        db.connect(session.settings.database_url, feature="enrichment from database tables")


def _one(datasets: list[str] | None) -> str:
    """The dataset a run is about: the one asked for, or ``""`` for several."""
    return datasets[0] if datasets and len(datasets) == 1 else ""


def _counts(outcomes: list[PartitionOutcome]) -> dict[str, int]:
    """What a run records of its partitions: processed, published, rows written."""
    done = [o for o in outcomes if not o.skipped]
    return {
        "inputs": len(outcomes),
        "outputs": len(done),
        "rows_written": sum(
            o.load.rows if o.load else o.transform.rows if o.transform else 0 for o in outcomes
        ),
    }


def _one_partition(work: str, dataset: str, dt: date) -> WorkProgress:
    """The progress of a one-partition command: a spinner with its elapsed time on a
    terminal, a log line every ``progress_interval`` seconds otherwise."""
    progress = cli.progress(f"{work} {dataset} {dt}", item="partition")
    progress.plan(1)
    return progress


def _outcome_table(outcomes: list[PartitionOutcome]) -> Table:
    from rich.table import Table

    table = Table("dataset", "dt", "rows", "files", "unmatched", "loaded")
    for outcome in outcomes:
        built, loaded = outcome.transform, outcome.load
        unmatched = ", ".join(f"{k}={v}" for k, v in built.unmatched.items()) if built else ""
        if outcome.skipped:
            unmatched = f"skipped: {outcome.skipped}"
        if outcome.withdrawn:
            unmatched = "withdrawn: no validated delivery left"
        table.add_row(
            outcome.dataset,
            outcome.dt.isoformat(),
            str(built.rows) if built else "-",
            str(built.files) if built else "-",
            unmatched or "-",
            f"{loaded.rows} → {loaded.table}" if loaded else "-",
        )
    return table


@app.command("transform")
def transform_command(ctx: typer.Context, dataset: Dataset, date_: PartitionDate) -> None:
    """Build curated/<dataset>/dt=<date>/ from the validated partition (replaced whole)."""
    session = cli.session(ctx)
    contract = _contract(session, dataset)
    dt = _date(date_, "--date")
    run = session.record_run("transform", dataset=dataset, parameters={"date": date_})
    session.exports_metrics_as(TRANSFORM_JOB)
    _connect_for_joins(session, [contract])
    out.import_ahead("rich.table")  # for the outcome table, while DuckDB works
    with session.open_store() as store, _one_partition("transform", dataset, dt) as progress:
        outcome = process_partition(
            store, contract, dt, session.settings, load=False, run_id=session.run_id
        )
        progress.finish(f"{dataset} {dt}")
    run.count(**_counts([outcome]))
    session.push_metrics(TRANSFORM_JOB)
    out.print(_outcome_table([outcome]))


@app.command("load")
def load_command(
    ctx: typer.Context, dataset: Dataset, date_: PartitionDate, database_url: DatabaseUrl = None
) -> None:
    """Replace partition <date> of the contract's table with the curated partition."""
    session = cli.session(ctx, database_url="database_url")
    contract = _load_contract(session, dataset)
    dt = _date(date_, "--date")
    if contract.load is None:
        raise ConfigError(
            f"dataset {dataset!r} has nothing to load",
            [FieldError("load", "expected a [load] section naming the table", contract.origin)],
        )
    db.connect(session.settings.database_url, feature="etl-data-pipeline load")
    _check_load_tables(session, [contract])
    run = session.record_run("load", dataset=dataset, parameters={"date": date_})
    session.exports_metrics_as(LOAD_JOB)
    out.import_ahead("rich.table")  # for the outcome table, while the database works
    with session.open_store() as store, _one_partition("load", dataset, dt) as progress:
        outcome = process_partition(
            store,
            contract,
            dt,
            session.settings,
            transform=False,
            run_id=session.run_id,
            purpose="load",
        )
        progress.finish(f"{dataset} {dt}")
    run.count(**_counts([outcome]))
    session.push_metrics(LOAD_JOB)
    out.print(_outcome_table([outcome]))


@app.command("run")
def run_command(
    ctx: typer.Context,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Only these datasets (default: all).")
    ] = None,
    no_load: Annotated[
        bool, typer.Option("--no-load", help="Transform only; leave the database alone.")
    ] = False,
    executor: ExecutorOption = None,
    no_wait: NoWait = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Transform every validated partition newer than its curated output, then load it.

    A day built earlier whose validated deliveries are all gone is withdrawn: its curated
    output removed, its loaded rows deleted.
    """
    # imported here: a one-partition command runs no units (issue 16, start-up)
    from data_pipeline.tasks import partition_outcome
    from data_pipeline.work import PipelineContext, partition_of, partition_unit, run_unit
    from etl_core.work import InlineExecutor, unit_executor, unit_sender

    session = cli.session(ctx, database_url="database_url", executor="executor")
    sender = unit_sender(session.settings, LANE, "--no-wait") if no_wait else None
    every = _contracts(session)
    contracts = [every.get(name) for name in dataset] if dataset else list(every)
    if not no_load and dataset:  # every dataset of a plain run: transform-only ones are usual
        _note_unloaded(contracts)
    if not no_load and any(c.load is not None for c in contracts):
        url = session.settings.database_url
        db.connect(url, feature="etl-data-pipeline run (loads; --no-load skips them)")
        _check_load_tables(session, contracts)
    parameters = {"datasets": [c.dataset for c in contracts], "load": not no_load}
    run = session.record_run("run", dataset=_one(dataset), parameters=parameters)
    if sender is None:
        session.exports_metrics_as(RUN_JOB)
    _connect_for_joins(session, contracts)
    outcomes: list[PartitionOutcome] = []
    failures: list[str] = []
    with session.open_store() as store:
        remove_abandoned_writes(store, timedelta(seconds=session.settings.lease_seconds))
        context = PipelineContext(store, every, session.settings, run_id=session.run_id)
        for c in contracts:  # before planning: a killed withdrawal's notice is finished too
            retire_spent_notices(store, c, lease_seconds=session.settings.lease_seconds)
        units = [
            partition_unit(c.dataset, p.dt, transform=p.transform, load=p.load, purpose="run")
            for c in contracts
            for p in pending_partitions(store, c, load=not no_load)
        ]
        if sender is not None:
            _enqueue(session, sender, units)
            run.count(inputs=len(units))
            return
        chosen = unit_executor(
            session.settings, LANE, local=InlineExecutor, decode=partition_outcome, scratch=True
        )
        out.import_ahead("rich.table")  # for the outcome table, while the partitions run
        with cli.progress("run", item="partition") as progress:
            progress.plan(len(units))
            for result in chosen.run(partial(run_unit, context), units):
                dataset_name, dt = partition_of(result.unit)
                progress.finish(f"{dataset_name} {dt}")
                if result.ok and result.value is not None:
                    outcomes.append(result.value)
                    continue
                failures.append(str(result.error))
                cli.notice(
                    f"{dataset_name} {dt}: {result.error}",
                    level=logging.ERROR,
                    style="red",
                    fields={"dataset": dataset_name, "dt": dt.isoformat()},
                )
    run.count(**_counts(outcomes))
    run.count(inputs=len(failures), failed=len(failures))
    if failures:
        run.note_error("; ".join(failures))
    session.push_metrics(RUN_JOB)
    out.print(_outcome_table(outcomes))
    skipped = sum(1 for o in outcomes if o.skipped)
    busy = f", {skipped} skipped (in progress or done elsewhere)" if skipped else ""
    withdrawn = sum(1 for o in outcomes if o.withdrawn)
    gone = f", {withdrawn} withdrawn (no validated delivery left)" if withdrawn else ""
    out.print(
        f"{len(outcomes) - skipped} partition(s) processed, {len(failures)} failed{busy}{gone}"
    )
    if failures:
        raise typer.Exit(ExitCode.FAILED)


@app.command("backfill")
def backfill_command(
    ctx: typer.Context,
    dataset: Dataset,
    from_: Annotated[
        str | None, typer.Option("--from", help="First partition date (YYYY-MM-DD).")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last partition date, inclusive.")] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Partitions at once.")
    ] = 1,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan (partitions, objects, bytes) only.")
    ] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", metavar="JOB", help="Resume this job.")
    ] = None,
    only_failed: Annotated[
        bool, typer.Option("--only-failed", help="With --resume: redo only failed partitions.")
    ] = False,
    status: Annotated[
        str | None,
        typer.Option("--status", metavar="JOB", help="Show this job's partitions; change nothing."),
    ] = None,
    lookback: Annotated[
        int, typer.Option("--lookback", help="Also redo the N days before --from (late data).")
    ] = 0,
    no_load: Annotated[bool, typer.Option("--no-load", help="Transform only.")] = False,
    executor: ExecutorOption = None,
    no_wait: NoWait = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Rebuild a dataset's partitions over a date range: one retried work unit per partition.

    With --executor celery the workers record each partition's end in the job's ledger
    (the database's when database_url is set, else the store's), so a backfill enqueued
    with --no-wait finishes its job without this command; --status JOB shows how far it is.
    """
    # imported here: the other commands plan no backfill (issue 16, start-up)
    from data_pipeline.backfill import (
        backfill_units,
        plan_backfill,
        resume_backfill,
        start_backfill,
    )
    from data_pipeline.ledger import open_ledger
    from etl_core.work import unit_sender

    session = cli.session(ctx, database_url="database_url", executor="executor")
    if status is not None:
        if from_ or to or resume or only_failed or dry_run or no_wait or lookback:
            raise ConfigError("--status JOB takes no other backfill option but --dataset", [])
        _show_backfill(session, dataset, status)
        return
    # the broker reached before the job starts: a job whose units cannot be sent stays unmade
    sender = unit_sender(session.settings, LANE, "--no-wait") if no_wait else None
    contract = _contract(session, dataset)
    if only_failed and not resume:
        raise ConfigError("--only-failed needs --resume JOB", [])
    if resume and (from_ or to or lookback):
        raise ConfigError(
            f"--resume {resume} redoes the dates the job was started with",
            [
                FieldError(
                    "--from/--to/--lookback", "expected none of them with --resume", "command line"
                )
            ],
        )
    if not resume and (from_ is None or to is None):
        raise ConfigError("backfill needs --from and --to (or --resume JOB)", [])
    load = not no_load and contract.load is not None
    if not no_load:
        _note_unloaded([contract])
    if load:
        url = session.settings.database_url
        db.connect(url, feature="etl-data-pipeline backfill (loads; --no-load skips them)")
        _check_load_tables(session, [contract])
    with session.open_store() as store:
        if dry_run:
            if from_ is None or to is None:
                raise ConfigError("--dry-run needs --from and --to", [])
            plan = plan_backfill(
                store,
                contract,
                _date(from_, "--from"),
                _date(to, "--to"),
                lookback=lookback,
                load=load,
            )
            from rich.table import Table

            table = Table("dt", "objects", "bytes")
            for item in plan:
                table.add_row(item.dt.isoformat(), str(item.objects), str(item.bytes))
            out.print(table)
            total = sum(item.bytes for item in plan)
            out.print(f"dry run: {len(plan)} partition(s), {total} bytes of input; nothing written")
            return
        parameters = {"from": from_, "to": to, "resume": resume, "load": load}
        run = session.record_run("backfill", dataset=dataset, parameters=parameters)
        if sender is None:
            session.exports_metrics_as(BACKFILL_JOB)
        _connect_for_joins(session, [contract])
        remove_abandoned_writes(store, timedelta(seconds=session.settings.lease_seconds))
        remote = session.settings.executor == "celery"  # the workers' ledger is this one
        ledger = open_ledger(store, session.settings.database_url if load or remote else None)
        sizes: dict[date, int] | None = None  # a resumed job's sizes are not known
        executor_kind = session.settings.executor
        elsewhere = _other_ledgers(store, session, ledger)
        if resume and not load:
            ledger, elsewhere = _no_load_job_kept_in_the_database(
                ledger, elsewhere, dataset, resume
            )
        if resume:
            job = resume_backfill(
                ledger,
                contract,
                resume,
                executor=executor_kind,
                no_load=not load,  # what the job does: a contract without [load] too
                elsewhere=elsewhere,
            )
        else:
            assert from_ is not None
            assert to is not None
            start, end = _date(from_, "--from"), _date(to, "--to")
            plan = plan_backfill(store, contract, start, end, lookback=lookback, load=load)
            job = start_backfill(
                ledger,
                contract,
                start,
                end,
                plan,
                max_attempts=session.settings.max_attempts,
                lookback=lookback,
                executor=executor_kind,
                no_load=not load,  # what the job does: a contract without [load] too
                elsewhere=elsewhere,
            )
            sizes = {item.dt: item.bytes for item in plan}
            if not plan:  # a mistyped year is a job with nothing to do: say so
                cli.notice(
                    f"no partition of {dataset} has validated input from "
                    f"{job.start} to {end}: the backfill has nothing to do",
                    level=logging.WARNING,
                    fields={"dataset": dataset},
                )
        cli.notice(
            f"backfill job {job.job_id} ({ledger.kind} ledger)",
            fields={"dataset": dataset, "backfill_job": job.job_id},
        )
        if sender is not None:  # the workers finish the job: its lease is released
            units = backfill_units(contract, job, only_failed=only_failed, load=load, sizes=sizes)
            _enqueue(session, sender, units)
            ledger.hand_over(job.job_id)
            run.count(inputs=len(units))
            return
        summary = _run_with_progress(
            store, contract, session, ledger, job, concurrency, only_failed, load, sizes
        )
    run.count(
        inputs=summary.succeeded + summary.failed + summary.skipped,
        outputs=summary.succeeded,
        failed=summary.failed,
        rows_written=summary.rows,
    )
    if summary.interrupted:
        run.note_error("interrupted; resume with --resume")
    session.push_metrics(BACKFILL_JOB)
    out.print(
        f"backfill job {summary.job_id}: {summary.succeeded} succeeded, {summary.failed} failed, "
        f"{summary.skipped} already done, {summary.rows} rows"
        + (f", {summary.withdrawn} withdrawn" if summary.withdrawn else "")
        + (" (interrupted; resume with --resume)" if summary.interrupted else "")
    )
    if summary.interrupted:
        cli.interrupted()
    if summary.failed:
        raise typer.Exit(ExitCode.FAILED)


def _no_load_job_kept_in_the_database(
    ledger: Ledger, elsewhere: list[Callable[[], Ledger]], dataset: str, job_id: str
) -> tuple[Ledger, list[Callable[[], Ledger]]]:
    """The ledger a ``--no-load`` resume of job ``job_id`` uses: the store's, unless only
    the database keeps the job and it was started ``--no-load`` (the releases before sent
    such a job there when ``DATABASE_URL`` was set): resumed there, the store's ledger then
    the other one. Anything else is as given (a refusal names the ledger keeping it)."""
    from data_pipeline.backfill import JOB_ID

    if not JOB_ID.fullmatch(job_id):  # refused by the resume, naming the id
        return ledger, elsewhere
    if ledger.kind != "store" or ledger.get(job_id) is not None:
        return ledger, elsewhere
    for opener in elsewhere:
        other = opener()
        job = other.get(job_id)
        if job is None or job.dataset != dataset or other.kind != "database":
            continue
        if job.parameters.get("no_load") is True:
            return other, [lambda: ledger]
    return ledger, elsewhere


def _other_ledgers(
    store: ObjectStore, session: Session[PipelineSettings], ledger: Ledger
) -> list[Callable[[], Ledger]]:
    """The ledger a backfill command does not use (the store's, or the database's when one
    is configured and migrated): where a resume asked with other options finds its job,
    and where a job started with other options may run on the same days."""
    from data_pipeline.ledger import StoreLedger, open_ledger

    if ledger.kind != "store":
        return [partial(StoreLedger, store)]
    url = session.settings.database_url
    if url and db.schema_installed():
        return [partial(open_ledger, store, url)]
    return []


def _show_backfill(session: Session[PipelineSettings], dataset: str, job_id: str) -> None:
    """Print job ``job_id``'s partitions from whichever ledger holds it, and what it is
    doing now (:mod:`data_pipeline.backfill_status`); exit 1 if it failed or stalled."""
    from rich.table import Table

    from data_pipeline.backfill import find_backfill_job
    from data_pipeline.backfill_status import STALLED, job_status
    from data_pipeline.ledger import StoreLedger, open_ledger
    from data_pipeline.work import shown_state

    with session.open_store() as store:
        # the store's ledger first: a job made there (--no-load) needs no database
        ledgers: list[Callable[[], Ledger]] = [partial(StoreLedger, store)]
        url = session.settings.database_url
        if url and db.schema_installed():
            ledgers.append(partial(open_ledger, store, url))
        ledger, job = find_backfill_job(ledgers, dataset, job_id)
        status = job_status(store, job)
    table = Table("dt", "state", "attempts", "rows", "error / note")
    for part in job.partitions:
        rows = "" if part.rows is None else str(part.rows)
        table.add_row(part.dt.isoformat(), shown_state(part), str(part.attempts), rows, part.error)
    out.print(table)
    counts = Counter(shown_state(part) for part in job.partitions)
    tally = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    out.print(
        f"backfill job {job.job_id} ({ledger.kind} ledger) {job.start} .. {job.end}: "
        f"{status.state}; {tally or 'no partitions'}"
    )
    if status.detail:
        out.print(f"{status.state}: {status.detail}", soft_wrap=True, markup=False)
    if status.resume:
        out.print(f"resume it with: {status.resume}", soft_wrap=True, markup=False)
    if status.state in ("failed", STALLED):
        raise typer.Exit(ExitCode.FAILED)


def _run_with_progress(
    store: ObjectStore,
    contract: Contract,
    session: Session[PipelineSettings],
    ledger: Ledger,
    job: BackfillJobRecord,
    concurrency: int,
    only_failed: bool,
    load: bool,
    sizes: dict[date, int] | None,
) -> BackfillSummary:
    """Run the backfill with a progress bar on a terminal (progress log lines otherwise),
    the largest partitions first when their ``sizes`` are known."""
    from data_pipeline.backfill import run_backfill
    from data_pipeline.tasks import partition_outcome
    from data_pipeline.work import PipelineContext
    from etl_core.work import DEFAULT_POLICY, ThreadExecutor, unit_executor

    total = sum(
        p.state in ({"failed"} if only_failed else {"pending", "running", "failed", "cancelled"})
        for p in job.partitions
    )
    with cli.progress(f"backfill {contract.dataset}", item="partition") as progress:
        progress.plan(total)

        def advance(record: BackfillPartitionRecord) -> None:
            progress.finish(str(record.dt))

        context = PipelineContext(
            store, ContractSet((contract,)), session.settings, session.run_id, ledger
        )
        policy = DEFAULT_POLICY.with_options(attempts=job.max_attempts)
        chosen = unit_executor(
            session.settings,
            LANE,
            local=lambda: ThreadExecutor(concurrency, policy=policy),
            decode=partition_outcome,
            scratch=True,
        )
        return run_backfill(
            context,
            contract,
            job,
            chosen,
            only_failed=only_failed,
            load=load,
            progress=advance,
            sizes=sizes,
        )


def _enqueue(
    session: Session[PipelineSettings], sender: CeleryExecutor, units: list[WorkUnit]
) -> None:
    """Hand ``units`` to the broker's workers (``--no-wait``) and say so."""
    from etl_core.work.celery import lane_queues

    for unit in units:
        sender.submit(unit)
    queue = lane_queues(session.settings, LANE).work
    out.print(f"enqueued {len(units)} partition(s) on queue {queue}", highlight=False)
