"""The documents one lane writes for the others, as typed values.

- :class:`CuratedManifest`: ``curated/<dataset>/dt=<date>/_manifest.json``, written
  by data_pipeline's publish protocol;
- :class:`QuarantineRecord`: ``quarantine/.../<file>.quarantine.json``, written by
  file_processing;
- :class:`QualitySummary`: ``validated/.../<file>.quality.json``, written by
  file_processing;
- :class:`DeliveryManifest`: ``validated/.../_deliveries/<hash>.json``, written by
  file_processing after every file of a delivery: the only way readers find
  validated data.
- :class:`WithdrawalNotice`: ``_state/file_processing/withdrawals/<dataset>/dt=<date>.json``,
  written by file_processing before it removes a delivery from a partition its landing
  key no longer publishes to: data_pipeline withdraws a built day only on this notice.

Keys come from :mod:`etl_core.layout`. Writers build the value and store
:meth:`to_json`; readers call :meth:`from_json`, which checks every field it
knows and refuses a malformed document with :class:`~etl_core.errors.ArtifactError`
naming the field.

Compatibility, the same for every document:

- ``schema_version`` says which shape a document has. A document without one
  was written before versions were recorded: it is version 1, the shape described
  here. A version newer than this code knows is refused, since its fields may
  mean something else now.
- A writer may add a field without a new version only if a reader that ignores
  it still reads the document right. So top-level fields this code does not know
  are not interpreted but kept, in ``extra``, and written back by
  :meth:`to_json`: rewriting a document (releasing a quarantined file) never
  drops what a newer writer put there. Unknown fields inside a nested object (a
  check, the delivery) are ignored.
- Lane-specific detail travels as plain JSON: a quarantine record's failed
  checks and history, a check's samples, and the quality report's profile and
  malformed rows (in ``extra``). Other lanes may show it but must not rely on its
  shape.
"""

from __future__ import annotations

import abc
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from etl_core.errors import ArtifactError, ObjectNotFoundError
from etl_core.layout import (
    deliveries_prefix,
    is_delivery_manifest,
    quarantine_record_key,
    withdrawal_notice_key,
)

if TYPE_CHECKING:
    from etl_core.storage import ObjectInfo, ObjectStore

__all__ = [
    "REVALIDATED_BY",
    "SUPERSEDED_BY",
    "CheckSummary",
    "CuratedManifest",
    "Delivery",
    "DeliveryManifest",
    "DeliveryManifests",
    "DeliveryMember",
    "QualityReason",
    "QualitySummary",
    "QuarantineRecord",
    "RowCounts",
    "SchemaColumn",
    "WithdrawalNotice",
    "read_deliveries",
    "read_withdrawal_notice",
    "utc_timestamp",
]

JsonObject = dict[str, Any]


class _Document(abc.ABC):
    """What every cross-lane document does: plain data both ways, JSON as stored."""

    ARTIFACT: ClassVar[str]
    """How errors name the document (``curated manifest``)."""
    JSON_INDENT: ClassVar[int] = 2

    @abc.abstractmethod
    def to_dict(self) -> JsonObject:
        """The document as plain data."""

    @classmethod
    @abc.abstractmethod
    def from_dict(cls, raw: object, *, key: str | None = None) -> Self:
        """Check plain data (a parsed document) and build the document from it.

        Raises:
            ArtifactError: a field is missing or malformed, or the schema version is newer.
        """

    def to_json(self) -> bytes:
        """The document as stored."""
        document = json.dumps(
            self.to_dict(), indent=self.JSON_INDENT, ensure_ascii=False, default=str
        )
        return document.encode()

    @classmethod
    def from_json(cls, data: bytes, *, key: str | None = None) -> Self:
        """Read a stored document; ``key`` (where it was read) is named in errors.

        Raises:
            ArtifactError: the document is malformed or of a newer schema version.
        """
        return cls.from_dict(_load(data, cls.ARTIFACT, key), key=key)

    @classmethod
    def read(cls, store: ObjectStore, key: str) -> Self | None:
        """The document stored at ``key``, or ``None`` when there is none.

        Raises:
            ArtifactError: the document is malformed or of a newer schema version.
        """
        try:
            data = store.read_bytes(key)
        except ObjectNotFoundError:
            return None
        return cls.from_json(data, key=key)


# ----------------------------------------------------------- curated manifest


@dataclass(frozen=True)
class CuratedManifest(_Document):
    """The published state of one curated partition: which files make it up.

    Readers read the manifest, never a listing: it names the current generation's
    files, written before it, so a reader sees a whole partition or none.

    Attributes:
        dataset: The dataset.
        dt: The partition date, ``YYYY-MM-DD``.
        generation: The computation whose files these are (sortable by start time).
        started_at: When that computation started (UTC, fixed format, text order
            is time order); an older computation never replaces a newer one.
        published_at: When the manifest was written.
        files: The partition's Parquet keys.
        rows: Rows over all files.
        bytes: Bytes over all files.
        inputs: Validated input key → ETag the generation was computed from.
        run_id: The run that published it.
        lease_token: The fencing token of the partition lease its writer held
            (:mod:`etl_core.storage.leases`); ``None`` in manifests written without
            a lease or before tokens were recorded. A writer never replaces a
            manifest recorded with a newer token than its own.
    """

    ARTIFACT: ClassVar[str] = "curated manifest"
    JSON_INDENT: ClassVar[int] = 1
    SCHEMA_VERSION: ClassVar[int] = 1

    dataset: str
    dt: str
    generation: str
    started_at: str
    published_at: str
    files: tuple[str, ...]
    rows: int
    bytes: int
    inputs: Mapping[str, str]
    run_id: str = ""
    lease_token: int | None = None
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> JsonObject:
        """The document as plain data (``lease_token`` only when there is one)."""
        document: JsonObject = {
            "schema_version": self.schema_version,
            "dataset": self.dataset,
            "dt": self.dt,
            "generation": self.generation,
            "started_at": self.started_at,
            "published_at": self.published_at,
            "files": list(self.files),
            "rows": self.rows,
            "bytes": self.bytes,
            "inputs": dict(self.inputs),
            "run_id": self.run_id,
        }
        if self.lease_token is not None:
            document["lease_token"] = self.lease_token
        return _with_extra(document, self.extra)

    @classmethod
    def from_dict(cls, raw: object, *, key: str | None = None) -> CuratedManifest:
        """Check plain data (a parsed document) and build the manifest from it.

        Raises:
            ArtifactError: a field is missing or malformed, or the schema version is newer.
        """
        doc = _Fields(cls.ARTIFACT, raw, key)
        version = doc.version(cls.SCHEMA_VERSION)
        return cls(
            dataset=doc.text("dataset"),
            dt=doc.day("dt"),
            generation=doc.text("generation"),
            started_at=doc.text("started_at"),
            published_at=doc.text("published_at"),
            files=doc.texts("files"),
            rows=doc.count("rows"),
            bytes=doc.count("bytes"),
            inputs=doc.text_map("inputs"),
            run_id=doc.text("run_id", ""),
            lease_token=doc.optional_count("lease_token"),
            schema_version=version,
            extra=doc.unknown(cls),
        )


# ------------------------------------------------------------ quarantine record


SUPERSEDED_BY = "superseded"
"""``released_by`` of a quarantine record closed because a later delivery of the same
landing key (another ETag) was validated."""

REVALIDATED_BY = "revalidated"
"""``released_by`` of a quarantine record closed because the same delivery (its ETag) was
processed again (``process --force`` after its contract was fixed) and validated; the
``release_note`` names the run."""


@dataclass(frozen=True)
class QuarantineRecord(_Document):
    """Why an object was quarantined, and whether it was released since.

    Attributes:
        key: The quarantined copy of the original.
        dataset: Its dataset, or ``_unknown`` when it matched no contract.
        partition: The partition date, ``YYYY-MM-DD``.
        reason: The reason code (``data.quality``, ``pgp.no_key``...).
        message: What was wrong, in words.
        source_key: The landing object it was delivered as.
        source_etag: That object's ETag when it was processed.
        source_size: Its size in bytes.
        run_id: The run that quarantined it.
        quarantined_at: When (ISO 8601).
        member: The archive member at fault, when there is one.
        failed_checks: The failed quality checks with samples (plain JSON, as the
            quality checks wrote them, each naming its ``member``).
        released_at: When it was released for reprocessing, if it was, or closed as
            superseded.
        released_by: Who released it (:data:`SUPERSEDED_BY` when a later delivery of
            the same landing key was validated, which closed it; :data:`REVALIDATED_BY`
            when the same delivery, processed again, was validated).
        release_note: Why.
        superseded_by_etag: The ETag of the later delivery of the same landing key whose
            validation closed this record (``released_at`` says when); ``None`` unless
            superseded. A release that reads no such field keeps it (as ``extra``) and,
            seeing ``released_at``, takes the record as closed.
        history: Earlier episodes of the same key (plain JSON: earlier records
            without their failed checks).
    """

    ARTIFACT: ClassVar[str] = "quarantine record"
    SCHEMA_VERSION: ClassVar[int] = 1

    key: str
    dataset: str
    partition: str
    reason: str
    message: str
    source_key: str
    source_etag: str
    source_size: int
    run_id: str
    quarantined_at: str
    member: str | None = None
    failed_checks: tuple[JsonObject, ...] = ()
    released_at: str | None = None
    released_by: str | None = None
    release_note: str | None = None
    history: tuple[JsonObject, ...] = ()
    superseded_by_etag: str | None = None
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def released(self) -> bool:
        """Whether the record is closed: released for reprocessing, or superseded."""
        return self.released_at is not None

    @property
    def superseded(self) -> bool:
        """Whether a later, validated delivery of the same landing key closed it."""
        return self.superseded_by_etag is not None

    @property
    def revalidated(self) -> bool:
        """Whether the same delivery, processed again, was validated, which closed it."""
        return self.released_by == REVALIDATED_BY and self.released_at is not None

    @property
    def record_key(self) -> str:
        """Where this record is stored."""
        return quarantine_record_key(self.key)

    def to_dict(self) -> JsonObject:
        """The document as plain data."""
        document = {
            "schema_version": self.schema_version,
            "key": self.key,
            "dataset": self.dataset,
            "partition": self.partition,
            "reason": self.reason,
            "message": self.message,
            "source_key": self.source_key,
            "source_etag": self.source_etag,
            "source_size": self.source_size,
            "run_id": self.run_id,
            "quarantined_at": self.quarantined_at,
            "member": self.member,
            "failed_checks": list(self.failed_checks),
            "released_at": self.released_at,
            "released_by": self.released_by,
            "release_note": self.release_note,
            "history": list(self.history),
        }
        if self.superseded_by_etag is not None:  # absent otherwise, as before
            document["superseded_by_etag"] = self.superseded_by_etag
        return _with_extra(document, self.extra)

    @classmethod
    def from_dict(cls, raw: object, *, key: str | None = None) -> QuarantineRecord:
        """Check plain data (a parsed document) and build the record from it.

        Raises:
            ArtifactError: a field is missing or malformed, or the schema version is newer.
        """
        doc = _Fields(cls.ARTIFACT, raw, key)
        version = doc.version(cls.SCHEMA_VERSION)
        return cls(
            key=doc.text("key"),
            dataset=doc.text("dataset"),
            partition=doc.day("partition"),
            reason=doc.text("reason"),
            message=doc.text("message"),
            source_key=doc.text("source_key"),
            source_etag=doc.text("source_etag"),
            source_size=doc.count("source_size"),
            run_id=doc.text("run_id"),
            quarantined_at=doc.text("quarantined_at"),
            member=doc.optional_text("member"),
            failed_checks=doc.objects("failed_checks"),
            released_at=doc.optional_text("released_at"),
            released_by=doc.optional_text("released_by"),
            release_note=doc.optional_text("release_note"),
            history=doc.objects("history"),
            superseded_by_etag=doc.optional_text("superseded_by_etag"),
            schema_version=version,
            extra=doc.unknown(cls),
        )


# -------------------------------------------------------------- quality report


@dataclass(frozen=True)
class Delivery:
    """The landing object a validated file came from.

    Attributes:
        key: Its landing key.
        etag: Its ETag when it was processed.
        size: Its size in bytes.
        run_id: The run that processed it.
        members: The data files it held (one for a plain file); empty for a delivery
            of more than 100 members, whose delivery manifest lists them all.
        control: The checks of the delivery as landed (a checksum sidecar).
    """

    key: str
    etag: str
    size: int
    run_id: str
    members: tuple[str, ...] = ()
    control: tuple[CheckSummary, ...] = ()


@dataclass(frozen=True)
class RowCounts:
    """Data rows of a file: ``total`` = ``malformed`` + ``rejected`` + ``valid``.

    ``rejected`` rows were split off into ``<file>.rejected.csv`` (or would have
    been, when the file failed as a whole).
    """

    total: int
    malformed: int
    rejected: int
    valid: int


@dataclass(frozen=True)
class CheckSummary:
    """The result of one quality check over a whole file.

    Attributes:
        name: The check (``not_null:store_id``).
        kind: Its kind (``not_null``, ``range``, ``control.checksum``...).
        severity: ``warn`` or ``error``.
        passed: Whether it passed.
        failed_count: Rows that failed it (0/1 for file-level checks).
        column: The column it checks, if one.
        detail: Why a file-level check failed, in words.
        samples: Failing rows (plain JSON: ``line`` and ``values``).
    """

    name: str
    kind: str
    severity: Literal["warn", "error"]
    passed: bool
    failed_count: int = 0
    column: str | None = None
    detail: str = ""
    samples: tuple[JsonObject, ...] = ()


@dataclass(frozen=True)
class SchemaColumn:
    """One column of a validated file, as the file lane published it.

    Attributes:
        name: The column (CSV header name, JSON key).
        type: One of the contract column types (``string``, ``int``...).
        source: ``declared`` (from the contract), ``inferred`` (an open schema:
            the narrowest type every value fits), ``extra`` (not declared, kept;
            type inferred) or ``filled`` (declared, absent from the file,
            published empty).
    """

    name: str
    type: str
    source: str = "declared"


@dataclass(frozen=True)
class QualityReason:
    """Why a file failed: a reason code and a sentence."""

    code: str
    message: str


@dataclass(frozen=True)
class QualitySummary(_Document):
    """The quality report of one validated file, as other lanes read it.

    The summary fields are typed; the rest of the report (format, encoding,
    profile, malformed rows, engine, timings...) is file_processing's detail and
    travels in ``extra``.

    Attributes:
        delivery: The landing object the file came from.
        dataset: The dataset.
        file: The file's name (an archive's member path).
        outcome: ``pass`` when no error-severity check failed, or the rows failing
            them were split off; else ``fail``.
        rows: The file's row counts.
        checks: Every check, passed or not.
        reason: Why the file failed, when it did.
        dt: The partition date, ``YYYY-MM-DD``; ``None`` in reports written before it
            was recorded (:func:`etl_core.layout.partition_of` of the key gives it).
        columns: The published file's columns with their types (declared, or
            inferred in an open schema); empty in reports written before they were
            recorded.
    """

    ARTIFACT: ClassVar[str] = "quality report"
    SCHEMA_VERSION: ClassVar[int] = 1

    delivery: Delivery
    dataset: str
    file: str
    outcome: Literal["pass", "fail"]
    rows: RowCounts
    checks: tuple[CheckSummary, ...] = ()
    reason: QualityReason | None = None
    dt: str | None = None
    columns: tuple[SchemaColumn, ...] = ()
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether the file (or its valid rows, after a split) went on."""
        return self.outcome == "pass"

    @property
    def failed_checks(self) -> tuple[CheckSummary, ...]:
        """The checks that failed, any severity."""
        return tuple(check for check in self.checks if not check.passed)

    def to_dict(self) -> JsonObject:
        """The document as plain data."""
        document: JsonObject = {
            "schema_version": self.schema_version,
            "delivery": _delivery_dict(self.delivery),
            "dataset": self.dataset,
            "dt": self.dt,
            "file": self.file,
            "outcome": self.outcome,
            "reason": (
                None
                if self.reason is None
                else {"code": self.reason.code, "message": self.reason.message}
            ),
            "rows": {
                "total": self.rows.total,
                "malformed": self.rows.malformed,
                "rejected": self.rows.rejected,
                "valid": self.rows.valid,
            },
            "checks": [_check_dict(check) for check in self.checks],
        }
        if self.columns:  # a report written before columns were recorded reads back unchanged
            document["columns"] = [
                {"name": c.name, "type": c.type, "source": c.source} for c in self.columns
            ]
        return _with_extra(document, self.extra)

    @classmethod
    def from_dict(cls, raw: object, *, key: str | None = None) -> QualitySummary:
        """Check plain data (a parsed report) and build the summary from it.

        Raises:
            ArtifactError: a field is missing or malformed, or the schema version is newer.
        """
        doc = _Fields(cls.ARTIFACT, raw, key)
        version = doc.version(cls.SCHEMA_VERSION)
        delivery = doc.nested("delivery")
        rows = doc.nested("rows")
        reason = doc.optional_nested("reason")
        outcome = doc.text("outcome")
        if outcome not in ("pass", "fail"):
            raise doc.error("outcome", f"expected 'pass' or 'fail', got {outcome!r}")
        return cls(
            delivery=_delivery(delivery),
            dataset=doc.text("dataset"),
            file=doc.text("file"),
            outcome="pass" if outcome == "pass" else "fail",
            rows=RowCounts(
                total=rows.count("total"),
                malformed=rows.count("malformed"),
                rejected=rows.count("rejected"),
                valid=rows.count("valid"),
            ),
            checks=tuple(_check(c) for c in doc.nested_list("checks")),
            reason=(
                None
                if reason is None
                else QualityReason(code=reason.text("code"), message=reason.text("message"))
            ),
            dt=doc.optional_day("dt"),
            columns=tuple(
                SchemaColumn(c.text("name"), c.text("type"), c.text("source", "declared"))
                for c in doc.nested_list("columns")
            ),
            schema_version=version,
            extra=doc.unknown(cls),
        )


def _delivery(doc: _Fields) -> Delivery:
    return Delivery(
        key=doc.text("key"),
        etag=doc.text("etag"),
        size=doc.count("size"),
        run_id=doc.text("run_id"),
        members=doc.texts("members", ()),
        control=tuple(_check(c) for c in doc.nested_list("control")),
    )


def _delivery_dict(delivery: Delivery) -> JsonObject:
    return {
        "key": delivery.key,
        "etag": delivery.etag,
        "size": delivery.size,
        "run_id": delivery.run_id,
        "members": list(delivery.members),
        "control": [_check_dict(check) for check in delivery.control],
    }


def _check(doc: _Fields) -> CheckSummary:
    severity = doc.text("severity")
    if severity not in ("warn", "error"):
        raise doc.error("severity", f"expected 'warn' or 'error', got {severity!r}")
    return CheckSummary(
        name=doc.text("name"),
        kind=doc.text("kind"),
        severity="warn" if severity == "warn" else "error",
        passed=doc.flag("passed"),
        failed_count=doc.count("failed_count", 0),
        column=doc.optional_text("column"),
        detail=doc.text("detail", ""),
        samples=doc.objects("samples"),
    )


def _check_dict(check: CheckSummary) -> JsonObject:
    return {
        "name": check.name,
        "kind": check.kind,
        "severity": check.severity,
        "passed": check.passed,
        "failed_count": check.failed_count,
        "column": check.column,
        "detail": check.detail,
        "samples": list(check.samples),
    }


# ---------------------------------------------------------- delivery manifest


@dataclass(frozen=True)
class DeliveryMember:
    """One validated file of a delivery and the documents beside it.

    Attributes:
        key: The validated data key.
        rows: The valid rows it holds.
        report: Its quality report's key.
        rejected: The key of its rejected rows, when some were split off.
    """

    key: str
    rows: int
    report: str
    rejected: str | None = None


@dataclass(frozen=True)
class DeliveryManifest(_Document):
    """What one landing object published to a validated partition, written last.

    Readers of ``validated/`` read manifests, never a listing: every file a
    manifest names was written before it, so a reader sees a whole delivery or
    none of it, and a file no manifest names is the leftover of a publish that
    did not finish.

    Attributes:
        dataset: The dataset.
        dt: The partition date, ``YYYY-MM-DD``.
        delivery: The landing object (key, ETag, size, run).
        members: Its validated files.
        published_at: When the manifest was written (UTC, ISO 8601).
        sha256: The landing object's content hash.
    """

    ARTIFACT: ClassVar[str] = "delivery manifest"
    JSON_INDENT: ClassVar[int] = 1
    SCHEMA_VERSION: ClassVar[int] = 1

    dataset: str
    dt: str
    delivery: Delivery
    members: tuple[DeliveryMember, ...]
    published_at: str
    sha256: str = ""
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def data_keys(self) -> tuple[str, ...]:
        """The validated data keys, in member order."""
        return tuple(member.key for member in self.members)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key the delivery published: data, reports and rejected rows."""
        keys: list[str] = []
        for member in self.members:
            keys += [member.key, member.report] + ([member.rejected] if member.rejected else [])
        return tuple(keys)

    def to_dict(self) -> JsonObject:
        """The document as plain data."""
        document = {
            "schema_version": self.schema_version,
            "dataset": self.dataset,
            "dt": self.dt,
            "delivery": _delivery_dict(self.delivery),
            "sha256": self.sha256,
            "published_at": self.published_at,
            "members": [
                {"key": m.key, "rows": m.rows, "report": m.report, "rejected": m.rejected}
                for m in self.members
            ],
        }
        return _with_extra(document, self.extra)

    @classmethod
    def from_dict(cls, raw: object, *, key: str | None = None) -> DeliveryManifest:
        """Check plain data (a parsed manifest) and build it.

        Raises:
            ArtifactError: a field is missing or malformed, or the schema version is newer.
        """
        doc = _Fields(cls.ARTIFACT, raw, key)
        version = doc.version(cls.SCHEMA_VERSION)
        return cls(
            dataset=doc.text("dataset"),
            dt=doc.day("dt"),
            delivery=_delivery(doc.nested("delivery")),
            members=tuple(
                DeliveryMember(
                    key=m.text("key"),
                    rows=m.count("rows"),
                    report=m.text("report"),
                    rejected=m.optional_text("rejected"),
                )
                for m in doc.nested_list("members")
            ),
            published_at=doc.text("published_at"),
            sha256=doc.text("sha256", ""),
            schema_version=version,
            extra=doc.unknown(cls),
        )


def read_deliveries(
    store: ObjectStore, dataset: str, dt: date, *, cache: DeliveryManifests | None = None
) -> list[DeliveryManifest]:
    """The published deliveries of a validated partition, by manifest key.

    Args:
        cache: Manifests already read by this process (one store's), reused while their
            ETag in the listing is the one read: a scan publishing a partition's many
            deliveries one after another then reads each manifest once, not once for
            every later delivery of the partition (quadratic in its deliveries).

    Raises:
        ArtifactError: a manifest is malformed (its key is named).
    """
    return [
        cache.read(store, info)
        if cache is not None
        else DeliveryManifest.from_json(store.read_bytes(info.key), key=info.key)
        for info in store.list(deliveries_prefix(dataset, dt))
        if is_delivery_manifest(info.key)
    ]


class DeliveryManifests:
    """Parsed delivery manifests of one store by key, each with the ETag it was read at
    (thread-safe). A listed manifest whose ETag changed (a re-delivery rewrote it) is
    read again. What is kept is bounded by its weight, one for each manifest and one for
    each file it names (a zip's manifest names up to ``max_entries`` files, ~0.4 KB each
    parsed), the oldest read forgotten first: a scan publishes a backlog partition after
    partition, so its memory stays bounded while the partition at hand is read once.

    Args:
        limit: The weight to keep at most (the default: ~25 MB of manifests).
    """

    def __init__(self, *, limit: int = 65_536) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._weight = 0
        self._read: dict[str, tuple[str, DeliveryManifest]] = {}

    def read(self, store: ObjectStore, info: ObjectInfo) -> DeliveryManifest:
        """The manifest ``info`` lists: the one read before at its ETag, else read now.

        Raises:
            ArtifactError: the manifest is malformed (its key is named).
        """
        with self._lock:
            known = self._read.get(info.key)
        if known is not None and known[0] == info.etag:
            return known[1]
        versioned = store.read_versioned(info.key)
        manifest = DeliveryManifest.from_json(versioned.data, key=info.key)
        with self._lock:
            self._forget(info.key)
            self._read[info.key] = (versioned.etag, manifest)
            self._weight += _weight(manifest)
            while self._weight > self._limit:
                self._forget(next(iter(self._read)))
        return manifest

    def _forget(self, key: str) -> None:
        """Drop ``key``'s manifest, if kept (the lock held)."""
        dropped = self._read.pop(key, None)
        if dropped is not None:
            self._weight -= _weight(dropped[1])


def _weight(manifest: DeliveryManifest) -> int:
    """What keeping ``manifest`` costs: one, and one for each file it names."""
    return 1 + len(manifest.members)


# ----------------------------------------------------------- withdrawal notice


def utc_timestamp(moment: datetime) -> str:
    """``moment`` in UTC, in the one fixed format of the documents' times
    (``2026-11-03T08:15:00.000000Z``): text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class WithdrawalNotice(_Document):
    """The file lane withdrew a delivery from a validated partition: its landing key (a
    name-dated key re-delivered after its contract's date was fixed) now publishes to
    another one. Written (replaced) before that delivery's manifest is removed, at
    :func:`~etl_core.layout.withdrawal_notice_key`; the partition's last notice is kept.

    A partition with no delivery left is not proof of a withdrawal (a lifecycle rule
    expiring ``validated/``, a hand deletion, an incomplete listing): downstream removes a
    day it built only on a notice naming a data key that build read (whatever the times: a
    build started between the notice and the delivery's removal read it), or, naming none
    (an older release), newer than what it built.

    Attributes:
        dataset: The dataset.
        dt: The partition date the delivery was withdrawn from, ``YYYY-MM-DD``.
        landing_key: The landing object whose delivery was withdrawn.
        withdrawn_at: When (:func:`utc_timestamp`: UTC, fixed format, text order is time
            order), before the delivery's manifest was removed.
        run_id: The run that withdrew it.
        moved_to: The validated partitions the landing key publishes to now
            (``validated/<dataset>/dt=<date>/``), when known.
        data_keys: The validated data keys the withdrawn delivery published in that
            partition (its manifest's members), and those of every key moved off the day
            before it and not moved back (a replaced notice keeps naming them), and
            the members a re-delivery dropped from the partition while still publishing
            there (a corrected archive renaming them: a build of the earlier version read
            them; such a notice may stand on a day that has its delivery), when
            known: a build that read none of them is not of a withdrawn delivery,
            whatever the hosts' clocks say.
        data_etags: The ETag of the object withdrawn under each data key, when known (the
            identity a curated manifest's ``inputs`` record per key): a build that read a
            key with another ETag, the object published under it now, read a new delivery
            under it (a key moved back whose void failed, then delivered again) and is not
            withdrawn; another ETag alone may be an earlier file of the withdrawn delivery.
            A key without one (a notice of an older release, an object the file lane could
            not list) withdraws any build that read it. :meth:`withdrew` judges.
        emptied: The move left the partition no other delivery (as the file lane listed
            it) and no delivery arrived on the day since (an arrival clears it): a day
            never built that has no input is then withdrawn, not lost. ``False`` when
            unknown (a notice of an older release, a listing that failed).
    """

    ARTIFACT: ClassVar[str] = "withdrawal notice"
    JSON_INDENT: ClassVar[int] = 1
    SCHEMA_VERSION: ClassVar[int] = 1

    dataset: str
    dt: str
    landing_key: str
    withdrawn_at: str
    run_id: str = ""
    moved_to: tuple[str, ...] = ()
    data_keys: tuple[str, ...] = ()
    emptied: bool = False
    data_etags: Mapping[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Where this notice is stored."""
        return withdrawal_notice_key(self.dataset, date.fromisoformat(self.dt))

    def withdrew(
        self, inputs: Mapping[str, str], published: Mapping[str, str] | None = None
    ) -> bool:
        """Whether a build that read ``inputs`` (validated data key → ETag: a curated
        manifest's) read a delivery this notice withdrew: one of its :attr:`data_keys`,
        whatever the object read under it, unless that object is published there now
        (``published``: the day's validated data key → ETag, as its delivery manifests
        publish them now) and is not the one withdrawn (:attr:`data_etags`): a new delivery
        under the key (moved back, its void failed). Another ETag alone proves nothing: an
        earlier file the withdrawn key published under the same data key (overwritten by a
        corrected file, then moved off before a rebuild) was of the withdrawn delivery too.
        A key without an ETag recorded, or read without one, goes by key. A notice naming
        no data keys (an older release) says nothing here: it is judged by its time."""
        now = published or {}
        for key in self.data_keys:
            if key not in inputs:
                continue
            read, withdrawn = _etag(inputs[key]), _etag(self.data_etags.get(key, ""))
            if read and withdrawn and read != withdrawn and _etag(now.get(key, "")) == read:
                continue  # the object published under the key now: not the one withdrawn
            return True
        return False

    def to_dict(self) -> JsonObject:
        """The document as plain data."""
        document = {
            "schema_version": self.schema_version,
            "dataset": self.dataset,
            "dt": self.dt,
            "landing_key": self.landing_key,
            "withdrawn_at": self.withdrawn_at,
            "run_id": self.run_id,
            "moved_to": list(self.moved_to),
            "data_keys": list(self.data_keys),
            "emptied": self.emptied,
            "data_etags": dict(self.data_etags),
        }
        return _with_extra(document, self.extra)

    @classmethod
    def from_dict(cls, raw: object, *, key: str | None = None) -> WithdrawalNotice:
        """Check plain data (a parsed notice) and build it.

        Raises:
            ArtifactError: a field is missing or malformed, or the schema version is newer.
        """
        doc = _Fields(cls.ARTIFACT, raw, key)
        version = doc.version(cls.SCHEMA_VERSION)
        return cls(
            dataset=doc.text("dataset"),
            dt=doc.day("dt"),
            landing_key=doc.text("landing_key"),
            withdrawn_at=doc.moment("withdrawn_at"),
            run_id=doc.text("run_id", ""),
            moved_to=doc.texts("moved_to", ()),
            data_keys=doc.texts("data_keys", ()),
            emptied=doc.flag("emptied") if "emptied" in doc.raw else False,
            data_etags=doc.text_map("data_etags") if "data_etags" in doc.raw else {},
            schema_version=version,
            extra=doc.unknown(cls),
        )


def _etag(value: str) -> str:
    """An ETag as stores compare it: S3's quotes (``"abc"``, as ``aws s3api`` prints it)
    and a weak validator's ``W/`` taken off, so a notice written by hand or another tool
    names the same object the store lists."""
    value = value.strip()
    if value[:2] in ("W/", "w/"):
        value = value[2:]
    return value.strip('"')


def read_withdrawal_notice(store: ObjectStore, dataset: str, dt: date) -> WithdrawalNotice | None:
    """The last withdrawal notice of a validated partition, or ``None`` when it has none.

    Raises:
        ArtifactError: the notice is malformed (its key is named).
    """
    return WithdrawalNotice.read(store, withdrawal_notice_key(dataset, dt))


# ------------------------------------------------------------------ reading


_MISSING: Any = object()
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UTC_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def _load(data: bytes, artifact: str, key: str | None) -> object:
    try:
        return json.loads(data)
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are both
        raise ArtifactError(artifact, None, f"not a JSON document ({exc})", key) from exc


def _with_extra(document: JsonObject, extra: Mapping[str, Any]) -> JsonObject:
    clash = sorted(document.keys() & extra.keys())
    if clash:
        raise ValueError(f"extra: {clash} are fields of the document, not extra ones")
    document.update(extra)
    return document


class _Fields:
    """The fields of one JSON object, read with their type checked; errors name the field."""

    def __init__(self, artifact: str, raw: object, key: str | None, path: str = "") -> None:
        self.artifact, self.key, self.path = artifact, key, path
        if not isinstance(raw, dict):
            raise ArtifactError(
                artifact, path or None, f"expected a JSON object, got {_kind(raw)}", key
            )
        self.raw: JsonObject = raw

    def error(self, name: str, problem: str) -> ArtifactError:
        return ArtifactError(self.artifact, self._name(name), problem, self.key)

    def version(self, supported: int) -> int:
        """The document's schema version (1 when it has none), refused when newer."""
        version = self.raw.get("schema_version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise self.error("schema_version", f"expected a version number >= 1, got {version!r}")
        if version > supported:
            raise self.error(
                "schema_version",
                f"version {version} is newer than this code reads (up to {supported}); "
                "upgrade the reader",
            )
        return version

    def unknown(self, artifact: type[Any]) -> JsonObject:
        """The fields of the document that ``artifact`` does not model (kept as ``extra``)."""
        known = {f.name for f in fields(artifact)} - {"extra"}
        return {k: v for k, v in self.raw.items() if k not in known}

    def text(self, name: str, default: str = _MISSING) -> str:
        value = self._get(name, default)
        if not isinstance(value, str):
            raise self.error(name, f"expected a string, got {_kind(value)}")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.raw.get(name)
        return None if value is None else self.text(name)

    def day(self, name: str) -> str:
        value = self.text(name)
        try:
            valid = _ISO_DATE.fullmatch(value) is not None and bool(date.fromisoformat(value))
        except ValueError:
            valid = False
        if not valid:
            raise self.error(name, f"expected a date YYYY-MM-DD, got {value!r}")
        return value

    def moment(self, name: str) -> str:
        """A time in :func:`utc_timestamp`'s fixed format (text order is time order)."""
        value = self.text(name)
        try:
            valid = _UTC_TIMESTAMP.fullmatch(value) is not None and bool(
                datetime.fromisoformat(value)
            )
        except ValueError:
            valid = False
        if not valid:
            raise self.error(
                name, f"expected a UTC time YYYY-MM-DDTHH:MM:SS.ffffffZ, got {value!r}"
            )
        return value

    def optional_day(self, name: str) -> str | None:
        return None if self.raw.get(name) is None else self.day(name)

    def count(self, name: str, default: int = _MISSING) -> int:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(name, f"expected a whole number >= 0, got {_kind(value)}")
        return value

    def optional_count(self, name: str) -> int | None:
        return None if self.raw.get(name) is None else self.count(name)

    def flag(self, name: str) -> bool:
        value = self._get(name, _MISSING)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {_kind(value)}")
        return value

    def texts(self, name: str, default: tuple[str, ...] = _MISSING) -> tuple[str, ...]:
        texts: list[str] = []
        for index, value in enumerate(self._list(name, default)):
            if not isinstance(value, str):
                raise self.error(f"{name}[{index}]", f"expected a string, got {_kind(value)}")
            texts.append(value)
        return tuple(texts)

    def text_map(self, name: str) -> dict[str, str]:
        value = self._get(name, _MISSING)
        if not isinstance(value, dict):
            raise self.error(name, f"expected a JSON object, got {_kind(value)}")
        for item_key, item in value.items():
            if not isinstance(item, str):
                raise self.error(f"{name}.{item_key}", f"expected a string, got {_kind(item)}")
        return dict(value)

    def objects(self, name: str) -> tuple[JsonObject, ...]:
        """A list of JSON objects kept as they are (empty when absent)."""
        return tuple(item.raw for item in self.nested_list(name))

    def nested(self, name: str) -> _Fields:
        return _Fields(self.artifact, self._get(name, _MISSING), self.key, self._name(name))

    def optional_nested(self, name: str) -> _Fields | None:
        return None if self.raw.get(name) is None else self.nested(name)

    def nested_list(self, name: str) -> list[_Fields]:
        """The JSON objects of a list field (empty when absent)."""
        values = self._list(name, ())
        return [
            _Fields(self.artifact, value, self.key, self._name(f"{name}[{index}]"))
            for index, value in enumerate(values)
        ]

    def _list(self, name: str, default: object) -> list[object] | tuple[object, ...]:
        value = self._get(name, default)
        if not isinstance(value, list | tuple):
            raise self.error(name, f"expected a list, got {_kind(value)}")
        return value

    def _get(self, name: str, default: object) -> Any:
        if name in self.raw:
            return self.raw[name]
        if default is _MISSING:
            raise self.error(name, "missing")
        return default

    def _name(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name


def _kind(value: object) -> str:
    """``value`` as an error message shows it: scalars as written, containers by kind."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return repr(value)
