"""Ingesting one endpoint window: fetch, archive, land, checkpoint — resumable at every chunk.

For each page: the body goes to the raw archive, its records fill the current chunk;
a full chunk is landed, then the run manifest is rewritten, then the state (position
after the chunk's last record, next chunk and page numbers, high-water mark) is
committed under the endpoint's lease. A crash between any two steps resumes at the
last committed chunk: the chunk and pages after it are fetched again and written
under the same keys, so nothing is lost and nothing lands twice.

The writes run in a background thread (:mod:`.writer`), a checkpoint's files published
together; the state of a checkpoint is committed once they are durable, while the walk
goes on with the next chunks (so the state may stand up to :data:`MAX_SEALED` chunks
behind what is landed; a resume lands those chunks again under their own keys).

Pages are parsed, checked, profiled and encoded in a second process (:mod:`.reader`) as
they arrive; the walk takes a page whole from that reading, or reads it itself (a page
the reader leaves to it, a chunk boundary inside it, an endpoint whose records need their
values here: an incremental cursor). Provenance fields are appended to a reading's lines.

A window left unfinished by an earlier run is finished first (unless
``--full-refresh``), then the window the unit asks for.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from data_pipeline.errors import (
    ApiError,
    ApiRequestError,
    ApiResponseError,
    EndpointBusyError,
    IngestStoppedError,
    NestedTooDeepError,
)
from data_pipeline.ingest import metrics
from data_pipeline.ingest.archive import RunArchive
from data_pipeline.ingest.chunks import TOO_DEEP_TO_WRITE, compress_lines, encode_lines
from data_pipeline.ingest.client import ApiClient, Response
from data_pipeline.ingest.deadletters import DeadLetters
from data_pipeline.ingest.documents import MISSING, extract_records, lookup, parse_body
from data_pipeline.ingest.drift import drift_report, drift_summary, write_drift
from data_pipeline.ingest.pagination import (
    Page,
    PageRequest,
    Paginator,
    paginator_for,
    records_digest,
)
from data_pipeline.ingest.prefetch import PageAhead
from data_pipeline.ingest.profile import FieldProfile
from data_pipeline.ingest.reader import PageReader, PageReaderError, Reading
from data_pipeline.ingest.records import Provenance, all_land, refusal
from data_pipeline.ingest.state import EndpointState, StateStore, Window
from data_pipeline.ingest.windows import is_bounded, open_window, unit_names
from data_pipeline.ingest.writer import CheckpointWriter
from data_pipeline.lease import BUSY_POLL_SECONDS, busy_wait_seconds, take_lease
from etl_core.contracts import (
    PROVENANCE_FIELDS,
    Contract,
    ContractSet,
    CursorValueError,
    Endpoint,
    Source,
    SourceSet,
    format_cursor,
    parse_cursor,
)
from etl_core.errors import LeaseBusyError, LeaseWaitStoppedError
from etl_core.layout import landing_api_chunk_key, state_key
from etl_core.storage import Lease, ObjectStore
from etl_core.threads import result_of
from etl_core.work import WorkUnit

__all__ = ["IngestContext", "IngestStoppedError", "WindowOutcome", "ingest_unit", "lease_key"]

logger = logging.getLogger(__name__)

MAX_BOUNDARY = 10_000
"""Records remembered at the high-water mark (to skip when the mark is sent again)."""
MAX_WINDOWS_DONE = 1_000
"""Finished bounded windows remembered (a re-run of the same backfill skips them)."""
MAX_UNREADABLE_IN_A_ROW = 3
"""Pages in a row that cannot be read (dead letters) a walk goes past at most: at the last,
whether pages holding records follow is not known, so the window stays open at the first
of them (:meth:`_Walk._stay_open_at`) instead of completing past pages never read."""
MAX_SAME_PAGES_IN_A_ROW = 2
"""Pages in a row with the same records (every one byte for byte; a page of one record over
and over is not counted, :meth:`_Walk._refuse_same`) a walk takes at most: the next such
page is refused, as a page loop is (an API handing out a new cursor with the same records
every time would never end). One page repeating the one before is taken (an offset API
whose records moved by a page between two requests)."""
MAX_SEALED = 2
"""Checkpoints sealed but not yet durable the walk runs ahead of before it waits (their
states are committed as they become durable; a resume lands those after the last again)."""


def lease_key(source: str, endpoint: str) -> str:
    """``_state/data_pipeline/api/<source>/<endpoint>.lease.json``: one run per endpoint."""
    return state_key("data_pipeline", "api", source, f"{endpoint}.lease.json")


@dataclass
class _ReaderSlot:
    """The run's page reader, one for a context and every copy of it (``replace``)."""

    reader: PageReader | None = None


@dataclass
class IngestContext:
    """What every unit of a run shares: store, sources, state, one client per source.

    Attributes:
        stop: Set on Ctrl-C / SIGTERM: units stop at the next page boundary.
        transport: An httpx transport for every client (tests); the network when ``None``.
        contracts: The dataset contracts the endpoints feed (for the drift report).
        observe: Told what happens as it happens, as keyword amounts (``pages=1``,
            ``records=…``, ``dead_letters=1``, ``retries=1``, ``wait_seconds=…``): progress.
        read_aside: Pages read in a second process (:mod:`.reader`), shared by the run's
            walks; ``False``: in the walk's.
        reader: That process, when started ahead (its start-up beside the run's); else
            started by the first walk that can use it. Shared with every copy of the
            context (a unit's, with its run id), closed by :meth:`close` of any.
    """

    store: ObjectStore
    sources: SourceSet
    states: StateStore
    run_id: str
    lease_seconds: float = 600.0
    lease_wait_seconds: float = 0.0
    contracts: ContractSet | None = None
    observe: Callable[..., None] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] | None = None
    read_aside: bool = True
    reader: PageReader | None = None
    _clients: dict[str, ApiClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _reader_slot: _ReaderSlot = field(default_factory=_ReaderSlot)

    def __post_init__(self) -> None:
        with self._lock:
            if self._reader_slot.reader is None:
                self._reader_slot.reader = self.reader
            self.reader = None  # the slot holds it: a copy of the context shares it

    def client(self, source: Source) -> ApiClient:
        """The client of ``source`` (one per source: its rate limit and token are shared)."""
        with self._lock:
            if source.source not in self._clients:
                options: dict[str, Any] = {"transport": self.transport}
                if self.sleep is not None:
                    options["sleep"] = self.sleep
                if self.observe is not None:
                    options["observe"] = self.observe
                self._clients[source.source] = ApiClient(source, **options)
            return self._clients[source.source]

    def page_reader(self) -> PageReader:
        """The run's page reader process (started on first use, and again in a process
        forked after it started: a reader serves the process that started it)."""
        with self._lock:
            slot = self._reader_slot
            if slot.reader is None or slot.reader.owner != os.getpid():
                slot.reader = PageReader()
            return slot.reader

    def contract(self, endpoint: Endpoint) -> Contract | None:
        """The dataset contract ``endpoint`` feeds, when the contracts are known."""
        if self.contracts is None or endpoint.dataset not in self.contracts.datasets:
            return None
        return self.contracts.get(endpoint.dataset)

    def close(self) -> None:
        """Close every client and the page reader."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            reader, self._reader_slot.reader = self._reader_slot.reader, None
        if reader is not None:
            reader.close()


@dataclass(frozen=True)
class WindowOutcome:
    """What one window did."""

    source: str
    endpoint: str
    unit: str
    run: str
    pages: int
    records: int
    chunks: int
    cursor: str | None
    resumed: bool
    skipped: str = ""
    """Why nothing was fetched (a bounded window ingested before), else empty."""
    dead_letters: int = 0
    """Items and pages of the window set aside (listed in its ``_dead_letters.jsonl``)."""
    pages_unread: int = 0
    """Of those, whole pages that could not be read: the window completed past them, their
    records never landed (an incremental endpoint's next run starts after them)."""
    drift: dict[str, Any] | None = None
    """The window's drift from the dataset contract (:func:`.drift.drift_summary`)."""

    def to_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready data."""
        return dict(self.__dict__)


def ingest_unit(context: IngestContext, unit: WorkUnit) -> list[WindowOutcome]:
    """Run one endpoint window (after finishing a window an earlier run left open).

    Raises:
        EndpointBusyError: another run holds the endpoint (a bounded window: still, after
            waiting for it while it is alive, :func:`_lease`).
        IngestStoppedError: the run was interrupted (also while waiting for the endpoint).
        ApiError: the API failed the window; the state stays at the last landed chunk
            and the failure is recorded.
    """
    source_name, endpoint_name = unit_names(unit)
    source = context.sources.get(source_name)
    endpoint = source.endpoint(endpoint_name)
    lease = _lease(context, source, endpoint, unit)
    with lease:
        try:
            return _run(context, source, endpoint, unit, lease)
        except ApiError as exc:
            context.states.fail(source.source, endpoint.name, str(exc))
            raise


def _lease(context: IngestContext, source: Source, endpoint: Endpoint, unit: WorkUnit) -> Lease:
    """The endpoint's lease. A bounded window (``since``/``until``: a backfill's range,
    nobody else fetches it) waits while another live run holds the endpoint, as a
    backfill's partition does (:func:`~data_pipeline.lease.take_lease`); an incremental or
    full window is skipped at once, like a ``run`` partition: the holder is ingesting the
    endpoint forward now, and the next run goes on from the cursor it leaves."""
    bounded = is_bounded(unit)
    wait = busy_wait_seconds(context.lease_seconds, context.lease_wait_seconds)

    def busy(error: LeaseBusyError, why: str) -> LeaseBusyError:
        return error.restated(
            EndpointBusyError,
            f"endpoint {source.source}/{endpoint.name} is being ingested by {error.holder}; "
            f"window {unit.key} {why} (two runs of one endpoint never overlap)",
        )

    try:
        return take_lease(
            context.store,
            lease_key(source.source, endpoint.name),
            ttl=context.lease_seconds,
            purpose=f"ingest {source.source}/{endpoint.name}",
            wait=wait if bounded else 0.0,
            poll=BUSY_POLL_SECONDS,
            heartbeat_every=context.lease_seconds / 3,
            busy=busy,
        )
    except LeaseWaitStoppedError as stopped:
        raise IngestStoppedError(
            f"window {unit.key}: stopped waiting for endpoint {source.source}/{endpoint.name} "
            f"(held by {stopped.holder}): the run was interrupted"
        ) from stopped


def _run(
    context: IngestContext, source: Source, endpoint: Endpoint, unit: WorkUnit, lease: Lease
) -> list[WindowOutcome]:
    outcomes: list[WindowOutcome] = []
    state = context.states.load(source.source, endpoint.name)
    pending = state.window
    if pending is not None and unit.params.get("full_refresh"):
        logger.warning(
            "full refresh of %s/%s drops the unfinished window %s (its landed chunks stay)",
            source.source,
            endpoint.name,
            pending.unit,
        )
        pending = None
    if pending is not None:
        logger.info(
            "resuming %s/%s window %s at chunk %d",
            source.source,
            endpoint.name,
            pending.unit,
            pending.chunk,
            extra={"source": source.source, "endpoint": endpoint.name},
        )
        walk = _Walk(context, source, endpoint, state, pending, lease, resumed=True)
        outcome, state = walk.run()
        outcomes.append(outcome)
        if pending.unit == unit.key:
            return outcomes
    if unit.key in state.windows_done and not unit.params.get("full_refresh"):
        # a re-run of a backfill that crashed part-way: its finished windows are not fetched
        # (and landed) again; --full-refresh fetches them anyway
        outcomes.append(_done_before(source, endpoint, unit, state))
        return outcomes
    window = open_window(unit, endpoint, state, context.run_id)
    walk = _Walk(context, source, endpoint, state.with_window(window), window, lease)
    walk.open()
    outcomes.append(walk.run()[0])
    return outcomes


def _done_before(
    source: Source, endpoint: Endpoint, unit: WorkUnit, state: EndpointState
) -> WindowOutcome:
    logger.info(
        "%s/%s window %s was ingested before; skipped (--full-refresh fetches it again)",
        source.source,
        endpoint.name,
        unit.key,
    )
    return WindowOutcome(
        source=source.source,
        endpoint=endpoint.name,
        unit=unit.key,
        run="",
        pages=0,
        records=0,
        chunks=0,
        cursor=state.cursor,
        resumed=False,
        skipped="ingested before",
    )


class _Walk:
    """One window walked page by page, checkpointed chunk by chunk."""

    def __init__(
        self,
        context: IngestContext,
        source: Source,
        endpoint: Endpoint,
        state: EndpointState,
        window: Window,
        lease: Lease,
        *,
        resumed: bool = False,
    ) -> None:
        self.context = context
        self.source = source
        self.endpoint = endpoint
        self.state = state
        self.window = window
        self.lease = lease
        self.resumed = resumed
        self.client = context.client(source)
        self.writer = CheckpointWriter(context.store)
        try:  # the writer's threads are stopped if the window cannot be set up
            self.archive = RunArchive(
                context.store,
                source.source,
                endpoint.name,
                window.dt,
                window.run,
                window.raw_page,
                self.writer,
            )
            self.dead = DeadLetters(
                context.store,
                source.source,
                endpoint.name,
                window.dt,
                window.run,
                resume_at=(window.raw_page, window.skip),
                count=window.dead_letters,
            )
            self.profile = FieldProfile.from_dict(window.profile)
            self.contract = context.contract(endpoint)
            self.unread_row: list[tuple[int, PageRequest, str]] = []
            """The pages in a row the walk of this sequence could not read so far: each one's
            number in the archive, request and URL."""
            self.unreadable_end = False
            """Whether the walk ends at an unreadable page for want of none after it: one the
            style knows is the last without its body (``type = "none"``, a ``Link`` with no
            next)."""
            self.lines = bytearray()
            """The landing lines of the chunk being filled (encoded as records are taken)."""
            self.count = 0
            """The records in :attr:`lines`."""
            self.marking: list[dict[str, Any]] = []
            """The chunk's records, kept for the high-water mark (incremental endpoints)."""
            self.sealed: list[tuple[Future[None], Callable[[], None] | None]] = []
            """Checkpoints written, their state not known committed yet: (done once durable and,
            when the writer commits it, committed; the commit left to the walk, else ``None``)."""
            self.pages = 0
            self.same_pages = 0
            """Pages in a row with the records of the page before them (:meth:`_refuse_same`)."""
            self.last_records: tuple[str, Page | None, Reading | None, str | None] | None
            self.last_records = None
            """The last records page: the digest of its count, first and last landing line,
            the page and its reading (compared whole when the next page has the same count,
            first and last; ``None`` when resumed) and the digest of all its records (once
            computed). Kept in the next request (:attr:`PageRequest.same`) for a resume."""
            self.records_path_seen = False
            """Whether a records page of this walk had its ``records_path``."""
            self.keys_without_path: list[str] | None = None
            """The keys of the first records page without its ``records_path`` (a typo)."""
            self.labels = {"source": source.source, "endpoint": endpoint.name}
            self.seen_at_start = self._boundary_at_start()
            self.depth = source.concurrency
            self.reader = context.page_reader() if self._reads_aside() else None
            self.reader_settings = (endpoint.records_path, endpoint.primary_key)
            self.fetching_parents = False
            """Parent pages are read here (their key values), never sent to the reader."""
            self.ahead = PageAhead(self._get, self.depth)
        except BaseException:
            self.writer.close()
            raise

    # ------------------------------------------------------------------ walk

    def _reads_aside(self) -> bool:
        """Whether pages go to the page reader: its readings are only of use when records
        land as received or stamped (no high-water mark to follow) and the paginator
        reads nothing of the body inside the records array, nor a value holding it."""
        endpoint = self.endpoint
        if not self.context.read_aside or endpoint.incremental:
            return False
        if not endpoint.records_path:
            return False
        config = paginator_for(self.source, endpoint).config
        paths = (config.total_path, config.has_more_path, config.cursor_path, config.next_url_path)
        records = endpoint.records_path + "."
        return not any(
            path and ((path + ".").startswith(records) or records.startswith(path + "."))
            for path in paths
        )

    def _get(self, url: str, params: Mapping[str, str]) -> _Fetched:
        """One page (in a page-ahead thread, or the walk's), its body sent to the reader."""
        response = self.client.get(self.endpoint.name, url, params, stopped=self._stopped)
        if self.reader is None or self.reader.failed or self.fetching_parents:
            return _Fetched(response, None)  # the walk reads it
        return _Fetched(response, self.reader.submit(response.body, *self.reader_settings))

    def _stopped(self) -> bool:
        """Whether a request of the walk is no longer wanted: the run was interrupted (the
        context's stop: Ctrl-C/SIGTERM), or it was made ahead and the walk has closed. Its
        retry back-off then ends at once (a request ahead no longer sleeps its back-off out
        before the process can exit). A worker's warm shutdown is not a stop here: the
        units in hand finish, their requests' retries included."""
        return self.context.stop.is_set() or self.ahead.closed.is_set()

    def open(self) -> None:
        """Commit the new window before its first request: a crash before its first chunk
        is committed then resumes this window, whose chunk keys are the ones it wrote.
        A save that fails stops the walk's threads (it never runs)."""
        try:
            self.context.states.save(self.lease, self.state, landed=0, finished=False)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the pages fetched ahead and the writer's threads (what was sealed is finished)."""
        self.ahead.close()
        self.writer.close()

    def run(self) -> tuple[WindowOutcome, EndpointState]:
        try:
            return self._walk()
        except Exception:  # what was landed before the failure or stop is committed
            self._settle_after_failure()
            raise
        finally:
            self.close()

    def _walk(self) -> tuple[WindowOutcome, EndpointState]:
        if self.endpoint.parent is not None and self.window.parents is None:
            self.fetching_parents = True  # no page is fetched ahead of the one asked for
            try:
                self._fetch_parents()
            finally:
                self.fetching_parents = False
        window = self.window
        sequences = len(window.parents) if window.parents is not None else 1
        sequence, skip, number = window.sequence, window.skip, window.raw_page
        request = PageRequest.from_dict(window.page) if window.page else None
        paginator = paginator_for(self.source, self.endpoint)
        while sequence < sequences:
            path = self._path(sequence)
            self.unread_row = []  # in a row within this parent's walk, not across two
            self._resume_same(request)
            current: PageRequest | None = request or paginator.first()
            while current is not None:
                upcoming = [self._request(path, r) for r in paginator.predict(current, self.depth)]
                url, params = self._request(path, current)
                try:
                    page, reading = self._fetch(
                        number, url, params, role="records", upcoming=upcoming, skip=skip
                    )
                except ApiRequestError as exc:
                    if not paginator.past_the_end(current, exc):
                        raise
                    skip = 0
                    break  # a page made up past the API's end, refused: nothing was missed
                if current.prior is not None and paginator.repeats(
                    current, self._lines(page, reading)
                ):  # the API's last page again: not landed twice (a replay skips it too)
                    for index in range(len(page.records)):
                        self.archive.skip(number, index)
                    page, reading = replace(page, records=[]), None
                self._refuse_same(number, page, reading)
                following = self._following(paginator, current, page, number)
                if following is not None:  # the walk's same pages so far, for a resume
                    following = replace(following, same=self._same_so_far())
                if following is None and not page.readable:
                    self._stay_open_at(sequence, page)
                if following is not None and paginator.probes(following):
                    following = paginator.with_prior(following, self._lines(page, reading))
                records = page.records
                stamp = self._provenance(page, number)
                after = self._after(sequence, sequences, following, number)
                items = records[skip:] if skip else records
                if reading is not None:  # read aside, taken whole
                    self._take_reading(reading, after, stamp)
                    skip = len(records)
                elif not self.seen_at_start and all_land(items, self.endpoint):
                    self._take_page(page, skip, stamp, (sequence, current, number), after)
                    skip = len(records)
                for index in range(skip, len(records)):
                    item = records[index]
                    refused = refusal(item, self.endpoint)
                    if refused is not None:
                        self._set_aside(refused, number, index, page.url, item)
                        continue
                    if self.seen_at_start and self._landed_before(item):
                        self.archive.skip(number, index)
                        continue
                    taken = stamp.stamp(item) if stamp is not None else item
                    if not self._take_one(taken, number, index, page):
                        continue
                    if self.count >= self.endpoint.chunk_records:
                        at: tuple[int, PageRequest | None, int, int]
                        if index + 1 < len(records):
                            at = (sequence, current, index + 1, number)
                        else:
                            at = after
                        self._land(*at)
                skip = 0
                number += 1
                current = following
                if self.context.observe is not None:
                    self.context.observe(pages=1)
            sequence += 1
            request = None
        if self.count:
            self._land(sequences, None, 0, number)
        return self._finish()

    def _take_page(
        self,
        page: Page,
        skip: int,
        stamp: Provenance | None,
        here: tuple[int, PageRequest, int],
        after: tuple[int, PageRequest | None, int, int],
    ) -> None:
        """Take a page whose records all land (from ``skip``) a slice at a time, landing a
        chunk whenever one fills (``here``: the page's sequence, request and number;
        ``after``: the position past its last record)."""
        sequence, current, number = here
        records = page.records
        start = skip
        while start < len(records):
            end = min(len(records), start + self.endpoint.chunk_records - self.count)
            part = records[start:end]
            if stamp is not None:
                part = list(map(stamp.stamp, part))
            try:
                self._take(part)
            except RecursionError:  # a record nested too deep to write: each in turn
                for index, record in enumerate(part, start):
                    self._take_one(record, number, index, page)
            start = end
            if self.count >= self.endpoint.chunk_records:
                self._land(*((sequence, current, end, number) if end < len(records) else after))

    def _take(self, records: list[dict[str, Any]]) -> None:
        """Add records to the chunk being filled (profiled and encoded now, while their
        memory is warm); none when one is nested too deep to write (``RecursionError``)."""
        lines = encode_lines(records)
        self.profile.add_many(records, skip=PROVENANCE_FIELDS if self.endpoint.provenance else ())
        self.lines += lines
        self.count += len(records)
        if self.endpoint.incremental is not None:
            self.marking.extend(records)

    def _take_one(self, record: dict[str, Any], number: int, index: int, page: Page) -> bool:
        """Take item ``index`` of page ``number``, or set it aside when it is nested too deep
        to write; whether it was taken."""
        try:
            self._take([record])
        except RecursionError:
            self._set_aside(("too_deep", TOO_DEEP_TO_WRITE), number, index, page.url, record)
            return False
        return True

    def _takes_whole(self, reading: Reading, skip: int) -> bool:
        """Whether a page read aside is taken as read: from its start, into the chunk being
        filled (else the walk reads it: a chunk boundary inside it, a resume inside it),
        profiled as :meth:`_take` would."""
        if skip or self.seen_at_start:
            return False
        if self.count + reading.count > self.endpoint.chunk_records:
            return False
        if self.endpoint.provenance and not reading.profile["fields"].keys().isdisjoint(
            PROVENANCE_FIELDS
        ):  # a record's own field of such a name is replaced in place: stamped here
            return False
        return self.profile.can_merge(reading.profile)

    def _take_reading(
        self,
        reading: Reading,
        after: tuple[int, PageRequest | None, int, int],
        stamp: Provenance | None,
    ) -> None:
        """Add a page read aside (its profile and lines, stamped with ``stamp``) to the chunk;
        land a full one."""
        self.profile.merge(reading.profile)
        self.lines += reading.lines if stamp is None else stamp.stamp_lines(reading.lines)
        self.count += reading.count
        if self.count >= self.endpoint.chunk_records:
            self._land(*after)

    def _following(
        self, paginator: Paginator, current: PageRequest, page: Page, number: int
    ) -> PageRequest | None:
        """The next request (``page``, number ``number`` in the archive, answered ``current``);
        past a page that could not be read, while the style can tell it without the body and
        fewer than :data:`MAX_UNREADABLE_IN_A_ROW` came in a row."""
        if page.readable:
            self.unread_row = []
            return paginator.next(current, page)
        self.unread_row.append((number, current, page.url))
        following = None
        if len(self.unread_row) < MAX_UNREADABLE_IN_A_ROW:
            following = paginator.past_unreadable(current, page)
        if following is None and paginator.last_without_body(current, page):
            self.unreadable_end = True  # no page after it is missed: the window completes
        return following

    def _stay_open_at(self, sequence: int, page: Page) -> None:
        """End the walk at pages it could not read and cannot go past: one whose body held the
        next request (a ``cursor`` or ``next_url`` walk, a ``link_header`` answer without its
        link), or the last of :data:`MAX_UNREADABLE_IN_A_ROW` in a row (a ``page_number`` or
        ``offset`` walk: whether pages with records follow them is not known). The window
        stays open at the first unreadable page of the row, as after a failed request, so
        the next run asks for it again. Completing the window would move the high-water mark
        past the pages after it, never fetched (an API not sorted by the cursor field would
        lose them, and an incremental run would never ask for them again).

        What was taken before the row lands; the pages' dead letters are written, and dropped
        by the resumed run, which reads the pages again (and sets aside again those it still
        cannot read). A page the style knows is the last without its body
        (:meth:`Paginator.last_without_body`) ends the walk instead, the window completing
        with its dead letter: none is missed after it.

        Raises:
            ApiResponseError: naming the pages, always.
        """
        if self.unreadable_end:  # the walk of this sequence ends, as it did
            self.unreadable_end = False
            return
        row = self.unread_row
        number, current, first_url = row[0]
        found_again = self.dead.count - len(row)  # the row's own, listed again when resumed
        if self.count:
            self._land(sequence, current, 0, number, dead_letters=found_again)
        else:
            self.window = replace(
                self.window,
                sequence=sequence,
                page=current.to_dict(),
                skip=0,
                raw_page=number,
                dead_letters=found_again,
                profile=self.profile.to_dict(),
            )
            self._commit(landed=0)
        if len(row) == 1:
            what = f"page {number} of {page.url} could not be read (set aside as a dead letter)"
        else:
            numbers = ", ".join(str(n) for n, _, _ in row)
            what = (
                f"pages {numbers} ({first_url} to {page.url}) could not be read (set aside as "
                "dead letters)"
            )
        if len(row) >= MAX_UNREADABLE_IN_A_ROW:
            why = (
                f"{len(row)} in a row, the most a walk goes past (MAX_UNREADABLE_IN_A_ROW): "
                "pages after them may hold records, never fetched"
            )
        else:
            why = "the next request is in " + ("its body" if len(row) == 1 else "the last one's")
        raise ApiResponseError(
            f"{what} and {why}: the window stays open at page {number}, and the next run asks "
            "for it again (an API answering it so for good needs fixing there); "
            f"{self._way_past_a_stuck_window()}",
            source=self.source.source,
            endpoint=self.endpoint.name,
            url=first_url,
        )

    def _resume_same(self, request: PageRequest | None) -> None:
        """Start the same-records count of a sequence's walk: from the checkpointed request a
        resumed walk starts at (:attr:`PageRequest.same`), else anew."""
        same = request.same if request is not None else None
        if same is None:
            self.same_pages, self.last_records = 0, None
            return
        key, whole, count = same
        self.same_pages, self.last_records = count, (key, None, None, whole)

    def _same_so_far(self) -> tuple[str, str | None, int] | None:
        """The walk's same-records count and last records page, kept in the next request."""
        if self.last_records is None:
            return None
        key, _, _, whole = self.last_records
        return key, whole, self.same_pages

    def _refuse_same(self, number: int, page: Page, reading: Reading | None) -> None:
        """Refuse page ``number`` when it holds the records of the page before it and
        :data:`MAX_SAME_PAGES_IN_A_ROW` pages in a row held them already: an API handing out a
        new cursor (or link) with the same records each time, which the loop check
        (:meth:`Paginator.step`) cannot see, would be walked for ever, landing them again and
        again. The records are compared as landed (unstamped), every one byte for byte (as
        many, the same first and last record first: only such a page is compared whole). A
        page whose records are all one and the same (every page of one record) is not
        counted: a run of the same record is data an endpoint without a primary key may
        hold. A page without records ends the walk anyway.

        Raises:
            ApiResponseError: naming the page, its URL and the limit; its records are not
                taken (the state stays at the last landed chunk).
        """
        if not page.records:
            self.same_pages, self.last_records = 0, None
            return
        if reading is not None:
            lines = reading.lines
            first = lines[: lines.find(b"\n") + 1]
            last = lines[lines.rfind(b"\n", 0, len(lines) - 1) + 1 :]
        else:
            try:
                first, last = encode_lines(page.records[:1]), encode_lines(page.records[-1:])
            except RecursionError:  # nested too deep to write: not compared
                self.same_pages, self.last_records = 0, None
                return
        seen = records_digest(b"%d\n" % len(page.records) + first + last)
        before, self.last_records = self.last_records, (seen, page, reading, None)
        if before is None or before[0] != seen:
            self.same_pages = 1
            return
        whole = self._lines(page, reading)
        if whole is None or whole == first * len(page.records):  # one record over and over
            self.same_pages = 1
            return
        digest = records_digest(whole)
        self.last_records = (seen, page, reading, digest)
        if before[3] is None and before[1] is not None:
            earlier = self._lines(before[1], before[2])
            before = (*before[:3], records_digest(earlier) if earlier is not None else None)
        if before[3] != digest:
            self.same_pages = 1
            return
        self.same_pages += 1
        if self.same_pages <= MAX_SAME_PAGES_IN_A_ROW:
            return
        raise ApiResponseError(
            f"page {number} of {page.url} holds the same {len(page.records)} records as the "
            f"{MAX_SAME_PAGES_IN_A_ROW} pages before it (byte for byte), "
            f"more pages in a row than a walk takes with the same records "
            f"(MAX_SAME_PAGES_IN_A_ROW = {MAX_SAME_PAGES_IN_A_ROW}): the API hands out a new "
            "cursor or link with the same records, and a walk following it would never end "
            "and land them again and again: refused (check the pagination keys of the "
            f"endpoint, or the API); {self._way_past_a_stuck_window()}",
            source=self.source.source,
            endpoint=self.endpoint.name,
            url=page.url,
        )

    def _way_past_a_stuck_window(self) -> str:
        """The command dropping a window that stays open at a page no run can read (its
        landed chunks stay; the pages after it are then never fetched by this window)."""
        command = f"ingest --source {self.source.source} --endpoint {self.endpoint.name}"
        since = " (with --since to start it at a cursor value)" if self.endpoint.incremental else ""
        return f"to drop the window and start anew instead: {command} --full-refresh{since}"

    def _lines(self, page: Page, reading: Reading | None) -> bytes | None:
        """The landing lines of the records of ``page`` (as read aside, else encoded here, not
        stamped), to tell a page the API repeats; ``None`` when one is too deep to write."""
        if reading is not None:
            return reading.lines
        try:
            return encode_lines(page.records)
        except RecursionError:
            return None

    def _provenance(self, page: Page, number: int) -> Provenance | None:
        if not self.endpoint.provenance:
            return None
        return Provenance(
            url=page.url, fetched_at=page.fetched_at, page=number, run=self.window.run
        )

    def _set_aside(
        self, refused: tuple[str, str], number: int, position: int | None, url: str, raw: Any
    ) -> None:
        reason, error = refused
        self.dead.add(reason=reason, error=error, page=number, position=position, url=url, raw=raw)
        metrics.dead_letters.labels(**self.labels, reason=reason).inc()
        if self.context.observe is not None:
            self.context.observe(dead_letters=1)
        if self.dead.count <= 10 or self.dead.count % 1000 == 0:
            logger.warning(
                "%s/%s: page %d%s of %s set aside (%s): %s",
                self.source.source,
                self.endpoint.name,
                number,
                "" if position is None else f" item {position}",
                url,
                reason,
                error,
                extra={"source": self.source.source, "endpoint": self.endpoint.name},
            )

    def _after(
        self, sequence: int, sequences: int, following: PageRequest | None, number: int
    ) -> tuple[int, PageRequest | None, int, int]:
        """The position after a page's last record."""
        if following is not None:
            return sequence, following, 0, number + 1
        return sequence + 1, None, 0, number + 1

    def _request(self, path: str, request: PageRequest) -> tuple[str, dict[str, str]]:
        """The URL and query of ``request``: a next link as given, else path and parameters."""
        if request.url:
            return request.url, {}
        return path, {**self._params(), **request.params}

    def _fetch(
        self,
        number: int,
        url: str,
        params: dict[str, str],
        *,
        role: str,
        upcoming: list[tuple[str, dict[str, str]]] | None = None,
        skip: int = 0,
    ) -> tuple[Page, Reading | None]:
        """The page of ``number``, archived; with its reading when the page reader's is
        taken whole (``skip``: records of it landed before)."""
        if self.context.stop.is_set():
            raise IngestStoppedError(
                f"{self.source.source}/{self.endpoint.name}: stopped at page {number}; "
                "the next run resumes after the last landed chunk"
            )
        fetched = self.ahead.get(url, params, upcoming or ())
        response = fetched.response
        self.archive.add(number, response, role=role)
        self.pages += 1
        metrics.pages.labels(**self.labels).inc()
        where = {"source": self.source.source, "endpoint": self.endpoint.name, "url": response.url}
        endpoint = self._parent() if role == "parent" else self.endpoint
        fetched_at = response.fetched_at.isoformat()
        if role == "records" and fetched.reading is not None:
            try:
                reading = result_of(fetched.reading)
            except PageReaderError:  # logged once by the reader: this page read here
                reading = None
            if reading is not None and self._takes_whole(reading, skip):
                # the paginator counts the items; their values are in the reading's lines
                placeholders: list[Any] = [None] * reading.count
                self._note_records_path(reading.document)
                page = Page(response.url, response.headers, reading.document, placeholders)
                return replace(page, fetched_at=fetched_at), reading
        reason = "not_json"
        try:
            document = parse_body(response.body, **where)
            reason = "not_an_array"
            records = extract_records(document, endpoint.records_path, **where)
        except ApiResponseError as exc:
            if role == "parent":  # the children's paths come from it: it must be read
                raise
            if isinstance(exc, NestedTooDeepError):
                reason = "too_deep"
            self._set_aside((reason, str(exc)), number, None, response.url, response.body)
            unread = Page(response.url, response.headers, None, [], fetched_at, readable=False)
            return unread, None
        if role == "records":
            self._note_records_path(document)
        return Page(response.url, response.headers, document, records, fetched_at), None

    def _note_records_path(self, document: object) -> None:
        """Whether the records page ``document`` has the endpoint's ``records_path`` (an
        absent one is an empty page, and a window of none a warning at its end)."""
        path = self.endpoint.records_path
        if not path or self.records_path_seen:
            return
        if lookup(document, path) is not MISSING:
            self.records_path_seen = True
        elif self.keys_without_path is None and isinstance(document, dict):
            self.keys_without_path = sorted(str(key) for key in document)[:20]

    def _say_pages_unread(self, unread: int, cursor: str | None) -> None:
        """Warn that the window completed past ``unread`` pages it could not read (a walk
        goes past fewer than :data:`MAX_UNREADABLE_IN_A_ROW` in a row, and past a last page
        unread): their records never landed; counted in the metric too."""
        metrics.pages_unread.labels(**self.labels).inc(unread)
        source, endpoint = self.source.source, self.endpoint.name
        pages = [e["page"] for e in self.dead.entries if e.get("position") is None][:20]
        window = self.window
        if window.bounded:
            later = "the window is recorded as done: the same --since/--until with "
            later += "--full-refresh fetches it again (its other records land again)"
        elif self.endpoint.incremental is not None:
            since = f"--since {window.start} " if window.start else ""
            until = f"--until {cursor}" if self.endpoint.incremental.end_param and cursor else ""
            later = f"the endpoint's cursor is now {cursor or '(unset)'}, so the next run does "
            later += "not ask for those before it: to land them, ingest their range again: "
            later += f"{(since + until).strip() or '--full-refresh'} (its other records land again)"
        else:
            later = "the next run fetches every page again, and lands them if it can read them"
        logger.warning(
            "%s/%s window %s completed past %d page(s) it could not read (pages %s; listed in "
            "_dead_letters.jsonl with position null): their records were not landed; %s",
            source, endpoint, self.window.unit, unread, ", ".join(map(str, pages)), later,
            extra={"source": source, "endpoint": endpoint},
        )  # fmt: skip

    def _say_records_path_missing(self) -> None:
        """Warn when this window landed nothing and no page had ``records_path``: a typo
        there lands nothing with every request answered (the archive keeps the pages)."""
        if self.window.records or self.records_path_seen or self.keys_without_path is None:
            return
        source, endpoint = self.source.source, self.endpoint.name
        logger.warning(
            "%s/%s: records_path %r was in none of the %d page(s) of window %s (the first "
            "had the keys: %s), so it landed nothing; if the path is mistyped, fix it and "
            "land the archived pages: ingest replay --source %s --endpoint %s --run %s",
            source, endpoint, self.endpoint.records_path, self.pages, self.window.unit,
            ", ".join(self.keys_without_path) or "none", source, endpoint, self.window.run,
            extra={"source": source, "endpoint": endpoint},
        )  # fmt: skip

    def _params(self) -> dict[str, str]:
        params = self.endpoint.query(self.source.params)
        incremental, window = self.endpoint.incremental, self.window
        if incremental is not None:
            if window.start is not None:
                params[incremental.param] = window.start
            if window.end is not None and incremental.end_param:
                params[incremental.end_param] = window.end
        return params

    def _path(self, sequence: int) -> str:
        if self.window.parents is None:
            return self.endpoint.path
        values = dict(zip(self.endpoint.parent_fields, self.window.parents[sequence], strict=True))
        path = self.endpoint.path
        for name, value in values.items():
            path = path.replace(f"{{parent.{name}}}", quote(value, safe=""))
        return path

    # ------------------------------------------------------------- parents

    def _parent(self) -> Endpoint:
        assert self.endpoint.parent is not None
        return self.source.endpoint(self.endpoint.parent)

    def _fetch_parents(self) -> None:
        """Fetch the parent records' key values into the window, archived as its first pages."""
        parent = self._parent()
        paginator = paginator_for(self.source, parent)
        base = parent.query(self.source.params)
        fields = self.endpoint.parent_fields
        values: list[list[str]] = []
        number = self.window.raw_page
        current: PageRequest | None = paginator.first()
        while current is not None:
            url, params = (
                current.url or parent.path,
                {} if current.url else {**base, **current.params},
            )
            try:
                page, _ = self._fetch(number, url, params, role="parent")
            except ApiRequestError as exc:
                if not paginator.past_the_end(current, exc):
                    raise
                break  # a page made up past the API's end, refused: nothing was missed
            if current.prior is not None and paginator.repeats(current, self._lines(page, None)):
                page = replace(page, records=[])  # the API's last page again: not twice
            for record in page.records:
                values.append([self._parent_value(record, name, page.url) for name in fields])
            number += 1
            following = paginator.next(current, page)
            if following is not None and paginator.probes(following):
                following = paginator.with_prior(following, self._lines(page, None))
            current = following
        self.window = replace(self.window, parents=values, raw_page=number)
        self._commit(landed=0)

    def _parent_value(self, record: dict[str, Any], name: str, url: str) -> str:
        value = lookup(record, name)
        if value is MISSING or value is None or isinstance(value, dict | list):
            raise ApiResponseError(
                f"a record of parent endpoint {self.endpoint.parent!r} from {url} has no "
                f"usable {name!r} for the path {self.endpoint.path!r}",
                source=self.source.source,
                endpoint=self.endpoint.name,
                url=url,
            )
        return str(value)

    # ------------------------------------------------------------ landing

    def _land(
        self,
        sequence: int,
        request: PageRequest | None,
        skip: int,
        number: int,
        *,
        dead_letters: int | None = None,
    ) -> None:
        """Land the buffered records as the next chunk, then commit the position after them
        (``dead_letters``: the count checkpointed, when not all of them are before it)."""
        lines, self.lines = bytes(self.lines), bytearray()
        count, self.count = self.count, 0
        records, self.marking = self.marking, []
        window = self.window
        mark, boundary = self._advance_mark(window, records)
        del records
        key = landing_api_chunk_key(
            self.source.source, self.endpoint.name, window.dt, window.run, window.chunk
        )
        self.writer.submit(partial(_write_chunk, self.context.store, key, lines))
        metrics.records_landed.labels(**self.labels).inc(count)
        if self.context.observe is not None:
            self.context.observe(records=count)
        self.window = replace(
            window,
            sequence=sequence,
            page=request.to_dict() if request is not None else None,
            skip=skip,
            raw_page=number,
            chunk=window.chunk + 1,
            records=window.records + count,
            high_water=mark,
            boundary=boundary,
            dead_letters=self.dead.count if dead_letters is None else dead_letters,
            profile=self.profile.to_dict(),
        )
        self._commit(landed=count)

    def _commit(self, *, landed: int) -> None:
        """Seal the checkpoint (reports and manifest after the chunk and pages queued); its
        state is committed once it is durable: by the writer, or by the walk at a later
        checkpoint or the end when the state store must be used from the walk's thread."""
        window = self.window
        self._queue_reports()
        self.archive.queue_manifest(
            status="running",
            records=window.records,
            chunks=window.chunk,
            dead_letters=window.dead_letters,
        )
        self.state = self.state.with_window(window)
        states = self.context.states
        commit = partial(states.save, self.lease, self.state, landed=landed, finished=False)
        if states.saves_from_any_thread:  # the writer commits it once the files are durable
            self.sealed.append((self.writer.seal(then=commit), None))
        else:
            self.sealed.append((self.writer.seal(), commit))
        self._settle(keep=MAX_SEALED)

    def _settle(self, *, keep: int = 0) -> None:
        """Commit the states of the sealed checkpoints, oldest first, each once durable: those
        durable already, then waiting until ``keep`` remain (those still being written go on
        meanwhile, so the walk waits for a flush only when it runs that far ahead). A state
        the writer commits is waited for the same way."""
        while self.sealed and (len(self.sealed) > keep or self.sealed[0][0].done()):
            durable, commit = self.sealed.pop(0)
            result_of(durable)  # raises the write that failed: the state is not committed
            if commit is not None:
                commit()

    def _settle_after_failure(self) -> None:
        """On a failure or stop: commit the checkpoints that did become durable."""
        try:
            self._settle()
        except Exception as exc:  # the failure itself is raised; the state stays earlier
            logger.warning(
                "%s/%s: a landed checkpoint could not be committed (%s); the next run lands "
                "it again",
                self.source.source,
                self.endpoint.name,
                exc,
            )

    def _queue_reports(self) -> dict[str, Any]:
        """Queue the dead letters and the drift report beside the manifest; the drift summary."""
        window = self.window
        letters = self.dead.encoded()
        if letters is not None:
            self.writer.submit(partial(self.context.store.write_bytes, self.dead.key, letters))
        report = drift_report(self.profile, self.contract)
        where = (self.source.source, self.endpoint.name, window.dt, window.run)
        self.writer.submit(partial(write_drift, self.context.store, *where, report))
        return drift_summary(report)

    def _finish(self) -> tuple[WindowOutcome, EndpointState]:
        self.window = replace(self.window, dead_letters=self.dead.count)
        window = self.window
        unread = self.dead.pages
        drift = self._queue_reports()
        self.archive.queue_manifest(
            status="complete",
            records=window.records,
            chunks=window.chunk,
            dead_letters=window.dead_letters,
        )
        durable = self.writer.seal()
        self._settle()
        result_of(durable)
        self._say_records_path_missing()
        cursor, boundary = self._new_mark()
        done = self.state.windows_done
        if window.bounded and window.unit not in done:
            done = [*done, window.unit][-MAX_WINDOWS_DONE:]
        last_run = {
            "run": window.run,
            "dt": window.dt.isoformat(),
            "records": window.records,
            "dead_letters": window.dead_letters,
            "pages_unread": unread,
            "drift": drift,
        }
        self.state = replace(
            self.state,
            cursor=cursor,
            boundary=boundary,
            window=None,
            windows_done=done,
            last_run=last_run,
        )
        self.context.states.save(self.lease, self.state, landed=0, finished=True)
        outcome = WindowOutcome(
            source=self.source.source,
            endpoint=self.endpoint.name,
            unit=window.unit,
            run=window.run,
            pages=self.pages,
            records=window.records,
            chunks=window.chunk,
            cursor=cursor,
            resumed=self.resumed,
            dead_letters=window.dead_letters,
            pages_unread=unread,
            drift=drift,
        )
        if unread:
            self._say_pages_unread(unread, cursor)
        logger.info(
            "%s/%s window %s: %d records in %d chunks, cursor %s",
            self.source.source,
            self.endpoint.name,
            window.unit,
            window.records,
            window.chunk,
            cursor,
            extra={"source": self.source.source, "endpoint": self.endpoint.name},
        )
        return outcome, self.state

    # ------------------------------------------------------ high-water mark

    def _boundary_at_start(self) -> frozenset[str]:
        """Records the endpoint already landed at the mark this window starts from.

        The mark is sent inclusively (``>=``), so the records carrying it come again;
        they are recognised by primary key (the whole record without one) and skipped.
        """
        state, window = self.state, self.window
        if self.endpoint.incremental is None or window.bounded or not state.boundary:
            return frozenset()
        if window.start is None or state.cursor is None:
            return frozenset()
        if self._parse(window.start) != self._parse(state.cursor):
            return frozenset()  # a lookback or a full refresh: everything is sent again
        return frozenset(state.boundary)

    def _landed_before(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` is one of the records at the starting mark landed by a run before."""
        incremental = self.endpoint.incremental
        assert incremental is not None
        assert self.window.start is not None
        value = lookup(record, incremental.cursor_field)
        try:
            at_start = self._parse(value) == self._parse(self.window.start)
        except CursorValueError:
            return False
        return at_start and self._identity(record) in self.seen_at_start

    def _identity(self, record: dict[str, Any]) -> str:
        keys = self.endpoint.primary_key
        if keys:
            return json.dumps([lookup(record, key) for key in keys], default=str)
        return json.dumps(record, sort_keys=True, default=str)

    def _parse(self, value: object) -> Any:
        incremental = self.endpoint.incremental
        assert incremental is not None
        return parse_cursor(incremental.type, value)

    def _advance_mark(
        self, window: Window, records: list[dict[str, Any]]
    ) -> tuple[str | None, list[str]]:
        """The window's high-water mark and the records at it, after ``records`` landed."""
        incremental = self.endpoint.incremental
        if incremental is None:
            return window.high_water, window.boundary
        mark, boundary = window.high_water, list(window.boundary)
        parsed = self._parse(mark) if mark is not None else None
        for record in records:
            value = lookup(record, incremental.cursor_field)
            if value is MISSING or value is None:
                continue
            try:
                candidate = self._parse(value)
            except CursorValueError as exc:
                logger.warning(
                    "%s/%s: cursor field %r value skipped: %s",
                    self.source.source,
                    self.endpoint.name,
                    incremental.cursor_field,
                    exc,
                )
                continue
            if parsed is None or candidate > parsed:
                parsed, mark, boundary = candidate, format_cursor(candidate), []
            if candidate == parsed and len(boundary) < MAX_BOUNDARY:
                boundary.append(self._identity(record))
        return mark, boundary

    def _new_mark(self) -> tuple[str | None, list[str]]:
        """The endpoint's mark after this window: the larger of the two, with its records.

        A bounded window starting past what the endpoint landed without a gap leaves the
        mark where it is: moved to the window's records, the incremental runs would never
        fetch those of the gap (said in a warning, with the window that fills it).
        """
        old, new = self.state.cursor, self.window.high_water
        if new is None:
            mark, boundary = old, self.state.boundary
        elif self.window.bounded and self._leaves_a_gap():
            return old, self.state.boundary
        elif old is None or self._parse(new) > self._parse(old):
            mark, boundary = new, self.window.boundary
        elif self._parse(new) == self._parse(old):
            merged = sorted(set(self.state.boundary) | set(self.window.boundary))
            mark, boundary = old, merged[:MAX_BOUNDARY]
        else:
            mark, boundary = old, self.state.boundary
        if self.window.bounded:
            return self._past_windows_landed(mark, boundary)
        return mark, boundary

    def _past_windows_landed(
        self, mark: str | None, boundary: list[str]
    ) -> tuple[str | None, list[str]]:
        """The mark moved to the end of what is now landed without a gap, when this window
        filled the gap before finished windows past the mark: left below them, the next
        incremental run would land their records a second time. (Their exact high-water
        marks are not kept; their end is: records at it come again when an API's end
        parameter is inclusive. An end still to come is not trusted: records after it ran
        may fall before it.)"""
        incremental = self.endpoint.incremental
        assert incremental is not None
        start = mark if mark is not None else incremental.initial_value
        if start is None:
            return mark, boundary
        try:
            at = self._parse(start)
            covered = self._landed_up_to(start, with_window=True)
            spans = [_span(unit, self._parse) for unit in self.state.windows_done]
        except CursorValueError:
            return mark, boundary
        if covered is None or covered > _now_like(covered):
            return mark, boundary
        if not any(
            span is not None and span[0] is not None and at < span[0] and span[1] <= covered
            for span in spans
        ):
            return mark, boundary
        return format_cursor(covered), []

    def _leaves_a_gap(self) -> bool:
        """Whether this bounded window starts past what the endpoint landed without a gap
        (:meth:`_landed_up_to`), saying so when it does."""
        incremental = self.endpoint.incremental
        assert incremental is not None
        since = self.window.start
        covered = self._landed_up_to(self.state.cursor or incremental.initial_value)
        if since is None or covered is None:
            return False  # from the beginning, or the first window starts the history
        try:
            if self._parse(since) <= covered:
                return False
        except CursorValueError:
            return False
        landed_to = format_cursor(covered)
        logger.warning(
            "%s/%s: window --since %s --until %s starts past %s, up to which the endpoint's "
            "records are landed; the mark stays at %s, so the next incremental run fetches "
            "the gap (and this window's records again); to fill the gap alone first: "
            "--since %s --until %s",
            self.source.source, self.endpoint.name, since, self.window.end or "(none)",
            landed_to, self.state.cursor or "(unset)", landed_to, since,
            extra={"source": self.source.source, "endpoint": self.endpoint.name},
        )  # fmt: skip
        return True

    def _landed_up_to(self, start: str | None, *, with_window: bool = False) -> Any | None:
        """How far the endpoint's records are landed without a gap: from ``start`` (its mark,
        else its initial value), carried on by the finished bounded windows starting within
        it (``with_window``: and this one); None when nothing bounds it (no ``start``)."""
        if start is None:
            return None
        units = [*self.state.windows_done, self.window.unit] if with_window else None
        try:
            covered = self._parse(start)
            spans = [_span(unit, self._parse) for unit in units or self.state.windows_done]
        except CursorValueError:
            return None
        known = [span for span in spans if span is not None]
        for low, high in sorted(known, key=lambda span: (span[0] is not None, span[0] or covered)):
            if (low is None or low <= covered) and covered < high:
                covered = high
        return covered


def _now_like(value: Any) -> Any:
    """Now, as a bounded window's bound ``value`` is (a timestamp, else a date)."""
    now = datetime.now(UTC)
    return now if isinstance(value, datetime) else now.date()


def _span(unit: str, parse: Callable[[object], Any]) -> tuple[Any | None, Any] | None:
    """The bounds of a finished bounded window, from its unit key (``<source>/<endpoint>/
    <since>..<until>``; no since: from the beginning); None for one without an end."""
    since, dots, until = unit.rpartition("/")[2].partition("..")
    if not dots or not until:
        return None
    return (parse(since) if since else None), parse(until)


@dataclass(frozen=True)
class _Fetched:
    """A response, and its reading by the page reader when the walk uses one."""

    response: Response
    reading: Future[Reading | None] | None


def _write_chunk(store: ObjectStore, key: str, lines: bytes) -> None:
    """Compress and write one chunk (in the writer's thread)."""
    store.write_bytes(key, compress_lines(lines))
