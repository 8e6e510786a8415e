"""The status service behind ``etl-observability serve``: evaluate in the background, serve copies.

A :class:`StatusService` evaluates every monitor and collects the storage metrics
(incrementally, :mod:`observability.storage_index`) on an interval, and keeps the outcome
as a :class:`Snapshot`: the Prometheus text, the status JSON and the page rendered once per
cycle. Requests only read the latest snapshot (one reference), so a scrape costs the same
under load and never waits for the store; ``serve`` runs the cycles in a child process
(:mod:`observability.cycle_process`), so they do not even share the server's GIL.
A failed cycle keeps the last good results, says why, and makes ``/readyz`` fail until a
cycle succeeds again.

:func:`build_app` is the Starlette application: ``/metrics``, ``/healthz``, ``/readyz``,
``/api/status``, and ``/``: the status page (:mod:`observability.page`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from etl_core.contracts import Contract
from etl_core.errors import EtlError
from etl_core.metrics import Registry, render_prometheus
from etl_core.storage import ObjectStore
from etl_core.threads import start_thread
from observability.alerts.emptied import carry_emptied
from observability.database_metrics import DatabaseReport, record_database_metrics
from observability.evaluation import Evaluation, evaluate, record_monitor_metrics
from observability.freshness_metrics import record_freshness_metrics
from observability.monitors import Clock
from observability.page import render_page
from observability.storage_index import StorageIndex, record_storage_metrics

if TYPE_CHECKING:
    from observability.alerts import Alert, AlertWatch

__all__ = ["PROMETHEUS_TEXT", "SETTLE_EVERY", "Cycles", "Snapshot", "StatusService", "build_app"]

logger = logging.getLogger(__name__)
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
SETTLE_EVERY = 1.0
"""Seconds between two clearings of the delivered alert notifications from the store,
between cycles (one read of what the dispatcher delivered; a store write only if any)."""
Recorder = Callable[[Evaluation], None]
DatabaseCollector = Callable[[datetime], DatabaseReport]


@dataclass(frozen=True)
class Snapshot:
    """What the latest cycle produced (the last good results if it failed).

    Attributes:
        evaluation: The latest successful evaluation; ``None`` before the first.
        metrics: Its Prometheus text, with the storage metrics and the service's own gauges
            (those of the latest cycle, good or not).
        results_metrics: The same without the service's own gauges.
        status: Its ``/api/status`` JSON.
        page: The status page (HTML) of :attr:`status`.
        finished_at: When the latest cycle ended, good or not (the clock's time).
        succeeded_at: When the latest good cycle ended.
        seconds: How long the latest cycle took (the clock's time).
        error: Why the latest cycle failed; ``""`` when it did not.
        database: Its ``/api/status`` ``database`` key (the report, or why it is missing);
            ``None`` without a database.
        alerts: The active alerts after the latest cycle; ``None`` without alerting.
    """

    evaluation: Evaluation | None = None
    metrics: bytes = b""
    results_metrics: bytes = b""
    status: bytes = b""
    page: bytes = b""
    finished_at: datetime | None = None
    succeeded_at: datetime | None = None
    seconds: float = 0.0
    error: str = ""
    failures: int = field(default=0, compare=False)
    database: dict[str, Any] | None = None
    alerts: tuple[Alert, ...] | None = None
    storage: dict[str, Any] | None = None

    @property
    def evaluated(self) -> bool:
        """Whether a cycle has succeeded once: there are results to serve."""
        return self.evaluation is not None or self.succeeded_at is not None

    def failed(
        self, finished_at: datetime, seconds: float, error: str, failures: int, interval: timedelta
    ) -> Snapshot:
        """This snapshot's results after a cycle that failed: ``/metrics`` with the failed
        cycle's duration and the failures counted so far, ``/api/status`` and the page with
        the cycle's error (``interval``: the page's reload)."""
        failed = replace(
            self,
            finished_at=finished_at,
            seconds=seconds,
            error=error,
            failures=failures,
            metrics=self.results_metrics + service_metrics(seconds, failures),
        )
        document = json.loads(self.status) if self.status else {}
        document.update(_service_state(failed))
        return _with_page(replace(failed, status=json.dumps(document).encode()), interval)

    def served(self) -> Snapshot:
        """What the HTTP side needs of it: the rendered bytes and the times, without the
        evaluation's objects (what a cycle process sends to the server)."""
        return replace(self, evaluation=None, alerts=None, database=None, storage=None)

    def ready(self, now: datetime, interval: timedelta) -> tuple[bool, str]:
        """Whether the latest cycle reached the store (and database) and is recent enough at
        ``now``: a cycle finished within three times the interval (or the latest cycle's
        length, when longer) and 30 seconds, counted from its end."""
        if self.finished_at is None:
            return False, "the first evaluation has not finished"
        if self.error:
            return False, f"the latest evaluation failed: {self.error}"
        assert self.succeeded_at is not None
        late = now - self.succeeded_at
        allowed = 3 * max(interval, timedelta(seconds=self.seconds)) + timedelta(seconds=30)
        if late > allowed:
            return False, f"no evaluation has finished for {late.total_seconds():.0f}s"
        return True, "ok"


class Cycles(Protocol):
    """What the HTTP application serves: the latest snapshot of cycles run elsewhere."""

    @property
    def snapshot(self) -> Snapshot:
        """The latest snapshot."""
        ...

    def ready(self) -> tuple[bool, str]:
        """Whether the service is ready, and why not."""
        ...

    def start(self) -> None:
        """Start the cycles (with the server)."""
        ...

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the cycles (with the server)."""
        ...


class StatusService:
    """Evaluations on an interval in a background thread; the latest kept for requests.

    Args:
        contracts: The datasets to watch.
        store: The object store (shared by the cycles; one runs at a time).
        clock: Where evaluations take the time.
        interval: Time between the start of one cycle and the next.
        record: Called with each evaluation (the freshness history), if given.
        database: Collects the database metrics at the given time, if given.
        alerts: Updates the alerts and delivers notifications each cycle, if given.
        storage: The storage metrics' index (default: one over ``store`` with its defaults).
        export: Called with each cycle's metrics after they are rendered, if given: the
            configured exporters other than the Pushgateway (``/metrics`` is scraped).
        declared: The datasets the contracts declare now, asked each cycle (``None``: not
            known then, nothing retired); default: those of ``contracts``. ``serve`` reads
            its config directory, so a contract removed while it runs is retired for good,
            not reopened by its contract loaded at start (``AlertBook.observe``).
    """

    def __init__(
        self,
        contracts: Sequence[Contract],
        store: ObjectStore,
        clock: Clock,
        *,
        interval: timedelta,
        record: Recorder | None = None,
        database: DatabaseCollector | None = None,
        alerts: AlertWatch | None = None,
        storage: StorageIndex | None = None,
        export: Callable[[Registry], object] | None = None,
        declared: Callable[[], Collection[str] | None] | None = None,
    ) -> None:
        self.contracts = tuple(contracts)
        loaded = frozenset(contract.dataset for contract in self.contracts)
        self.declared: Callable[[], Collection[str] | None] = declared or (lambda: loaded)
        self.storage = storage if storage is not None else StorageIndex(store, self.contracts)
        self.store = store
        self.clock = clock
        self.interval = interval
        self.record = record
        self.database = database
        self.alerts = alerts
        self.export = export
        self._snapshot = Snapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def snapshot(self) -> Snapshot:
        """The latest snapshot (an atomic read)."""
        return self._snapshot

    def refresh(self) -> Snapshot:
        """Run one cycle now: collect the storage metrics, evaluate, record, render; keep it.

        A store that cannot be read (a local store's directory gone included) keeps the
        last good results; a history that cannot be recorded keeps the new ones. Either way
        the cycle's error is kept and readiness fails.
        """
        started = time.perf_counter()
        began = self.clock.now()
        previous = self._snapshot
        try:
            # A local store's directory gone (unmounted, removed) lists as empty: asked
            # first, so it fails the cycle like an unreachable bucket, never reads as empty.
            self.store.check_present()
            storage = self.storage.collect(began)
            evaluation = evaluate(self.contracts, self.store, self.clock, manifests=storage)
        except (EtlError, OSError) as exc:
            logger.error("evaluation failed; serving the last good results: %s", exc)
            ended = self.clock.now()
            seconds = (ended - began).total_seconds()
            error = str(exc) or type(exc).__name__
            self._snapshot = previous.failed(
                ended, seconds, error, previous.failures + 1, self.interval
            )
            return self._snapshot
        evaluation, carry_error = self._carried(evaluation)
        error = self._recorded(evaluation)
        if carry_error:  # judged without what the alerts remember: no alert may follow it
            active, alert_error = previous.alerts, carry_error
        else:
            active, alert_error = self._alerted(evaluation, previous.alerts)
        registry = Registry()
        database, database_error = self._database(evaluation.evaluated_at, registry)
        error = "; ".join(why for why in (error, database_error, alert_error) if why)
        failures = previous.failures + (1 if error else 0)
        record_monitor_metrics(evaluation, registry)
        record_freshness_metrics(evaluation, registry)
        record_storage_metrics(storage, registry)
        if self.alerts is not None:
            self.alerts.record_metrics(list(active or ()), registry)
        results = render_prometheus(registry).encode()
        if self.export is not None:  # logs a failing exporter, never raises
            self.export(registry)
        own = service_metrics(time.perf_counter() - started, failures)
        ended = self.clock.now()  # readiness counts from a cycle's end, however long it took
        done = Snapshot(
            evaluation=evaluation,
            metrics=results + own,
            results_metrics=results,
            finished_at=ended,
            succeeded_at=previous.succeeded_at if error else ended,
            seconds=(ended - began).total_seconds(),
            error=error,
            failures=failures,
            database=database,
            alerts=active,
            storage=storage.to_dict(),
        )
        self._snapshot = _with_page(_with_status(done), self.interval)
        return self._snapshot

    def _carried(self, evaluation: Evaluation) -> tuple[Evaluation, str]:
        """``evaluation`` with its zones emptied while late judged by their open alerts
        (:func:`carry_emptied`: as ``check`` judges them, after a restart too), and ``""``;
        as it is without alerts. When the alerts cannot be read, ``evaluation`` as it is and
        why: the cycle then leaves the alerts as they are, as an alert updated from it would
        resolve a dead feed's (its zone read ``empty``) if the store answered again."""
        if self.alerts is None:
            return evaluation, ""
        try:
            return carry_emptied(evaluation, self.contracts, self.alerts.book.active()), ""
        except EtlError as exc:
            logger.error("alerts not updated: they could not be read: %s", exc)
            return evaluation, f"alerts not updated: they could not be read: {exc}"

    def _recorded(self, evaluation: Evaluation) -> str:
        """Record ``evaluation`` in the freshness history; why it could not be, or ``""``."""
        if self.record is None:
            return ""
        try:
            self.record(evaluation)
        except EtlError as exc:
            logger.error("freshness history not recorded: %s", exc)
            return f"freshness history not recorded: {exc}"
        return ""

    def _database(self, now: datetime, registry: Registry) -> tuple[dict[str, Any] | None, str]:
        """Collect the database metrics into ``registry``: the status key and why not, or ``""``."""
        if self.database is None:
            return None, ""
        up = registry.gauge(
            "etl_observability_database_up", "1 when the latest cycle read the database, else 0."
        )
        try:
            report = self.database(now)
        except EtlError as exc:
            logger.error("database metrics not collected: %s", exc)
            up.set(0)
            return {"error": str(exc)}, f"database metrics not collected: {exc}"
        up.set(1)
        record_database_metrics(report, registry)
        return report.to_dict(), ""

    def _alerted(
        self, evaluation: Evaluation, previous: tuple[Alert, ...] | None
    ) -> tuple[tuple[Alert, ...] | None, str]:
        """Update the alerts from ``evaluation``: the active ones (the last known on failure)."""
        if self.alerts is None:
            return None, ""
        try:
            return tuple(self.alerts.update(evaluation, declared=self.declared())), ""
        except EtlError as exc:
            logger.error("alerts not updated: %s", exc)
            return previous, f"alerts not updated: {exc}"

    def ready(self) -> tuple[bool, str]:
        """Whether the latest cycle reached the store (and database) and is recent enough
        (:meth:`Snapshot.ready`)."""
        return self._snapshot.ready(self.clock.now(), self.interval)

    def start(self) -> None:
        """Evaluate now and then every interval, in a background thread, until :meth:`stop`."""
        self._stop.clear()
        self._thread = start_thread(self._loop, name="evaluations")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the background cycles; the one in flight finishes first (within ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.alerts is not None:
            self.alerts.close()

    def _loop(self) -> None:
        self.run_cycles(self._stop)

    def run_cycles(self, stop: _Event, publish: Callable[[Snapshot], None] | None = None) -> None:
        """Run a cycle now and then every interval until ``stop`` is set, handing each
        snapshot to ``publish`` (a cycle process sends it to the server)."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                snapshot = self.refresh()
            except Exception:  # a bug must not end the service's evaluations silently
                logger.exception("evaluation cycle crashed; retrying next interval")
            else:
                if publish is not None:
                    publish(snapshot)
            spent = time.monotonic() - started
            self._pause(stop, max(0.0, self.interval.total_seconds() - spent))

    def _pause(self, stop: _Event, seconds: float) -> None:
        """Wait ``seconds`` or until ``stop``; meanwhile clear what the alert deliveries
        told from the alert store every :data:`SETTLE_EVERY`, not only at the next cycle: a
        ``check`` (or another ``serve``) reading the outbox in between would post it again."""
        if self.alerts is None:
            stop.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if stop.wait(min(left, SETTLE_EVERY)):
                return
            try:
                self.alerts.settle()
            except Exception:  # a bug must not end the service's evaluations silently
                logger.exception("clearing delivered alert notifications crashed")


class _Event(Protocol):
    """A stop signal: :class:`threading.Event` or a process-shared event."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def build_app(service: Cycles) -> Starlette:
    """The HTTP application over ``service``, whose cycles start and stop with the server."""

    async def metrics(request: Request) -> Response:
        snapshot = service.snapshot
        if not snapshot.metrics:
            return PlainTextResponse("# the first evaluation has not finished\n", status_code=503)
        return Response(snapshot.metrics, media_type=PROMETHEUS_TEXT)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        ready, why = service.ready()
        return JSONResponse({"ready": ready, "reason": why}, status_code=200 if ready else 503)

    async def status(request: Request) -> Response:
        snapshot = service.snapshot
        if not snapshot.evaluated:
            return JSONResponse(_service_state(snapshot), status_code=503)
        return Response(snapshot.status, media_type="application/json")

    async def page(request: Request) -> Response:
        snapshot = service.snapshot
        if not snapshot.page:
            return HTMLResponse(_WAITING_PAGE, status_code=503)
        return Response(snapshot.page, media_type="text/html; charset=utf-8")

    def lifespan(app: Starlette) -> _Lifespan:
        return _Lifespan(service)

    routes = [
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/api/status", status),
        Route("/", page),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def service_metrics(seconds: float, failures: int) -> bytes:
    """The service's own metrics in Prometheus text: the latest cycle's duration and the
    cycles that failed."""
    registry = Registry()
    registry.gauge(
        "etl_observability_evaluation_duration_seconds",
        "How long the latest evaluation cycle (storage metrics and monitors) took.",
    ).set(seconds)
    registry.counter(
        "etl_observability_evaluation_failures_total",
        "Evaluation cycles that failed since the service started.",
    ).inc(failures)
    return render_prometheus(registry).encode()


def _with_status(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` with its ``/api/status`` JSON: the evaluation and the cycle's state."""
    document = snapshot.evaluation.to_dict() if snapshot.evaluation is not None else {}
    document.update(_service_state(snapshot))
    if snapshot.database is not None:
        document["database"] = snapshot.database
    if snapshot.alerts is not None:
        document["alerts"] = [alert.status() for alert in snapshot.alerts]
    if snapshot.storage is not None:
        document["storage"] = snapshot.storage
    return replace(snapshot, status=json.dumps(document).encode())


def _with_page(snapshot: Snapshot, interval: timedelta) -> Snapshot:
    """``snapshot`` with its status page, drawn from its ``/api/status`` JSON as served."""
    document = json.loads(snapshot.status)
    refresh = max(5, int(interval.total_seconds()))
    try:
        page = render_page(document, refresh_seconds=refresh)
    except Exception:  # a drawing bug must not stop the metrics and the status JSON
        logger.exception("the status page could not be drawn; /api/status has the results")
        page = _BROKEN_PAGE
    return replace(snapshot, page=page.encode())


_BROKEN_PAGE = (
    '<!doctype html><meta charset="utf-8"><title>data freshness</title>'
    '<p>The status page could not be drawn (see the log); <a href="/api/status">'
    "/api/status</a> has the results.</p>"
)
_WAITING_PAGE = (
    '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="5">'
    "<title>data freshness</title><p>The first evaluation has not finished; "
    "this page reloads in 5 seconds.</p>"
)


def _service_state(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "service": {
            "last_cycle_at": snapshot.finished_at.isoformat() if snapshot.finished_at else None,
            "last_success_at": snapshot.succeeded_at.isoformat() if snapshot.succeeded_at else None,
            "error": snapshot.error,
        }
    }


class _Lifespan:
    """Start the background evaluations with the server, stop them with it."""

    def __init__(self, service: Cycles) -> None:
        self.service = service

    async def __aenter__(self) -> None:
        self.service.start()

    async def __aexit__(self, *exc: object) -> None:
        self.service.stop()
