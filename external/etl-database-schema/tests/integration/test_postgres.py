"""The schema on PostgreSQL (psycopg 3), the production database.

Every test gets a fresh, uniquely named database (conftest ``postgres_url``), sets Django
up in a subprocess, and the database is dropped afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.postgres

RunPython = Callable[..., subprocess.CompletedProcess[str]]
RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _migrate(run_cli: RunCli, url: str) -> None:
    result = run_cli("migrate", "--database-url", url)
    assert result.returncode == 0, result.stderr


def test_fresh_database_migrates_from_zero(
    run_cli: RunCli, postgres_url: str, migrations: list[str]
) -> None:
    migrated = run_cli("migrate", "--database-url", postgres_url)
    shown = run_cli("showmigrations", env={"DATABASE_URL": postgres_url})

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying etl_ledger.0001_initial... OK" in migrated.stdout
    assert "Applying etl_retail.0001_initial... OK" in migrated.stdout
    assert "Applying etl_retail.0002_footfall... OK" in migrated.stdout
    assert "Applying etl_retail.0003_partitioned_curated... OK" in migrated.stdout
    assert "Applying etl_retail.0004_bytewise_code_keys... OK" in migrated.stdout
    assert "Applying etl_ledger.0005_load_fence... OK" in migrated.stdout
    assert "Applying etl_ledger.0006_load_fence_store... OK" in migrated.stdout
    assert "Applying etl_ledger.0007_alert_store... OK" in migrated.stdout
    assert "Applying etl_ledger.0003_pipelinerun_holder... OK" in migrated.stdout
    assert "Applying etl_ledger.0004_alert_owed... OK" in migrated.stdout
    assert shown.stdout.count("[X]") == len(migrations)
    assert "[ ]" not in shown.stdout


def test_concurrent_migrations_apply_once(postgres_url: str, tmp_path: Path) -> None:
    command = [
        str(Path(sys.executable).parent / "etl-schema"),
        "migrate",
        "--database-url",
        postgres_url,
    ]
    workers = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    outputs = [worker.communicate(timeout=120) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0, 0], outputs
    applied = b"".join(out for out, _err in outputs).count(b"etl_ledger.0001_initial... OK")
    assert applied == 1


def test_ledger_row_round_trips_and_duplicate_key_etag_is_refused(
    run_cli: RunCli, run_python: RunPython, postgres_url: str
) -> None:
    _migrate(run_cli, postgres_url)

    result = run_python(
        f"""
        import etl_database_schema as s
        s.setup({postgres_url!r})
        from django.db import IntegrityError, transaction
        from etl_database_schema.ledger.models import ProcessedObject

        ProcessedObject.objects.create(key="landing/pos/a.csv", etag='"9b2cf535f27731c9"',
                                       dataset="sales", partition_date="2024-05-01",
                                       output_keys=["validated/sales/dt=2024-05-01/a.csv"])
        row = ProcessedObject.objects.get(key="landing/pos/a.csv")
        print("read", row.etag, row.partition_date, row.output_keys, row.quality_outcome)
        try:
            with transaction.atomic():
                ProcessedObject.objects.create(key=row.key, etag=row.etag)
        except IntegrityError as exc:
            print("duplicate refused:", type(exc.__cause__).__name__)
        """
    )

    assert result.returncode == 0, result.stderr
    assert (
        "read \"9b2cf535f27731c9\" 2024-05-01 ['validated/sales/dt=2024-05-01/a.csv'] not_checked"
        in result.stdout
    )
    assert "duplicate refused: UniqueViolation" in result.stdout


def test_backfill_partition_is_unique_per_job_and_date(
    run_cli: RunCli, run_python: RunPython, postgres_url: str
) -> None:
    _migrate(run_cli, postgres_url)

    result = run_python(
        f"""
        import etl_database_schema as s
        s.setup({postgres_url!r})
        from datetime import date
        from django.db import IntegrityError, transaction
        from etl_database_schema.ledger.models import BackfillJob, BackfillPartition

        job = BackfillJob.objects.create(dataset="sales", start_date=date(2024, 5, 1),
                                         end_date=date(2024, 5, 2))
        BackfillPartition.objects.create(job=job, partition_date=date(2024, 5, 1))
        for bad in (
            lambda: BackfillPartition.objects.create(job=job, partition_date=date(2024, 5, 1)),
            lambda: BackfillJob.objects.create(dataset="sales", start_date=date(2024, 5, 2),
                                               end_date=date(2024, 5, 1)),
        ):
            try:
                with transaction.atomic():
                    bad()
            except IntegrityError as exc:
                print("refused:", type(exc.__cause__).__name__)
        """
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["refused: UniqueViolation", "refused: CheckViolation"]


def test_curated_partition_is_replaced_by_delete_and_copy(
    run_cli: RunCli, postgres_url: str
) -> None:
    """The load contract: delete one dt, COPY its rows; loaded_at comes from the database."""
    _migrate(run_cli, postgres_url)
    columns = "dt, store_code, sku, units, revenue, transactions, currency"
    rows = [
        (date(2024, 5, 1), "S001", "SKU-1", Decimal("3"), Decimal("7.50"), 2, "EUR"),
        (date(2024, 5, 1), "S001", "SKU-2", Decimal("1.5"), Decimal("4.20"), 1, "EUR"),
    ]

    with psycopg.connect(postgres_url) as connection:
        for _ in range(2):  # a re-run replaces the partition instead of duplicating it
            with connection.transaction():
                connection.execute("DELETE FROM retail_daily_sales WHERE dt = %s", [rows[0][0]])
                with connection.cursor().copy(
                    f"COPY retail_daily_sales ({columns}) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
        stored = connection.execute(
            "SELECT count(*), sum(revenue), bool_and(loaded_at IS NOT NULL) FROM retail_daily_sales"
        ).fetchone()

    assert stored == (2, Decimal("11.70"), True)


def test_curated_tables_are_indexed_by_partition_date(run_cli: RunCli, postgres_url: str) -> None:
    _migrate(run_cli, postgres_url)

    with psycopg.connect(postgres_url) as connection:
        leading = {
            table: definition
            for table, definition in connection.execute(
                "SELECT tablename, indexdef FROM pg_indexes WHERE tablename LIKE 'retail_%%' "
                "AND tablename NOT LIKE '%%_default'"  # the partitions of curated tables
            )
            if "(dt," in definition or "(dt)" in definition
        }

    assert set(leading) == {
        "retail_daily_sales",
        "retail_sales_transaction",
        "retail_store_footfall",
    }
