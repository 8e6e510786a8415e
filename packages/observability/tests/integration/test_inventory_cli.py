"""`etl-observability inventory` and `config show`, run as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from etl_core.storage import open_store
from etl_core.testing.s3 import aws_test_environment

Cli = Callable[..., subprocess.CompletedProcess[str]]


def seed(url: str, **options: object) -> None:
    with open_store(url, **options) as store:
        store.write_bytes("landing/pos/pos_20261101.csv", b"a" * 100)
        store.write_bytes("landing/pos/pos_20261102.csv", b"b" * 50)
        store.write_bytes("quarantine/_unknown/dt=2026-11-01/x.bin", b"c" * 7)
        store.write_bytes("curated/sales/dt=2026-11-01/part-0.parquet", b"d" * 9)


def by_zone(stdout: str) -> dict[tuple[str, str], dict[str, object]]:
    rows = json.loads(stdout)["datasets"]
    return {(r["zone"], r["dataset"]): r for r in rows}


def test_inventory_of_a_local_store(cli: Cli, tmp_path: Path) -> None:
    seed(str(tmp_path / "lake"))
    result = cli("--storage", str(tmp_path / "lake"), "inventory", "--json")
    assert result.returncode == 0, result.stderr
    rows = by_zone(result.stdout)
    assert rows[("landing", "pos")]["objects"] == 2
    assert rows[("landing", "pos")]["bytes"] == 150
    assert rows[("quarantine", "_unknown")]["objects"] == 1
    assert rows[("curated", "sales")]["bytes"] == 9


def test_inventory_writes_prometheus_metrics(cli: Cli, tmp_path: Path) -> None:
    seed(str(tmp_path / "lake"))
    metrics = tmp_path / "inventory.prom"
    result = cli("--storage", str(tmp_path / "lake"), "inventory", "--metrics-file", str(metrics))
    assert result.returncode == 0, result.stderr
    text = metrics.read_text()
    assert 'etl_observability_objects{zone="landing",dataset="pos"} 2' in text
    assert "# TYPE etl_observability_stored_bytes gauge" in text


def test_an_unwritable_metrics_file_exits_2_naming_it_and_leaves_no_partial_file(
    cli: Cli, tmp_path: Path
) -> None:
    seed(str(tmp_path / "lake"))
    target = tmp_path / "taken.prom"
    target.mkdir()  # a folder where the file should go

    result = cli("--storage", str(tmp_path / "lake"), "inventory", "--metrics-file", str(target))

    assert result.returncode == 2, result.stderr
    assert f"metrics file {target} cannot be written" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lake", "taken.prom"]


def test_inventory_of_an_empty_store_says_so(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = cli("--storage", str(tmp_path / "empty"), "inventory")
    assert result.returncode == 0, result.stderr
    assert "the store is empty" in result.stdout


def test_inventory_of_a_parent_of_the_store_names_a_key_it_holds_instead_of_empty(
    cli: Cli, tmp_path: Path
) -> None:
    seed(str(tmp_path / "bucket" / "prod"))  # the store is .../prod; the URL names its parent

    result = cli("--storage", str(tmp_path / "bucket"), "inventory")

    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert "the store is empty" not in flat
    assert "prod/" in flat
    assert "does storage_url name the store's prefix?" in flat


def test_a_store_directory_that_does_not_exist_is_refused_unless_created(
    cli: Cli, tmp_path: Path
) -> None:
    missing = tmp_path / "typo"
    refused = cli("--storage", str(missing), "inventory")
    assert refused.returncode == 2
    assert "does not exist" in refused.stderr
    assert "--create" in refused.stderr
    assert not missing.exists()
    created = cli("--storage", str(missing), "--create", "inventory")
    assert created.returncode == 0, created.stderr
    assert missing.is_dir()


def test_a_store_url_naming_a_file_is_refused(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("not a store")
    result = cli("--storage", str(tmp_path / "file.txt"), "inventory")
    assert result.returncode == 2
    assert "is not a directory" in result.stderr


def test_an_invalid_log_level_is_one_line_exit_2(cli: Cli, tmp_path: Path) -> None:
    result = cli("--storage", str(tmp_path), "--log-level", "verbose", "inventory")
    assert result.returncode == 2
    assert "log_level" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.s3
def test_inventory_of_an_s3_store(cli: Cli, s3_endpoint: str, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/inventory-test"
    with aws_test_environment():
        seed(url, endpoint_url=s3_endpoint)
        aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    result = cli(
        "--storage", url, "inventory", "--json", env={**aws, "ETL_S3_ENDPOINT_URL": s3_endpoint}
    )
    assert result.returncode == 0, result.stderr
    assert by_zone(result.stdout)[("landing", "pos")]["objects"] == 2


def test_unknown_zone_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("--storage", str(tmp_path), "inventory", "--zone", "landingg")
    assert result.returncode == 2
    assert "landingg" in result.stderr


def test_invalid_setting_exits_2_naming_the_variable(cli: Cli) -> None:
    result = cli("config", "show", env={"ETL_LOG_FORMAT": "xml"})
    assert result.returncode == 2
    assert "ETL_LOG_FORMAT" in result.stderr


def test_config_show_says_where_each_value_came_from(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "etl.toml").write_text('log_level = "WARNING"\n')
    result = cli("--storage", "/srv/lake", "config", "show", env={"ETL_CONFIG_DIR": str(config)})
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert 'storage_url │ "/srv/lake" │ ETL_STORAGE_URL │ flag --storage' in text
    assert "database_url │ null │ ETL_DATABASE_URL (or DATABASE_URL) │ default" in text
    assert 'log_level │ "WARNING" │' in text
    assert f"settings file: {config / 'etl.toml'}" in text
    assert "env ETL_CONFIG_DIR" in text


def test_unreadable_store_fails_with_exit_1_and_a_clear_message(cli: Cli) -> None:
    result = cli("--storage", "s3://", "inventory")
    assert result.returncode in (1, 2)
    assert "s3://" in result.stderr


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://host/dir", "unsupported scheme 'ftp'"),
        ("file://host/tmp/lake", "names host 'host'"),
        ("s3://bucket/../lake", "'..'"),
    ],
)
def test_a_misconfigured_store_url_is_a_usage_error(cli: Cli, url: str, said: str) -> None:
    result = cli("--storage", url, "inventory")
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_s3_credentials_are_a_usage_error(cli: Cli) -> None:
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "nobody-here"}
    result = cli("--storage", "s3://some-bucket/lake", "inventory", env=env)
    assert result.returncode == 2, result.stderr
    assert "credentials" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("ETL_STORAGE_RECENT_DAYS", "0", "storage_recent_days: must be from 1 to 366"),
        ("ETL_STORAGE_LIST_WORKERS", "65", "storage_list_workers: must be from 1 to 64"),
        ("ETL_STORAGE_RECONCILE_INTERVAL", "0s", "storage_reconcile_interval: must be longer"),
    ],
)
def test_a_storage_metrics_setting_out_of_range_exits_2_naming_it(
    cli: Cli, variable: str, value: str, said: str
) -> None:
    result = cli("config", "show", env={**os.environ, variable: value})
    assert result.returncode == 2
    assert said in result.stderr


def test_a_second_inventory_lists_what_changed_and_full_lists_everything(
    cli: Cli, tmp_path: Path
) -> None:
    lake = str(tmp_path / "lake")
    seed(lake)
    first = cli("--storage", lake, "inventory", "--json")
    with open_store(lake) as store:
        store.write_bytes("landing/pos/pos_20261103.csv", b"e" * 5)
    second = cli("--storage", lake, "inventory", "--json")
    forced = cli("--storage", lake, "inventory", "--json", "--full")
    assert [r.returncode for r in (first, second, forced)] == [0, 0, 0], second.stderr
    assert "storage index: reconcile" in first.stderr
    assert "storage index: incremental" in second.stderr
    assert "storage index: reconcile" in forced.stderr
    assert by_zone(second.stdout)[("landing", "pos")]["objects"] == 3
    assert (
        by_zone(second.stdout)[("curated", "sales")] == by_zone(first.stdout)[("curated", "sales")]
    )


def test_inventory_with_an_unreachable_pushgateway_warns_without_its_password_and_exits_0(
    cli: Cli, tmp_path: Path
) -> None:
    """It exited 1: the failed push was the command's failure."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    seed(str(tmp_path / "lake"))
    gateway = {"ETL_PUSHGATEWAY_URL": f"http://pusher:gate-secret-7@127.0.0.1:{port}"}

    result = cli("--storage", str(tmp_path / "lake"), "inventory", "--json", env=gateway)

    assert result.returncode == 0, result.stderr
    assert by_zone(result.stdout)[("landing", "pos")]["objects"] == 2
    (warning,) = [line for line in result.stderr.splitlines() if "not exported" in line]
    assert "pushgateway" in warning
    assert f"127.0.0.1:{port}" in warning
    assert "gate-secret-7" not in result.stderr


def test_an_unwritable_metrics_file_still_exports_the_inventory_once(
    cli: Cli, tmp_path: Path
) -> None:
    """The inventory was taken: ``--metrics-file`` failing (exit 2, as before) no longer
    keeps it from the configured exporters (a StatsD agent on 127.0.0.1 here)."""
    from etl_core.testing.statsd import agent_address, drained, statsd_agent

    seed(str(tmp_path / "lake"))
    target = tmp_path / "taken.prom"
    target.mkdir()  # a folder where the file should go
    with statsd_agent() as agent:
        env = {"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_ADDRESS": agent_address(agent)}
        args = ("--storage", str(tmp_path / "lake"), "inventory", "--metrics-file", str(target))
        result = cli(*args, env=env)
        lines = drained(agent)  # the command has exited: all of it was sent

    assert result.returncode == 2, result.stderr
    assert f"metrics file {target} cannot be written" in result.stderr
    objects = [line for line in lines if line.startswith("etl_observability_objects:")]
    assert "etl_observability_objects:2|g|#zone:landing,dataset:pos" in objects, lines
    assert len(objects) == len(set(objects)), lines


def test_a_refused_flag_value_of_a_subcommand_names_the_flag_typed_and_exits_2(cli: Cli) -> None:
    """``serve --port 99999`` is refused from ``--port``, the flag typed, not from
    ``override serve_port``, and before anything is served."""
    result = cli("serve", "--port", "99999")

    assert result.returncode == 2
    assert "serve_port: must be from 0 to 65535, got 99999 (from flag --port)" in result.stderr


def test_a_host_serve_cannot_listen_on_is_a_settings_error_naming_the_flag(cli: Cli) -> None:
    """``serve --host 'bad host'`` failed at start-up (exit 1) without naming the flag: it
    is refused as a setting (exit 2), saying what a host must be."""
    result = cli("serve", "--host", "bad host", "--port", "0")

    assert result.returncode == 2
    assert (
        "serve_host: must be an IP address or host name, without spaces (0.0.0.0 for every "
        "interface), got 'bad host' (from flag --host)"
    ) in result.stderr
