"""``etl-data-pipeline ingest``: pull REST API sources into the raw archive and landing zone.

``ingest [--source S] [--endpoint E] [--since …] [--until …] [--full-refresh] [--dry-run]
[--json]`` runs every selected endpoint window (endpoints side by side, parents before
children); ``ingest status`` shows each endpoint's cursor, window in progress, last
success, last error, consecutive failures and the last run's dead letters and drift.
Exit 0 when every window finished, 1 when one failed, 2 on bad configuration, 3 when
every window finished but some pages or items were set aside as dead letters,
130/143 when interrupted (the state stands at the last landed chunk; the next run
resumes there).
"""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from data_pipeline import db
from data_pipeline.errors import EndpointBusyError
from data_pipeline.ingest_archive_cli import add_archive_commands
from data_pipeline.settings import PipelineSettings
from etl_core.cli import RuntimeCLI
from etl_core.contracts import ContractSet, load_contracts
from etl_core.errors import ConfigError, FieldError
from etl_core.runtime import ExitCode, Session
from etl_core.secrets import Secret, SecretUnavailableError
from etl_core.storage import ObjectStore

if TYPE_CHECKING:  # the ingest engine (httpx) and the API sources' model are imported by
    # the commands that run them
    from data_pipeline.ingest import IngestContext, StateStore, WindowOutcome
    from etl_core.contracts import Endpoint, Source, SourceSet
    from etl_core.work import WorkUnit

__all__ = ["add_ingest_commands"]

MAX_PARALLEL_ENDPOINTS = 8
INGEST_JOB = "etl_data_pipeline_ingest"
"""The job ``ingest`` exports its metrics as, however it ends."""

SourceOption = Annotated[
    str | None, typer.Option("--source", help="Only this API source (sources/<source>.toml).")
]
EndpointOption = Annotated[
    str | None, typer.Option("--endpoint", help="Only this endpoint (needs --source).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def add_ingest_commands(cli: RuntimeCLI[PipelineSettings]) -> None:
    """Add the ``ingest`` command group to the runtime's CLI."""
    app = typer.Typer(
        help="Pull REST API sources: raw archive, landed JSON Lines chunks, resumable state.",
        invoke_without_command=True,
    )
    cli.app.add_typer(app, name="ingest")
    add_archive_commands(app, cli, _config)

    @app.callback()
    def ingest(
        ctx: typer.Context,
        source: SourceOption = None,
        endpoint: EndpointOption = None,
        since: Annotated[
            str | None, typer.Option("--since", help="Window start (incremental cursor value).")
        ] = None,
        until: Annotated[
            str | None,
            typer.Option(
                "--until",
                help="Window end (exclusive). Alone: the history up to it, from the endpoint's "
                "initial_value (else its first record).",
            ),
        ] = None,
        full_refresh: Annotated[
            bool,
            typer.Option("--full-refresh", help="Start from the initial value, not the cursor."),
        ] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show the windows to fetch; request nothing.")
        ] = False,
        as_json: JsonOption = False,
        executor: Annotated[
            str | None,
            typer.Option(
                "--executor", help="local: this process; celery: the broker's workers (setting)."
            ),
        ] = None,
        no_wait: Annotated[
            bool,
            typer.Option("--no-wait", help="With --executor celery: enqueue the windows, return."),
        ] = False,
    ) -> None:
        """Ingest every endpoint of the API sources (or those selected)."""
        if ctx.invoked_subcommand is not None:
            return
        from data_pipeline.ingest import plan_units
        from data_pipeline.ingest_work import enqueue_windows
        from etl_core.work import require_broker

        session = cli.session(ctx, executor="executor")
        if no_wait:
            require_broker(session.settings, "--no-wait")
        contracts, every = _config(session)
        sources = _selected(every, source, endpoint)
        if session.settings.executor == "local" and not dry_run:
            _check_secrets(src for src, _ in sources)  # the workers' own environment else
        plan = [
            (src, plan_units(src, ep, since=since, until=until, full_refresh=full_refresh))
            for src, ep in sources
        ]
        logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry query strings
        with session.open_store() as store:
            states = _states(session, store)
            if dry_run:
                _print_plan(cli, states, plan, session.run_id, as_json)
                return
            if no_wait:
                count = enqueue_windows(session.settings, plan, session.run_id)
                cli.out.print(f"enqueued {count} window(s) on the broker", highlight=False)
                return
            code = _ingest(cli, session, store, states, plan, contracts, as_json)
        if code:
            raise typer.Exit(code)

    @app.command("status")
    def status(
        ctx: typer.Context, source: SourceOption = None, as_json: JsonOption = False
    ) -> None:
        """Each endpoint's cursor, window in progress, last success and error, last run's drift."""
        from rich.table import Table

        session = cli.session(ctx)
        selected = _selected(_config(session)[1], source, None)
        with session.open_store() as store:
            states = _states(session, store)
            rows = [_status_row(states, src, ep.name) for src, ep in selected]
        if as_json:
            cli.out.print(json.dumps(rows), markup=False, highlight=False, soft_wrap=True)
            return
        table = Table("source", "endpoint", "cursor", "in progress", "last success", "failures")
        table.add_column("last error", overflow="fold")
        table.add_column("last run: dead letters, drift", overflow="fold")
        for row in rows:
            window = row["window"]
            progress = f"{window['records']} records, chunk {window['chunk']}" if window else "-"
            table.add_row(
                row["source"],
                row["endpoint"],
                row["cursor"] or "-",
                progress,
                row["last_success_at"] or "-",
                str(row["consecutive_failures"]),
                row["last_error"] or "-",
                _last_run_text(row["last_run"]),
            )
        cli.out.print(table)


def _config(session: Session[PipelineSettings]) -> tuple[ContractSet, SourceSet]:
    """The dataset contracts, and the API sources checked against those they feed.

    Ingestion runs no transform, so the contracts are judged by the platform's rules only:
    binding every ``[transform] sql`` would import DuckDB for nothing (``contracts check``
    and the transform commands still judge it)."""
    from etl_core.contracts.sources import load_sources

    config_dir = session.settings.config_dir
    contracts = load_contracts(config_dir)
    sources = load_sources(config_dir, contracts=contracts)
    if not len(sources):
        raise ConfigError(
            f"no API sources: add {config_dir}/sources/<source>.toml (docs/sources.md)", []
        )
    return contracts, sources


def _check_secrets(sources: Iterable[Source]) -> None:
    """Resolve every secret reference of the sources' ``[auth]`` now, so a missing one is
    refused before any window opens, naming the file and key (not mid-run, per endpoint).

    Raises:
        ConfigError: listing every reference that does not resolve.
    """
    errors: list[FieldError] = []
    for src in {s.source: s for s in sources}.values():
        for key in ("token", "key", "password", "client_secret"):
            secret: Secret | None = getattr(src.auth, key)
            if secret is None:
                continue
            try:
                secret.reveal()
            except SecretUnavailableError as exc:
                errors.append(FieldError(f"auth.{key}", str(exc), src.origin or src.source))
    if errors:
        raise ConfigError("a secret of the API sources is not available; nothing requested", errors)


def _selected(
    sources: SourceSet, source: str | None, endpoint: str | None
) -> list[tuple[Source, Endpoint]]:
    """``(source, endpoint)`` pairs to run, parents first within each source."""
    if endpoint is not None and source is None:
        raise ConfigError("--endpoint needs --source", [])
    chosen = [sources.get(source)] if source is not None else list(sources)
    pairs: list[tuple[Source, Endpoint]] = []
    for src in chosen:
        endpoints = [src.endpoint(endpoint)] if endpoint is not None else list(src.ordered())
        pairs.extend((src, ep) for ep in endpoints)
    return pairs


def _states(session: Session[PipelineSettings], store: ObjectStore) -> StateStore:
    """The database's API ingestion table when a database is configured, else the store."""
    from data_pipeline.ingest import DatabaseStateStore, ObjectStateStore

    url = session.settings.database_url
    if url is None:
        return ObjectStateStore(store)
    db.connect(url, feature="API ingestion state (etl-data-pipeline ingest)")
    return DatabaseStateStore()


def _ingest(
    cli: RuntimeCLI[PipelineSettings],
    session: Session[PipelineSettings],
    store: ObjectStore,
    states: StateStore,
    plan: list[tuple[Source, list[WorkUnit]]],
    contracts: ContractSet,
    as_json: bool,
) -> int:
    """Run the planned units; the exit code."""
    from data_pipeline.ingest.reader import PageReader

    reader = PageReader()  # first: its start-up goes on beside the engine's imports
    try:
        from data_pipeline.ingest import (
            IngestContext,
            IngestStoppedError,
            ingest_unit,
            unit_names,
            waves,
        )
        from data_pipeline.ingest.collector import few_full_collections
        from data_pipeline.ingest.windows import is_bounded
        from data_pipeline.ingest_work import wave_executor
        from data_pipeline.tasks import with_run_id
        from etl_core.contracts.sources import SourceSet

        run = session.record_run(
            "ingest", parameters={"units": [u.key for _, us in plan for u in us]}
        )
        session.exports_metrics_as(INGEST_JOB)
        context = IngestContext(
            store,
            SourceSet(tuple({src.source: src for src, _ in plan}.values())),
            states,
            session.run_id,
            lease_seconds=float(session.settings.lease_seconds),
            lease_wait_seconds=float(session.settings.lease_wait_seconds),
            contracts=contracts,
            reader=reader,
        )
    except BaseException:
        reader.close()
        raise

    outcomes: list[WindowOutcome] = []
    failures: list[dict[str, str]] = []
    busy: list[str] = []
    misconfigured = False  # e.g. a secret reference that does not resolve: exit 2, not 1
    try:
        progress = cli.progress("ingest", item="window")  # pages, records, retries, waits
        context.observe = progress.count
        with _stop_on_signals(context), few_full_collections(), progress:
            progress.plan(sum(len(units) for _, units in plan))
            for wave in waves(plan):
                executor = wave_executor(session.settings, min(len(wave), MAX_PARALLEL_ENDPOINTS))
                wave = [with_run_id(unit, session.run_id) for unit in wave]
                for result in executor.run(partial(ingest_unit, context), wave):
                    progress.finish(result.unit.key)
                    if result.ok and result.value is not None:
                        outcomes.extend(result.value)
                        continue
                    if isinstance(result.error, IngestStoppedError):
                        continue
                    source, endpoint = unit_names(result.unit)
                    if isinstance(result.error, EndpointBusyError) and not is_bounded(result.unit):
                        # another run has it and ingests the endpoint forward: not ours (a
                        # window of a range still busy after its wait is a failure: unfetched)
                        cli.notice(f"{source}/{endpoint}: {result.error}", level=logging.WARNING)
                        busy.append(result.unit.key)
                        continue
                    failures.append({"unit": result.unit.key, "error": str(result.error)})
                    misconfigured = misconfigured or isinstance(result.error, ConfigError)
                    cli.notice(f"{source}/{endpoint}: {result.error}", level=logging.ERROR)
    finally:
        context.close()
        records = sum(o.records for o in outcomes)
        run.count(inputs=len(outcomes) + len(failures), outputs=len(outcomes), rows_written=records)
        run.count(failed=len(failures))
        if failures:
            run.note_error("; ".join(f["error"] for f in failures))
        session.push_metrics(INGEST_JOB)
    if context.stop.is_set():
        raise KeyboardInterrupt
    _print_outcomes(cli, outcomes, failures, busy, as_json)
    if misconfigured:
        return ExitCode.USAGE
    if failures:
        return ExitCode.FAILED
    return ExitCode.PARTIAL if any(o.dead_letters for o in outcomes) else ExitCode.OK


@contextmanager
def _stop_on_signals(context: IngestContext) -> Iterator[None]:
    """Ctrl-C / SIGTERM also tell the units in flight to stop at their next page."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: FrameType | None) -> None:
        context.stop.set()
        chained = previous[signal.Signals(signum)]
        if callable(chained):
            chained(signum, frame)
        else:
            raise KeyboardInterrupt

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _print_outcomes(
    cli: RuntimeCLI[PipelineSettings],
    outcomes: list[WindowOutcome],
    failures: list[dict[str, str]],
    busy: list[str],
    as_json: bool,
) -> None:
    if as_json:
        document = {
            "windows": [o.to_dict() for o in outcomes],
            "failures": failures,
            "busy": busy,
        }
        cli.out.print(json.dumps(document), markup=False, highlight=False, soft_wrap=True)
        return
    from rich.table import Table  # the table only: not in a --json run's time

    table = Table("source", "endpoint", "window", "pages", "records", "chunks", "cursor")
    table.add_column("dead letters, drift", overflow="fold")
    for o in outcomes:
        window = o.unit.rpartition("/")[2] + (" (resumed)" if o.resumed else "")
        window += f" (skipped: {o.skipped})" if o.skipped else ""
        table.add_row(
            o.source,
            o.endpoint,
            window,
            str(o.pages),
            str(o.records),
            str(o.chunks),
            o.cursor or "-",
            _last_run_text(
                {"dead_letters": o.dead_letters, "pages_unread": o.pages_unread, "drift": o.drift}
            ),
        )
    cli.out.print(table)
    dead = sum(o.dead_letters for o in outcomes)
    unread = sum(o.pages_unread for o in outcomes)
    cli.out.print(
        f"{len(outcomes)} window(s) ingested, {sum(o.records for o in outcomes)} records, "
        f"{len(failures)} failed"
        + (f", {len(busy)} skipped (another run holds them)" if busy else "")
        + (
            f", {dead} dead letter(s) set aside (_dead_letters.jsonl beside the run)"
            if dead
            else ""
        )
        + (
            f", {unread} of them whole page(s) that could not be read: their records were "
            "not landed"
            if unread
            else ""
        )
    )


def _last_run_text(run: dict[str, Any] | None) -> str:
    """``2 dead letters (1 page unread); new: a, b; missing: c; types: d: int <- string``
    or ``-``."""
    if not run:
        return "-"
    parts = [f"{run.get('dead_letters', 0)} dead letters"] if run.get("dead_letters") else []
    if parts and run.get("pages_unread"):
        parts[0] += f" ({run['pages_unread']} page(s) unread: records not landed)"
    drift = run.get("drift") or {}
    for label, name in (
        ("new", "new_fields"),
        ("missing", "missing_fields"),
        ("types", "type_changes"),
    ):
        if drift.get(name):
            parts.append(f"{label}: {', '.join(drift[name])}")
    return "; ".join(parts) or "-"


def _print_plan(
    cli: RuntimeCLI[PipelineSettings],
    states: StateStore,
    plan: list[tuple[Source, list[WorkUnit]]],
    run_id: str,
    as_json: bool,
) -> None:
    from rich.table import Table

    from data_pipeline.ingest import unit_names
    from data_pipeline.ingest.windows import open_window

    rows: list[dict[str, Any]] = []
    for src, units in plan:
        for unit in units:
            endpoint = src.endpoint(unit_names(unit)[1])
            state = states.load(src.source, endpoint.name)
            window = open_window(unit, endpoint, state, run_id)
            pending = state.window
            rows.append(
                {
                    "unit": unit.key,
                    "start": window.start,
                    "end": window.end,
                    "resumes": pending.unit
                    if pending and not unit.params["full_refresh"]
                    else None,
                    "resume_chunk": pending.chunk if pending else None,
                }
            )
    if as_json:
        cli.out.print(json.dumps({"dry_run": True, "windows": rows}), markup=False, soft_wrap=True)
        return
    table = Table("window", "from", "until", "resumes first")
    for row in rows:
        resumes = f"{row['resumes']} at chunk {row['resume_chunk']}" if row["resumes"] else "-"
        table.add_row(row["unit"], row["start"] or "-", row["end"] or "-", resumes)
    cli.out.print(table)
    cli.out.print(f"dry run: {len(rows)} window(s); nothing requested, nothing written")


def _status_row(states: StateStore, source: Source, endpoint: str) -> dict[str, Any]:
    state = states.load(source.source, endpoint)
    window = state.window
    return {
        "source": source.source,
        "endpoint": endpoint,
        "cursor": state.cursor,
        "window": (
            {
                "unit": window.unit,
                "run": window.run,
                "records": window.records,
                "chunk": window.chunk,
            }
            if window
            else None
        ),
        "last_success_at": state.last_success_at,
        "last_error": state.last_error,
        "consecutive_failures": state.consecutive_failures,
        "records_total": state.records_total,
        "last_run": state.last_run,
        "state": states.kind,
    }
