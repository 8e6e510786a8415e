"""``ingest --executor celery``: API endpoint windows as units on a real ``worker``, waited
for (the same JSON summary as a local run) or enqueued as a chain (``--no-wait``) that
lands every record of every window once."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from etl_core.testing.brokers import TestBroker
from etl_core.testing.processes import BackgroundProcess

from .conftest import SECRETS

BIN = Path(sys.executable).parent / "etl-data-pipeline"
SOURCE = """
[auth]
type = "bearer"
token = "env:SHOP_TOKEN"

[[endpoints]]
name = "items"
path = "/offset"
dataset = "shop_items"
records_path = "items"
chunk_records = 10
[endpoints.pagination]
type = "offset"
page_size = 5
[endpoints.incremental]
cursor_field = "updated_at"
param = "since"
end_param = "until"
window = "15m"
"""

pytestmark = pytest.mark.slow


def environment(workspace: Any, broker: TestBroker) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("ETL_")},
        **broker.env(),
        "ETL_STORAGE_URL": f"file://{workspace.store_dir}",
        "ETL_CONFIG_DIR": str(workspace.config),
        "ETL_LOG_FORMAT": "json",
        "SHOP_TOKEN": SECRETS["token"],
    }


def ingest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "ingest", "--executor", "celery", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_windows_run_on_a_worker_land_every_record_once(
    workspace: Any, api: Any, celery_broker: TestBroker
) -> None:
    api.auth = "bearer"
    workspace.source(SOURCE, endpoints=("items",))
    env = environment(workspace, celery_broker)
    window = ["--since", "2026-03-01T00:00:00Z", "--until", "2026-03-01T01:00:00Z"]
    log = workspace.root / "worker.log"
    with BackgroundProcess([str(BIN), "worker"], env=env, log=log) as worker:
        worker.wait_for(" ready.", timeout=90)
        waited = ingest(env, "--json", "--endpoint", "items", "--source", "shop")
        assert waited.returncode == 0, waited.stderr[-3000:]
        (done,) = json.loads(waited.stdout)["windows"]
        assert done["records"] == len(api.records)
        assert workspace.landed("items") == api.records
        chained = ingest(env, "--no-wait", *window)
        assert chained.returncode == 0, chained.stderr[-3000:]
        assert "enqueued 4 window(s)" in chained.stdout
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.log().count(" succeeded in ") < 5:
            time.sleep(0.2)
        text = worker.log()
    assert text.count(" succeeded in ") == 5
    ran = re.findall(r"window (shop/items/\S+\.\.\S+): \d+ records", text)
    assert len(ran) == 4, text[-3000:]
    assert ran == sorted(ran)  # one after another, in window order
    landed = workspace.landed("items")
    assert sorted(r["id"] for r in landed) == sorted([r["id"] for r in api.records] * 2)


def test_a_bounded_window_behind_a_live_run_waits_for_it_and_lands_once(
    workspace: Any, api: Any, celery_broker: TestBroker
) -> None:
    """Issue 15: a window whose endpoint another live run holds was retried and then
    dead-lettered; it now waits while that run renews its lease, and runs once it ends."""
    from data_pipeline.ingest import lease_key
    from etl_core.storage import acquire_lease

    api.auth = "bearer"
    workspace.source(SOURCE, endpoints=("items",))
    env = {**environment(workspace, celery_broker), "ETL_TASK_ATTEMPTS": "1"}
    window = ["--since", "2026-03-01T00:00:00Z", "--until", "2026-03-01T00:15:00Z"]
    log = workspace.root / "worker.log"
    with BackgroundProcess([str(BIN), "worker"], env=env, log=log) as worker:
        worker.wait_for(" ready.", timeout=90)
        holder = acquire_lease(
            workspace.store, lease_key("shop", "items"), ttl=30, purpose="another run"
        )
        with holder:
            follower = subprocess.Popen(
                [str(BIN), "ingest", "--executor", "celery", "--json", *window],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            worker.wait_for(" received", timeout=60)  # the worker has the window
            time.sleep(2)  # it is waiting, not failing
            assert follower.poll() is None, follower.communicate()[1][-3000:]
        out, err = follower.communicate(timeout=60)
        text = worker.log()
    assert follower.returncode == 0, err[-3000:]
    assert "dead-letter" not in text
    (done,) = json.loads(out)["windows"]
    assert done["records"] > 0
    assert celery_broker.queue_length("data_pipeline.dead") == 0
    assert len(workspace.landed("items")) == done["records"]


def _free_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


def test_a_broker_lost_while_following_a_run_is_said_and_the_command_ends_quickly(
    workspace: Any, api: Any, tmp_path: Path
) -> None:
    """Issue 15: a private Redis (never the machine's) killed while ``ingest`` follows its
    windows was "unexpected error", and the revoke at the end added ~20 s. The run waits
    out a restart (``FOLLOWER_RETRY_POLICY``, ~20 s), then says it lost the broker."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    redis = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        api.auth = "bearer"
        workspace.source(SOURCE, endpoints=("items",))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ETL_")},
            "ETL_BROKER_URL": f"redis://127.0.0.1:{port}/0",
            "ETL_STORAGE_URL": f"file://{workspace.store_dir}",
            "ETL_CONFIG_DIR": str(workspace.config),
            "ETL_LOG_FORMAT": "json",
            "SHOP_TOKEN": SECRETS["token"],
        }
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the server is up
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        follower = subprocess.Popen(
            [str(BIN), "ingest", "--executor", "celery"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _queued(port, "data_pipeline"):
            time.sleep(0.1)  # no worker: the window waits on its queue, followed
        assert follower.poll() is None, follower.communicate()[1][-3000:]
        redis.kill()
        redis.wait(timeout=10)
        lost = time.monotonic()
        _, stderr = follower.communicate(timeout=120)
        ended_in = time.monotonic() - lost
    finally:
        if redis.poll() is None:
            redis.kill()
            redis.wait(timeout=10)
    assert follower.returncode == 1, stderr[-3000:]
    assert ended_in < 35, (ended_in, stderr[-3000:])  # ~20 s of reconnections, no revoke
    assert "unexpected error" not in stderr
    assert "Traceback" not in stderr
    assert "lost the broker redis://" in stderr
    assert f"127.0.0.1:{port}/0 (broker_url) while following the run" in stderr
    assert "0 of 1 unit(s) finished" in stderr
    assert "may still run on the workers" in stderr
    assert "etl-data-pipeline ping" in stderr


def _queued(port: int, queue: str) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(f"LLEN {queue}\r\n".encode())
        answer = connection.recv(64)
    return answer.startswith(b":") and int(answer[1:].split(b"\r\n")[0]) > 0
