"""``ingest --executor celery`` of a source whose API key goes in the query, with a worker
logging at DEBUG and an API echoing the key in its next links: the key is in none of the
worker's lines (httpx's request line included), the command's output, the store, or what
the broker and the result backend hold."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from etl_core.testing.brokers import broker_for
from etl_core.testing.processes import BackgroundProcess

from .conftest import SECRETS

BIN = Path(sys.executable).parent / "etl-data-pipeline"
KEY = SECRETS["api_key"]
SOURCE = """
[auth]
type = "api_key"
key = "env:SHOP_KEY"
location = "query"

[[endpoints]]
name = "items"
path = "/next"
dataset = "shop_items"
records_path = "results"
chunk_records = 10
[endpoints.pagination]
type = "next_url"
next_url_path = "links.next"
size_param = "per_page"
page_size = 5
"""

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def redis_values(url: str) -> bytes:
    """Every result the backend keeps and every message on the broker's queues, joined."""
    import redis

    client = redis.Redis.from_url(url)
    found = []
    for name in client.scan_iter(count=1000):
        kind = client.type(name)
        if kind == b"string":
            found.append(client.get(name) or b"")
        elif kind == b"list":
            found.extend(client.lrange(name, 0, 10_000))
        elif kind == b"hash":
            found.extend(client.hgetall(name).values())
    return b"\n".join(found)


def test_a_worker_at_debug_writes_the_query_key_nowhere(workspace: Any, api: Any) -> None:
    api.auth = "api_key_query"
    api.echo_key = True
    workspace.source(SOURCE, endpoints=("items",))
    with broker_for("redis") as broker:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ETL_")},
            **broker.env(),
            "ETL_STORAGE_URL": f"file://{workspace.store_dir}",
            "ETL_CONFIG_DIR": str(workspace.config),
            "ETL_LOG_FORMAT": "json",
            "ETL_LOG_LEVEL": "DEBUG",
            "SHOP_KEY": KEY,
        }
        log = workspace.root / "worker.log"
        with BackgroundProcess([str(BIN), "worker"], env=env, log=log) as worker:
            worker.wait_for(" ready.", timeout=90)
            ran = subprocess.run(
                [str(BIN), "ingest", "--executor", "celery", "--json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            text = worker.log()
        held = redis_values(broker.url)

    assert ran.returncode == 0, ran.stderr[-3000:]
    assert len(workspace.landed("items")) == len(api.records)
    assert all(r["query"].get("api_key") == KEY for r in api.requests)
    assert "api_key=***" in text  # the worker's DEBUG lines name the parameter, masked
    assert KEY not in text
    assert KEY not in ran.stdout + ran.stderr
    assert KEY.encode() not in held
    for info in workspace.store.list(""):
        data = workspace.store.read_bytes(info.key)
        assert KEY.encode() not in (gzip.decompress(data) if info.key.endswith(".gz") else data)
