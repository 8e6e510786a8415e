"""``etl-file-processing process`` exporting its metrics through the configured exporters.

A StatsD agent is a UDP socket bound on 127.0.0.1 by the test; CloudWatch's EMF lines are
read from the command's stdout, where Lambda and ECS's awslogs driver read them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent / "etl-file-processing"


@pytest.fixture
def agent() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


def _process(
    lane: Any, key: str, env: dict[str, str], *options: str
) -> subprocess.CompletedProcess[str]:
    command = [str(BIN), "--storage", lane.store.url, "--config-dir", str(lane.config_dir)]
    environ = {**os.environ, "ETL_LOG_FORMAT": "json", "ETL_WORK_DIR": str(lane.tmp), **env}
    return subprocess.run(
        [*command, "process", key, *options],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def _datagrams(sock: socket.socket) -> list[str]:
    """Every line the agent received (the command has exited: all of it was sent)."""
    sock.setblocking(False)
    lines: list[str] = []
    for _ in range(10_000):
        try:
            lines += sock.recv(65535).decode("utf-8").splitlines()
        except BlockingIOError:
            break
    return lines


def test_process_sends_its_metrics_to_a_statsd_agent_and_as_emf_on_stdout(
    local_lane: Any, orders: Callable[..., bytes], agent: socket.socket
) -> None:
    key = local_lane.deliver("orders_20261101.csv", orders(5))
    env = {
        "ETL_METRICS_EXPORTERS": "statsd,emf",
        "ETL_STATSD_ADDRESS": f"127.0.0.1:{agent.getsockname()[1]}",
        "ETL_STATSD_PREFIX": "prod.",
        "ETL_EMF_NAMESPACE": "etl/test",
    }

    done = _process(local_lane, key, env)

    assert done.returncode == 0, done.stderr
    lines = _datagrams(agent)
    assert "prod.etl_file_processing_rows_total:5|c|#dataset:orders,fate:valid" in lines, lines
    objects = [line for line in lines if line.startswith("prod.etl_file_processing_objects_total")]
    assert objects == [
        "prod.etl_file_processing_objects_total:1|c|#dataset:orders,outcome:validated,reason"
    ]
    emf = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"_aws"')]
    rows = [doc for doc in emf if doc.get("fate") == "valid"]
    assert [doc["etl_file_processing_rows_total"] for doc in rows] == [5]
    assert rows[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "etl/test"
    assert rows[0]["etl_job"] == "etl_file_processing_process"


def _json_values(text: str) -> list[Any]:
    """The JSON values of ``text`` one after the other, as ``jq`` reads a stream."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    for _ in range(len(text) + 1):  # each value takes one character at least
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return values
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    raise AssertionError("unreachable: the stream ended")


def test_process_json_with_emf_on_stdout_prints_the_emf_lines_before_its_document(
    local_lane: Any, orders: Callable[..., bytes]
) -> None:
    """What the root README's ``emf_output`` row tells a reader of ``--json`` on stdout:
    the EMF lines come first, one per line, then the command's indented document."""
    key = local_lane.deliver("orders_20261101.csv", orders(5))

    done = _process(local_lane, key, {"ETL_METRICS_EXPORTERS": "emf"}, "--json")

    assert done.returncode == 0, done.stderr
    values = _json_values(done.stdout)
    assert len(values) >= 2, values
    assert all("_aws" in value for value in values[:-1]), values
    assert values[-1]["status"] == "validated"
    emf_lines = [line for line in done.stdout.splitlines() if line.startswith('{"_aws"')]
    assert len(emf_lines) == len(values) - 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(done.stdout)  # one document it is not


def test_an_unreachable_exporter_does_not_fail_the_job(
    local_lane: Any, orders: Callable[..., bytes]
) -> None:
    key = local_lane.deliver("orders_20261101.csv", orders(5))
    env = {
        "ETL_METRICS_EXPORTERS": "statsd,emf",
        "ETL_STATSD_ADDRESS": "no-such-host.invalid:8125",
        "ETL_EMF_OUTPUT": str(local_lane.tmp / "no such directory" / "emf.log"),
    }

    done = _process(local_lane, key, env)

    assert done.returncode == 0, done.stderr
    warnings = [json.loads(line) for line in done.stderr.splitlines()]
    failed = [w["event"] for w in warnings if "metrics not exported" in w.get("event", "")]
    assert len(failed) == 2
    assert "no-such-host.invalid:8125" in failed[0]
    assert "emf.log" in failed[1]


def test_a_mistyped_exporter_exits_2_naming_the_setting(local_lane: Any) -> None:
    done = _process(local_lane, "landing/vendor/x.csv", {"ETL_METRICS_EXPORTERS": "statds"})

    assert done.returncode == 2
    assert "metrics_exporters" in done.stderr
    assert "statds" in done.stderr
