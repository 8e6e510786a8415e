"""The chain across lanes on a real broker: a drop validated by a file-lane worker has its
partition curated by a pipeline worker within seconds, with no scheduler and no import
between the runtimes (the task name and unit of docs/events.md are all they share)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from etl_core.layout import landing_key, manifest_key
from etl_core.storage import open_store
from etl_core.testing.brokers import TestBroker, broker_for
from etl_core.testing.processes import BackgroundProcess

BIN = Path(sys.executable).parent
CONTRACT = """
dataset = "orders"
source = "shop"
pattern = "orders_{date:%Y%m%d}.csv"
format = "csv"

[[columns]]
name = "order_id"
type = "int"
required = true

[[columns]]
name = "amount"
type = "decimal"
precision = 10
scale = 2

[transform]
sql = "SELECT order_id, amount, amount * 2 AS doubled FROM input"
"""

pytestmark = pytest.mark.slow


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ]
)
def broker(request: pytest.FixtureRequest) -> Iterator[TestBroker]:
    with broker_for(str(request.param)) as found:
        yield found


def test_a_validated_drop_is_curated_by_the_chained_transform(
    tmp_path: Path, broker: TestBroker
) -> None:
    (tmp_path / "config" / "datasets").mkdir(parents=True)
    (tmp_path / "config" / "datasets" / "orders.toml").write_text(CONTRACT)
    (tmp_path / "lake").mkdir()
    (tmp_path / "scratch").mkdir()
    env = {
        **os.environ,
        **broker.env(),
        "ETL_STORAGE_URL": str(tmp_path / "lake"),
        "ETL_CONFIG_DIR": str(tmp_path / "config"),
        "ETL_WORK_DIR": str(tmp_path / "scratch"),
        "ETL_LOG_FORMAT": "json",
        "ETL_EXECUTOR": "celery",
        "ETL_DUCKDB_THREADS": "1",
    }
    with open_store(str(tmp_path / "lake")) as store:
        store.write_bytes(
            landing_key("shop", "orders_20261107.csv"), b"order_id,amount\n1,2.50\n2,4.00\n"
        )
        with (
            BackgroundProcess(
                [str(BIN / "etl-file-processing"), "worker", "--concurrency", "1"],
                env=env,
                log=tmp_path / "files.log",
            ) as files,
            BackgroundProcess(
                [str(BIN / "etl-data-pipeline"), "worker"], env=env, log=tmp_path / "pipeline.log"
            ) as pipeline,
        ):
            files.wait_for(" ready.", timeout=90)
            pipeline.wait_for(" ready.", timeout=90)
            scan = subprocess.run(
                [str(BIN / "etl-file-processing"), "scan", "--no-wait"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert scan.returncode == 0, scan.stderr[-3000:]
            pipeline.wait_for('"event": "partition transformed"', timeout=120)
            log = pipeline.log()
        manifest = json.loads(store.read_bytes(manifest_key("orders", date(2026, 11, 7))))
    assert '"event": "enqueued transform orders/2026-11-07"' in files.log()
    assert log.count('"event": "partition transformed"') == 1
    transformed = next(
        json.loads(line) for line in log.splitlines() if '"partition transformed"' in line
    )
    assert (transformed["dt"], transformed["rows"]) == ("2026-11-07", 2)
    assert manifest["generation"]
