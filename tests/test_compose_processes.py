"""The compose stack's platform services started as local processes, as compose declares
them (command, environment, order), against the machine's PostgreSQL and Redis and moto's
S3 server: the retail example flows through every lane and the status service sees it.

Only the addresses change (``minio:9000`` → the moto server, ``postgres`` → a fresh
database, ``redis`` → the machine's Redis with a queue prefix of this test's own,
``example:8000`` → a free local port) and the schedulers' intervals shrink, so the test
ends in minutes. The runtimes are the ones installed here; tests/test_packaging.py proves
the images install the same commands from the same wheelhouse.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from compose_file import commands, platform_services
from repo_layout import REPO

from etl_core.storage import ObjectStore, open_store
from etl_core.testing.brokers import TestBroker, broker_for
from etl_core.testing.fixtures import postgres_server_url, postgres_url, s3_endpoint
from etl_core.testing.ports import free_port
from etl_core.testing.processes import BackgroundProcess
from etl_core.testing.s3 import create_bucket

__all__ = ["postgres_server_url", "postgres_url", "s3_endpoint"]  # fixtures used below

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]

BIN = Path(sys.executable).parent
FASTER = {  # the schedulers' timetable, shortened for a test
    "ETL_SCHEDULE_SCAN_INTERVAL": "5s",
    "ETL_SCHEDULE_RUN_INTERVAL": "10s",
    "ETL_SCHEDULE_CHECK_INTERVAL": "10s",
    "ETL_EVALUATION_INTERVAL": "5s",
}
QUARANTINED = {"data.quality", "pgp.no_key", "archive.path_traversal", "contract.unmatched"}
GOOD_DAYS = 7  # 11-01 .. 11-06 and 11-11 (examples/retail/README.md)
DEADLINE = 420.0


class Stack:
    """compose's addresses, rewritten for this machine."""

    def __init__(self, endpoint: str, database: str, broker: TestBroker, work: Path) -> None:
        self.bucket = create_bucket(endpoint, prefix="etl-compose")
        self.endpoint = endpoint
        self.database = database
        self.broker = broker
        self.config = work / "config"
        self.config.mkdir()
        self.api_port = free_port()
        self.serve_port = free_port()

    def value(self, text: str) -> str:
        text = text.replace("http://minio:9000", self.endpoint)
        text = re.sub(r"^s3://[^/]+", f"s3://{self.bucket}", text)
        text = re.sub(r"^postgresql://[^@]+@postgres:5432/\w+$", self.database, text)
        text = text.replace("redis://redis:6379/0", self.broker.url)
        return text.replace("http://example:8000", f"http://127.0.0.1:{self.api_port}")

    def env(self, service: dict[str, Any]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
        env.pop("DATABASE_URL", None)
        for name, value in (service.get("environment") or {}).items():
            env[name] = self.value(str(value))
        env |= FASTER | {"ETL_CONFIG_DIR": str(self.config), "ETL_QUEUE_PREFIX": self.broker.prefix}
        if "ETL_SERVE_PORT" in env:
            env |= {"ETL_SERVE_PORT": str(self.serve_port), "ETL_SERVE_HOST": "127.0.0.1"}
        return env

    def program(self, command: list[str]) -> list[str]:
        """A command of the stack as a local process (same program, local addresses)."""
        head = [sys.executable] if command[0] == "python" else [str(BIN / command[0])]
        rest = [self.value(a) for a in command[1:]]
        for flag, local in (("--host", "127.0.0.1"), ("--port", str(self.api_port))):
            if flag in rest and command[0] == "python":
                rest[rest.index(flag) + 1] = local
        return head + rest


@pytest.fixture
def stack(
    s3_endpoint: str, postgres_url: str, tmp_path: Path
) -> Iterator[tuple[Stack, Callable[[str, list[str], dict[str, str]], BackgroundProcess]]]:
    with broker_for("redis") as broker, contextlib.ExitStack() as running:
        local = Stack(s3_endpoint, postgres_url, broker, tmp_path)

        def start(name: str, program: list[str], env: dict[str, str]) -> BackgroundProcess:
            process = BackgroundProcess(program, env=env, log=tmp_path / f"{name}.log")
            running.enter_context(process)
            return process

        yield local, start


def run_once(program: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(program, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (program, done.stdout, done.stderr[-4000:])


def status(stack: Stack) -> dict[str, Any]:
    url = f"http://127.0.0.1:{stack.serve_port}/api/status"
    with urllib.request.urlopen(url, timeout=10) as response:
        document: dict[str, Any] = json.load(response)
    return document


def keys(store: ObjectStore, prefix: str) -> list[str]:
    return [item.key for item in store.list(prefix)]


def everything_flowed(stack: Stack, store: ObjectStore) -> bool:
    manifests = [k for k in keys(store, "validated/pos_transactions/") if "/_deliveries/" in k]
    curated = [k for k in keys(store, "curated/") if k.endswith("_manifest.json")]
    footfall = [k for k in curated if k.startswith("curated/retail_store_footfall/")]
    try:
        levels = {d["dataset"]: d["level"] for d in status(stack)["datasets"]}
    except OSError:
        return False
    return (
        len(manifests) == GOOD_DAYS
        and len(curated) >= GOOD_DAYS + 1
        and bool(footfall)
        and levels.get("retail_store_footfall") == "ok"
        and "pos_transactions" in levels
    )


def wait_for_port(port: int, process: BackgroundProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.process.poll() is None, process.log()[-4000:]
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}:\n{process.log()[-4000:]}")


def test_the_stack_runs_the_example_through_every_lane(stack: Any) -> None:
    local, start = stack
    services = platform_services()
    migrate, image = services["migrate"]
    for step in commands(migrate, image):
        run_once(local.program(step), local.env(migrate))
    example, image = services["example"]
    *prepare, serve_api = commands(example, image)
    for step in prepare:
        run_once(local.program(step), local.env(example))
    wait_for_port(local.api_port, start("example", local.program(serve_api), local.env(example)))
    for name, (service, image) in sorted(services.items()):
        if name not in {"migrate", "example"}:
            [command] = commands(service, image)
            start(name, local.program(command), local.env(service))

    with open_store(f"s3://{local.bucket}", endpoint_url=local.endpoint) as store:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and not everything_flowed(local, store):
            time.sleep(5)
        assert everything_flowed(local, store), "the example did not flow through every lane"
        reasons = {
            json.loads(store.read_bytes(key))["reason"]
            for key in keys(store, "quarantine/")
            if key.endswith(".quarantine.json")
        }
        assert reasons == QUARANTINED
        assert keys(store, "raw/api/retail_footfall/")
    levels = {d["dataset"]: d["level"] for d in status(local)["datasets"]}
    assert levels["pos_transactions"] == "critical"  # judged now: the example's days are past
    assert levels["retail_store_footfall"] == "ok"
    assert_loaded(local.database)
    assert_healthy(local, services)


def assert_loaded(database: str) -> None:
    import psycopg

    with psycopg.connect(database) as connection:
        for table in ("retail_sales_transaction", "retail_store_footfall"):
            [(rows,)] = connection.execute(f"SELECT count(*) FROM {table}").fetchall()
            assert rows > 0, table


def assert_healthy(local: Stack, services: dict[str, Any]) -> None:
    """The health checks compose and the images declare pass against the running stack."""
    serve, _ = services["observability"]
    run_once(local.program(serve["healthcheck"]["test"][1:]), local.env(serve))
    for name in ("file-processing-worker", "data-pipeline-worker", "observability-worker"):
        service, image = services[name]
        run_once([str(BIN / image.name), "ping", "--timeout", "5"], local.env(service))
