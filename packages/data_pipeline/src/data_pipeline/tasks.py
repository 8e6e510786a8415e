"""The pipeline's units on a broker: what a ``data_pipeline`` worker runs and sends back.

The lane's one task (``data_pipeline.run_unit``, docs/events.md) takes two kinds of unit:
``partition`` (transform, enrich and load one partition; of a backfill job when its
``job`` parameter says so) and ``api_window`` (one API endpoint window). A worker
process builds one :class:`LaneContext` from its own settings and dispatches each unit
by kind; values travel back as JSON (:func:`encode_value`) and are rebuilt by the
caller (:func:`partition_outcome`, :func:`window_outcomes`).

A unit of a backfill job also records its end in the job's ledger on the worker
(:func:`record_backfill_end`), so a backfill enqueued with ``--no-wait`` finishes its
job's record without anybody following it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from typing import TYPE_CHECKING, Any, TypeAlias

from data_pipeline.db import BackfillPartitionRecord
from data_pipeline.ledger import Ledger
from data_pipeline.load import LoadResult
from data_pipeline.pipeline import PartitionOutcome
from data_pipeline.transform import TransformResult
from data_pipeline.work import PipelineContext, partition_of, run_unit, succeeded_record
from etl_core.runtime import new_run_id
from etl_core.work import InvalidUnitError, UnitResult, WorkUnit
from etl_core.work.events import API_WINDOW, DATA_PIPELINE, PARTITION

if TYPE_CHECKING:  # the ingest engine (httpx) is imported by the units that run it
    from data_pipeline.ingest import IngestContext, WindowOutcome

__all__ = [
    "LaneContext",
    "LaneValue",
    "encode_value",
    "partition_outcome",
    "record_backfill_end",
    "run_lane_unit",
    "window_outcomes",
    "with_run_id",
]

logger = logging.getLogger(__name__)

LaneValue: TypeAlias = "PartitionOutcome | list[WindowOutcome]"
"""What a pipeline unit returns: a partition's outcome, or the windows an API unit ran."""


@dataclass(frozen=True)
class LaneContext:
    """What every unit of one worker process shares."""

    pipeline: PipelineContext
    ingest: IngestContext


def with_run_id(unit: WorkUnit, run_id: str) -> WorkUnit:
    """An API window unit carrying the run it belongs to (its raw archive folder)."""
    return WorkUnit(unit.lane, unit.kind, unit.key, {**unit.params, "run_id": run_id})


def run_lane_unit(context: LaneContext, unit: WorkUnit) -> LaneValue:
    """Run one unit of the pipeline lane, whatever its kind.

    Raises:
        InvalidUnitError: not a unit of this lane, or of a kind it does not know.
        DataPipelineError: as :func:`~data_pipeline.work.run_unit` and
            :func:`~data_pipeline.ingest.ingest_unit` raise.
    """
    if unit.lane != DATA_PIPELINE:
        raise InvalidUnitError(f"expected a {DATA_PIPELINE} unit, got {unit.id}", field="lane")
    if unit.kind == PARTITION:
        return run_unit(context.pipeline, unit)
    if unit.kind == API_WINDOW:
        run_id = str(unit.params.get("run_id") or new_run_id())
        from data_pipeline.ingest import ingest_unit

        return ingest_unit(replace(context.ingest, run_id=run_id), unit)
    raise InvalidUnitError(
        f"expected kind {PARTITION} or {API_WINDOW}, got {unit.kind!r}", field="kind"
    )


def encode_value(value: LaneValue) -> dict[str, Any]:
    """A unit's value as the JSON a worker sends back."""
    if isinstance(value, PartitionOutcome):
        return {
            "partition": {
                "dataset": value.dataset,
                "dt": value.dt.isoformat(),
                "transform": _dated(asdict(value.transform)) if value.transform else None,
                "load": _dated(asdict(value.load)) if value.load else None,
                "skipped": value.skipped,
                "withdrawn": value.withdrawn,
            }
        }
    return {"windows": [outcome.to_dict() for outcome in value]}


def partition_outcome(data: object) -> PartitionOutcome:
    """The :class:`PartitionOutcome` of a worker's :func:`encode_value` JSON.

    Raises:
        InvalidUnitError: ``data`` is not a partition unit's value (field ``result``).
    """
    document = _member(data, "partition")
    try:
        built, loaded = document.get("transform"), document.get("load")
        return PartitionOutcome(
            str(document["dataset"]),
            date.fromisoformat(str(document["dt"])),
            _rebuilt(TransformResult, built) if isinstance(built, Mapping) else None,
            _rebuilt(LoadResult, loaded) if isinstance(loaded, Mapping) else None,
            skipped=document.get("skipped"),
            withdrawn=bool(document.get("withdrawn", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidUnitError(f"not a partition outcome: {exc}", field="result") from None


def window_outcomes(data: object) -> list[WindowOutcome]:
    """The windows of a worker's :func:`encode_value` JSON for an API window unit.

    Raises:
        InvalidUnitError: ``data`` is not such a value (field ``result``).
    """
    from data_pipeline.ingest import WindowOutcome

    windows = _member(data, "windows")
    try:
        return [_rebuilt(WindowOutcome, window) for window in windows]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidUnitError(f"not API window outcomes: {exc}", field="result") from None


def record_backfill_end(ledger: Ledger, result: UnitResult[LaneValue]) -> None:
    """Record how a backfill job's partition unit ended (its attempts are counted as they
    start), and the job's end once no partition of it is left pending or running."""
    job_id = result.unit.params.get("job")
    if result.unit.kind != PARTITION or job_id is None:
        return
    _, dt = partition_of(result.unit)
    value = result.value
    if result.ok and isinstance(value, PartitionOutcome):
        ended = succeeded_record(dt, 0, value)
    else:
        ended = BackfillPartitionRecord(dt, "failed", 0, str(result.error), None, "")
    if not ledger.end_partition(str(job_id), ended):
        logger.warning("backfill job %s has no partition %s: its end is not recorded", job_id, dt)


def _member(data: object, name: str) -> Any:
    if not isinstance(data, Mapping) or name not in data:
        raise InvalidUnitError(f"expected a {name} value, got {data!r:.200}", field="result")
    return data[name]


def _dated(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in document.items()}


def _rebuilt(kind: Any, document: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in fields(kind)}
    values = {k: v for k, v in document.items() if k in known}
    if "dt" in values:
        values["dt"] = date.fromisoformat(str(values["dt"]))
    return kind(**values)
