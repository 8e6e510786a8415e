"""Errors of the data_pipeline runtime, rooted in :class:`etl_core.errors.EtlError`.

The database errors are the platform's (:mod:`etl_core.errors`) in this runtime's tree:
:mod:`data_pipeline.db` raises the database door's failures as them.
"""

from __future__ import annotations

from datetime import date

from etl_core import errors
from etl_core.errors import (
    ConfigError,
    EtlError,
    FatalError,
    FieldError,
    LeaseBusyError,
    LeaseLostError,
    MissingDependencyError,
    RetryableError,
)

__all__ = [
    "FENCE_RECOVERY",
    "PUBLISH_RECOVERY",
    "PUBLISH_RERUN",
    "WITHDRAWAL_RERUN",
    "WITHDRAWAL_RERUN_NO_LOAD",
    "ApiAuthError",
    "ApiError",
    "ApiRequestError",
    "ApiResponseError",
    "ApiUnavailableError",
    "BackfillConflictError",
    "DataPipelineError",
    "DatabaseNotConfiguredError",
    "DatabaseNotReadyError",
    "DatabaseRefusedError",
    "DatabaseUnavailableError",
    "EndpointBusyError",
    "HttpDeadlineUnsupportedError",
    "IngestStoppedError",
    "InputFileError",
    "InputGoneError",
    "JoinKeyTypeError",
    "LoadFencedError",
    "MissingColumnError",
    "MissingPartitionError",
    "NestedTooDeepError",
    "PartitionBusyError",
    "PartitionError",
    "ProxySettingError",
    "PublishFencedError",
    "RawArchiveCorruptError",
    "ReferenceFileError",
    "ReferenceRepublishedError",
    "ReplayRefusedError",
    "SchemaNotInstalledError",
    "SupersededError",
    "TransformSqlError",
    "UnmatchedRowsError",
]


class DataPipelineError(EtlError):
    """Root of every error the data_pipeline runtime raises on purpose."""


class SchemaNotInstalledError(DataPipelineError, MissingDependencyError):
    """A database-backed feature was used without the ``schema`` extra installed."""

    def __init__(self, feature: str) -> None:
        MissingDependencyError.__init__(self, feature, package="etl-data-pipeline", extra="schema")


class DatabaseNotConfiguredError(DataPipelineError, errors.DatabaseNotConfiguredError):
    """A load, a reference table or the database ledger was asked for without a database URL."""


class DatabaseNotReadyError(DataPipelineError, errors.DatabaseNotReadyError):
    """The configured database is not migrated, or its URL is bad (exit code 2)."""


class DatabaseUnavailableError(DataPipelineError, errors.DatabaseUnavailableError):
    """The database could not be reached, or the connection was lost: the load may be retried."""


class DatabaseRefusedError(DataPipelineError, errors.DatabaseRefusedError):
    """The database refused a load or a ledger write; retrying will not help."""


class PartitionError(DataPipelineError, FatalError):
    """Processing one partition failed in a way another attempt cannot fix.

    The message names the dataset, the partition date and, when one is to blame,
    the field (column, join, SQL) so an operator knows where to look.
    """

    def __init__(self, dataset: str, dt: date, message: str, *, field: str | None = None) -> None:
        self.dataset = dataset
        self.dt = dt
        self.field = field
        where = f"dataset {dataset!r}, partition dt={dt.isoformat()}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class MissingPartitionError(PartitionError):
    """The partition has no input objects (validated files or curated manifest)."""


class MissingColumnError(PartitionError):
    """An input file lacks a column the contract names."""


class InputFileError(PartitionError):
    """An input object of the partition cannot be read as its name and the contract say.

    Attributes:
        keys: The object key(s) in the store: the one the engine names, else every file
            of the format it was reading.
        expected: What the file was read as (format, the contract's CSV dialect).
        reason: The engine's reason, on one line.
    """

    def __init__(
        self, dataset: str, dt: date, keys: tuple[str, ...], *, expected: str, reason: str
    ) -> None:
        self.keys = keys
        self.expected = expected
        self.reason = reason
        what = f"input file {keys[0]}" if len(keys) == 1 else f"input files {', '.join(keys)}"
        super().__init__(dataset, dt, f"{what} cannot be read: expected {expected}; {reason}")


class ReferenceFileError(InputFileError):
    """A reference file of an enrichment join cannot be read as its name says.

    An :class:`InputFileError` (the partition fails alike: exit 1, never retried) whose
    message names the join's reference (``join``, its ``source``) and the file's key in
    the store (its curated partition's object for a ``dataset`` reference).
    """

    def __init__(
        self,
        dataset: str,
        dt: date,
        keys: tuple[str, ...],
        *,
        join: str,
        source: str,
        expected: str,
        reason: str,
    ) -> None:
        self.keys = keys
        self.join = join
        self.source = source
        self.expected = expected
        self.reason = reason
        what = f"file {keys[0]}" if len(keys) == 1 else f"files {', '.join(keys)}"
        if source != what:  # a dataset's partition: its file(s) too
            what = f"{source}: {what}"
        PartitionError.__init__(
            self,
            dataset,
            dt,
            f"reference {what} cannot be read: expected {expected}; {reason}",
            field=f"enrich.{join}",
        )


class InputGoneError(DataPipelineError, RetryableError):
    """An input object listed for the partition was gone when it was read: a validated
    data object the delivery manifests named (withdrawn by the file lane, a re-delivery
    replacing it, deleted) or a curated part the partition's manifest named (republished
    or withdrawn meanwhile), between the listing and the download.

    Retryable: another attempt lists the partition again, and sees what is there now (the
    delivery withdrawn: the day withdrawn or rebuilt from what is left; the new curated
    generation). An object the current listing still names yet the store lacks is another
    matter, never this error (:class:`PartitionError`, or :class:`MissingPartitionError`
    for a curated part, never retried). Names the partition (``dataset``, ``dt``), the
    object's ``key`` and ``what`` it was (``validated input``, ``curated part``).
    """

    def __init__(self, dataset: str, dt: date, key: str, *, what: str, listing: str) -> None:
        self.dataset = dataset
        self.dt = dt
        self.key = key
        self.what = what
        super().__init__(
            f"dataset {dataset!r}, partition dt={dt.isoformat()}: {what} {key}, named by "
            f"{listing} when this attempt started, was gone when it was read (withdrawn, "
            "replaced or deleted since); nothing was written, and another attempt reads "
            f"{listing} again"
        )


class ReferenceRepublishedError(DataPipelineError, RetryableError):
    """A file the curated manifest of a join's ``dataset`` reference named was gone when it
    was downloaded: the reference dataset was republished (or withdrawn) while it was read.

    Retryable: the file is gone because a newer manifest replaced the one read (the
    replaced generation is kept one publish), so another attempt reads the new manifest
    and its files (or finds the partition withdrawn and says so). A file missing that the
    current manifest still names is another matter, never this error. Names the partition
    (``dataset``, ``dt``), the join (``field`` ``enrich.<join>``), the reference dataset
    (``reference``), its partition (``partition``) and the file's ``key``.
    """

    def __init__(
        self, dataset: str, dt: date, *, join: str, reference: str, partition: date, key: str
    ) -> None:
        self.dataset = dataset
        self.dt = dt
        self.field = f"enrich.{join}"
        self.reference = reference
        self.partition = partition
        self.key = key
        super().__init__(
            f"dataset {dataset!r}, partition dt={dt.isoformat()}, field {self.field!r}: "
            f"reference dataset {reference!r} partition dt={partition.isoformat()} was "
            f"republished while it was read: its file {key}, named by the manifest read, "
            "is gone; another attempt reads the new manifest"
        )


class JoinKeyTypeError(PartitionError):
    """An enrichment join compares keys of incompatible types."""


class TransformSqlError(PartitionError):
    """The contract's transform SQL is invalid or fails on the partition's data."""


class UnmatchedRowsError(PartitionError):
    """Rows found no match in an enrichment join whose policy is ``fail``."""


class PartitionBusyError(DataPipelineError, LeaseBusyError):
    """Another writer holds the partition's lease; try again once it is released.

    A :class:`~etl_core.errors.LeaseBusyError` (retryable) with the lease's
    ``key``, ``holder`` and ``token``, and ``retry_after`` its remaining time.
    """


class LoadFencedError(DataPipelineError, LeaseLostError):
    """A load's commit found its partition loaded under a newer token of its lease.

    Usually the load's lease was taken over while it ran (it stalled after its lease
    check) and the new holder loaded the day first: the load's transaction is rolled back
    and the newer rows stay. ``restarted`` when the lease was still this load's at its
    older token: no holder has the newer one, the lease's tokens restarted (its object in
    the store was deleted, or the store re-created at its URL, while the database kept the
    fence; a store at another URL has fences of its own), and
    the message ends with the statement that removes the day's fence so it loads again
    (:data:`FENCE_RECOVERY`). A :class:`~etl_core.errors.LeaseLostError` (never retried),
    with the lease's ``key``, this load's ``token``, and ``table``, ``dt``, ``store`` (the
    canonical root URL of the lease's store: tokens are compared per store) and ``newer``,
    the token recorded (:mod:`data_pipeline.db.loads`).
    """

    def __init__(
        self,
        table: str,
        dt: date,
        token: int,
        newer: int,
        *,
        key: str,
        store: str,
        restarted: bool = False,
    ) -> None:
        self.table = table
        self.dt = dt
        self.store = store
        self.newer = newer
        self.restarted = restarted
        loaded = (
            f"table {table!r}, partition dt={dt.isoformat()} was loaded under lease token "
            f"{newer} of {key} in store {store} already; this load's token {token} is older"
        )
        if restarted:
            statement = FENCE_RECOVERY.format(
                table=_sql_text(table),
                dt=dt.isoformat(),
                store=_sql_text(store),
                key=_sql_text(key),
                newer=newer,
            )
            restarted_why = _tokens_restarted(token, newer, "the database's load fence")
            why = (
                f", {restarted_why}: rolled back; once no loader of the store before it was "
                "re-created uses this database, remove the day's fence and run again: "
                f"{statement}"
            )
        else:
            why = " (its lease was taken over while it loaded): rolled back, the newer rows stay"
        super().__init__(loaded + why, key=key, token=token)


class PublishFencedError(DataPipelineError, LeaseLostError):
    """A curated publish (or a withdrawal's removal of the curated manifest) refused because the
    partition's manifest was written under a newer token of its lease, while the lease is
    still this writer's at its older token: no holder has the newer token, the lease's
    tokens restarted (its object in the store was deleted, or the store re-created at its
    URL). Every publish or withdrawal of the day is refused until the manifest goes, so the
    message ends with the recovery: delete the manifest (``manifest``, where it is in the
    store, as an operator pastes it: :meth:`ObjectStore.location_for`) and run the partition
    again (``withdrawal``: ``run`` of the dataset, which finishes the withdrawal; ``run
    --no-load`` when it ran without loads, ``loads`` false: a store-only deployment has no
    database for a plain ``run``; ``rerun`` is that command). The recovery is read later,
    when a writer whose token climbed past ``newer`` (every acquisition takes the next) may
    have published a good manifest: it deletes the manifest only while it still names
    ``generation``, the one refusing this writer. A
    :class:`~etl_core.errors.LeaseLostError` (never retried: a retry is refused alike), with
    the lease's ``key``, this writer's ``token``, ``dataset``, ``dt``, ``newer``, the token
    the manifest records, and its ``generation``. (A writer whose lease was taken over gets
    etl_core's ``LeaseLostError``: the newer holder's manifest stays.)
    """

    def __init__(
        self,
        dataset: str,
        dt: date,
        token: int,
        newer: int,
        *,
        key: str,
        manifest: str,
        generation: str,
        withdrawal: bool = False,
        loads: bool = True,
    ) -> None:
        self.dataset = dataset
        self.dt = dt
        self.newer = newer
        self.manifest = manifest
        self.generation = generation
        self.withdrawal = withdrawal
        rerun = PUBLISH_RERUN
        if withdrawal:
            rerun = WITHDRAWAL_RERUN if loads else WITHDRAWAL_RERUN_NO_LOAD
        self.rerun = rerun.format(dataset=dataset, dt=dt.isoformat())
        recovery = PUBLISH_RECOVERY.format(
            manifest=manifest, generation=generation, newer=newer, rerun=self.rerun
        )
        what, undone = "withdrawal", "nothing withdrawn"
        if not withdrawal:
            what, undone = "publish", "nothing published"
        why = _tokens_restarted(token, newer, "the partition's curated manifest")
        super().__init__(
            f"dataset {dataset!r}, partition dt={dt.isoformat()}: the curated manifest was "
            f"published under lease token {newer} of {key}; this {what}'s token {token} is "
            f"older, {why}: {undone} (a dataset loaded into the database has the day's load "
            "fence at the old tokens too: its next load is refused alike, ending with the "
            "statement that removes that fence); once no writer of the store before it was "
            f"re-created publishes this partition, delete its manifest and run it again: "
            f"{recovery}",
            key=key,
            token=token,
        )


def _tokens_restarted(token: int, newer: int, kept: str) -> str:
    """Why a writer still holding its lease at ``token`` is refused by ``newer``, which
    ``kept`` recorded (:class:`LoadFencedError`, :class:`PublishFencedError`: one wording)."""
    return (
        f"yet its lease is still held at token {token}: no holder has token {newer}, the "
        "lease's tokens restarted (its object in the store was deleted, or the store "
        f"re-created at its URL, while {kept} kept token {newer})"
    )


PUBLISH_RECOVERY = (
    "delete {manifest} only if it still names generation {generation} (lease token {newer}; "
    "one naming another generation was published since: keep it), then run `{rerun}`"
)
"""The recovery from a publish or withdrawal refused because its lease's tokens restarted
(:class:`PublishFencedError`): the manifest recording the newer token removed, the day
run again (``{rerun}``: :data:`PUBLISH_RERUN` or :data:`WITHDRAWAL_RERUN`). Only that
manifest: named by its generation, since a later writer may have replaced it by the time
an operator reads this (its token past the old one), and deleting that one would withdraw
good data."""

PUBLISH_RERUN = "etl-data-pipeline transform --dataset {dataset} --date {dt}"
"""What rebuilds a day once the manifest refusing its publish is gone (its parts of older
generations are pruned by that publish)."""

WITHDRAWAL_RERUN = "etl-data-pipeline run --dataset {dataset}"
"""What finishes a withdrawal once the manifest refusing it is gone: readers already see no
partition, and ``run`` removes the curated parts left, deletes the day's loaded rows (its
load marker says it was loaded) and records the withdrawal."""

WITHDRAWAL_RERUN_NO_LOAD = "etl-data-pipeline run --no-load --dataset {dataset}"
""":data:`WITHDRAWAL_RERUN` of a withdrawal that ran without loads (``run --no-load``,
``transform --date``, a ``--no-load`` backfill, a dataset without ``[load]``): the curated
parts left removed and the withdrawal recorded, with no database (a store-only deployment
has none for a plain ``run``); loaded rows, if any, stay until a run that loads."""


FENCE_RECOVERY = (
    "DELETE FROM etl_load_fence WHERE store IN ('{store}', '') AND table_name = '{table}' "
    "AND dt = '{dt}' AND lease = '{key}' AND token = {newer}"
)
"""The statement that removes a day's load fence of one lease of one store
(:class:`LoadFencedError`):
only the one recorded with the token that refused the load, since it is run later, when a
loader whose token climbed past may have loaded the day (its fence must stay, or a stale
loader could replace its rows). The store's row, or the row recorded before the store was
part of the key (``store`` empty): the refused load adopted that one in the transaction it
rolled back, so it still has no store."""


def _sql_text(value: str) -> str:
    """``value`` inside an SQL string literal (its quotes doubled)."""
    return value.replace("'", "''")


class SupersededError(DataPipelineError, FatalError):
    """A newer computation of the partition was published first; this one is discarded."""


class BackfillConflictError(DataPipelineError, ConfigError):
    """A backfill overlapping the requested one is still running, or a job cannot resume."""


# --------------------------------------------------------------- API ingestion


class ApiError(DataPipelineError):
    """Ingesting an API endpoint failed; names the source, endpoint and URL (never a secret).

    Attributes:
        source: The API source (``sources/<source>.toml``).
        endpoint: The endpoint, when one is concerned.
        url: The request URL with secret query parameters removed.
        status: The HTTP status, when a response came.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str,
        endpoint: str = "",
        url: str = "",
        status: int | None = None,
    ) -> None:
        self.source = source
        self.endpoint = endpoint
        self.url = url
        self.status = status
        where = f"{source}/{endpoint}" if endpoint else source
        super().__init__(f"API {where}: {message}")


class ApiUnavailableError(ApiError, RetryableError):
    """A timeout, a connection error, a 5xx or a 429: worth another attempt.

    ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one (the retry
    policy's ``max_delay``, the source's ``max_retry_wait``, caps the wait).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str,
        endpoint: str = "",
        url: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        ApiError.__init__(self, message, source=source, endpoint=endpoint, url=url, status=status)
        self.retry_after = retry_after  # after: RetryableError.__init__ (via the MRO) resets it


class ApiRequestError(ApiError, FatalError):
    """The API refused a request (a 4xx other than 408/429): another attempt would not help."""


class ApiAuthError(ApiError, FatalError):
    """Credentials were refused, or the OAuth2 token endpoint gave no usable token."""


class ApiResponseError(ApiError, FatalError):
    """A response is not what the source configuration says: not JSON, no records array,
    a record that is not an object, a next-page URL to another host."""


class NestedTooDeepError(ApiResponseError):
    """A body, or a record of it, nests arrays and objects deeper than the JSON readers and
    writers go (about a thousand levels to read, 512 to write): set aside as a dead letter
    (``too_deep``)."""


class HttpDeadlineUnsupportedError(DataPipelineError, FatalError):
    """The installed httpx or httpcore no longer has the internals the per-request deadline
    sets (:mod:`data_pipeline.ingest.deadline`): refused at a client's start rather than
    run without it. ``missing`` names what is gone; ``httpx_version`` and
    ``httpcore_version`` what is installed."""

    def __init__(self, missing: str, *, httpx_version: str, httpcore_version: str) -> None:
        super().__init__(
            f"httpx {httpx_version} / httpcore {httpcore_version} has no {missing}: the "
            "source's timeout could not bound a whole request (a server sending a byte now "
            "and then would hold the run), so no request is made; install the versions "
            "etl-data-pipeline declares (httpx>=0.27,<1, httpcore 1.x)"
        )
        self.missing = missing
        self.httpx_version = httpx_version
        self.httpcore_version = httpcore_version


class ProxySettingError(DataPipelineError, ConfigError):
    """The environment's proxy variables (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``,
    read by httpx) name a proxy it cannot use: a scheme it has no transport for, or
    ``socks5://`` without the ``socksio`` package. Raised when an API client starts, before
    any request. ``variables`` are the names set, each with its scheme; a value is never
    quoted whole (a proxy URL may carry a password)."""

    def __init__(self, variables: tuple[str, ...], *, problem: str) -> None:
        self.variables = variables
        self.problem = problem
        super().__init__(
            f"the environment's proxy settings ({', '.join(variables)}) cannot be used: "
            f"{problem}; fix or unset them (NO_PROXY exempts hosts)",
            [FieldError(name.split("=")[0], problem, "environment") for name in variables],
        )


class IngestStoppedError(DataPipelineError):
    """The run was interrupted between two pages, or during a request's retry back-off; the
    state stands at the last chunk."""


class EndpointBusyError(DataPipelineError, LeaseBusyError):
    """Another run holds the endpoint's lease: two runs of one endpoint never overlap."""


class ReplayRefusedError(DataPipelineError, ConfigError):
    """``ingest replay`` was asked for a run the raw archive does not hold whole: no such
    run, or one not finished (its manifest's status is not ``complete``)."""


class RawArchiveCorruptError(DataPipelineError, FatalError):
    """An archived page does not match its run manifest (SHA-256), or cannot be read.

    Attributes:
        key: The page's key; ``expected`` and ``found`` the manifest's and the page's hash.
    """

    def __init__(self, message: str, *, key: str, expected: str = "", found: str = "") -> None:
        self.key = key
        self.expected = expected
        self.found = found
        super().__init__(message)
