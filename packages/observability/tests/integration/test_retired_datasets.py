"""A dataset whose contract is removed: its open alerts resolve once, saying so."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from etl_core.contracts import declared_datasets, load_contracts
from etl_core.layout import landing_key
from etl_core.storage import open_store
from observability.alerts import AlertBook, AlertWatch, ObjectStoreAlerts
from observability.alerts.delivery import Dispatcher
from observability.contract_rules import VALIDATORS
from observability.monitors import SystemClock
from observability.service import StatusService


def _late_files(tmp_path: Path, *names: str) -> None:
    """One file of each of ``names``, two hours old (late: warn)."""
    stored = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    for name in names:
        key = landing_key(name, f"{name}_{datetime.now(UTC):%Y%m%d}.csv")
        with open_store(str(tmp_path / "lake")) as store:
            store.write_bytes(key, b"id\n1\n")
        os.utime(tmp_path / "lake" / key, (stored, stored))


def _settled(config: Path) -> None:
    """``config``'s contracts as left a minute ago: a file removed from its datasets
    directory just now is not told apart from one being replaced
    (:data:`etl_core.contracts.load.SETTLE_SECONDS`)."""
    then = time.time() - 60
    os.utime(config / "datasets", (then, then))


def _alerts(cli: Callable[..., Any], options: list[str], *more: str) -> list[tuple[str, str]]:
    listed = cli(*options, "alerts", "list", "--json", *more)
    assert listed.returncode == 0, listed.stderr
    return sorted({(a["dataset"], a["state"]) for a in json.loads(listed.stdout)["alerts"]})


def test_check_resolves_the_alert_of_a_dataset_whose_contract_was_removed(
    cli: Callable[..., Any], tmp_path: Path, aged_feeds: Callable[..., list[str]]
) -> None:
    options = aged_feeds("stock", "sales")
    _late_files(tmp_path, "stock", "sales")
    assert cli(*options, "check").returncode == 1
    assert _alerts(cli, options) == [("sales", "open"), ("stock", "open")]

    (tmp_path / "config" / "datasets" / "sales.toml").unlink()  # the feed is retired
    _settled(tmp_path / "config")
    again = cli(*options, "check", "--dataset", "stock")

    assert again.returncode == 1, again.stderr
    assert _alerts(cli, options) == [("stock", "open")]
    resolved = cli(*options, "alerts", "list", "--json", "--all")
    gone = [a for a in json.loads(resolved.stdout)["alerts"] if a["dataset"] == "sales"]
    assert gone
    assert {(a["state"], a["summary"]) for a in gone} == {
        ("resolved", "no contract declares sales any more")
    }


def test_serve_resolves_the_alert_of_a_dataset_whose_contract_was_removed_and_tells_it(
    lake: Any, clock: Any, weekday_contract: Any
) -> None:
    pos = weekday_contract(expected=None)
    stock = dataclasses.replace(pos, dataset="stock", source="stock")
    lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    lake.drop("stock", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    book = AlertBook(ObjectStoreAlerts(lake.store), clock, reminder_interval=timedelta(0))

    def serve(*contracts: Any) -> Any:
        watch = AlertWatch(book, Dispatcher([]))
        service = StatusService(
            list(contracts), lake.store, clock, interval=timedelta(hours=1), alerts=watch
        )
        snapshot = service.refresh()
        service.stop()
        return json.loads(snapshot.status)

    assert {a["dataset"] for a in serve(pos, stock)["alerts"]} == {"pos", "stock"}
    clock.advance(timedelta(hours=1))
    status = serve(pos)  # stock's contract removed, serve restarted

    assert {a["dataset"] for a in status["alerts"]} == {"pos"}
    assert {a.dataset for a in book.active()} == {"pos"}


def test_check_under_a_config_dir_declaring_none_of_the_open_alerts_warns_naming_them(
    cli: Callable[..., Any], tmp_path: Path, aged_feeds: Callable[..., list[str]]
) -> None:
    options = aged_feeds("stock", "sales")
    _late_files(tmp_path, "stock", "sales")
    assert cli(*options, "check").returncode == 1
    other = tmp_path / "other"  # another project's config directory, mounted by mistake
    (other / "datasets").mkdir(parents=True)
    stock = (tmp_path / "config" / "datasets" / "stock.toml").read_text()
    (other / "datasets" / "foo.toml").write_text(stock.replace("stock", "foo"))
    _settled(other)

    wrong = cli("--config-dir", str(other), *options[2:], "check")

    assert wrong.returncode == 3, wrong.stderr
    warned = [
        json.loads(line)
        for line in wrong.stderr.splitlines()
        if line.startswith("{") and json.loads(line)["level"] == "warning"
    ]
    said = " ".join(line["event"] for line in warned)
    assert "resolved 4 alerts of 2 datasets no contract declares any more: sales, stock" in said
    assert _alerts(cli, options) == []


def test_serve_running_since_before_a_contract_was_removed_resolves_its_alert_for_good(
    tmp_path: Path, aged_feeds: Callable[..., list[str]]
) -> None:
    aged_feeds("stock", "sales")
    _late_files(tmp_path, "stock", "sales")
    config = tmp_path / "config"
    contracts = list(load_contracts(config, validators=VALIDATORS))  # loaded at start
    with open_store(str(tmp_path / "lake")) as store:
        book = AlertBook(ObjectStoreAlerts(store), SystemClock(), reminder_interval=timedelta(0))
        service = StatusService(
            contracts,
            store,
            SystemClock(),
            interval=timedelta(hours=1),
            alerts=AlertWatch(book, Dispatcher([])),
            declared=partial(declared_datasets, config),
        )
        service.refresh()
        assert {a.dataset for a in book.active()} == {"sales", "stock"}

        # a deploy replacing the files: sales's is not there for a moment
        (config / "datasets" / "sales.toml").rename(config / "sales.toml")
        service.refresh()
        assert {a.dataset for a in book.active()} == {"sales", "stock"}

        (config / "sales.toml").unlink()  # serve not restarted
        _settled(config)
        service.refresh()
        service.refresh()  # still evaluating sales: its alert is not opened again
        service.stop()

        assert {a.dataset for a in book.active()} == {"stock"}
        history = book.store.alerts(include_resolved=True)
        assert [a.summary for a in history if a.dataset == "sales"] == [
            "no contract declares sales any more"
        ] * 2
