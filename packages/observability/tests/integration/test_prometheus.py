"""The shipped Prometheus rules and Grafana dashboard against a live `serve` and a real Prometheus.

``serve`` runs as a subprocess on 127.0.0.1 over a local store and an SQLite ledger;
``promtool`` (Debian package ``prometheus``) checks its ``/metrics`` and the rules, and the
``prometheus`` server of the same package scrapes it, loads the rules and answers PromQL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from etl_core.layout import landing_key
from etl_core.storage import open_store
from etl_core.testing.services import service_unavailable

DEPLOY = files("observability") / "deploy"
RULES = Path(str(DEPLOY / "prometheus" / "rules.yml"))
DASHBOARD = Path(str(DEPLOY / "grafana" / "etl.json"))
AGE = timedelta(hours=2)
CONTRACT = """
dataset = "pos"
source = "pos"
pattern = "pos_{date:%Y%m%d}.csv"
[[columns]]
name = "store_code"
[load]
table = "retail_store"
[freshness]
warn_after = "1h"
critical_after = "3h"
expected = "0 0 * * *"
grace = "1h"
"""
METRIC = re.compile(r"\betl_observability_[a-z0-9_]+")
POSTGRES_ONLY = {
    "etl_observability_database_long_running_queries",
    "etl_observability_database_longest_query_seconds",
}
"""Exported with PostgreSQL only (``test_database_metrics`` checks them there); this
module's ``serve`` uses SQLite."""


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        service_unavailable(name, "binary not found (Debian package 'prometheus')")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _wait_for(url: str, *, seconds: float = 60) -> str:
    """The body of ``url`` once it answers 200 (bounded wait)."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            code, body = _get(url)
            if code == 200:
                return body
            last = (code, body)
        except OSError as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer 200 within {seconds}s: {last!r}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``serve`` over a dataset whose newest file is two hours old, with an SQLite ledger."""
    root = tmp_path_factory.mktemp("served")
    (root / "config" / "datasets").mkdir(parents=True)
    (root / "config" / "datasets" / "pos.toml").write_text(CONTRACT)
    lake = root / "lake"
    lake.mkdir()
    arrived = datetime.now(UTC) - AGE
    name = f"pos_{arrived:%Y%m%d}.csv"
    with open_store(str(lake)) as store:
        store.write_bytes(landing_key("pos", name), b"store_code\nS1\n")
    os.utime(lake / "landing" / "pos" / name, (arrived.timestamp(), arrived.timestamp()))
    url = f"sqlite:///{root / 'etl.sqlite3'}"
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"}
    subprocess.run(
        [str(bin_dir / "etl-schema"), "migrate", "--database-url", url],
        check=True,
        capture_output=True,
        timeout=300,
        env=env,
    )
    port = _free_port()
    command = [str(bin_dir / "etl-observability"), "--config-dir", str(root / "config")]
    command += ["--storage", str(lake), "--database-url", url]
    command += ["serve", "--port", str(port), "--interval", "1s"]
    log = (root / "serve.log").open("wb")
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/readyz")
        yield base
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="module")
def exported(served: str) -> str:
    """The live ``/metrics`` text."""
    return _wait_for(f"{served}/metrics")


def _families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def _panel_exprs(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for panel in panels:
        yield from ((panel["title"], t["expr"]) for t in panel.get("targets", ()))
        yield from _panel_exprs(panel.get("panels", []))


@pytest.mark.slow
def test_live_metrics_pass_promtool_check_metrics(exported: str) -> None:
    result = subprocess.run(
        [_binary("promtool"), "check", "metrics"],
        input=exported,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "etl_observability_database_up 1" in exported
    assert 'etl_observability_arrivals{dataset="pos",state="missing"}' in exported


@pytest.mark.slow
def test_api_status_has_the_database_of_the_serve_cycle(served: str) -> None:
    status = json.loads(_wait_for(f"{served}/api/status"))

    database = status["database"]
    assert database["vendor"] == "sqlite"
    assert "etl_pipeline_run" in {table["table"] for table in database["tables"]}
    (store,) = [table for table in database["tables"] if table["table"] == "retail_store"]
    assert (store["rows"], store["datasets"], store["last_load"]) == (0, ["pos"], None)


def test_shipped_rules_pass_promtool_check_rules() -> None:
    result = subprocess.run(
        [_binary("promtool"), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


RULE_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'etl_observability_freshness_level{{dataset="pos",zone="landing"}}'
        values: '2x20'
      - series: 'etl_observability_freshness_level{{dataset="web",zone="curated"}}'
        values: '1x10'
      - series: 'etl_observability_arrivals{{dataset="pos",state="missing"}}'
        values: '0x5 1x10'
      - series: 'etl_observability_freshness_level{{dataset="stock",zone="landing"}}'
        values: '1x30'
    alert_rule_test:
      - eval_time: 10m
        alertname: EtlDatasetFreshnessCritical
        exp_alerts:
          - exp_labels: {{severity: critical, dataset: pos, zone: landing}}
            exp_annotations:
              summary: "pos: landing is critically stale"
              description: >-
                The age monitor of pos judges its landing zone critical (past critical_after,
                or a due delivery is overdue). See /api/status for why.
      - eval_time: 10m
        alertname: EtlDatasetFreshnessWarning
        exp_alerts: []
      - eval_time: 20m
        alertname: EtlDatasetFreshnessWarning
        exp_alerts:
          - exp_labels: {{severity: warning, dataset: stock, zone: landing}}
            exp_annotations:
              summary: "stock: landing is getting stale or is dated ahead"
              description: >-
                The age monitor of stock judges landing warn: past warn_after, or it holds
                objects dated after they were listed (state future: a clock ahead, a kept
                modification time). See /api/status for why.
      - eval_time: 4m
        alertname: EtlExpectedFileMissing
        exp_alerts: []
      - eval_time: 12m
        alertname: EtlExpectedFileMissing
        exp_alerts:
          - exp_labels: {{severity: critical, dataset: pos, state: missing}}
            exp_annotations:
              summary: "pos: 1 expected file(s) missing"
              description: >-
                Files due by the schedule of pos did not arrive within their grace
                (etl_observability_arrival_state names the dates).
  - interval: 1m
    input_series:
      - series: >-
          etl_observability_last_success_timestamp_seconds{{lane="data_pipeline",job="load",
          dataset="pos"}}
        values: '0x2500'
      - series: >-
          etl_observability_last_success_timestamp_seconds{{lane="file_processing",job="scan",
          dataset=""}}
        values: '0+60x2500'
    alert_rule_test:
      - eval_time: 40h
        alertname: EtlJobStoppedSucceeding
        exp_alerts:
          - exp_labels: {{severity: warning, lane: data_pipeline, job: load, dataset: pos}}
            exp_annotations:
              summary: "data_pipeline/load pos: no success for 36h"
              description: >-
                The latest successful run of job load of lane data_pipeline (dataset "pos")
                finished 1d 16h 0m 0s ago.
"""


def test_shipped_rules_fire_on_their_signals_and_not_before(tmp_path: Path) -> None:
    tests = tmp_path / "rules_test.yml"
    tests.write_text(textwrap.dedent(RULE_TESTS).format(rules=json.dumps(str(RULES))))

    result = subprocess.run(
        [_binary("promtool"), "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_every_dashboard_and_rule_expression_names_an_exported_metric(exported: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    families = _families(exported)
    exprs = list(_panel_exprs(dashboard["panels"]))
    rules = RULES.read_text()

    assert dashboard["uid"] == "etl-platform"
    assert dashboard["schemaVersion"] >= 30
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert panel["type"] == "row" or panel["targets"], panel["title"]
        for cell in _cells(panel["gridPos"]):
            assert cell not in taken, f"{panel['title']} overlaps {taken[cell]}"
            taken[cell] = panel["title"]
    assert len(exprs) >= 20
    known = families | POSTGRES_ONLY
    unknown = sorted({(t, m) for t, e in exprs for m in METRIC.findall(e) if m not in known})
    assert unknown == []
    assert sorted(set(METRIC.findall(rules)) - known) == []
    shown = {m for _, e in exprs for m in METRIC.findall(e)}
    assert sorted(families - shown - {"etl_observability_monitor_level"}) == [
        "etl_observability_arrival_state",  # per date: the arrivals panel shows the counts
        "etl_observability_run_window_seconds",
    ]


def _cells(grid: dict[str, int]) -> Iterator[tuple[int, int]]:
    for x in range(grid["x"], grid["x"] + grid["w"]):
        for y in range(grid["y"], grid["y"] + grid["h"]):
            yield x, y


def _prometheus_config(tmp_path: Path, target: str) -> Path:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        textwrap.dedent(
            f"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: [{json.dumps(str(RULES))}]
            scrape_configs:
              - job_name: etl-observability
                static_configs:
                  - targets: [{json.dumps(target)}]
            """
        )
    )
    return config


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    code, body = _get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    assert code == 200, body
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


@pytest.fixture
def prometheus(served: str, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server on 127.0.0.1 scraping ``served`` every second, the rules loaded."""
    binary = _binary("prometheus")
    port = _free_port()
    config = _prometheus_config(tmp_path, served.removeprefix("http://"))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/-/ready")
        yield base
    finally:
        _stop(process)
        log.close()


@pytest.mark.slow
def test_a_real_prometheus_scrapes_serve_and_answers_the_datasets_freshness(
    prometheus: str,
) -> None:
    promql = 'etl_observability_freshness_age_seconds{dataset="pos",zone="landing"}'
    deadline = time.monotonic() + 60
    while not (answer := _query(prometheus, promql)):
        assert time.monotonic() < deadline, f"Prometheus never answered {promql}"
        time.sleep(0.5)

    ((_, value),) = [sample["value"] for sample in answer]
    assert AGE.total_seconds() <= float(value) <= AGE.total_seconds() + 300
    assert answer[0]["metric"]["job"] == "etl-observability"
    (up,) = _query(prometheus, 'up{job="etl-observability"}')
    assert up["value"][1] == "1"
    _, body = _get(f"{prometheus}/api/v1/rules")
    groups = json.loads(body)["data"]["groups"]
    assert {g["name"] for g in groups} == {
        "etl-freshness",
        "etl-jobs",
        "etl-database",
        "etl-observability-service",
    }
    assert all(rule["health"] != "err" for g in groups for rule in g["rules"]), body
    dashboard = json.loads(DASHBOARD.read_text())
    for title, expr in _panel_exprs(dashboard["panels"]):  # each parses and evaluates
        assert _query(prometheus, expr.replace("$dataset", ".*")) is not None, title
