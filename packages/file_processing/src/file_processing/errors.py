"""Errors of the file-processing runtime, rooted in :class:`etl_core.errors.EtlError`.

:class:`RefusedError` means "this file is at fault": the caller quarantines the
original and records the reason code. Any other :class:`FileProcessingError`
means the platform itself could not do the work (GnuPG missing, unusable key
material) and no file should be blamed for it. The database errors are the platform's
(:mod:`etl_core.errors`) in this runtime's tree: ``file_processing.db`` raises the
database door's failures as them, for the optional database mirror and run ledger.
"""

from __future__ import annotations

from etl_core import errors
from etl_core.errors import EtlError, MissingDependencyError
from file_processing.reasons import Reason

__all__ = [
    "DatabaseNotConfiguredError",
    "DatabaseNotReadyError",
    "DatabaseRefusedError",
    "DatabaseUnavailableError",
    "FileProcessingError",
    "GpgError",
    "QualityEngineError",
    "RefusedError",
    "SchemaNotInstalledError",
]


class FileProcessingError(EtlError):
    """Root of every error the file-processing runtime raises on purpose."""


class RefusedError(FileProcessingError):
    """The delivered file was refused, for the reason ``reason`` (a :class:`Reason` code).

    Attributes:
        reason: The reason code (a :class:`Reason`, equal to its dotted string).
        message: What was wrong, in words.
        member: The archive member involved (``delivery.zip/dir/a.csv``), when there is one.
    """

    def __init__(self, reason: Reason | str, message: str, *, member: str | None = None) -> None:
        try:
            self.reason = Reason(reason)
        except ValueError:
            raise ValueError(f"RefusedError: {reason!r} is not a known reason code") from None
        self.message = message
        self.member = member
        where = f" [{member}]" if member else ""
        super().__init__(f"{self.reason.value}: {message}{where}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keeps the error picklable, so a process pool can hand it back to its caller.
        return (_rebuild_refused, (type(self), self.reason.value, self.message, self.member))


def _rebuild_refused(
    cls: type[RefusedError], reason: str, message: str, member: str | None
) -> RefusedError:
    return cls(reason, message, member=member)


class GpgError(FileProcessingError):
    """GnuPG could not be run or set up: missing binary, unusable or locked key material."""


class QualityEngineError(FileProcessingError):
    """The quality engine failed on a file (out of memory, an internal error): never a verdict.

    The file is not blamed: its object stays in line for the next run.

    Attributes:
        file: The data file (an archive member's path) being checked.
        detail: The engine's own message.
    """

    def __init__(self, file: str, detail: str) -> None:
        self.file = file
        self.detail = detail
        hint = ""
        if "out of memory" in detail.lower():
            hint = "; raise quality_memory_limit or lower concurrency, then run again"
        super().__init__(f"the quality engine failed on {file}: {detail}{hint}")


class SchemaNotInstalledError(FileProcessingError, MissingDependencyError):
    """The database ledger was asked for without the ``schema`` extra installed."""

    def __init__(self, feature: str) -> None:
        MissingDependencyError.__init__(
            self, feature, package="etl-file-processing", extra="schema"
        )


class DatabaseNotConfiguredError(FileProcessingError, errors.DatabaseNotConfiguredError):
    """The database mirror was used before a database was configured and connected."""


class DatabaseNotReadyError(FileProcessingError, errors.DatabaseNotReadyError):
    """The configured database is not migrated, or its URL is bad (exit code 2)."""


class DatabaseUnavailableError(FileProcessingError, errors.DatabaseUnavailableError):
    """The database could not be reached, or the connection was lost: try again later."""


class DatabaseRefusedError(FileProcessingError, errors.DatabaseRefusedError):
    """The database refused a write of the mirror; trying again will not help."""
