"""The schema on SQLite, the embedded default: set-up, migrations, CLI and constraints.

Each test sets Django up in a subprocess (see conftest), never in the pytest process.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

RunPython = Callable[..., subprocess.CompletedProcess[str]]
RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _tables(file: Path) -> set[str]:
    with sqlite3.connect(file) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def test_migrate_without_configuration_creates_etl_sqlite3_in_working_directory(
    run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli("migrate")

    assert result.returncode == 0, result.stderr
    assert "Applying etl_ledger.0001_initial... OK" in result.stdout
    assert {"etl_pipeline_run", "etl_processed_object", "retail_daily_sales"} <= _tables(
        tmp_path / "etl.sqlite3"
    )


def test_database_url_environment_variable_is_used(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("migrate", env={"DATABASE_URL": "sqlite:///from-env.sqlite3"})

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-env.sqlite3").exists()
    assert not (tmp_path / "etl.sqlite3").exists()


def test_showmigrations_marks_applied_migrations(run_cli: RunCli) -> None:
    url = "--database-url=sqlite:///db.sqlite3"
    before = run_cli("showmigrations", url)
    run_cli("migrate", url)
    after = run_cli("showmigrations", "etl_ledger", url)

    assert before.returncode == 0, before.stderr
    assert "[ ] 0001_initial" in before.stdout
    assert "etl_ledger\n [X] 0001_initial" in after.stdout
    assert "etl_retail" not in after.stdout


def test_models_have_their_migrations(run_cli: RunCli) -> None:
    result = run_cli("makemigrations", "--check", "--dry-run", "--database-url=sqlite://")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_check_passes_on_a_migrated_database(run_cli: RunCli) -> None:
    run_cli("migrate", "--database-url=sqlite:///db.sqlite3")

    result = run_cli("check", "--database-url=sqlite:///db.sqlite3")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_bad_database_url_exits_2_without_printing_the_password(run_cli: RunCli) -> None:
    result = run_cli("migrate", "--database-url", "mysql://etl:hunter2@db/etl")

    assert result.returncode == 2
    assert "scheme 'mysql' is not supported" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_bad_database_url_from_environment_exits_2(run_cli: RunCli) -> None:
    result = run_cli("check", env={"DATABASE_URL": "postgresql://etl:hunter2@db"})

    assert result.returncode == 2
    assert "names no database" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize("query", ["sslmode=requried", "no_such_option=1"])
def test_a_url_the_driver_cannot_connect_with_exits_2_as_a_url_mistake(
    run_cli: RunCli, query: str
) -> None:
    """The compose stack's one-shot `migrate` said it as an error of the run (exit 1)."""
    url = f"postgresql://etl:hunter2@127.0.0.1:1/etl?{query}"

    result = run_cli("migrate", "--database-url", url)

    assert result.returncode == 2, result.stderr
    assert "correct the URL" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_unknown_subcommand_and_app_label_exit_2(run_cli: RunCli) -> None:
    assert run_cli("upgrade").returncode == 2
    assert run_cli("migrate", "auth").returncode == 2


def test_unreachable_database_exits_1_without_printing_the_password(run_cli: RunCli) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = run_cli(
        "migrate", f"--database-url=postgresql://etl:hunter2@127.0.0.1:{port}/etl?connect_timeout=3"
    )

    assert result.returncode == 1
    assert "etl-schema: error:" in result.stderr
    assert "postgresql://etl:***@127.0.0.1" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_unknown_migration_exits_1(run_cli: RunCli) -> None:
    result = run_cli("migrate", "etl_ledger", "0999", "--database-url=sqlite:///db.sqlite3")

    assert result.returncode == 1
    assert "Cannot find a migration matching '0999'" in result.stderr


def test_ledger_row_round_trips_and_duplicate_key_etag_is_refused(
    run_python: RunPython, migrations: list[str]
) -> None:
    result = run_python(
        """
        import etl_database_schema as schema
        schema.setup("sqlite:///ledger.sqlite3")
        print("applied", schema.migrate())
        from django.db import IntegrityError, transaction
        from etl_database_schema.ledger.models import PipelineRun, ProcessedObject

        run = PipelineRun.objects.create(run_id="r1", lane="file_processing", job="ingest")
        ProcessedObject.objects.create(
            key="landing/pos/sales_2024-05-01.csv", etag="abc", dataset="sales", run=run,
            output_keys=["validated/sales/dt=2024-05-01/sales_2024-05-01.csv"],
        )
        stored = ProcessedObject.objects.get(key="landing/pos/sales_2024-05-01.csv")
        print("read", stored.state, stored.output_keys[0], stored.run.run_id)
        try:
            with transaction.atomic():
                ProcessedObject.objects.create(key=stored.key, etag="abc")
        except IntegrityError:
            print("duplicate refused")
        ProcessedObject.objects.create(key=stored.key, etag="def")
        print("count", ProcessedObject.objects.count())
        """
    )

    assert result.returncode == 0, result.stderr
    applied = ", ".join(repr(name) for name in migrations)
    assert f"applied [{applied}]" in result.stdout
    assert "read processing validated/sales/dt=2024-05-01/sales_2024-05-01.csv r1" in result.stdout
    assert "duplicate refused" in result.stdout
    assert "count 2" in result.stdout


def test_state_outside_the_choices_is_refused_by_the_database(run_python: RunPython) -> None:
    result = run_python(
        """
        import etl_database_schema as schema
        schema.setup("sqlite:///ledger.sqlite3")
        schema.migrate()
        from django.db import IntegrityError
        from etl_database_schema.ledger.models import PipelineRun
        try:
            PipelineRun.objects.create(run_id="r1", lane="data_pipeline", job="x", status="done")
        except IntegrityError as exc:
            print("refused:", exc)
        """
    )

    assert result.returncode == 0, result.stderr
    assert "refused: CHECK constraint failed: etl_pipeline_run_status_valid" in result.stdout


def test_setup_twice_with_the_same_url_is_a_no_op(run_python: RunPython) -> None:
    result = run_python(
        """
        import etl_database_schema as schema
        schema.setup("sqlite:///a.sqlite3")
        schema.setup("sqlite:///a.sqlite3")
        print("configured", schema.is_configured())
        """
    )

    assert result.returncode == 0, result.stderr
    assert "configured True" in result.stdout


def test_setup_with_another_url_names_both_without_passwords(run_python: RunPython) -> None:
    result = run_python(
        """
        import etl_database_schema as schema
        schema.setup("sqlite:///a.sqlite3")
        try:
            schema.setup("postgresql://etl:hunter2@db/etl")
        except schema.SetupConflictError as exc:
            print("refused:", exc)
        """
    )

    assert result.returncode == 0, result.stderr
    assert "refused: Django is already set up for sqlite:///a.sqlite3" in result.stdout
    assert "cannot switch to postgresql://etl:***@db/etl" in result.stdout
    assert "hunter2" not in result.stdout


def test_setup_refuses_django_configured_by_someone_else(run_python: RunPython) -> None:
    result = run_python(
        """
        from django.conf import settings
        settings.configure()
        import etl_database_schema as schema
        try:
            schema.setup("sqlite:///a.sqlite3")
        except schema.SetupConflictError as exc:
            print("refused:", exc)
        """
    )

    assert result.returncode == 0, result.stderr
    assert "already configured by another part of this process" in result.stdout
    assert "etl_database_schema.ledger" in result.stdout


def test_setup_leaves_logging_alone(run_python: RunPython) -> None:
    result = run_python(
        """
        import logging
        import etl_database_schema as schema
        before = list(logging.getLogger("django").handlers)
        schema.setup("sqlite://")
        print("handlers unchanged", logging.getLogger("django").handlers == before)
        """
    )

    assert result.returncode == 0, result.stderr
    assert "handlers unchanged True" in result.stdout


def test_a_run_inserted_without_a_holder_is_kept_and_left_alone(run_python: RunPython) -> None:
    # A process of the release before ledger 0003 still running when the database is
    # migrated inserts its runs without the holder column: they must still start, and
    # the sweep of abandoned runs must leave them (nothing tells whose they are).
    result = run_python(
        """
        import etl_database_schema as schema
        schema.setup("sqlite:///ledger.sqlite3")
        schema.migrate()
        from django.db import connection
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO etl_pipeline_run (run_id, lane, job, dataset, parameters, status,"
                " started_at, inputs_count, outputs_count, quarantined_count, failed_count,"
                " rows_written, error) VALUES ('old', 'data_pipeline', 'run', '', '{}',"
                " 'running', '2026-12-01 00:00:00', 0, 0, 0, 0, 0, '')"
            )
        schema.connect("sqlite:///ledger.sqlite3")
        print("abandoned", schema.abandon_runs(lambda holder: True))
        schema.start_run("new", lane="data_pipeline", job="run", holder={"pid": 1})
        print("gone", schema.abandon_runs(lambda holder: holder.get("pid") == 1))
        old = schema.get_run("old")
        print("old", old.status if old else None)
        """
    )

    assert result.returncode == 0, result.stderr
    assert "abandoned []" in result.stdout
    assert "gone ['new']" in result.stdout
    assert "old running" in result.stdout


def test_a_run_judged_abandoned_is_finished_by_its_own_process(run_python: RunPython) -> None:
    # The sweep judges a run by its recorded pid; should it judge a live run dead, the
    # run's own process finishing it later must win, not be refused.
    result = run_python(
        """
        import etl_database_schema as schema
        schema.setup("sqlite:///ledger.sqlite3")
        schema.migrate()
        schema.connect("sqlite:///ledger.sqlite3")
        schema.start_run("live", lane="data_pipeline", job="run", holder={"pid": 1})
        print("judged", schema.abandon_runs(lambda holder: True))
        print("error", schema.get_run("live").error[:11])
        schema.finish_run("live", "succeeded", inputs=2, outputs=2)
        run = schema.get_run("live")
        print("finished", run.status, repr(run.error))
        try:
            schema.finish_run("live", "failed", error="again")
        except schema.DatabaseRefusedError:
            print("second finish refused")
        """
    )

    assert result.returncode == 0, result.stderr
    assert "judged ['live']" in result.stdout
    assert "error abandoned: " in result.stdout
    assert "finished succeeded ''" in result.stdout
    assert "second finish refused" in result.stdout
