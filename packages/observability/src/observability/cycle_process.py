"""Evaluation cycles in a child process, so the server's process only serves bytes.

A cycle (listings, monitors, rendering the metrics text, the status JSON and the page) is
Python work that holds the GIL; run in a thread beside the HTTP server, it makes scrapes
wait for it. :class:`CycleProcess` runs the cycles of a
:class:`~observability.service.StatusService` in a child process (started with ``spawn``:
no thread or lock of the server is copied into it; ``nice`` 10, so on a busy machine the
server's requests get the CPU first) and receives each cycle's snapshot,
already rendered, over a pipe. A request then costs one reference read in a process
doing nothing else.

The child is built by a factory called in the child (it opens its own store and database
connections). A child that dies is started again, after a pause that doubles up to a
minute; until it sends a snapshot ``/readyz`` fails and says so, while the last results
are still served. :meth:`CycleProcess.stop` asks the child to finish the cycle in flight
and waits for it; Ctrl-C and SIGTERM reach the child through the server, never directly.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from etl_core.threads import start_thread
from observability.monitors import Clock, SystemClock
from observability.service import Snapshot

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.synchronize import Event

    from observability.service import StatusService

__all__ = ["CycleProcess", "ServiceFactory"]

logger = logging.getLogger(__name__)
ServiceFactory = Callable[[], "StatusService"]
"""Builds the service in the child; must pickle (a module-level function, a partial of one)."""
CHILD_NICENESS = 10
"""How much lower the child's CPU priority is than the server's (``nice``)."""
MAX_RESTART_PAUSE = 60.0
"""The longest pause before a dead child is started again (seconds)."""


class CycleProcess:
    """The server's side of cycles run in a child process (a ``Cycles`` for ``build_app``).

    Args:
        factory: Builds the :class:`~observability.service.StatusService` in the child.
        interval: The cycles' interval (readiness allows three of them).
        clock: Where readiness takes the time.
    """

    def __init__(
        self, factory: ServiceFactory, *, interval: timedelta, clock: Clock | None = None
    ) -> None:
        self.factory = factory
        self.interval = interval
        self.clock = clock or SystemClock()
        self._context = multiprocessing.get_context("spawn")
        self._snapshot = Snapshot()
        self._down = ""
        self._stopping = threading.Event()
        self._child_stop: Event | None = None
        self._process: SpawnProcess | None = None
        self._thread: threading.Thread | None = None

    @property
    def snapshot(self) -> Snapshot:
        """The latest snapshot the child sent (an atomic read)."""
        return self._snapshot

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def ready(self) -> tuple[bool, str]:
        """Not while the child is down; otherwise the latest snapshot's readiness."""
        if self._down:
            return False, self._down
        return self._snapshot.ready(self.clock.now(), self.interval)

    def start(self) -> None:
        """Start the child and the thread receiving its snapshots."""
        self._stopping.clear()
        self._thread = start_thread(self._supervise, name="cycle-process")

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the child to stop after its cycle in flight; kill it after ``timeout``."""
        self._stopping.set()
        if self._child_stop is not None:
            self._child_stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        process = self._process
        if process is not None and process.is_alive():
            logger.warning("the evaluation process did not stop within %ss: killed", timeout)
            process.kill()
            process.join(5)

    def _supervise(self) -> None:
        pause = 1.0
        while not self._stopping.is_set():
            code = self._run_child()
            if self._stopping.is_set():
                return
            self._down = f"the evaluation process exited with code {code}; restarting it"
            logger.error("%s in %.0fs", self._down, pause)
            self._stopping.wait(pause)
            pause = min(pause * 2, MAX_RESTART_PAUSE)

    def _run_child(self) -> int | None:
        """Start a child, take its snapshots until it ends; its exit code."""
        receiving, sending = self._context.Pipe(duplex=False)
        self._child_stop = stop = self._context.Event()
        process = self._context.Process(
            target=_child_main,
            args=(self.factory, sending, stop),
            name="etl-observability-cycles",
            daemon=True,
        )
        process.start()
        self._process = process
        sending.close()  # the child holds the only writing end: its exit is our EOF
        try:
            while True:
                if self._stopping.is_set():
                    stop.set()
                try:
                    if not receiving.poll(0.5):
                        if not process.is_alive():
                            break
                        continue
                    data = receiving.recv_bytes()
                except (EOFError, OSError):
                    break
                self._receive(data)
        finally:
            receiving.close()
        process.join(30)
        return process.exitcode

    def _receive(self, data: bytes) -> None:
        snapshot = pickle.loads(data)  # from our own child, over a pipe nobody else holds
        if not isinstance(snapshot, Snapshot):
            logger.error("the evaluation process sent %s, not a snapshot", type(snapshot))
            return
        previous = self._snapshot
        failures = snapshot.failures
        if snapshot.succeeded_at is None and previous.succeeded_at is not None:
            # a restarted child's failures: keep the good results shown
            ended = snapshot.finished_at or self.clock.now()
            snapshot = previous.failed(
                ended, snapshot.seconds, snapshot.error, failures, self.interval
            )
        self._snapshot = snapshot
        self._down = ""


def stop_on_sigterm(stop: Any) -> None:
    """SIGTERM sets ``stop`` (a multiprocessing event) from a thread, not the handler: the
    handler runs inside the child's ``stop.wait()``, and setting the event there waited on
    that very wait (deadlocked, the server's ``stop`` too), as a SIGTERM sent to the whole
    process group (``timeout``, systemd's control group) found it."""
    signal.signal(signal.SIGTERM, lambda signum, frame: start_thread(stop.set, name="cycles-stop"))


def stop_with_parent(stop: Any) -> None:
    """Set ``stop`` when the process that started this one ends: a server killed with
    SIGKILL tells its child nothing, which evaluated on for nobody until a publish failed
    (a whole interval later, and never while a cycle's store or database hung)."""
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    if sentinel is None:
        return

    def watch() -> None:
        wait([sentinel])  # ready once the parent is gone
        stop.set()

    start_thread(watch, name="cycles-parent")


def _child_main(factory: ServiceFactory, sending: Connection, stop: Any) -> None:
    """The child: build the service, run its cycles, send each snapshot, until ``stop``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when the cycles stop
    with contextlib.suppress(OSError):  # background work: the server's requests come first
        os.nice(CHILD_NICENESS)
    stop_on_sigterm(stop)
    stop_with_parent(stop)
    try:
        service = factory()
    except Exception:  # said in the log; the server restarts the child later
        logger.exception("the evaluation process could not start")
        raise SystemExit(1) from None

    def publish(snapshot: Snapshot) -> None:
        try:
            sending.send_bytes(pickle.dumps(snapshot.served(), pickle.HIGHEST_PROTOCOL))
        except OSError:  # the server is gone: nobody to evaluate for
            stop.set()

    try:
        service.run_cycles(stop, publish)
    finally:
        if service.alerts is not None:
            service.alerts.close()
        service.store.close()
        sending.close()
