"""The scheduler: fires its jobs while it holds the lane's lease, stands by otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from etl_core.scheduler import Job, Scheduler, every, scheduler_lease_key
from etl_core.storage import LocalObjectStore, acquire_lease, read_lease
from etl_core.testing import capture_metrics

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class SteppingClock:
    """Ten seconds later at every look."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=10)
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalObjectStore]:
    with LocalObjectStore(tmp_path / "lake") as opened:
        yield opened


def scheduler(store: LocalObjectStore, jobs: list[Job]) -> Scheduler:
    return Scheduler(store, "test_lane", jobs, tick=0.001, lease_seconds=5, clock=SteppingClock())


def test_a_leader_fires_interval_jobs_at_once_and_then_on_their_interval(
    store: LocalObjectStore,
) -> None:
    fired: list[str] = []
    minute = Job("minute", every(timedelta(minutes=1)), lambda: fired.append("minute") or 1)
    summary = scheduler(store, [minute]).run(max_ticks=13)
    # a look every 10 s: at start, then 60 s later twice in 130 s
    assert (summary.ticks, summary.led, summary.fired) == (13, 13, {"minute": 3})
    assert read_lease(store, scheduler_lease_key("test_lane")).is_free(0)  # type: ignore[union-attr]


def test_a_cron_like_job_waits_for_its_next_time(store: LocalObjectStore) -> None:
    def next_half_minute(after: datetime) -> datetime:
        return after + timedelta(seconds=30)

    job = Job("cron", next_half_minute, lambda: 2, at_start=False)
    assert scheduler(store, [job]).run(max_ticks=4).fired == {"cron": 1}


def test_a_second_scheduler_stands_by_while_the_lease_is_held(store: LocalObjectStore) -> None:
    fired: list[str] = []
    job = Job("scan", every(timedelta(seconds=1)), lambda: fired.append("scan") or 0)
    with acquire_lease(store, scheduler_lease_key("test_lane"), ttl=60, purpose="the leader"):
        summary = scheduler(store, [job]).run(max_ticks=5)
    assert (summary.led, fired) == (0, [])
    assert scheduler(store, [job]).run(max_ticks=2).led == 2  # the lease is free: it leads


def test_a_failing_job_is_counted_and_the_others_still_fire(store: LocalObjectStore) -> None:
    def broken() -> int:
        raise ConnectionError("broker unreachable")

    jobs = [Job("broken", every(timedelta(seconds=10)), broken),
            Job("fine", every(timedelta(seconds=10)), lambda: 1)]  # fmt: skip
    summary = scheduler(store, jobs).run(max_ticks=3)
    assert summary.failed == 3
    assert summary.fired == {"broken": 0, "fine": 3}


def test_a_non_positive_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        every(timedelta(0))


def test_a_scheduler_counts_its_ticks_firings_units_and_failures(store: LocalObjectStore) -> None:
    def broken() -> int:
        raise ConnectionError("broker unreachable")

    jobs = [Job("ingest shop", every(timedelta(seconds=10)), broken),
            Job("scan", every(timedelta(seconds=10)), lambda: 2)]  # fmt: skip
    with capture_metrics() as captured:
        scheduler(store, jobs).run(max_ticks=3)
        with acquire_lease(store, scheduler_lease_key("test_lane"), ttl=60, purpose="another"):
            scheduler(store, jobs).run(max_ticks=2)
    ticks = "etl_test_lane_scheduler_ticks_total"
    assert captured.value(ticks, role="leading") == 3
    assert captured.value(ticks, role="standing_by") == 2
    firings = "etl_test_lane_scheduler_firings_total"
    assert captured.value(firings, scheduled_job="scan", outcome="fired") == 3
    # a job's spaces as "_": a StatsD tag holds none
    assert captured.value(firings, scheduled_job="ingest_shop", outcome="failed") == 3
    assert captured.value("etl_test_lane_scheduler_units_enqueued_total", scheduled_job="scan") == 6


def test_after_each_tick_the_scheduler_says_whether_a_job_fired_in_it(
    store: LocalObjectStore,
) -> None:
    seen: list[str] = []
    minute = Job("minute", every(timedelta(minutes=1)), lambda: seen.append("fired") or 1)
    summary = scheduler(store, [minute]).run(
        max_ticks=8, after_tick=lambda fired: seen.append(f"tick, fired: {fired}")
    )
    ticks = [said for said in seen if said.startswith("tick")]
    assert len(ticks) == 8
    assert ticks.count("tick, fired: True") == summary.fired["minute"] >= 2
    for i, said in enumerate(seen):  # told after the firing of its own tick, never before
        if said == "tick, fired: True":
            assert seen[i - 1] == "fired"


def test_a_scheduler_says_whether_it_led_at_its_latest_tick_even_once_it_released_the_lease(
    store: LocalObjectStore,
) -> None:
    job = Job("scan", every(timedelta(seconds=10)), lambda: 1)
    standby = scheduler(store, [job])
    seen: list[bool] = []
    with acquire_lease(store, scheduler_lease_key("test_lane"), ttl=60, purpose="another"):
        standby.run(max_ticks=2, after_tick=lambda fired: seen.append(standby.leading))
    assert seen == [False, False]
    assert not standby.leading
    leader = scheduler(store, [job])
    leader.run(max_ticks=2, after_tick=lambda fired: seen.append(leader.leading))
    assert seen[2:] == [True, True]
    assert leader.leading  # the lease released on its way out: it led until then
