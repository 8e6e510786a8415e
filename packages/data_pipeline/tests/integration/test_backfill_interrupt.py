"""A backfill interrupted (Ctrl-C, SIGTERM) while a partition is in flight: the partition
finishes, and its end is recorded, so a resume does not redo it and the summary counts it."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from data_pipeline import work
from data_pipeline.backfill import BackfillSummary, PlannedPartition, run_backfill, start_backfill
from data_pipeline.db import BackfillJobRecord
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


def interrupt_and_wait_for_stop() -> None:
    """Send this process SIGINT and wait until its backfill has stopped handing out work
    (the executor's stop is set), as a real partition's query outlives the signal."""
    os.kill(os.getpid(), signal.SIGINT)
    stop = unit_stop()
    assert stop is not None
    assert stop.wait(30), "the executor never stopped"


def interrupted_while_in_flight(store: Any, contract: Any, dt: date, *a: Any, **k: Any) -> Any:
    """A partition during which the process receives SIGINT: it finishes once its backfill
    has stopped handing out work (its executor's stop is set), as a real one finishes its
    query after the signal."""
    interrupt_and_wait_for_stop()
    return PartitionOutcome(contract.dataset, dt, None, None)


def given_up_after_an_interrupt(store: Any, contract: Any, dt: date, *a: Any, **k: Any) -> Any:
    """A partition during which the process receives SIGINT, and that gives up once its
    backfill stops (a query cancelled by the signal)."""
    interrupt_and_wait_for_stop()
    raise RuntimeError("query interrupted")


def run_interrupted_backfill(
    settings: PipelineSettings,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    partition: Callable[..., Any],
    plan: list[PlannedPartition],
    max_attempts: int,
) -> tuple[BackfillSummary, BackfillJobRecord | None]:
    """Run a one-worker backfill of ``plan`` whose partitions are ``partition``; return its
    summary and the job as the ledger recorded it afterwards."""
    monkeypatch.setattr(work, "process_partition", partition)
    contract = load_contracts(config_dir).get("pos")
    with open_store(settings.storage_url) as store:
        ledger = StoreLedger(store)
        job = start_backfill(
            ledger, contract, plan[0].dt, plan[-1].dt, plan, max_attempts=max_attempts, lookback=0
        )
        context = PipelineContext(store, ContractSet((contract,)), settings, "r1", ledger)
        summary = run_backfill(context, contract, job, ThreadExecutor(1), load=False)
        return summary, ledger.get(job.job_id)


def test_a_partition_finishing_after_an_interrupt_is_recorded_succeeded(
    settings: PipelineSettings, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, recorded = run_interrupted_backfill(
        settings, config_dir, monkeypatch, interrupted_while_in_flight, PLAN, max_attempts=3
    )

    assert summary.interrupted
    assert summary.succeeded == 1
    assert recorded is not None
    assert recorded.state == "cancelled"
    states = [(p.dt, p.state, p.attempts) for p in recorded.partitions]
    assert states == [(PLAN[0].dt, "succeeded", 1), (PLAN[1].dt, "pending", 0),
                      (PLAN[2].dt, "pending", 0)]  # fmt: skip


def test_a_partition_given_up_after_an_interrupt_is_not_left_running(
    settings: PipelineSettings, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, recorded = run_interrupted_backfill(
        settings, config_dir, monkeypatch, given_up_after_an_interrupt, PLAN, max_attempts=1
    )

    assert summary.interrupted
    assert summary.succeeded == 0
    assert recorded is not None
    states = [(p.dt, p.state, p.attempts) for p in recorded.partitions]
    assert states == [(PLAN[0].dt, "cancelled", 1), (PLAN[1].dt, "pending", 0),
                      (PLAN[2].dt, "pending", 0)]  # fmt: skip


def test_a_job_whose_last_partition_ends_after_an_interrupt_is_succeeded_not_cancelled(
    settings: PipelineSettings, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, recorded = run_interrupted_backfill(
        settings, config_dir, monkeypatch, interrupted_while_in_flight, PLAN[:1], max_attempts=3
    )

    assert summary.interrupted
    assert summary.succeeded == 1
    assert recorded is not None
    assert recorded.state == "succeeded"
