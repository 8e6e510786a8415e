"""`etl-observability serve` on 127.0.0.1, talked to with a real HTTP client."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from etl_core.errors import StorageError
from etl_core.layout import landing_key
from etl_core.storage import open_store
from etl_core.testing.ports import free_port
from etl_core.testing.statsd import agent_address, statsd_agent
from observability.errors import DatabaseUnavailableError
from observability.service import StatusService, build_app

CONTRACT = """
dataset = "pos"
source = "pos"
pattern = "pos_{date:%Y%m%d}.csv"
[[columns]]
name = "id"
[freshness]
warn_after = "1h"
critical_after = "3h"
"""


def get(url: str) -> tuple[int, str, str]:
    """Status, content type and body of a GET (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["content-type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["content-type"], error.read().decode()


def wait_for(url: str, status: int = 200, *, seconds: float = 30) -> str:
    """The body of ``url`` once it answers ``status`` (bounded wait)."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            code, _, body = get(url)
            if code == status:
                return body
            last = (code, body)
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} within {seconds}s: {last!r}")


def drop(lake: Path, name: str, at: datetime) -> None:
    with open_store(str(lake)) as store:
        store.write_bytes(landing_key("pos", name), b"id\n1\n")
    os.utime(lake / "landing" / "pos" / name, (at.timestamp(), at.timestamp()))


@pytest.fixture
def configured(tmp_path: Path) -> list[str]:
    (tmp_path / "config" / "datasets").mkdir(parents=True)
    (tmp_path / "config" / "datasets" / "pos.toml").write_text(CONTRACT)
    (tmp_path / "lake").mkdir()
    return ["--config-dir", str(tmp_path / "config"), "--storage", str(tmp_path / "lake")]


def start_serve(
    cwd: Path, *options: str, env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen[str]]:
    """``etl-observability <options> serve`` on a free port, evaluating every second
    (``env``: ``ETL_*`` variables it gets, the others are not passed on)."""
    port = free_port()
    script = Path(sys.executable).parent / "etl-observability"
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"
    }
    process = subprocess.Popen(
        [str(script), *options, "serve", "--port", str(port), "--interval", "1s"],
        cwd=cwd,
        env={**inherited, "ETL_LOG_FORMAT": "json", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return f"http://127.0.0.1:{port}", process


@pytest.fixture
def server(tmp_path: Path, configured: list[str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    base, process = start_serve(tmp_path, *configured)
    try:
        yield base, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


@pytest.mark.slow
def test_serve_answers_metrics_status_and_probes_and_follows_the_store(
    server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    base, process = server
    now = datetime.now(UTC)
    drop(tmp_path / "lake", f"pos_{now:%Y%m%d}.csv", now - timedelta(hours=2))

    assert wait_for(f"{base}/healthz") == "ok\n"
    wait_for(f"{base}/readyz")
    status = json.loads(wait_for(f"{base}/api/status"))
    code, kind, metrics = get(f"{base}/metrics")

    (pos,) = status["datasets"]
    assert (pos["dataset"], pos["level"]) == ("pos", "warn")
    assert status["service"]["error"] == ""
    assert code == 200
    assert kind == "text/plain; version=0.0.4; charset=utf-8"
    assert 'etl_observability_dataset_level{dataset="pos"} 1' in metrics
    assert 'etl_observability_objects{zone="landing",dataset="pos"} 1' in metrics
    assert 'etl_observability_freshness_age_seconds{dataset="pos",zone="landing"}' in metrics

    drop(tmp_path / "lake", f"pos_{now:%Y%m%d}.csv", now)  # a fresh re-delivery
    deadline = time.monotonic() + 30
    while json.loads(get(f"{base}/api/status")[2])["datasets"][0]["level"] != "ok":
        assert time.monotonic() < deadline, "the next cycles never saw the fresh file"
        time.sleep(0.2)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143


@pytest.mark.slow
def test_serve_exports_each_cycle_to_statsd_and_never_pushes_what_prometheus_scrapes(
    tmp_path: Path, configured: list[str]
) -> None:
    with statsd_agent(timeout=30) as agent:
        exporters = {
            "ETL_METRICS_EXPORTERS": "statsd,pushgateway",
            "ETL_STATSD_ADDRESS": agent_address(agent),
            "ETL_PUSHGATEWAY_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens
        }
        _, process = start_serve(tmp_path, *configured, env=exporters)
        try:
            lines: list[str] = []
            for _ in range(200):  # the datagrams of a cycle or two
                lines += agent.recv(65535).decode().splitlines()
                if any(line.startswith("etl_observability_dataset_level:") for line in lines):
                    break
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=30)

    levels = [line for line in lines if line.startswith("etl_observability_dataset_level:")]
    assert levels[:2] == [  # unknown (never measured) is -1: a reset to 0, then the level
        "etl_observability_dataset_level:0|g|#dataset:pos",
        "etl_observability_dataset_level:-1|g|#dataset:pos",
    ]
    assert "metrics not exported" not in stderr


@pytest.mark.slow
def test_serve_stopped_by_sigterm_says_the_service_stopped_not_that_units_stay_in_line(
    server: tuple[str, subprocess.Popen[str]],
) -> None:
    """It said "units in flight were finished …; the rest stay in line for the next run",
    the batch commands' words: a server has no units waiting."""
    base, process = server
    wait_for(f"{base}/healthz")

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 143
    events = [json.loads(line)["event"] for line in stderr.splitlines() if line.startswith("{")]
    assert events[-1] == (
        "terminated (SIGTERM): the service stopped after the requests and the evaluation "
        "cycle in flight"
    )
    assert not any("stay in line" in event for event in events)


@pytest.mark.slow
def test_a_port_in_use_is_refused_with_the_address(tmp_path: Path, configured: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = Path(sys.executable).parent / "etl-observability"
        result = subprocess.run(
            [str(script), *configured, "serve", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "ETL_LOG_FORMAT": "json"},
        )
    assert result.returncode == 1
    assert f"the service could not start on 127.0.0.1:{port}" in result.stderr
    assert "address already in use" in result.stderr
    assert "serving 1 dataset" not in result.stderr  # never announced: it never listened


@pytest.mark.slow
def test_serve_on_port_zero_names_the_port_it_listens_on(
    tmp_path: Path, configured: list[str]
) -> None:
    """``serve_port = 0`` (any free port) logged ``serving … on http://127.0.0.1:0``."""
    script = Path(sys.executable).parent / "etl-observability"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"}
    process = subprocess.Popen(
        [str(script), *configured, "serve", "--port", "0", "--interval", "1s"],
        cwd=tmp_path,
        env={**env, "ETL_LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    announced: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if '"serving ' in line:
                announced.append(json.loads(line)["event"])

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not announced and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert announced, "serve never said where it listens"
        [event] = announced
        url = event.split(" on ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        assert not url.endswith(":0")
        assert wait_for(f"{url}/healthz") == "ok\n"
    finally:
        process.kill()
        process.wait(timeout=30)
        reader.join(timeout=30)


@pytest.mark.slow
def test_serve_records_the_freshness_history_in_the_database(
    tmp_path: Path, configured: list[str], migrate: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    now = datetime.now(UTC)
    drop(tmp_path / "lake", f"pos_{now:%Y%m%d}.csv", now - timedelta(hours=4))
    base, process = start_serve(tmp_path, *configured, "--database-url", url)
    try:
        wait_for(f"{base}/readyz")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)

    with sqlite3.connect(tmp_path / "etl.sqlite3") as connection:
        rows = connection.execute(
            "SELECT dataset, level, latest_partition FROM etl_freshness_status"
        ).fetchall()
    assert rows == [("pos", "critical", now.date().isoformat())]  # once: only changes are kept


class FlakyStore:
    """A store whose listings fail while ``broken`` is set (an unreachable bucket)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.broken = False

    def list(self, prefix: str = "") -> Any:
        if self.broken:
            raise StorageError("s3://lake: connection refused", key=prefix)
        return self.store.list(prefix)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def in_process(lake: Any, clock: Any, weekday_contract: Any) -> Iterator[tuple[str, Any, Any]]:
    """The app over a service with a fake clock, served by uvicorn in a thread."""
    flaky = FlakyStore(lake.store)
    service = StatusService(
        [weekday_contract(expected=None)], flaky, clock, interval=timedelta(hours=1)
    )
    port = free_port()
    config = uvicorn.Config(build_app(service), host="127.0.0.1", port=port, log_config=None)
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    try:
        wait_for(f"http://127.0.0.1:{port}/readyz")
        yield f"http://127.0.0.1:{port}", service, flaky
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=30)


def test_a_failed_cycle_keeps_the_last_results_and_fails_readiness(
    in_process: tuple[str, Any, Any], lake: Any, clock: Any, berlin: Any
) -> None:
    base, service, flaky = in_process
    clock.set(berlin(21, 12))
    lake.drop("pos", "pos_20261221.csv", berlin(21, 11, 30))
    service.refresh()
    good = json.loads(get(f"{base}/api/status")[2])

    flaky.broken = True
    clock.advance(timedelta(minutes=5))
    service.refresh()
    code, _, body = get(f"{base}/readyz")
    status = json.loads(get(f"{base}/api/status")[2])
    metrics = get(f"{base}/metrics")[2]

    assert good["datasets"][0]["level"] == "ok"
    assert code == 503
    assert "the latest evaluation failed: s3://lake: connection refused" in body
    assert status["datasets"] == good["datasets"]
    assert status["service"]["error"] == "s3://lake: connection refused"
    assert 'etl_observability_dataset_level{dataset="pos"} 0' in metrics

    flaky.broken = False
    service.refresh()
    assert get(f"{base}/readyz")[0] == 200
    assert "etl_observability_evaluation_failures_total 1" in get(f"{base}/metrics")[2]


def test_metrics_count_the_failed_cycles_while_they_fail(
    in_process: tuple[str, Any, Any], lake: Any, clock: Any, berlin: Any
) -> None:
    base, service, flaky = in_process
    clock.set(berlin(21, 12))
    lake.drop("pos", "pos_20261221.csv", berlin(21, 11, 30))
    service.refresh()

    flaky.broken = True
    for _ in range(2):
        clock.advance(timedelta(minutes=1))
        service.refresh()
    metrics = get(f"{base}/metrics")[2]

    assert "etl_observability_evaluation_failures_total 2" in metrics
    assert 'etl_observability_dataset_level{dataset="pos"} 0' in metrics  # the last results


def test_readiness_fails_when_no_cycle_finished_for_three_intervals(
    in_process: tuple[str, Any, Any], clock: Any
) -> None:
    base, _, _ = in_process
    clock.advance(timedelta(hours=4))
    code, _, body = get(f"{base}/readyz")
    assert code == 503
    assert "no evaluation has finished for" in body


def test_a_history_that_cannot_be_recorded_keeps_new_results_and_fails_readiness(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    calls: list[Any] = []

    def record(evaluation: Any) -> None:
        calls.append(evaluation)
        if len(calls) == 2:
            raise DatabaseUnavailableError("database postgresql://etl:***@db/etl is unreachable")

    service = StatusService(
        [weekday_contract(expected=None)],
        lake.store,
        clock,
        interval=timedelta(minutes=1),
        record=record,
    )
    clock.set(berlin(21, 12))
    first = service.refresh()
    lake.drop("pos", "pos_20261221.csv", berlin(21, 12))
    clock.advance(timedelta(minutes=1))
    second = service.refresh()

    assert service.ready() == (
        False,
        "the latest evaluation failed: freshness history not recorded: "
        "database postgresql://etl:***@db/etl is unreachable",
    )
    assert second.evaluation is calls[1]
    assert second.succeeded_at == first.succeeded_at
    assert json.loads(second.status)["datasets"][0]["level"] == "ok"
    clock.advance(timedelta(minutes=1))
    service.refresh()
    assert service.ready() == (True, "ok")


def test_readiness_counts_from_the_end_of_a_cycle_longer_than_three_intervals(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    def slow(evaluation: Any) -> None:  # the cycle takes four intervals
        clock.advance(timedelta(hours=4))

    service = StatusService(
        [weekday_contract(expected=None)],
        lake.store,
        clock,
        interval=timedelta(hours=1),
        record=slow,
    )
    clock.set(berlin(21, 12))
    snapshot = service.refresh()

    assert snapshot.succeeded_at == berlin(21, 16)  # its end, not its start
    assert service.ready() == (True, "ok")
    clock.advance(timedelta(hours=12))  # the next cycle may take as long: still ready
    assert service.ready() == (True, "ok")
    clock.advance(timedelta(seconds=31))
    assert service.ready() == (False, "no evaluation has finished for 43231s")


def cycle_child(pid: int) -> int:
    """The cycle process ``serve`` (``pid``) started (not multiprocessing's resource tracker)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                command = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"spawn_main" in command:
                    return int(child)
        time.sleep(0.2)
    raise AssertionError(f"serve ({pid}) started no cycle process within 30s")


@pytest.mark.slow
def test_the_cycles_run_in_a_child_process_restarted_when_it_dies(
    server: tuple[str, subprocess.Popen[str]],
) -> None:
    base, process = server
    wait_for(f"{base}/readyz")
    child = cycle_child(process.pid)

    os.kill(child, signal.SIGKILL)
    body = wait_for(f"{base}/readyz", 503)
    still = get(f"{base}/metrics")

    assert "the evaluation process exited with code -9" in body
    assert still[0] == 200  # the last results are still served
    wait_for(f"{base}/readyz")
    assert cycle_child(process.pid) != child
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143


def test_a_store_directory_gone_while_serving_fails_the_cycle_not_reads_as_empty(
    in_process: tuple[str, Any, Any], lake: Any, clock: Any, berlin: Any
) -> None:
    """An unmounted or removed local store is an unreachable store, never an empty one:
    the cycle fails (readiness says why) and the last results stay, instead of every
    dataset turning ``unknown`` behind a ready service."""
    base, service, _ = in_process
    clock.set(berlin(21, 12))
    lake.drop("pos", "pos_20261221.csv", berlin(21, 11, 30))
    service.refresh()
    good = json.loads(get(f"{base}/api/status")[2])
    away = lake.root.with_name("lake-away")

    lake.root.rename(away)
    try:
        clock.advance(timedelta(minutes=5))
        service.refresh()
        code, _, body = get(f"{base}/readyz")
        status = json.loads(get(f"{base}/api/status")[2])
    finally:
        away.rename(lake.root)

    assert good["datasets"][0]["level"] == "ok"
    assert code == 503
    assert "does not exist" in body
    assert status["datasets"] == good["datasets"]
    service.refresh()
    assert get(f"{base}/readyz")[0] == 200
