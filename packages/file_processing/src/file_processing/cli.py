"""``etl-file-processing``: inbound vendor files — unpack, decrypt, check, quarantine."""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from etl_core.cli import LaneTask, RuntimeCLI
from etl_core.config_files import not_regular
from etl_core.contracts import ContractError, ContractSet, declared_datasets, load_contracts
from etl_core.errors import NotAnObjectError, ObjectNotFoundError
from etl_core.layout import (
    LANDING,
    QUARANTINE,
    UNKNOWN_DATASET,
    quarantine_prefix,
    strip_zone,
    zone_of,
    zone_prefix,
)
from etl_core.progress import BYTES, WorkProgress
from etl_core.runtime import ExitCode, Session
from etl_core.secrets import Secret
from etl_core.storage import ObjectStore, shown_location, store_identity
from file_processing import db
from file_processing.checks import expression_problems
from file_processing.decrypt import Decryptor
from file_processing.delivery import Encryption, open_delivery
from file_processing.errors import FileProcessingError, QualityEngineError, RefusedError
from file_processing.ledger import Ledger
from file_processing.names import escaped, is_addressable, key_problem
from file_processing.process import Outcome, Processor
from file_processing.quarantine import QuarantineRecord, list_quarantined, read_record, release
from file_processing.reasons import Reason, describe
from file_processing.scan import DoneObjects, Failure, ScanSummary, enqueue, scan
from file_processing.settings import FileProcessingSettings
from file_processing.sniff import SNIFF_SIZE, sniff
from file_processing.unpack import Packing
from file_processing.work import LANE, outcome_from_dict, run_unit, transform_validated

if TYPE_CHECKING:  # imported by the commands that use them (issue 16, start-up)
    from rich.table import Table

    from etl_core.events import SqsQueue
    from etl_core.work import Executor, RunUnit, UnitResult
    from etl_core.work.celery import CeleryExecutor

cli = RuntimeCLI(
    name="etl-file-processing",
    lane="file_processing",
    help="Inbound vendor files: unpack, decrypt, data-quality analysis, quarantine.",
    settings=FileProcessingSettings,
    validators=[expression_problems],
    recorder=db.run_recorder,
)
app, out, err = cli.app, cli.out, cli.err
main = cli.main
quarantine_app = typer.Typer(
    help="Inspect quarantined files and release them for reprocessing.", no_args_is_help=True
)
app.add_typer(quarantine_app, name="quarantine")

Settings = Session[FileProcessingSettings]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Also record runs and outcomes in this database (default: the database_url "
        "setting; needs the 'schema' extra).",
    ),
]


LISTEN_JOB = "etl_file_processing_listen"
"""The job ``listen`` exports its metrics as (its Pushgateway group)."""
PROCESS_JOB = "etl_file_processing_process"
"""The job ``process`` exports its metrics as, however it ends."""
SCAN_JOB = "etl_file_processing_scan"
"""The job ``scan`` exports its metrics as, however it ends (not with ``--no-wait``: the
workers count the objects it enqueues)."""


@app.command()
def reasons(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The reason codes a refused or quarantined file can carry."""
    if as_json:
        _print_json({code.value: describe(code) for code in Reason})
        return
    table = _whole_table("reason code", "meaning")
    for code in Reason:
        table.add_row(code.value, describe(code))
    out.print(table)


KeyRef = Annotated[
    str | None,
    typer.Option("--key", help="Secret key reference (env:NAME or file:/path), ASCII-armoured."),
]
PassphraseRef = Annotated[
    str | None, typer.Option("--passphrase", help="Passphrase reference (env:NAME or file:/path).")
]


def _delivered_file(path: Path) -> Path:
    """The ``inspect`` argument, a regular file (symlinks followed): a FIFO would be waited
    on for a writer for ever, a device or socket read as no delivery is."""
    found = not_regular(path.stat().st_mode)  # exists=True: it does (a stat waits for none)
    if found is not None:
        raise typer.BadParameter(f"{path}: it is {found}, not a regular file (a delivery)")
    return path


@app.command()
def inspect(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, callback=_delivered_file, help="A delivered file."
        ),
    ],
    packing: Annotated[Packing, typer.Option(help="What the contract declares.")] = Packing.AUTO,
    encryption: Annotated[
        Encryption, typer.Option(help="What the contract declares.")
    ] = Encryption.AUTO,
    key: KeyRef = None,
    passphrase: PassphraseRef = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Open a delivery locally as processing would: its members, or why it would be refused.

    Nothing is written anywhere; exit code 3 when the file would be refused.
    """
    with contextlib.ExitStack() as stack:
        decryptor = None
        if key is not None:
            secret = Secret(key).reveal().encode()
            phrase = Secret(passphrase).reveal() if passphrase else None
            decryptor = stack.enter_context(Decryptor(secret, passphrase=phrase))
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="inspect-"))
        try:
            members = [
                {"member": m.path, "bytes": m.size, "content": _content_kind(m.file)}
                for m in open_delivery(
                    path,
                    name=path.name,
                    packing=packing,
                    encryption=encryption,
                    decryptor=decryptor,
                    workdir=scratch,
                )
            ]
        except RefusedError as exc:
            _report_refusal(path, exc, as_json)
            raise typer.Exit(ExitCode.PARTIAL) from None
    if as_json:
        _print_json({"file": str(path), "status": "ok", "members": members})
        return
    from rich.filesize import decimal as human_size

    table = _whole_table("member", "size", "content", title=str(path))
    for m in members:
        # a member's name is the vendor's: no escape sequence of it reaches the terminal
        member = escaped(str(m["member"]))
        table.add_row(member, human_size(int(str(m["bytes"]))), str(m["content"]))
    out.print(table)


def _content_kind(file: Path) -> str:
    with file.open("rb") as stream:
        return sniff(stream.read(SNIFF_SIZE)).value


def _report_refusal(path: Path, exc: RefusedError, as_json: bool) -> None:
    if as_json:
        refusal = {"code": str(exc.reason), "message": exc.message, "member": exc.member}
        _print_json({"file": str(path), "status": "refused", "reason": refusal})
        return
    from rich.text import Text

    out.print(
        Text.assemble(
            ("refused", "red"), f" {path}: ", (str(exc.reason), "bold"), f" {exc.message}"
        )
    )


# ---------------------------------------------------------------- processing


@app.command()
def process(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(help="A landing key (landing/<source>/<file>), or its URL or local path."),
    ],
    force: Annotated[bool, typer.Option("--force", help="Process again even if done.")] = False,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Process one landing object: validated with its report, or quarantined with its reason.

    Exit code 3 when it was quarantined.
    """
    session = cli.session(ctx, database_url="database_url")
    run = session.record_run("process", parameters={"key": key, "force": force})
    session.exports_metrics_as(PROCESS_JOB)
    with session.open_store() as store, _processor(session, store) as processor:
        landing_key = _key_in_store(store, key)
        _addressable_key(landing_key)
        processor.remove_abandoned_writes()
        if not as_json:
            out.import_ahead("rich.table")  # for the outcome table, while the file is checked
        try:
            outcome = processor.process(landing_key, force=force)
        except ObjectNotFoundError as exc:
            # a FIFO, a directory at the key of a local store: say what is there
            there = (
                f": the path there is {exc.found}, not a regular file"
                if isinstance(exc, NotAnObjectError)
                else ""
            )
            shown = store.location_for(landing_key)
            cli.notice(f"no such object: {shown}{there}", level=logging.ERROR)
            run.note_error(f"no such object: {landing_key}{there}")
            raise typer.Exit(ExitCode.USAGE) from None
        except QualityEngineError as exc:  # the run failed, not the file: it stays in line
            cli.notice(f"error: {exc}", level=logging.ERROR)
            run.note_error(str(exc))
            raise typer.Exit(ExitCode.FAILED) from None
        except FileProcessingError as exc:
            cli.notice(f"error: {exc}", level=logging.ERROR)
            run.note_error(str(exc))
            raise typer.Exit(ExitCode.USAGE) from None
    run.count(**_counts([outcome]))
    session.push_metrics(PROCESS_JOB)
    if as_json:
        _print_json(outcome.to_dict())
    else:
        out.print(_outcome_table([outcome], title=landing_key))
        for closed in outcome.superseded:  # keys as they are, never read as markup
            out.print(
                f"quarantine {escaped(closed['key'])} closed as {closed['closed_by']}",
                markup=False,
                highlight=False,
            )
    if outcome.status == "quarantined":
        raise typer.Exit(ExitCode.PARTIAL)


@app.command("scan")
def scan_command(
    ctx: typer.Context,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Only this dataset's landing files.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, max=256, help="Objects at once (setting).")
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            help="local: a pool of this process; celery: the broker's workers (setting).",
        ),
    ] = None,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="With --executor celery: enqueue each object not yet done, return.",
        ),
    ] = False,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Process every unprocessed landing object, in parallel, then print a summary.

    Exit code 3 when some were quarantined, 1 when some could not be processed.
    """
    session = cli.session(ctx, database_url="database_url", executor="executor")
    settings = session.settings
    from etl_core.work import unit_sender  # the executors: scan's, not process's (issue 16)

    # refused without the celery executor as every lane refuses it; else the broker said at once
    sender = unit_sender(settings, LANE, "--no-wait") if no_wait else None
    workers = concurrency or settings.concurrency
    parameters = {"concurrency": workers, "executor": settings.executor}
    run = session.record_run("scan", dataset=dataset or "", parameters=parameters)
    if sender is None:
        session.exports_metrics_as(SCAN_JOB)
    with session.open_store() as store, _processor(session, store) as processor:
        if dataset is not None:
            _known_dataset(processor.contracts, dataset)
        if sender is not None:
            from etl_core.work.celery import lane_queues

            count = enqueue(processor, sender.submit, dataset=dataset)
            run.count(inputs=count)
            queue = lane_queues(settings, LANE).work
            out.print(f"enqueued {count} landing object(s) on queue {queue}", highlight=False)
            return
        with cli.progress("scan", item="landing object", unit=BYTES) as progress:
            summary = scan(
                processor,
                _executor(session, workers),
                dataset=dataset,
                **_byte_progress(processor, progress),
            )
    run.count(**_counts(summary.outcomes))
    run.count(inputs=len(summary.failures), failed=len(summary.failures))
    if summary.failures:
        run.note_error("; ".join(f"{f.key}: {f.error}" for f in summary.failures))
    session.push_metrics(SCAN_JOB)
    _print_summary(summary, as_json)
    if summary.failures:
        raise typer.Exit(ExitCode.FAILED)
    if summary.count("quarantined"):
        raise typer.Exit(ExitCode.PARTIAL)


def _executor(session: Settings, workers: int) -> Executor:
    """Where ``scan`` runs its units: the ``executor`` setting's choice."""
    from etl_core.work import ThreadExecutor, unit_executor

    return unit_executor(
        session.settings,
        LANE,
        local=lambda: ThreadExecutor(workers),
        decode=outcome_from_dict,
        scratch=True,
    )


def _celery_executor(session: Settings) -> CeleryExecutor:
    """Units as tasks on the lane's queue, at most 256 enqueued and not yet ended."""
    from etl_core.work.celery import CeleryExecutor, celery_app  # the broker's path only

    return CeleryExecutor(celery_app(session.settings, LANE), decode=outcome_from_dict, window=256)


@app.command()
def listen(
    ctx: typer.Context,
    queue: Annotated[
        str, typer.Option("--queue", help="The SQS queue URL S3 sends ObjectCreated events to.")
    ],
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            help="local: process each object here; celery: enqueue it for the workers (setting).",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", min=1, max=256, help="Objects at once, local (setting)."),
    ] = None,
    dead_letter_queue: Annotated[
        str | None,
        typer.Option("--dead-letter-queue", help="SQS queue URL for unusable messages (setting)."),
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", min=1, help="Stop after this many messages.")
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option("--idle-exit", min=0, help="Stop after this many seconds without a message."),
    ] = None,
    wait_seconds: Annotated[
        int | None,
        typer.Option("--wait-seconds", min=0, max=20, help="Long polling per receive (setting)."),
    ] = None,
    as_json: AsJson = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Process (or enqueue) each landing object S3 announces on an SQS queue, until stopped.

    A message is deleted once its objects were processed or enqueued; duplicates are
    harmless. SIGTERM or Ctrl-C: the batch in hand ends, then the command exits.
    """
    from etl_core.events import Disposition, QueueError, QueueMessage, consume
    from file_processing.listen import (
        NotificationHandler,
        enqueue_units,
        run_units,
        store_location,
    )

    session = cli.session(
        ctx,
        database_url="database_url",
        executor="executor",
        dead_letter_queue="listen_dead_letter_queue",
        wait_seconds="listen_wait_seconds",
    )
    settings = session.settings
    run = session.record_run("listen", parameters={"queue": queue, "executor": settings.executor})
    session.exports_metrics_as(LISTEN_JOB)
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(session.open_store())
        store_location(store)  # a store S3 sends no notifications for: refused before any work
        processor = stack.enter_context(_processor(session, store))
        if settings.executor == "celery":
            cli.reach_broker(settings, meanwhile="notifications are kept until it answers")
            units = enqueue_units(_celery_executor(session).submit)
        else:  # as scan does: what a killed run left half-written goes first
            processor.remove_abandoned_writes()
            from etl_core.work import ThreadExecutor

            units = run_units(processor, ThreadExecutor(concurrency or settings.concurrency))
        handler = NotificationHandler(processor, units)

        def handle_and_export(messages: Sequence[QueueMessage]) -> Sequence[Disposition]:
            """A batch handled, then its metrics exported (not to the Pushgateway until the
            end): a listener runs for days, its metrics go out as it works."""
            try:
                return handler(messages)
            finally:
                session.export_metrics(LISTEN_JOB, pushgateway=False, close=False)

        source = stack.enter_context(_queue(settings, queue))
        dead = settings.listen_dead_letter_queue
        dead_letter = stack.enter_context(_queue(settings, dead)) if dead else None
        try:
            stats = consume(
                source,
                handle_and_export,
                dead_letter=dead_letter,
                max_receives=settings.listen_max_receives,
                max_messages=max_messages,
                idle_exit=idle_exit,
            )
        except QueueError as exc:
            cli.notice(f"error: {exc}", level=logging.ERROR)
            run.note_error(str(exc))
            raise typer.Exit(ExitCode.USAGE) from None
    tally = handler.tally
    run.count(inputs=stats.received, outputs=sum(tally.done.values()), failed=tally.failed)
    session.export_metrics(LISTEN_JOB)
    messages = {"received": stats.received, "deleted": stats.deleted, "kept": stats.kept,
                "dead_lettered": stats.dead_lettered}  # fmt: skip
    objects = {**dict(sorted(tally.done.items())), "ignored": tally.ignored, "failed": tally.failed}
    if as_json:
        _print_json({"messages": messages, "objects": objects, "test_events": tally.test_events})
        return
    out.print(
        ", ".join(f"{n} {what}" for what, n in messages.items()) + " message(s); "
        + ", ".join(f"{n} {what}" for what, n in objects.items()) + " object(s)",
        highlight=False,
    )  # fmt: skip


def _queue(settings: FileProcessingSettings, url: str) -> SqsQueue:
    from etl_core.events import SqsQueue

    return SqsQueue(
        url,
        endpoint_url=str(settings.sqs_endpoint_url) if settings.sqs_endpoint_url else None,
        region=settings.s3_region,
        wait_seconds=settings.listen_wait_seconds,
        visibility_timeout=int(settings.listen_visibility_timeout.total_seconds()),
        connect_timeout=settings.s3_connect_timeout,
    )


def _worker_task(session: Settings) -> LaneTask[Outcome]:
    """What ``worker`` runs: each landing object processed by the worker process's own
    store and processor, then its validated partition's transform enqueued (a setting)."""
    url = session.settings.database_url
    mirrored = bool(url) and db.schema_installed()  # as _processor: each unit's outcome
    storage = str(session.settings.storage_url)
    store = store_identity(storage) or storage
    return LaneTask(
        partial(_worker_run_unit, session),
        encode=Outcome.to_dict,
        on_result=_after_unit(session),
        # a login the server refuses stops the worker at start, not every object it takes;
        # another deployment's rows are said there, once: its processes inherit that it was
        check=partial(db.check_login, str(url), store=store) if mirrored else None,
    )


cli.add_worker(
    _worker_task,
    help="Process landing objects from the file_processing queue of the broker until "
    "stopped.\n\nSIGTERM or Ctrl-C: a warm shutdown (the objects in hand finish, no new one "
    "is taken).",
    concurrency_help="Landing objects at once, one process each (default: the concurrency "
    "setting).",
    max_concurrency=256,
    concurrency=lambda settings: settings.concurrency,
    scratch=True,
    database_url_help="Also record runs and outcomes in this database (default: the "
    "database_url setting; needs the 'schema' extra).",
)


def _after_unit(session: Settings) -> Callable[[UnitResult[Outcome]], None] | None:
    """What a worker does after each object: enqueue a validated partition's transform."""
    if not session.settings.chain_transforms:
        return None
    from etl_core.work.celery import CeleryExecutor, celery_app  # the broker's path only
    from etl_core.work.celery.origin import store_only

    # the partition loads into the pipeline workers' database, not this lane's: store only
    sender = CeleryExecutor(store_only(celery_app(session.settings, LANE)))
    return transform_validated(sender.submit)


@app.command()
def schedule(
    ctx: typer.Context,
    max_ticks: Annotated[
        int | None,
        typer.Option("--max-ticks", min=1, help="Stop after this many ticks (default: never)."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Enqueue new landing objects every schedule_scan_interval, while leading.

    One scheduler leads at a time (a lease in the store); others stand by and take over
    when it stops. Needs ETL_EXECUTOR=celery (this command has no --executor flag): units
    go to the workers.
    """
    from etl_core.scheduler import Job, every
    from etl_core.work import require_broker

    session = cli.session(ctx, database_url="database_url")
    settings = session.settings
    require_broker(settings, "schedule", flag=False)
    submit = _celery_executor(session).submit
    with session.open_store() as store, _processor(session, store) as processor:
        # the ledger's records read at one scan are read again only once changed
        scan_once = partial(enqueue, processor, submit, done=DoneObjects(processor.ledger))
        scan_job = Job("scan", every(settings.schedule_scan_interval), scan_once)
        cli.run_scheduler(session, store, [scan_job], max_ticks=max_ticks)


def _worker_run_unit(session: Settings, opened: contextlib.ExitStack) -> RunUnit[Outcome]:
    """A worker process's ``run_unit``: its own store and processor, from its settings."""
    store = opened.enter_context(session.open_store())
    processor = opened.enter_context(_processor(session, store))
    return partial(run_unit, processor)


def _byte_progress(processor: Processor, progress: WorkProgress) -> dict[str, Any]:
    """``scan``'s callbacks measuring bytes: half of an object's bytes as it downloads,
    the other half when it is finished (checked and published or quarantined), so one
    large object moves the bar while it is worked on."""
    sizes: dict[str, int] = {}

    def planned(found: Mapping[str, int]) -> None:
        sizes.update(found)
        progress.plan(len(found), amount=sum(found.values()))

    def done(result: Outcome | Failure) -> None:
        progress.finish(result.key, sizes.get(result.key, 0))

    processor.on_read = lambda key, size: progress.advance(key, size / 2)
    return {"on_planned": planned, "on_done": done}


def _processor(session: Settings, store: ObjectStore) -> Processor:
    settings = session.settings
    contracts = load_contracts(
        settings.config_dir,
        validators=[expression_problems],
        memo_dir=settings.contract_memo_dir(),
    )
    processor = Processor(store, contracts, session.settings, run_id=session.run_id)
    if _database(session.settings.database_url):
        db.warn_other_stores(store.identity)  # another deployment's database: said, once
        processor.mirror = db.record_outcome
    return processor


def _counts(outcomes: list[Outcome]) -> dict[str, int]:
    """What a run records of its outcomes: objects seen, validated, quarantined, rows out."""
    validated = [o for o in outcomes if o.status == "validated"]
    return {
        "inputs": len(outcomes),
        "outputs": len(validated),
        "quarantined": sum(1 for o in outcomes if o.status == "quarantined"),
        "rows_written": sum(o.rows for o in validated),
    }


def _database(database_url: str | None) -> bool:
    """Connect the database mirror when a URL is given and the extra is installed."""
    if not database_url:
        return False
    if not db.schema_installed():
        cli.notice(
            "database_url is set but the 'schema' extra is not installed "
            "(pip install 'etl-file-processing[schema]'): the ledger stays in _state/ only",
            level=logging.WARNING,
            style="yellow",
        )
        return False
    db.connect(database_url)
    return True


def _known_dataset(contracts: ContractSet, dataset: str) -> None:
    try:
        contracts.get(dataset)
    except ContractError:
        known = ", ".join(c.dataset for c in contracts) or "none"
        cli.notice(f"unknown dataset {dataset!r} (contracts: {known})", level=logging.ERROR)
        raise typer.Exit(ExitCode.USAGE) from None


def _key_in_store(store: ObjectStore, key: str) -> str:
    """``key`` relative to the store: a key as given, or a URL or (local store) a path
    inside the store, as a message named the object (:meth:`ObjectStore.key_at`). A
    relative path starting with ``./`` or ``../`` (what a shell completes) is no key: it
    is read from the working directory. A key with such a segment further in
    (``landing/v/../x.csv``) stays a key, which the store cannot address."""
    location = key
    if "://" not in key and not os.path.isabs(key):
        if key.split("/", 1)[0] not in {".", ".."}:
            return key
        location = os.path.join(os.getcwd(), key)  # its '..' read by key_at, after links
    found = store.key_at(location)
    if found is None:
        shown = shown_location(store.url)
        cli.notice(f"{key} is not inside the store {shown}", level=logging.ERROR)
        raise typer.Exit(ExitCode.USAGE)
    return found


def _addressable_key(key: str) -> None:
    """Refuse, as bad usage, a key argument the store cannot address (``scan`` quarantines
    objects stored under such keys; one cannot be named on the command line)."""
    problem = key_problem(key)
    if problem is not None and not is_addressable(key):
        cli.notice(
            f"error: {escaped(key)!r} is not a key the store can address ({problem.detail}); "
            f"`scan` quarantines objects stored under such keys as {problem.reason.value}",
            level=logging.ERROR,
        )
        raise typer.Exit(ExitCode.USAGE)


def _print_json(data: object) -> None:
    """Print ``data`` as indented JSON on stdout, written as is: rich's ``print_json``
    highlights token by token and took 2 GB for the outcome of a 10,000-member zip."""
    out.file.write(json.dumps(data, default=str, indent=2) + "\n")
    out.file.flush()


def _whole_table(*headers: str, title: str | None = None) -> Table:
    """A table of ``headers`` whose cells are shown whole: text wraps at its spaces and a
    word wider than its column (a key, a member's name, a reason code) is folded over
    lines, never cut short with an ellipsis (Rich's default), so an operator can copy it
    (``quarantine show`` takes the key ``quarantine list`` shows)."""
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold", no_wrap=False)
    return table


def _outcome_table(outcomes: list[Outcome], *, title: str | None = None) -> Table:
    from rich.text import Text

    table = _whole_table(
        "landing key", "status", "dt", "rows", title=escaped(title) if title else None
    )
    table.add_column("reason / detail", min_width=len("archive.path_traversal"), overflow="fold")
    for o in outcomes:
        style = {"validated": "green", "quarantined": "red"}.get(o.status, "yellow")
        table.add_row(
            escaped(strip_zone(o.key, LANDING)),
            Text(o.metric_outcome, style=style),
            o.partition or "-",
            str(o.rows) if o.rows else "-",
            o.reason["code"] if o.reason else o.detail or "-",
        )
    return table


def _print_summary(summary: ScanSummary, as_json: bool) -> None:
    counts = summary.counts()
    if as_json:
        data = {
            "counts": counts,
            "by_reason": dict(summary.by_reason()),
            "superseded": summary.superseded(),
            "revalidated": summary.revalidated(),
            "outcomes": [o.to_dict() for o in summary.outcomes],
            "failures": [{"key": f.key, "error": f.error} for f in summary.failures],
        }
        _print_json(data)
        return
    done = [o for o in summary.outcomes if not o.detail.startswith("already ")]
    if done:
        out.print(_outcome_table(done))
    from rich.text import Text

    for failure in summary.failures:
        said = Text.assemble(("failed", "red"), f" {escaped(failure.key)}: {failure.error}")
        out.print(said, highlight=False)
    # settling is said when there is some: most stores never set landing_min_age
    line = ", ".join(
        f"{n} {outcome}" for outcome, n in counts.items() if n or outcome != "settling"
    )
    if summary.superseded():
        line += f"; {summary.superseded()} earlier quarantine(s) closed as superseded"
    if summary.revalidated():
        line += f"; {summary.revalidated()} quarantine(s) closed as revalidated"
    out.print(line)


# ---------------------------------------------------------------- quarantine


@quarantine_app.command("list")
def quarantine_list(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only this dataset.")] = None,
    released: Annotated[
        bool,
        typer.Option(
            "--released",
            help="Include closed records: released, superseded by a later validated "
            "delivery of the same key, or revalidated (the same delivery validated again).",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Quarantined files with their reason codes (open ones unless --released).

    A record is closed when it was released, superseded (a later delivery of the same
    landing key, another ETag, was validated: its ``released`` column says ``superseded``)
    or revalidated (the same delivery, processed again with ``process --force``, was
    validated: ``revalidated``).
    """
    session = cli.session(ctx)
    if dataset:  # an empty one lists every dataset, as before
        try:
            quarantine_prefix(dataset)
        except ValueError as exc:
            cli.notice(f"--dataset: {escaped(str(exc))}", level=logging.ERROR)
            raise typer.Exit(ExitCode.USAGE) from None
    with session.open_store() as store:
        records = list(list_quarantined(store, dataset=dataset, include_released=released))
        if dataset and not records:
            _refuse_undeclared(store, dataset, session.settings.config_dir)
    if as_json:
        _print_json([r.to_dict() for r in records])
        return
    table = _whole_table("quarantined object", "quarantined at", "released")
    table.add_column("reason", min_width=len("archive.path_traversal"), overflow="fold")
    for r in records:
        table.add_row(
            strip_zone(r.key, QUARANTINE),
            r.quarantined_at,
            _closed_column(r),
            r.reason,
        )
    out.print(table)
    out.print(f"{len(records)} quarantined file(s); 'quarantine show KEY' gives the reason in full")


def _refuse_undeclared(store: ObjectStore, dataset: str, config_dir: Path) -> None:
    """Refuse (exit 2) ``--dataset`` when no contract declares it and nothing was ever
    quarantined under it: a typo, not "nothing refused". A dataset whose contract was
    removed keeps its records (listed), and one the contracts cannot be read for now
    (:func:`declared_datasets` is ``None``) is listed empty as before."""
    if dataset == UNKNOWN_DATASET or any(True for _ in store.list(quarantine_prefix(dataset))):
        return
    declared = declared_datasets(config_dir)
    if declared is None or dataset in declared:
        return
    close = difflib.get_close_matches(dataset, sorted(declared), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    cli.notice(
        f"--dataset: no contract in {config_dir} declares dataset {escaped(dataset)!r} and "
        f"nothing was ever quarantined under it (contracts: {', '.join(sorted(declared))})"
        f"{hint}",
        level=logging.ERROR,
    )
    raise typer.Exit(ExitCode.USAGE)


def _closed_column(record: QuarantineRecord) -> str:
    """The ``released`` column: when, and how when no one released it by hand."""
    if record.superseded:
        return f"superseded {record.released_at}"
    if record.revalidated:
        return f"revalidated {record.released_at}"
    return record.released_at or "-"


@quarantine_app.command("show")
def quarantine_show(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            help="The quarantined object's key (or its record's), as 'quarantine list' "
            "shows it or with quarantine/ in front, or its URL or local path."
        ),
    ],
) -> None:
    """The full quarantine record of one file: reason, failed checks with samples, source."""
    session = cli.session(ctx)
    with session.open_store() as store:
        record = _record(store, key)
    _print_json(record.to_dict())


@quarantine_app.command("release")
def quarantine_release(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            help="The quarantined object's key, as 'quarantine list' shows it or with "
            "quarantine/ in front, or its URL or local path."
        ),
    ],
    by: Annotated[
        str, typer.Option("--by", envvar="USER", help="Who releases it (recorded).")
    ] = "unknown",
    note: Annotated[str | None, typer.Option("--note", help="Why (recorded).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Put a quarantined file back in line: the next scan processes its landing original.

    Fix its contract or key first; the quarantine record keeps who released it and when.
    """
    session = cli.session(ctx, database_url="database_url")
    with session.open_store() as store:
        ledger = Ledger(store, run_id=session.run_id, claim_timeout=session.settings.claim_timeout)
        found = _record(store, key)
        try:
            record = release(store, ledger, found.key, by=by, note=note)
        except FileProcessingError as exc:
            cli.notice(f"not released: {exc}", level=logging.ERROR)
            _mirror_earlier_release(session.settings.database_url, read_record(store, found.key))
            raise typer.Exit(ExitCode.USAGE) from None
    if _database(session.settings.database_url):
        _record_release(record)
    out.print(
        f"released {record.key}: {escaped(record.source_key)} will be processed by the next scan",
        highlight=False,
    )


def _record_release(record: QuarantineRecord) -> bool:
    """Record ``record``'s release on its database row; when no row matched (quarantined
    before the database was attached, or the row deleted) warn, naming the key, that the
    release is in the store only. Whether a row recorded it."""
    if db.record_release(record):
        return True
    cli.notice(
        f"{escaped(record.key)}: no database row matched this quarantine key (quarantined "
        "before the database was attached, or its row deleted): its release is recorded "
        "in the store only",
        level=logging.WARNING,
        style="yellow",
        fields={"key": record.key},
    )
    return False


def _mirror_earlier_release(database_url: str | None, record: QuarantineRecord) -> None:
    """Record again in the database a release the store already holds: an earlier
    ``release`` whose database copy failed (the database down) left the row open, and
    the ``quarantine_open`` alert firing, with no other way to close it."""
    if not (record.released and not record.superseded and not record.revalidated):
        return
    if _database(database_url) and _record_release(record):
        cli.notice(
            f"{record.key}: its release by {record.released_by} is recorded in the database "
            "(again: an earlier copy may have failed)",
            level=logging.INFO,
        )


def _record(store: ObjectStore, key: str) -> QuarantineRecord:
    """The record of ``key``: a quarantine key, or one as ``quarantine list`` shows it
    (relative to ``quarantine/``, what an operator copies from its table), or its URL or
    local path.

    Records are read under ``quarantine/`` only: a landing delivery named like a record
    (``x.csv.quarantine.json``) is none. A listed key may start with ``quarantine/``
    itself (a dataset named ``quarantine``): tried as given, then under ``quarantine/``;
    both cannot exist, since ``quarantine/<dataset>/dt=<date>/`` has a dataset name in
    its first folder, and ``dt=<date>`` is none.
    """
    key = _key_in_store(store, key)
    candidates = [key] if zone_of(key) == QUARANTINE else []
    candidates.append(zone_prefix(QUARANTINE) + key)
    for candidate in candidates:
        try:
            return read_record(store, candidate)
        except ObjectNotFoundError:
            continue
    cli.notice(f"no quarantine record for {key}", level=logging.ERROR)
    raise typer.Exit(ExitCode.USAGE) from None
