"""A dead feed whose zones a lifecycle rule empties keeps reading late (its age alert open),
and a volume alert whose partitions are no longer measured resolves saying why."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from etl_core.contracts import Contract
from etl_core.errors import StorageError
from etl_core.layout import landing_key
from etl_core.storage import open_store
from observability.alerts import (
    AlertBook,
    AlertWatch,
    ObjectStoreAlerts,
    carry_emptied,
    fingerprint,
)
from observability.evaluation import Evaluation, evaluate
from observability.monitors import last_seen
from observability.service import StatusService
from observability.settings import ObservabilitySettings

LANDING = fingerprint("pos", "age", "landing")
VALIDATED = fingerprint("pos", "age", "validated")
VOLUME = fingerprint("pos", "volume")


@pytest.fixture
def book(lake: Any, clock: Any) -> AlertBook:
    return AlertBook(ObjectStoreAlerts(lake.store), clock, reminder_interval=timedelta(hours=1))


def judged(book: AlertBook, contract: Contract, lake: Any, clock: Any) -> Evaluation:
    """What check and serve do each cycle: evaluate, carry the emptied zones, observe."""
    evaluation = carry_emptied(evaluate([contract], lake.store, clock), [contract], book.active())
    book.observe(evaluation)
    return evaluation


def result(evaluation: Evaluation, monitor: str, subject: str) -> Any:
    (found,) = [r for r in evaluation.results if (r.monitor, r.subject) == (monitor, subject)]
    return found


def test_dead_feed_age_alert_stays_open_after_lifecycle_empties_zone(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract(expected=None)  # 26h warn, 50h critical, no schedule
    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))  # 30h old: warn
    judged(book, contract, lake, clock)
    assert {a.fingerprint for a in book.active()} == {LANDING, VALIDATED}
    lake.store.delete(dropped)  # a lifecycle rule expired it: every zone is empty
    clock.advance(timedelta(hours=2))

    evaluation = judged(book, contract, lake, clock)

    landing = result(evaluation, "age", "landing")
    assert (landing.level, landing.state) == ("warn", "emptied")
    assert landing.value == timedelta(hours=32).total_seconds()  # its age grows with the clock
    assert landing.why == (
        "the newest landing object is 1d 8h old, past warn after 1d 2h: nothing newer than "
        "2026-12-01 06:00 UTC; landing was emptied since (a lifecycle rule expired its "
        "objects, say) and nothing arrived"
    )
    assert evaluation.level == "warn"
    assert evaluation.exit_code == 1  # not 3: nothing judged
    active = {a.fingerprint: a for a in book.active()}
    assert set(active) == {LANDING}  # the stuck validated zone's files are gone: resolved
    assert active[LANDING].summary == landing.why

    clock.set(datetime(2026, 12, 3, 8, 0, tzinfo=UTC))  # 50h since the last file: critical
    evaluation = judged(book, contract, lake, clock)
    assert result(evaluation, "age", "landing").level == "critical"
    (alert,) = book.active()
    assert (alert.fingerprint, alert.level, alert.state) == (LANDING, "critical", "open")

    lake.drop("pos", "pos_20261203.csv", clock.now())  # the feed is back
    clock.advance(timedelta(minutes=5))
    evaluation = judged(book, contract, lake, clock)
    assert result(evaluation, "age", "landing").state == "fresh"
    assert LANDING not in {a.fingerprint for a in book.active()}


def test_a_scheduled_dead_feed_stays_overdue_after_its_zone_is_emptied(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract()  # due 06:00 Berlin on weekdays, 2h grace, 26h/50h
    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 5, 30, tzinfo=UTC))
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))  # Wednesday's file was due by 07:00
    first = judged(book, contract, lake, clock)
    assert result(first, "age", "landing").state == "overdue"
    lake.store.delete(dropped)
    clock.advance(timedelta(hours=1))

    evaluation = judged(book, contract, lake, clock)

    landing = result(evaluation, "age", "landing")
    assert (landing.level, landing.state) == ("warn", "emptied")
    assert landing.why.startswith(
        "a delivery was due by 2026-12-02 08:00 CET and landing has nothing newer than "
        "2026-12-01 05:30 UTC; landing was emptied since"
    )
    clock.set(datetime(2026, 12, 3, 8, 0, tzinfo=UTC))  # 50h30m since the last file
    assert result(judged(book, contract, lake, clock), "age", "landing").level == "critical"
    ages = [(a.subject, a.level) for a in book.active() if a.monitor == "age"]
    assert ages == [("landing", "critical")]  # the stuck validated zone's file is gone


def test_an_emptied_zone_whose_alert_was_not_about_its_age_still_resolves(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    """No thresholds any more (unjudged) or a curated zone the contract no longer builds:
    nothing judges the zone, so the carried alert resolves as no longer measured."""
    late = weekday_contract(expected=None)
    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    judged(book, late, lake, clock)
    lake.store.delete(dropped)
    clock.advance(timedelta(hours=1))
    judged(book, late, lake, clock)
    assert LANDING in {a.fingerprint for a in book.active()}
    shown_only = weekday_contract(expected=None, warn_after=None, critical_after=None)
    clock.advance(timedelta(hours=1))

    evaluation = judged(book, shown_only, lake, clock)

    assert result(evaluation, "age", "landing").state == "empty"
    assert book.active() == []
    (resolved,) = [a for a in book.store.alerts(include_resolved=True) if a.fingerprint == LANDING]
    assert resolved.summary.startswith("landing of pos is no longer measured")


def test_a_curated_zone_the_contract_no_longer_builds_resolves_once_emptied(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract(expected=None)  # the default transform: no curated zone expected
    lake.curate("pos", date(2026, 12, 1), 10, datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    judged(book, contract, lake, clock)
    curated = fingerprint("pos", "age", "curated")
    assert curated in {a.fingerprint for a in book.active()}
    for info in list(lake.store.list("curated/")):
        lake.store.delete(info.key)
    clock.advance(timedelta(hours=1))

    evaluation = judged(book, contract, lake, clock)

    assert result(evaluation, "age", "curated").state == "empty"
    assert curated not in {a.fingerprint for a in book.active()}


def test_check_keeps_a_dead_feed_late_after_its_landing_zone_is_emptied(
    cli: Callable[..., Any], tmp_path: Path, aged_feeds: Callable[..., list[str]]
) -> None:
    """Each check is a new process: what was last measured comes from the alert store."""
    options = aged_feeds("stock")
    key = landing_key("stock", f"stock_{datetime.now(UTC):%Y%m%d}.csv")
    with open_store(str(tmp_path / "lake")) as store:
        store.write_bytes(key, b"id\n1\n")
    stored = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(tmp_path / "lake" / key, (stored, stored))

    first = cli(*options, "check", "--json")
    (tmp_path / "lake" / key).unlink()  # a lifecycle rule expired it
    emptied = cli(*options, "check", "--json")

    assert first.returncode == 1, first.stderr
    assert emptied.returncode == 1, emptied.stderr  # not 3: nothing judged
    (status,) = json.loads(emptied.stdout)["datasets"]
    (landing,) = [
        r for r in status["results"] if (r["monitor"], r["subject"]) == ("age", "landing")
    ]
    assert (landing["level"], landing["state"]) == ("warn", "emptied")
    listed = cli(*options, "alerts", "list", "--json")
    alerts = json.loads(listed.stdout)["alerts"]
    assert [(a["monitor"], a["subject"], a["state"]) for a in alerts] == [
        ("age", "landing", "open")
    ]


def test_serve_keeps_a_dead_feed_late_across_a_restart_after_the_zone_is_emptied(
    lake: Any, clock: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract(expected=None)

    def serve() -> StatusService:
        watch = AlertWatch.from_settings(
            ObjectStoreAlerts(lake.store), clock, ObservabilitySettings()
        )
        return StatusService(
            [contract], lake.store, clock, interval=timedelta(hours=1), alerts=watch
        )

    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    before = serve()
    before.refresh()
    before.stop()
    lake.store.delete(dropped)  # emptied while serve was down
    clock.advance(timedelta(hours=2))

    after = serve()
    snapshot = after.refresh()
    after.stop()

    status = json.loads(snapshot.status)
    (dataset,) = status["datasets"]
    assert dataset["level"] == "warn"
    assert [(a["subject"], a["state"]) for a in status["alerts"]] == [("landing", "open")]
    assert 'etl_observability_dataset_level{dataset="pos"} 1' in snapshot.metrics.decode()


def test_volume_alert_resolves_saying_why_once_its_partitions_are_no_longer_measured(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract(expected=None, warn_after=None, critical_after=None)
    monday = date(2026, 11, 30)
    for week in range(1, 5):
        day = monday - timedelta(weeks=week)
        lake.curate("pos", day, 1000, datetime.combine(day, datetime.min.time(), UTC))
    lake.curate("pos", monday, 10, datetime(2026, 11, 30, 6, 0, tzinfo=UTC))  # 99% below
    clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    judged(book, contract, lake, clock)
    assert VOLUME in {a.fingerprint for a in book.active()}
    lake.curate("pos", monday + timedelta(days=1), 10, datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))  # no Tuesday has rows: no baseline

    evaluation = judged(book, contract, lake, clock)

    assert result(evaluation, "volume", "2026-12-01").state == "no_baseline"
    assert VOLUME not in {a.fingerprint for a in book.active()}
    (resolved,) = [a for a in book.store.alerts(include_resolved=True) if a.fingerprint == VOLUME]
    assert resolved.summary.startswith("volume of pos is no longer measured: 2026-12-01: only 0")


def test_volume_alert_resolves_once_every_partition_is_gone(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract(expected=None, warn_after=None, critical_after=None)
    monday = date(2026, 11, 30)
    for week in range(5):
        day = monday - timedelta(weeks=week)
        lake.curate("pos", day, 10 if week == 0 else 1000, datetime(2026, 11, 30, tzinfo=UTC))
    clock.set(datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
    judged(book, contract, lake, clock)
    assert VOLUME in {a.fingerprint for a in book.active()}
    for info in list(lake.store.list("curated/")):
        lake.store.delete(info.key)  # a lifecycle rule expired every partition
    clock.advance(timedelta(hours=1))

    evaluation = judged(book, contract, lake, clock)

    assert result(evaluation, "volume", "latest").state == "no_data"
    assert VOLUME not in {a.fingerprint for a in book.active()}
    (resolved,) = [a for a in book.store.alerts(include_resolved=True) if a.fingerprint == VOLUME]
    assert resolved.summary == (
        "volume of pos is no longer measured: pos has no validated or curated partition "
        "(none came yet, or every one was expired since)"
    )


class _BlinkingAlerts(ObjectStoreAlerts):
    """An alert store whose reads fail while ``down`` (a storage blip), writes still work."""

    down = False

    def alerts(self, *, include_resolved: bool = False) -> list[Any]:
        if self.down:
            raise StorageError("alerts.json: connection reset", key="alerts.json")
        return super().alerts(include_resolved=include_resolved)


def test_serve_keeps_a_dead_feeds_alert_open_when_the_alerts_cannot_be_read_for_a_cycle(
    lake: Any, clock: Any, weekday_contract: Any
) -> None:
    """A read of the alert store failing once (the carry's) must not let the cycle resolve
    the dead feed's alert as no longer measured: nothing would remember its last object."""
    contract = weekday_contract(expected=None)
    alerts = _BlinkingAlerts(lake.store)
    watch = AlertWatch.from_settings(alerts, clock, ObservabilitySettings())
    service = StatusService(
        [contract], lake.store, clock, interval=timedelta(hours=1), alerts=watch
    )
    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    service.refresh()
    lake.store.delete(dropped)
    clock.advance(timedelta(hours=1))
    alerts.down = True  # the carry's read fails; the update's own reads would work

    try:
        with_blip = service.refresh()
    finally:
        alerts.down = False
    clock.advance(timedelta(hours=1))
    after = service.refresh()
    service.stop()

    assert "alerts" in with_blip.error  # the cycle says its alerts were not updated
    assert LANDING in {a.fingerprint for a in alerts.alerts()}
    (dataset,) = json.loads(after.status)["datasets"]
    assert dataset["level"] == "warn"


def test_a_file_name_quoting_a_last_seen_time_does_not_keep_an_emptied_zone_late(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    """The last-seen moment is read from the age monitor's own sentence only: a vendor's
    file name that reads like it (named in a future-dated object's warning) is no last-seen
    object, so the warning resolves once the file is gone, as any future-dated one does."""
    contract = dataclasses.replace(
        weekday_contract(expected=None), pattern="pos_{date:%Y%m%d}*.csv"
    )
    name = "pos_20261201 nothing newer than 2026-11-01 00:00 UTC.csv"
    dropped = lake.drop("pos", name, datetime(2027, 6, 1, tzinfo=UTC))  # dated ahead
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    first = judged(book, contract, lake, clock)
    assert result(first, "age", "landing").state == "future"
    assert LANDING in {a.fingerprint for a in book.active()}
    lake.store.delete(dropped)
    clock.advance(timedelta(hours=1))

    evaluation = judged(book, contract, lake, clock)

    assert result(evaluation, "age", "landing").state == "empty"
    assert LANDING not in {a.fingerprint for a in book.active()}


@pytest.mark.parametrize("expected", [None, "0 6 * * 1-5"], ids=["stale", "overdue"])
def test_a_late_zones_why_names_its_newest_object_also_beside_a_future_dated_one(
    lake: Any, clock: Any, weekday_contract: Any, expected: str | None
) -> None:
    """What the carry reads back is the monitor's own sentence, whatever follows it."""
    contract = weekday_contract(expected=expected)
    lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 5, 30, 42, tzinfo=UTC))
    lake.drop("pos", "pos_20261202.csv", datetime(2027, 6, 1, tzinfo=UTC))  # dated ahead
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))

    landing = result(evaluate([contract], lake.store, clock), "age", "landing")

    assert landing.state == ("stale" if expected is None else "overdue")
    assert "; also 1 landing object dated after listing" in landing.why
    assert last_seen(landing.why) == datetime(2026, 12, 1, 5, 30, tzinfo=UTC)


def test_a_backfilled_old_file_does_not_make_a_dead_feed_older_than_its_alert_last_saw(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    """An emptied dead feed's zone then given one old file (a backfill keeping its old
    modification time) holds nothing newer than what its alert last saw: it stays judged by
    that, neither escalated by the backfill's age nor remembering it once expired again."""
    contract = weekday_contract(expected=None)  # 26h warn, 50h critical
    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    judged(book, contract, lake, clock)
    lake.store.delete(dropped)
    clock.advance(timedelta(hours=2))
    judged(book, contract, lake, clock)
    backfill = lake.drop("pos", "pos_20261120.csv", datetime(2026, 11, 20, 6, 0, tzinfo=UTC))
    clock.advance(timedelta(minutes=5))

    evaluation = judged(book, contract, lake, clock)

    landing = result(evaluation, "age", "landing")
    assert (landing.level, landing.state) == ("warn", "stale")  # 1d 8h: not 12d, critical
    assert landing.value == timedelta(hours=32, minutes=5).total_seconds()
    assert landing.why.startswith(
        "the newest landing object is 1d 8h old, past warn after 1d 2h: nothing newer than "
        "2026-12-01 06:00 UTC; landing's newer objects were removed since: the newest it "
        "holds (landing/pos/pos_20261120.csv) is from 2026-11-20 06:00 UTC"
    )
    (alert,) = [a for a in book.active() if a.fingerprint == LANDING]
    assert (alert.level, alert.summary) == ("warn", landing.why)
    lake.store.delete(backfill)  # expired again
    clock.advance(timedelta(minutes=5))
    again = result(judged(book, contract, lake, clock), "age", "landing")
    assert (again.level, again.state) == ("warn", "emptied")
    assert "nothing newer than 2026-12-01 06:00 UTC" in again.why


def test_a_dead_feeds_zone_holding_only_a_future_dated_object_stays_late_by_its_last_seen(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    """Emptied of its dated objects but for one dated ahead (a clock problem), the zone is
    as dead as an empty one: judged by the object last seen, the future-dated one told too,
    not de-escalated to the future warning (whose summary would forget the last-seen time)."""
    contract = weekday_contract(expected=None)  # 26h warn, 50h critical
    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    lake.drop("pos", "pos_20261202.csv", datetime(2027, 6, 1, tzinfo=UTC))  # dated ahead
    clock.set(datetime(2026, 12, 3, 12, 0, tzinfo=UTC))  # 54h: critical
    judged(book, contract, lake, clock)
    lake.store.delete(dropped)
    clock.advance(timedelta(hours=1))

    evaluation = judged(book, contract, lake, clock)

    landing = result(evaluation, "age", "landing")
    assert (landing.level, landing.state) == ("critical", "emptied")
    assert landing.why.startswith(
        "the newest landing object is 2d 7h old, past critical after 2d 2h: nothing newer "
        "than 2026-12-01 06:00 UTC; landing was emptied since"
    )
    assert "; also 1 landing object dated after listing" in landing.why
    assert landing.detail["future_key"] == "landing/pos/pos_20261202.csv"
    (alert,) = [a for a in book.active() if a.fingerprint == LANDING]
    assert (alert.level, alert.summary) == ("critical", landing.why)
