"""What the server shows when the cycles fail: the last results, and the failure said."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

from observability.cycle_process import CycleProcess
from observability.service import Snapshot, service_metrics

GOOD_AT = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
RESULTS = b'etl_observability_dataset_level{dataset="pos"} 0\n'


def never_built() -> Any:
    raise AssertionError("no child is started in this test")


def test_a_restarted_child_that_fails_says_so_in_the_status_metrics_and_page() -> None:
    cycles = CycleProcess(never_built, interval=timedelta(seconds=30))
    good = Snapshot(
        metrics=RESULTS + service_metrics(0.5, 0),
        results_metrics=RESULTS,
        status=json.dumps({"datasets": [{"dataset": "pos", "level": "ok"}]}).encode(),
        finished_at=GOOD_AT,
        succeeded_at=GOOD_AT,
    )
    cycles._receive(pickle.dumps(good))
    failed_at = GOOD_AT + timedelta(minutes=1)
    restarted = Snapshot(finished_at=failed_at, seconds=2.0, error="s3: refused", failures=1)

    cycles._receive(pickle.dumps(restarted))

    shown = cycles.snapshot
    status = json.loads(shown.status)
    metrics = shown.metrics.decode()
    assert status["datasets"] == [{"dataset": "pos", "level": "ok"}]  # the last results
    assert status["service"] == {
        "last_cycle_at": failed_at.isoformat(),
        "last_success_at": GOOD_AT.isoformat(),
        "error": "s3: refused",
    }
    assert RESULTS.decode() in metrics
    assert "etl_observability_evaluation_failures_total 1" in metrics
    assert "etl_observability_evaluation_duration_seconds 2\n" in metrics
    assert "s3: refused" in shown.page.decode()
