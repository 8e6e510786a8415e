"""The alert lifecycle driven by a fake clock: open, update, remind, ack, snooze, resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from etl_core.storage import open_store
from observability.alerts import (
    AlertBook,
    AlertNotFoundError,
    Notification,
    ObjectStoreAlerts,
    fingerprint,
)
from observability.evaluation import DatasetStatus, Evaluation, evaluate
from observability.monitors import Level, Result, worst

START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.moment = START

    def now(self) -> datetime:
        return self.moment


def age(dataset: str, zone: str, level: Level, why: str = "") -> Result:
    return Result(dataset, "age", zone, level, "stale", "2h old", "warn 1h", why or f"{level}!")


def evaluation(at: datetime, *results: Result) -> Evaluation:
    datasets: dict[str, list[Result]] = {}
    for result in results:
        datasets.setdefault(result.dataset, []).append(result)
    statuses = tuple(
        DatasetStatus(name, worst(r.level for r in found), tuple(found), None, None)
        for name, found in datasets.items()
    )
    return Evaluation(at, statuses)


@pytest.fixture
def book(tmp_path: Path) -> AlertBook:
    store = open_store(str(tmp_path))
    return AlertBook(ObjectStoreAlerts(store), Clock(), reminder_interval=timedelta(hours=1))


def told(notifications: list[Notification]) -> list[tuple[str, str, str]]:
    return [(n.event, n.alert.fingerprint, n.alert.state) for n in notifications]


def test_an_alert_opens_escalates_reminds_is_acked_snoozed_and_resolves(book: AlertBook) -> None:
    clock = book.clock
    assert isinstance(clock, Clock)
    key = fingerprint("sales", "age", "landing")

    def at(minutes: int, level: Level) -> list[tuple[str, str, str]]:
        clock.moment = START + timedelta(minutes=minutes)
        return told(book.observe(evaluation(clock.moment, age("sales", "landing", level))))

    assert at(0, "warn") == [("opened", key, "open")]
    assert at(10, "warn") == []  # the same condition: the same alert, nothing new to tell
    assert at(20, "critical") == [("escalated", key, "open")]
    assert at(50, "critical") == []  # reminders count from the last notification (20)
    assert at(80, "critical") == [("reminder", key, "open")]

    acked = book.acknowledge(key, by="oncall")
    assert (acked.state, acked.acknowledged_by) == ("acknowledged", "oncall")
    assert at(200, "critical") == []  # acknowledged: no reminders
    assert at(210, "warn") == [("deescalated", key, "acknowledged")]
    assert at(220, "critical") == [("escalated", key, "open")]  # escalation re-opens it

    clock.moment = START + timedelta(minutes=230)
    snoozed = book.snooze(key, timedelta(hours=2))
    assert snoozed.snoozed_until == clock.moment + timedelta(hours=2)
    assert at(300, "critical") == []  # a reminder was due, but the alert is snoozed
    assert at(340, "warn") == []  # even a change of level waits for the snooze
    assert at(351, "warn") == [("reminder", key, "open")]  # snooze over: open, overdue reminder

    (alert,) = book.active()
    assert (alert.level, alert.opened_at) == ("warn", START)
    assert at(360, "ok") == [("resolved", key, "resolved")]
    assert book.active() == []
    (history,) = book.store.alerts(include_resolved=True)
    assert history.resolved_at == START + timedelta(minutes=360)
    assert at(370, "ok") == []


def test_one_alert_per_dataset_monitor_and_zone_with_the_worst_results_as_summary(
    book: AlertBook,
) -> None:
    arrivals = [
        Result("pos", "arrival", day, "critical", "missing", "-", "-", f"{day} missing")
        for day in ("2026-11-28", "2026-11-29", "2026-11-30", "2026-12-01")
    ]
    notes = book.observe(
        evaluation(
            START,
            age("pos", "landing", "warn"),
            age("pos", "curated", "critical"),
            *arrivals,
        )
    )
    opened = {(n.alert.monitor, n.alert.subject): n.alert for n in notes}
    assert set(opened) == {("age", "landing"), ("age", "curated"), ("arrival", "")}
    arrival = opened["arrival", ""]
    assert arrival.fingerprint == fingerprint("pos", "arrival")
    assert arrival.summary.startswith("2026-11-28: 2026-11-28 missing;")
    assert arrival.summary.endswith("(and 1 more)")


def test_unknown_neither_opens_nor_resolves(book: AlertBook) -> None:
    assert book.observe(evaluation(START, age("sales", "landing", "unknown"))) == []
    book.observe(evaluation(START, age("sales", "landing", "warn")))
    later = START + timedelta(minutes=5)
    assert book.observe(evaluation(later, age("sales", "landing", "unknown"))) == []
    assert [a.state for a in book.active()] == ["open"]


def test_an_age_judged_by_nothing_any_more_resolves_its_alert(book: AlertBook) -> None:
    book.observe(evaluation(START, age("sales", "landing", "warn")))
    shown = Result("sales", "age", "landing", "unknown", "unjudged", "3d old", "-", "shown only")
    later = START + timedelta(minutes=5)  # the contract's thresholds were taken out

    notes = book.observe(evaluation(later, shown))

    assert told(notes) == [("resolved", fingerprint("sales", "age", "landing"), "resolved")]
    assert notes[0].alert.summary == "landing of sales is no longer measured: shown only"
    assert book.active() == []


def test_a_future_dated_object_in_a_zone_without_thresholds_warns_then_resolves(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    contract = weekday_contract(warn_after=None, critical_after=None, expected=None)
    listed = datetime.now(UTC) + timedelta(days=1)  # the clock's time, not the real one
    lake.drop("pos", "pos_20261201.csv", listed + timedelta(days=2))  # a kept mtime
    key = fingerprint("pos", "age", "landing")

    clock.set(listed)
    assert told(book.observe(evaluate([contract], lake.store, clock))) == [("opened", key, "open")]
    clock.set(listed + timedelta(days=3))  # the object's date has passed: an age nothing judges
    notes = book.observe(evaluate([contract], lake.store, clock))

    assert told(notes) == [("resolved", key, "resolved")]  # not open for ever
    assert book.active() == []


def test_an_alert_on_a_zone_reported_empty_resolves_once_saying_it_is_no_longer_measured(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    """The book's part: a zone the evaluation reports ``empty`` (as the age monitor does
    before :func:`carry_emptied`, or after it for a zone no longer judged late) resolves
    its alert. ``check`` and ``serve`` keep a zone emptied while late judged by its alert
    first (test_dead_feed.py)."""
    contract = weekday_contract(expected=None)
    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    landing, validated = (
        fingerprint("pos", "age", "landing"),
        fingerprint("pos", "age", "validated"),
    )
    clock.set(datetime(2026, 12, 2, 12, 0, tzinfo=UTC))  # 30h old: past warn after 26h
    opened = told(book.observe(evaluate([contract], lake.store, clock)))
    assert sorted(opened) == sorted([("opened", landing, "open"), ("opened", validated, "open")])
    lake.store.delete(dropped)  # a lifecycle rule expired it: every zone is empty
    clock.advance(timedelta(hours=2))

    notes = book.observe(evaluate([contract], lake.store, clock))

    said = {n.alert.fingerprint: (n.event, n.alert.summary) for n in notes}
    assert said == {
        landing: (
            "resolved",
            "landing of pos is no longer measured: no landing object of pos has been seen",
        ),
        validated: (
            "resolved",
            "validated of pos is no longer measured: no validated object of pos has been seen; "
            "landing's files it awaited are gone without reaching validated",
        ),
    }
    assert book.active() == []
    clock.advance(timedelta(hours=2))  # past the reminder interval: nothing to remind of
    assert book.observe(evaluate([contract], lake.store, clock)) == []
    assert book.active() == []


def test_a_stuck_zone_whose_awaited_file_is_gone_resolves_saying_it_never_reached_the_zone(
    book: AlertBook, lake: Any, clock: Any, weekday_contract: Any
) -> None:
    """A ``never_reached`` alert (landing's file not validated by its deadline) whose file is
    gone since (a lifecycle rule expired it unvalidated) resolves as no longer measured, and
    says the file never got through: "no validated object has been seen" alone reads as a
    zone emptied after its data passed, and hides a delivery lost before validation."""
    contract = weekday_contract()
    dropped = lake.drop("pos", "pos_20261201.csv", datetime(2026, 12, 1, 5, 30, tzinfo=UTC))
    validated = fingerprint("pos", "age", "validated")
    clock.set(datetime(2026, 12, 1, 12, 0, tzinfo=UTC))  # due in validated by 07:00 UTC
    opened = {n.alert.fingerprint: n for n in book.observe(evaluate([contract], lake.store, clock))}
    assert opened[validated].alert.summary.startswith("nothing validated yet: landing's first")
    lake.store.delete(dropped)
    clock.advance(timedelta(hours=1))

    notes = book.observe(evaluate([contract], lake.store, clock))

    (resolved,) = [n for n in notes if n.alert.fingerprint == validated]
    assert (resolved.event, resolved.alert.summary) == (
        "resolved",
        "validated of pos is no longer measured: no validated object of pos has been seen; "
        "landing's files it awaited are gone without reaching validated",
    )


def test_datasets_not_evaluated_keep_their_alerts_and_a_dropped_monitor_resolves(
    book: AlertBook,
) -> None:
    book.observe(
        evaluation(START, age("sales", "landing", "warn"), age("stock", "landing", "warn"))
    )
    later = START + timedelta(minutes=5)
    notes = book.observe(evaluation(later, age("stock", "curated", "ok")))  # only stock
    assert told(notes) == [("resolved", fingerprint("stock", "age", "landing"), "resolved")]
    assert "no longer reports" in notes[0].alert.summary
    assert [a.dataset for a in book.active()] == ["sales"]


def test_an_alert_of_a_dataset_no_contract_declares_any_more_resolves_once_saying_so(
    book: AlertBook,
) -> None:
    book.observe(
        evaluation(START, age("sales", "landing", "warn"), age("stock", "landing", "warn"))
    )
    later = START + timedelta(minutes=5)

    notes = book.observe(
        evaluation(later, age("stock", "landing", "warn")), declared=["stock", "orders"]
    )

    assert told(notes) == [("resolved", fingerprint("sales", "age", "landing"), "resolved")]
    assert "no contract declares sales any more" in notes[0].alert.summary
    assert [a.dataset for a in book.active()] == ["stock"]
    again = START + timedelta(minutes=10)
    assert (
        book.observe(evaluation(again, age("stock", "landing", "warn")), declared=["stock"]) == []
    )


def test_an_evaluation_by_contracts_older_than_the_declared_ones_never_reopens_a_retired_alert(
    book: AlertBook,
) -> None:
    book.observe(
        evaluation(START, age("sales", "landing", "warn"), age("stock", "landing", "warn"))
    )
    both = (age("sales", "landing", "warn"), age("stock", "landing", "warn"))
    # a serve started before sales's contract was removed still evaluates sales
    notes = book.observe(evaluation(START + timedelta(minutes=5), *both), declared=["stock"])
    again = book.observe(evaluation(START + timedelta(minutes=10), *both), declared=["stock"])

    assert told(notes) == [("resolved", fingerprint("sales", "age", "landing"), "resolved")]
    assert "no contract declares sales any more" in notes[0].alert.summary
    assert again == []
    assert [a.dataset for a in book.active()] == ["stock"]


def test_ack_and_snooze_refuse_an_unknown_fingerprint_and_a_zero_snooze(book: AlertBook) -> None:
    with pytest.raises(AlertNotFoundError) as caught:
        book.acknowledge("0123456789abcdef")
    assert caught.value.fingerprint == "0123456789abcdef"
    book.observe(evaluation(START, age("sales", "landing", "warn")))
    with pytest.raises(ValueError, match="longer than 0s"):
        book.snooze(fingerprint("sales", "age", "landing"), timedelta(0))
    with pytest.raises(ValueError, match="at most 90d"):
        book.snooze(fingerprint("sales", "age", "landing"), timedelta(days=90, seconds=1))
    book.snooze(fingerprint("sales", "age", "landing"), timedelta(days=90))  # the longest


def test_alert_errors_pickle_with_their_fields() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(AlertNotFoundError("abc")))
    assert error.fingerprint == "abc"
    assert "abc" in str(error)


def test_each_event_is_owed_to_every_channel_and_a_reminder_never_replaces_an_owed_one(
    tmp_path: Path,
) -> None:
    store = ObjectStoreAlerts(open_store(str(tmp_path)))
    channels = ("slack env:B", "webhook env:A")
    book = AlertBook(store, Clock(), reminder_interval=timedelta(hours=1), channels=channels)

    def at(minutes: int, level: Level) -> list[tuple[str | None, datetime | None, tuple[str, ...]]]:
        moment = START + timedelta(minutes=minutes)
        book.observe(evaluation(moment, age("sales", "landing", level)))
        return [(a.owed_event, a.owed_at, tuple(sorted(a.owed_to))) for a in store.owed()]

    assert at(0, "warn") == [("opened", START, channels)]
    assert at(70, "warn") == [("opened", START, channels)]  # the reminder adds nothing to it
    later = START + timedelta(minutes=80)
    assert at(80, "critical") == [("escalated", later, channels)]
    store.settle(lambda owing: [a.told("webhook env:A") for a in owing])
    ended = START + timedelta(minutes=90)
    assert at(90, "ok") == [("resolved", ended, channels)]  # owed to both again
    assert book.active() == []


def test_without_channels_nothing_is_owed(book: AlertBook) -> None:
    book.observe(evaluation(START, age("sales", "landing", "critical")))
    assert book.store.owed() == []


def arrival(day: str, level: Level, state: str, why: str) -> Result:
    return Result("pos", "arrival", day, level, state, "", "due 06:00, grace 2h", why)


def test_a_missing_file_that_leaves_the_window_resolves_saying_it_never_arrived(
    book: AlertBook,
) -> None:
    """The arrival alert of a file that never came resolves once its date leaves
    ``lookback_days``: its resolution says the date left the window without the file,
    so nobody reads "resolved" as "it arrived"."""
    missing = "the 2026-12-15 file of pos did not arrive: due 06:00, 4h past its grace"
    book.observe(
        evaluation(
            START,
            arrival("2026-12-14", "ok", "on_time", "the 2026-12-14 file arrived in time"),
            arrival("2026-12-15", "critical", "missing", missing),
        )
    )
    later = START + timedelta(days=3)
    (resolved,) = book.observe(
        evaluation(
            later,
            arrival("2026-12-16", "ok", "on_time", "the 2026-12-16 file arrived in time"),
            arrival("2026-12-17", "ok", "on_time", "the 2026-12-17 file arrived in time"),
        )
    )

    assert resolved.event == "resolved"
    assert "2026-12-15 left the lookback window without its file arriving" in (
        resolved.alert.summary
    )


def test_a_missing_file_that_arrived_resolves_without_a_window_notice(book: AlertBook) -> None:
    missing = "the 2026-12-15 file of pos did not arrive: due 06:00, 4h past its grace"
    book.observe(evaluation(START, arrival("2026-12-15", "critical", "missing", missing)))
    came = "the 2026-12-15 file arrived after its due time and grace"
    (resolved,) = book.observe(
        evaluation(START + timedelta(hours=3), arrival("2026-12-15", "ok", "late", came))
    )
    assert resolved.event == "resolved"
    assert "lookback window" not in resolved.alert.summary
