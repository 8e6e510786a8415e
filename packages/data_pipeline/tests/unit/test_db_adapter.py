"""data_pipeline.db: the runtime's adapter on the database door (the schema package).

Refusals that happen before Django is set up run in this process; everything that sets
Django up runs in a subprocess, so the pytest process never configures Django.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_pipeline import db
from data_pipeline.errors import (
    DatabaseNotConfiguredError,
    DatabaseNotReadyError,
    DataPipelineError,
)
from etl_core.errors import ConfigError
from etl_core.testing.services import service_unavailable

POSTGRES_URL = os.environ.get(
    "ETL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
WITHOUT_SCHEMA = "import sys; sys.modules['etl_database_schema'] = None\n"


def _run(code: str, cwd: Path, *, prelude: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_the_extra_database_features_name_the_extra_to_install(tmp_path: Path) -> None:
    result = _run(
        """
        from data_pipeline import db
        from data_pipeline.errors import SchemaNotInstalledError
        print("installed", db.schema_installed())
        for use in (lambda: db.connect("sqlite:///x.sqlite3"),
                    lambda: db.run_recorder("sqlite:///x.sqlite3")):
            try:
                use()
            except SchemaNotInstalledError as exc:
                print("refused:", exc)
        """,
        tmp_path,
        prelude=WITHOUT_SCHEMA,
    )

    assert result.returncode == 0, result.stderr
    assert "installed False" in result.stdout
    assert result.stdout.count("pip install 'etl-data-pipeline[schema]'") == 2
    assert not (tmp_path / "x.sqlite3").exists()


def test_with_the_extra_installed_schema_is_reported() -> None:
    assert db.schema_installed() is True


def test_no_url_and_no_database_url_is_refused_not_defaulted_to_sqlite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(DatabaseNotConfiguredError, match="set DATABASE_URL"):
        db.connect(feature="partition loads")

    assert list(tmp_path.iterdir()) == []


def test_invalid_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        db.connect("mysql://etl:hunter2@db/etl")

    assert caught.value.fields == ("DATABASE_URL",)
    assert "scheme 'mysql' is not supported" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_unmigrated_database_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    result = _run(
        """
        from etl_core.errors import ConfigError
        from data_pipeline import db
        try:
            db.connect("sqlite:///empty.sqlite3")
        except ConfigError as exc:
            print("refused:", exc)
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    said = r"holds none of the platform's schema \(no migration applied, \d+ pending"
    assert re.search(said, result.stdout), result.stdout
    assert "run `etl-schema migrate`" in result.stdout


def test_a_unit_meeting_a_schema_behind_waits_a_migrations_time_between_its_attempts() -> None:
    """A worker's unit meeting a database restored from an older schema (a deploy, its
    `etl-schema migrate` under way) was retried after the task policy's backoff (1 s,
    then 2 s at most, jittered): its 3 attempts were spent within 3 s, before a migration
    of a minute ended. It now waits 45 s before each retry: 90 s in all by default."""
    import etl_database_schema as schema
    from data_pipeline.db.door import door
    from data_pipeline.errors import DatabaseUnavailableError
    from data_pipeline.settings import PipelineSettings
    from etl_core.work.celery import task_policy

    behind = schema.SchemaBehindError("sqlite:///etl.sqlite3", ["etl_ledger.0007"], met="x")
    with pytest.raises(DatabaseUnavailableError) as raised, door("loads"):
        raise behind
    policy = task_policy(PipelineSettings())
    waits = [policy.next_delay(attempt, raised.value, 0.0) for attempt in (1, 2, 3)]

    assert (policy.attempts, waits) == (3, [behind.retry_after, behind.retry_after, None])
    assert 45.0 <= behind.retry_after <= 54.0  # jittered, below the policy's 60 s cap
    assert policy.next_delay(1, DatabaseUnavailableError("down"), 0.0) <= 1.0  # an outage's


def test_api_state_keeps_cursor_across_failures(tmp_path: Path) -> None:
    result = _run(
        """
        from datetime import datetime, timezone
        from data_pipeline import db
        db.connect("sqlite:///ledger.sqlite3", migrate=True)
        print("first", db.load_api_state("weather", "/v1/obs"))
        mark = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
        db.save_api_state("weather", "/v1/obs", cursor="page-7", high_water_mark=mark, records=10)
        db.record_api_failure("weather", "/v1/obs", "HTTP 503")
        db.record_api_failure("weather", "/v1/obs", "HTTP 503")
        state = db.load_api_state("weather", "/v1/obs")
        print(state.cursor, state.high_water_mark.isoformat(), state.consecutive_failures,
              state.records_total)
        db.save_api_state("weather", "/v1/obs", cursor="page-9", high_water_mark=mark, records=5)
        state = db.load_api_state("weather", "/v1/obs")
        print(state.cursor, state.consecutive_failures, state.records_total)
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "first None",
        "page-7 2024-05-01T12:00:00+00:00 2 10",
        "page-9 0 15",
    ]


LOAD_SCRIPT = """
from datetime import date, datetime, timezone
from decimal import Decimal
from data_pipeline import db
db.connect({url!r}, migrate=True)
dt = date(2024, 5, 1)
columns = ["transaction_id", "line_number", "sold_at", "store_code", "sku", "quantity",
           "unit_price", "amount", "currency"]
def rows(n):
    sold = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)
    for i in range(n):
        yield (f"T{{i}}", 1, sold, "S001", "SKU-1", Decimal("2"), Decimal("1.25"), Decimal("2.50"),
               "EUR")
print("loaded", db.load_partition("retail_sales_transaction", dt, columns, rows(2500)))
print("reloaded", db.load_partition("retail_sales_transaction", dt, columns, rows(3)))
for table, cols, data in [
    ("etl_pipeline_run", ["job"], []),
    ("retail_sales_transaction", ["price"], []),
    ("retail_sales_transaction", ["dt"], [(date(2024, 5, 2),)]),
    ("retail_sales_transaction", columns, [("T1", 1)]),
]:
    try:
        db.load_partition(table, dt, cols, data)
    except ValueError as exc:
        print("refused:", exc)
from etl_database_schema.retail.models import SalesTransaction
kept = SalesTransaction.objects.filter(dt=dt).order_by("transaction_id")
print("kept", [(row.transaction_id, row.sold_at.isoformat()) for row in kept],
      all(row.loaded_at is not None for row in kept))
"""


def test_load_partition_replaces_the_partition_on_sqlite(tmp_path: Path) -> None:
    result = _run(LOAD_SCRIPT.format(url="sqlite:///curated.sqlite3"), tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["loaded 2500", "reloaded 3"]
    assert "'etl_pipeline_run' is not a curated table" in lines[2]
    assert "unknown: ['price']" in lines[3]
    assert "has dt=datetime.date(2024, 5, 2); expected 2024-05-01" in lines[4]
    assert "row 1 has 2 values; expected 9" in lines[5]
    assert lines[6] == (
        "kept [('T0', '2024-05-01T09:30:00+00:00'), ('T1', '2024-05-01T09:30:00+00:00'), "
        "('T2', '2024-05-01T09:30:00+00:00')] True"
    )


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = f"etl_dp_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        service_unavailable("PostgreSQL", str(exc))
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.mark.postgres
def test_load_partition_copies_into_postgresql(tmp_path: Path, postgres_database: str) -> None:
    result = _run(LOAD_SCRIPT.format(url=postgres_database), tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["loaded 2500", "reloaded 3"]
    assert "row 1 has 2 values; expected 9" in lines[5]
    assert lines[6].startswith("kept [('T0', '2024-05-01T09:30:00+00:00'), ('T1'")
    assert lines[6].endswith("True")


BATCH_SCRIPT = """
from datetime import date, datetime, timezone
from decimal import Decimal
import pyarrow as pa
from data_pipeline import db
db.connect({url!r}, migrate=True)
dt = date(2024, 5, 1)
ids = ['plain', 'with,comma', 'with "quote"', 'two\\nlines', '', 'üñí']
sold = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)
batch = pa.RecordBatch.from_pydict({{
    "transaction_id": ids,
    "line_number": [1] * len(ids),
    "sold_at": pa.array([sold] * len(ids), type=pa.timestamp("us", tz="UTC")),
    "store_code": ["S001"] * len(ids),
    "sku": ["SKU-1"] * len(ids),
    "quantity": pa.array([Decimal("2.500")] * len(ids), type=pa.decimal128(12, 3)),
    "unit_price": pa.array([Decimal("1.25")] * len(ids), type=pa.decimal128(12, 2)),
    "amount": pa.array([Decimal("3.13")] * len(ids), type=pa.decimal128(14, 2)),
    "currency": ["EUR"] * len(ids),
    "region": ["PT", None, "", "ES", "FR", "IT"],
}})
names = batch.schema.names
print("loaded", db.load_batches("retail_sales_transaction", dt, names, [batch, batch.slice(0, 0)]))
other = batch.append_column("dt", pa.array([date(2024, 5, 2)] * len(ids), type=pa.date32()))
try:
    db.load_batches("retail_sales_transaction", dt, other.schema.names, [other])
except ValueError as exc:
    print("refused:", exc)
from etl_database_schema.retail.models import SalesTransaction
rows = SalesTransaction.objects.filter(dt=dt)
print(sorted(ids) == sorted(r.transaction_id for r in rows))
print(sorted((r.region or "") for r in rows))
print({{(str(r.quantity), str(r.unit_price), str(r.amount), r.sold_at.isoformat()) for r in rows}})
"""


def _check_batch_load(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "loaded 6"
    assert "dt values other than 2024-05-01" in lines[1]
    assert lines[2] == "True"
    assert lines[3] == "['', '', 'ES', 'FR', 'IT', 'PT']"
    assert lines[4] == "{('2.500', '1.25', '3.13', '2024-05-01T09:30:00+00:00')}"


def test_load_batches_keeps_awkward_text_exactly_on_sqlite(tmp_path: Path) -> None:
    result = _run(BATCH_SCRIPT.format(url="sqlite:///curated.sqlite3"), tmp_path)
    _check_batch_load(result)


@pytest.mark.postgres
def test_load_batches_copies_csv_into_postgresql(tmp_path: Path, postgres_database: str) -> None:
    result = _run(BATCH_SCRIPT.format(url=postgres_database), tmp_path)
    _check_batch_load(result)


def test_the_doors_refusals_are_data_pipeline_errors() -> None:
    with pytest.raises(DatabaseNotReadyError) as caught:
        db.connect("sqlite://db.example/x.sqlite3", feature="curated loads")

    assert isinstance(caught.value, DataPipelineError)
    assert isinstance(caught.value, ConfigError)
    assert str(caught.value).startswith("curated loads: cannot use the database")
    assert "SQLite URLs have none" in str(caught.value)
