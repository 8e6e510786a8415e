"""The Celery executor with real worker processes: poison messages end in the dead-letter
queue, and so do messages the worker cannot even start (another content type, a task name
it does not know); a unit failing for good is said in the worker's own log."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from etl_core.config import ResultBackendURL, load_settings
from etl_core.errors import RetryableError
from etl_core.runtime import RuntimeSettings
from etl_core.storage import LocalObjectStore, acquire_lease
from etl_core.testing.brokers import TestBroker, broker_for
from etl_core.testing.processes import BackgroundProcess
from etl_core.work import InlineExecutor, InvalidUnitError, WorkUnit, unit_executor
from etl_core.work.celery import (
    DEAD_REASON_HEADER,
    BrokerLostError,
    CeleryExecutor,
    UnitTimeLimitError,
    celery_app,
    lane_queues,
    task_name,
)
from etl_core.work.celery.config import REDIS_READ_TIMEOUT
from etl_core.work.celery.origin import ForeignUnitError
from etl_core.work.result import UnitResult

WORKER = Path(__file__).with_name("celery_lane_worker.py")
LANE = "test_lane"

pytestmark = pytest.mark.slow


def start_worker(
    broker: TestBroker,
    tmp_path: Path,
    concurrency: int = 1,
    *,
    soft_limit: float = 3300,
    env: dict[str, str] | None = None,
) -> BackgroundProcess:
    command = [
        sys.executable, str(WORKER), broker.url, broker.prefix, str(concurrency), str(soft_limit)
    ]  # fmt: skip
    environment = {**os.environ, **(env or {})}
    worker = BackgroundProcess(command, env=environment, log=tmp_path / "worker.log")
    worker.wait_for(" ready.", timeout=60)
    return worker


def test_a_followed_run_on_rabbitmq_with_result_backend_rpc_set_gets_its_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ETL_RESULT_BACKEND=rpc:// (the documented RabbitMQ backend) was refused by the settings
    # as "not an absolute URL"
    with broker_for("rabbitmq") as broker:
        monkeypatch.setenv("ETL_RESULT_BACKEND", "rpc://")
        for name, value in broker.env().items():
            monkeypatch.setenv(name, value)
        settings = load_settings(RuntimeSettings)
        assert settings.result_backend == "rpc://"
        units = [WorkUnit(LANE, "item", f"rpc-{n}") for n in range(3)]
        with start_worker(broker, tmp_path, env={"ETL_RESULT_BACKEND": "rpc://"}):
            executor = CeleryExecutor(celery_app(settings, LANE))
            results = sorted(executor.run(lambda unit: None, units), key=lambda r: r.unit.key)
    assert [(r.status, r.value) for r in results] == [
        ("succeeded", {"key": f"rpc-{n}"}) for n in range(3)
    ]


def test_a_worker_on_redis_idle_past_the_read_timeout_still_takes_units(tmp_path: Path) -> None:
    # its queue wait (BRPOP) must not be cut by the Redis read timeout
    with broker_for("redis") as broker:
        settings = broker.settings()
        with start_worker(broker, tmp_path) as worker:
            time.sleep(REDIS_READ_TIMEOUT + 5)  # idle, waiting on its queue
            executor = CeleryExecutor(celery_app(settings, LANE))
            (result,) = executor.run(lambda unit: None, [WorkUnit(LANE, "item", "late-1")])
        said = worker.log()
    assert (result.status, result.value) == ("succeeded", {"key": "late-1"})
    assert "Cannot connect" not in said
    assert "Timeout" not in said


def test_a_poison_message_lands_in_the_dead_letter_queue_after_its_attempts(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    poison, fine = WorkUnit(LANE, "item", "poison-1"), WorkUnit(LANE, "item", "fine-1")
    with start_worker(celery_broker, tmp_path):
        executor = CeleryExecutor(celery_app(settings, LANE))
        results = {r.unit.key: r for r in executor.run(lambda unit: None, [poison, fine])}
    assert (results["fine-1"].status, results["fine-1"].value) == ("succeeded", {"key": "fine-1"})
    failed = results["poison-1"]
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert isinstance(failed.error, RetryableError)
    assert "poison-1 never works" in str(failed.error)
    ((headers, body),) = celery_broker.messages(lane_queues(settings, LANE).dead)
    assert headers[DEAD_REASON_HEADER].startswith("RetryableError after 3 attempt(s)")
    assert headers["task"] == task_name(LANE)
    assert body[0] == [poison.to_dict()]  # the same task and argument: re-drivable as is


def test_a_message_that_is_no_unit_is_dead_lettered_at_once(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    app = celery_app(settings, LANE)
    with start_worker(celery_broker, tmp_path):
        sent = app.send_task(task_name(LANE), args=[{"lane": LANE, "kind": "item"}])
        document = sent.get(timeout=60)
    assert document["status"] == "failed"
    assert document["dead_lettered"] is True
    assert "field 'key'" in document["error"]["message"]
    ((headers, body),) = celery_broker.messages(lane_queues(settings, LANE).dead)
    assert "InvalidUnitError after 1 attempt(s)" in headers[DEAD_REASON_HEADER]
    assert body[0] == [{"lane": LANE, "kind": "item"}]


def test_a_unit_this_worker_can_never_run_is_dead_lettered_not_failed(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    # another lane's unit, a kind the lane does not run, a parameter it does not know: each
    # ended as a failed result, where a unit with an unknown field was dead-lettered
    settings = celery_broker.settings()
    app = celery_app(settings, LANE)
    other_lane = WorkUnit("data_pipeline", "item", "other-lane")
    refused = {
        "kind": WorkUnit(LANE, "nope", "unknown-kind"),
        "params.m": WorkUnit(LANE, "item", "unknown-param", {"m": 1}),
    }
    fine = WorkUnit(LANE, "item", "fine-3", {"n": 1})
    with start_worker(celery_broker, tmp_path):
        misrouted = app.send_task(task_name(LANE), args=[other_lane.to_dict()])  # its queue
        executor = CeleryExecutor(app)
        results = {
            r.unit.key: r for r in executor.run(lambda unit: None, [*refused.values(), fine])
        }
        document = misrouted.get(timeout=60)
    assert results["fine-3"].status == "succeeded"
    assert (document["status"], document["dead_lettered"]) == ("failed", True)
    assert "field 'lane'" in document["error"]["message"]
    for field, unit in refused.items():  # the follower is told, with the field
        told = results[unit.key]
        assert (told.status, told.attempts) == ("failed", 1)
        assert isinstance(told.error, InvalidUnitError)
        assert told.error.field == field
    dead = celery_broker.messages(lane_queues(settings, LANE).dead)
    reasons = {body[0][0]["key"]: headers[DEAD_REASON_HEADER] for headers, body in dead}
    assert set(reasons) == {other_lane.key, *(unit.key for unit in refused.values())}
    for field, unit in [("lane", other_lane), *refused.items()]:
        assert reasons[unit.key].startswith("InvalidUnitError after 1 attempt(s)")
        assert f"field {field!r}" in reasons[unit.key]


def test_a_unit_stopped_at_the_soft_time_limit_reports_the_limit_not_its_cleanup_s_error(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    # the unit's cleanup after the limit raised (DuckDB's "connection is busy"), and its
    # result read as that error instead of the time limit
    settings = celery_broker.settings()
    overrun = WorkUnit(LANE, "item", "overrun-1")
    with start_worker(celery_broker, tmp_path, soft_limit=1):
        executor = CeleryExecutor(celery_app(settings, LANE))
        started = time.monotonic()
        (result,) = executor.run(lambda unit: None, [overrun])
    assert time.monotonic() - started < 30  # stopped at the limit, not after its 60 s sleep
    assert (result.status, result.attempts) == ("failed", 1)  # not retried
    assert isinstance(result.error, UnitTimeLimitError)
    assert result.error.field == "task_soft_time_limit"
    said = str(result.error)
    assert said.startswith("work unit test_lane:item:overrun-1 ran past task_soft_time_limit (1 s)")
    assert "its cleanup then raised RuntimeError: Connection Error: connection is busy" in said


def test_a_unit_that_fails_for_good_is_logged_as_an_error_by_its_worker(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    broken, fine = WorkUnit(LANE, "item", "broken-1"), WorkUnit(LANE, "item", "fine-2")
    with start_worker(celery_broker, tmp_path) as worker:
        app = celery_app(settings, LANE)
        sent = [app.send_task(task_name(LANE), args=[u.to_dict()]) for u in (broken, fine)]
        documents = [s.get(timeout=60) for s in sent]  # as a chained or --no-wait unit: unread
        log = worker.log()
    assert [d["status"] for d in documents] == ["failed", "succeeded"]
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1, errors  # the failed unit, not the one that succeeded
    (said,) = errors
    assert "work unit test_lane:item:broken-1 failed" in said["event"]
    assert "FatalError: broken-1 is refused for good" in said["event"]
    assert said["unit"] == broken.id


def test_messages_the_worker_cannot_start_are_dead_lettered_unchanged_not_dropped(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    app = celery_app(settings, LANE)
    queues = lane_queues(settings, LANE)
    unit = WorkUnit(LANE, "item", "fine-3").to_dict()
    with start_worker(celery_broker, tmp_path):
        typo = app.send_task(f"{LANE}.run_units", args=[unit], queue=queues.work)
        pickled = app.send_task(task_name(LANE), args=[unit], serializer="pickle")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and celery_broker.queue_length(queues.dead) < 2:
            time.sleep(0.2)
        fine = app.send_task(task_name(LANE), args=[unit]).get(timeout=60)
    assert fine["status"] == "succeeded"  # the worker goes on with the next message
    dead = {h["id"]: (h, body) for h, body in celery_broker.messages(queues.dead, raw=True)}
    assert set(dead) == {typo.id, pickled.id}
    headers, (body, content_type) = dead[typo.id]
    assert headers["task"] == f"{LANE}.run_units"  # the same message: re-drivable once fixed
    assert headers[DEAD_REASON_HEADER].startswith(f"no task {LANE}.run_units on this worker")
    assert content_type == "application/json"
    assert json.loads(body)[0] == [unit]
    headers, (body, content_type) = dead[pickled.id]
    assert headers["task"] == task_name(LANE)
    assert "content type application/x-python-serialize" in headers[DEAD_REASON_HEADER]
    assert content_type == "application/x-python-serialize"


def _refuse_dead_letters(broker: TestBroker, dead: str) -> None:
    """Make every publish to ``dead`` fail: on Redis a key of another type under its name, on
    RabbitMQ the queue declared with other arguments (the worker's declare is refused)."""
    from kombu import Connection, Exchange, Queue

    with Connection(broker.url) as connection:
        channel = connection.default_channel
        if broker.kind == "redis":
            channel.client.set(dead, "not a list")
        else:
            queue = Queue(dead, Exchange(dead), dead, queue_arguments={"x-max-length": 7})
            queue(channel).declare()


def test_a_message_that_cannot_be_moved_to_the_dead_letter_queue_stays_on_its_queue(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    app = celery_app(settings, LANE)
    queues = lane_queues(settings, LANE)
    _refuse_dead_letters(celery_broker, queues.dead)
    unit = WorkUnit(LANE, "item", "fine-4").to_dict()
    with start_worker(celery_broker, tmp_path) as worker:
        typo = app.send_task(f"{LANE}.run_units", args=[unit], queue=queues.work)
        worker.wait_for("could not move a message to the dead-letter queue", timeout=60)
        worker.signal(signal.SIGTERM)  # a warm shutdown: what it holds unacknowledged goes back
        worker.wait(timeout=60)
    ((headers, (_, content_type)),) = celery_broker.messages(queues.work, raw=True)
    assert content_type == "application/json"
    assert headers["id"] == typo.id  # not dropped: moved once the dead-letter queue takes it


def test_a_worker_s_processes_share_the_cores_among_its_concurrency(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    with start_worker(celery_broker, tmp_path, concurrency=2):
        executor = CeleryExecutor(celery_app(settings, LANE))
        units = [WorkUnit(LANE, "item", f"cores-{n}") for n in range(4)]
        seen = {r.value["units_at_once"] for r in executor.run(lambda unit: None, units)}
    assert seen == {2}  # each unit's engines get half the cores, not all of them


def _private_redis(data: Path, port: int) -> subprocess.Popen[bytes]:
    """A redis-server of this test alone (never the machine's) at ``port``, its queues kept
    in ``data`` across a restart (append-only file), as the compose stack's Redis keeps
    them; returned once it accepts connections."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
         "--dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=10)
    raise AssertionError(f"redis-server did not start at port {port}")


def _followed_through_a_redis_restart(
    tmp_path: Path,
    *,
    unit_seconds: float,
    down_at: float,
    down_for: float,
) -> list[UnitResult[Any]]:
    """Two units of ``unit_seconds`` followed on a worker of a private Redis that is stopped
    ``down_at`` seconds into the run and started again ``down_for`` seconds later."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = int(unused.getsockname()[1])
    broker = TestBroker("redis", f"redis://127.0.0.1:{port}/0", "restart.")
    servers = [_private_redis(tmp_path, port)]

    def restart() -> None:
        time.sleep(down_at)
        servers[0].terminate()  # its queues written to the append-only file
        servers[0].wait(timeout=10)
        time.sleep(down_for)
        servers.append(_private_redis(tmp_path, port))

    units = [WorkUnit(LANE, "item", f"slow-{n}") for n in range(2)]
    restarting = threading.Thread(target=restart)
    try:
        slow = {"SLOW_UNIT_SECONDS": str(unit_seconds)}
        with start_worker(broker, tmp_path, 2, env=slow):
            executor = unit_executor(broker.settings(executor="celery"), LANE, local=InlineExecutor)
            follow = executor.run(lambda unit: None, units)
            restarting.start()
            return sorted(follow, key=lambda result: result.unit.key)
    finally:
        if restarting.is_alive():
            restarting.join(timeout=30)
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=10)


def test_a_followed_run_survives_a_redis_restart_of_a_few_seconds(tmp_path: Path) -> None:
    # the caller's result backend reconnected 3 times a second apart (~2 s): a Redis
    # restart of a few seconds (compose restarting it, a failover) ended a long followed
    # run with BrokerLostError while its units went on running on the workers
    results = _followed_through_a_redis_restart(tmp_path, unit_seconds=10, down_at=2, down_for=4)
    assert [(r.status, r.value) for r in results] == [
        ("succeeded", {"key": f"slow-{n}"}) for n in range(2)
    ]


def test_a_unit_ending_while_redis_restarts_is_reported_as_it_ended(tmp_path: Path) -> None:
    # the worker stored a unit's result once (Celery's default): a unit that ended while
    # Redis restarted, its work done, was reported failed with "ConnectionError: Error 111"
    results = _followed_through_a_redis_restart(tmp_path, unit_seconds=4, down_at=2, down_for=5)
    assert [(r.status, r.value) for r in results] == [
        ("succeeded", {"key": f"slow-{n}"}) for n in range(2)
    ]


def test_a_result_backend_lost_while_following_is_named_not_the_broker(tmp_path: Path) -> None:
    # a separate Redis result backend lost while a run was followed was said as "lost the
    # broker <broker_url's URL> (broker_url)": the operator was sent to a broker that answers
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = int(unused.getsockname()[1])
    backend = _private_redis(tmp_path, port)
    try:
        with broker_for("redis") as broker:  # the machine's Redis, never stopped
            settings = broker.settings(
                executor="celery", result_backend=ResultBackendURL(f"redis://127.0.0.1:{port}/0")
            )
            executor = unit_executor(settings, LANE, local=InlineExecutor)
            follow = executor.run(lambda unit: None, [WorkUnit(LANE, "item", "waits-1")])
            backend.terminate()  # no worker: the unit waits on its queue, followed
            backend.wait(timeout=10)
            with pytest.raises(BrokerLostError) as lost:
                next(follow)
    finally:
        if backend.poll() is None:
            backend.terminate()
            backend.wait(timeout=10)
    said = str(lost.value)
    assert f"lost the result backend redis://127.0.0.1:{port}/0 (result_backend)" in said
    assert lost.value.url == f"redis://127.0.0.1:{port}/0"
    assert "0 of 1 unit(s) finished" in said


def test_a_unit_made_for_another_store_is_refused_by_the_worker_naming_both(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    # a caller on one store whose workers ran on another had its units run against the
    # workers' store, silently ("0 validated", then a wait): the unit now names its store
    ours, theirs = tmp_path / "caller-store", tmp_path / "worker-store"
    ours.mkdir()
    theirs.mkdir()
    settings = celery_broker.settings(storage_url=str(ours))
    unit, fine = WorkUnit(LANE, "item", "elsewhere-1"), WorkUnit(LANE, "item", "here-1")
    with start_worker(celery_broker, tmp_path, env={"WORKER_STORAGE_URL": str(theirs)}):
        executor = CeleryExecutor(celery_app(settings, LANE))
        (refused,) = executor.run(lambda unit: None, [unit])
        chained = [WorkUnit(LANE, "item", f"chained-{n}") for n in range(2)]
        executor.submit_chain(chained)  # the chain's later unit carries it too
        deadline = time.monotonic() + 60
        dead = lane_queues(settings, LANE).dead
        while celery_broker.queue_length(dead) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        same = CeleryExecutor(celery_app(celery_broker.settings(storage_url=str(theirs)), LANE))
        (ran,) = same.run(lambda unit: None, [fine])
    assert (ran.status, ran.value) == ("succeeded", {"key": "here-1"})
    assert (refused.status, refused.attempts) == ("failed", 1)  # refused, never retried
    assert isinstance(refused.error, ForeignUnitError)
    said = str(refused.error)
    assert f"made for the store {ours.as_uri()} (storage_url of its sender)" in said
    assert f"this worker's store is {theirs.as_uri()}" in said
    moved = celery_broker.messages(lane_queues(settings, LANE).dead)
    assert sorted(body[0][0]["key"] for _, body in moved) == [
        "chained-0", "chained-1", "elsewhere-1"
    ]  # fmt: skip
    for headers, _ in moved:
        assert headers[DEAD_REASON_HEADER].startswith("ForeignUnitError after 1 attempt(s)")
        assert headers["etl_store"] == ours.as_uri()  # moved back, it is checked again


class _DarkeningRedis:
    """A TCP relay to the machine's Redis that, once :meth:`go_dark` is called, closes the
    connections it relays and takes no new one: its listening socket's backlog is full, so
    a connection attempt's packets are dropped as by a firewall (a host gone silent)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._dark = threading.Event()
        self._serving = threading.Thread(target=self._serve, daemon=True)
        self._serving.start()

    def _serve(self) -> None:
        while not self._dark.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed: gone dark
                return
            upstream = socket.create_connection(self._upstream, timeout=5)
            self._sockets += [client, upstream]
            for one, other in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(one, other), daemon=True).start()

    def _relay(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass

    def go_dark(self) -> None:
        self._dark.set()
        with contextlib.suppress(OSError):  # wakes its accept, which holds the port else
            self._listener.shutdown(socket.SHUT_RDWR)
        self._serving.join(timeout=10)
        self._listener.close()
        for relayed in self._sockets:  # the connections in use end (a failover, a crash)
            with contextlib.suppress(OSError):
                relayed.shutdown(socket.SHUT_RDWR)
        silent = socket.socket()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", self.port))
        silent.listen(0)
        self._sockets.append(silent)
        for _ in range(3):  # fill its backlog: later connection attempts go unanswered
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._sockets.append(filler)

    def close(self) -> None:
        self._dark.set()
        self._listener.close()
        for opened in self._sockets:
            opened.close()


def test_a_result_backend_gone_silent_ends_a_followed_run_within_about_twenty_seconds(
    tmp_path: Path,
) -> None:
    # a result backend whose host drops packets held a followed run ~229 s (measured): its
    # result stream reconnected 20 times, each waiting out the 10 s connect timeout
    with broker_for("redis") as broker:
        parts = urlsplit(broker.url)
        relay = _DarkeningRedis((parts.hostname or "127.0.0.1", parts.port or 6379))
        try:
            settings = broker.settings(
                executor="celery",
                result_backend=ResultBackendURL(f"redis://127.0.0.1:{relay.port}/1"),
            )
            executor = unit_executor(settings, LANE, local=InlineExecutor)
            ended: list[tuple[BaseException, float]] = []

            def follow() -> None:  # no worker: the unit waits on its queue, followed
                try:
                    list(executor.run(lambda unit: None, [WorkUnit(LANE, "item", "waits-2")]))
                except BaseException as error:
                    ended.append((error, time.monotonic()))

            following = threading.Thread(target=follow, daemon=True)
            following.start()
            time.sleep(2.0)  # sent, its result followed on the stream
            relay.go_dark()
            dark_at = time.monotonic()
            following.join(timeout=300)
        finally:
            relay.close()
    ((lost, at),) = ended
    assert isinstance(lost, BrokerLostError), lost
    assert f"redis://127.0.0.1:{relay.port}/1 (result_backend)" in str(lost)
    assert at - dark_at < 40, at - dark_at  # 28-33 s measured; 229 s before


@pytest.mark.parametrize("concurrency", [1, 2])
def test_sigterm_hands_back_a_unit_waiting_for_a_busy_lease_uncounted(
    celery_broker: TestBroker, tmp_path: Path, concurrency: int
) -> None:
    # a warm shutdown waited for the unit's whole lease wait and its retries (over 5 min for
    # a 90 s wait, 3 attempts), and the unit then ended busy, acknowledged; a hand-back would
    # have counted as a delivery, dead-lettering a unit that never failed
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    env = {
        "WORKER_STORAGE_URL": str(store_dir),
        "LEASE_WAIT_SECONDS": "120",
        "WORKER_MAX_DELIVERIES": "1",  # a counted hand-back would dead-letter it
    }
    settings = celery_broker.settings(storage_url=str(store_dir))
    queues = lane_queues(settings, LANE)
    ended: list[UnitResult[Any]] = []

    def follow() -> None:
        executor = CeleryExecutor(celery_app(settings, LANE))
        units = [WorkUnit(LANE, "item", f"leased-{n}") for n in range(1, concurrency + 1)]
        ended.extend(executor.run(lambda unit: None, units))  # each process holds one

    store = LocalObjectStore(store_dir)
    lease = acquire_lease(store, "_state/test/busy.json", ttl=30, purpose="another run")
    following = threading.Thread(target=follow, daemon=True)
    try:
        with start_worker(celery_broker, tmp_path, concurrency, env=env) as first:
            following.start()
            first.wait_for(" received", timeout=60, count=concurrency)
            time.sleep(1.0)  # waiting for the lease
            first.signal(signal.SIGTERM)
            stopped = time.monotonic()
            code = first.process.wait(timeout=300)
            took = time.monotonic() - stopped
            said = first.log()
    finally:
        lease.release()
    assert code == 0
    assert took < 15, took
    assert said.count("handed back to its queue: this worker is shutting down") == concurrency
    with start_worker(celery_broker, tmp_path, env=env):  # the lease is free now
        following.join(timeout=120)
    assert sorted((r.status, r.value["key"]) for r in ended if r.value) == [
        ("succeeded", f"leased-{n}") for n in range(1, concurrency + 1)
    ]
    assert len(ended) == concurrency
    assert celery_broker.queue_length(queues.dead) == 0
    assert not list(store_dir.rglob("deliveries/*.json"))  # its count removed as it ended
