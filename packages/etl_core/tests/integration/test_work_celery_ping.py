"""A lane's workers answer a ping on a real broker; other lanes', hosts' and dead ones do not."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from etl_core.config import URL
from etl_core.runtime import RuntimeSettings
from etl_core.testing.brokers import TestBroker
from etl_core.testing.processes import BackgroundProcess
from etl_core.work.celery import (
    BrokerUnreachableError,
    PingUnsupportedError,
    celery_app,
    check_broker,
    ping_workers,
    worker_name,
)

WORKER = Path(__file__).with_name("celery_lane_worker.py")
LANE = "test_lane"

pytestmark = pytest.mark.slow


def test_a_running_worker_answers_and_a_stopped_one_does_not(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    app = celery_app(settings, LANE)
    assert ping_workers(app, settings, LANE, timeout=1.0) == []
    command = [sys.executable, str(WORKER), celery_broker.url, celery_broker.prefix]
    with BackgroundProcess(command, env=os.environ, log=tmp_path / "worker.log") as worker:
        worker.wait_for(" ready.", timeout=60)
        expected = f"{celery_broker.prefix}{LANE}@{socket.gethostname()}.{worker.pid}"
        assert ping_workers(app, settings, LANE, timeout=2.0) == [expected]
        assert ping_workers(app, settings, LANE, timeout=2.0, any_host=True) == [expected]
        assert ping_workers(app, settings, LANE, timeout=1.0, host="elsewhere") == []
        assert ping_workers(app, settings, "file_processing", timeout=1.0) == []
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


def test_a_command_s_broker_check_leaves_its_connection_to_the_sends(
    celery_broker: TestBroker,
) -> None:
    from kombu import pools

    settings = celery_broker.settings()
    pools.reset()  # the apps of one broker share kombu's pool: start from an empty one
    app = celery_app(settings, LANE)
    check_broker(app, settings)  # a worker's check: its connection is not kept
    with app.pool.acquire(block=True, timeout=5) as connection:
        assert not connection.connected
    pools.reset()
    app = celery_app(settings, LANE)
    check_broker(app, settings, keep=True, timeout=1.5)
    with app.pool.acquire(block=True, timeout=5) as connection:
        assert connection.connected  # the first send connects no more
        assert connection.connect_timeout == app.conf.broker_connection_timeout
    pools.reset()


def test_a_broker_without_broadcast_is_refused() -> None:
    settings = RuntimeSettings(
        broker_url=URL("sqs://sqs.eu-west-1.amazonaws.com"),
        result_backend=URL("redis://127.0.0.1:6379/0"),
    )
    with pytest.raises(PingUnsupportedError, match="sqs://"):
        ping_workers(object(), settings, LANE, timeout=1.0)
