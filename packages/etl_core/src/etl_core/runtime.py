"""What every runtime's entry point shares: exit codes, settings, run start-up.

A CLI gathers its flags into ``overrides`` and calls :func:`start_run`, which
loads :class:`RuntimeSettings` (flag > ``ETL_*`` environment > settings file >
default), configures logging once and binds a fresh ``run_id`` to every log
line. Library code never calls this; only entry points do.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from etl_core.config import URL, load_settings_with_sources, redacted_dict
from etl_core.errors import ConfigError, EtlError, MissingDependencyError
from etl_core.logging import bind_context, configure_logging

if TYPE_CHECKING:
    from etl_core.storage import ObjectStore

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_STORAGE_DIR",
    "ExitCode",
    "RuntimeSettings",
    "Session",
    "find_settings_file",
    "load_runtime_settings",
    "new_run_id",
    "open_session",
    "process_alive",
    "run_entry_point",
    "start_run",
]

DEFAULT_STORAGE_DIR = Path(".etl") / "store"
SETTINGS_FILE_NAME = "etl.toml"

S = TypeVar("S", bound="RuntimeSettings")


class ExitCode(enum.IntEnum):
    """Process exit codes shared by every runtime (DESIGN.md section 6)."""

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
    config_dir: Path = Path("config")
    """Directory of dataset contracts and of the optional ``etl.toml``."""
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"
    pushgateway_url: URL | None = None
    """Prometheus Pushgateway that batch jobs push their metrics to at exit."""


def find_settings_file(
    overrides: Mapping[str, object], env: Mapping[str, str], env_prefix: str = "ETL_"
) -> Path | None:
    """The settings file: ``settings_file`` flag, ``ETL_SETTINGS_FILE`` or ``<config>/etl.toml``."""
    explicit = overrides.get("settings_file") or env.get(f"{env_prefix}SETTINGS_FILE")
    if explicit:
        return Path(str(explicit))
    config_dir = overrides.get("config_dir") or env.get(f"{env_prefix}CONFIG_DIR") or "config"
    candidate = Path(str(config_dir)) / SETTINGS_FILE_NAME
    return candidate if candidate.is_file() else None


def load_runtime_settings(
    cls: type[S],
    overrides: Mapping[str, object] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> tuple[S, dict[str, str]]:
    """Load ``cls`` with the platform's precedence and say where each value came from.

    ``overrides`` holds command-line flags; ``None`` values (flags not given)
    are dropped, and ``settings_file`` selects the TOML file.

    Raises:
        ConfigError: every invalid field at once, each with its source.
    """
    environ = os.environ if env is None else env
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    toml_path = find_settings_file(given, environ)
    given.pop("settings_file", None)
    return load_settings_with_sources(cls, toml_path=toml_path, env=environ, overrides=given)


def new_run_id() -> str:
    """A sortable, unique run id: UTC timestamp plus random suffix (``20261125T180401Z-1a2b3c``)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (for taking over stale claims)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_run(lane: str, settings: RuntimeSettings, *, run_id: str | None = None) -> str:
    """Configure logging from ``settings`` and bind ``lane`` and a run id to every log line."""
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    chosen = run_id or new_run_id()
    bind_context(lane=lane, run_id=chosen)
    return chosen


@dataclass(frozen=True)
class Session(Generic[S]):
    """A started run: its settings, where each came from, and its run id."""

    lane: str
    settings: S
    sources: dict[str, str]
    run_id: str

    def open_store(self) -> ObjectStore:
        """The object store named by ``storage_url`` (S3 options applied)."""
        from etl_core.storage import open_store, parse_store_url

        url = self.settings.storage_url
        if parse_store_url(url).scheme != "s3":
            return open_store(url)
        return open_store(
            url, endpoint_url=self.settings.s3_endpoint_url, region=self.settings.s3_region
        )

    def push_metrics(self, job: str) -> bool:
        """Push the default registry to ``pushgateway_url``, if set, as group ``job``.

        A batch job calls this at exit; a failed push is logged, never fatal
        (the job's own outcome matters more than its metrics).

        Returns:
            Whether metrics were pushed.
        """
        url = self.settings.pushgateway_url
        if not url:
            return False
        from etl_core.metrics import push_to_gateway

        try:
            push_to_gateway(url, job)
        except (EtlError, OSError) as exc:
            logger.warning("metrics not pushed to %s: %s", url, exc)
            return False
        return True

    def settings_rows(self) -> list[tuple[str, str, str]]:
        """``(setting, value, source)`` rows for a ``config show``, secrets redacted."""
        return [
            (name, json.dumps(value, default=str), self.sources.get(name, "default"))
            for name, value in redacted_dict(self.settings).items()
        ]


def open_session(
    lane: str,
    cls: type[S],
    flags: Mapping[str, object] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Session[S]:
    """Load settings, configure logging and bind a run id: a CLI's whole start-up.

    Raises:
        ConfigError: the settings are invalid (a CLI exits with ``ExitCode.USAGE``).
    """
    settings, sources = load_runtime_settings(cls, flags, env=env)
    return Session(lane, settings, sources, start_run(lane, settings))


def run_entry_point(app: Callable[[], object], *, name: str) -> None:
    """Run a CLI; a platform error escaping it is logged and becomes the exit code.

    Configuration problems (:class:`ConfigError`, a missing optional extra) exit
    with ``ExitCode.USAGE``; every other platform error with ``ExitCode.FAILED``.
    """
    try:
        app()
    except EtlError as exc:
        log = logging.getLogger(name)
        log.error("%s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        usage = isinstance(exc, ConfigError | MissingDependencyError)
        raise SystemExit(ExitCode.USAGE if usage else ExitCode.FAILED) from None
