"""``ingest replay``: land a run's records again from its raw archive, without the API.

After fixing an endpoint's ``records_path`` or ``primary_key`` (say), the records of a
finished run are extracted again from the pages its manifest lists, with the source
configuration as it is now, and landed under the same chunk keys
(``landing/api/<source>/<endpoint>/<endpoint>_<date>_<run>_<chunk>.jsonl.gz``), so
file_processing sees a new version of each chunk (a new ETag) and nothing twice.

- Every page is checked against the manifest's SHA-256 before anything is written: a
  page missing or altered stops the replay (:class:`RawArchiveCorruptError`), nothing
  landed.
- Pages, items and chunks follow the live walk exactly: parent pages are left out,
  records the run skipped as landed before (the manifest's ``skipped`` positions) are
  skipped again, items that cannot land are dead letters, provenance fields come from
  the manifest entries. Replaying twice writes the same lines.
- Chunks the run had beyond the new last one are removed (they held records of the old
  extraction); the dead letters and drift report of the run are rewritten; the manifest
  gains a ``replays`` entry. The endpoint's state (cursor, totals) is not touched.
- Only a run whose manifest says ``complete`` is replayed, under the endpoint's lease.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from data_pipeline.errors import (
    ApiResponseError,
    NestedTooDeepError,
    RawArchiveCorruptError,
    ReplayRefusedError,
)
from data_pipeline.ingest.chunks import TOO_DEEP_TO_WRITE, compress_lines, encode_lines
from data_pipeline.ingest.deadletters import DeadLetters
from data_pipeline.ingest.documents import extract_records, parse_body
from data_pipeline.ingest.drift import drift_report, drift_summary, write_drift
from data_pipeline.ingest.profile import FieldProfile
from data_pipeline.ingest.records import Provenance, refusal
from etl_core.contracts import PROVENANCE_FIELDS, Contract, Endpoint, Source
from etl_core.errors import ObjectNotFoundError
from etl_core.layout import (
    MANIFEST_NAME,
    landing_api_chunk_key,
    raw_api_endpoint_prefix,
    raw_api_manifest_key,
    raw_api_run_of,
)
from etl_core.storage import ObjectStore

__all__ = ["ReplayOutcome", "archived_pages", "find_run", "replay_run"]

logger = logging.getLogger(__name__)

MAX_REPLAYS_LISTED = 100
"""Replays remembered in a manifest."""


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay landed."""

    source: str
    endpoint: str
    run: str
    dt: str
    pages: int
    records: int
    chunks: int
    removed: int
    dead_letters: int
    drift: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready data."""
        return dict(self.__dict__)


def find_run(store: ObjectStore, source: str, endpoint: str, run: str) -> date:
    """The partition date of ``run``'s folder (the endpoint's archive is listed).

    Raises:
        ReplayRefusedError: the endpoint has no archived run ``run``.
    """
    prefix = raw_api_endpoint_prefix(source, endpoint)
    seen: list[str] = []
    for info in store.list(prefix):
        if not info.key.endswith("/" + MANIFEST_NAME):
            continue
        found = raw_api_run_of(info.key)
        if found is None:
            continue
        if found[1] == run:
            return found[0]
        seen.append(found[1])
    known = ", ".join(seen[-5:]) or "none"
    raise ReplayRefusedError(
        f"no archived run {run!r} of {source}/{endpoint} under {prefix} (latest runs: {known})"
    )


def replay_run(
    store: ObjectStore,
    source: Source,
    endpoint: Endpoint,
    run: str,
    dt: date,
    contract: Contract | None,
) -> ReplayOutcome:
    """Land ``run``'s records again from its archive (hold the endpoint's lease meanwhile).

    Raises:
        ReplayRefusedError: no manifest, or the run is not complete.
        RawArchiveCorruptError: a page is missing or does not match its SHA-256.
    """
    manifest_key = raw_api_manifest_key(source.source, endpoint.name, dt, run)
    manifest = _manifest(manifest_key, store)
    pages = _record_pages(manifest)
    for entry in pages:  # every page checked before anything is written
        _page_body(store, entry)
    walk = _Replay(store, source, endpoint, run, dt)
    for entry in pages:
        walk.page(entry, _page_body(store, entry))
    walk.land()
    previous = [manifest.get("chunks", 0), *(r["chunks"] for r in manifest.get("replays", []))]
    removed = _remove_chunks(store, source, endpoint, dt, run, walk.chunk, max(previous))
    walk.dead.write()
    report = drift_report(walk.profile, contract)
    write_drift(store, source.source, endpoint.name, dt, run, report)
    replays = [*manifest.get("replays", []), _replay_entry(walk)][-MAX_REPLAYS_LISTED:]
    store.write_bytes(manifest_key, json.dumps({**manifest, "replays": replays}, indent=1).encode())
    outcome = ReplayOutcome(
        source=source.source,
        endpoint=endpoint.name,
        run=run,
        dt=dt.isoformat(),
        pages=len(pages),
        records=walk.records,
        chunks=walk.chunk,
        removed=removed,
        dead_letters=walk.dead.count,
        drift=drift_summary(report),
    )
    logger.info(
        "replayed %s/%s run %s: %d pages, %d records in %d chunks (%d removed), %d dead letters",
        source.source,
        endpoint.name,
        run,
        outcome.pages,
        outcome.records,
        outcome.chunks,
        removed,
        outcome.dead_letters,
        extra={"source": source.source, "endpoint": endpoint.name},
    )
    return outcome


def archived_pages(
    store: ObjectStore, source: Source, endpoint: Endpoint, run: str, dt: date
) -> Iterator[tuple[dict[str, Any], bytes]]:
    """The record pages of a finished run: each manifest entry with its body (checked).

    Raises:
        ReplayRefusedError: no manifest, or the run is not complete.
        RawArchiveCorruptError: a page is missing or does not match its SHA-256.
    """
    manifest = _manifest(raw_api_manifest_key(source.source, endpoint.name, dt, run), store)
    for entry in _record_pages(manifest):
        yield entry, _page_body(store, entry)


def _record_pages(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's record pages in page order (a child endpoint's parent pages left out)."""
    pages = [p for p in manifest.get("pages", []) if p.get("role", "records") == "records"]
    return sorted(pages, key=lambda p: int(p["page"]))


def _manifest(key: str, store: ObjectStore) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(store.read_bytes(key))
    except ObjectNotFoundError:
        raise ReplayRefusedError(f"no run manifest {key}") from None
    except ValueError as exc:
        raise ReplayRefusedError(f"the run manifest {key} is not JSON: {exc}") from None
    if manifest.get("status") != "complete":
        raise ReplayRefusedError(
            f"the run of {key} is not complete (status {manifest.get('status')!r}): finish it "
            "with `ingest` first (it resumes there), then replay it"
        )
    return manifest


def _page_body(store: ObjectStore, entry: dict[str, Any]) -> bytes:
    """The body of an archived page, checked against the manifest's SHA-256."""
    key = str(entry["key"])
    try:
        body = gzip.decompress(store.read_bytes(key))
    except ObjectNotFoundError:
        raise RawArchiveCorruptError(
            f"page {entry['page']} of the run is missing: {key}", key=key
        ) from None
    except (OSError, EOFError) as exc:
        raise RawArchiveCorruptError(f"{key} is not a whole gzip file: {exc}", key=key) from None
    found = hashlib.sha256(body).hexdigest()
    if found != entry.get("sha256"):
        raise RawArchiveCorruptError(
            f"{key} does not match the run manifest: SHA-256 {found}, manifest says "
            f"{entry.get('sha256')}; nothing replayed",
            key=key,
            expected=str(entry.get("sha256")),
            found=found,
        )
    return body


class _Replay:
    """The live walk's landing, page by page from the archive."""

    def __init__(
        self, store: ObjectStore, source: Source, endpoint: Endpoint, run: str, dt: date
    ) -> None:
        self.store = store
        self.source = source
        self.endpoint = endpoint
        self.run = run
        self.dt = dt
        self.dead = DeadLetters(store, source.source, endpoint.name, dt, run)
        self.profile = FieldProfile()
        self.buffer: list[dict[str, Any]] = []
        self.lines = bytearray()
        """The landing lines of :attr:`buffer` (encoded as taken: one too deep to write is
        set aside, as the walk does)."""
        self.chunk = 0
        self.records = 0

    def page(self, entry: dict[str, Any], body: bytes) -> None:
        number, url = int(entry["page"]), str(entry["url"])
        skipped = set(entry.get("skipped", ()))
        stamp = None
        if self.endpoint.provenance:
            stamp = Provenance(url=url, fetched_at=entry["fetched_at"], page=number, run=self.run)
        for position, item in self._items(number, url, body):
            if position in skipped:
                continue
            refused = refusal(item, self.endpoint)
            if refused is None:
                record = stamp.stamp(item) if stamp is not None else item
                try:
                    self.lines += encode_lines([record])
                except RecursionError:
                    refused = ("too_deep", TOO_DEEP_TO_WRITE)
                else:
                    self.buffer.append(record)
            if refused is not None:
                reason, error = refused
                self.dead.add(
                    reason=reason, error=error, page=number, position=position, url=url, raw=item
                )
                continue
            if len(self.buffer) >= self.endpoint.chunk_records:
                self.land()

    def _items(self, number: int, url: str, body: bytes) -> Iterator[tuple[int, Any]]:
        where = {"source": self.source.source, "endpoint": self.endpoint.name, "url": url}
        reason = "not_json"
        try:
            document = parse_body(body, **where)
            reason = "not_an_array"
            items = extract_records(document, self.endpoint.records_path, **where)
        except ApiResponseError as exc:
            if isinstance(exc, NestedTooDeepError):
                reason = "too_deep"
            self.dead.add(
                reason=reason, error=str(exc), page=number, position=None, url=url, raw=body
            )
            return
        yield from enumerate(items)

    def land(self) -> None:
        if not self.buffer:
            return
        records, self.buffer = self.buffer, []
        lines, self.lines = bytes(self.lines), bytearray()
        added = PROVENANCE_FIELDS if self.endpoint.provenance else ()
        self.profile.add_many(records, skip=added)
        key = landing_api_chunk_key(
            self.source.source, self.endpoint.name, self.dt, self.run, self.chunk
        )
        self.store.write_bytes(key, compress_lines(lines))
        self.chunk += 1
        self.records += len(records)


def _remove_chunks(
    store: ObjectStore,
    source: Source,
    endpoint: Endpoint,
    dt: date,
    run: str,
    start: int,
    end: int,
) -> int:
    """Remove the run's chunks numbered ``start`` to ``end - 1`` that exist; how many."""
    removed = 0
    for number in range(start, end):
        key = landing_api_chunk_key(source.source, endpoint.name, dt, run, number)
        if store.exists(key):
            store.delete(key)
            removed += 1
    return removed


def _replay_entry(walk: _Replay) -> dict[str, Any]:
    return {
        "at": datetime.now(UTC).isoformat(),
        "records_path": walk.endpoint.records_path,
        "records": walk.records,
        "chunks": walk.chunk,
        "dead_letters": walk.dead.count,
    }
