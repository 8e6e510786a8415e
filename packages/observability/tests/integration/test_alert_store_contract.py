"""The contract every alert store keeps, run on the object store, SQLite and PostgreSQL.

Django is set up once per process for one database, so the database variants run this
module again in a child pytest with ``ALERT_STORE_DATABASE_URL`` set (see the last
tests); there the ``database`` parameter runs against that database.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from etl_core.storage import open_store
from observability import db
from observability.alerts import (
    Alert,
    AlertBook,
    AlertDocumentError,
    AlertNotFoundError,
    AlertStore,
    DatabaseAlerts,
    ObjectStoreAlerts,
    carry_emptied,
    fingerprint,
)
from observability.evaluation import DatasetStatus, Evaluation, evaluate
from observability.monitors import Level, Result

DATABASE_URL_VARIABLE = "ALERT_STORE_DATABASE_URL"
T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


AlertStores = Callable[[str], AlertStore]


@pytest.fixture(params=["objects", "database"])
def alert_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStores]:
    """``alert_stores(name)``: the alert store of a deployment whose object store is the
    directory ``deployments/name`` of the test's; on a database, all share its table."""
    if request.param == "database":
        url = os.environ.get(DATABASE_URL_VARIABLE)
        if not url:
            pytest.skip(f"runs in a child process with {DATABASE_URL_VARIABLE} (tests below)")
        db.connect(url, feature="alert store contract", migrate=True)
        import etl_database_schema as schema

        with schema.models(schema.LEDGER_APP) as ledger:  # each test starts from an empty table
            ledger["Alert"].objects.all().delete()
    with ExitStack() as stores:

        def of(name: str) -> AlertStore:
            root = tmp_path / "deployments" / name
            root.mkdir(parents=True, exist_ok=True)
            store = stores.enter_context(open_store(str(root)))
            if request.param == "objects":
                return ObjectStoreAlerts(store)
            return DatabaseAlerts(store)

        yield of


@pytest.fixture
def alert_store(alert_stores: AlertStores) -> AlertStore:
    return alert_stores("lake")


def _alert(dataset: str, minutes: int = 0, level: str = "warn") -> Alert:
    at = T0 + timedelta(minutes=minutes)
    return Alert(
        fingerprint=fingerprint(dataset, "age", "landing"),
        dataset=dataset,
        monitor="age",
        subject="landing",
        level=level,  # type: ignore[arg-type]
        state="open",
        summary=f"{dataset} is late",
        opened_at=at,
        updated_at=at,
        notified_at=at,
    )


def _resolve(alert: Alert, at: datetime) -> Alert:
    return alert.changed(state="resolved", resolved_at=at, updated_at=at)


def test_an_empty_store_has_no_alerts(alert_store: AlertStore) -> None:
    assert alert_store.alerts() == []
    assert alert_store.alerts(include_resolved=True) == []


def test_opened_alerts_round_trip_newest_first(alert_store: AlertStore) -> None:
    first, second = _alert("sales"), _alert("stock", minutes=5, level="critical")
    assert alert_store.change(lambda active: [first, second]) == [first, second]
    assert alert_store.alerts() == [second, first]


def test_a_change_sees_the_active_alerts_and_replaces_by_fingerprint(
    alert_store: AlertStore,
) -> None:
    opened = _alert("sales")
    alert_store.change(lambda active: [opened])
    seen: list[Mapping[str, Alert]] = []

    def acknowledge(active: Mapping[str, Alert]) -> list[Alert]:
        seen.append(dict(active))
        at = T0 + timedelta(minutes=1)
        return [active[opened.fingerprint].changed(state="acknowledged", acknowledged_at=at)]

    alert_store.change(acknowledge)
    assert seen[-1] == {opened.fingerprint: opened}
    (after,) = alert_store.alerts()
    assert (after.state, after.acknowledged_at) == ("acknowledged", T0 + timedelta(minutes=1))


def test_a_resolved_alert_leaves_the_active_ones_for_the_history(alert_store: AlertStore) -> None:
    opened = _alert("sales")
    alert_store.change(lambda active: [opened])
    alert_store.change(lambda active: [_resolve(active[opened.fingerprint], T0)])
    assert alert_store.alerts() == []
    assert [a.state for a in alert_store.alerts(include_resolved=True)] == ["resolved"]
    reopened = _alert("sales", minutes=30)  # the same fingerprint opens a new episode
    alert_store.change(lambda active: [] if active else [reopened])
    assert alert_store.alerts() == [reopened]
    assert [a.state for a in alert_store.alerts(include_resolved=True)] == ["open", "resolved"]


def test_a_change_that_raises_writes_nothing(alert_store: AlertStore) -> None:
    alert_store.change(lambda active: [_alert("sales")])

    def refuse(active: Mapping[str, Alert]) -> list[Alert]:
        raise AlertNotFoundError("nope")

    with pytest.raises(AlertNotFoundError):
        alert_store.change(refuse)
    assert [a.state for a in alert_store.alerts()] == ["open"]


def _in_threads(work: Callable[[str], object], names: Sequence[str]) -> list[BaseException]:
    """Run ``work(name)`` for every name at once, each in a thread (joined, bounded); what
    they raised."""
    errors: list[BaseException] = []

    def guarded(name: str) -> None:
        try:
            work(name)
        except BaseException as exc:  # returned
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_concurrent_changes_are_not_lost(alert_store: AlertStore) -> None:
    names = [f"ds{n}" for n in range(6)]

    def open_one(name: str) -> None:
        alert_store.change(lambda active: [_alert(name)])

    assert _in_threads(open_one, names) == []
    assert sorted(a.dataset for a in alert_store.alerts()) == names


def test_two_writers_opening_the_same_alert_at_once_keep_one_alert_with_both_changes(
    alert_store: AlertStore,
) -> None:
    """``serve``'s cycle and a ``check`` run (two replicas, two cron runs) open the same
    new alert together: no error, one alert, the second writer's change made on the
    first's. Both read the (empty) active alerts before either writes: the object store's
    losing compare-and-put reads again and recomputes; a database serialises a store's
    writers, so there the first waits (1 s, bounded) for a second that cannot come in
    before it commits, and the second then reads the first's alert."""
    key = fingerprint("sales", "age", "landing")
    writers = ("cycle", "check")
    inside = {name: threading.Event() for name in writers}

    def write(name: str) -> None:
        other = inside[writers[1 - writers.index(name)]]

        def change(active: Mapping[str, Alert]) -> list[Alert]:
            inside[name].set()
            other.wait(1)  # both have read, unless serialised
            current = active.get(key)
            if current is None:
                return [_alert("sales").changed(summary=f"by {name}")]
            return [current.changed(level="critical", summary=f"{current.summary} then {name}")]

        alert_store.change(change)

    assert _in_threads(write, writers) == []
    (alert,) = alert_store.alerts(include_resolved=True)
    assert (alert.state, alert.level) == ("open", "critical")
    assert sorted(alert.summary.split()[1::2]) == ["check", "cycle"]  # by x then y


def test_two_stores_sharing_one_ledger_keep_their_alerts_apart(alert_stores: AlertStores) -> None:
    """Staging and production sharing a database: each lists, changes, owes and settles
    only its own alerts, though they have the same fingerprints."""
    production, staging = alert_stores("production"), alert_stores("staging")
    late = _owing(_alert("sales"), "opened", T0, "hook")
    production.change(lambda active: [late])
    seen: list[Mapping[str, Alert]] = []

    def open_both(active: Mapping[str, Alert]) -> list[Alert]:
        seen.append(dict(active))
        return [_alert("sales", minutes=5), _alert("stock", minutes=6)]

    staging.change(open_both)  # the same fingerprint opens in staging too

    assert seen == [{}]
    assert production.alerts() == [late]
    assert [a.dataset for a in staging.alerts()] == ["stock", "sales"]
    assert staging.owed() == []
    assert staging.settle(lambda owed: [late.told("hook")]) == []  # not staging's to settle
    assert production.owed() == [late]
    staging.change(lambda active: [_resolve(alert, T0) for alert in active.values()])
    assert production.alerts() == [late]  # staging's resolutions did not reach it
    assert [a.state for a in staging.alerts(include_resolved=True)] == ["resolved", "resolved"]
    assert production.alerts(include_resolved=True) == [late]
    (settled,) = production.settle(lambda owed: [alert.told("hook") for alert in owed])
    assert (settled.owed_event, production.owed()) == (None, [])


def _owing(alert: Alert, event: str, at: datetime, *channels: str) -> Alert:
    return alert.owing(event, at, channels)  # type: ignore[arg-type]


def test_the_outbox_of_active_and_resolved_alerts_is_kept_and_listed_oldest_first(
    alert_store: AlertStore,
) -> None:
    sales, stock, quiet = _alert("sales"), _alert("stock", minutes=5), _alert("quiet")
    owing = _owing(sales, "opened", T0, "webhook env:A", "slack env:B")
    alert_store.change(lambda active: [owing, _owing(stock, "opened", T0 + timedelta(1), "x")])
    alert_store.change(lambda active: [quiet])
    resolved = _owing(
        _resolve(active_one(alert_store, "stock"), T0 + timedelta(2)),
        "resolved",
        T0 + timedelta(2),
        "webhook env:A",
    )
    alert_store.change(lambda active: [resolved])

    owed = alert_store.owed()

    assert [(a.dataset, a.state, a.owed_event) for a in owed] == [
        ("sales", "open", "opened"),
        ("stock", "resolved", "resolved"),
    ]
    assert owed[0].owed_to == ("webhook env:A", "slack env:B")
    assert owed[0].owed_at == T0
    assert owed[1].owed_to == ("x", "webhook env:A")  # the resolution is owed to both
    assert owed[1].owed_at == T0 + timedelta(2)
    listed = {a.dataset: a for a in alert_store.alerts(include_resolved=True)}
    assert listed["sales"].owed_event == "opened"
    assert listed["quiet"].owed_event is None
    assert listed["quiet"].owed_to == ()


def active_one(alert_store: AlertStore, dataset: str) -> Alert:
    (alert,) = [a for a in alert_store.alerts() if a.dataset == dataset]
    return alert


def test_settling_writes_only_the_outbox_of_the_owing_episode(alert_store: AlertStore) -> None:
    first = _owing(_alert("sales"), "opened", T0, "webhook env:A")
    alert_store.change(lambda active: [first])
    ended = T0 + timedelta(minutes=10)
    alert_store.change(lambda active: [_resolve(active[first.fingerprint], ended)])
    again = _owing(
        _alert("sales", minutes=30), "opened", T0 + timedelta(minutes=30), "webhook env:A"
    )
    alert_store.change(lambda active: [again])
    seen: list[list[Alert]] = []

    def deliver_first(owing: Sequence[Alert]) -> list[Alert]:
        seen.append(list(owing))
        told = [a.told("webhook env:A") for a in owing if a.opened_at == T0]
        return [t.changed(summary="not written", level="critical") for t in told]

    written = alert_store.settle(deliver_first)

    assert [len(s) for s in seen][-1] == 2  # the resolved episode and the open one
    assert [(a.opened_at, a.owed_event) for a in written] == [(T0, None)]
    (history,) = [a for a in alert_store.alerts(include_resolved=True) if a.state == "resolved"]
    assert (history.owed_event, history.owed_to, history.summary) == (None, (), "sales is late")
    assert history.level == "warn"  # only the outbox was written
    (owed,) = alert_store.owed()
    assert (owed.opened_at, owed.owed_event) == (T0 + timedelta(minutes=30), "opened")


def test_settling_nothing_or_an_unknown_episode_writes_nothing(alert_store: AlertStore) -> None:
    assert alert_store.settle(lambda owing: []) == []
    alert_store.change(lambda active: [_owing(_alert("sales"), "opened", T0, "w")])
    stranger = _owing(_alert("sales", minutes=9), "opened", T0, "w").told("w")
    assert alert_store.settle(lambda owing: [stranger]) == []
    assert [a.owed_to for a in alert_store.owed()] == [("w",)]


def test_a_settle_and_an_ack_at_the_same_time_keep_both(alert_store: AlertStore) -> None:
    alert_store.change(lambda active: [_owing(_alert("sales"), "opened", T0, "w")])
    key = fingerprint("sales", "age", "landing")
    acked = threading.Event()
    errors: list[BaseException] = []

    def ack() -> None:
        try:
            alert_store.change(
                lambda active: [active[key].changed(state="acknowledged", acknowledged_by="ann")]
            )
        except BaseException as exc:  # reported below
            errors.append(exc)
        acked.set()

    def deliver(owing: Sequence[Alert]) -> list[Alert]:
        if not acked.is_set():  # the ack lands while the settle computes
            thread = threading.Thread(target=ack)
            thread.start()
            thread.join(0.5)  # bounded: on a database it waits for the settle's lock
        return [a.told("w") for a in owing]

    alert_store.settle(deliver)
    assert acked.wait(60)
    assert errors == []
    (alert,) = alert_store.alerts()
    assert (alert.state, alert.acknowledged_by) == ("acknowledged", "ann")
    assert alert.owed_event is None
    assert alert_store.owed() == []


def test_an_alert_on_a_zone_no_longer_measured_is_resolved_once_in_the_store(
    alert_store: AlertStore,
) -> None:
    book = AlertBook(
        alert_store, _Clock(), reminder_interval=timedelta(minutes=1), channels=("webhook env:A",)
    )
    key = fingerprint("sales", "age", "curated")
    stale = _age_result("warn", "stale", "the newest curated object is 30h old")
    emptied = _age_result("unknown", "empty", "no curated object of sales has been seen")

    assert [n.event for n in book.observe(_evaluation(T0, stale))] == ["opened"]
    resolved = book.observe(_evaluation(T0 + timedelta(minutes=5), emptied))
    again = book.observe(_evaluation(T0 + timedelta(minutes=10), emptied))

    assert [(n.event, n.alert.fingerprint) for n in resolved] == [("resolved", key)]
    assert alert_store.alerts() == []
    (kept,) = alert_store.alerts(include_resolved=True)
    assert (kept.state, kept.owed_event) == ("resolved", "resolved")
    assert [(a.fingerprint, a.owed_event) for a in alert_store.owed()] == [(key, "resolved")]
    assert kept.summary == (
        "curated of sales is no longer measured: no curated object of sales has been seen"
    )
    assert again == []
    assert alert_store.alerts() == []
    assert [a.owed_event for a in alert_store.owed()] == ["resolved"]  # not owed twice


def test_a_dead_feeds_emptied_zone_stays_late_by_what_the_store_remembers(
    alert_store: AlertStore, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    """The last-seen moment the carry reads back is kept by every store (its summary)."""
    contract = weekday_contract(expected=None)  # 26h warn, 50h critical
    book = AlertBook(alert_store, clock, reminder_interval=timedelta(hours=1))
    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, 42, tzinfo=UTC))
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    book.observe(evaluate([contract], lake.store, clock))
    lake.store.delete(dropped)
    clock.advance(timedelta(hours=2))

    carried = carry_emptied(
        evaluate([contract], lake.store, clock), [contract], alert_store.alerts()
    )
    book.observe(carried)

    (landing,) = [r for r in carried.results if (r.monitor, r.subject) == ("age", "landing")]
    assert (landing.level, landing.state) == ("warn", "emptied")
    (alert,) = [a for a in alert_store.alerts() if a.subject == "landing"]
    assert (alert.state, alert.summary) == ("open", landing.why)
    assert "nothing newer than 2026-12-01 06:00 UTC" in alert.summary


class _Clock:
    def now(self) -> datetime:
        return T0


def _age_result(level: Level, state: str, why: str) -> Result:
    return Result("sales", "age", "curated", level, state, "-", "warn 26h", why)


def _evaluation(at: datetime, result: Result) -> Evaluation:
    return Evaluation(at, (DatasetStatus("sales", result.level, (result,), None, None),))


def _run_contract_on(url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            __file__,
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "database",
        ],
        env={**os.environ, DATABASE_URL_VARIABLE: url, "DATABASE_URL": "", "ETL_DATABASE_URL": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "14 passed" in result.stdout, result.stdout


@pytest.mark.skipif(bool(os.environ.get(DATABASE_URL_VARIABLE)), reason="the child run itself")
def test_the_contract_holds_on_sqlite(tmp_path: Path) -> None:
    _run_contract_on(f"sqlite:///{tmp_path / 'alerts.sqlite3'}", tmp_path)


@pytest.mark.postgres
@pytest.mark.skipif(bool(os.environ.get(DATABASE_URL_VARIABLE)), reason="the child run itself")
def test_the_contract_holds_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    _run_contract_on(postgres_url, tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("level", "crit", "level: expected one of warn, critical, got 'crit'"),
        ("state", "muted", "state: expected one of open, acknowledged, snoozed, resolved"),
        ("snoozed_until", "2026-12-06T20:00:00", "snoozed_until: expected a time with a UTC"),
        ("owed_event", "sent", "owed_event: expected one of opened, escalated, deescalated"),
        ("owed_to", "webhook env:A", "owed_to: expected a list of channel names"),
        ("owed_event", "opened", "owed_at: missing, though owed_event is 'opened'"),
        ("owed_to", ["webhook env:A"], "owed_event: missing, though owed_at or owed_to is set"),
        ("owed_at", "soon", "owed_at: expected an ISO 8601 time, got 'soon'"),
    ],
)
def test_an_alert_document_with_a_field_this_version_cannot_use_is_refused_naming_it(
    tmp_path: Path, field: str, value: object, said: str
) -> None:
    with open_store(str(tmp_path)) as store:
        alerts = ObjectStoreAlerts(store)
        alerts.change(lambda active: [_alert("sales")])
        document = json.loads(store.read_bytes(alerts.key))
        document["active"][0][field] = value
        store.write_bytes(alerts.key, json.dumps(document).encode())

        with pytest.raises(AlertDocumentError) as raised:
            alerts.alerts()

    assert alerts.key in str(raised.value)
    assert said in str(raised.value)


PREVIOUS_RELEASE_FIELDS = frozenset(
    {f.name for f in dataclasses.fields(Alert)} - {"owed_event", "owed_at", "owed_to"}
)
"""The alert fields the release before the outbox knows (it refuses any other)."""


def test_an_alert_document_with_an_owed_notification_is_readable_by_the_previous_release(
    tmp_path: Path,
) -> None:
    opened = _alert("sales").owing("opened", T0, ["webhook env:A"])
    with open_store(str(tmp_path)) as store:
        alerts = ObjectStoreAlerts(store)
        alerts.change(lambda active: [opened])
        document = json.loads(store.read_bytes(alerts.key))

        (owing,) = alerts.owed()

    items = [*document["active"], *document["resolved"]]
    assert [sorted(set(item) - PREVIOUS_RELEASE_FIELDS) for item in items] == [[]]
    assert (owing.owed_event, owing.owed_at, owing.owed_to) == ("opened", T0, ("webhook env:A",))


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"owed_at": None}, "owed[0] is malformed: owed_at: missing, though owed_event is"),
        ({"owed_to": []}, "owed[0] is malformed: owed_to: no channel, though owed_event is"),
        ({"owed_at": "yesterday"}, "owed[0] is malformed: owed_at: expected an ISO 8601 time"),
        ({"owed_event": None}, "owed[0] is malformed: owed_event: missing, though owed_at"),
        ({"opened_at": 5}, "owed[0] is malformed: opened_at: expected an ISO 8601 time"),
    ],
)
def test_an_alert_outbox_half_set_or_malformed_is_refused_naming_the_field(
    tmp_path: Path, entry: dict[str, object], said: str
) -> None:
    with open_store(str(tmp_path)) as store:
        alerts = ObjectStoreAlerts(store)
        alerts.change(lambda active: [_alert("sales").owing("opened", T0, ["webhook env:A"])])
        document = json.loads(store.read_bytes(alerts.key))
        document["owed"][0].update(entry)
        store.write_bytes(alerts.key, json.dumps(document).encode())

        with pytest.raises(AlertDocumentError) as raised:
            alerts.owed()

    assert alerts.key in str(raised.value)
    assert said in str(raised.value)


def test_a_resolution_still_owed_outlives_the_resolved_history_trimming_it(
    tmp_path: Path,
) -> None:
    with open_store(str(tmp_path)) as store:
        alerts = ObjectStoreAlerts(store, keep_resolved=2)
        first = _resolve(_alert("sales"), T0).owing("resolved", T0, ["webhook env:A"])
        alerts.change(lambda active: [first])
        for n, dataset in enumerate(("stock", "prices", "orders"), start=1):
            told = _resolve(_alert(dataset, minutes=n), T0 + timedelta(minutes=n))
            alerts.change(lambda active, told=told: [told])  # type: ignore[misc]

        owed = alerts.owed()
        history = alerts.alerts(include_resolved=True)

    assert [(a.dataset, a.owed_event) for a in owed] == [("sales", "resolved")]
    assert [a.dataset for a in history] == ["orders", "prices", "sales"]
