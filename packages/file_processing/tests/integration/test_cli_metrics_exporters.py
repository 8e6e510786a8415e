"""``etl-file-processing process`` exporting its metrics through the configured exporters.

A StatsD agent is a UDP socket bound on 127.0.0.1 by the test; CloudWatch's EMF lines are
read from the command's stderr (by default) or stdout, where Lambda and ECS's awslogs driver
read them both.
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

from etl_core.testing.statsd import agent_address, drained, statsd_agent

BIN = Path(sys.executable).parent / "etl-file-processing"


@pytest.fixture
def agent() -> Iterator[socket.socket]:
    with statsd_agent() as sock:
        yield sock


def _process(lane: Any, key: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run(lane, ["process", key], env)


def _run(lane: Any, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [str(BIN), "--storage", lane.store.url, "--config-dir", str(lane.config_dir)]
    environ = {**os.environ, "ETL_LOG_FORMAT": "json", "ETL_WORK_DIR": str(lane.tmp), **env}
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def test_process_sends_its_metrics_to_a_statsd_agent_and_as_emf_on_stderr(
    local_lane: Any, orders: Callable[..., bytes], agent: socket.socket
) -> None:
    key = local_lane.deliver("orders_20261101.csv", orders(5))
    env = {
        "ETL_METRICS_EXPORTERS": "statsd,emf",
        "ETL_STATSD_ADDRESS": agent_address(agent),
        "ETL_STATSD_PREFIX": "prod.",
        "ETL_EMF_NAMESPACE": "etl/test",
    }

    done = _process(local_lane, key, env)

    assert done.returncode == 0, done.stderr
    lines = drained(agent)  # the command has exited: all of it was sent
    assert "prod.etl_file_processing_rows_total:5|c|#dataset:orders,fate:valid" in lines, lines
    objects = [line for line in lines if line.startswith("prod.etl_file_processing_objects_total")]
    assert objects == [
        "prod.etl_file_processing_objects_total:1|c|#dataset:orders,outcome:validated,reason"
    ]
    assert '"_aws"' not in done.stdout  # stdout is the command's own output
    emf = [json.loads(line) for line in done.stderr.splitlines() if line.startswith('{"_aws"')]
    rows = [doc for doc in emf if doc.get("fate") == "valid"]
    assert [doc["etl_file_processing_rows_total"] for doc in rows] == [5]
    assert rows[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "etl/test"
    assert rows[0]["etl_job"] == "etl_file_processing_process"


def test_an_unreachable_exporter_does_not_fail_the_job(
    local_lane: Any, orders: Callable[..., bytes]
) -> None:
    key = local_lane.deliver("orders_20261101.csv", orders(5))
    env = {
        "ETL_METRICS_EXPORTERS": "statsd,emf",
        "ETL_STATSD_ADDRESS": "no-such-host.invalid:8125",
        "ETL_EMF_OUTPUT": "/dev/full",  # every write fails: no space left on device
    }

    done = _process(local_lane, key, env)

    assert done.returncode == 0, done.stderr
    warnings = [json.loads(line) for line in done.stderr.splitlines()]
    failed = [w["event"] for w in warnings if "metrics not exported" in w.get("event", "")]
    assert len(failed) == 2
    assert "no-such-host.invalid:8125" in failed[0]
    assert "/dev/full" in failed[1]


def test_a_mistyped_exporter_exits_2_naming_the_setting(local_lane: Any) -> None:
    done = _process(local_lane, "landing/vendor/x.csv", {"ETL_METRICS_EXPORTERS": "statds"})

    assert done.returncode == 2
    assert "metrics_exporters" in done.stderr
    assert "statds" in done.stderr


def _emf_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_process_json_stays_one_document_when_emf_is_asked_on_stdout(
    local_lane: Any, orders: Callable[..., bytes]
) -> None:
    """``--json`` prints its document on stdout: EMF lines go to stderr (CloudWatch reads
    both), where they would have followed the document and broken it for ``jq``."""
    key = local_lane.deliver("orders_20261101.csv", orders(5))
    env = {"ETL_METRICS_EXPORTERS": "emf", "ETL_EMF_OUTPUT": "stdout"}

    done = _run(local_lane, ["process", key, "--json"], env)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "validated"
    rows = [doc for doc in _emf_lines(done.stderr) if doc.get("fate") == "valid"]
    assert [doc["etl_file_processing_rows_total"] for doc in rows] == [5]


def test_emf_asked_on_stdout_without_json_is_written_there(
    local_lane: Any, orders: Callable[..., bytes]
) -> None:
    key = local_lane.deliver("orders_20261101.csv", orders(5))
    env = {"ETL_METRICS_EXPORTERS": "emf", "ETL_EMF_OUTPUT": "stdout"}

    done = _run(local_lane, ["process", key], env)

    assert done.returncode == 0, done.stderr
    assert _emf_lines(done.stdout)
    assert not _emf_lines(done.stderr)
    lines = done.stdout.splitlines()
    emf_first = [line.startswith('{"_aws"') for line in lines]
    assert emf_first == sorted(emf_first, reverse=True), lines  # as the README says: before
    assert not emf_first[-1]  # the outcome table follows them


def test_every_stderr_line_carries_run_id_and_lane_with_emf_lines_among_them(
    local_lane: Any, orders: Callable[..., bytes]
) -> None:
    """The README's rule for stderr off a terminal holds for the EMF lines it now carries."""
    key = local_lane.deliver("orders_20261101.csv", orders(5))

    done = _process(local_lane, key, {"ETL_METRICS_EXPORTERS": "emf"})

    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    emf = [record for record in records if "_aws" in record]
    assert emf
    assert {record["run_id"] for record in records} == {emf[0]["run_id"]}
    assert {record["lane"] for record in records} == {"file_processing"}


def _statsd(agent: socket.socket) -> dict[str, str]:
    return {"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_ADDRESS": agent_address(agent)}


@pytest.mark.parametrize(
    ("action", "code"), [("interrupt", 130), ("terminate", 143)], ids=["sigint", "sigterm"]
)
def test_an_interrupted_process_exports_what_it_counted_once(
    local_lane: Any, orders: Callable[..., bytes], agent: socket.socket, action: str, code: int
) -> None:
    """Ctrl-C or SIGTERM once the object was read and its member checked: the run's counts
    reach the agent as the command exits 130/143 as before, once (they were lost)."""
    data = orders(5)
    key = local_lane.deliver("orders_20261101.csv", data)

    done = _process(local_lane, key, {**_statsd(agent), "ETL_FAULT_AT": f"checks:{action}"})

    assert done.returncode == code, done.stderr
    lines = drained(agent)  # the command has exited: all of it was sent
    read = [line for line in lines if line.startswith("etl_file_processing_bytes_in_total:")]
    assert read == [f"etl_file_processing_bytes_in_total:{len(data)}|c|#dataset:orders"], lines
    assert "units in flight" in done.stderr  # the interruption is said as before


def test_a_process_stopped_by_a_store_error_exports_what_it_counted_once(
    local_lane: Any, orders: Callable[..., bytes], agent: socket.socket
) -> None:
    """The store refuses the validated output (an object named ``validated`` stands where
    its folder would be): ``process`` exits 1 naming the key, as before, and the object it
    read and the stages it timed reach the agent once (they were lost)."""
    data = orders(5)
    key = local_lane.deliver("orders_20261101.csv", data)
    local_lane.store.write_bytes("validated", b"in the way")

    done = _process(local_lane, key, _statsd(agent))

    assert done.returncode == 1, done.stderr
    (error,) = [json.loads(line) for line in done.stderr.splitlines() if '"error"' in line]
    assert "cannot write 'validated/orders/dt=2026-11-01/orders_20261101.csv'" in error["event"]
    lines = drained(agent)
    read = [line for line in lines if line.startswith("etl_file_processing_bytes_in_total:")]
    assert read == [f"etl_file_processing_bytes_in_total:{len(data)}|c|#dataset:orders"], lines
    stages = [line for line in lines if line.startswith("etl_file_processing_stage_seconds_count")]
    assert sorted(stages) == [
        f"etl_file_processing_stage_seconds_count:1|c|#stage:{stage}"
        for stage in ("download", "open_and_check", "publish")
    ], lines


def test_a_process_that_ends_exports_once_and_nothing_more_at_exit(
    local_lane: Any, orders: Callable[..., bytes], agent: socket.socket
) -> None:
    """The end-of-job export and the one on the way out are never both sent: each counter
    reaches the agent once (``process`` exits 3 for a quarantined file, 0 otherwise)."""
    key = local_lane.deliver("orders_20261101.csv", orders(5))

    done = _process(local_lane, key, _statsd(agent))

    assert done.returncode == 0, done.stderr
    lines = drained(agent)
    read = [line for line in lines if line.startswith("etl_file_processing_bytes_in_total:")]
    assert len(read) == 1, lines
    assert len(lines) == len(set(lines)), lines
