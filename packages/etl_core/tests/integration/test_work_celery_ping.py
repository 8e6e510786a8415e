"""A lane's workers answer a ping on a real broker; other lanes', hosts' and dead ones do not."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from etl_core.config import URL
from etl_core.runtime import RuntimeSettings
from etl_core.testing.brokers import BROKER_URLS, TestBroker
from etl_core.testing.processes import BackgroundProcess
from etl_core.testing.services import port_open, service_unavailable
from etl_core.work.celery import (
    BrokerRefusedError,
    BrokerUnreachableError,
    PingUnsupportedError,
    celery_app,
    check_broker,
    ping_workers,
    worker_name,
)
from etl_core.work.celery.config import lane_queues
from etl_core.work.celery.ping import lane_has_workers

WORKER = Path(__file__).with_name("celery_lane_worker.py")
LANE = "test_lane"

pytestmark = pytest.mark.slow


def test_a_running_worker_answers_and_a_stopped_one_does_not(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    app = celery_app(settings, LANE)
    assert ping_workers(app, settings, LANE, timeout=1.0) == []
    assert lane_has_workers(app, settings, LANE, timeout=1.0) is False
    command = [sys.executable, str(WORKER), celery_broker.url, celery_broker.prefix]
    with BackgroundProcess(command, env=os.environ, log=tmp_path / "worker.log") as worker:
        worker.wait_for(" ready.", timeout=60)
        expected = f"{celery_broker.prefix}{LANE}@{socket.gethostname()}.{worker.pid}"
        assert ping_workers(app, settings, LANE, timeout=2.0) == [expected]
        assert ping_workers(app, settings, LANE, timeout=2.0, any_host=True) == [expected]
        assert ping_workers(app, settings, LANE, timeout=1.0, host="elsewhere") == []
        assert ping_workers(app, settings, "file_processing", timeout=1.0) == []
        assert lane_has_workers(app, settings, LANE, timeout=2.0) is True
        worker.signal(signal.SIGTERM)  # a warm shutdown: the worker leaves the broker
        assert worker.wait(timeout=60) == 0
    assert ping_workers(app, settings, LANE, timeout=1.0) == []


def test_the_worker_name_holds_queue_host_and_process() -> None:
    settings = RuntimeSettings(queue_prefix="staging.")
    assert (
        worker_name(settings, "data_pipeline", host="box")
        == f"staging.data_pipeline@box.{os.getpid()}"
    )


def test_an_unreachable_broker_is_said_within_the_timeout() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings = RuntimeSettings(broker_url=URL(f"redis://127.0.0.1:{port}/0"))
    started = time.monotonic()
    with pytest.raises(BrokerUnreachableError, match=f"127.0.0.1:{port}"):
        ping_workers(celery_app(settings, LANE), settings, LANE, timeout=1.0)
    assert time.monotonic() - started < 30


@contextlib.contextmanager
def _silent_listener() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never says a word."""
    accepted: list[socket.socket] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(0.2)
        done = threading.Event()

        def accept() -> None:
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    accepted.append(server.accept()[0])

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield server.getsockname()[1]
        finally:
            done.set()
            thread.join(timeout=5)
            for connection in accepted:
                connection.close()


def test_a_redis_broker_that_accepts_and_never_answers_is_said_within_the_timeout() -> None:
    # the connect succeeded and its PING then waited for ever: a command never started
    with _silent_listener() as port:
        settings = RuntimeSettings(broker_url=URL(f"redis://127.0.0.1:{port}/0"))
        ended = _raised_within(
            20, lambda: check_broker(celery_app(settings, LANE), settings, timeout=1.0)
        )
    assert isinstance(ended, BrokerUnreachableError)
    assert f"127.0.0.1:{port}" in str(ended)


def test_a_worker_whose_redis_accepts_and_never_answers_ends_at_its_start_up_check(
    tmp_path: Path,
) -> None:
    # it waited its start-up check out, then its consumer waited for the server's first
    # reply for ever, without a word; then (REDIS_READ_TIMEOUT) it said so ~25 s later and
    # retried; now (issue 15) the failed check ends it at once, naming broker_url
    with _silent_listener() as port:
        url = f"redis://127.0.0.1:{port}/0"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(WORKER), url, "silent."],
            env=os.environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode != 0
    assert time.monotonic() - started < 20
    assert f"127.0.0.1:{port}/0 did not answer within 5s (check broker_url)" in done.stderr


@pytest.mark.redis
def test_a_redis_database_the_server_does_not_have_is_a_configuration_error() -> None:
    # a mistyped database number: the server answers and refuses it; waiting for it to
    # "come back" (a worker retrying for minutes, exit 1 for a command) would never end
    parts = urlsplit(BROKER_URLS["redis"])
    if not port_open(parts.hostname or "127.0.0.1", parts.port or 6379):
        service_unavailable("Redis", f"nothing listens at {parts.netloc}")
    url = f"redis://{parts.netloc}/4096"
    settings = RuntimeSettings(broker_url=URL(url))
    with pytest.raises(BrokerRefusedError, match="4096") as refused:
        check_broker(celery_app(settings, LANE), settings, timeout=5.0)
    assert refused.value.fields == ("broker_url",)
    assert "database" in str(refused.value)


def _service_netloc(kind: str, name: str) -> str:
    """The host:port (with user-info) of the machine's ``kind`` broker; skipped if down."""
    parts = urlsplit(BROKER_URLS[kind])
    if not port_open(parts.hostname or "127.0.0.1", parts.port or 0):
        service_unavailable(name, f"nothing listens at {parts.netloc}")
    return parts.netloc


@pytest.mark.parametrize(
    ("kind", "name", "scheme", "path"),
    [
        pytest.param(
            "redis", "Redis", "rediss", "/0?ssl_cert_reqs=required", marks=pytest.mark.redis
        ),
        pytest.param("rabbitmq", "RabbitMQ", "amqps", "//", marks=pytest.mark.rabbitmq),
        # issue 15: the other protocol's port: its greeting left the server waiting (exit 1
        # after twice the timeout, "did not answer")
        pytest.param(
            "rabbitmq", "RabbitMQ", "rediss", "/0?ssl_cert_reqs=none", marks=pytest.mark.rabbitmq
        ),
        pytest.param("redis", "Redis", "amqps", "//", marks=pytest.mark.redis),
    ],
)
def test_a_tls_url_at_a_plain_text_port_fails_fast(
    kind: str, name: str, scheme: str, path: str
) -> None:
    # rediss:// at Redis's plain port waited for a TLS handshake that never came (minutes)
    netloc = _service_netloc(kind, name)
    settings = RuntimeSettings(broker_url=URL(f"{scheme}://{netloc}{path}"))
    started = time.monotonic()
    with pytest.raises(BrokerRefusedError, match="asks for TLS") as refused:
        check_broker(celery_app(settings, LANE), settings, timeout=5.0)
    assert time.monotonic() - started < 8  # the check's 5 s, and the plain-text probe
    assert refused.value.fields == ("broker_url",)
    assert "speaks plain text" in str(refused.value)
    password = urlsplit(f"{scheme}://{netloc}").password
    assert not password or f":{password}@" not in str(refused.value)  # hidden


@pytest.mark.redis
def test_a_result_backend_database_the_server_does_not_have_is_a_configuration_error() -> None:
    netloc = _service_netloc("redis", "Redis")
    settings = RuntimeSettings(
        broker_url=URL(f"redis://{netloc}/0"), result_backend=URL(f"redis://{netloc}/99")
    )
    with pytest.raises(BrokerRefusedError, match="99") as refused:
        check_broker(celery_app(settings, LANE), settings, timeout=5.0)
    assert refused.value.fields == ("result_backend",)
    assert "the result backend" in str(refused.value)


def test_a_broker_without_broadcast_is_refused() -> None:
    settings = RuntimeSettings(
        broker_url=URL("sqs://sqs.eu-west-1.amazonaws.com"),
        result_backend=URL("redis://127.0.0.1:6379/0"),
    )
    with pytest.raises(PingUnsupportedError, match="sqs://"):
        ping_workers(object(), settings, LANE, timeout=1.0)


class _CuttableProxy:
    """A TCP relay to a broker whose open connections can be cut (as a load balancer's idle
    timeout or a broker's restart cuts them) while it keeps accepting new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close every connection relayed so far (a client sees its broker hang up)."""
        relayed, self.open = self.open, []
        for sock in relayed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()
        self.cut()


def test_a_connection_the_broker_drops_after_the_check_does_not_fail_the_first_send(
    celery_broker: TestBroker,
) -> None:
    from kombu import pools

    from etl_core.work import InlineExecutor, unit_executor
    from etl_core.work.celery import CeleryExecutor

    parts = urlsplit(celery_broker.url)
    proxy = _CuttableProxy(parts.hostname or "127.0.0.1", parts.port or 0)
    relayed = celery_broker.url.replace(f":{parts.port}", f":{proxy.port}", 1)
    settings = celery_broker.settings(broker_url=URL(relayed), executor="celery")
    pools.reset()
    try:
        executor = unit_executor(settings, LANE, local=InlineExecutor)  # checks the broker
        assert isinstance(executor, CeleryExecutor)
        proxy.cut()  # between the check and the first send (the backfill's planning)
        time.sleep(0.2)
        queue = lane_queues(settings, LANE).work
        executor.app.send_task("test_lane.run_unit", args=[{}], queue=queue)  # as run() sends
        assert celery_broker.queue_length(queue) == 1
    finally:
        pools.reset()
        proxy.close()


def test_a_followed_run_whose_lane_has_no_worker_says_so(
    celery_broker: TestBroker, caplog: pytest.LogCaptureFixture
) -> None:
    from etl_core.work import WorkUnit
    from etl_core.work.celery import CeleryExecutor

    settings = celery_broker.settings()
    app = celery_app(settings, LANE)
    asked: list[bool | None] = []

    class StopFollowingError(Exception):
        pass

    def workers_of(lane: str) -> bool | None:
        if asked:
            raise StopFollowingError  # the warning of the first quiet period is what is checked
        asked.append(lane_has_workers(app, settings, lane, timeout=1.0))
        return asked[-1]

    executor = CeleryExecutor(app, workers_of=workers_of, quiet_after=0.3, drain_timeout=0.5)
    units = [WorkUnit(lane=LANE, kind="noop", key=f"k{n}", params={}) for n in range(2)]
    with (
        caplog.at_level("WARNING", logger="etl_core.work.celery.executor"),
        pytest.raises(StopFollowingError),
    ):
        list(executor.run(lambda unit: None, units))
    assert asked == [False]
    (said,) = [r.getMessage() for r in caplog.records if "no unit has ended" in r.getMessage()]
    assert f"2 unit(s) wait on queue '{celery_broker.prefix}{LANE}'" in said
    assert "etl-test-lane worker" in said


def test_a_ping_to_a_redis_broker_that_accepts_and_never_answers_is_said_within_the_timeout() -> (
    None
):
    # a followed run asks whether its lane has workers: a broker gone silent (its
    # connections left open) held that question, and the run, for ever
    with _silent_listener() as port:
        settings = RuntimeSettings(broker_url=URL(f"redis://127.0.0.1:{port}/0"))
        ended = _raised_within(
            20, lambda: ping_workers(celery_app(settings, LANE), settings, LANE, timeout=1.0)
        )
    assert isinstance(ended, BrokerUnreachableError)


def _raised_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """What ``call`` raised (``None`` if it returned), failing the test if it still runs
    after ``seconds`` (it runs on a daemon thread, so a hang cannot hold the suite)."""
    ended: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except Exception as exc:
            ended.append(exc)
        else:
            ended.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    assert ended, f"still waiting after {seconds} s"
    return ended[0]
