"""The Celery executor with real worker processes: poison messages end in the dead-letter
queue; a unit failing for good is said in the worker's own log, for units nobody follows."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from etl_core.errors import RetryableError
from etl_core.testing.brokers import TestBroker
from etl_core.testing.processes import BackgroundProcess
from etl_core.work import WorkUnit
from etl_core.work.celery import (
    DEAD_REASON_HEADER,
    CeleryExecutor,
    celery_app,
    lane_queues,
    task_name,
)

WORKER = Path(__file__).with_name("celery_lane_worker.py")
LANE = "test_lane"

pytestmark = pytest.mark.slow


def start_worker(broker: TestBroker, tmp_path: Path) -> BackgroundProcess:
    command = [sys.executable, str(WORKER), broker.url, broker.prefix]
    worker = BackgroundProcess(command, env=os.environ, log=tmp_path / "worker.log")
    worker.wait_for(" ready.", timeout=60)
    return worker


def test_a_poison_message_lands_in_the_dead_letter_queue_after_its_attempts(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    poison, fine = WorkUnit(LANE, "item", "poison-1"), WorkUnit(LANE, "item", "fine-1")
    with start_worker(celery_broker, tmp_path):
        executor = CeleryExecutor(celery_app(settings, LANE))
        results = {r.unit.key: r for r in executor.run(lambda unit: None, [poison, fine])}
    assert (results["fine-1"].status, results["fine-1"].value) == ("succeeded", {"key": "fine-1"})
    failed = results["poison-1"]
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert isinstance(failed.error, RetryableError)
    assert "poison-1 never works" in str(failed.error)
    ((headers, body),) = celery_broker.messages(lane_queues(settings, LANE).dead)
    assert headers[DEAD_REASON_HEADER].startswith("RetryableError after 3 attempt(s)")
    assert headers["task"] == task_name(LANE)
    assert body[0] == [poison.to_dict()]  # the same task and argument: re-drivable as is


def test_a_message_that_is_no_unit_is_dead_lettered_at_once(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    app = celery_app(settings, LANE)
    with start_worker(celery_broker, tmp_path):
        sent = app.send_task(task_name(LANE), args=[{"lane": LANE, "kind": "item"}])
        document = sent.get(timeout=60)
    assert document["status"] == "failed"
    assert document["dead_lettered"] is True
    assert "field 'key'" in document["error"]["message"]
    ((headers, body),) = celery_broker.messages(lane_queues(settings, LANE).dead)
    assert "InvalidUnitError after 1 attempt(s)" in headers[DEAD_REASON_HEADER]
    assert body[0] == [{"lane": LANE, "kind": "item"}]


def test_a_unit_that_fails_for_good_is_logged_as_an_error_by_its_worker(
    celery_broker: TestBroker, tmp_path: Path
) -> None:
    settings = celery_broker.settings()
    broken, fine = WorkUnit(LANE, "item", "broken-1"), WorkUnit(LANE, "item", "fine-2")
    with start_worker(celery_broker, tmp_path) as worker:
        app = celery_app(settings, LANE)
        sent = [app.send_task(task_name(LANE), args=[u.to_dict()]) for u in (broken, fine)]
        documents = [s.get(timeout=60) for s in sent]  # as a chained or --no-wait unit: unread
        log = worker.log()
    assert [d["status"] for d in documents] == ["failed", "succeeded"]
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1, errors  # the failed unit, not the one that succeeded
    (said,) = errors
    assert "work unit test_lane:item:broken-1 failed" in said["event"]
    assert "FatalError: broken-1 is refused for good" in said["event"]
    assert said["unit"] == broken.id
