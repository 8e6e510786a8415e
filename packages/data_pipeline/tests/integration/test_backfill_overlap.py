"""Two backfills of overlapping dates of one dataset started at the same moment: each
checks for a running job before it records its own, so both can pass the check; the
check made again once a job holds its lease keeps them from both running."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from data_pipeline.backfill import PlannedPartition, resume_backfill, start_backfill
from data_pipeline.db import BackfillJobRecord
from data_pipeline.errors import BackfillConflictError
from data_pipeline.ledger import StoreLedger, job_lease_key
from etl_core.contracts import Contract, load_contracts
from etl_core.storage import ObjectStore, open_store, read_lease

FIRST = date(2026, 11, 1)
PLAN = [PlannedPartition(FIRST + timedelta(days=n), 1, 10) for n in range(3)]


class RacingLedger(StoreLedger):
    """A store ledger where another process records (and leases) an overlapping job of
    the same dataset just as this one records or resumes its own: after its check."""

    rival: BackfillJobRecord | None = None

    def create(self, dataset: str, start: date, end: date, *args: Any, **kwargs: Any) -> Any:
        self._race(dataset, start, end)
        return super().create(dataset, start, end, *args, **kwargs)

    def set_state(self, job_id: str, state: str, **kwargs: Any) -> None:
        if state == "running":
            self._race("pos", FIRST, PLAN[-1].dt)
        super().set_state(job_id, state, **kwargs)

    def _race(self, dataset: str, start: date, end: date) -> None:
        if self.rival is None:
            other = StoreLedger(self.store)  # its own leases: another process's
            dates = [p.dt for p in PLAN]
            self.rival = other.create(dataset, start, end, dates, parameters={}, max_attempts=3)


@pytest.fixture
def contract(config_dir: Path) -> Contract:
    return load_contracts(config_dir).get("pos")


@pytest.fixture
def lake(tmp_path: Path) -> Any:
    with open_store(tmp_path / "lake") as store:
        yield store


def start(ledger: StoreLedger, contract: Contract) -> BackfillJobRecord:
    return start_backfill(ledger, contract, FIRST, PLAN[-1].dt, PLAN, max_attempts=3, lookback=0)


def assert_gave_way(ledger: RacingLedger, refused: BackfillConflictError, job_id: str) -> None:
    """Only the rival runs; job ``job_id`` is cancelled, its lease free."""
    assert ledger.rival is not None
    assert f"backfill job {ledger.rival.job_id}" in str(refused)
    assert [job.job_id for job in ledger.running("pos")] == [ledger.rival.job_id]
    job = ledger.get(job_id)
    assert job is not None
    assert job.state == "cancelled"
    lease = read_lease(ledger.store, job_lease_key(job_id))
    assert lease is not None
    assert lease.is_free(time.time())


def test_a_backfill_recorded_beside_an_overlapping_one_started_meanwhile_gives_way(
    lake: ObjectStore, contract: Contract
) -> None:
    ledger = RacingLedger(lake)
    with pytest.raises(BackfillConflictError) as refused:
        start(ledger, contract)
    ours = [job for job in _jobs(ledger) if ledger.rival and job.job_id != ledger.rival.job_id]
    assert len(ours) == 1
    assert_gave_way(ledger, refused.value, ours[0].job_id)


def test_a_resume_beside_an_overlapping_backfill_started_meanwhile_gives_way(
    lake: ObjectStore, contract: Contract
) -> None:
    stalled = StoreLedger(lake)
    job = start(stalled, contract)
    stalled.set_state(job.job_id, "cancelled")  # its process stopped: resumable
    ledger = RacingLedger(lake)
    with pytest.raises(BackfillConflictError) as refused:
        resume_backfill(ledger, contract, job.job_id)
    assert_gave_way(ledger, refused.value, job.job_id)


def test_a_backfill_started_alone_runs(lake: ObjectStore, contract: Contract) -> None:
    ledger = StoreLedger(lake)
    job = start(ledger, contract)
    assert job.state == "running"
    assert ledger.alive(job)


def _jobs(ledger: StoreLedger) -> list[BackfillJobRecord]:
    prefix = "_state/data_pipeline/backfills/"
    found = (ledger.get(i.key[len(prefix) : -len(".json")]) for i in ledger.store.list(prefix))
    return [job for job in found if job is not None]


def test_a_backfill_overlapping_a_running_job_of_the_other_ledger_is_refused(
    lake: ObjectStore, contract: Contract, tmp_path: Path
) -> None:
    with open_store(tmp_path / "other") as elsewhere:  # stands for the database's ledger
        loading = StoreLedger(elsewhere)  # another process's loading backfill, running
        running = start(loading, contract)
        ledger = StoreLedger(lake)
        with pytest.raises(BackfillConflictError) as refused:
            start_backfill(
                ledger, contract, FIRST, FIRST, PLAN[:1], max_attempts=3, lookback=0,
                no_load=True, elsewhere=[lambda: loading],
            )  # fmt: skip
        assert f"backfill job {running.job_id}" in str(refused.value)
        assert _jobs(ledger) == []
        stalled = start(ledger, contract)
        ledger.set_state(stalled.job_id, "cancelled")
        with pytest.raises(BackfillConflictError):
            resume_backfill(ledger, contract, stalled.job_id, elsewhere=[lambda: loading])
        assert (ledger.get(stalled.job_id) or stalled).state == "cancelled"
