"""``check --executor celery`` and ``schedule`` with a real ``worker`` on Redis and RabbitMQ:
each dataset's monitors are one unit on the observability queue, and the verdict is
the one the local check gives; ``check --no-wait`` has the workers record the alerts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from etl_core.layout import landing_key
from etl_core.storage import open_store
from etl_core.testing.brokers import TestBroker
from etl_core.testing.deliveries import publish_delivery
from etl_core.testing.fixtures import REFUSED_LOGIN_PASSWORD
from etl_core.testing.logs import refused_start
from etl_core.testing.processes import BackgroundProcess
from observability.alerts import ObjectStoreAlerts

BIN = Path(sys.executable).parent / "etl-observability"
CONTRACT = """
dataset = "{name}"
source = "{name}"
pattern = "{name}_{{date:%Y%m%d}}.csv"
[[columns]]
name = "id"
[freshness]
warn_after = "1h"
critical_after = "3h"
"""

pytestmark = pytest.mark.slow


def lake(tmp_path: Path) -> dict[str, str]:
    """Two datasets, one fresh and one stale; the environment every process shares."""
    datasets = tmp_path / "config" / "datasets"
    datasets.mkdir(parents=True)
    now = datetime.now(UTC)
    (tmp_path / "lake").mkdir()
    with open_store(str(tmp_path / "lake")) as store:
        for name, age in (("fresh", timedelta(minutes=5)), ("stale", timedelta(hours=5))):
            (datasets / f"{name}.toml").write_text(CONTRACT.format(name=name))
            key = landing_key(name, f"{name}_{now - age:%Y%m%d}.csv")
            store.write_bytes(key, b"id\n1\n")  # validated now: the alert is landing's
            publish_delivery(store, name, (now - age).date(), {"part.csv": b"x"}, landing=key)
            moment = (now - age).timestamp()
            os.utime(tmp_path / "lake" / key, (moment, moment))
    return {
        "ETL_STORAGE_URL": str(tmp_path / "lake"),
        "ETL_CONFIG_DIR": str(tmp_path / "config"),
        "ETL_LOG_FORMAT": "json",
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_a_check_on_the_workers_gives_the_local_verdict(
    tmp_path: Path, celery_broker: TestBroker
) -> None:
    env = {**os.environ, **celery_broker.env(), **lake(tmp_path)}
    at = datetime.now(UTC).replace(microsecond=0).isoformat()
    local = run(env, "check", "--json", "--at", at)
    command = [str(BIN), "worker"]
    with BackgroundProcess(command, env=env, log=tmp_path / "worker.log") as worker:
        worker.wait_for(" ready.", timeout=90)
        remote = run(env, "check", "--json", "--at", at, "--executor", "celery")
        log = worker.log()
    assert (local.returncode, remote.returncode) == (1, 1), remote.stderr[-3000:]
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert [json.loads(remote.stdout)["datasets"][i]["level"] for i in (0, 1)] == [
        "ok",
        "critical",
    ]
    assert log.count("succeeded in") == 2  # one unit per dataset, both on the worker


def test_the_scheduler_runs_the_check_on_the_workers(
    tmp_path: Path, celery_broker: TestBroker
) -> None:
    env = {
        **os.environ,
        **celery_broker.env(),
        **lake(tmp_path),
        "ETL_EXECUTOR": "celery",
        "ETL_SCHEDULE_CHECK_INTERVAL": "2s",
        "ETL_SCHEDULE_TICK": "0.5s",
    }
    with BackgroundProcess([str(BIN), "worker"], env=env, log=tmp_path / "worker.log") as worker:
        worker.wait_for(" ready.", timeout=90)
        scheduled = run(env, "schedule", "--max-ticks", "12")
    assert scheduled.returncode == 0, scheduled.stderr[-3000:]
    assert "12 tick(s), 12 leading; fired: check" in scheduled.stdout
    assert "scheduled check fired: 2 unit(s) enqueued" in scheduled.stderr
    assert "'critical': 1" in scheduled.stderr  # the stale dataset, judged on the worker


def test_a_check_enqueued_without_waiting_has_its_workers_record_the_alerts(
    tmp_path: Path, celery_broker: TestBroker
) -> None:
    env = {**os.environ, **celery_broker.env(), **lake(tmp_path)}
    env.pop("DATABASE_URL", None)  # the alerts in the store
    enqueued = run(env, "check", "--executor", "celery", "--no-wait")
    assert enqueued.returncode == 0, enqueued.stderr[-3000:]
    assert "enqueued 2 datasets on queue" in enqueued.stdout
    alerts = ObjectStoreAlerts(open_store(str(tmp_path / "lake")))
    assert alerts.alerts() == []  # nothing evaluated yet: the units wait for a worker
    with BackgroundProcess([str(BIN), "worker"], env=env, log=tmp_path / "worker.log") as worker:
        worker.wait_for("succeeded in", timeout=90, count=2)
    (alert,) = alerts.alerts()
    assert (alert.dataset, alert.monitor, alert.level, alert.state) == (
        "stale",
        "age",
        "critical",
        "open",
    )


def test_a_check_without_waiting_refuses_what_needs_its_verdict(tmp_path: Path) -> None:
    env = {**os.environ, **lake(tmp_path), "ETL_BROKER_URL": "redis://127.0.0.1:6379/0"}
    local = run(env, "check", "--no-wait")
    assert local.returncode == 2
    assert "--no-wait needs --executor celery" in local.stderr
    verdict = run(env, "check", "--executor", "celery", "--no-wait", "--json", "--html", "p.html")
    assert verdict.returncode == 2
    assert "returns before any verdict" in verdict.stderr
    assert "--html" in verdict.stderr
    assert "--json" in verdict.stderr


def test_a_check_without_waiting_on_a_broker_refusing_the_login_exits_2_naming_it(
    tmp_path: Path,
) -> None:
    broker = "amqp://guest:wrong-Secret@127.0.0.1:5672//"
    env = {**os.environ, **lake(tmp_path), "ETL_BROKER_URL": broker}
    done = run(env, "check", "--executor", "celery", "--no-wait")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "refused the login" in done.stderr
    assert "Traceback" not in done.stderr
    assert "wrong-Secret" not in done.stderr


def test_an_unknown_executor_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, **lake(tmp_path), "ETL_EXECUTOR": "spark"}
    done = run(env, "check")
    assert done.returncode == 2
    assert "executor" in done.stderr


def test_a_monitor_unit_on_a_store_whose_directory_is_gone_fails_not_reads_as_empty(
    lake: Any, weekday_contract: Any
) -> None:
    """A worker outlives its store's mount: a unit run after the directory went away
    fails (the unit's error, retried or reported) instead of judging every zone empty and
    recording ``unknown`` for a dataset whose files are there once the volume is back."""
    from etl_core.contracts import ContractSet
    from etl_core.errors import StorageError
    from etl_core.work.events import monitor_unit
    from observability.work import MonitorContext, run_unit

    lake.drop("pos", "pos_20261221.csv", datetime(2026, 12, 21, 5, tzinfo=UTC))
    context = MonitorContext(lake.store, ContractSet((weekday_contract(expected=None),)))
    unit = monitor_unit("pos", datetime(2026, 12, 21, 6, tzinfo=UTC))
    assert run_unit(context, unit).level == "ok"
    away = lake.root.with_name("lake-away")

    lake.root.rename(away)
    try:
        with pytest.raises(StorageError) as raised:
            run_unit(context, unit)
    finally:
        away.rename(lake.root)

    assert "does not exist" in str(raised.value)


@pytest.mark.postgres
def test_a_worker_whose_database_refuses_the_login_refuses_to_start_naming_the_setting(
    tmp_path: Path, celery_broker: TestBroker, refused_login_urls: dict[str, str]
) -> None:
    """It started, answered ping and failed every unit recording its alerts, for ever."""
    url = refused_login_urls["role"]
    env = {**os.environ, **celery_broker.env(), **lake(tmp_path), "ETL_DATABASE_URL": url}
    env.pop("DATABASE_URL", None)
    done = run(env, "worker")
    errors = refused_start(done)
    assert "(from env ETL_DATABASE_URL)" in errors, done.stderr[-3000:]
    assert 'role "etl_no_such_role"' in errors
    assert REFUSED_LOGIN_PASSWORD not in done.stdout + done.stderr
    assert str(urlsplit(url).password) not in done.stdout + done.stderr


@pytest.mark.postgres
def test_a_worker_whose_database_lacks_migrations_refuses_to_start_naming_them(
    tmp_path: Path, celery_broker: TestBroker, postgres_url: str
) -> None:
    """It started, answered ping and failed every unit recording its history and alerts
    into a database not migrated yet."""
    env = {**os.environ, **celery_broker.env(), **lake(tmp_path), "ETL_DATABASE_URL": postgres_url}
    env.pop("DATABASE_URL", None)
    done = run(env, "worker")
    errors = refused_start(done)
    assert "(from env ETL_DATABASE_URL)" in errors, done.stderr[-3000:]
    assert "holds none of the platform's schema" in errors
    assert "run `etl-schema migrate`" in errors
