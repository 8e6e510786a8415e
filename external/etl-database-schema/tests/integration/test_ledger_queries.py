"""The ledger's queries on SQLite: run history, last successes, freshness history, gauges.

Each test sets Django up in a subprocess (conftest ``run_python``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from etl_database_schema import finish_run, record_freshness

RunPython = Callable[..., subprocess.CompletedProcess[str]]

CONNECT = """
import etl_database_schema as s
s.connect("sqlite:///ledger.sqlite3", apply_migrations=True)
"""


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_finish_run_refuses_an_unknown_status_before_touching_the_database() -> None:
    with pytest.raises(ValueError, match="'done' is not one of succeeded, partial, failed"):
        finish_run("r1", "done")


@pytest.mark.parametrize(("level", "age"), [("stale", 1.0), ("ok", -5.0)])
def test_record_freshness_refuses_bad_observations(level: str, age: float) -> None:
    with pytest.raises(ValueError, match=level if level == "stale" else "negative"):
        record_freshness("sales", level, age, store="s3://lake")


def test_a_run_round_trips_and_finishes_once(run_python: RunPython) -> None:
    result = run_python(
        CONNECT
        + """
s.start_run("r1", lane="data_pipeline", job="transform", dataset="sales",
            parameters={"dt": "2024-05-01"})
run = s.get_run("r1")
print("started", run.status, run.lane, run.parameters, run.finished_at)
s.finish_run("r1", "partial", inputs=3, outputs=2, quarantined=1, rows_written=40)
run = s.get_run("r1")
print("finished", run.status, run.inputs_count, run.quarantined_count, run.rows_written,
      run.finished_at >= run.started_at)
try:
    s.finish_run("r1", "failed")
except s.DatabaseRefusedError as exc:
    print("refused:", exc)
print("missing", s.get_run("nope"))
"""
    )

    started, finished, refused, missing = _lines(result)
    assert started == "started running data_pipeline {'dt': '2024-05-01'} None"
    assert finished == "finished partial 3 1 40 True"
    assert refused.startswith("refused: run 'r1' is not a running run in the ledger of database")
    assert missing == "missing None"


def test_last_success_by_dataset_and_by_lane(run_python: RunPython) -> None:
    result = run_python(
        CONNECT
        + """
print("none yet", s.last_success("sales"), s.last_successes())
for run_id, lane, dataset, status in [
    ("a", "data_pipeline", "sales", "succeeded"),
    ("b", "data_pipeline", "sales", "failed"),
    ("c", "file_processing", "sales", "partial"),
    ("d", "file_processing", "stores", "running"),
]:
    s.start_run(run_id, lane=lane, job="job-" + run_id, dataset=dataset)
    if status != "running":
        s.finish_run(run_id, status)
latest = s.last_successes()
print(sorted((lane, run.run_id, run.job) for lane, run in latest.items()))
print(s.last_success("sales") == latest["file_processing"].finished_at)
print(s.last_success("sales", lane="data_pipeline") == latest["data_pipeline"].finished_at)
print(s.last_success("stores"), s.last_success(lane="observability"))
"""
    )

    assert _lines(result) == [
        "none yet None {}",
        "[('data_pipeline', 'a', 'job-a'), ('file_processing', 'c', 'job-c')]",
        "True",
        "True",
        "None None",
    ]


def test_freshness_history_records_level_changes_only(run_python: RunPython) -> None:
    result = run_python(
        CONNECT
        + """
from datetime import date
S = "s3://lake/etl"
print("never checked", s.latest_freshness("sales", store=S))
print(s.record_freshness("sales", "ok", 600.0, latest_partition=date(2024, 5, 1), store=S))
print(s.record_freshness("sales", "ok", 900.0, store=S))
print(s.record_freshness("sales", "critical", 90000.0, message="2 partitions late", store=S))
latest = s.latest_freshness("sales", store=S)
print(latest.level, latest.observed_age_seconds, latest.message)
changed = s.record_freshness("sales", "unknown", None, store=S)
latest = s.latest_freshness("sales", store=S)
print(changed, latest.level, latest.observed_age_seconds)
print("other dataset", s.latest_freshness("stores", store=S))
with s.models(s.LEDGER_APP) as ledger:
    print("history rows", ledger["FreshnessStatus"].objects.count())
"""
    )

    assert _lines(result) == [
        "never checked None",
        "True",
        "False",
        "True",
        "critical 90000.0 2 partitions late",
        "True unknown None",
        "other dataset None",
        "history rows 3",
    ]


def test_ledger_gauges_count_every_health_signal(run_python: RunPython) -> None:
    result = run_python(
        CONNECT
        + """
from datetime import date
print(sorted(s.ledger_gauges().items()))
s.start_run("c", lane="file_processing", job="scan")
with s.models(s.LEDGER_APP) as m:
    m["QuarantineRecord"].objects.create(quarantine_key="quarantine/x", source_key="landing/x",
                                         reason_code="quality.failed", message="bad")
    job = m["BackfillJob"].objects.create(dataset="sales", start_date=date(2024, 5, 1),
                                          end_date=date(2024, 5, 3))
    for day, state in [(1, "succeeded"), (2, "failed"), (3, "pending")]:
        m["BackfillPartition"].objects.create(job=job, partition_date=date(2024, 5, day),
                                              state=state)
print(sorted(s.ledger_gauges().items()))
"""
    )

    empty, counted = _lines(result)
    assert "('runs_running', 0)" in empty
    assert counted == str(
        [
            ("api_endpoints_failing", 0),
            ("backfill_partitions_cancelled", 0),
            ("backfill_partitions_failed", 1),
            ("backfill_partitions_pending", 1),
            ("backfill_partitions_running", 0),
            ("backfill_partitions_succeeded", 1),
            ("quarantine_open", 1),
            ("runs_running", 1),
        ]
    )


def test_run_ledger_opens_the_door_and_records_start_and_finish(run_python: RunPython) -> None:
    result = run_python(
        """
from datetime import datetime, timezone
from types import SimpleNamespace
import etl_database_schema as s
s.connect("sqlite:///ledger.sqlite3", apply_migrations=True)
ledger = s.RunLedger("sqlite:///ledger.sqlite3")
run = SimpleNamespace(run_id="20261101T000000Z-abc", lane="observability", job="inventory",
                      dataset="", parameters={"zones": ["landing"]},
                      started_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
ledger.start(run)
ledger.finish(run, SimpleNamespace(status="failed", inputs=1, outputs=0, quarantined=0,
                                   failed=1, rows_written=0, error="store unreachable"))
record = s.get_run(run.run_id)
print(record.status, record.started_at.isoformat(), record.parameters, record.error)
"""
    )

    assert _lines(result) == [
        "failed 2026-11-01T00:00:00+00:00 {'zones': ['landing']} store unreachable"
    ]


def test_alerts_change_in_one_transaction_with_one_active_row_per_fingerprint(
    run_python: RunPython,
) -> None:
    result = run_python(
        CONNECT
        + """
from dataclasses import replace
from datetime import datetime, timezone
t = datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
S = "s3://lake/etl"
opened = s.AlertRecord("f1", "sales", "age", "landing", "warn", "open", "late", t, t,
                       None, None, "", None, None)
print([a.state for a in s.change_alerts(lambda active: [opened], store=S)])
print([(a.fingerprint, a.level) for a in s.change_alerts(
    lambda active: [replace(active[0], level="critical")], store=S)])
try:
    s.change_alerts(lambda active: [replace(opened, state="gone")], store=S)
except ValueError as exc:
    print("refused:", exc)
try:
    s.change_alerts(lambda active: [opened, replace(opened, dataset="stock")], store=S)
except ValueError as exc:
    print("refused:", exc)
try:
    with s.models(s.LEDGER_APP) as ledger:
        ledger["Alert"].objects.create(
            store=S, fingerprint="f1", dataset="x", monitor="age", level="warn"
        )
except s.DatabaseRefusedError:
    print("refused a second active f1")
print([(a.fingerprint, a.level, a.state) for a in s.alerts(store=S)])
s.change_alerts(lambda active: [replace(active[0], state="resolved", resolved_at=t)], store=S)
s.change_alerts(lambda active: [opened], store=S)
print([a.state for a in s.alerts(store=S)],
      [a.state for a in s.alerts(store=S, include_resolved=True)])
"""
    )

    assert _lines(result) == [
        "['open']",
        "[('f1', 'critical')]",
        "refused: alert f1: state 'gone' not in open, acknowledged, snoozed, resolved",
        "refused: alert f1: written twice in one change",
        "refused a second active f1",
        "[('f1', 'critical', 'open')]",
        "['open'] ['open', 'resolved']",
    ]
