"""etl_core: the platform's shared core, standard library only.

Configuration (:mod:`etl_core.config`), structured logging
(:mod:`etl_core.logging`), metrics (:mod:`etl_core.metrics`), object storage
over S3 and local directories (:mod:`etl_core.storage`), retry
(:mod:`etl_core.retry`) and the runtime start-up every CLI shares
(:mod:`etl_core.runtime`). The most used names are re-exported here; each
module documents the rest. Importing this package has no side effects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etl_core import metrics
    from etl_core.config import URL, load_settings, load_settings_with_sources, redacted_dict
    from etl_core.errors import (
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
        bound_context,
        clear_context,
        configure_logging,
        get_context,
        unbind_context,
    )
    from etl_core.retry import Retrying, RetryPolicy, retry, retrying_async
    from etl_core.runtime import ExitCode, RuntimeSettings, Session, open_session
    from etl_core.secrets import Secret
    from etl_core.storage import ObjectInfo, ObjectStore, open_store, parse_store_url
    from etl_core.threads import ContextThreadPoolExecutor, start_thread
    from etl_core.units import ByteSize, parse_byte_size, parse_duration

# Name -> module it lives in: imported on first use, so a command pays only for the
# parts of the core it touches (start-up time is every CLI call's fixed cost).
_EXPORTS = {
    "metrics": "etl_core.metrics",
    "URL": "etl_core.config",
    "load_settings": "etl_core.config",
    "load_settings_with_sources": "etl_core.config",
    "redacted_dict": "etl_core.config",
    **dict.fromkeys(
        [
            "ConfigError",
            "DataQualityError",
            "EtlError",
            "FatalError",
            "FieldError",
            "InvalidKeyError",
            "MissingDependencyError",
            "ObjectConflictError",
            "ObjectNotFoundError",
            "RetryableError",
            "StorageError",
        ],
        "etl_core.errors",
    ),
    **dict.fromkeys(
        [
            "bind_context",
            "bound_context",
            "clear_context",
            "configure_logging",
            "get_context",
            "unbind_context",
        ],
        "etl_core.logging",
    ),
    **dict.fromkeys(["Retrying", "RetryPolicy", "retry", "retrying_async"], "etl_core.retry"),
    **dict.fromkeys(["ExitCode", "RuntimeSettings", "Session", "open_session"], "etl_core.runtime"),
    "Secret": "etl_core.secrets",
    **dict.fromkeys(
        ["ObjectInfo", "ObjectStore", "open_store", "parse_store_url"], "etl_core.storage"
    ),
    **dict.fromkeys(["ContextThreadPoolExecutor", "start_thread"], "etl_core.threads"),
    **dict.fromkeys(["ByteSize", "parse_byte_size", "parse_duration"], "etl_core.units"),
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return package_version("etl-core")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'etl_core' has no attribute {name!r}")
    imported = importlib.import_module(module)
    value = imported if module == f"etl_core.{name}" else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def package_version(distribution: str) -> str:
    """The installed version of ``distribution``; ``0.0.0`` in a source tree without an install."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "0.0.0"


__all__ = [
    "URL",
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
    "bind_context",
    "bound_context",
    "clear_context",
    "configure_logging",
    "get_context",
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
