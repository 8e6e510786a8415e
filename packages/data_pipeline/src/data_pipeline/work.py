"""The pipeline's work units: one partition each, run by any executor of ``etl_core.work``.

A unit names the partition (``<dataset>/<date>``) and what to do with it; the
worker's :class:`PipelineContext` (store, contracts, settings) is built once from
its own settings. :func:`run_unit` is idempotent: the partition lease and the
manifest's generations make a repeated or concurrent unit harmless.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import date

from data_pipeline.db import BackfillPartitionRecord
from data_pipeline.errors import PartitionBusyError
from data_pipeline.ledger import Ledger, this_process
from data_pipeline.pipeline import PartitionOutcome, process_partition
from data_pipeline.settings import PipelineSettings
from data_pipeline.withdraw import WITHDRAWN
from etl_core.contracts import ContractSet
from etl_core.logging import bound_context
from etl_core.storage import ObjectStore
from etl_core.work import InvalidUnitError, WorkUnit
from etl_core.work.events import DATA_PIPELINE as LANE
from etl_core.work.events import PARTITION, partition_unit

__all__ = [
    "LANE",
    "PARTITION",
    "PipelineContext",
    "partition_of",
    "partition_unit",
    "run_unit",
    "shown_state",
    "succeeded_record",
]

logger = logging.getLogger(__name__)

_SIGNALLED_QUERY = "Query interrupted"
"""What DuckDB says (a ``RuntimeError``) of a query it stopped for a signal in this thread."""


@dataclass(frozen=True)
class PipelineContext:
    """What every unit of one worker shares, built once from its settings.

    Attributes:
        ledger: The backfill ledger, for units of a backfill job.
    """

    store: ObjectStore
    contracts: ContractSet
    settings: PipelineSettings
    run_id: str = ""
    ledger: Ledger | None = None


PARTITION_PARAMS = {"transform": bool, "load": bool, "purpose": str, "job": str}
"""A partition unit's parameters and their JSON types (docs/events.md)."""


def partition_of(unit: WorkUnit) -> tuple[str, date]:
    """The dataset and date a partition unit names.

    Raises:
        InvalidUnitError: the unit is not a partition unit of this lane.
    """
    if (unit.lane, unit.kind) != (LANE, PARTITION):
        raise InvalidUnitError(f"expected a {LANE} {PARTITION} unit, got {unit.id}", field="kind")
    dataset, _, day = unit.key.partition("/")
    try:
        return dataset, date.fromisoformat(day)
    except ValueError:
        expected = f"expected <dataset>/<YYYY-MM-DD>, got {unit.key!r}"
        raise InvalidUnitError(expected, field="key") from None


def run_unit(context: PipelineContext, unit: WorkUnit) -> PartitionOutcome:
    """Process one partition unit; a unit of a backfill job records each attempt in its ledger.

    A ``run`` unit whose partition is being written elsewhere is skipped, not
    failed: the other writer is doing the work; one whose partition another
    writer finished since the run listed it is skipped too. Any other unit (a
    backfill's) waits for a busy partition while its writer is alive (up to
    ``lease_seconds``, :func:`~data_pipeline.pipeline.busy_wait_seconds`): a scheduled
    run or a chained transform of the same partition delays it, never fails it.

    Raises:
        InvalidUnitError: the unit is malformed.
        ContractError: no contract declares its dataset.
        PartitionBusyError: (backfill, transform, load) another live writer still holds
            the partition after the wait.
        PartitionError: the partition cannot be built (never retried).
    """
    dataset, dt = partition_of(unit)
    params = unit.checked_params(PARTITION_PARAMS)
    contract = context.contracts.get(dataset)
    job = params.get("job")
    purpose = params.get("purpose", "run")
    with bound_context(dataset=dataset, dt=dt.isoformat()):
        if job is not None:
            _record_attempt(context, str(job), dt)
        try:
            return process_partition(
                context.store,
                contract,
                dt,
                context.settings,
                transform=params.get("transform", True),
                load=params.get("load", True),
                run_id=context.run_id,
                purpose=purpose,
                only_if_pending=purpose == "run",
                wait_busy=purpose != "run",
            )
        except PartitionBusyError as busy:
            if purpose != "run":
                raise
            logger.info("skipped: %s", busy)
            return PartitionOutcome(dataset, dt, None, None, skipped="in progress elsewhere")
        except Exception as exc:
            if _interrupted_query(exc):  # Ctrl-C or SIGTERM arrived inside a DuckDB query
                raise KeyboardInterrupt from exc
            raise


WITHDRAWN_NOTE = "withdrawn: validated/ publishes no delivery of this day any more"
"""What a backfill ledger notes of a partition withdrawn instead of built (its state is
``succeeded``: the ledgers' states are the schema's, which has no ``withdrawn``)."""


def shown_state(record: BackfillPartitionRecord) -> str:
    """A backfill partition's state as people read it: ``withdrawn`` for one withdrawn
    instead of built (its ledger state ``succeeded`` with 0 rows would read as a day built
    empty), else its ledger state."""
    if record.state == "succeeded" and record.error == WITHDRAWN_NOTE:
        return WITHDRAWN
    return record.state


def succeeded_record(dt: date, attempts: int, outcome: PartitionOutcome) -> BackfillPartitionRecord:
    """The ledger record of a backfill partition whose unit ended with ``outcome``."""
    rows = outcome.transform.rows if outcome.transform else 0
    note = WITHDRAWN_NOTE if outcome.withdrawn else ""
    return BackfillPartitionRecord(dt, "succeeded", attempts, note, rows, "")


def _interrupted_query(error: BaseException) -> bool:
    """Whether ``error`` is, or was caused by, a DuckDB query interrupted by a signal.

    A Ctrl-C or SIGTERM (whose handler raises ``KeyboardInterrupt``) arriving while
    DuckDB runs a query in this thread is turned by DuckDB into a plain ``RuntimeError``
    ("Query interrupted"), an ordinary error that the transform wraps like a bad query:
    the partition failed, the run went on with the rest and exited 1, the signal lost.
    Told by its words: DuckDB's ``InterruptException`` ("INTERRUPT Error: Interrupted!")
    is what ``interrupt()`` raises (a query cancelled by our own code), never a signal.
    """
    duckdb = sys.modules.get("duckdb")  # never imported: no DuckDB query ran
    if duckdb is None:
        return False
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:  # both links: an error raised "from" another still has its context
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, RuntimeError | duckdb.Error) and str(current) == _SIGNALLED_QUERY:
            return True
        seen.add(id(current))
        pending += [current.__cause__, current.__context__]
    return False


def _record_attempt(context: PipelineContext, job_id: str, dt: date) -> None:
    """Mark the partition running in its job, one more attempt, before the work starts."""
    if context.ledger is None:
        raise InvalidUnitError("a backfill unit needs the backfill ledger", field="params.job")
    job = context.ledger.get(job_id)
    previous = next((p for p in job.partitions if p.dt == dt), None) if job else None
    attempts = (previous.attempts if previous else 0) + 1
    context.ledger.update(
        job_id, BackfillPartitionRecord(dt, "running", attempts, "", None, this_process())
    )
