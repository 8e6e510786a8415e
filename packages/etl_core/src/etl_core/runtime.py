"""What every runtime's entry point shares: exit codes, settings, run start-up, run recording.

A CLI gathers its flags into ``overrides`` and calls :func:`open_session`, which
loads :class:`RuntimeSettings` (flag > ``ETL_*`` environment > settings file >
default), configures logging once and binds a fresh ``run_id`` to every log
line. A job command then calls :meth:`Session.record_run`: with a database
configured and a run ledger plugged in, the run is recorded as it starts, and
:func:`run_entry_point` records how it ended from the exit code. A batch command
that exports its metrics at its end declares its job first
(:meth:`Session.exports_metrics_as`): :func:`run_entry_point` exports them on the way
out when the command ended otherwise (an error, a non-zero exit, Ctrl-C or SIGTERM).
Library code never calls this; only entry points do.
"""

from __future__ import annotations

import enum
import functools
import logging
import math
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from dataclasses import replace as replaced
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from etl_core.cli_flags import flag_source
from etl_core.config import (
    DEFAULT_SOURCE,
    URL,
    DatabaseURL,
    PushgatewayURL,
    ResultBackendURL,
    env_value,
    env_variables,
    load_settings_with_sources,
)
from etl_core.errors import (
    DATABASE_URL_SETTING,
    ConfigError,
    EtlError,
    FieldError,
    MissingDependencyError,
    StorageConfigError,
)
from etl_core.faults import fault_spec
from etl_core.lanes import LANES
from etl_core.logging import bind_context, bind_process_context, configure_logging
from etl_core.metrics.exporter import MetricExporterKind
from etl_core.redaction import redact_text
from etl_core.runs import RecordedRun, RunRecorder, RunStart, exit_code_of, finish_open_runs
from etl_core.setting_checks import SettingChecks

if TYPE_CHECKING:
    from etl_core.metrics import MetricExporter, Registry
    from etl_core.storage import ObjectStore

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_STORAGE_DIR",
    "ENV_ALIASES",
    "LANES",
    "ExitCode",
    "RecorderFactory",
    "RuntimeSettings",
    "Session",
    "find_settings_file",
    "lane_settings",
    "lane_variables",
    "load_runtime_settings",
    "name_setting_sources",
    "new_run_id",
    "open_session",
    "process_alive",
    "process_started",
    "run_entry_point",
    "start_run",
]

DEFAULT_STORAGE_DIR = Path(".etl") / "store"
SETTINGS_FILE_NAME = "etl.toml"


ENV_ALIASES: dict[str, str] = {"database_url": "DATABASE_URL"}
"""Settings also read from a conventional variable, below their ``ETL_*`` one."""

S = TypeVar("S", bound="RuntimeSettings")
RecorderFactory = Callable[[str], RunRecorder]
"""Builds a run ledger for a database URL; raises MissingDependencyError when it cannot."""
_said: set[str] = set()
_declared: dict[str, _DeclaredExport] = {}
"""The batch jobs whose metrics this process's command exports as it ends, by job name, not
yet exported (:meth:`Session.exports_metrics_as`, :func:`run_entry_point`)."""
_declared_lock = threading.Lock()


class ExitCode(enum.IntEnum):
    """Process exit codes shared by every runtime (docs/architecture.md section 6)."""

    OK = 0
    """The job succeeded."""
    FAILED = 1
    """The job failed."""
    USAGE = 2
    """Bad usage or configuration."""
    PARTIAL = 3
    """The job completed, but some inputs were quarantined or some checks failed."""


@dataclass(frozen=True)
class RuntimeSettings:
    """Settings every runtime understands. Runtimes subclass it to add their own.

    Each field is set by a flag, by ``ETL_<FIELD>`` (for example
    ``ETL_STORAGE_URL``), by ``<config dir>/etl.toml``, or falls back to a default
    that works locally.
    """

    storage_url: str = field(default_factory=lambda: str(DEFAULT_STORAGE_DIR))
    """``s3://bucket/prefix``, ``file:///abs/dir`` or a local directory path."""
    s3_endpoint_url: URL | None = None
    """S3-compatible endpoint (MinIO, moto); AWS when unset."""
    s3_region: str | None = None
    """AWS region of the bucket; the AWS configuration's when unset."""
    create_store: bool = False
    """Create ``storage_url``'s directory when it is missing (a local store only); without
    it a missing directory is a configuration error, never an empty store."""
    s3_connect_timeout: float = 5.0
    """Seconds to connect to S3; the start-up check also waits at most this long."""
    s3_read_timeout: float = 30.0
    """Seconds to wait for S3's answer to one request before retrying it."""
    work_dir: Path | None = None
    """Scratch space (system temp when unset): downloads, decrypted and unpacked members,
    staged inputs, DuckDB spill files and Parquet before upload; what a killed run left
    there is removed by the next one."""
    config_dir: Path = Path("config")
    """Directory of dataset contracts and of the optional ``etl.toml``."""
    cache_dir: Path | None = None
    """What later runs may reuse (``$XDG_CACHE_HOME/etl``, else ``~/.cache/etl``, when
    unset; neither known: nothing is reused): the contracts that passed the lane's engine
    rules, so an unchanged contract is not probed again at every start."""
    contract_memo: bool = True
    """Remember the contracts that passed the lane's engine rules under ``cache_dir``;
    off: every run checks every contract with the engine again."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """The least severe log records written to stderr."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """``json``: one JSON object per line; ``console``: readable lines; ``auto``: console on
    a terminal, JSON otherwise."""
    progress_interval: float = 10.0
    """Seconds between progress log lines when stderr is not a terminal (0: none); on a
    terminal a progress bar is drawn instead."""
    pushgateway_url: PushgatewayURL | None = None
    """Prometheus Pushgateway that batch jobs push their metrics to at exit (exporter
    ``pushgateway``)."""
    pushgateway_exit_timeout: float = 3.0
    """Seconds a push waits for the Pushgateway on the way out of a command stopped before
    its job's end (an error, Ctrl-C, SIGTERM), instead of the 10 s of a push at the job's
    end: a SIGTERM'd process is killed when its grace period ends (30 s on Kubernetes and
    ECS), which the units in flight have already used; a gateway that answers does so in
    well under a second."""
    metrics_exporters: tuple[MetricExporterKind, ...] | None = None
    """Where batch jobs export their metrics at exit: ``pushgateway``, ``emf`` (CloudWatch
    Embedded Metric Format lines), ``statsd`` (a StatsD or Datadog agent), several
    comma-separated; unset (an empty variable too): ``pushgateway`` when ``pushgateway_url``
    is set, else none; ``[]`` in ``etl.toml``: none."""
    emf_namespace: str = "etl"
    """Exporter ``emf``: the CloudWatch namespace of the metrics."""
    emf_output: str = "stderr"
    """Exporter ``emf``: where the lines go: ``stderr`` (Lambda and ECS's awslogs driver send
    it to CloudWatch Logs as they send stdout, and a command's own output on stdout, a table
    or ``--json``'s document, stays whole), ``stdout``, or a file appended to."""
    statsd_address: str = "127.0.0.1:8125"
    """Exporter ``statsd``: the agent's ``host:port`` (UDP; ``[::1]:8125`` for IPv6)."""
    statsd_prefix: str = ""
    """Exporter ``statsd``: put before every metric name as written (``prod.``)."""
    statsd_tag_format: Literal["dogstatsd", "none"] = "dogstatsd"
    """Exporter ``statsd``: labels as DogStatsD tags (``|#dataset:pos``), or ``none``: as
    ``.<label>.<value>`` name suffixes, for a plain StatsD server."""
    database_url: DatabaseURL | None = None
    """The platform database (``postgresql://…``, ``sqlite:///…``); none: database features off.

    Also read from ``DATABASE_URL`` when ``ETL_DATABASE_URL`` is not set, empty or blank.
    """
    executor: Literal["local", "celery"] = "local"
    """Where fanned-out work units run: ``local``, a bounded pool of this process; ``celery``,
    one task per unit on the lane's broker queue, run by ``worker`` processes (extra ``celery``)."""
    broker_url: URL | None = None
    """The Celery broker (``redis://``, ``amqp://``, ``sqs://``); needed by ``--executor celery``
    and by ``worker``."""
    result_backend: ResultBackendURL | None = None
    """Where workers leave unit results for a waiting caller; unset: the broker itself on
    ``redis://``, ``rpc://`` on ``amqp://`` (an ``sqs://`` broker needs one set)."""
    queue_prefix: str = ""
    """Put before each lane's queue names (``staging.file_processing``), so environments or
    test runs can share one broker without taking each other's tasks."""
    task_soft_time_limit: timedelta = timedelta(minutes=55)
    """A unit still running after this on a worker is interrupted and reported failed."""
    task_time_limit: timedelta = timedelta(hours=1)
    """A unit still running after this has its worker process killed and replaced; above the
    soft limit."""
    task_attempts: int = 3
    """Tries of a unit failing with retryable errors (backing off between them) before its
    message is moved to the lane's dead-letter queue."""
    task_max_deliveries: int = 5
    """Deliveries of one message whose unit never ends (it kills its worker process) before
    the next one moves it to the lane's dead-letter queue instead of running it again."""
    broker_visibility_timeout: timedelta | None = None
    """Redis and SQS brokers: how long a message taken by a worker stays hidden before it is
    redelivered if never acknowledged; above ``task_time_limit`` (unset: that plus 10 minutes)."""
    schedule_lease_seconds: timedelta = timedelta(seconds=60)
    """``schedule``: how long the leading scheduler's lease lasts without its heartbeat; a
    standing-by scheduler takes over at most this long after the leader died."""
    schedule_tick: timedelta = timedelta(seconds=1)
    """``schedule``: how often a scheduler looks at the clock (and, standing by, the lease)."""

    def __post_init__(self) -> None:
        """Refuse what no run can keep, every such value at once (``_check``), said at
        start-up naming each, not as a traceback or a silent busy loop later."""
        checks = SettingChecks(self)
        self._check(checks)
        checks.done()

    def _check(self, checks: SettingChecks) -> None:
        """Timeouts, the scheduler's tick and lease, the metric exporters; a lane adds its
        own after these."""
        self._check_exporters(checks)
        for name in ("s3_connect_timeout", "s3_read_timeout", "pushgateway_exit_timeout"):
            checks.require(getattr(self, name) > 0, name, "above 0 seconds")
            # a socket cannot wait "inf" (OverflowError): the call, or the export, was lost
            checks.require(math.isfinite(getattr(self, name)), name, "a finite number of seconds")
        checks.require(self.progress_interval >= 0, "progress_interval", "0 (none) or more seconds")
        checks.positive_interval("schedule_tick")
        tick = self.schedule_tick.total_seconds()
        if checks.refuses("schedule_tick"):  # the lease on its own, not against that tick
            checks.positive_interval("schedule_lease_seconds")
        else:
            checks.require(
                self.schedule_lease_seconds.total_seconds() > tick,
                "schedule_lease_seconds",
                f"longer than schedule_tick ({tick:g}s)",
            )

    def _check_exporters(self, checks: SettingChecks) -> None:
        """The chosen exporters' settings, refused at start-up rather than at the end of a
        job whose metrics would then be lost (the exporters load only when one is chosen)."""
        chosen = self.metrics_exporters or ()
        checks.require(
            "pushgateway" not in chosen or bool(self.pushgateway_url),
            "metrics_exporters",
            "a list naming 'pushgateway' only when pushgateway_url is set",
        )
        if "emf" in chosen:
            from etl_core.metrics.emf import (
                EMF_NAMESPACE_RULE,
                emf_output_usable,
                valid_emf_namespace,
            )

            checks.require(
                valid_emf_namespace(self.emf_namespace), "emf_namespace", EMF_NAMESPACE_RULE
            )
            checks.require(
                emf_output_usable(self.emf_output),
                "emf_output",
                "stderr, stdout or a file in a directory that exists (no space at either end)",
            )
        if "statsd" in chosen:
            from etl_core.metrics.statsd import (
                STATSD_ADDRESS_RULE,
                STATSD_PREFIX_RULE,
                parse_statsd_address,
                valid_statsd_prefix,
            )

            try:
                parse_statsd_address(self.statsd_address)
            except ValueError:
                checks.require(False, "statsd_address", STATSD_ADDRESS_RULE)
            checks.require(
                valid_statsd_prefix(self.statsd_prefix), "statsd_prefix", STATSD_PREFIX_RULE
            )

    def metric_exporter_kinds(self) -> tuple[str, ...]:
        """The exporters batch jobs export through: ``metrics_exporters``, or the
        Pushgateway when only ``pushgateway_url`` is set."""
        from etl_core.metrics.choice import chosen_exporters

        return chosen_exporters(self, self.metrics_exporters)

    def contract_memo_dir(self) -> Path | None:
        """Where the contract loader remembers validators' passes; ``None`` when off."""
        if not self.contract_memo:
            return None
        from etl_core.contracts.memo import default_cache_dir

        return self.cache_dir if self.cache_dir is not None else default_cache_dir()


def find_settings_file(
    overrides: Mapping[str, object], env: Mapping[str, str], env_prefix: str = "ETL_"
) -> Path | None:
    """The settings file: ``settings_file`` flag, ``ETL_SETTINGS_FILE`` or ``<config>/etl.toml``
    when anything is at that name (an empty or blank variable counts as unset, as every
    settings variable)."""
    explicit = overrides.get("settings_file") or env_value(env, f"{env_prefix}SETTINGS_FILE")
    if explicit:
        return Path(str(explicit))
    config_dir = (
        overrides.get("config_dir") or env_value(env, f"{env_prefix}CONFIG_DIR") or "config"
    )
    candidate = Path(str(config_dir)) / SETTINGS_FILE_NAME
    # anything at that name is read (and refused when it is no file: a directory a bind
    # mount of a missing file left, a FIFO, a symlink loop), never skipped as if absent
    return candidate if os.path.lexists(candidate) else None


def load_runtime_settings(
    cls: type[S],
    overrides: Mapping[str, object] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    lane: str | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> tuple[S, dict[str, str]]:
    """Load ``cls`` with the platform's precedence and say where each value came from.

    ``overrides`` holds command-line flags; ``None`` values (flags not given)
    are dropped, and ``settings_file`` selects the TOML file. ``flag_names`` holds the
    flag each was typed as (``{"serve_port": "--port"}``, :func:`etl_core.cli_flags.typed_flags`):
    a value refused names it (``from flag --port``), not the setting it overrides. A setting of
    :data:`ENV_ALIASES` is also read from its conventional variable
    (``DATABASE_URL``) when its ``ETL_*`` one is not set, empty or blank.

    One ``etl.toml`` serves every lane: its top-level keys are read by each, then the
    table named after ``lane`` (``[file_processing]``), whose keys win; the tables of
    the other :data:`LANES` are left to them.

    Raises:
        ConfigError: every invalid field at once, each with its source.
    """
    environ = os.environ if env is None else env
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    toml_path = find_settings_file(given, environ)
    named_by = _settings_file_named_by(given, environ)
    given.pop("settings_file", None)
    settings, sources = load_settings_with_sources(
        cls,
        toml_path=toml_path,
        env=environ,
        overrides=given,
        env_aliases=ENV_ALIASES,
        toml_section=lane,
        toml_sections=LANES,
        env_elsewhere=lane_variables,
        toml_elsewhere=lane_settings,
        toml_named_by=named_by,
        override_sources={name: flag_source(flag) for name, flag in (flag_names or {}).items()},
    )
    _loaded_sources.clear()
    _loaded_sources.update(sources)
    return settings, sources


def _settings_file_named_by(
    overrides: Mapping[str, object], env: Mapping[str, str]
) -> tuple[str, str] | None:
    """The setting that named the settings file, as ``(field, source)``, when one did (a
    ``<config>/etl.toml`` found is named by no one): a file it names that cannot be read
    is refused naming it, as every other refusal of a setting names its source."""
    if overrides.get("settings_file"):
        return "settings_file", "override settings_file"
    if env_value(env, "ETL_SETTINGS_FILE"):
        return "ETL_SETTINGS_FILE", "env ETL_SETTINGS_FILE"
    return None


@functools.cache
def lane_variables() -> frozenset[str]:
    """The ``ETL_*`` variables of every installed lane's settings (``<lane>.settings`` of
    :data:`LANES`, imported only when asked: when a variable would be warned about).

    One environment often serves every lane (a shell, a deployment's shared block): a
    setting of one lane is no misspelling in another (``ETL_SQS_ENDPOINT_URL``, read by
    file_processing, is not a misspelt ``ETL_S3_ENDPOINT_URL`` in data_pipeline).
    """
    _import_lane_settings()
    names: set[str] = set()
    pending: list[type[RuntimeSettings]] = [RuntimeSettings]
    while pending:
        cls = pending.pop()
        names |= env_variables(cls)
        pending.extend(cls.__subclasses__())
    return frozenset(names)


def lane_settings() -> dict[str, tuple[str, ...]]:
    """Each setting of an installed lane's own settings class (``<lane>.settings``) and the
    lanes that have it, imported only when asked: when a shared ``etl.toml`` holds a key
    this lane does not know at its top level.

    ``duckdb_threads`` at the top level of a file every lane reads is data_pipeline's,
    misplaced: file_processing says so, naming ``[data_pipeline]``, instead of asking
    whether ``quality_threads`` was meant.
    """
    _import_lane_settings()
    owners: dict[str, list[str]] = {}
    pending: list[type[RuntimeSettings]] = list(RuntimeSettings.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        lane = cls.__module__.split(".", 1)[0]
        if lane not in LANES:
            continue
        for setting in dataclass_fields(cls):
            lanes = owners.setdefault(setting.name, [])
            if lane not in lanes:
                lanes.append(lane)
    return {name: tuple(sorted(lanes)) for name, lanes in owners.items()}


def _import_lane_settings() -> None:
    """Import every installed lane's settings module, so its settings class is known."""
    for lane in LANES:
        try:
            import_module(f"{lane}.settings")
        except ImportError:  # not installed here (or unusable): its settings stay unknown
            continue


def new_run_id() -> str:
    """A sortable, unique run id: UTC timestamp plus random suffix (``20261125T180401Z-1a2b3c``)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (for taking over stale claims).

    A killed process that its parent has not reaped yet (a zombie) still answers
    ``kill(pid, 0)`` but will never publish again, so it counts as dead: a Celery worker's
    child killed mid-unit is such a zombie when the broker redelivers its message.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def process_started(pid: int) -> int:
    """When process ``pid`` started, in clock ticks since boot (Linux ``/proc``), or ``0``
    when unknown: a pid that runs with another start time is another process (reused)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[-1].split()
        return int(fields[19])  # field 22 of stat(5); the name and pid come before ")"
    except (OSError, IndexError, ValueError):
        return 0


def _is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and awaits its parent (Linux ``/proc``; elsewhere: no)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[-1].split()
    except OSError:
        return False
    return bool(fields) and fields[0] in (b"Z", b"X")


def start_run(lane: str, settings: RuntimeSettings, *, run_id: str | None = None) -> str:
    """Configure logging from ``settings`` and bind ``lane`` and a run id to every log line
    (from every thread of the process, a library's own included)."""
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    chosen = run_id or new_run_id()
    bind_process_context(lane=lane, run_id=chosen)
    bind_context(lane=lane, run_id=chosen)
    return chosen


@dataclass(frozen=True)
class Session(Generic[S]):
    """A started run: its settings, where each came from, and its run id.

    ``flags`` are the command-line values the settings were loaded with (so a
    subcommand's own flags can be layered on, :meth:`with_flags`); ``recorder``
    builds the lane's run ledger for :meth:`record_run`.
    """

    lane: str
    settings: S
    sources: dict[str, str]
    run_id: str
    flags: Mapping[str, object] = field(default_factory=dict)
    recorder: RecorderFactory | None = None
    env: Mapping[str, str] | None = None
    flag_names: Mapping[str, str] = field(default_factory=dict)
    """The flag each of ``flags`` was typed as, by setting name (``{"serve_port": "--port"}``,
    :func:`etl_core.cli_flags.typed_flags`): a value refused names the flag, not the setting."""
    stdout_taken: bool = False
    """The command prints a document on stdout (``--json``): EMF lines asked for on
    ``stdout`` go to ``stderr`` instead (CloudWatch reads both), so the document parses."""
    _exporters: dict[str, list[MetricExporter]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """The exporters :meth:`export_metrics` built, by job: a command exporting as it goes,
    then at exit, sends what changed since, not its totals twice."""

    def __getstate__(self) -> dict[str, object]:
        """What a pickled session carries (``serve`` hands it to its cycle process): not
        the exporters built here, which hold sockets and locks; the copy builds its own."""
        return {**vars(self), "_exporters": {}}

    def with_flags(
        self, flags: Mapping[str, object], *, flag_names: Mapping[str, str] | None = None
    ) -> Session[S]:
        """This session with more command-line flags (a subcommand's), same run id.

        Flags given as ``None`` (not on the command line) change nothing. ``flag_names``
        holds the flag each was typed as (``{"serve_port": "--port"}``); one it does not
        name is said to come from ``override <setting>``.

        Raises:
            ConfigError: a flag's value is invalid.
        """
        given = {name: value for name, value in flags.items() if value is not None}
        if not given:
            return self
        merged = {**self.flags, **given}
        kept = {name: flag for name, flag in self.flag_names.items() if name not in given}
        typed = {name: flag for name, flag in (flag_names or {}).items() if name in given}
        names = {**kept, **typed}
        settings, sources = load_runtime_settings(
            type(self.settings), merged, env=self.env, lane=self.lane, flag_names=names
        )
        return replaced(self, settings=settings, sources=sources, flags=merged, flag_names=names)

    def record_run(
        self,
        job: str,
        *,
        dataset: str = "",
        parameters: Mapping[str, object] | None = None,
    ) -> RecordedRun:
        """Start this run of ``job`` in the run ledger, when there is one.

        With ``database_url`` set and the lane's run ledger available, the run is
        recorded now as running; :func:`run_entry_point` records how it ended from the
        process's exit code (or use the result as a context manager). Without a
        database, or without the lane's ``schema`` extra, nothing is recorded; that is
        said once in the log (DEBUG, INFO), never an error.

        Raises:
            EtlError: the configured database cannot record the run (unreachable:
                retryable; unusable as configured: a configuration error).
        """
        from etl_core.storage.leases import this_holder  # it imports this module

        start = RunStart(
            self.run_id,
            self.lane,
            job,
            dataset,
            dict(parameters or {}),
            datetime.now(UTC),
            this_holder().to_dict(),
        )
        return RecordedRun(start, self._run_ledger())

    def _run_ledger(self) -> RunRecorder | None:
        url = self.settings.database_url
        if url is None:
            _say_once(logging.DEBUG, "runs are not recorded: no database_url is configured")
            return None
        if self.recorder is None:
            _say_once(logging.DEBUG, f"runs are not recorded: {self.lane} has no run ledger")
            return None
        try:
            return self.recorder(str(url))
        except MissingDependencyError as exc:
            _say_once(logging.INFO, f"runs are not recorded: {exc}")
            return None

    def open_store(self) -> ObjectStore:
        """The object store named by ``storage_url``, checked to be there and to answer.

        A local directory that does not exist is created only with ``create_store``;
        an S3 endpoint that does not answer fails within ``s3_connect_timeout``.

        Raises:
            StorageConfigError: the store does not exist, or its URL is invalid.
            StorageError: the store cannot be reached.
        """
        from etl_core.storage import (
            InvalidStoreURLError,
            open_store,
            parse_store_url,
            shown_location,
        )

        settings = self.settings
        try:
            location = parse_store_url(settings.storage_url)
        except InvalidStoreURLError as exc:  # name the setting, and where its value came from
            source = self.sources.get("storage_url", DEFAULT_SOURCE)
            raise InvalidStoreURLError(f"storage_url (from {source}): {exc}", url=exc.url) from None
        if location.scheme != "s3":
            assert location.path is not None
            if settings.create_store:
                location.path.mkdir(parents=True, exist_ok=True)
            elif not location.path.exists():
                raise StorageConfigError(
                    f"the store {shown_location(location.url)} does not exist: create the "
                    "directory, or let "
                    "the runtime create it (--create, ETL_CREATE_STORE=true)",
                    url=location.url,
                )
            store = open_store(location.url)
        else:
            store = open_store(
                location.url,
                endpoint_url=settings.s3_endpoint_url,
                region=settings.s3_region,
                connect_timeout=settings.s3_connect_timeout,
                read_timeout=settings.s3_read_timeout,
            )
        try:
            store.check(timeout=settings.s3_connect_timeout)
            if not settings.create_store:
                _warn_if_empty(store, location.url)
        except BaseException:
            store.close()
            raise
        return store

    def export_metrics(
        self,
        job: str,
        registry: Registry | None = None,
        *,
        pushgateway: bool = True,
        close: bool = True,
        pushgateway_timeout: float | None = None,
    ) -> bool:
        """Export ``registry`` (the default registry) through every configured exporter
        (:meth:`RuntimeSettings.metric_exporter_kinds`), as job ``job``.

        A batch job calls this at exit; a long-running command also as it goes, with
        ``pushgateway=False`` (a group replaced mid-run would look like the run's end) and
        ``close=False`` (its socket and file stay open for the next export): the exporters
        are built once per job, so what went out is not sent again.
        ``pushgateway_timeout``: the seconds a push waits for the gateway (its own 10 s when
        ``None``; the way out uses ``pushgateway_exit_timeout``). A failing
        exporter is logged (masked: no credential of ``pushgateway_url``), never fatal,
        and never stops the others: the job's own outcome matters more than its metrics.

        A job declared with :meth:`exports_metrics_as` is exported only once: this export
        (with ``close``, the default) is its last, and none follows as the command ends;
        nor after an export of it cut short by Ctrl-C or SIGTERM, which may have sent what
        its exporters had not yet recorded as sent (a count twice is worse than one lost).

        Returns:
            Whether every exporter asked for exported (``False`` when none is configured).
        """
        from etl_core.metrics import default_registry, export_through

        if close:  # the job's last export: none more as the command ends
            with _declared_lock:
                _declared.pop(job, None)
        if job not in self._exporters:
            self._exporters[job] = self.metric_exporters(job)
        exporters = [e for e in self._exporters[job] if pushgateway or e.kind != "pushgateway"]
        if not exporters:
            return False
        if pushgateway_timeout is not None:
            from etl_core.metrics import PushgatewayExporter

            exporters = [
                e.with_timeout(pushgateway_timeout) if isinstance(e, PushgatewayExporter) else e
                for e in exporters
            ]
        chosen = registry if registry is not None else default_registry()
        try:
            return not export_through(exporters, chosen, close=close)
        except BaseException:  # cut short by Ctrl-C or SIGTERM: what went out is unknown (a
            # datagram sent, not yet recorded as sent), so none follows it on the way out
            with _declared_lock:
                _declared.pop(job, None)
            raise

    def exports_metrics_as(
        self, job: str, registry: Registry | None = None, *, pushgateway: bool = True
    ) -> None:
        """Declare that this command's metrics go out as ``job`` however the command ends.

        A batch command declares its job once its work starts, and still calls
        :meth:`export_metrics` at its end; when it ends otherwise (an error, an exit code
        raised before that call, Ctrl-C or SIGTERM), :func:`run_entry_point` exports
        ``registry`` (the default registry) as ``job`` on the way out: a failing or
        interrupted run's counts are what the operator needs to see, and were lost. An
        export that happened (:meth:`export_metrics`) is never repeated.
        ``pushgateway=False`` leaves the Pushgateway out of that export (a scheduler
        standing by: its group would replace the leader's); declaring ``job`` again
        replaces its declaration.
        """
        with _declared_lock:
            _declared[job] = _DeclaredExport(self, job, registry, pushgateway)

    def metric_exporters(self, job: str, *, pushgateway: bool = True) -> list[MetricExporter]:
        """The configured exporters, built once for a process that exports more than once
        (each remembers what it sent, so a push protocol sends only what changed).

        ``pushgateway=False`` leaves the Pushgateway out: for a process Prometheus scrapes
        (``serve``: its group would be a second copy of every series) and for worker
        processes (each would replace the others' group). An exporter that cannot be
        built is logged and left out (the settings' checks refuse its settings at start-up).
        """
        from etl_core.metrics import configured_exporters

        kinds = self.settings.metric_exporter_kinds()
        if not pushgateway:
            kinds = tuple(kind for kind in kinds if kind != "pushgateway")
        settings: RuntimeSettings = self.settings
        if "emf" in kinds and self.stdout_taken and settings.emf_output == "stdout":
            logger.info("EMF lines go to stderr: --json prints its document on stdout")
            settings = replaced(settings, emf_output="stderr")
        try:
            return configured_exporters(settings, kinds, job)
        except EtlError as exc:
            logger.warning("metrics not exported: %s", redact_text(str(exc)))
            return []

    def push_metrics(self, job: str) -> bool:
        """:meth:`export_metrics` of the default registry (the name from before exporters
        were configurable, when the Pushgateway was the only one)."""
        return self.export_metrics(job)


@dataclass(frozen=True)
class _DeclaredExport:
    """A batch job's export still to come (:meth:`Session.exports_metrics_as`)."""

    session: Session[Any]
    job: str
    registry: Registry | None
    pushgateway: bool = True


def _export_declared_metrics() -> None:
    """Export every batch job declared (:meth:`Session.exports_metrics_as`) and not exported
    yet: the way out of a command that ended before its own export (an error, an exit, an
    interruption). A failing exporter is a warning, as at a job's end; a second Ctrl-C
    during it gives the export up (said in the log), never the exit code. A push waits
    ``pushgateway_exit_timeout`` for the Pushgateway, not its 10 s: a SIGTERM'd process
    has spent most of its grace period on its units in flight by now."""
    with _declared_lock:
        pending = list(_declared.values())
        _declared.clear()
    for declared in pending:
        try:
            session = declared.session
            timeout = session.settings.pushgateway_exit_timeout
            session.export_metrics(
                declared.job,
                declared.registry,
                pushgateway=declared.pushgateway,
                pushgateway_timeout=timeout,
            )
        except KeyboardInterrupt:
            logger.warning("metrics of %s not exported: interrupted again", declared.job)
            return
        except Exception as exc:  # an exporter's bug: a warning, never the command's exit
            logger.warning("metrics of %s not exported: %s", declared.job, redact_text(repr(exc)))


def _forget_declared_metrics() -> None:
    """A command starts with no job declared (an earlier one run in this process, by a
    test, left no export behind to be sent at this one's end)."""
    with _declared_lock:
        _declared.clear()


def open_session(
    lane: str,
    cls: type[S],
    flags: Mapping[str, object] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    recorder: RecorderFactory | None = None,
    run_id: str | None = None,
    flag_names: Mapping[str, str] | None = None,
) -> Session[S]:
    """Load settings, configure logging and bind a run id: a CLI's whole start-up.

    Args:
        lane: The runtime's name, bound to every log line and recorded with its runs.
        cls: Its settings class.
        flags: The command-line values (``None``: not given).
        env: The environment to read (``os.environ`` when ``None``).
        recorder: Builds the lane's run ledger for a database URL (its ``db``
            adapter's); :meth:`Session.record_run` uses it when ``database_url`` is set.
        run_id: The run id, when the caller chose one already (a new one otherwise).
        flag_names: The flag each of ``flags`` was typed as (``{"storage_url":
            "--storage"}``), so a refused value names it (:func:`etl_core.cli_flags.typed_flags`).

    Raises:
        ConfigError: the settings are invalid (a CLI exits with ``ExitCode.USAGE``).
    """
    given = dict(flags or {})
    fault_spec(env)  # a malformed test-only fault is refused before any work
    named = {name: flag for name, flag in (flag_names or {}).items() if given.get(name) is not None}
    settings, sources = load_runtime_settings(cls, given, env=env, lane=lane, flag_names=named)
    chosen = start_run(lane, settings, run_id=run_id)
    return Session(lane, settings, sources, chosen, given, recorder, env, named)


_loaded_sources: dict[str, str] = {}
"""Where each setting this process loaded last came from (:func:`load_runtime_settings`),
for the configuration errors found after loading, whose fields cannot say it."""


def loaded_source(setting: str) -> str:
    """Where this process's value of ``setting`` came from (a flag, a variable, a file and
    key), or ``default``: for an error found in a unit, far from the start-up."""
    return _loaded_sources.get(setting, DEFAULT_SOURCE)


def name_setting_sources(error: ConfigError) -> None:
    """Give ``error``'s fields found invalid after loading (the Celery settings, checked
    when a broker is used: ``(from default)``; a database error's ``DATABASE_URL``) the
    source their value came from, so an operator is sent to the variable, flag or file
    that set it. :func:`run_entry_point` does it for an error ending a command; a worker
    process for an error building its lane's context, which it logs itself."""
    found = [
        replaced(problem, source=_loaded_sources[problem.field])
        if problem.source == DEFAULT_SOURCE and problem.field in _loaded_sources
        else _config_dir_named(problem) or _database_url_named(problem)
        for problem in error.errors
    ]
    if tuple(found) == error.errors:
        return
    lines = str(error).split("\n")
    head = lines[: len(lines) - len(error.errors)]
    error.errors = tuple(found)
    error.args = ("\n".join([*head, *(f"  - {problem}" for problem in found)]), *error.args[1:])


def _config_dir_named(problem: FieldError) -> FieldError | None:
    """A ``config_dir`` error of the contracts' loading (its source the path it looked
    at, ``config/datasets``) with where the directory came from in front: a mistyped
    ``ETL_CONFIG_DIR`` or flag, or the default ``config`` of a command run elsewhere."""
    source = _loaded_sources.get("config_dir")
    if problem.field != "config_dir" or source is None or problem.source == source:
        return None
    return replaced(problem, source=f"{source}: {problem.source}")


def _database_url_named(problem: FieldError) -> FieldError:
    """A database error's ``DATABASE_URL`` field named as the operator set the URL: the
    flag ``--database-url``, the variable, or the ``etl.toml`` key (with its line), not
    ``DATABASE_URL`` for a URL that never came from that variable."""
    source = _loaded_sources.get("database_url", DEFAULT_SOURCE)
    if problem.source != DATABASE_URL_SETTING or source == DEFAULT_SOURCE:
        return problem
    if source.startswith("env "):  # etl-schema reads ETL_DATABASE_URL and DATABASE_URL too
        return replaced(problem, field=source.removeprefix("env "), source=source)
    # etl-schema does not read the flag nor etl.toml: its command names the URL to migrate
    said = problem.message.replace(
        "`etl-schema migrate`", "`etl-schema migrate --database-url <that URL>`"
    )
    if source.startswith(("flag ", "override ")):  # a command-line flag
        return replaced(problem, field="--database-url", message=said, source=source)
    return replaced(problem, field="database_url", message=said, source=source)  # etl.toml


def run_entry_point(app: Callable[[], object], *, name: str) -> None:
    """Run a CLI; a platform error escaping it is logged and becomes the exit code.

    Configuration problems (:class:`ConfigError`, a missing optional extra) exit
    with ``ExitCode.USAGE``; every other platform error with ``ExitCode.FAILED``, and so
    does an unexpected exception (a bug), logged with its traceback as one record.
    A run still being recorded (:meth:`Session.record_run`) is finished with the status
    the exit code means: 0 succeeded, 3 partial, anything else failed; then a batch job
    declared (:meth:`Session.exports_metrics_as`) and not exported yet is exported,
    whatever the way out (:func:`_export_declared_metrics`).
    """
    _forget_declared_metrics()
    try:
        app()
    except EtlError as exc:
        if isinstance(exc, ConfigError):
            name_setting_sources(exc)
        log = logging.getLogger(name)
        log.error("%s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        usage = isinstance(exc, ConfigError | MissingDependencyError)
        code = ExitCode.USAGE if usage else ExitCode.FAILED
        _ended(code, str(exc))
        raise SystemExit(code) from None
    except (SystemExit, KeyboardInterrupt) as exc:  # SystemExit carries the code
        ended = exit_code_of(exc)
        _ended(ended, "" if isinstance(exc, SystemExit) else repr(exc))
        raise
    except Exception as exc:  # a bug: logged like everything else (JSON off a terminal)
        logging.getLogger(name).critical("unexpected error: %r", exc, exc_info=True)
        _ended(ExitCode.FAILED, repr(exc))
        raise SystemExit(ExitCode.FAILED) from None
    _ended(ExitCode.OK, "")


def _ended(code: int, error: str) -> None:
    """A command's way out: its open runs finished, then its declared metrics exported.

    The run ledger first: an export can wait for an unreachable Pushgateway (its timeout),
    and a process SIGTERM stopped is killed when its grace period ends (30 s on
    Kubernetes); a run left "running" in the ledger is worse than counts lost.
    """
    finish_open_runs(code, error)
    _export_declared_metrics()


def _warn_if_empty(store: ObjectStore, url: str) -> None:
    """Say (once) that an S3 store holds nothing: a mistyped prefix is an empty store there,
    where a mistyped local directory is refused as missing."""
    from etl_core.storage import S3ObjectStore

    if isinstance(store, S3ObjectStore) and not store.holds_objects():
        _say_once(
            logging.WARNING,
            f"the store {url} holds no object: unless it is a new store, check the bucket "
            "and prefix of storage_url (ETL_STORAGE_URL); create_store "
            "(--create, ETL_CREATE_STORE=true) says an empty store is expected",
        )


def _say_once(level: int, message: str) -> None:
    """Log ``message`` the first time only (a long-running process records many runs)."""
    if message not in _said:
        _said.add(message)
        logger.log(level, message)
