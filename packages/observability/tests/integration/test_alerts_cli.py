"""Alerts as operators meet them: `check` opens and delivers them; list, ack, snooze."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from etl_core.layout import landing_key
from etl_core.storage import open_store
from etl_core.testing.deliveries import publish_delivery
from observability.alerts import AlertWatch, ObjectStoreAlerts, fingerprint
from observability.service import StatusService
from observability.settings import ObservabilitySettings

Cli = Callable[..., subprocess.CompletedProcess[str]]
Migrate = Callable[[str], None]
TOKEN = "T0001/B0002/CliSeCrEt77"
STOCK = fingerprint("stock", "age", "landing")


def drop(tmp_path: Path, source: str, age: timedelta) -> None:
    """A file that landed ``age`` ago, validated now (the alerts here are landing's)."""
    at = datetime.now(UTC) - age
    key = landing_key(source, f"{source}_{at:%Y%m%d}.csv")
    with open_store(str(tmp_path / "lake")) as store:
        store.write_bytes(key, b"id\n1\n")
        publish_delivery(store, source, at.date(), {"part.csv": b"x"}, landing=key)
    os.utime(tmp_path / "lake" / key, (at.timestamp(), at.timestamp()))


def listed(cli: Cli, options: list[str], *flags: str, env: dict[str, str] | None = None) -> Any:
    result = cli(*options, "alerts", "list", "--json", *flags, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["alerts"]


def test_check_opens_delivers_once_after_a_retry_and_resolves_with_the_exit_code_unchanged(
    cli: Cli, tmp_path: Path, receiver: Any, aged_feeds: Callable[..., list[str]]
) -> None:
    options = aged_feeds("sales", "stock")
    drop(tmp_path, "sales", timedelta(minutes=5))
    drop(tmp_path, "stock", timedelta(hours=4))
    env = {"ETL_ALERT_WEBHOOKS": "env:HOOK", "HOOK": f"{receiver.url}/hooks/{TOKEN}"}

    first = cli(*options, "check", env=env)
    second = cli(*options, "check", env=env)  # the same condition: no new notification

    assert first.returncode == 1, first.stderr
    assert second.returncode == 1, second.stderr
    assert [status for _, _, status in receiver.received] == [500, 200]
    (told,) = receiver.accepted()
    assert (told["event"], told["alert"]["fingerprint"]) == ("opened", STOCK)
    assert told["alert"]["level"] == "critical"
    assert TOKEN not in first.stderr + second.stderr
    assert "env:HOOK" in first.stderr  # the retry is logged with the reference
    (alert,) = listed(cli, options)
    assert (alert["fingerprint"], alert["state"], alert["dataset"]) == (STOCK, "open", "stock")

    drop(tmp_path, "stock", timedelta(minutes=1))
    third = cli(*options, "check", env=env)
    assert third.returncode == 0, third.stderr
    assert receiver.accepted()[-1]["event"] == "resolved"
    assert listed(cli, options) == []
    assert [a["state"] for a in listed(cli, options, "--all")] == ["resolved"]


def test_ack_and_snooze_change_the_alert_and_refuse_bad_input_with_exit_2(
    cli: Cli, tmp_path: Path, aged_feeds: Callable[..., list[str]]
) -> None:
    options = aged_feeds("stock")
    drop(tmp_path, "stock", timedelta(hours=2))
    assert cli(*options, "check").returncode == 1

    acked = cli(*options, "alerts", "ack", STOCK)
    assert acked.returncode == 0, acked.stderr
    assert listed(cli, options)[0]["state"] == "acknowledged"

    snoozed = cli(*options, "alerts", "snooze", STOCK, "--for", "2h")
    assert snoozed.returncode == 0, snoozed.stderr
    (alert,) = listed(cli, options)
    until = datetime.fromisoformat(alert["snoozed_until"]) - datetime.now(UTC)
    assert alert["state"] == "snoozed"
    assert timedelta(hours=1, minutes=55) < until <= timedelta(hours=2)

    table = cli(*options, "alerts", "list")
    assert table.returncode == 0
    assert STOCK in table.stdout
    assert "snoozed until" in table.stdout

    bad = cli(*options, "alerts", "snooze", STOCK, "--for", "two hours")
    assert bad.returncode == 2
    assert "--for: invalid duration 'two hours'" in bad.stderr
    for endless in ("36500d", "91d", "99999999d"):  # a century's snooze is a typo
        refused = cli(*options, "alerts", "snooze", STOCK, "--for", endless)
        assert refused.returncode == 2
        assert f"--for: invalid duration '{endless}': a snooze lasts at most 90d" in (
            refused.stderr
        )
    unknown = cli(*options, "alerts", "ack", "ffffffffffffffff")
    assert unknown.returncode == 2
    assert "no open, acknowledged or snoozed alert has fingerprint 'ffffffffffffffff'" in (
        unknown.stderr
    )
    assert listed(cli, options)[0]["state"] == "snoozed"  # nothing else changed


def test_with_a_database_the_alerts_live_in_the_ledger(
    cli: Cli, tmp_path: Path, migrate: Migrate, aged_feeds: Callable[..., list[str]]
) -> None:
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    options = aged_feeds("stock")
    drop(tmp_path, "stock", timedelta(hours=2))

    assert cli(*options, "check", env={"DATABASE_URL": url}).returncode == 1
    acked = cli(*options, "alerts", "ack", STOCK, env={"DATABASE_URL": url})

    assert acked.returncode == 0, acked.stderr
    (alert,) = listed(cli, options, env={"DATABASE_URL": url})
    assert (alert["state"], alert["level"]) == ("acknowledged", "warn")
    assert listed(cli, options) == []  # nothing went to the store's document
    assert not (tmp_path / "lake" / "_state").exists()


def test_two_deployments_sharing_a_database_never_see_or_change_each_others_alerts(
    cli: Cli, tmp_path: Path, migrate: Migrate, aged_feeds: Callable[..., list[str]]
) -> None:
    """Production's stock is late, staging's is fresh: staging's runs, list, ack and snooze
    never reach production's alert (they resolved it every run, and production's next
    run opened it again)."""
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    migrate(url)
    database = {"DATABASE_URL": url}
    production = aged_feeds("stock")
    staging = [*production[:2], "--storage", str(tmp_path / "staging" / "lake")]
    (tmp_path / "staging" / "lake").mkdir(parents=True)
    drop(tmp_path, "stock", timedelta(hours=2))
    drop(tmp_path / "staging", "stock", timedelta(minutes=1))
    assert cli(*production, "check", env=database).returncode == 1

    assert listed(cli, staging, env=database) == []
    unknown = cli(*staging, "alerts", "ack", STOCK, env=database)
    assert unknown.returncode == 2
    assert "no open, acknowledged or snoozed alert has fingerprint" in unknown.stderr
    assert cli(*staging, "alerts", "snooze", STOCK, "--for", "1h", env=database).returncode == 2
    for _ in range(2):
        checked = cli(*staging, "check", env=database)
        assert checked.returncode == 0, checked.stderr
    (alert,) = listed(cli, production, "--all", env=database)
    assert (alert["fingerprint"], alert["state"]) == (STOCK, "open")
    assert listed(cli, staging, "--all", env=database) == []
    acked = cli(*production, "alerts", "ack", STOCK, env=database)
    assert acked.returncode == 0, acked.stderr
    assert listed(cli, production, env=database)[0]["state"] == "acknowledged"


def test_api_status_and_metrics_show_the_open_alerts(
    lake: Any, clock: Any, berlin: Any, weekday_contract: Any
) -> None:
    settings = ObservabilitySettings()
    watch = AlertWatch.from_settings(ObjectStoreAlerts(lake.store), clock, settings)
    service = StatusService(
        [weekday_contract(expected=None)],
        lake.store,
        clock,
        interval=timedelta(minutes=1),
        alerts=watch,
    )
    clock.set(berlin(21, 12))
    landed = lake.drop("pos", "pos_20261221.csv", berlin(19, 12))  # 48h old: warn (26h)
    lake.validate("pos", date(2026, 12, 21), 1, berlin(21, 11), landed)  # validated since
    snapshot = service.refresh()
    service.stop()

    status = json.loads(snapshot.status)
    (alert,) = status["alerts"]
    assert alert["fingerprint"] == fingerprint("pos", "age", "landing")
    assert {"dataset", "monitor", "level", "state", "opened_at", "updated_at", "summary"} <= set(
        alert
    )
    assert (alert["level"], alert["state"]) == ("warn", "open")
    metrics = snapshot.metrics.decode()
    assert 'etl_observability_alerts{state="open",level="warn"} 1' in metrics


def test_a_webhook_reference_that_resolves_to_nothing_is_warned_of_at_start(
    cli: Cli, tmp_path: Path, aged_feeds: Callable[..., list[str]]
) -> None:
    """A mistyped `env:` name was said only once an alert had to be told (days later,
    on `serve`): the channel an operator counts on was silently dead until then."""
    options = aged_feeds("stock")
    drop(tmp_path, "stock", timedelta(minutes=5))  # fresh: no alert to deliver

    result = cli(*options, "check", env={"ETL_ALERT_WEBHOOKS": "env:HOOK_MISTYPED"})

    assert result.returncode == 0, result.stderr
    assert "alert_webhooks" in result.stderr
    assert "env:HOOK_MISTYPED" in result.stderr
    assert "HOOK_MISTYPED is not set" in result.stderr
