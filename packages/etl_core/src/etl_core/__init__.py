"""etl_core: the platform's shared core, standard library only.

Configuration (:mod:`etl_core.config`), structured logging
(:mod:`etl_core.logging`), metrics (:mod:`etl_core.metrics`), object storage
over S3 and local directories (:mod:`etl_core.storage`), retry
(:mod:`etl_core.retry`), the runtime start-up every CLI shares
(:mod:`etl_core.runtime`) with its run-recording hook (:mod:`etl_core.runs`),
and what the lanes share in the store: its layout (:mod:`etl_core.layout`)
and the documents they write for each other (:mod:`etl_core.artifacts`). The
most used names are re-exported here; each module documents the rest.
Importing this package has no side effects.
"""

from typing import TYPE_CHECKING

from etl_core.exports import lazy_exports
from etl_core.retry import retry  # eager: a lazy name would lose to the submodule of its name

if TYPE_CHECKING:
    from etl_core import artifacts, layout, metrics
    from etl_core.config import URL, load_settings, load_settings_with_sources, redacted_dict
    from etl_core.errors import (
        ArtifactError,
        ConfigError,
        DataQualityError,
        EtlError,
        FatalError,
        FieldError,
        InvalidKeyError,
        MissingDependencyError,
        ObjectConflictError,
        ObjectNotFoundError,
        RetryableError,
        StorageError,
    )
    from etl_core.logging import (
        bind_context,
        bind_process_context,
        bound_context,
        clear_context,
        configure_logging,
        get_context,
        unbind_context,
    )
    from etl_core.retry import Retrying, RetryPolicy, retrying_async
    from etl_core.runtime import ExitCode, RuntimeSettings, Session, open_session
    from etl_core.secrets import Secret
    from etl_core.storage import ObjectInfo, ObjectStore, open_store, parse_store_url
    from etl_core.threads import ContextThreadPoolExecutor, start_thread
    from etl_core.units import ByteSize, parse_byte_size, parse_duration


_EXPORTS = {
    "ArtifactError": "etl_core.errors",
    "artifacts": "etl_core.artifacts",
    "bind_context": "etl_core.logging",
    "bind_process_context": "etl_core.logging",
    "bound_context": "etl_core.logging",
    "ByteSize": "etl_core.units",
    "clear_context": "etl_core.logging",
    "ConfigError": "etl_core.errors",
    "configure_logging": "etl_core.logging",
    "ContextThreadPoolExecutor": "etl_core.threads",
    "DataQualityError": "etl_core.errors",
    "EtlError": "etl_core.errors",
    "ExitCode": "etl_core.runtime",
    "FatalError": "etl_core.errors",
    "FieldError": "etl_core.errors",
    "get_context": "etl_core.logging",
    "InvalidKeyError": "etl_core.errors",
    "layout": "etl_core.layout",
    "load_settings": "etl_core.config",
    "load_settings_with_sources": "etl_core.config",
    "metrics": "etl_core.metrics",
    "MissingDependencyError": "etl_core.errors",
    "ObjectConflictError": "etl_core.errors",
    "ObjectInfo": "etl_core.storage",
    "ObjectNotFoundError": "etl_core.errors",
    "ObjectStore": "etl_core.storage",
    "open_session": "etl_core.runtime",
    "open_store": "etl_core.storage",
    "parse_byte_size": "etl_core.units",
    "parse_duration": "etl_core.units",
    "parse_store_url": "etl_core.storage",
    "redacted_dict": "etl_core.config",
    "RetryableError": "etl_core.errors",
    "Retrying": "etl_core.retry",
    "retrying_async": "etl_core.retry",
    "RetryPolicy": "etl_core.retry",
    "RuntimeSettings": "etl_core.runtime",
    "Secret": "etl_core.secrets",
    "Session": "etl_core.runtime",
    "start_thread": "etl_core.threads",
    "StorageError": "etl_core.errors",
    "unbind_context": "etl_core.logging",
    "URL": "etl_core.config",
}
"""Each re-exported name and its module, imported on first use (issue 16, start-up)."""


def package_version(distribution: str) -> str:
    """The installed version of ``distribution``; ``0.0.0`` in a source tree without an install.

    Looked up on demand: ``importlib.metadata`` is slow to import, and a CLI's every
    start-up would pay for it.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "0.0.0"


__getattr__, __dir__ = lazy_exports(
    __name__, _EXPORTS, {"__version__": lambda: package_version("etl-core")}
)

__all__ = [
    "URL",
    "ArtifactError",
    "ByteSize",
    "ConfigError",
    "ContextThreadPoolExecutor",
    "DataQualityError",
    "EtlError",
    "ExitCode",
    "FatalError",
    "FieldError",
    "InvalidKeyError",
    "MissingDependencyError",
    "ObjectConflictError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "RetryPolicy",
    "RetryableError",
    "Retrying",
    "RuntimeSettings",
    "Secret",
    "Session",
    "StorageError",
    "__version__",
    "artifacts",
    "bind_context",
    "bind_process_context",
    "bound_context",
    "clear_context",
    "configure_logging",
    "get_context",
    "layout",
    "load_settings",
    "load_settings_with_sources",
    "metrics",
    "open_session",
    "open_store",
    "package_version",
    "parse_byte_size",
    "parse_duration",
    "parse_store_url",
    "redacted_dict",
    "retry",
    "retrying_async",
    "start_thread",
    "unbind_context",
]
