"""The platform's single error tree.

Every error raised by etl_core (and, below it, by each runtime) derives from
:class:`EtlError`, so a caller can catch the platform's failures in one place
while library errors (botocore, httpx, psycopg) are translated at the boundary
with ``raise ... from``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "DATABASE_URL_SETTING",
    "ArtifactError",
    "ConfigError",
    "ConfigFileError",
    "DataQualityError",
    "DatabaseNotConfiguredError",
    "DatabaseNotReadyError",
    "DatabaseRefusedError",
    "DatabaseUnavailableError",
    "EtlError",
    "FatalError",
    "FieldError",
    "InvalidKeyError",
    "InvalidSettingError",
    "LeaseBusyError",
    "LeaseError",
    "LeaseLostError",
    "LeaseWaitStoppedError",
    "MissingDependencyError",
    "NotAnObjectError",
    "ObjectConflictError",
    "ObjectNotFoundError",
    "RecordConflictError",
    "RetryableError",
    "ScratchSpaceError",
    "StorageConfigError",
    "StorageError",
    "UnknownKindError",
    "WorkDirError",
    "first_line",
]


class EtlError(Exception):
    """Root of every error the platform raises on purpose.

    Every error pickles with its fields (it may cross a process pool or a
    broker), whatever its ``__init__`` takes: it is rebuilt from its ``args``
    and attributes, not by calling ``__init__`` again.
    """

    def __reduce__(self) -> tuple[object, ...]:
        return _restore, (type(self), self.args, dict(vars(self)))


def _restore(cls: type[EtlError], args: tuple[object, ...], state: dict[str, object]) -> EtlError:
    error = cls.__new__(cls)
    error.args = args
    vars(error).update(state)
    return error


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class FieldError:
    """One invalid setting: which field, what was wrong, and where its value came from."""

    field: str
    message: str
    source: str = "default"

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (from {self.source})"


class ConfigError(EtlError):
    """Configuration could not be loaded; lists every invalid field at once."""

    def __init__(self, message: str, errors: Sequence[FieldError] = ()) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        lines = [message, *(f"  - {e}" for e in self.errors)]
        super().__init__("\n".join(lines))

    @property
    def fields(self) -> tuple[str, ...]:
        """The dotted names of the offending fields."""
        return tuple(e.field for e in self.errors)


class ConfigFileError(ConfigError):
    """A configuration file (settings, contract, API source, holiday file) that cannot be
    read or parsed: missing, no regular file (a directory, a FIFO), a symlink loop, larger
    than the limit, not UTF-8 text, not valid TOML or nested too deeply.

    Attributes:
        path: The file.
        problem: What is wrong with it, and what was expected.
        stage: ``"read"`` (the file's bytes) or ``"parse"`` (its text).
    """

    def __init__(
        self, path: str, problem: str, *, stage: str = "read", errors: Sequence[FieldError] = ()
    ) -> None:
        self.path = path
        self.problem = problem
        self.stage = stage
        super().__init__(f"cannot {stage} config file {path}: {problem}", errors)


class UnknownKindError(ConfigError):
    """A contract names a kind (check kind, pagination or auth type...) that no
    implementation is registered for: the contract model and a lane's registry disagree.

    Attributes:
        field: The contract field naming the kind (``checks[2].kind``).
        value: The kind it names.
        known: The kinds that are registered.
    """

    def __init__(
        self, field: str, value: str, known: Sequence[str], *, where: str = "the contract"
    ) -> None:
        self.field = field
        self.value = value
        self.known = tuple(known)
        problem = f"no implementation of {value!r}; the kinds that exist: {', '.join(self.known)}"
        super().__init__(f"{where}: unknown {field} {value!r}", [FieldError(field, problem, where)])


class WorkDirError(ConfigError):
    """No scratch directory can be made in ``work_dir`` (missing, not a directory, not
    writable): every unit needing scratch would fail alike, so it is a setting to fix.

    Attributes:
        directory: The work directory.
    """

    def __init__(self, directory: str, reason: str, *, source: str = "default") -> None:
        self.directory = directory
        problem = f"{reason}: {directory}; create it or set one this user can write"
        super().__init__(
            f"cannot make a scratch directory in the work directory {directory}",
            [FieldError("work_dir", problem, source)],
        )


class InvalidSettingError(EtlError, ValueError):
    """A settings class's own checks refused values (``__post_init__``): the loader reports
    each on its setting, with where its value came from (file and key, or variable).

    Attributes:
        refused: Each refused setting's field name and what was expected and given
            (``{"alert_delivery_deadline": "must be longer than 0s, got 0s"}``).
    """

    def __init__(self, refused: Mapping[str, str]) -> None:
        self.refused = dict(refused)
        super().__init__("; ".join(f"{name} {problem}" for name, problem in self.refused.items()))


class MissingDependencyError(EtlError, ImportError):
    """An optional integration was used without its extra installed."""

    def __init__(self, feature: str, *, package: str, extra: str) -> None:
        self.feature = feature
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional extra '{extra}': pip install '{package}[{extra}]'"
        )


# ----------------------------------------------------------------- storage


class StorageError(EtlError):
    """An object-store operation failed; carries the store URL and key involved."""

    def __init__(self, message: str, *, key: str | None = None, url: str | None = None) -> None:
        self.key = key
        self.url = url
        super().__init__(message)


class ObjectNotFoundError(StorageError, KeyError):
    """The key does not exist in the store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class NotAnObjectError(ObjectNotFoundError):
    """A local store holds no regular file at the key's path but something else, no object
    (a listing leaves it out): a directory (the folder of other keys), a FIFO (never
    waited on), a socket or a device. Its message says what is there.

    Attributes:
        found: What is there, e.g. ``"a FIFO (named pipe)"``, ``"a directory"``.
    """

    def __init__(self, message: str, *, key: str, url: str, found: str) -> None:
        self.found = found
        super().__init__(message, key=key, url=url)


class ObjectConflictError(StorageError):
    """A conditional write or read found the object not in the expected state.

    Raised by :meth:`ObjectStore.put_if` when another writer got there first, and
    when an object changes while it is being read or copied.
    """


class StorageConfigError(StorageError, ConfigError):
    """The store is misconfigured (its URL, its credentials): fix the settings, not the data."""


class InvalidKeyError(StorageError, ValueError):
    """The key is malformed or escapes the store's prefix (``..``, absolute)."""


class RecordConflictError(ObjectConflictError):
    """A record kept changing under a read-change-put loop until its attempts ran out.

    Raised by :meth:`etl_core.storage.Records.update`: every attempt read the
    record, changed it and lost the compare-and-put to another writer.

    Attributes:
        attempts: How many compare-and-puts were tried.
    """

    def __init__(
        self, message: str, *, key: str | None = None, url: str | None = None, attempts: int = 0
    ) -> None:
        self.attempts = attempts
        super().__init__(message, key=key, url=url)


# ------------------------------------------------------------- retry semantics


class RetryableError(EtlError):
    """A transient failure worth another attempt (throttling, 5xx, timeouts).

    ``retry_after`` carries the server's hint in seconds, when it gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class FatalError(EtlError):
    """A failure that another attempt cannot fix."""


class ScratchSpaceError(FatalError):
    """The disk under the work directory is full (or over quota): a unit's scratch
    (download, unpacked members, spill, Parquet before upload) did not fit.

    Not retried: another attempt within the run finds the same disk. Raised by
    :func:`etl_core.scratch.scratch_dir` for the ``OSError`` (or an engine's error
    saying the same) that the scratch's own writes ended with, which names no path.

    Attributes:
        directory: The work directory whose disk is full.
        purpose: What the scratch was for (``file``, ``transform``, ``load``).
    """

    def __init__(self, directory: str, *, purpose: str, detail: str) -> None:
        self.directory = directory
        self.purpose = purpose
        super().__init__(
            f"no space left on device in the work directory {directory} "
            f"(work_dir, ETL_WORK_DIR) for the {purpose} scratch: {detail}; free space "
            "there or set work_dir on a larger disk, then run again"
        )


# ------------------------------------------------------------------- leases


class LeaseError(StorageError):
    """A lease (:mod:`etl_core.storage.leases`) could not be had or kept.

    Attributes:
        key: The lease object's key.
        holder: Who holds the lease (``host:pid (purpose)``), or who held it.
        token: The fencing token concerned: the holder's, or the one this writer lost.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        holder: str | None = None,
        token: int | None = None,
        url: str | None = None,
    ) -> None:
        self.holder = holder
        self.token = token
        super().__init__(message, key=key, url=url)


_Busy = TypeVar("_Busy", bound="LeaseBusyError")


class LeaseBusyError(LeaseError, RetryableError):
    """Another live holder has the lease; ``retry_after`` says when it expires at the latest."""

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        holder: str | None = None,
        token: int | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, key=key, holder=holder, token=token, url=url)
        self.retry_after = retry_after

    def restated(self, cls: type[_Busy], message: str) -> _Busy:
        """The same busy lease as a lane's own error (``cls``), told in its own words."""
        return cls(
            message,
            key=self.key,
            holder=self.holder,
            token=self.token,
            url=self.url,
            retry_after=self.retry_after,
        )


class LeaseWaitStoppedError(LeaseError):
    """The wait for a busy lease was cut short because the run was interrupted (Ctrl-C,
    SIGTERM): not a verdict on the work, never retried; the lease is untouched."""


class LeaseLostError(LeaseError, FatalError):
    """This writer's lease was taken over (or released): it must stop without publishing."""


# ------------------------------------------------------------- documents


class ArtifactError(EtlError, ValueError):
    """A document one lane wrote for another (a manifest, a quarantine record, a
    quality report) is malformed, or of a schema version this code cannot read.

    Attributes:
        artifact: Which document (``curated manifest``, ``quarantine record``...).
        field: The offending field, dotted (``rows.valid``, ``checks[2].passed``);
            ``None`` when the document as a whole is not readable.
        problem: What is wrong with it.
        key: Where the document was read, when the reader said.
    """

    def __init__(
        self, artifact: str, field: str | None, problem: str, key: str | None = None
    ) -> None:
        self.artifact = artifact
        self.field = field
        self.problem = problem
        self.key = key
        where = f"{key}: " if key else ""
        what = f"{artifact} field {field!r}" if field else artifact
        super().__init__(f"{where}{what}: {problem}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keeps the fields through pickling (a process pool hands errors back).
        return (type(self), (self.artifact, self.field, self.problem, self.key))


# ------------------------------------------------------------- data quality


class DataQualityError(EtlError):
    """Data failed a quality expectation; names the dataset/field and a reason code."""

    def __init__(
        self,
        message: str,
        *,
        reason: str = "data.quality",
        field: str | None = None,
        dataset: str | None = None,
    ) -> None:
        self.reason = reason
        self.field = field
        self.dataset = dataset
        super().__init__(message)


# ------------------------------------------------------------- database


class DatabaseNotConfiguredError(ConfigError):
    """A database feature was used without a ``database_url`` (exit code 2)."""

    def __init__(self, feature: str) -> None:
        self.feature = feature
        super().__init__(
            f"{feature} needs a database: set DATABASE_URL or ETL_DATABASE_URL (or pass "
            "--database-url, or database_url in etl.toml), for example "
            "postgresql://user@host/db or sqlite:///path/to/file.sqlite3",
            [FieldError("DATABASE_URL", "not set", "environment")],
        )


DATABASE_URL_SETTING = "the database_url setting"
"""The source of a database error's ``DATABASE_URL`` field: whichever of the flag, the
variables or ``etl.toml`` set it; a runtime names the one that did (the flag
``--database-url`` when given) once it knows where the URL came from."""


class DatabaseNotReadyError(ConfigError):
    """The configured database cannot be used: it lacks migrations, or its URL is bad.

    An operator has to act (``etl-schema migrate``, fix the URL): exit code 2.
    """

    def __init__(self, feature: str, problem: str) -> None:
        self.feature = feature
        self.problem = problem
        super().__init__(
            f"{feature}: cannot use the database",
            [FieldError("DATABASE_URL", problem, DATABASE_URL_SETTING)],
        )


class DatabaseUnavailableError(RetryableError):
    """The database could not be reached, or the connection was lost: try again later.

    Also a database dropped, or recreated without its migrations (restored from an older
    schema), under a running process: a deploy under way, not a settings mistake; the
    message names the missing migrations and ``etl-schema migrate``.
    """


class DatabaseRefusedError(FatalError):
    """The database refused an operation (a constraint, a permission): do not retry it."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (an engine's can run to many), else its type name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
