"""The database report's gauges and JSON, from plain values (no database)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

from etl_core.contracts import Column, Contract, Load
from etl_core.metrics import Registry, render_prometheus
from etl_database_schema import DatabaseStats, EndpointFailure, JobSuccess, RunHealth, TableStats
from observability.database_metrics import DatabaseReport, load_tables, record_database_metrics

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def _contract(dataset: str, table: str | None) -> Contract:
    return Contract(
        dataset=dataset,
        source=dataset,
        pattern=dataset + "_{date:%Y%m%d}.csv",
        columns=(Column("id"),),
        load=Load(table) if table else None,
    )


def _report(**changes: object) -> DatabaseReport:
    values: dict[str, object] = {
        "collected_at": NOW,
        "window": timedelta(hours=24),
        "signals": {"runs_running": 1, "quarantine_open": 2},
        "stats": DatabaseStats(
            vendor="postgresql",
            size_bytes=8_000_000,
            tables=(
                TableStats("retail_sales", 1200, 65536, 40, NOW - timedelta(hours=3), None),
                TableStats("etl_pipeline_run", 10, 16384, 0),
            ),
            missing_tables=("retail_gone",),
            connections={"active": 2, "idle": 5},
            long_running_queries=1,
            longest_query_seconds=420.5,
        ),
        "load_tables": {"retail_sales": ("pos", "web"), "retail_gone": ("old",)},
        "last_loads": {"pos": NOW - timedelta(hours=5), "web": NOW - timedelta(hours=1)},
        "health": (RunHealth("data_pipeline", "pos", 8, 1, 1, 10.0, 20.0, 30.0, 31.0),),
        "jobs": (JobSuccess("file_processing", "scan", "", NOW - timedelta(hours=2)),),
        "failing": (EndpointFailure("crm", "contacts", 4, None, NOW, "HTTP 503"),),
    }
    values.update(changes)
    return DatabaseReport(**values)  # type: ignore[arg-type]


def _registry(report: DatabaseReport) -> Registry:
    registry = Registry()
    record_database_metrics(report, registry)
    return registry


def test_tables_of_the_contracts_loads_gather_their_datasets() -> None:
    contracts = [_contract("pos", "retail_sales"), _contract("web", "retail_sales")]
    contracts.append(_contract("raw_only", None))

    assert load_tables(contracts) == {"retail_sales": ("pos", "web")}


def test_table_gauges_carry_rows_size_vacuum_and_the_latest_load_of_any_dataset() -> None:
    registry = _registry(_report())

    assert registry.value("etl_observability_table_rows", table="retail_sales") == 1200
    assert registry.value("etl_observability_table_size_bytes", table="etl_pipeline_run") == 16384
    assert registry.value("etl_observability_table_dead_tuples", table="retail_sales") == 40
    vacuumed = "etl_observability_table_last_autovacuum_timestamp_seconds"
    assert registry.value(vacuumed, table="retail_sales") == (NOW - timedelta(hours=3)).timestamp()
    loaded = "etl_observability_table_last_load_timestamp_seconds"
    assert registry.value(loaded, table="retail_sales") == (NOW - timedelta(hours=1)).timestamp()
    assert 'table="etl_pipeline_run"' not in _lines(registry, loaded)
    assert 'table="retail_gone"' not in render_prometheus(registry)


def test_server_and_ledger_gauges() -> None:
    registry = _registry(_report())

    assert registry.value("etl_observability_database_size_bytes") == 8_000_000
    assert registry.value("etl_observability_database_connections", state="idle") == 5
    assert registry.value("etl_observability_database_long_running_queries") == 1
    assert registry.value("etl_observability_database_longest_query_seconds") == 420.5
    assert registry.value("etl_observability_ledger_entries", signal="quarantine_open") == 2
    key = {"lane": "data_pipeline", "dataset": "pos"}
    assert registry.value("etl_observability_runs", **key, outcome="failed") == 1
    assert registry.value("etl_observability_run_success_ratio", **key) == 0.9
    assert registry.value("etl_observability_run_duration_seconds", **key, quantile="0.99") == 30
    assert (
        registry.value(
            "etl_observability_api_endpoint_consecutive_failures", source="crm", endpoint="contacts"
        )
        == 4
    )
    succeeded = "etl_observability_last_success_timestamp_seconds"
    assert registry.value(succeeded, lane="file_processing", job="scan", dataset="") == (
        (NOW - timedelta(hours=2)).timestamp()
    )


def test_sqlite_declares_the_server_families_it_cannot_measure_without_series() -> None:
    stats = DatabaseStats("sqlite", 4096, (TableStats("etl_pipeline_run", 3, None),))
    text = render_prometheus(_registry(_report(stats=stats)))

    assert "# TYPE etl_observability_database_connections gauge" in text
    assert "etl_observability_database_connections{" not in text
    assert "etl_observability_database_long_running_queries" not in text
    assert "etl_observability_table_size_bytes{" not in text
    assert 'etl_observability_table_rows{table="etl_pipeline_run"} 3' in text


def test_the_report_is_plain_json() -> None:
    document = json.loads(json.dumps(_report().to_dict()))

    (sales, _ledger) = document["tables"]
    assert sales["datasets"] == ["pos", "web"]
    assert sales["last_load"] == (NOW - timedelta(hours=1)).isoformat()
    assert document["missing_tables"] == ["retail_gone"]
    assert document["runs"][0]["success_rate"] == 0.9
    assert document["failing_endpoints"][0]["last_error"] == "HTTP 503"
    assert document["last_success"][0] == {
        "lane": "file_processing",
        "job": "scan",
        "dataset": "",
        "at": (NOW - timedelta(hours=2)).isoformat(),
    }


def _lines(registry: Registry, name: str) -> str:
    return "\n".join(
        line for line in render_prometheus(registry).splitlines() if line.startswith(name + "{")
    )


def test_run_duration_quantiles_pass_promtool_as_a_summary() -> None:
    """Prometheus's linter refuses a ``quantile`` label on anything but a summary
    (``promtool check metrics`` exits 3 on a gauge carrying it), so a database with runs
    in the window failed the check every deployment runs on ``/metrics``."""
    text = render_prometheus(_registry(_report()))

    assert "# TYPE etl_observability_run_duration_seconds summary" in text
    labels = 'lane="data_pipeline",dataset="pos",quantile="0.9"'
    line = "etl_observability_run_duration_seconds{" + labels + "} 20"
    assert line in text.splitlines()
    promtool = shutil.which("promtool")
    if promtool is not None:
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
