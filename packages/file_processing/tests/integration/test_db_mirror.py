"""Outcomes mirrored into the platform database (the 'schema' extra), SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from etl_core.testing import capture_logs
from etl_core.testing.fixtures import REFUSED_LOGIN_PASSWORD
from file_processing import cli

BIN = Path(sys.executable).parent
Orders = Callable[..., bytes]


def run(
    lane: Any, *args: str, database_url: str, tool: str = "etl-file-processing"
) -> subprocess.CompletedProcess[str]:
    command = [str(BIN / tool)]
    if tool == "etl-file-processing":
        command += ["--storage", lane.store.url, "--config-dir", str(lane.config_dir)]
    environ = {
        **os.environ,
        "ETL_LOG_FORMAT": "json",
        "ETL_DATABASE_URL": "",
        "DATABASE_URL": database_url,
    }
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=environ, timeout=120, check=False
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the mirror with a plain driver (Django binds one database per process)."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            return [tuple(row) for row in connection.execute(sql)]
    import psycopg

    with psycopg.connect(database_url) as connection:
        return [tuple(row) for row in connection.execute(sql)]


def execute(database_url: str, sql: str) -> None:
    """Write with a plain driver, committed."""
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            connection.execute(sql)
        return
    import psycopg

    with psycopg.connect(database_url) as connection:
        connection.execute(sql)


def test_scan_mirrors_objects_checks_and_quarantines_then_release(
    local_lane: Any, orders: Orders, database_url: str
) -> None:
    assert run(local_lane, "migrate", database_url=database_url, tool="etl-schema").returncode == 0
    local_lane.deliver("orders_20261101.csv", orders(5))
    bad = local_lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    done = run(local_lane, "scan", "--json", database_url=database_url)
    assert done.returncode == 3, done.stderr
    assert "not mirrored" not in done.stderr

    states = dict(query(database_url, "SELECT key, state FROM etl_processed_object"))
    assert states == {"landing/vendor/orders_20261101.csv": "succeeded", bad: "quarantined"}
    ((quarantine_key, reason, released_at),) = query(
        database_url,
        "SELECT quarantine_key, reason_code, released_at FROM etl_quarantine_record",
    )
    assert reason == "data.quality"
    assert released_at is None
    failed = query(
        database_url,
        "SELECT q.outcome, q.failed_count FROM etl_quality_result q "
        "JOIN etl_processed_object o ON o.id = q.processed_object_id "
        f"WHERE o.key = '{bad}' AND q.check_name = 'range:amount'",
    )
    assert failed == [("failed", 6)]

    released = run(
        local_lane, "quarantine", "release", quarantine_key, "--by", "carol",
        database_url=database_url,
    )  # fmt: skip
    assert released.returncode == 0, released.stderr
    ((released_by, released_at),) = query(
        database_url, "SELECT released_by, released_at FROM etl_quarantine_record"
    )
    assert released_by == "carol"
    assert released_at is not None


def test_a_good_redelivery_closes_the_mirrored_quarantine_and_its_open_count_falls(
    local_lane: Any, orders: Orders, database_url: str
) -> None:
    assert run(local_lane, "migrate", database_url=database_url, tool="etl-schema").returncode == 0
    open_count = (  # the query of the ledger's quarantine_open gauge, which the alert reads
        "SELECT count(*) FROM etl_quarantine_record WHERE released_at IS NULL"
    )
    local_lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    assert run(local_lane, "scan", database_url=database_url).returncode == 3
    assert query(database_url, open_count) == [(1,)]

    local_lane.deliver("orders_20261102.csv", orders(10))  # the vendor's good re-delivery
    done = run(local_lane, "scan", "--json", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["superseded"] == 1
    assert query(database_url, open_count) == [(0,)]
    ((released_by, released_at),) = query(
        database_url, "SELECT released_by, released_at FROM etl_quarantine_record"
    )
    assert released_by == "superseded"
    assert released_at is not None
    listed = run(local_lane, "quarantine", "list", database_url=database_url)
    assert "0 quarantined file(s)" in listed.stdout
    every = run(local_lane, "quarantine", "list", "--released", database_url=database_url)
    assert "superseded" in every.stdout


def test_unmigrated_database_is_refused_with_the_command_to_run(
    local_lane: Any, orders: Orders, tmp_path: Path
) -> None:
    local_lane.deliver("orders_20261101.csv", orders(5))
    done = run(local_lane, "scan", database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert done.returncode == 2
    assert "etl-schema migrate" in done.stderr
    assert local_lane.keys("validated/") == []


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("wrong", "named"),
    [("database", 'database "etl_no_such_database"'), ("role", 'role "etl_no_such_role"')],
)
def test_a_database_url_the_server_refuses_exits_2_naming_the_variable(
    local_lane: Any, orders: Orders, refused_login_urls: dict[str, str], wrong: str, named: str
) -> None:
    local_lane.deliver("orders_20261101.csv", orders(5))
    done = run(local_lane, "scan", database_url=refused_login_urls[wrong])
    assert done.returncode == 2, done.stderr
    said = " ".join(json.loads(line)["event"] for line in done.stderr.splitlines())
    assert "(from env DATABASE_URL)" in said
    assert named in said
    assert "correct the" in said
    assert REFUSED_LOGIN_PASSWORD not in done.stdout + done.stderr
    assert str(urlsplit(refused_login_urls[wrong]).password) not in done.stdout + done.stderr
    assert local_lane.keys("validated/") == []


def test_without_the_schema_extra_the_ledger_stays_in_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli.db, "schema_installed", lambda: False)
    with capture_logs() as logs:
        assert cli._database("sqlite:///nowhere.sqlite3") is False
    assert any("pip install 'etl-file-processing[schema]'" in r["event"] for r in logs)
    assert cli._database(None) is False


def test_scan_and_process_record_their_runs_and_link_the_mirrored_objects(
    local_lane: Any, orders: Orders, database_url: str
) -> None:
    migrated = run(local_lane, "migrate", database_url=database_url, tool="etl-schema")
    good = local_lane.deliver("orders_20261101.csv", orders(5))
    bad = local_lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    scanned = run(local_lane, "scan", database_url=database_url)
    late = local_lane.deliver("orders_20261103.csv", orders(4))
    processed = run(local_lane, "process", late, database_url=database_url)

    assert (migrated.returncode, scanned.returncode, processed.returncode) == (0, 3, 0)
    runs = query(
        database_url,
        "SELECT job, status, inputs_count, outputs_count, quarantined_count, failed_count, "
        "rows_written, finished_at IS NOT NULL FROM etl_pipeline_run "
        "WHERE lane = 'file_processing' ORDER BY started_at",
    )
    assert runs == [
        ("scan", "partial", 2, 1, 1, 0, 5, True),
        ("process", "succeeded", 1, 1, 0, 0, 4, True),
    ]
    linked = dict(
        query(
            database_url,
            "SELECT o.key, r.job FROM etl_processed_object o "
            "JOIN etl_pipeline_run r ON r.id = o.run_id",
        )
    )
    assert linked == {good: "scan", bad: "scan", late: "process"}


def test_a_scan_without_a_database_records_nothing_and_still_works(
    local_lane: Any, orders: Orders
) -> None:
    local_lane.deliver("orders_20261101.csv", orders(5))
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "ETL_DATABASE_URL"}}
    command = [str(BIN / "etl-file-processing"), "--storage", local_lane.store.url]
    command += ["--config-dir", str(local_lane.config_dir), "--log-level", "DEBUG", "scan"]

    done = subprocess.run(command, capture_output=True, text=True, env=environ, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stderr.count("runs are not recorded: no database_url is configured") == 1


def test_a_forced_reprocess_that_validates_closes_the_mirrored_quarantine_as_revalidated(
    local_lane: Any, orders: Orders, database_url: str
) -> None:
    assert run(local_lane, "migrate", database_url=database_url, tool="etl-schema").returncode == 0
    open_count = "SELECT count(*) FROM etl_quarantine_record WHERE released_at IS NULL"
    key = local_lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    assert run(local_lane, "scan", database_url=database_url).returncode == 3
    assert query(database_url, open_count) == [(1,)]
    contract = local_lane.config_dir / "datasets" / "orders.toml"
    contract.write_text(contract.read_text().replace("max = 1000", "max = 10000"))  # fixed

    done = run(local_lane, "process", key, "--force", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert "closed as revalidated" in done.stdout
    assert query(database_url, open_count) == [(0,)]
    ((released_by,),) = query(database_url, "SELECT released_by FROM etl_quarantine_record")
    assert released_by == "revalidated"
    every = run(local_lane, "quarantine", "list", "--released", database_url=database_url)
    assert "revalidated" in every.stdout


def test_an_unknown_quarantine_closed_after_a_failed_attempt_closes_its_mirrored_row(
    local_lane: Any, orders: Orders, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl_core.errors import StorageError

    assert run(local_lane, "migrate", database_url=database_url, tool="etl-schema").returncode == 0
    open_count = "SELECT count(*) FROM etl_quarantine_record WHERE released_at IS NULL"
    key = local_lane.deliver("refunds_20261102.csv", orders(10, bad_amounts=6))
    assert run(local_lane, "scan", database_url=database_url).returncode == 3  # no contract
    ((quarantined,),) = query(database_url, "SELECT quarantine_key FROM etl_quarantine_record")
    assert quarantined.startswith("quarantine/_unknown/")
    refunds = (local_lane.config_dir / "datasets" / "orders.toml").read_text()
    refunds = refunds.replace('dataset = "orders"', 'dataset = "refunds"')
    refunds = refunds.replace("orders_{date", "refunds_{date")
    (local_lane.config_dir / "datasets" / "refunds.toml").write_text(refunds)
    local_lane.deliver("refunds_20261102.csv", orders(10))  # the good re-delivery
    with local_lane.processor() as processor, monkeypatch.context() as patch:

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise StorageError("the store timed out (a transient failure)")

        patch.setattr(processor, "_download", broken)
        with pytest.raises(StorageError):
            processor.process(key)  # a failed attempt between

    done = run(local_lane, "scan", "--json", database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["superseded"] == 1
    assert query(database_url, open_count) == [(0,)]
    ((released_by,),) = query(database_url, "SELECT released_by FROM etl_quarantine_record")
    assert released_by == "superseded"


def test_a_release_whose_database_copy_failed_is_recorded_by_the_next_release(
    local_lane: Any, orders: Orders, database_url: str, tmp_path: Path
) -> None:
    """The store holds the release before the database does: a database that failed the
    first copy (down, or the wrong one) would keep the row open and `quarantine_open`
    alerting for good. Releasing again says it was released and records it there."""
    assert run(local_lane, "migrate", database_url=database_url, tool="etl-schema").returncode == 0
    local_lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    assert run(local_lane, "scan", database_url=database_url).returncode == 3
    ((quarantine_key,),) = query(database_url, "SELECT quarantine_key FROM etl_quarantine_record")

    unmigrated = f"sqlite:///{tmp_path / 'not-migrated.sqlite3'}"
    first = run(
        local_lane, "quarantine", "release", quarantine_key, "--by", "carol",
        database_url=unmigrated,
    )  # fmt: skip
    assert first.returncode != 0
    assert query(database_url, "SELECT released_at FROM etl_quarantine_record") == [(None,)]

    again = run(
        local_lane, "quarantine", "release", quarantine_key, "--by", "dave",
        database_url=database_url,
    )  # fmt: skip
    assert again.returncode == 2, again.stderr
    assert "already released by carol" in again.stderr
    assert "recorded in the database" in again.stderr
    ((released_by, released_at),) = query(
        database_url, "SELECT released_by, released_at FROM etl_quarantine_record"
    )
    assert (released_by, released_at is not None) == ("carol", True)


def test_a_release_no_database_row_matches_says_so_naming_the_key_and_claims_no_record(
    local_lane: Any, orders: Orders, database_url: str
) -> None:
    """A quarantine the database's ledger does not hold (quarantined before the database
    was attached, or its row deleted): the release is the store's alone, and said so."""
    assert run(local_lane, "migrate", database_url=database_url, tool="etl-schema").returncode == 0
    local_lane.deliver("orders_20261102.csv", orders(10, bad_amounts=6))
    assert run(local_lane, "scan", database_url="").returncode == 3  # no database yet
    (record,) = json.loads(run(local_lane, "quarantine", "list", "--json", database_url="").stdout)
    quarantine_key = record["key"]

    released = run(
        local_lane, "quarantine", "release", quarantine_key, "--by", "carol",
        database_url=database_url,
    )  # fmt: skip
    again = run(
        local_lane, "quarantine", "release", quarantine_key, "--by", "dave",
        database_url=database_url,
    )  # fmt: skip

    assert (released.returncode, again.returncode) == (0, 2), released.stderr + again.stderr
    assert f"released {quarantine_key}" in released.stdout
    for said in (released.stderr, again.stderr):
        (warning,) = [
            line for line in map(json.loads, said.splitlines()) if line["level"] == "warning"
        ]
        assert quarantine_key in warning["event"]
        assert warning["key"] == quarantine_key
        assert "no database row matched" in warning["event"]
        assert "recorded in the database" not in said
    assert query(database_url, "SELECT count(*) FROM etl_quarantine_record") == [(0,)]


def test_a_scan_on_a_database_holding_another_stores_rows_warns_once_naming_it(
    local_lane: Any, orders: Orders, database_url: str
) -> None:
    """Pointed at another deployment's database (its alerts, freshness, load fences are
    there), the scan says so once, naming that store and architecture section 5, and still
    works; a database holding only rows of before the store was kept ('') is quiet."""
    assert run(local_lane, "migrate", database_url=database_url, tool="etl-schema").returncode == 0
    insert = (
        "INSERT INTO etl_freshness_status (store, dataset, level, message, changed_at) "
        "VALUES ('{store}', 'orders', 'ok', '', '2026-11-01 00:00:00+00')"
    )
    execute(database_url, insert.format(store=""))
    local_lane.deliver("orders_20261101.csv", orders(5))
    quiet = run(local_lane, "scan", database_url=database_url)
    assert quiet.returncode == 0, quiet.stderr
    assert "other object store" not in quiet.stderr

    execute(database_url, insert.format(store="s3://staging-lake/etl"))
    local_lane.deliver("orders_20261102.csv", orders(5))
    shared = run(local_lane, "scan", database_url=database_url)

    assert shared.returncode == 0, shared.stderr
    said = [line for line in shared.stderr.splitlines() if "other object store" in line]
    assert len(said) == 1, shared.stderr
    assert "s3://staging-lake/etl" in said[0]
    assert "docs/architecture.md section 5" in said[0]


@pytest.mark.postgres
def test_a_scan_by_a_role_without_select_on_the_alerts_still_works(
    local_lane: Any, orders: Orders, postgres_url: str
) -> None:
    """The shared-database warning is best-effort: a file lane's role granted only the
    tables it uses (no SELECT on etl_alert, etl_load_fence) scans and mirrors as it did
    before the warning existed, instead of failing on ``permission denied``."""
    import uuid

    import psycopg

    assert run(local_lane, "migrate", database_url=postgres_url, tool="etl-schema").returncode == 0
    role = f"etl_files_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"
        )
        admin.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        admin.execute(f"REVOKE ALL ON etl_alert, etl_load_fence FROM {role}")
    parts = urlsplit(postgres_url)
    limited = parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}").geturl()
    try:
        local_lane.deliver("orders_20261101.csv", orders(5))
        scanned = run(local_lane, "scan", database_url=limited)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")

    assert scanned.returncode == 0, scanned.stderr
    assert "permission denied" not in scanned.stderr
    assert query(postgres_url, "SELECT count(*) FROM etl_processed_object") != [(0,)]
