"""observability.db: the runtime's only door to the database.

Refusals that happen before Django is set up run in this process; everything that sets
Django up runs in a subprocess, so the pytest process never configures Django.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from etl_core.errors import ConfigError
from observability import db
from observability.errors import DatabaseNotConfiguredError

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
        from observability import db
        from observability.errors import SchemaNotInstalledError
        print("installed", db.schema_installed())
        for use in (lambda: db.connect("sqlite:///x.sqlite3"),
                    lambda: db.latest_freshness("sales")):
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
    assert result.stdout.count("pip install 'etl-observability[schema]'") == 2


def test_no_url_and_no_database_url_is_refused_not_defaulted_to_sqlite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(DatabaseNotConfiguredError, match="freshness monitor needs a database"):
        db.connect(feature="freshness monitor")

    assert list(tmp_path.iterdir()) == []


def test_invalid_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        db.connect("postgresql://etl:hunter2@db:port/etl")

    assert caught.value.fields == ("DATABASE_URL",)
    assert "invalid port" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(("level", "age"), [("stale", 1.0), ("ok", -5.0)])
def test_record_freshness_refuses_bad_observations(level: str, age: float) -> None:
    with pytest.raises(ValueError, match=level if level == "stale" else "negative"):
        db.record_freshness("sales", level, age)


def test_freshness_history_records_level_changes_only(tmp_path: Path) -> None:
    result = _run(
        """
        from datetime import date
        from observability import db
        db.connect("sqlite:///ledger.sqlite3", migrate=True)
        print("never checked", db.latest_freshness("sales"))
        print(db.record_freshness("sales", "ok", 600.0, latest_partition=date(2024, 5, 1)))
        print(db.record_freshness("sales", "ok", 900.0))
        print(db.record_freshness("sales", "critical", 90000.0, message="2 partitions late"))
        latest = db.latest_freshness("sales")
        print(latest.level, latest.observed_age_seconds, latest.message)
        print(db.record_freshness("sales", "unknown", None), db.latest_freshness("sales").level,
              db.latest_freshness("sales").observed_age_seconds)
        print("other dataset", db.latest_freshness("stores"))
        from etl_database_schema.ledger.models import FreshnessStatus
        print("history rows", FreshnessStatus.objects.count())
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "never checked None",
        "True",
        "False",
        "True",
        "critical 90000.0 2 partitions late",
        "True unknown None",
        "other dataset None",
        "history rows 3",
    ]


def test_last_success_and_ledger_gauges_read_the_ledger(tmp_path: Path) -> None:
    result = _run(
        """
        from datetime import date, datetime, timezone
        from observability import db
        db.connect("sqlite:///ledger.sqlite3", migrate=True)
        from etl_database_schema.ledger import models as m
        print("no runs", db.last_success("sales"))
        done = datetime(2024, 5, 1, 6, tzinfo=timezone.utc)
        start = datetime(2024, 5, 1, 5, tzinfo=timezone.utc)
        m.PipelineRun.objects.create(run_id="a", lane="data_pipeline", job="load",
                                     dataset="sales", status="succeeded", started_at=start,
                                     finished_at=done)
        m.PipelineRun.objects.create(run_id="b", lane="data_pipeline", job="load",
                                     dataset="sales", status="failed", started_at=start,
                                     finished_at=datetime(2024, 5, 2, tzinfo=timezone.utc))
        m.PipelineRun.objects.create(run_id="c", lane="file_processing", job="ingest")
        m.QuarantineRecord.objects.create(quarantine_key="quarantine/x", source_key="landing/x",
                                          reason_code="quality.failed", message="bad")
        job = m.BackfillJob.objects.create(dataset="sales", start_date=date(2024, 5, 1),
                                           end_date=date(2024, 5, 3))
        for day, state in [(1, "succeeded"), (2, "failed"), (3, "pending")]:
            m.BackfillPartition.objects.create(job=job, partition_date=date(2024, 5, day),
                                               state=state)
        print("last success", db.last_success("sales").isoformat())
        print(sorted(db.ledger_gauges().items()))
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["no runs None", "last success 2024-05-01T06:00:00+00:00"]
    assert lines[2] == str(
        [
            ("api_endpoints_failing", 0),
            ("backfill_partitions_cancelled", 0),
            ("backfill_partitions_failed", 1),
            ("backfill_partitions_pending", 1),
            ("backfill_partitions_running", 0),
            ("backfill_partitions_succeeded", 1),
            ("quarantine_open", 1),
            ("runs_running", 1),
        ]
    )


def test_unreachable_database_is_retryable(tmp_path: Path) -> None:
    result = _run(
        """
        import socket
        from etl_core.errors import RetryableError
        from observability import db
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            db.connect(f"postgresql://etl:hunter2@127.0.0.1:{port}/etl?connect_timeout=3")
        except RetryableError as exc:
            print("retryable:", exc)
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "retryable: database postgresql://etl:***@127.0.0.1:" in result.stdout
    assert "hunter2" not in result.stdout + result.stderr
