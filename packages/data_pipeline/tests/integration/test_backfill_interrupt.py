"""A backfill interrupted (Ctrl-C, SIGTERM) while a partition is in flight: the partition
finishes, and its end is recorded, so a resume does not redo it and the summary counts it."""

from __future__ import annotations

import os
import signal
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from data_pipeline import work
from data_pipeline.backfill import PlannedPartition, run_backfill, start_backfill
from data_pipeline.ledger import StoreLedger
from data_pipeline.pipeline import PartitionOutcome
from data_pipeline.settings import PipelineSettings
from data_pipeline.work import PipelineContext
from etl_core.contracts import ContractSet, load_contracts
from etl_core.storage import open_store
from etl_core.work import ThreadExecutor
from etl_core.work.limits import unit_stop

FIRST = date(2026, 11, 1)
PLAN = [PlannedPartition(FIRST + timedelta(days=n), 1, 10) for n in range(3)]


def interrupted_while_in_flight(store: Any, contract: Any, dt: date, *a: Any, **k: Any) -> Any:
    """A partition during which the process receives SIGINT: it finishes once its backfill
    has stopped handing out work (its executor's stop is set), as a real one finishes its
    query after the signal."""
    os.kill(os.getpid(), signal.SIGINT)
    stop = unit_stop()
    assert stop is not None
    assert stop.wait(30), "the executor never stopped"
    return PartitionOutcome(contract.dataset, dt, None, None)


def test_a_partition_finishing_after_an_interrupt_is_recorded_succeeded(
    settings: PipelineSettings, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work, "process_partition", interrupted_while_in_flight)
    contract = load_contracts(config_dir).get("pos")
    with open_store(settings.storage_url) as store:
        ledger = StoreLedger(store)
        job = start_backfill(ledger, contract, FIRST, PLAN[-1].dt, PLAN, max_attempts=3, lookback=0)
        context = PipelineContext(store, ContractSet((contract,)), settings, "r1", ledger)
        summary = run_backfill(context, contract, job, ThreadExecutor(1), load=False)
        recorded = ledger.get(job.job_id)

    assert summary.interrupted
    assert summary.succeeded == 1
    assert recorded is not None
    assert recorded.state == "cancelled"
    states = [(p.dt, p.state, p.attempts) for p in recorded.partitions]
    assert states == [(PLAN[0].dt, "succeeded", 1), (PLAN[1].dt, "pending", 0),
                      (PLAN[2].dt, "pending", 0)]  # fmt: skip


def given_up_after_an_interrupt(store: Any, contract: Any, dt: date, *a: Any, **k: Any) -> Any:
    """A partition during which the process receives SIGINT, and that gives up once its
    backfill stops (a query cancelled by the signal)."""
    os.kill(os.getpid(), signal.SIGINT)
    stop = unit_stop()
    assert stop is not None
    assert stop.wait(30), "the executor never stopped"
    raise RuntimeError("query interrupted")


def test_a_partition_given_up_after_an_interrupt_is_not_left_running(
    settings: PipelineSettings, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work, "process_partition", given_up_after_an_interrupt)
    contract = load_contracts(config_dir).get("pos")
    with open_store(settings.storage_url) as store:
        ledger = StoreLedger(store)
        job = start_backfill(ledger, contract, FIRST, PLAN[-1].dt, PLAN, max_attempts=1, lookback=0)
        context = PipelineContext(store, ContractSet((contract,)), settings, "r1", ledger)
        summary = run_backfill(context, contract, job, ThreadExecutor(1), load=False)
        recorded = ledger.get(job.job_id)

    assert summary.interrupted
    assert summary.succeeded == 0
    assert recorded is not None
    states = [(p.dt, p.state, p.attempts) for p in recorded.partitions]
    assert states == [(PLAN[0].dt, "cancelled", 1), (PLAN[1].dt, "pending", 0),
                      (PLAN[2].dt, "pending", 0)]  # fmt: skip


def test_a_job_whose_last_partition_ends_after_an_interrupt_is_succeeded_not_cancelled(
    settings: PipelineSettings, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(work, "process_partition", interrupted_while_in_flight)
    contract = load_contracts(config_dir).get("pos")
    with open_store(settings.storage_url) as store:
        ledger = StoreLedger(store)
        job = start_backfill(ledger, contract, FIRST, FIRST, PLAN[:1], max_attempts=3, lookback=0)
        context = PipelineContext(store, ContractSet((contract,)), settings, "r1", ledger)
        summary = run_backfill(context, contract, job, ThreadExecutor(1), load=False)
        recorded = ledger.get(job.job_id)

    assert summary.interrupted
    assert summary.succeeded == 1
    assert recorded is not None
    assert recorded.state == "succeeded"
