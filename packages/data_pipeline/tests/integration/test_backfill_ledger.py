"""The store's backfill ledger: compare-and-put updates and job leases, on both backends."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from data_pipeline.db import BackfillPartitionRecord
from data_pipeline.errors import BackfillConflictError
from data_pipeline.ledger import StoreLedger, check_no_overlap, job_lease_key, open_ledger
from etl_core.storage import ObjectStore, S3ObjectStore, read_lease

from .database_contract import migrated, passed_checks
from .ledger_contract import CHECKS, Check

WORKER = Path(__file__).with_name("ledger_worker.py")
FIRST = date(2026, 11, 1)
DAYS = [FIRST + timedelta(days=n) for n in range(12)]


def new_job(ledger: StoreLedger) -> str:
    job = ledger.create("pos", DAYS[0], DAYS[-1], DAYS, parameters={}, max_attempts=3)
    return job.job_id


@pytest.mark.slow
def test_concurrent_updates_of_one_job_from_two_processes_lose_nothing(
    store: ObjectStore, tmp_path: Path
) -> None:
    ledger = StoreLedger(store)
    job_id = new_job(ledger)
    endpoint = store.client.meta.endpoint_url if isinstance(store, S3ObjectStore) else "-"
    halves = [DAYS[0::2], DAYS[1::2]]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), store.url, endpoint, job_id, str(tmp_path)]
            + [day.isoformat() for day in half]
        )
        for half in halves
    ]
    (tmp_path / "go").touch()
    try:
        codes = [worker.wait(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=30)

    assert codes == [0, 0]
    job = ledger.get(job_id)
    assert job is not None
    assert [p.state for p in job.partitions] == ["succeeded"] * len(DAYS)
    by_worker = {p.dt: p.rows for p in job.partitions}
    assert {by_worker[day] for day in halves[0]} == {workers[0].pid}
    assert {by_worker[day] for day in halves[1]} == {workers[1].pid}
    assert job.state == "running"
    ledger.set_state(job_id, "succeeded")


def test_a_running_job_holds_its_lease_until_it_ends(store: ObjectStore) -> None:
    ledger = StoreLedger(store)
    job_id = new_job(ledger)
    job = ledger.get(job_id)
    assert job is not None

    assert ledger.alive(job)
    with pytest.raises(BackfillConflictError, match=f"backfill job {job_id}"):
        check_no_overlap(StoreLedger(store), "pos", DAYS[3], DAYS[3])
    with pytest.raises(BackfillConflictError, match="still running"):
        StoreLedger(store).set_state(job_id, "running", owner="someone else")

    ledger.set_state(job_id, "cancelled")
    lease = read_lease(store, job_lease_key(job_id))
    assert lease is not None
    assert lease.released
    ended = ledger.get(job_id)
    assert ended is not None
    assert not ledger.alive(ended)
    resumer = StoreLedger(store)
    resumer.set_state(job_id, "running", owner="resumer")
    resumed = resumer.get(job_id)
    assert resumed is not None
    assert resumed.parameters["owner"] == "resumer"
    assert resumer.alive(resumed)
    resumer.set_state(job_id, "succeeded")


def test_a_job_recorded_without_a_lease_counts_as_not_running(store: ObjectStore) -> None:
    ledger = StoreLedger(store)
    job_id = new_job(ledger)
    ledger.update(job_id, BackfillPartitionRecord(DAYS[0], "succeeded", 1, "", 10, ""))
    store.delete(job_lease_key(job_id))  # as jobs were recorded before job leases

    job = ledger.get(job_id)
    assert job is not None
    assert job.state == "running"
    assert not ledger.alive(job)
    check_no_overlap(ledger, "pos", DAYS[0], DAYS[-1])


def test_a_job_handed_to_the_workers_releases_its_lease_and_stays_running(
    store: ObjectStore,
) -> None:
    ledger = StoreLedger(store)
    job_id = new_job(ledger)

    ledger.hand_over(job_id)  # what `backfill --no-wait` does once its units are enqueued
    lease = read_lease(store, job_lease_key(job_id))
    assert lease is not None
    assert lease.released  # free at once on every host, not at its expiry
    job = ledger.get(job_id)
    assert job is not None
    assert job.state == "running"  # the workers record its partitions and its end
    assert not ledger.alive(job)
    check_no_overlap(StoreLedger(store), "pos", DAYS[0], DAYS[-1])
    resumer = StoreLedger(store)
    resumer.set_state(job_id, "running", owner="resumer")  # a resume takes it over
    resumed = resumer.get(job_id)
    assert resumed is not None
    assert resumer.alive(resumed)
    resumer.set_state(job_id, "succeeded")


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_store_ledger_contract(check: Check, store: ObjectStore) -> None:
    check(StoreLedger(store))


@pytest.mark.slow
def test_database_ledger_contract(migrated_sqlite: str, tmp_path: Path) -> None:
    assert passed_checks("ledger", migrated_sqlite, tmp_path) == len(CHECKS)


@pytest.mark.postgres
@pytest.mark.slow
def test_database_ledger_contract_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    # one more check on PostgreSQL: a cancel held open while the last partition ends
    assert passed_checks("ledger", migrated(postgres_url, tmp_path), tmp_path) == len(CHECKS) + 1


def test_an_update_that_changes_nothing_writes_nothing(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = StoreLedger(store)
    job_id = new_job(ledger)
    record = BackfillPartitionRecord(DAYS[0], "succeeded", 1, "", 5, "")
    ledger.update(job_id, record)
    writes: list[str] = []
    put_if = store.put_if
    monkeypatch.setattr(
        store, "put_if", lambda key, *a, **k: writes.append(key) or put_if(key, *a, **k)
    )

    ledger.update(job_id, record)  # what a worker already recorded
    assert writes == []
    ledger.update(job_id, replace(record, rows=6))
    assert len(writes) == 1
    ledger.set_state(job_id, "succeeded")


@pytest.mark.parametrize("blank", ["", "  "], ids=repr)
def test_a_blank_database_url_variable_leaves_the_ledger_in_the_store(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    """An empty or blank ``DATABASE_URL`` counts as unset, as the settings read it: the
    store's ledger, not a connection to a database named by spaces."""
    monkeypatch.setenv("DATABASE_URL", blank)

    assert isinstance(open_ledger(store, None), StoreLedger)
