"""Process one landing object: validated data with its report, or a quarantined original.

The work unit of the lane (docs/architecture.md section 6): :meth:`Processor.process` takes a
landing key and is idempotent. In order:

1. a local landing file modified within ``landing_min_age`` (an upload in place may
   still be writing it) -> ``skipped``, neither claimed nor recorded: a later scan takes it;
   claim the object in the ledger (key + ETag); already done -> ``skipped``;
   a hostile or unaddressable key (:mod:`file_processing.names`) -> quarantined
   at once with its ``name.*`` reason under a safe name, never opened;
2. match it to a contract, which dates it from its name, a folder or its arrival
   time (none -> quarantined under ``_unknown``);
3. a required checksum sidecar that has not arrived yet -> ``skipped`` (waiting);
4. download the object once to scratch, hashing as it streams (SHA-256 for
   duplicate drops, plus the sidecar's algorithm), pinned to the claimed ETag;
5. a byte-identical file of the dataset already validated under another name
   -> ``skipped`` as a duplicate, nothing loaded twice;
6. verify the sidecar, decrypt, unpack and check every member (several at once,
   on one DuckDB database for the delivery), check that every member's output
   name can be published and belongs to no other delivery;
7. all members pass -> upload each member's data (valid rows), rejected rows
   and ``.quality.json`` to ``validated/``, then the delivery manifest that makes
   them visible to readers in one step (all or nothing); any refusal or failed
   member -> the original goes to ``quarantine/`` with its record;
8. mirror the outcome to the database (when configured), then finish the ledger record:
   a process killed between them leaves the object to be redone, never unmirrored.

The claim is renewed between the long steps, so a worker that lost it stops
before publishing. Every upload becomes visible in one step and outputs are
named after the delivery, so a crash leaves no partial file and a re-run
overwrites the same keys.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from etl_core.artifacts import (
    Delivery,
    DeliveryManifest,
    DeliveryManifests,
    DeliveryMember,
    QualitySummary,
)
from etl_core.contracts import Contract, ContractSet
from etl_core.errors import ConfigError, EtlError, ObjectNotFoundError
from etl_core.faults import Step, fault_point
from etl_core.layout import (
    LANDING,
    QUARANTINE,
    delivery_manifest_key,
    landing_prefix,
    quality_report_key,
    quarantine_prefix,
    rejected_rows_key,
    state_prefix,
    strip_zone,
    validated_prefix,
    zone_of,
)
from etl_core.logging import bound_context
from etl_core.metrics import Timer, counter, histogram
from etl_core.resources import Closeable
from etl_core.scratch import scratch_dir, sweep_scratch
from etl_core.storage import LocalObjectStore, ObjectInfo, ObjectStore
from etl_core.threads import ContextThreadPoolExecutor, result_of
from etl_core.work.cores import unit_threads
from file_processing.control import checksum_result, parse_sidecar, sidecar_name
from file_processing.decrypt import Decryptor
from file_processing.delivery import open_delivery, plaintext_name
from file_processing.engine import QualityEngine
from file_processing.errors import FileProcessingError, RefusedError
from file_processing.flush_ahead import FlushAhead, same_filesystem
from file_processing.ledger import (
    FINAL_STATES,
    Claim,
    ContentEntry,
    Ledger,
    LedgerConflictError,
    ObjectRecord,
    State,
    utc_stamp,
)
from file_processing.names import NameProblem, escaped, is_addressable, key_problem
from file_processing.outcome import Outcome, Status
from file_processing.outputs import check_ownership, output_keys, remove_stale, void_withdrawals
from file_processing.quality import QualityResult, validate_batch
from file_processing.quarantine import (
    QuarantineRecord,
    quarantine_key,
    quarantine_object,
    settle,
)
from file_processing.reasons import Reason
from file_processing.report import CheckResult
from file_processing.settings import FileProcessingSettings
from file_processing.sniff import (
    PGP_SNIFF_SIZE,
    SNIFF_SIZE,
    ZIP_TAIL_SIZE,
    Kind,
    is_pgp,
    sniff,
    zip_entries,
)

__all__ = ["Outcome", "Processor", "Status"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_MAX_FAILED_CHECKS = 50  # per quarantine record; each keeps its own samples
_MAX_SIDECAR_BYTES = 64 * 1024
_CONTENT_CLAIMS = 3  # an owner that ended unvalidated gives way; bounded against churn
_MAX_LISTED_MEMBERS = 100  # a quality report names its delivery's members up to this many
_HELD_REPORT_BYTES = 8 * 1024  # larger member reports wait for publishing in a file
_MAX_SUFFIX = 16  # characters of a member's suffix kept on its staged link
_BATCH_MEMBER_BYTES = 1 << 20  # larger members are checked alone, in a query of their own
_BATCH_CELLS = 4_000  # members x columns of one batched query (its per-member aggregates)

Envelope = dict[str, Any]
"""The delivery and partition as each member's quality report records them."""
Mirror = Callable[["Outcome", ObjectRecord, QuarantineRecord | None], None]

_objects = counter(
    "etl_file_processing_objects_total",
    "Landing objects processed, by outcome and reason code.",
    ["dataset", "outcome", "reason"],
)
_bytes_in = counter(
    "etl_file_processing_bytes_in_total", "Bytes of landing objects read.", ["dataset"]
)
_bytes_out = counter(
    "etl_file_processing_bytes_out_total", "Bytes written to validated/.", ["dataset"]
)
_rows = counter(
    "etl_file_processing_rows_total", "Data rows checked, by fate.", ["dataset", "fate"]
)
_stage_seconds = histogram(
    "etl_file_processing_stage_seconds", "Time spent per processing stage.", ["stage"]
)


@dataclass
class _Checked:
    """One member after its quality analysis, staged for upload."""

    member: str
    result: QualityResult
    data: Path | None
    report_json: bytes | Path
    """The whole report as published (JSON), held when small, else in a staged file; in
    ``result``, a passed member's report keeps only what the outcome needs (no profile,
    no samples), so memory stays flat over 10,000 members."""

    def report_bytes(self) -> bytes:
        """The staged report."""
        if isinstance(self.report_json, bytes):
            return self.report_json
        return self.report_json.read_bytes()


@dataclass(frozen=True)
class _Staged:
    """One unpacked member, linked into the work directory's ``members`` folder."""

    file: Path
    member: str
    index: int
    """The member's position in the delivery."""


@dataclass
class _Job:
    """One landing object in progress: its claim (renewed as it goes) and claimed content."""

    info: ObjectInfo
    claim: Claim
    content: ContentEntry | None = None
    quarantine: QuarantineRecord | None = None
    unsettled: list[str] = field(default_factory=list)
    """Quarantines of earlier deliveries this validated one could not close and stale
    outputs it could not remove (a store error): its ledger record keeps them, so the next
    delivery of the key tries again."""


_WAIT = object()  # a checksum sidecar may still arrive
_SETTLING = object()  # a checksum sidecar modified within landing_min_age: may still be written


def _checksum(
    info: ObjectInfo, contract: Contract, digests: dict[str, str], expected: object
) -> list[CheckResult]:
    """The checksum check of the delivery as landed (none when the contract asks for none).

    Raises:
        RefusedError: ``control_mismatch`` when the digest differs from the sidecar's.
    """
    algorithm = contract.control.checksum
    if algorithm is None or not isinstance(expected, str):
        return []
    result = checksum_result(algorithm, digests[algorithm], expected)
    if not result.passed:
        name = info.key.rsplit("/", 1)[-1]
        raise RefusedError(Reason.CONTROL_MISMATCH, f"{name}: {result.detail}")
    return [result]


class Processor(Closeable):
    """Processes landing objects of one store against a set of contracts; thread-safe.

    Args:
        store: The object store (``landing/`` in, ``validated/`` and ``quarantine/`` out).
        contracts: The dataset contracts.
        settings: Limits, scratch directory and claim timeout.
        run_id: Recorded in the ledger, reports and quarantine records.
        environ: Where ``env:`` secret references resolve (the process environment).
    """

    def __init__(
        self,
        store: ObjectStore,
        contracts: ContractSet,
        settings: FileProcessingSettings,
        *,
        run_id: str,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.contracts = contracts
        self.settings = settings
        self.run_id = run_id
        self.ledger = Ledger(store, run_id=run_id, claim_timeout=settings.claim_timeout)
        self._environ = environ
        self._limits = settings.unpack_limits()
        self._quality = settings.quality_settings()
        self.mirror: Mirror | None = None
        """Called with each outcome, its ledger record and its quarantine record (the
        database mirror); a failing mirror is logged, never fatal."""
        self.on_read: Callable[[str, int], None] | None = None
        """Called with a landing key and the size of each chunk of it downloaded (a
        progress bar measuring bytes); it must not raise."""
        self._decryptors: dict[str, Future[Decryptor]] = {}
        self._keyrings = ContextThreadPoolExecutor(1, "keyring")
        self._lock = threading.Lock()
        self._manifests = DeliveryManifests()
        """The delivery manifests read to check ownership, each read once per ETag."""
        # What killed runs left: scratch under work_dir, keyrings (secret keys) in the temp dir.
        sweep_scratch(settings.work_dir)
        sweep_scratch(None)

    def close(self) -> None:
        """Remove the temporary keyrings (once any still being made is ready)."""
        self._keyrings.shutdown(wait=True)
        with self._lock:
            futures, self._decryptors = list(self._decryptors.values()), {}
        for future in futures:
            if future.exception() is None:
                future.result().close()

    # ------------------------------------------------------------------ public

    def process(self, key: str, *, force: bool = False) -> Outcome:
        """Process the landing object ``key`` (see the module docstring).

        ``key`` may be one the store cannot address (``a//b``), as listed by
        :meth:`~etl_core.storage.ObjectStore.list_unaddressable`: it is quarantined.

        Raises:
            FileProcessingError: ``key`` is not under ``landing/`` or names a folder
                marker, or the object changed while it was read (the next scan
                processes it).
            ObjectNotFoundError: there is no such object.
            ConfigError: the contract's key or passphrase reference cannot be resolved.
            StorageError: the store failed (the object stays unprocessed).
        """
        if zone_of(key) != LANDING:
            raise FileProcessingError(f"{escaped(key)!r}: expected a key under {landing_prefix()}")
        started = time.perf_counter()
        problem = key_problem(key)
        if problem is None:
            self._keyring_ahead(key)
        info = self._head(key, problem)
        matched = self.contracts.match(key, info.last_modified)
        contract = matched[0] if matched else None
        with bound_context(key=escaped(key), dataset=contract.dataset if contract else None):
            if problem is None:
                outcome = self._process(info, matched, force)
            else:
                outcome = self._process_misnamed(info, matched, problem, force)
            folder, _, rest = strip_zone(key, LANDING).partition("/")
            outcome.source = folder if rest else None
            outcome.duration_seconds = round(time.perf_counter() - started, 3)
            reason = outcome.reason["code"] if outcome.reason else ""
            _objects.labels(
                dataset=outcome.dataset or "", outcome=outcome.metric_outcome, reason=reason
            ).inc()
            logger.info(
                "%s %s",
                outcome.status,
                escaped(key),
                extra={"status": outcome.status, "reason": reason},
            )
        return outcome

    def remove_abandoned_writes(self) -> None:
        """Remove what writers of this lane killed mid-write left (partial objects older
        than a claim lasts): members published side by side may leave several."""
        age = self.settings.claim_timeout
        for prefix in (validated_prefix(), quarantine_prefix(), state_prefix("file_processing")):
            self.store.remove_abandoned_writes(age, prefix)

    def is_control_file(self, key: str) -> bool:
        """Whether ``key`` is a checksum sidecar (read with its data file, never processed)."""
        return self.contracts.sidecar_of(key) is not None

    # ------------------------------------------------------------------ steps

    def _head(self, key: str, problem: NameProblem | None) -> ObjectInfo:
        """Describe the landing object, by its key as stored when the store cannot address it.

        Raises:
            FileProcessingError: ``key`` names a folder marker, not an object.
        """
        if problem is None:
            return self.store.head(key)
        info = self.store.head(key) if is_addressable(key) else self.store.head_unaddressable(key)
        if key.endswith("/") and info.size == 0:
            raise FileProcessingError(f"{escaped(key)!r} is a folder marker, not an object")
        return info

    def _process_misnamed(
        self,
        info: ObjectInfo,
        matched: tuple[Contract, date] | None,
        problem: NameProblem,
        force: bool,
    ) -> Outcome:
        """Quarantine an object whose key is hostile or unaddressable, under a safe name;
        recorded in the ledger like any outcome, so it is never retried."""
        if (settling := self._settling(info, matched)) is not None:
            return settling
        claim = self.ledger.claim(info.key, info.etag, force=force)
        if isinstance(claim, ObjectRecord):
            return _skipped_by(claim, info.key)
        job = _Job(info, claim)
        contract, day = matched if matched else (None, datetime.now(UTC).date())
        refusal = RefusedError(
            problem.reason, f"landing key {escaped(info.key)!r}: {problem.detail}"
        )
        try:
            outcome = self._quarantine(job, contract, day, refusal, local=None, misnamed=True)
        except BaseException as exc:
            self._abandon(job, exc)
            raise
        self._record(job, outcome)
        return outcome

    def _process(
        self, info: ObjectInfo, matched: tuple[Contract, date] | None, force: bool
    ) -> Outcome:
        if self.is_control_file(info.key):
            return Outcome("skipped", info.key, detail="a checksum sidecar, read with its file")
        if (settling := self._settling(info, matched)) is not None:
            return settling
        claim = self.ledger.claim(info.key, info.etag, force=force)
        if isinstance(claim, ObjectRecord):
            return _skipped_by(claim, info.key)
        job = _Job(info, claim)
        try:
            if matched is None:
                outcome = self._unmatched(job)
            else:
                outcome = self._matched(job, *matched, force=force)
        except BaseException as exc:
            self._abandon(job, exc)
            raise
        self._record(job, outcome)
        return outcome

    def _settling(self, info: ObjectInfo, matched: tuple[Contract, date] | None) -> Outcome | None:
        """``skipped``, neither claimed nor recorded, while a local landing file is younger
        than ``landing_min_age``: a vendor's SFTP may still be writing it in place, and its
        first pieces must not be validated (or quarantined) as the whole delivery. The next
        scan looks again; ``None`` once it is old enough (or on S3, where it appears whole)."""
        age = self._landing_age(info)
        if age is None:
            return None
        contract, day = matched if matched else (None, None)
        when = (
            f"last modified {_seconds(age)} ago"
            if age >= timedelta(0)
            else f"last modified at {utc_stamp(info.last_modified)}, {_seconds(-age)} ahead of "
            "this host's clock (a file server's clock ahead?)"
        )
        return Outcome(
            "skipped",
            info.key,
            dataset=contract.dataset if contract else None,
            partition=day.isoformat() if day else None,
            detail=(
                f"{when}, within landing_min_age "
                f"({_seconds(self.settings.landing_min_age)}): it may still be uploading; "
                "a later scan takes it"
            ),
            settling=True,
        )

    def _landing_age(self, info: ObjectInfo) -> timedelta | None:
        """How long ago the local landing file ``info`` was last modified, when that is
        within ``landing_min_age`` (``None``: old enough, or not a local store).

        Negative when its time is ahead of this host's clock by less than
        ``landing_min_age`` (a file server's clock slightly ahead, as it writes). A time
        further ahead was set explicitly, as ``put -p`` or ``rsync -t`` set it when the
        upload ends (from a host whose clock or time zone is wrong): not a write in
        progress, and measured from it the file would wait until the clock caught up."""
        quiet = self.settings.landing_min_age
        if quiet <= timedelta(0) or not isinstance(self.store, LocalObjectStore):
            return None
        age = datetime.now(UTC) - info.last_modified
        if age <= -quiet:
            logger.warning(
                "%s is dated %s, more than landing_min_age ahead of this host's clock: a "
                "time its upload set when it ended, not a write in progress; taken",
                escaped(info.key),
                utc_stamp(info.last_modified),
                extra={"key": escaped(info.key)},
            )
            return None
        return age if age < quiet else None

    def _abandon(self, job: _Job, exc: BaseException) -> None:
        """Record a failed or interrupted attempt; the object stays in line for the next scan
        (an interruption is never a verdict on the data)."""
        if isinstance(exc, KeyboardInterrupt):
            message = "interrupted (Ctrl-C or SIGTERM) before it finished; the next run takes it"
        else:
            message = f"{type(exc).__name__}: {exc}"[:500]
        try:
            self._forget_content(job)
            self.ledger.finish(job.claim, "failed", message=message)
        except Exception as cleanup:  # the original error matters more; say both
            logger.error("could not record the failure of %s: %s", job.info.key, cleanup)

    def _record(self, job: _Job, outcome: Outcome) -> None:
        """Finish the ledger record with ``outcome``, which gives up the claim."""
        state: State
        if outcome.status != "skipped":
            state = outcome.status
        else:
            state = "duplicate" if outcome.duplicate_of else "waiting"
        reason = outcome.reason or {}

        def mirrored(record: ObjectRecord) -> None:
            # Before the ledger's record: once that is written the next scan skips the
            # object, so a mirror left for after it would be lost with a killed process.
            if self.mirror is None:
                return
            try:
                self.mirror(outcome, record, job.quarantine)
            except Exception as exc:  # the store's ledger is the record of truth
                logger.warning("outcome of %s not mirrored to the database: %s", record.key, exc)

        self.ledger.finish(
            job.claim,
            state,
            before_write=mirrored,
            dataset=outcome.dataset,
            partition=outcome.partition,
            outputs=outcome.outputs,
            reason=reason.get("code"),
            message=reason.get("message") or outcome.detail or None,
            duplicate_of=outcome.duplicate_of,
            content_sha256=job.content.sha256 if job.content else None,
            # A validated delivery settled what earlier ones left (carried_outputs), but
            # for the quarantines it could not close and the stale outputs it could not remove
            earlier_outputs=(
                job.unsettled if state == "validated" else job.claim.record.earlier_outputs
            ),
        )
        fault_point(Step.RECORDED)

    def _unmatched(self, job: _Job) -> Outcome:
        info = job.info
        refusal = RefusedError(Reason.CONTRACT_UNMATCHED, self.contracts.why_unmatched(info.key))
        today = datetime.now(UTC).date()
        return self._quarantine(job, None, today, refusal, local=None)

    def _matched(self, job: _Job, contract: Contract, day: date, *, force: bool) -> Outcome:
        info = job.info
        if info.size == 0:
            empty = RefusedError(Reason.DATA_EMPTY, f"{info.key} is empty (0 bytes)")
            return self._quarantine(job, contract, day, empty, local=None)
        try:
            expected = self._sidecar_digest(info, contract)
        except RefusedError as refusal:
            return self._quarantine(job, contract, day, refusal, local=None)
        if expected is _WAIT or expected is _SETTLING:
            return _waiting(info, contract, day, settling=expected is _SETTLING)
        with scratch_dir(self.settings.work_dir, "file") as workdir:
            with _timed("download"):
                local, digests = self._download(info, workdir, contract.control.checksum)
            _bytes_in.labels(dataset=contract.dataset).inc(info.size)
            job.claim = self.ledger.renew(job.claim)
            content = ContentEntry(digests["sha256"], info.key, info.etag, contract.dataset, [])
            holder = None if force else self._claim_content(content)
            if holder is not None:
                return self._duplicate_or_wait(info, contract, day, *holder)
            job.content = content
            try:
                control = _checksum(info, contract, digests, expected)
                envelope = self._envelope(info, day, control)
                checked = self._check_members(local, info, contract, workdir, envelope)
                failed = [c for c in checked if not c.result.report.passed]
                keys = (
                    []
                    if failed
                    else output_keys(contract.dataset, day, [c.member for c in checked])
                )
                check_ownership(self.store, keys, info.key, manifests=self._manifests)
            except RefusedError as refusal:
                self._forget_content(job)
                return self._quarantine(job, contract, day, refusal, local=local)
            if failed:
                self._forget_content(job)
                return self._quarantine_failed(job, contract, day, local, checked, failed)
            # Only a quarantine needs the delivery's copy: gone now, it is never written back
            # to disk by the flush that publishing makes.
            local.unlink()
            job.claim = self.ledger.renew(job.claim)
            outcome = self._publish(info, contract, day, checked, keys, control, content.sha256)
        previous = job.claim.previous
        if previous is not None:  # what earlier deliveries of the key left
            # The last attempt was on this same ETag: a forced re-process (or the redo of
            # one that failed, was quarantined or killed) moved by a contract change. The
            # same bytes re-uploaded after another ETag keep their days (arrival-dated). A
            # key dated by its name is one day's file: every other partition of it goes.
            same_etag = previous.etag == info.etag
            left = remove_stale(
                self.store,
                job.claim.record.earlier_outputs,
                outcome.outputs,
                landing_key=info.key,
                run_id=self.run_id,
                same_delivery=same_etag and previous.state == "validated",
                delivery=info if same_etag else None,
                one_day_key=contract.date_from != "arrival",
                # what the last validated delivery could not remove: retried in any partition
                leftovers=previous.earlier_outputs if previous.state == "validated" else (),
            )
            job.unsettled.extend(left)  # published all the same: the next delivery retries
        else:  # a first delivery may publish a data key a move off its day withdrew
            void_withdrawals(self.store, outcome.outputs, info.key)
        fault_point(Step.STALE_REMOVED)
        try:  # the content is this key's since it was claimed; this adds its outputs
            self.ledger.record_content(replace(content, outputs=outcome.outputs))
        except EtlError as exc:  # published: never recorded failed (its content given up)
            logger.warning(
                "%s: outputs not recorded in the content index (a duplicate of it names "
                "none): %s", escaped(info.key), exc,
            )  # fmt: skip
        fault_point(Step.CONTENT_RECORDED)
        outcome.superseded = self._supersede(job, contract, day)
        fault_point(Step.SUPERSEDED)
        return outcome

    def _supersede(self, job: _Job, contract: Contract, day: date) -> list[dict[str, str]]:
        """Close the open quarantine records this validated delivery settles: those the
        claim carried forward (every quarantine of the key since its last validated
        delivery, whatever failed, waited or was killed between:
        :func:`~file_processing.ledger.carried_outputs`) and the one at the key a
        quarantine of it would take today; an earlier delivery's as superseded, this same
        delivery's (processed again: ``process --force``) as revalidated. Before the
        ledger's record: a process killed in between redoes it. A record that cannot be
        closed is logged; the delivery stays validated.

        Nothing is read when the ledger had no record of the key before this claim: no
        earlier delivery of it was ever quarantined (a quarantine is written under a
        claim), so a scan of new drops pays no extra store read per validated file. A
        re-delivery renews the claim first: one that ran out while publishing closes nothing
        (the worker that took the key over may have quarantined a newer delivery)."""
        info = job.info
        previous = job.claim.previous
        if previous is None:
            return []
        try:  # still this worker's key: a worker that took it over (its claim ran out
            # while this one published) may have quarantined a newer delivery meanwhile
            job.claim = self.ledger.renew(job.claim)
        except LedgerConflictError as exc:
            logger.warning("%s: no quarantine closed as superseded: %s", escaped(info.key), exc)
            return []
        # The last attempt on the key did not finish (a redo of this same delivery, or the
        # landing object was replaced since): what it closed is reported (and mirrored) now.
        unfinished = previous.etag if previous.state not in FINAL_STATES else None
        candidates = [key for key in job.claim.record.earlier_outputs if zone_of(key) == QUARANTINE]
        candidates.append(quarantine_key(info.key, contract.dataset, day))
        closed: list[dict[str, str]] = []
        for key in dict.fromkeys(candidates):
            try:
                record = settle(self.store, key, info, run_id=self.run_id, unfinished=unfinished)
            except EtlError as exc:
                logger.warning("quarantine %s not closed: %s", key, exc)
                job.unsettled.append(key)
                continue
            if record is not None:
                closed.append(
                    {
                        "key": record.key,
                        "etag": record.source_etag,
                        "closed_at": record.released_at or "",
                        "closed_by": record.released_by or "",
                    }
                )
        return closed

    def _forget_content(self, job: _Job) -> None:
        """Give up the content this job claimed: it was not validated."""
        if job.content is not None:
            self.ledger.forget_content(job.content.dataset, job.content.sha256, job.info.key)
            job.content = None

    def _claim_content(
        self, content: ContentEntry
    ) -> tuple[ContentEntry, ObjectRecord | None] | None:
        """Own ``content`` for this job (``None``), or the owner that stands in the way and
        its ledger record. An owner whose processing ended without validating the content
        between the two reads (quarantined, failed) no longer stands in the way: claimed again.
        """
        attempt = 0
        while (owner := self.ledger.claim_content(content)) is not None:
            attempt += 1
            record = self.ledger.get(owner.key)
            settled = record is not None and record.state in ("validated", "processing")
            if settled or attempt == _CONTENT_CLAIMS:
                return owner, record
        return None

    def _duplicate_or_wait(
        self,
        info: ObjectInfo,
        contract: Contract,
        day: date,
        owner: ContentEntry,
        record: ObjectRecord | None,
    ) -> Outcome:
        """A byte-identical file of the same dataset owns this content: a duplicate of a
        validated original, else it waits, told truly what the original is doing."""
        if record is not None and record.state == "validated":
            return _duplicate(info, contract, day, owner)
        if record is not None and record.state == "processing":
            doing = f"which {record.holder} is processing (claimed {record.claimed_at})"
        elif record is None:
            doing = "which is not in the ledger"
        else:  # it ended unvalidated again and again while this worker looked
            why = record.reason or record.message or "no reason recorded"
            doing = f"whose processing ended {record.state} ({why}), not validated"
        return Outcome(
            "skipped",
            info.key,
            dataset=contract.dataset,
            partition=day.isoformat(),
            detail=f"byte-identical to {owner.key}, {doing}; this copy is retried by the next scan",
        )

    def _download(
        self, info: ObjectInfo, workdir: Path, algorithm: str | None
    ) -> tuple[Path, dict[str, str]]:
        """Stream the object to scratch, hashing on the way; bounded memory.

        Raises:
            FileProcessingError: the object was replaced while it was read.
        """
        hashers = {"sha256": hashlib.sha256()}
        if algorithm and algorithm not in hashers:
            hashers[algorithm] = hashlib.new(algorithm)
        local = workdir / "delivery"
        with self.store.open_read(info.key) as stream, local.open("wb") as sink:
            fault_point(Step.DOWNLOAD)
            while chunk := stream.read(_CHUNK):
                for hasher in hashers.values():
                    hasher.update(chunk)
                sink.write(chunk)
                if self.on_read is not None:
                    self.on_read(info.key, len(chunk))
        if self.store.head(info.key).etag != info.etag:
            raise FileProcessingError(
                f"{info.key} was replaced while it was read; the next scan processes the new one"
            )
        return local, {name: hasher.hexdigest() for name, hasher in hashers.items()}

    def _sidecar_digest(self, info: ObjectInfo, contract: Contract) -> str | object | None:
        """The digest the contract's sidecar vouches for: ``None`` when none is required,
        ``_WAIT`` while it may still arrive, ``_SETTLING`` while it was modified within
        ``landing_min_age`` (it may still be being written).

        Raises:
            RefusedError: ``control_mismatch``: no sidecar within the grace period,
                or an unusable one.
        """
        algorithm = contract.control.checksum
        if algorithm is None:
            return None
        name = info.key.rsplit("/", 1)[-1]
        sidecar = info.key + "." + algorithm
        try:
            found = self.store.head(sidecar)
        except ObjectNotFoundError:
            if datetime.now(UTC) - info.last_modified < self.settings.sidecar_grace:
                return _WAIT
            raise RefusedError(
                Reason.CONTROL_MISMATCH,
                f"the contract requires {sidecar_name(name, algorithm)} beside {name}; "
                f"none arrived within {self.settings.sidecar_grace}",
            ) from None
        if self._landing_age(found) is not None:  # still being written, like a young file
            return _SETTLING
        size = found.size
        if size > _MAX_SIDECAR_BYTES:
            raise RefusedError(
                Reason.CONTROL_MISMATCH,
                f"{sidecar_name(name, algorithm)} is {size} bytes; a checksum sidecar is "
                f"at most {_MAX_SIDECAR_BYTES}",
            )
        text = self.store.read_bytes(sidecar).decode("utf-8", "replace")
        return parse_sidecar(text, algorithm=algorithm, file_name=name)

    def _check_members(
        self, local: Path, info: ObjectInfo, contract: Contract, workdir: Path, envelope: Envelope
    ) -> list[_Checked]:
        """Decrypt, unpack and check every data member; stage what would be published.

        Members are checked in batches (:attr:`~FileProcessingSettings.member_batch`
        small members share one engine query, a large one goes alone),
        :attr:`~FileProcessingSettings.member_concurrency` batches at a time on one
        shared database, each member from a hard link of its own (the unpacker removes
        a member as it moves on), with at most twice that many batches in flight.
        """
        name = info.key.rsplit("/", 1)[-1]
        # The sidecar vouches for the delivery as landed, not for its members.
        member_contract = replace(contract, control=replace(contract.control, checksum=None))
        workers = self.settings.member_concurrency
        limit = _batch_size(self.settings.member_batch, member_contract)
        with ExitStack() as stack:
            stack.enter_context(_timed("open_and_check"))
            engine = stack.enter_context(self._engine(workdir, local))
            flusher = stack.enter_context(FlushAhead(enabled=self._flushes_writes(workdir)))
            pool = stack.enter_context(ContextThreadPoolExecutor(workers, "member"))
            stack.callback(pool.shutdown, cancel_futures=True)  # a refusal stops the rest
            members = open_delivery(
                local,
                name=name,
                packing=contract.packing,
                encryption=contract.encryption,
                decryptor=self._decryptor(contract, info.key) if _is_encrypted(local) else None,
                limits=self._limits,
                workdir=workdir,
            )
            members_dir = workdir / "members"
            members_dir.mkdir()
            pending: deque[Future[list[_Checked]]] = deque()
            checked: list[_Checked] = []
            batch: list[_Staged] = []

            def submit(staged: list[_Staged]) -> None:
                check = self._check_batch
                pending.append(
                    pool.submit(check, staged, member_contract, engine, workdir, envelope)
                )
                while len(pending) >= 2 * workers:
                    self._collect(pending.popleft(), checked)

            for index, member in enumerate(members):
                fault_point(Step.UNPACK)
                size = member.file.stat().st_size
                if size == 0:
                    raise RefusedError(Reason.DATA_EMPTY, f"{member.path} is empty (0 bytes)")
                staged = _Staged(_stage_member(member.file, members_dir, index), member.path, index)
                flusher.add(staged.file, size)  # written back to disk while it is checked
                if size > _BATCH_MEMBER_BYTES:
                    submit([staged])  # a large member goes alone, in its own query
                    continue
                batch.append(staged)
                if len(batch) >= limit:
                    submit(batch)
                    batch = []
            if batch:
                submit(batch)
            for future in pending:
                self._collect(future, checked)
        if not checked:
            raise RefusedError(Reason.ARCHIVE_EMPTY, f"{name} holds no data file")
        _log_members(name, checked)
        return checked

    @staticmethod
    def _collect(future: Future[list[_Checked]], checked: list[_Checked]) -> None:
        """Add a batch's checked members, each past the ``checks`` fault point."""
        for item in result_of(future):
            checked.append(item)
            fault_point(Step.CHECKS)

    def _check_batch(
        self,
        staged: list[_Staged],
        contract: Contract,
        engine: QualityEngine,
        workdir: Path,
        envelope: Envelope,
    ) -> list[_Checked]:
        """Check staged member files together; each one's valid data stays staged in its
        output folder and its report, as it will be published, in a staged file."""
        results = validate_batch(
            [item.file for item in staged],
            contract,
            out_dirs=[workdir / f"out-{item.index}" for item in staged],
            names=[item.member for item in staged],
            settings=self._quality,
            engine=engine,
        )
        return [
            self._staged_report(item, result, workdir, envelope)
            for item, result in zip(staged, results, strict=True)
        ]

    def _staged_report(
        self, item: _Staged, result: QualityResult, workdir: Path, envelope: Envelope
    ) -> _Checked:
        """Stage one checked member's report, built and serialised once, as published
        (unless its delivery lists its members); keep in memory what the outcome needs."""
        kept = result.valid_path  # a wholly valid member: its staged link itself
        if kept != item.file:
            item.file.unlink(missing_ok=True)
        report = result.report
        summary = QualitySummary.from_dict({**envelope, **report.to_dict()}).to_json()
        report_json: bytes | Path = summary
        if len(summary) > _HELD_REPORT_BYTES:
            report_json = workdir / f"report-{item.index}.json"
            report_json.write_bytes(summary)
        if report.passed:
            report.profile, report.malformed, report.encoding_errors = [], [], []
            report.checks = [replace(check, samples=[]) for check in report.checks]
        return _Checked(item.member, result, kept, report_json)

    def _flushes_writes(self, workdir: Path) -> bool:
        """Whether the store flushes what it publishes to disk and takes the files staged in
        ``workdir`` themselves (a local store on their filesystem): then flushing them ahead
        shortens publishing."""
        store = self.store
        return (
            isinstance(store, LocalObjectStore)
            and store.fsync
            and same_filesystem(workdir, store.root)
        )

    def _engine(self, workdir: Path, local: Path) -> QualityEngine:
        """One database for every member of the delivery ``local`` in ``workdir``.

        Unless :attr:`~FileProcessingSettings.quality_threads` says otherwise, the delivery
        gets its share of the cores beside the other deliveries processed at once (a pool's
        threads, a worker's processes: :func:`~etl_core.work.cores.unit_threads`), and an
        archive's members, checked ``member_concurrency`` batches at once, share that
        (a thread pool per core for each of them only makes them wait for each other);
        a plain file, or a zip whose end record declares a single entry, gets all of it.
        """
        parts = 1
        if _is_archive(local):
            parts = min(self.settings.member_concurrency, _zip_entries(local) or sys.maxsize)
        threads = unit_threads(self._quality.threads, parts=parts)
        return QualityEngine(workdir, memory_limit=int(self._quality.memory_limit), threads=threads)

    def _envelope(self, info: ObjectInfo, day: date, control: list[CheckResult]) -> Envelope:
        """What each member's report says of its delivery and partition (the members are
        listed when the delivery is published, if they are few enough)."""
        delivery = {
            "key": info.key,
            "etag": info.etag,
            "size": info.size,
            "run_id": self.run_id,
            "members": [],
            "control": [asdict(c) for c in control],
        }
        return {"delivery": delivery, "dt": day.isoformat()}

    def _publish(
        self,
        info: ObjectInfo,
        contract: Contract,
        day: date,
        checked: list[_Checked],
        keys: list[str],
        control: list[CheckResult],
        sha256: str,
    ) -> Outcome:
        """Upload every member's data, rejected rows and report, then the delivery manifest
        that makes them visible to readers at once; on failure, remove what was written."""
        outcome = _outcome("validated", info, contract, day, checked, control)
        delivery = QualitySummary.from_json(checked[0].report_bytes()).delivery
        # Each member's report carries this: listing 10,000 members in 10,000 reports
        # would write 10,000² names. The delivery manifest always lists them all.
        listed = None
        if len(checked) <= _MAX_LISTED_MEMBERS:
            delivery = listed = replace(delivery, members=tuple(c.member for c in checked))
        written: list[str] = []  # every key written, in any order, for the clean-up
        lock = threading.Lock()
        try:
            with _timed("publish"):
                # The members' directory entries are made durable together, before the
                # manifest that makes them visible (one directory sync, not one per file).
                with (
                    self.store.deferred_sync(),
                    ContextThreadPoolExecutor(self.settings.member_concurrency, "publish") as pool,
                ):
                    futures = [
                        pool.submit(self._publish_member, item, key, listed, written, lock)
                        for item, key in zip(checked, keys, strict=True)
                    ]
                    published = [result_of(future) for future in futures]
                manifest = DeliveryManifest(
                    dataset=contract.dataset,
                    dt=day.isoformat(),
                    delivery=delivery,
                    members=tuple(member for member, _ in published),
                    published_at=datetime.now(UTC).isoformat(),
                    sha256=sha256,
                )
                manifest_key = delivery_manifest_key(contract.dataset, day, info.key)
                # named before the write: an error (a time limit) striking once it landed,
                # before it returned, must not leave it naming removed members
                written.append(manifest_key)
                self.store.write_bytes(manifest_key, manifest.to_json())
                fault_point(Step.DELIVERY_MANIFEST)
        except BaseException:
            self._unpublish(written)
            raise
        for member, size in published:
            outcome.outputs.append(member.key)
            if member.rejected is not None:
                outcome.outputs.append(member.rejected)
            outcome.outputs.append(member.report)
            _bytes_out.labels(dataset=contract.dataset).inc(size)
        outcome.outputs.append(manifest_key)
        for item in checked:
            counts = item.result.report.rows
            _rows.labels(dataset=contract.dataset, fate="valid").inc(counts.valid)
            _rows.labels(dataset=contract.dataset, fate="rejected").inc(counts.rejected)
        return outcome

    def _publish_member(
        self,
        item: _Checked,
        key: str,
        listed: Delivery | None,
        written: list[str],
        lock: threading.Lock,
    ) -> tuple[DeliveryMember, int]:
        """Upload one member's data, rejected rows and report (as staged, or naming every
        member of the delivery ``listed``), consuming the staged files; say what and how
        many bytes."""

        def wrote(written_key: str) -> None:
            with lock:
                written.append(written_key)

        assert item.data is not None  # a passed member always has its data staged
        size = self.store.move_in(item.data, key)  # a local store takes the file itself
        wrote(key)
        rejected_key = None
        if item.result.rejected_path is not None:
            rejected_key = rejected_rows_key(key)
            size += self.store.move_in(item.result.rejected_path, rejected_key)
            wrote(rejected_key)
        fault_point(Step.MEMBER_PUBLISH)
        report_key = quality_report_key(key)
        staged = item.report_json
        if listed is not None:
            report = QualitySummary.from_json(item.report_bytes(), key=report_key)
            self.store.write_bytes(report_key, replace(report, delivery=listed).to_json())
        elif isinstance(staged, bytes):
            self.store.write_bytes(report_key, staged)
        else:
            self.store.move_in(staged, report_key)
        wrote(report_key)
        fault_point(Step.REPORT_PUBLISH)
        _discard_staged(item)
        valid = item.result.report.rows.valid
        return DeliveryMember(key, valid, report_key, rejected_key), size

    def _unpublish(self, keys: list[str]) -> None:
        """Remove what a failed publish wrote, so no partial delivery stays visible: the
        last written first, the manifest that makes the members visible before them."""
        for key in reversed(keys):
            try:
                self.store.delete(key)
            except Exception as exc:  # best effort: the original error is re-raised
                logger.error("could not remove %s after a failed publish: %s", key, exc)

    def _quarantine_failed(
        self,
        job: _Job,
        contract: Contract,
        day: date,
        local: Path,
        checked: list[_Checked],
        failed: list[_Checked],
    ) -> Outcome:
        info = job.info
        first = failed[0].result.report
        assert first.reason is not None  # a failed report always says why
        failed_checks = [
            {"member": item.member, **asdict(check)}
            for item in failed
            for check in item.result.report.failed_checks
        ][:_MAX_FAILED_CHECKS]
        extra = f" (and {len(failed) - 1} more member(s))" if len(failed) > 1 else ""
        refusal = RefusedError(
            first.reason.code, first.reason.message + extra, member=failed[0].member
        )
        outcome = self._quarantine(job, contract, day, refusal, local=local, checks=failed_checks)
        outcome.checks = _outcome("quarantined", info, contract, day, checked, []).checks
        outcome.members = [_member_summary(c) for c in checked]
        outcome.rows = sum(c.result.report.rows.total for c in checked)
        return outcome

    def _quarantine(
        self,
        job: _Job,
        contract: Contract | None,
        day: date,
        refusal: RefusedError,
        *,
        local: Path | None,
        checks: list[dict[str, Any]] | None = None,
        misnamed: bool = False,
    ) -> Outcome:
        info = job.info
        dataset = contract.dataset if contract else None
        # Named in the claim first: a process killed after writing it leaves it known, so
        # a later validated delivery of the key closes its record.
        key = quarantine_key(info.key, dataset, day, misnamed=misnamed)
        job.claim = self.ledger.note_quarantine(job.claim, key)
        with _timed("quarantine"):
            record = quarantine_object(
                self.store,
                info,
                dataset=dataset,
                partition=day,
                reason=refusal.reason.value,
                message=refusal.message,
                run_id=self.run_id,
                local_copy=local,
                member=refusal.member,
                failed_checks=checks,
                misnamed=misnamed,
            )
        job.quarantine = record
        return Outcome(
            "quarantined",
            info.key,
            dataset=dataset,
            partition=day.isoformat(),
            outputs=[record.key, record.record_key],
            reason={"code": refusal.reason.value, "message": refusal.message},
            bytes_in=info.size,
        )

    def _decryptor(self, contract: Contract, key: str) -> Decryptor | None:
        """The contract's decryptor (one temporary keyring per contract and process), for
        the delivery ``key`` (one its name did not announce makes a failed keyring again).

        Raises:
            ConfigError: the contract's key or passphrase reference cannot be resolved.
            GpgError: gpg cannot use the key.
        """
        future = self._keyring(contract, again=not _named_encrypted(key))
        return None if future is None else result_of(future)

    def _keyring_ahead(self, key: str) -> None:
        """Start making the keyring of the contract whose pattern ``key`` matches, when its
        name says OpenPGP: gpg imports the key while the object is described, claimed and
        downloaded (a key that turns out to be dated by no contract only made it early)."""
        contract = self.contracts.find(key)
        if contract is not None and _named_encrypted(key) and not self.is_control_file(key):
            with bound_context(key=escaped(key), dataset=contract.dataset):  # gpg's log lines
                self._keyring(contract)

    def _keyring(self, contract: Contract, *, again: bool = True) -> Future[Decryptor] | None:
        """The contract's decryptor, being made on a thread of its own (gpg imports the key
        and decrypts a probe) while the caller goes on; one that failed is made ``again``
        (for the next delivery: the failure is each delivery's to report once)."""
        if contract.key is None:
            return None
        with self._lock:
            future = self._decryptors.get(contract.dataset)
            failed = future is not None and future.done() and future.exception() is not None
            if future is None or (again and failed):
                future = self._keyrings.submit(self._new_decryptor, contract)
                self._decryptors[contract.dataset] = future
            return future

    def _new_decryptor(self, contract: Contract) -> Decryptor:
        secret = _reveal(contract, "key").encode()
        passphrase = _reveal(contract, "passphrase") if contract.passphrase else None
        return Decryptor(
            secret,
            passphrase=passphrase,
            signer_keys=_signer_keys(contract),
            signature=contract.signature_policy,
            workdir=self.settings.work_dir,
        )


# ---------------------------------------------------------------------- helpers


def _stage_member(file: Path, folder: Path, index: int) -> Path:
    """A link to (or copy of) an unpacked member that outlives the unpacker's own file:
    ``folder/<index><its suffix>``, one flat folder for every member."""
    return _link_or_copy(file, folder / f"{index}{file.suffix[:_MAX_SUFFIX]}")


def _link_or_copy(file: Path, target: Path) -> Path:
    """A hard link ``target`` to ``file``, or a copy where linking fails."""
    try:
        os.link(file, target)
    except OSError:
        shutil.copyfile(file, target)
    return target


def _discard_staged(item: _Checked) -> None:
    """Remove what a published member left staged (its files went into the store): its
    output folder, now, in the publishing thread, rather than 10,000 of them one after
    another when the work directory goes."""
    report = item.report_json if isinstance(item.report_json, Path) else None
    for path in (item.data, item.result.rejected_path, report):
        if path is not None:
            path.unlink(missing_ok=True)
            with suppress(OSError):  # its output folder, once empty
                if path.parent.name.startswith("out-"):
                    path.parent.rmdir()


def _outcome(
    status: Status,
    info: ObjectInfo,
    contract: Contract,
    day: date,
    checked: list[_Checked],
    control: list[CheckResult],
) -> Outcome:
    checks = [{"member": None, **_check_summary(c)} for c in control]
    for item in checked:
        checks += [{"member": item.member, **_check_summary(c)} for c in item.result.report.checks]
    rows = sum(c.result.report.rows.total for c in checked)
    return Outcome(
        status,
        info.key,
        dataset=contract.dataset,
        partition=day.isoformat(),
        checks=checks,
        members=[_member_summary(c) for c in checked],
        bytes_in=info.size,
        rows=rows,
    )


def _log_members(name: str, checked: list[_Checked]) -> None:
    """One line for a delivery's quality analyses (each member's own line is at DEBUG)."""
    reports = [item.result.report for item in checked]
    passed = sum(report.outcome == "pass" for report in reports)
    logger.info(
        "quality %s: %d member(s), %d passed, %d failed, %d rows, %d rejected",
        name,
        len(reports),
        passed,
        len(reports) - passed,
        sum(report.rows.total for report in reports),
        sum(report.rows.rejected for report in reports),
    )


def _check_summary(check: CheckResult) -> dict[str, Any]:
    """A check's fields but its samples (all plain values: no ``asdict`` deep copy)."""
    return {name: getattr(check, name) for name in _CHECK_SUMMARY_FIELDS}


_CHECK_SUMMARY_FIELDS = tuple(f.name for f in fields(CheckResult) if f.name != "samples")


def _member_summary(item: _Checked) -> dict[str, Any]:
    report = item.result.report
    return {
        "member": item.member,
        "outcome": report.outcome,
        "rows": report.rows.total,
        "valid": report.rows.valid,
        "rejected": report.rows.rejected,
        "reason": report.reason.code.value if report.reason else None,
    }


def _skipped_by(record: ObjectRecord, key: str) -> Outcome:
    if record.state == "processing":
        detail = f"being processed by {record.holder} (claimed {record.claimed_at})"
    else:
        detail = (
            f"already {record.state} (run {record.run_id}, {record.finished_at}); --force redoes it"
        )
    return Outcome(
        "skipped",
        key,
        dataset=record.dataset,
        partition=record.partition,
        outputs=list(record.outputs),
        detail=detail,
    )


def _duplicate(info: ObjectInfo, contract: Contract, day: date, owner: ContentEntry) -> Outcome:
    return Outcome(
        "skipped",
        info.key,
        dataset=contract.dataset,
        partition=day.isoformat(),
        outputs=list(owner.outputs),
        reason={
            "code": Reason.DUPLICATE.value,
            "message": f"byte-identical to {owner.key}, already validated; not loaded twice",
        },
        detail=f"duplicate of {owner.key}",
        duplicate_of=owner.key,
        bytes_in=info.size,
    )


def _waiting(info: ObjectInfo, contract: Contract, day: date, *, settling: bool) -> Outcome:
    algorithm = contract.control.checksum or ""
    if settling:
        detail = (
            f"waiting for its {algorithm} sidecar {info.key}.{algorithm}, modified within "
            "landing_min_age: it may still be uploading"
        )
    else:
        detail = f"waiting for its {algorithm} sidecar {info.key}.{algorithm}"
    return Outcome(
        "skipped",
        info.key,
        dataset=contract.dataset,
        partition=day.isoformat(),
        detail=detail,
        settling=settling,
    )


def _seconds(span: timedelta) -> str:
    """A duration as whole seconds (``42s``), never negative (a clock behind a file's)."""
    return f"{max(0, int(span.total_seconds()))}s"


def _batch_size(configured: int, contract: Contract) -> int:
    """Members per batched query: the setting, fewer for wide files (each member keeps
    a sketch per column in the query until it ends)."""
    return max(1, min(configured, _BATCH_CELLS // max(1, len(contract.columns))))


def _zip_entries(path: Path) -> int | None:
    """The entry count a zip's end record declares (``None``: not a zip, or unknown)."""
    with path.open("rb") as stream:
        stream.seek(max(0, path.stat().st_size - ZIP_TAIL_SIZE))
        return zip_entries(stream.read(ZIP_TAIL_SIZE))


def _is_archive(path: Path) -> bool:
    """Whether the downloaded delivery is a zip or tar archive (many members, likely)."""
    with path.open("rb") as stream:
        return sniff(stream.read(SNIFF_SIZE)) in (Kind.ZIP, Kind.TAR)


def _named_encrypted(key: str) -> bool:
    """Whether ``key``'s name says OpenPGP: its keyring is then made ahead, while it
    downloads (the content decides whether it is decrypted, whatever its name)."""
    return plaintext_name(key) != key


def _is_encrypted(path: Path) -> bool:
    with path.open("rb") as stream:
        return is_pgp(stream.read(PGP_SNIFF_SIZE))


def _signer_keys(contract: Contract) -> list[bytes]:
    """The vendor public keys of ``contract``, resolved.

    Raises:
        ConfigError: a reference cannot be resolved; the message names the field.
    """
    keys: list[bytes] = []
    for index, secret in enumerate(contract.signer_keys):
        try:
            keys.append(str(secret.reveal()).encode())
        except ConfigError as exc:
            raise ConfigError(
                f"{contract.origin}: signer key #{index + 1} {secret!r} cannot be resolved: {exc}"
            ) from exc
    return keys


def _reveal(contract: Contract, name: str) -> str:
    secret = getattr(contract, name)
    try:
        return str(secret.reveal())
    except ConfigError as exc:
        raise ConfigError(
            f"{contract.origin}: {name} = {secret!r} cannot be resolved: {exc}"
        ) from exc


def _timed(stage: str) -> Timer:
    return Timer(_stage_seconds.labels(stage=stage))
