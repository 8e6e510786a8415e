"""What starts file-lane work on a broker: the scheduler's scans, and what a validated
delivery starts in turn (its partition's transform on the data_pipeline queue)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from etl_core.testing.brokers import TestBroker
from etl_core.testing.processes import BackgroundProcess
from etl_core.testing.pushgateway import running_pushgateway, scrape
from etl_core.testing.statsd import agent_address, drained, statsd_agent
from etl_core.work import InvalidUnitError, WorkUnit
from etl_core.work.celery import lane_queues, task_name
from file_processing.ledger import Ledger
from file_processing.quarantine import release
from file_processing.scan import DoneObjects, enqueue
from file_processing.work import landing_object_unit, run_unit

BIN = Path(sys.executable).parent / "etl-file-processing"
Orders = Callable[..., bytes]

pytestmark = pytest.mark.slow


def environment(lane: Any, broker: TestBroker, **extra: str) -> dict[str, str]:
    (lane.tmp / "scratch").mkdir(exist_ok=True)
    return {
        **os.environ,
        **broker.env(),
        "ETL_STORAGE_URL": lane.store.url,
        "ETL_CONFIG_DIR": str(lane.config_dir),
        "ETL_WORK_DIR": str(lane.tmp / "scratch"),
        "ETL_LOG_FORMAT": "json",
        "ETL_EXECUTOR": "celery",
        "ETL_SCHEDULE_SCAN_INTERVAL": "1s",
        "ETL_SCHEDULE_TICK": "0.2s",
        **extra,
    }


def test_the_scheduled_scans_validate_each_drop_once_and_chain_its_transform(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    keys = [local_lane.deliver(f"orders_202611{day:02d}.csv", orders(10 + day)) for day in (3, 4)]
    env = environment(local_lane, celery_broker)
    with BackgroundProcess(
        [str(BIN), "worker", "--concurrency", "1"], env=env, log=local_lane.tmp / "w.log"
    ) as worker:
        worker.wait_for(" ready.", timeout=90)
        scheduled = subprocess.run(
            [str(BIN), "schedule", "--max-ticks", "15"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        for key in keys:
            worker.wait_for(f'"event": "validated {key}"', timeout=120)
        worker.wait_for('"event": "enqueued transform orders/2026-11-04"', timeout=60)
        log = worker.log()
    assert scheduled.returncode == 0, scheduled.stderr[-3000:]
    assert "15 tick(s), 15 leading; fired: scan" in scheduled.stdout
    assert "scheduled scan fired: 2 unit(s) enqueued" in scheduled.stderr  # the first
    for key in keys:
        assert log.count(f'"event": "validated {key}"') == 1
    queue = lane_queues(celery_broker.settings(), "data_pipeline").work
    sent = celery_broker.messages(queue)
    assert sorted(headers["task"] for headers, _ in sent) == [task_name("data_pipeline")] * 2
    units = sorted((body[0][0]["kind"], body[0][0]["key"]) for _, body in sent)
    assert units == [("partition", "orders/2026-11-03"), ("partition", "orders/2026-11-04")]


def test_a_scheduler_exports_its_metrics_after_each_tick_not_only_at_its_exit(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    local_lane.deliver("orders_20261103.csv", orders(3))
    with statsd_agent() as agent:
        env = environment(
            local_lane,
            celery_broker,
            ETL_METRICS_EXPORTERS="statsd",
            ETL_STATSD_ADDRESS=agent_address(agent),
            ETL_SCHEDULE_SCAN_INTERVAL="1h",
        )
        scheduled = subprocess.run(
            [str(BIN), "schedule", "--max-ticks", "3"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = drained(agent)
    assert scheduled.returncode == 0, scheduled.stderr[-3000:]
    # each tick's export sends that tick's increment; one export at exit would send 3 at once
    tick = "etl_file_processing_scheduler_ticks_total:1|c|#role:leading"
    assert lines.count(tick) == 3, lines
    assert (
        "etl_file_processing_scheduler_firings_total:1|c|#scheduled_job:scan,outcome:fired" in lines
    )
    assert "etl_file_processing_scheduler_units_enqueued_total:1|c|#scheduled_job:scan" in lines


def test_a_running_scheduler_pushes_its_firings_to_the_pushgateway_and_again_when_stopped(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    local_lane.deliver("orders_20261103.csv", orders(3))
    with running_pushgateway() as gateway:
        env = environment(
            local_lane,
            celery_broker,
            ETL_PUSHGATEWAY_URL=gateway,
            ETL_SCHEDULE_SCAN_INTERVAL="1h",  # one firing, at the start
        )
        group = 'job="etl_file_processing_schedule"'
        fired = "etl_file_processing_scheduler_firings_total{"
        with BackgroundProcess(
            [str(BIN), "schedule", "--max-ticks", "600"], env=env, log=local_lane.tmp / "s.log"
        ) as scheduler:
            scheduler.wait_for("scheduled scan fired", timeout=60)
            seen: list[str] = []
            for _ in range(100):  # the push follows the firing's tick
                seen = [line for line in scrape(gateway) if group in line]
                if any(line.startswith(fired) for line in seen):
                    break
                time.sleep(0.1)
            assert scheduler.process.poll() is None  # pushed while it runs, not at its exit
            scheduler.signal(signal.SIGTERM)
            assert scheduler.wait(timeout=60) == 143
        after = [line for line in scrape(gateway) if group in line]

    def value(lines: list[str], name: str) -> float:
        (line,) = [line for line in lines if line.startswith(name)]
        return float(line.rsplit(" ", 1)[1])

    labels = 'instance="",job="etl_file_processing_schedule"'
    assert value(seen, f'{fired}{labels},outcome="fired",scheduled_job="scan"}}') == 1, seen
    pushed = f"push_time_seconds{{{labels}}}"
    assert value(after, pushed) > value(seen, pushed)  # pushed again on its way out


def test_a_scheduler_standing_by_leaves_the_leaders_pushgateway_group_alone_when_stopped(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    local_lane.deliver("orders_20261103.csv", orders(3))
    group = 'job="etl_file_processing_schedule"'
    fired = "etl_file_processing_scheduler_firings_total{"

    def firings(gateway: str) -> list[str]:
        return [line for line in scrape(gateway) if group in line and line.startswith(fired)]

    with running_pushgateway() as gateway:
        env = environment(
            local_lane, celery_broker, ETL_PUSHGATEWAY_URL=gateway, ETL_SCHEDULE_SCAN_INTERVAL="1h"
        )
        command = [str(BIN), "schedule", "--max-ticks", "900"]
        with BackgroundProcess(command, env=env, log=local_lane.tmp / "leader.log") as leader:
            leader.wait_for("scheduled scan fired", timeout=60)
            for _ in range(100):  # the push follows the firing's tick
                if firings(gateway):
                    break
                time.sleep(0.1)
            assert firings(gateway), scrape(gateway)
            with BackgroundProcess(command, env=env, log=local_lane.tmp / "standby.log") as standby:
                standby.wait_for("scheduler standing by", timeout=60)
                standby.signal(signal.SIGTERM)  # a rolling restart stops the standby first
                assert standby.wait(timeout=60) == 143
            # its exit pushed nothing: the group still holds what the leader fired
            assert firings(gateway), scrape(gateway)
            assert leader.process.poll() is None
            leader.signal(signal.SIGTERM)
            assert leader.wait(timeout=60) == 143
        assert firings(gateway), scrape(gateway)  # the leader's own exit pushes it again


def test_a_scheduled_scan_enqueues_only_the_objects_not_done_for_their_etag(
    local_lane: Any, orders: Orders
) -> None:
    done, changed, new = (
        local_lane.deliver(f"orders_202611{day:02d}.csv", orders(10 + day)) for day in (3, 4, 5)
    )
    processor = local_lane.processor()
    for key in (done, changed):
        assert processor.process(key).status == "validated"
    local_lane.deliver("orders_20261104.csv", orders(30))  # resent: a new ETag
    sent: list[WorkUnit] = []

    assert enqueue(processor, sent.append) == 2
    assert sorted(unit.key for unit in sent) == sorted([changed, new])
    assert all(unit.to_dict() == landing_object_unit(unit.key).to_dict() for unit in sent)


def test_a_scheduler_s_scans_read_only_the_ledger_records_changed_since_the_last(
    local_lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 50,000 done drops: one read each, one after another, at every interval took the
    # scheduler minutes; a listing of the ledger tells which records changed since
    done, bad, changed, new = (
        local_lane.deliver(f"orders_202611{day:02d}.csv", orders(10 + day, bad_amounts=bad))
        for day, bad in ((3, 0), (4, 5), (5, 0), (6, 0))
    )
    processor = local_lane.processor()
    assert [processor.process(key).status for key in (done, bad, changed)] == [
        "validated", "quarantined", "validated"
    ]  # fmt: skip
    local_lane.deliver("orders_20261105.csv", orders(30))  # resent: a new ETag
    reads: list[str] = []
    read_versioned = processor.store.read_versioned

    def counted(key: str) -> Any:
        reads.append(key)
        return read_versioned(key)

    monkeypatch.setattr(processor.store, "read_versioned", counted)
    objects = DoneObjects(processor.ledger, listing_from=0)

    def enqueued() -> list[str]:
        sent: list[WorkUnit] = []
        reads.clear()
        enqueue(processor, sent.append, done=objects)
        return sorted(unit.key for unit in sent)

    assert enqueued() == sorted([changed, new])
    assert len(reads) == 3  # the records of done, bad and changed; new has none
    assert enqueued() == sorted([changed, new])
    assert reads == []  # nothing changed: the listing said so
    release(local_lane.store, processor.ledger, processor.ledger.get(bad).outputs[0], by="ops")
    assert enqueued() == sorted([bad, changed, new])  # released: enqueued again
    assert reads == [Ledger.record_key(bad)]


def test_a_landing_object_unit_refuses_params_other_than_a_boolean_force(local_lane: Any) -> None:
    # a producer in any language (docs/events.md): "false" as text must not force a redo
    processor = local_lane.processor()
    key = "landing/vendor/orders_20261103.csv"
    for params, field in (({"force": "false"}, "params.force"), ({"forse": True}, "params.forse")):
        with pytest.raises(InvalidUnitError) as refused:
            run_unit(processor, WorkUnit("file_processing", "landing_object", key, params))
        assert refused.value.field == field


def test_schedule_without_the_celery_executor_is_bad_usage(local_lane: Any) -> None:
    done = local_lane.cli("schedule", "--max-ticks", "1")
    assert done.returncode == 2
    assert "schedule needs ETL_EXECUTOR=celery" in done.stderr
    assert "--executor" not in done.stderr  # an option schedule does not take


def test_a_scan_interval_of_zero_is_a_configuration_error_not_a_traceback(local_lane: Any) -> None:
    done = local_lane.cli(
        "schedule", "--max-ticks", "1", ETL_EXECUTOR="celery", ETL_SCHEDULE_SCAN_INTERVAL="0"
    )
    assert done.returncode == 2, done.stderr
    assert "schedule_scan_interval: must be longer than 0s" in done.stderr
    assert "Traceback" not in done.stderr
