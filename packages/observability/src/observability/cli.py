"""``etl-observability``: storage, database and freshness health signals."""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.filesize import decimal as human_size
from rich.table import Table
from rich.text import Text

from etl_core.cli import LaneTask, RuntimeCLI
from etl_core.contracts import DATASETS_DIR, Contract, declared_datasets, load_contracts
from etl_core.errors import ConfigError, FieldError
from etl_core.metrics import Registry, export_through, render_prometheus
from etl_core.runtime import LANES, ExitCode, Session, start_run
from etl_core.scheduler import Job, every
from etl_core.storage import ObjectStore, store_identity
from etl_core.units import parse_duration
from etl_core.work import RunUnit, require_broker, unit_sender
from etl_core.work.celery import lane_queues
from etl_core.work.events import OBSERVABILITY as LANE
from observability import db
from observability.alerts import (
    MAX_SNOOZE,
    Alert,
    AlertBook,
    AlertNotFoundError,
    AlertStore,
    AlertWatch,
    DatabaseAlerts,
    ObjectStoreAlerts,
    carry_emptied,
)
from observability.contract_rules import VALIDATORS
from observability.database_metrics import (
    DatabaseReport,
    collect_database,
    record_database_metrics,
)
from observability.database_tables import database_tables
from observability.errors import MetricsFileError, ServeProbeError
from observability.evaluation import (
    NOTHING_JUDGED,
    DatasetStatus,
    Evaluation,
    record_monitor_metrics,
)
from observability.freshness_metrics import record_freshness_metrics
from observability.inventory import (
    ZONES,
    DatasetInventory,
    record_inventory_metrics,
    take_inventory,
)
from observability.monitors import FixedClock, SystemClock
from observability.output_files import replace_file
from observability.page import write_page
from observability.settings import ObservabilitySettings
from observability.storage_index import StorageIndex
from observability.storage_state import indexed_inventory, load_snapshot
from observability.work import MonitorContext, evaluate_with, recorded_unit, run_unit

if TYPE_CHECKING:
    from observability.service import StatusService

logger = logging.getLogger(__name__)

cli = RuntimeCLI(
    name="etl-observability",
    lane="observability",
    help="Platform monitoring: storage inventory, metrics and health signals.",
    settings=ObservabilitySettings,
    validators=VALIDATORS,
    recorder=db.run_recorder,
)
LEVEL_STYLES = {"ok": "green", "warn": "yellow", "critical": "bold red", "unknown": "dim"}
app, out, err = cli.app, cli.out, cli.err
main = cli.main
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
INVENTORY_JOB = "etl_observability_inventory"
"""The job ``inventory`` exports its metrics as, once it has taken the inventory."""
MetricsFile = Annotated[
    Path | None, typer.Option("--metrics-file", help="Also write Prometheus text here.")
]


def _write_metrics(path: Path, registry: Registry) -> None:
    """``--metrics-file``: the registry's Prometheus text, written whole or not at all, in
    a folder that exists (a misspelt collector folder is an error, not a new folder); as
    text node_exporter serves again (a summary untyped: no invented ``_sum``/``_count``).

    Raises:
        MetricsFileError: it could not be written (exit 2).
    """
    try:
        replace_file(path, render_prometheus(registry, relayed=True).encode(), make_folder=False)
    except OSError as exc:
        raise MetricsFileError(str(path), exc.strerror or str(exc)) from exc


@app.command()
def inventory(
    ctx: typer.Context,
    zone: Annotated[
        list[str] | None, typer.Option("--zone", help=f"Zones to walk {ZONES}.")
    ] = None,
    as_json: AsJson = False,
    metrics_file: MetricsFile = None,
    full: Annotated[
        bool, typer.Option("--full", help="List every zone whole now, not just what changed.")
    ] = False,
) -> None:
    """Objects, bytes and newest object per zone and dataset of the store.

    Without --zone it reads the storage index kept in the store: the recent
    partitions and landing/ are listed, every zone each storage_reconcile_interval
    or with --full.
    """
    session = cli.session(ctx)
    unknown = sorted(set(zone or ()) - set(ZONES))
    if unknown:
        cli.notice(
            f"unknown zone(s) {unknown}; expected some of {list(ZONES)}", level=logging.ERROR
        )
        raise typer.Exit(ExitCode.USAGE)
    run = session.record_run("inventory", parameters={"zones": list(zone or ZONES)})
    store = session.open_store()
    entries = take_inventory(store, zone) if zone else _indexed_inventory(session, store, full)
    run.count(inputs=sum(e.objects for e in entries), outputs=len(entries))
    registry = Registry()
    record_inventory_metrics(entries, registry, now=datetime.now(UTC))
    # from here, however it ends (an unwritable --metrics-file): a walk cut short has no
    # inventory, whose empty group would replace the last one's
    session.exports_metrics_as(INVENTORY_JOB, registry)
    if metrics_file is not None:
        _write_metrics(metrics_file, registry)
    session.export_metrics(INVENTORY_JOB, registry)
    if as_json:
        rows = [{**vars(e), "newest": e.newest.isoformat() if e.newest else None} for e in entries]
        out.print_json(json.dumps({"store": store.url, "datasets": rows}))
        return
    table = Table("zone", "dataset", "objects", "size", "newest (UTC)", title=store.url)
    for e in entries:
        newest = e.newest.strftime("%Y-%m-%d %H:%M:%S") if e.newest else "-"
        table.add_row(e.zone, e.dataset, str(e.objects), human_size(e.bytes), newest)
    if not entries:
        table.caption = _empty_caption(store, zone)
    out.print(table)


def _empty_caption(store: ObjectStore, zones: list[str] | None) -> str:
    """Why the inventory has no row: an empty store, or keys outside the platform's zones
    (the store URL names the bucket root or a parent of the store's prefix)."""
    if zones:
        return "nothing in " + ", ".join(f"{z}/" for z in zones)
    # Only reached when the zones hold (next to) nothing, so this walk is short.
    stray = next((i for i in store.list() if i.key.split("/", 1)[0] not in ZONES), None)
    if stray is None:
        return "the store is empty"
    return (
        f"no object in the platform's zones ({', '.join(ZONES)}), yet {store.url} holds "
        f"{stray.key!r}: does storage_url name the store's prefix?"
    )


def _indexed_inventory(
    session: Session[ObservabilitySettings], store: ObjectStore, full: bool
) -> list[DatasetInventory]:
    """The whole store's inventory from the storage index kept in it (saved again)."""
    settings = session.settings
    index = StorageIndex(
        store,
        recent_days=settings.storage_recent_days,
        reconcile_interval=settings.storage_reconcile_interval,
        workers=settings.storage_list_workers,
        previous=None if full else load_snapshot(store),
    )
    entries, snapshot = indexed_inventory(index, datetime.now(UTC), full=full)
    cli.notice(f"storage index: {snapshot.mode}, {snapshot.listed} object(s) listed")
    return entries


@app.command()
def database(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="The platform database (default: the database_url setting)."
        ),
    ] = None,
    as_json: AsJson = False,
    metrics_file: MetricsFile = None,
) -> None:
    """Database and ledger health from the platform database (needs the 'schema' extra).

    The health signals (running runs, open quarantine, ...), the last successful run of
    each lane, the ETL tables (rows, size, vacuum, last load), the server (size,
    connections, long-running queries) and run outcomes and durations per lane and
    dataset; ``--json`` prints all of it.
    """
    session = cli.session(ctx, database_url="database_url")
    settings = session.settings
    db.connect(settings.database_url, feature="etl-observability database")
    report = collect_database(
        _contracts_if_any(settings.config_dir),
        now=datetime.now(UTC),
        window=settings.database_window,
        long_query_after=settings.long_query_after,
    )
    latest = db.last_successes()
    registry = Registry()
    record_database_metrics(report, registry)
    if metrics_file is not None:
        _write_metrics(metrics_file, registry)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table("signal", "entries")
    for signal, count in report.signals.items():
        table.add_row(signal, str(count))
    out.print(table)
    runs = Table("lane", "last success (UTC)", "job", "dataset", "run", title="last success")
    for lane in LANES:
        last = latest.get(lane)
        if last is None or last.finished_at is None:
            runs.add_row(lane, "never", "-", "-", "-")
            continue
        runs.add_row(lane, _utc(last.finished_at), last.job, last.dataset or "-", last.run_id)
    out.print(runs)
    for shown in database_tables(report):
        out.print(shown)


def _contracts_if_any(config_dir: Path) -> list[Contract]:
    """The dataset contracts, or none when the configuration has no ``datasets/`` directory."""
    if not (Path(config_dir) / DATASETS_DIR).is_dir():
        logger.info("no dataset contracts in %s: only the ledger's tables are measured", config_dir)
        return []
    return list(load_contracts(config_dir, validators=VALIDATORS))


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


AT_YEARS = (1970, 9990)
"""The years ``--at`` may name: the monitors' windows (years of lookback, a day ahead) stay
within the calendar."""


def _instant(text: str) -> datetime:
    """An ISO 8601 instant of ``--at``; without an offset, UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        example = "2026-11-11T12:00"
        raise typer.BadParameter(f"expected an ISO 8601 time like {example}, got {text!r}") from exc
    if not AT_YEARS[0] <= moment.year <= AT_YEARS[1]:
        first, last = AT_YEARS
        expected = f"expected an instant in the years {first} to {last}"
        raise typer.BadParameter(f"{expected}, got {text!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@app.command()
def check(
    ctx: typer.Context,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Only these datasets (repeatable).")
    ] = None,
    as_json: AsJson = False,
    metrics_file: MetricsFile = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write the status page (a static HTML file) here."),
    ] = None,
    at: Annotated[
        datetime | None,
        typer.Option(
            "--at",
            parser=_instant,
            metavar="INSTANT",
            help="Evaluate as if it were this instant (ISO 8601: 2026-11-11T12:00, UTC unless "
            "an offset is given): a replay, leaving out objects stored after it; nothing goes "
            "into the freshness history.",
        ),
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option(
            "--executor",
            help="local: this process; celery: one unit per dataset on the broker's "
            "observability workers (setting).",
        ),
    ] = None,
    no_wait: Annotated[
        bool,
        typer.Option(
            "--no-wait",
            help="With --executor celery: enqueue the datasets and return; each worker "
            "records its dataset's history and alerts.",
        ),
    ] = False,
) -> None:
    """Evaluate every freshness, arrival and volume monitor once.

    Exit 0 when all are ok (some unknown: never measured), 1 when one is warn or critical,
    2 on bad configuration, 3 when nothing could be judged (every result unknown). With a
    database, each dataset's level goes into its freshness history and alerts are opened,
    updated and resolved, their notifications delivered (waiting at most
    ``alert_delivery_deadline``); not with ``--at``, a replay. ``--html`` writes the page
    ``serve`` shows at ``/``. ``--no-wait`` returns once the units are enqueued (exit 0):
    no verdict, so none of ``--at``, ``--html``,
    ``--metrics-file``, ``--json``.
    """
    session = cli.session(ctx, executor="executor")
    sender = None
    if no_wait:
        verdict = {"--at": at, "--html": html, "--metrics-file": metrics_file, "--json": as_json}
        _check_no_wait_usage(session, verdict)
        sender = unit_sender(session.settings, LANE, "--no-wait")  # the broker said at once
    contracts = load_contracts(session.settings.config_dir, validators=VALIDATORS)
    chosen = [contracts.get(name) for name in dict.fromkeys(dataset or contracts.datasets)]
    run = session.record_run("check", parameters={"datasets": [c.dataset for c in chosen]})
    if sender is not None:
        now = datetime.now(UTC)
        for contract in chosen:
            sender.submit(recorded_unit(contract.dataset, now))
        run.count(inputs=len(chosen))
        queue = lane_queues(session.settings, LANE).work
        out.print(f"enqueued {_datasets(len(chosen))} on queue {queue}", highlight=False)
        return
    store = session.open_store()
    evaluation, watch, active = _check_once(session, store, chosen, at)
    run.count(inputs=len(chosen), outputs=len(evaluation.results))
    run.finish(ExitCode.OK)  # the check ran; its verdict is the exit code, not the run's fate
    if metrics_file is not None:
        registry = Registry()
        record_monitor_metrics(evaluation, registry)
        record_freshness_metrics(evaluation, registry)
        if watch is not None:
            watch.record_metrics(active, registry)
        _write_metrics(metrics_file, registry)
    if html is not None:
        document = evaluation.to_dict()
        if watch is not None:
            document["alerts"] = [alert.status() for alert in active]
        write_page(html, document)
        logger.info("status page written to %s", html)
    if as_json:
        out.print_json(json.dumps(evaluation.to_dict()))
    else:
        out.print(_results_table(evaluation))
    raise typer.Exit(evaluation.exit_code)


def _check_once(
    session: Session[ObservabilitySettings],
    store: ObjectStore,
    chosen: list[Contract],
    at: datetime | None,
) -> tuple[Evaluation, AlertWatch | None, list[Alert]]:
    """Evaluate ``chosen`` (on the executor setting's choice) and, unless a replay
    (``at``), record the freshness history and update the alerts."""
    clock = SystemClock() if at is None else FixedClock(at)
    evaluation = evaluate_with(session.settings, chosen, store, clock, replay=at is not None)
    if at is not None:  # a replay is neither history nor news
        return evaluation, None, []
    return _record(session, store, chosen, evaluation)


def _record(
    session: Session[ObservabilitySettings],
    store: ObjectStore,
    contracts: Iterable[Contract],
    evaluation: Evaluation,
) -> tuple[Evaluation, AlertWatch, list[Alert]]:
    """Record ``evaluation``: its zones emptied while late judged by their open alerts
    (:func:`carry_emptied`), the freshness history, then the alerts of its datasets and of
    any dataset the config directory declares no more, read now: ``schedule`` and the
    ``--no-wait`` workers loaded their contracts at start (their notifications delivered,
    waiting at most ``alert_delivery_deadline``); the evaluation so judged and the active
    alerts."""
    store_alerts = _alert_store(session, store)
    evaluation = carry_emptied(evaluation, contracts, store_alerts.alerts())
    _history_recorder(session.settings.database_url, store)(evaluation)
    watch = AlertWatch.from_settings(store_alerts, SystemClock(), session.settings)
    try:
        declared = declared_datasets(session.settings.config_dir)
        active = list(watch.update(evaluation, declared=declared))
    finally:
        watch.finish(session.settings.alert_delivery_deadline)
    return evaluation, watch, active


def _check_no_wait_usage(
    session: Session[ObservabilitySettings], verdict_options: Mapping[str, object]
) -> None:
    """Refuse ``check --no-wait`` without the Celery executor, or with one of
    ``verdict_options`` (option -> value) given: they need the verdict it does not wait for.

    Raises:
        ConfigError: naming each such option.
    """
    require_broker(session.settings, "--no-wait")
    given = [name for name, value in verdict_options.items() if value not in (None, False)]
    if given:
        raise ConfigError(
            "check --no-wait returns before any verdict: nothing to replay or write",
            [FieldError(name, "cannot be used with --no-wait") for name in given],
        )


def _worker_task(session: Session[ObservabilitySettings]) -> LaneTask[DatasetStatus]:
    """What ``worker`` runs: monitor units, each dataset's status sent back."""
    url = session.settings.database_url
    recorded = url is not None and db.schema_installed()  # freshness history and alerts
    storage = str(session.settings.storage_url)
    store = store_identity(storage) or storage
    return LaneTask(
        partial(_worker_run_unit, session),
        encode=DatasetStatus.to_dict,
        # a login the server refuses stops the worker at start, not every unit it takes;
        # another deployment's rows are said there, once: its processes inherit that it was
        check=partial(db.check_login, str(url), feature="etl-observability worker", store=store)
        if recorded
        else None,
    )


cli.add_worker(
    _worker_task,
    help="Evaluate monitor units from the observability queue until stopped.\n\n"
    "SIGTERM or Ctrl-C: a warm shutdown (the units in hand finish, no new one is taken).",
    concurrency_help="Datasets at once, one process each.",
    max_concurrency=64,
    concurrency=1,
)


def _worker_run_unit(
    session: Session[ObservabilitySettings], opened: contextlib.ExitStack
) -> RunUnit[DatasetStatus]:
    """A worker process's ``run_unit``: its own store and contracts, recording what
    ``check --no-wait`` enqueued."""
    store = opened.enter_context(session.open_store())
    contracts = load_contracts(session.settings.config_dir, validators=VALIDATORS)
    record = partial(_record, session, store, contracts)  # units of `check --no-wait`
    return partial(run_unit, MonitorContext(store, contracts, record))


@app.command()
def schedule(
    ctx: typer.Context,
    max_ticks: Annotated[
        int | None,
        typer.Option("--max-ticks", min=1, help="Stop after this many ticks (default: never)."),
    ] = None,
) -> None:
    """Run check every schedule_check_interval on the workers, while leading.

    Each firing evaluates every dataset as one unit per dataset, waits for them, then
    records the freshness history and updates the alerts, as check does. One scheduler
    leads at a time (a lease in the store). Needs ETL_EXECUTOR=celery (this command has no
    --executor flag).
    """
    session = cli.session(ctx)
    settings = session.settings
    require_broker(settings, "schedule", flag=False)
    contracts = list(load_contracts(settings.config_dir, validators=VALIDATORS))
    with session.open_store() as store:

        def fire() -> int:
            evaluation, _, _ = _check_once(session, store, contracts, None)
            logger.info("monitors evaluated: %s", evaluation.counts())
            return len(contracts)

        job = Job("check", every(settings.schedule_check_interval), fire)
        cli.run_scheduler(session, store, [job], max_ticks=max_ticks)


def _history_recorder(database_url: object, store: ObjectStore) -> Callable[[Evaluation], None]:
    """What records each dataset's level in ``store``'s freshness history (nothing without
    a database)."""
    if database_url is None:
        return lambda evaluation: None
    if not db.schema_installed():
        logger.info("freshness history not recorded: the 'schema' extra is not installed")
        return lambda evaluation: None
    db.connect(str(database_url), feature="freshness history")
    identity = store.identity
    db.warn_other_stores(identity)  # another deployment's database: said, once per process

    def record(evaluation: Evaluation) -> None:
        changed = [s.dataset for s in evaluation.datasets if db.record_freshness(s, store=identity)]
        if changed:
            logger.info("freshness level changed for %s", ", ".join(changed))

    return record


def _database_collector(
    settings: ObservabilitySettings, contracts: list[Contract]
) -> Callable[[datetime], DatabaseReport] | None:
    """What collects the database metrics each ``serve`` cycle (nothing without a database)."""
    if settings.database_url is None or not db.schema_installed():
        return None
    db.connect(str(settings.database_url), feature="database metrics")

    def collect(now: datetime) -> DatabaseReport:
        return collect_database(
            contracts,
            now=now,
            window=settings.database_window,
            long_query_after=settings.long_query_after,
        )

    return collect


def _datasets(count: int) -> str:
    return f"{count} dataset{'' if count == 1 else 's'}"


def _results_table(evaluation: Evaluation) -> Table:
    counts = ", ".join(f"{n} {level}" for level, n in evaluation.counts().items() if n)
    if evaluation.exit_code == NOTHING_JUDGED:
        counts += ": nothing could be judged (exit 3)"
    table = Table(
        "dataset",
        "monitor",
        "subject",
        "level",
        "state",
        "observed",
        "threshold",
        "why",
        title=f"freshness at {evaluation.evaluated_at:%Y-%m-%d %H:%M:%S} UTC",
        caption=f"{_datasets(len(evaluation.datasets))}: {counts}" if counts else "no datasets",
    )
    for result in evaluation.results:  # Text cells: a key or reason is never read as markup
        table.add_row(
            *(Text(cell) for cell in (result.dataset, result.monitor, result.subject)),
            Text(result.level, style=LEVEL_STYLES[result.level]),
            *(Text(cell) for cell in (result.state, result.observed, result.threshold)),
            Text(result.why),
        )
    return table


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 9108).")] = None,
    interval: Annotated[
        str | None, typer.Option("--interval", help="Evaluate every … (default 60s).")
    ] = None,
) -> None:
    """Serve /metrics, /healthz, /readyz and /api/status; evaluate on an interval.

    Scrapes read the latest evaluation, rendered once per cycle, so they stay fast
    under load. SIGTERM or Ctrl-C stops it after the cycle in flight.
    """
    import uvicorn  # the HTTP stack is loaded by the one command that serves

    from observability.cycle_process import CycleProcess
    from observability.http_server import AnnouncingServer, served_url
    from observability.service import build_app

    session = cli.session(ctx, host="serve_host", port="serve_port", interval="evaluation_interval")
    settings = session.settings
    # what the cycle process needs is refused here (exit 2 or 1), never by a child restarting
    contracts = load_contracts(settings.config_dir, validators=VALIDATORS)
    with session.open_store() as store:
        identity = store.identity
    if settings.database_url is not None and db.schema_installed():
        db.connect(str(settings.database_url), feature="serve")
        db.warn_other_stores(identity)  # another deployment's database: said, once
    cycles = CycleProcess(partial(_status_service, session), interval=settings.evaluation_interval)
    config = uvicorn.Config(
        build_app(cycles),
        host=settings.serve_host,
        port=settings.serve_port,
        log_config=None,  # the platform's logging, set up by the session
        access_log=False,
        timeout_graceful_shutdown=10,
    )

    def announce(port: int) -> None:
        logger.info(
            "serving %s on %s (evaluating every %ss)",
            _datasets(len(contracts)),
            served_url(settings.serve_host, port),
            settings.evaluation_interval.total_seconds(),
        )

    server = AnnouncingServer(config, announce)  # the port bound, not the 0 asked for
    cli.stops_as("the service stopped after the requests and the evaluation cycle in flight")
    try:
        server.run()
    except SystemExit as stop:  # uvicorn's start-up failure (a port in use) exits 3: "partial" here
        logger.error("the service could not start on %s:%d", config.host, config.port)
        raise typer.Exit(ExitCode.FAILED) from stop
    if not server.started:
        raise typer.Exit(ExitCode.FAILED)


@app.command("serve-ping")
def serve_ping(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", help="The address serve listens on (default: its setting)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Its port (default: its setting, 9108).")
    ] = None,
    ready: Annotated[
        bool, typer.Option("--ready", help="Ask /readyz (the latest cycle went well).")
    ] = False,
    timeout: Annotated[
        str,  # text, read below: a number option would load pydantic on every check
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            help="Seconds to connect and get the answer (0.1 to 60).",
        ),
    ] = "5",
) -> None:
    """Whether serve answers /healthz here (the image's health check).

    It asks the address serve listens on, from the same settings (flag, ETL_SERVE_HOST /
    ETL_SERVE_PORT, serve_host / serve_port of etl.toml, default 127.0.0.1:9108); a
    wildcard host (0.0.0.0, ::) is asked on the loopback address. Exit 0 when it answered
    200 (printed), 1 when it did not (the reason, one line), 2 on a bad setting. A flag
    given to serve itself (serve --port) is not seen here: say it by --port, the variable
    or etl.toml.
    """
    from observability.serve_probe import probe_address, probe_serve

    seconds = _probe_timeout(timeout)
    settings = cli.session(ctx, host="serve_host", port="serve_port").settings
    try:
        address, number = probe_address(settings)
        answer = probe_serve(address, number, "/readyz" if ready else "/healthz", timeout=seconds)
    except ServeProbeError as exc:
        cli.notice(str(exc), level=logging.ERROR)
        raise typer.Exit(ExitCode.FAILED) from None
    out.print(
        f"{answer.url}: {answer.status} {answer.said}".rstrip(), markup=False, highlight=False
    )


def _probe_timeout(text: str) -> float:
    """``serve-ping --timeout``: seconds from 0.1 to 60 (a usage error otherwise)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0.1 <= seconds <= 60:  # NaN included
        raise typer.BadParameter(
            f"expected seconds from 0.1 to 60, got {text!r}", param_hint="'--timeout'"
        )
    return seconds


def _status_service(session: Session[ObservabilitySettings]) -> StatusService:
    """The service whose cycles ``serve`` runs, built in its cycle process (which logs as
    this run and opens its own store and database connections)."""
    from observability.service import StatusService

    settings = session.settings
    start_run(session.lane, settings, run_id=session.run_id)
    contracts = list(load_contracts(settings.config_dir, validators=VALIDATORS))
    store = session.open_store()
    exporters = session.metric_exporters("etl_observability_serve", pushgateway=False)
    return StatusService(
        contracts,
        store,
        SystemClock(),
        interval=settings.evaluation_interval,
        record=_history_recorder(settings.database_url, store),
        database=_database_collector(settings, contracts),
        alerts=AlertWatch.from_settings(_alert_store(session, store), SystemClock(), settings),
        storage=StorageIndex(
            store,
            contracts,
            recent_days=settings.storage_recent_days,
            reconcile_interval=settings.storage_reconcile_interval,
            workers=settings.storage_list_workers,
        ),
        export=partial(export_through, exporters, close=False) if exporters else None,
        declared=partial(declared_datasets, settings.config_dir),
    )


alerts_app = typer.Typer(
    help="Alerts: list them, acknowledge one, snooze one.", no_args_is_help=True
)
app.add_typer(alerts_app, name="alerts")
Fingerprint = Annotated[str, typer.Argument(help="The alert's fingerprint ('alerts list').")]


def _alert_store(session: Session[ObservabilitySettings], store: ObjectStore) -> AlertStore:
    """The ledger's alerts with a database (and the 'schema' extra), else the store's document."""
    url = session.settings.database_url
    if url is not None and db.schema_installed():
        db.connect(str(url), feature="alerts")
        db.warn_other_stores(store.identity)  # another deployment's database: said, once
        return DatabaseAlerts(store)
    if url is not None:
        logger.info("alerts kept in the store: the 'schema' extra is not installed")
    return ObjectStoreAlerts(store)


def _alert_book(ctx: typer.Context) -> AlertBook:
    session = cli.session(ctx)
    store = _alert_store(session, session.open_store())
    return AlertBook(
        store, SystemClock(), reminder_interval=session.settings.alert_reminder_interval
    )


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also the resolved alerts (the history).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """The active alerts (open, acknowledged, snoozed), newest first."""
    found = _alert_book(ctx).store.alerts(include_resolved=show_all)
    if as_json:
        out.print_json(json.dumps({"alerts": [alert.to_dict() for alert in found]}))
        return
    table = Table("fingerprint", "level", "state", "dataset", "monitor", "opened (UTC)", "summary")
    for alert in found:
        state: str = alert.state
        if alert.state == "snoozed" and alert.snoozed_until is not None:
            state += f" until {alert.snoozed_until.astimezone(UTC):%Y-%m-%d %H:%M}"
        table.add_row(
            Text(alert.fingerprint),
            Text(alert.level, style=LEVEL_STYLES[alert.level]),
            Text(state),
            Text(alert.dataset),
            Text(" ".join(part for part in (alert.monitor, alert.subject) if part)),
            Text(f"{alert.opened_at.astimezone(UTC):%Y-%m-%d %H:%M}"),
            Text(alert.summary),
        )
    if not found:
        table.caption = "no alerts" if show_all else "no active alerts"
    out.print(table)


@alerts_app.command("ack")
def alerts_ack(ctx: typer.Context, fingerprint: Fingerprint) -> None:
    """Acknowledge an alert: no more reminders (an escalation or resolution still speaks)."""
    try:
        alert = _alert_book(ctx).acknowledge(fingerprint, by=_operator())
    except AlertNotFoundError as exc:
        cli.notice(str(exc), level=logging.ERROR, fields={"fingerprint": fingerprint})
        raise typer.Exit(ExitCode.USAGE) from None
    cli.notice(f"acknowledged {alert.fingerprint}: {alert.describe()}")


@alerts_app.command("snooze")
def alerts_snooze(
    ctx: typer.Context,
    fingerprint: Fingerprint,
    duration: Annotated[
        str,
        typer.Option("--for", help="How long: 30m, 2h, 1d, at most 90d (no reminders until then)."),
    ],
) -> None:
    """Snooze an alert: quiet until the time is up, then open again."""
    try:
        length = parse_duration(duration)
        if length.total_seconds() <= 0:
            raise ValueError(f"invalid duration {duration!r}: a snooze must last longer than 0s")
        if length > MAX_SNOOZE:
            why = f"a snooze lasts at most {MAX_SNOOZE.days}d (change the monitor instead)"
            raise ValueError(f"invalid duration {duration!r}: {why}")
    except ValueError as exc:
        cli.notice(f"--for: {exc}", level=logging.ERROR)
        raise typer.Exit(ExitCode.USAGE) from None
    try:
        alert = _alert_book(ctx).snooze(fingerprint, length)
    except AlertNotFoundError as exc:
        cli.notice(str(exc), level=logging.ERROR, fields={"fingerprint": fingerprint})
        raise typer.Exit(ExitCode.USAGE) from None
    assert alert.snoozed_until is not None
    until = alert.snoozed_until.astimezone(UTC)
    cli.notice(f"snoozed {alert.fingerprint} until {until:%Y-%m-%d %H:%M} UTC: {alert.describe()}")


def _operator() -> str:
    """Who acknowledges: the login name, or ``""`` when the system has none."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""
