"""The command line every runtime shares: global options, ``--version``, ``config show``,
``contracts check``, ``ping`` (a worker's health check), signals and exit codes, so every
runtime starts, logs and fails alike.

Needs the optional extra ``cli`` (Typer and Rich), imported when a CLI is built::

    cli = RuntimeCLI(name="etl-file-processing", lane="file_processing",
                     help="Inbound vendor files.", settings=FileProcessingSettings,
                     validators=[expression_problems], recorder=db.run_recorder)

    @cli.app.command()
    def scan(ctx: typer.Context) -> None:
        session = cli.session(ctx)
        ...

    main = cli.main   # the console script

Exit codes are the platform's (:class:`~etl_core.runtime.ExitCode`); Ctrl-C exits
130 and SIGTERM 143 once the units in flight have finished, with a summary of what
finished and what remains (:meth:`RuntimeCLI.progress`); a closed output pipe
(``| head``) 141, quietly. When stderr is not a terminal every line on it is a
JSON log record carrying ``run_id`` and ``lane``, from the first one (a usage error
before the settings are read included): :meth:`RuntimeCLI.notice` prints to a
terminal and logs otherwise.
"""

import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Generic, NoReturn, TypeVar

from etl_core import package_version
from etl_core.cli_commands import lazy_group
from etl_core.cli_flags import option_values, typed_flags
from etl_core.cli_params import plain_values
from etl_core.console import DeferredConsole
from etl_core.contracts import ContractValidator, check_contracts
from etl_core.errors import ConfigError, MissingDependencyError, RetryableError, first_line
from etl_core.logging import LogFormat, bind_context, bind_process_context, configure_logging
from etl_core.progress import WorkProgress
from etl_core.runtime import (
    ExitCode,
    RecorderFactory,
    RuntimeSettings,
    Session,
    new_run_id,
    open_session,
    run_entry_point,
)
from etl_core.settings_help import settings_file, settings_file_read, settings_table

if TYPE_CHECKING:
    import typer

    from etl_core.metrics import MetricExporter
    from etl_core.scheduler import Job
    from etl_core.storage import ObjectStore
    from etl_core.work import RunUnit, UnitResult

__all__ = ["LaneTask", "PipeClosed", "RuntimeCLI"]

logger = logging.getLogger(__name__)

S = TypeVar("S", bound=RuntimeSettings)
T = TypeVar("T")

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_PIPE_CLOSED = 141


@dataclass(frozen=True)
class LaneTask(Generic[T]):
    """What a lane's worker runs (:meth:`RuntimeCLI.add_worker`): ``build`` makes a worker
    process's ``run_unit`` (its store, contracts... entered on the stack it is given),
    ``encode`` turns a unit's value into the JSON sent back, ``on_result`` sees each
    unit's end on the worker."""

    build: "Callable[[contextlib.ExitStack], RunUnit[T]]"
    encode: Callable[[T], object]
    on_result: "Callable[[UnitResult[T]], None] | None" = None
    check: Callable[[], None] | None = None
    """What the worker checks once as it starts, before it consumes (the login and the
    migrations of the database its units use): a :class:`~etl_core.errors.ConfigError`
    stops it (exit 2, the setting named) instead of every unit failing with it; a
    :class:`~etl_core.errors.RetryableError` (the database is down) is a warning, and the
    worker starts: its units connect when it answers."""


class RuntimeCLI(Generic[S]):
    """A runtime's Typer app with the options, commands and exit handling all runtimes share.

    Args:
        name: The console script (``etl-file-processing``); also its distribution's name.
        lane: The runtime's lane name, bound to every log line and run record.
        help: One line saying what the runtime does.
        settings: Its settings class.
        validators: Its engine-backed contract rules, for ``contracts check``.
        recorder: Builds its run ledger for a database URL (its ``db`` adapter's).
    """

    def __init__(
        self,
        *,
        name: str,
        lane: str,
        help: str,
        settings: type[S],
        validators: Sequence[ContractValidator] = (),
        recorder: RecorderFactory | None = None,
    ) -> None:
        _require_extra()
        import typer

        self.name = name
        self.lane = lane
        self.settings_class = settings
        self.validators = tuple(validators)
        self.recorder = recorder
        # what is printed comes from data (keys, names, messages): never read as markup
        self.out = DeferredConsole(markup=False, emoji=False)
        self.err = DeferredConsole(stderr=True, soft_wrap=True, markup=False, emoji=False)
        self.run_id = new_run_id()
        self._progress: WorkProgress | None = None
        self._progress_interval = RuntimeSettings.progress_interval
        self._stopped_as: str | None = None
        self._args: list[str] = []
        self.app = typer.Typer(
            name=name,
            help=help,
            no_args_is_help=True,
            add_completion=False,
            pretty_exceptions_enable=False,
        )
        self._add_global_options()
        self._add_config_commands()
        self._add_contract_commands()
        self._add_ping_command()

    # ------------------------------------------------------------ for commands

    def session(self, ctx: "typer.Context", /, **options: str) -> Session[S]:
        """The run this command belongs to (settings, run id, store, run recording).

        ``options`` says which of the command's options set a setting, by parameter name
        (``cli.session(ctx, port="serve_port")``): each given is layered on the settings
        (:meth:`Session.with_flags`), and a value refused names the flag typed
        (``from flag --port``), never a flag guessed from its value.

        Raises:
            ConfigError: an option's value is refused as that setting.
        """
        session: Session[S] = ctx.obj
        if not options:
            return session
        return session.with_flags(option_values(ctx, options), flag_names=typed_flags(ctx, options))

    def notice(
        self,
        message: str,
        *,
        level: int = logging.INFO,
        style: str = "",
        fields: Mapping[str, object] | None = None,
    ) -> None:
        """Tell the operator ``message``: a line on a terminal, a log record otherwise
        (with ``fields``, such as the ``dataset`` or ``key`` it is about)."""
        if self.err.is_terminal:
            style = style or {logging.ERROR: "red", logging.WARNING: "yellow"}.get(level, "")
            self.err.print(message, style=style or None, markup=False, highlight=False)
        else:
            logging.getLogger(self.name).log(level, "%s", message, extra=dict(fields or {}))

    def progress(self, work: str, *, item: str, unit: str = "") -> WorkProgress:
        """Show the progress of this command's work: a bar on a terminal, a log line every
        ``progress_interval`` seconds otherwise; an interruption reports it (what finished,
        what remains). Use it as a context manager around the work."""
        interval = self._progress_interval
        self._progress = WorkProgress(
            work, item=item, unit=unit, console=self.err, interval=interval
        )
        return self._progress

    def reach_broker(self, settings: RuntimeSettings, *, meanwhile: str) -> None:
        """Connect to the broker once, as a long-running producer (``schedule``, ``listen``)
        starts: a refused login is a configuration error (exit 2, the broker named), never
        found out unit by unit; an unreachable broker is a warning saying what happens
        ``meanwhile``, since the producer goes on and sends once it answers.

        Raises:
            ConfigError: the Celery settings do not hold, or the broker refused the login.
        """
        from etl_core.work.celery import BrokerUnreachableError, celery_app, check_broker

        try:
            check_broker(celery_app(settings, self.lane), settings)
        except BrokerUnreachableError as exc:
            said = str(exc).rstrip(".")
            self.notice(f"{said}; {meanwhile}", level=logging.WARNING)

    def run_scheduler(
        self,
        session: Session[S],
        store: "ObjectStore",
        jobs: "list[Job]",
        *,
        max_ticks: int | None,
    ) -> None:
        """Run this lane's scheduler (``schedule``) with ``jobs`` until stopped or
        ``max_ticks`` ticks passed, then print what it fired (:mod:`etl_core.scheduler`).

        The broker is connected to once first: a refused login stops it at once (exit 2,
        the broker named); an unreachable one is a warning, its firings failing until the
        broker answers.

        Its metrics (ticks, firings, units enqueued, failed firings) go out as job
        ``etl_<lane>_schedule`` after every tick through the configured exporters, each
        sending what changed since its previous export (a scheduler runs for weeks: an
        export only at its exit would show nothing until then); the Pushgateway only after
        a tick that fired a job (one HTTP push a firing, not one a tick), and every exporter
        once more as the command ends, however it ends; the Pushgateway then only when it
        was leading (a scheduler standing by would replace the leader's group with its own,
        which holds no firing).
        """
        from etl_core.scheduler import Scheduler

        settings = session.settings
        job = f"etl_{self.lane}_schedule"
        self.reach_broker(settings, meanwhile="firings fail until it answers")
        # the last counts go out however the command ends; to the Pushgateway only from
        # the leader: a standby's group (its ticks, no firing) would replace the leader's
        session.exports_metrics_as(job, pushgateway=False)
        scheduler = Scheduler(
            store,
            self.lane,
            jobs,
            tick=settings.schedule_tick.total_seconds(),
            lease_seconds=settings.schedule_lease_seconds.total_seconds(),
        )

        def export(fired: bool) -> None:
            session.exports_metrics_as(job, pushgateway=scheduler.leading)
            session.export_metrics(job, pushgateway=fired, close=False)

        summary = scheduler.run(max_ticks=max_ticks, after_tick=export)
        session.export_metrics(job, pushgateway=scheduler.leading)
        fired = ", ".join(f"{name} {count}x" for name, count in summary.fired.items())
        self.out.print(
            f"scheduler stopped after {summary.ticks} tick(s), {summary.led} leading; "
            f"fired: {fired or 'nothing'}; {summary.failed} failed firing(s)",
            markup=False,
            highlight=False,
        )

    def add_worker(
        self,
        task: "Callable[[Session[S]], LaneTask[Any]]",
        *,
        help: str,
        concurrency_help: str,
        max_concurrency: int,
        concurrency: int | Callable[[S], int],
        database_url_help: str | None = None,
        scratch: bool = False,
    ) -> None:
        """Add ``worker``: the lane's task (``task(session)``) registered with the retry
        policy, dead queue and delivery limit of the settings, run by a Celery worker
        until stopped (exit code of the worker). ``concurrency`` is the option's default,
        or reads it from the settings when the option is not given; ``database_url_help``
        adds ``--database-url``. ``scratch``: the lane's units make scratch directories
        under ``work_dir``, so a worker where none can be made refuses to start (exit 2)
        instead of taking every unit off the queue to fail it."""
        import typer

        cli = self
        default = concurrency if isinstance(concurrency, int) else None
        setting = None if isinstance(concurrency, int) else concurrency
        option = typer.Option("--concurrency", min=1, max=max_concurrency, help=concurrency_help)

        def worker(
            ctx: typer.Context, concurrency: Annotated[int | None, option] = default
        ) -> None:
            cli._run_worker(cli.session(ctx), task, concurrency, setting, scratch=scratch)

        if database_url_help is not None:
            url_option = typer.Option("--database-url", help=database_url_help)

            def worker_with_database(
                ctx: typer.Context,
                concurrency: Annotated[int | None, option] = default,
                database_url: Annotated[str | None, url_option] = None,
            ) -> None:
                session = cli.session(ctx, database_url="database_url")
                cli._run_worker(session, task, concurrency, setting, scratch=scratch)

            worker = worker_with_database
        self.app.command("worker", help=help)(worker)

    def _run_worker(
        self,
        session: Session[S],
        task: "Callable[[Session[S]], LaneTask[Any]]",
        concurrency: int | None,
        setting: Callable[[S], int] | None,
        *,
        scratch: bool,
    ) -> None:
        """Register the lane's task on a Celery app and run the worker until it stops."""
        import typer

        if scratch:
            from etl_core.scratch import check_work_dir

            check_work_dir(session.settings.work_dir)

        from etl_core.work.celery import (
            celery_app,
            lane_queues,
            register_lane_task,
            run_worker,
            store_delivery_limit,
            task_policy,
        )

        settings = session.settings
        lane_task = task(session)
        if lane_task.check is not None:
            self._check_before_consuming(lane_task.check)
        app = celery_app(settings, self.lane)
        register_lane_task(
            app,
            self.lane,
            lane_task.build,
            encode=lane_task.encode,
            policy=task_policy(settings),
            dead_queue=lane_queues(settings, self.lane).dead,
            on_result=_exporting_after_each_unit(session, self.lane, lane_task.on_result),
            deliveries=store_delivery_limit(session, self.lane),
        )
        if concurrency is None:
            concurrency = setting(settings) if setting is not None else 1
        code = run_worker(app, settings, self.lane, concurrency=concurrency)
        if code:
            raise typer.Exit(code)

    def _check_before_consuming(self, check: Callable[[], None]) -> None:
        """Run a worker's start-up ``check``: a settings mistake (a database login the
        server refuses) raises, an outage is said and the worker starts anyway."""
        try:
            check()
        except RetryableError as exc:
            self.notice(
                f"{first_line(exc)}: the worker starts anyway; its units connect when the "
                "database answers (each retried per task_attempts)",
                level=logging.WARNING,
            )

    def stops_as(self, what: str) -> None:
        """Say ``what`` after "interrupted (Ctrl-C):" / "terminated (SIGTERM):" when this
        run is stopped from now on, instead of the batch commands' "units in flight were
        finished …; the rest stay in line": a command that is no batch of units (a
        server) says what stopping it did."""
        self._stopped_as = what

    def interrupted(self) -> NoReturn:
        """End a command that stopped early on Ctrl-C or SIGTERM it handled itself: exit
        130 (143 after SIGTERM) with the summary of :meth:`progress`, as if unhandled."""
        import typer

        raise typer.Exit(EXIT_INTERRUPTED)

    def main(self, args: Sequence[str] | None = None) -> None:
        """Run the command line (the console script's entry point); never returns.

        Called without ``args`` (as the console script calls it) the process ends with the
        run: its heap is frozen on the way out (:func:`_spare_shutdown_collection`).
        """
        try:
            run_entry_point(lambda: self._invoke(args), name=self.name)
        finally:
            if args is None:
                _spare_shutdown_collection()
        raise SystemExit(ExitCode.OK)

    # -------------------------------------------------------------- internals

    def _invoke(self, args: Sequence[str] | None) -> None:
        import typer

        command = lazy_group(self.app)  # the invoked command built, not all (issue 16)
        plain_values()  # no pydantic for unset options and plain text
        signals: list[int] = []
        self._start_run()
        self._args = list(sys.argv[1:] if args is None else args)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            signals.append(signum)
            raise KeyboardInterrupt  # the same path as Ctrl-C: units in flight finish

        previous = signal.signal(signal.SIGTERM, on_sigterm)
        stdout, sys.stdout = sys.stdout, _PipeGuard(sys.stdout)
        try:
            code = command.main(
                args=self._args,
                prog_name=self.name,
                standalone_mode=False,
            )
        except typer.Abort:  # end of input at a prompt
            code = ExitCode.FAILED
        except typer.TyperException as usage:  # bad usage, as Typer words it
            code = self._usage(usage)
        except PipeClosed:
            raise SystemExit(_pipe_closed(stdout)) from None
        finally:
            sys.stdout = stdout
            signal.signal(signal.SIGTERM, previous)
        if code == EXIT_INTERRUPTED:
            code = self._interrupted(terminated=bool(signals))
        if isinstance(code, int) and code:
            raise SystemExit(code)

    def _start_run(self) -> None:
        """A fresh run id and no progress yet; log as ``ETL_LOG_FORMAT`` asks (else JSON off
        a terminal) from the very start, with the run id and lane: a usage error found before
        the settings are read is a JSON line too, or a console line when console lines are
        asked for. The settings' own log level and format replace this once they are loaded."""
        self.run_id = new_run_id()
        self._progress = None
        self._stopped_as = None
        bind_process_context(lane=self.lane, run_id=self.run_id)
        bind_context(lane=self.lane, run_id=self.run_id)
        chosen = os.environ.get("ETL_LOG_FORMAT", "").strip().lower()
        asked: LogFormat = "json" if chosen == "json" else "auto"
        if chosen == "console":  # off a terminal too, as a configuration error is said
            asked = "console"
        configure_logging(fmt=asked, stream=sys.stderr)

    def _usage(self, usage: Exception) -> int:
        show = getattr(usage, "show", None)
        if self.err.is_terminal and show is not None:
            show()
        else:
            message = getattr(usage, "format_message", lambda: str(usage))().strip()
            if not message or type(usage).__name__ == "NoArgsIsHelpError":
                message = "a command is needed; --help lists them"
            logging.getLogger(self.name).error("usage: %s", " ".join(message.split()))
        return int(getattr(usage, "exit_code", ExitCode.USAGE))

    def _interrupted(self, *, terminated: bool) -> int:
        how = "terminated (SIGTERM)" if terminated else "interrupted (Ctrl-C)"
        code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        if self._stopped_as is not None:  # no batch: nothing stays in line
            self.notice(f"{how}: {self._stopped_as}", level=logging.WARNING)
            return code
        said = f"{how}: units in flight were finished or abandoned cleanly"
        summary = self._progress.summary() if self._progress is not None else None
        rest = "the rest stay in line for the next run"
        if self.err.is_terminal:
            self.err.print(f"{said}; {rest}", style="yellow", markup=False, highlight=False)
            if summary is not None:
                self.err.print(f"  {summary.describe()}", markup=False, highlight=False)
        else:
            fields = summary.fields() if summary is not None else {}
            detail = f"; {summary.describe()}" if summary is not None else f"; {rest}"
            logging.getLogger(self.name).warning("%s%s", said, detail, extra=fields)
        return code

    def _add_global_options(self) -> None:
        import typer

        cli = self

        def version(value: bool) -> None:
            if value:
                cli.out.print(f"{cli.name} {package_version(cli.name)}", highlight=False)
                raise typer.Exit()

        @self.app.callback()
        def options(
            ctx: typer.Context,
            storage: Annotated[
                str | None,
                typer.Option("--storage", help="Store URL (s3://bucket/prefix or file:///dir)."),
            ] = None,
            create_store: Annotated[
                bool,
                typer.Option("--create", help="Create a local store directory that is missing."),
            ] = False,
            config_dir: Annotated[
                Path | None, typer.Option("--config-dir", help="Dataset contracts and etl.toml.")
            ] = None,
            log_level: Annotated[
                str | None,
                typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR or CRITICAL."),
            ] = None,
            log_format: Annotated[
                str | None, typer.Option("--log-format", help="auto, json or console.")
            ] = None,
            database_url: Annotated[
                str | None,
                typer.Option("--database-url", help="The platform database (setting)."),
            ] = None,
            show_version: Annotated[
                bool,
                typer.Option("--version", callback=version, is_eager=True, help="The version."),
            ] = False,
        ) -> None:
            """Options of every subcommand (flag > ETL_* environment > etl.toml > default)."""
            cli.out.widen_when_piped(160)  # piped or captured: whole table cells on one line
            flags = option_values(ctx, _GLOBAL_OPTIONS)
            flags["create_store"] = True if create_store else None  # --create, never "not"
            try:
                ctx.obj = open_session(
                    cli.lane,
                    cli.settings_class,
                    flags,
                    recorder=cli.recorder,
                    run_id=cli.run_id,
                    flag_names=typed_flags(ctx, _GLOBAL_OPTIONS),
                )
            except ConfigError as exc:  # logged as the start-up configured it (JSON off a tty)
                if _asks_for_help(cli._args):  # a subcommand's --help is read, not refused
                    ctx.obj = _RefusedSession(exc)
                    return
                asked = _format_asked(log_format)
                if cli.err.is_terminal or asked == "console":
                    cli.err.print(f"configuration error: {exc}", markup=False, highlight=False)
                else:
                    if log_format is not None and asked in ("auto", "json"):  # over the variable
                        fmt: LogFormat = "json" if asked == "json" else "auto"
                        configure_logging(fmt=fmt, stream=sys.stderr)
                    logging.getLogger(cli.name).error("configuration error: %s", exc)
                raise typer.Exit(ExitCode.USAGE) from None
            if "--json" in cli._args:  # its document on stdout: no EMF line among it
                ctx.obj = replace(ctx.obj, stdout_taken=True)
            cli._progress_interval = ctx.obj.settings.progress_interval

    def _add_config_commands(self) -> None:
        import typer

        cli = self
        config = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
        self.app.add_typer(config, name="config")

        @config.command("show")
        def show(
            ctx: typer.Context,
            as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        ) -> None:
            """Every setting with its value (secrets redacted) and where it came from.

            Each row also says what the setting means and its environment variable;
            the title names the etl.toml read."""
            session = cli.session(ctx)
            if as_json:
                cli.out.print_json(data=_settings_document(session))
                return
            from rich.table import Table
            from rich.text import Text

            title = Text(settings_file_read(session))
            table = Table(title=title, title_justify="left")
            table.add_column("setting", no_wrap=True)  # names stay whole: they are looked up
            table.add_column("value", overflow="fold")
            table.add_column("environment", no_wrap=True)
            table.add_column("source", overflow="fold")
            table.add_column("meaning", overflow="fold", ratio=1)
            for row in settings_table(session):
                table.add_row(*row)
            cli.out.print(table)

    def _add_contract_commands(self) -> None:
        import typer

        cli = self
        contracts = typer.Typer(help="Validate the dataset contracts.", no_args_is_help=True)
        self.app.add_typer(contracts, name="contracts")

        @contracts.command("check")
        def check(
            ctx: typer.Context,
            as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        ) -> None:
            """Validate every dataset contract of the config dir with this runtime's rules.

            Exit 0 when all are valid, 2 when not; each error names file, line and field.
            """
            config_dir = cli.session(ctx).settings.config_dir
            report = check_contracts(config_dir, validators=cli.validators)
            cli.out.print(
                report.render(as_json=as_json), markup=False, highlight=False, soft_wrap=True
            )
            raise typer.Exit(report.exit_code)

    def _add_ping_command(self) -> None:
        import typer

        cli = self

        @self.app.command("ping")
        def ping(
            ctx: typer.Context,
            timeout: Annotated[
                float,
                typer.Option(
                    "--timeout",
                    min=0.1,
                    max=60.0,
                    help="Seconds to reach the broker, and again to wait for answers.",
                ),
            ] = 5.0,
            any_host: Annotated[
                bool,
                typer.Option("--any-host", help="The lane's workers on every host."),
            ] = False,
        ) -> None:
            """Whether this lane's worker on this host answers (the images' health check).

            Exit 0 when one answered (each is printed), 1 when none did or the broker is
            unreachable, 2 without a broker or on one without remote control (SQS).
            """
            from etl_core.work.celery import celery_app, ping_workers

            settings = cli.session(ctx).settings
            app = celery_app(settings, cli.lane)
            names = ping_workers(app, settings, cli.lane, timeout=timeout, any_host=any_host)
            if not names:
                where = "on any host" if any_host else "on this host"
                cli.notice(
                    f"no {cli.lane} worker {where} answered within {timeout:g}s",
                    level=logging.ERROR,
                )
                raise typer.Exit(ExitCode.FAILED)
            for name in names:
                cli.out.print(f"{name}: pong", markup=False, highlight=False)


def _exporting_after_each_unit(
    session: Session[Any], lane: str, then: "Callable[[UnitResult[T]], None] | None"
) -> "Callable[[UnitResult[T]], None] | None":
    """A worker's ``on_result``: ``then``, followed by an export of what the worker process
    counted (its default registry) through the configured exporters but the Pushgateway
    (each process of each worker would replace the others' group), built once per process:
    a long-running worker's metrics go out as its units end, not at an exit that may never
    come; and once more as a pool process ends (recycled, or the worker's warm shutdown):
    what it counted after its last unit's end, or for a unit handed back, is not lost with
    it. A failing exporter is logged, never the unit's failure. A process killed outright
    (SIGKILL, the hard time limit) loses what its unit in flight counted, never more."""
    if not set(session.settings.metric_exporter_kinds()) - {"pushgateway"}:
        return then  # none configured: nothing exported after a unit
    export = _ProcessExport(session, f"etl_{lane}_worker")
    from celery.signals import worker_process_shutdown

    worker_process_shutdown.connect(export.at_exit, weak=False)

    def after(result: "UnitResult[T]") -> None:
        try:
            if then is not None:
                then(result)
        finally:
            export()

    return after


class _ProcessExport:
    """The default registry exported through the configured exporters (not the
    Pushgateway), built once per process: a forked pool process builds its own, so what its
    parent's exporters sent is neither known to it nor sent again."""

    def __init__(self, session: Session[Any], job: str) -> None:
        self._session = session
        self._job = job
        self._built: dict[int, list[MetricExporter]] = {}

    def __call__(self, *, last: bool = False) -> None:
        """Send what this process counted since its previous export (its socket and file
        kept open for the next unit's, closed after the ``last``)."""
        from etl_core.metrics import default_registry, export_through

        process = os.getpid()
        if process not in self._built:
            self._built.clear()
            self._built[process] = self._session.metric_exporters(self._job, pushgateway=False)
        export_through(self._built[process], default_registry(), close=last)

    def at_exit(self, **_: object) -> None:
        """Celery's ``worker_process_shutdown``: the last export of a pool process."""
        self(last=True)


def _format_asked(flag: str | None) -> str:
    """The log format ``--log-format``, else ``ETL_LOG_FORMAT``, asked for (lower case): with
    ``console``, a configuration error, found before the settings could configure logging,
    is said as plain text off a terminal too; a flag's ``auto`` or ``json`` overrules the
    variable the start-up's logging followed."""
    asked = flag if flag is not None else os.environ.get("ETL_LOG_FORMAT", "")
    return asked.strip().lower()


def _asks_for_help(args: Sequence[str]) -> bool:
    """Whether a subcommand's ``--help`` is among ``args`` (before any ``--``): its help is
    shown although the settings are refused, as ``git``'s is with a broken config."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--help":
            return True
    return False


_GLOBAL_OPTIONS = {
    "storage": "storage_url",
    "create_store": "create_store",
    "config_dir": "config_dir",
    "log_level": "log_level",
    "log_format": "log_format",
    "database_url": "database_url",
}
"""The global options setting a setting: parameter name to setting name."""


class _RefusedSession:
    """``ctx.obj`` when the settings were refused but help was asked for: a command that
    runs after all (``--help`` was an option's value) meets the refusal at its first use."""

    def __init__(self, error: ConfigError) -> None:
        self._error = error

    def __getattr__(self, name: str) -> Any:
        raise self._error


def _settings_document(session: Session[Any]) -> dict[str, object]:
    """``config show --json``: the settings file read and every setting explained."""
    path = settings_file(session)
    names = ("setting", "value", "environment", "source", "meaning")
    rows = [dict(zip(names, row, strict=True)) for row in settings_table(session)]
    for row in rows:
        row["value"] = json.loads(row["value"])
    return {
        "lane": session.lane,
        "settings_file": None if path is None else str(path),
        "settings": rows,
    }


def _require_extra() -> None:
    """Say which extra to install when Typer or Rich is missing."""
    import importlib.util

    for module in ("typer", "rich"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError("the command line", package="etl-core", extra="cli")


class PipeClosed(Exception):  # noqa: N818 - a condition, not a failure
    """The reader of stdout went away (``| head``)."""


def _spare_shutdown_collection() -> None:
    """Move every live object to the collector's permanent generation as the process ends.

    Interpreter shutdown otherwise walks the whole heap (tens of thousands of objects:
    modules, contracts, DuckDB's wrappers) in its garbage collections, about 20 ms of a
    short command's exit (issue 16, start-up). Objects are still freed as their modules
    are cleared; only unreachable cycles are left to the OS, whose finalizers Python
    never promised to run at exit.
    """
    gc.freeze()


class _PipeGuard:
    """stdout whose writes say :class:`PipeClosed` instead of ``BrokenPipeError``, which
    Typer would turn into exit 1 after the work is done."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            raise PipeClosed from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise PipeClosed from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _pipe_closed(stdout: Any) -> int:
    """Stop writing to a closed pipe, quietly (no "Exception ignored" at exit)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_PIPE_CLOSED
