"""observability.db: the runtime's adapter on the database door (the schema package).

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
        for use in (lambda: db.connect("sqlite:///x.sqlite3"), db.ledger_gauges):
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


def test_last_successes_and_ledger_gauges_read_the_ledger(tmp_path: Path) -> None:
    result = _run(
        """
        from datetime import date
        from observability import db
        db.connect("sqlite:///ledger.sqlite3", migrate=True)
        import etl_database_schema as schema
        print("no runs", db.last_successes())
        schema.start_run("a", lane="data_pipeline", job="load", dataset="sales")
        schema.finish_run("a", "succeeded")
        schema.start_run("b", lane="data_pipeline", job="load", dataset="sales")
        schema.finish_run("b", "failed")
        schema.start_run("c", lane="file_processing", job="scan")
        with schema.models(schema.LEDGER_APP) as m:
            m["QuarantineRecord"].objects.create(quarantine_key="quarantine/x",
                                                 source_key="landing/x",
                                                 reason_code="quality.failed", message="bad")
        print("last success", {lane: run.run_id for lane, run in db.last_successes().items()})
        gauges = db.ledger_gauges()
        print(gauges["runs_running"], gauges["quarantine_open"],
              gauges["backfill_partitions_failed"])
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "no runs {}",
        "last success {'data_pipeline': 'a'}",
        "1 1 0",
    ]


def test_the_lanes_errors_are_raised_not_the_schemas(tmp_path: Path) -> None:
    result = _run(
        """
        from observability import db
        from observability.errors import DatabaseNotConfiguredError, DatabaseRefusedError
        try:
            db.ledger_gauges()
        except DatabaseNotConfiguredError as exc:
            print("not configured:", exc.feature)
        db.connect("sqlite:///ledger.sqlite3", migrate=True)
        recorder = db.run_recorder("sqlite:///ledger.sqlite3")
        from types import SimpleNamespace
        from datetime import datetime, timezone
        run = SimpleNamespace(run_id="r1", lane="observability", job="inventory", dataset="",
                              parameters={}, started_at=datetime.now(timezone.utc))
        recorder.start(run)
        try:
            recorder.start(run)
        except DatabaseRefusedError as exc:
            print("refused:", "UNIQUE" in str(exc))
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["not configured: ledger metrics", "refused: True"]


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


@pytest.mark.parametrize(
    ("owed", "said"),
    [
        ({"owed_event": "sent"}, "owed_event: expected one of opened, escalated"),
        ({"owed_at": None}, "owed_at: missing, though owed_event is 'opened'"),
        ({"owed_to": "webhook env:A"}, "owed_to: expected a list of channel names"),
    ],
)
def test_a_hand_edited_alert_outbox_in_the_ledger_is_refused_naming_the_row_and_field(
    tmp_path: Path, owed: dict[str, object], said: str
) -> None:
    result = _run(
        f"""
        import pickle
        from datetime import UTC, datetime
        from etl_core.storage import open_store
        from observability import db
        from observability.alerts import AlertRowError, DatabaseAlerts
        import etl_database_schema as schema

        db.connect("sqlite:///alerts.sqlite3", feature="alerts", migrate=True)
        at = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
        with schema.models(schema.LEDGER_APP) as ledger:
            ledger["Alert"].objects.create(
                fingerprint="f00d", dataset="sales", monitor="age", subject="landing",
                level="warn", state="open", summary="late", opened_at=at, updated_at=at,
                owed_event="opened", owed_at=at, owed_to=["webhook env:A"],
            )
            ledger["Alert"].objects.update(**{owed!r})
        try:
            DatabaseAlerts(open_store(".")).owed()  # adopting the row written without a store
        except AlertRowError as exc:
            again = pickle.loads(pickle.dumps(exc))
            print("refused:", again, again.fingerprint)
        """,
        tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "refused: etl_alert row of alert f00d: " + said in result.stdout
    assert result.stdout.rstrip().endswith("f00d")
