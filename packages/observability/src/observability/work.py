"""Monitor evaluations as work units: one dataset's monitors at one instant each.

``check --executor celery`` (and ``schedule``) hands each dataset to the
``observability`` workers as a ``monitor`` unit (docs/events.md); a worker evaluates it
against its own store and sends the :class:`~observability.evaluation.DatasetStatus`
back as JSON, which :func:`status_from_dict` rebuilds. Evaluating reads and never
writes, so a unit run twice is harmless; what follows an evaluation (the freshness
history, alerts) stays with the one caller that waits for every unit. A unit enqueued
by ``check --no-wait`` (:func:`recorded_unit`: nobody waits for it) has its worker
record that for its dataset instead (:attr:`MonitorContext.record`); an alert is
changed by compare-and-put, and only the unit's own dataset's alerts are touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any

from etl_core.contracts import Contract, ContractSet
from etl_core.runtime import RuntimeSettings
from etl_core.storage import ObjectStore
from etl_core.work import InlineExecutor, InvalidUnitError, WorkUnit, unit_executor
from etl_core.work.events import MONITOR, OBSERVABILITY, monitor_unit
from observability.evaluation import DatasetStatus, Evaluation, evaluate, evaluate_dataset
from observability.monitors import Clock, Result

__all__ = [
    "RECORD",
    "REPLAY",
    "MonitorContext",
    "evaluate_with",
    "recorded_unit",
    "replayed_unit",
    "run_unit",
    "status_from_dict",
]

RECORD = "record"
"""The parameter of a monitor unit whose worker records its evaluation (``check --no-wait``)."""
REPLAY = "replay"
"""The parameter of a monitor unit replaying a past instant (``check --at``): objects stored
after it are left out."""


@dataclass(frozen=True)
class MonitorContext:
    """What a worker's units share: its store and the dataset contracts.

    Attributes:
        record: What records a unit's evaluation for its dataset (the freshness history,
            the alerts), for the units that ask for it (:func:`recorded_unit`).
    """

    store: ObjectStore
    contracts: ContractSet
    record: Callable[[Evaluation], object] | None = None


def recorded_unit(dataset: str, at: datetime) -> WorkUnit:
    """A monitor unit whose worker records the evaluation itself (nobody waits for it)."""
    unit = monitor_unit(dataset, at)
    return WorkUnit(unit.lane, unit.kind, unit.key, {**unit.params, RECORD: True})


def replayed_unit(dataset: str, at: datetime) -> WorkUnit:
    """A monitor unit replaying the instant ``at`` (objects stored after it left out)."""
    unit = monitor_unit(dataset, at)
    return WorkUnit(unit.lane, unit.kind, unit.key, {**unit.params, REPLAY: True})


def run_unit(context: MonitorContext, unit: WorkUnit) -> DatasetStatus:
    """Evaluate one dataset's monitors at the unit's instant.

    Raises:
        InvalidUnitError: not a monitor unit, its ``at`` is not an ISO 8601 instant, its
            ``params`` hold more than ``at``, ``record`` and ``replay`` (booleans), or both
            ``record`` and ``replay`` (a replay goes into no history and no alert).
        ContractError: no contract declares the dataset.
        StorageError: the store could not be read (its local directory gone included) or,
            recording, written.
    """
    if (unit.lane, unit.kind) != (OBSERVABILITY, MONITOR):
        raise InvalidUnitError(f"expected a {OBSERVABILITY} {MONITOR} unit, got {unit.id}",
                               field="kind")  # fmt: skip
    params = unit.checked_params({"at": str, RECORD: bool, REPLAY: bool})
    try:
        at = datetime.fromisoformat(params["at"])
    except (KeyError, ValueError):
        raise InvalidUnitError("expected an ISO 8601 instant", field="params.at") from None
    replay = bool(params.get(REPLAY))
    if replay and params.get(RECORD):  # a replay is neither history nor news
        raise InvalidUnitError(
            f"a replayed instant is never recorded: expected {RECORD} or {REPLAY}, not both",
            field=f"params.{RECORD}",
        )
    contract = context.contracts.get(unit.key)
    context.store.check_present()  # a worker outlives a mount: a store gone is no empty store
    status = evaluate_dataset(contract, context.store, at, replay=replay)
    if params.get(RECORD):
        if context.record is None:
            raise InvalidUnitError("this context records no evaluation", field=f"params.{RECORD}")
        context.record(Evaluation(at, (status,)))
    return status


def status_from_dict(data: object) -> DatasetStatus:
    """The :class:`DatasetStatus` of its ``to_dict()`` JSON, as a worker sent it back.

    Raises:
        InvalidUnitError: ``data`` is not a dataset status (field ``result``).
    """
    if not isinstance(data, Mapping):
        raise InvalidUnitError(f"expected a dataset status, got {data!r:.200}", field="result")
    try:
        latest = data.get("latest_partition")
        return DatasetStatus(
            dataset=str(data["dataset"]),
            level=data["level"],
            results=tuple(_result(item) for item in data["results"]),
            age_seconds=data.get("age_seconds"),
            latest_partition=date.fromisoformat(latest) if latest else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidUnitError(f"not a dataset status: {exc}", field="result") from None


def evaluate_with(
    settings: RuntimeSettings,
    contracts: Sequence[Contract],
    store: ObjectStore,
    clock: Clock,
    *,
    replay: bool = False,
) -> Evaluation:
    """Evaluate every dataset at ``clock.now()``: in this process (``executor`` local, as
    :func:`~observability.evaluation.evaluate`) or one unit per dataset on the workers;
    a ``replay`` leaves out the objects stored after the instant.

    Raises:
        EtlError: a dataset could not be evaluated (the first such error).
        ConfigError: the executor setting cannot be honoured.
    """
    if settings.executor == "local":
        return evaluate(contracts, store, clock, replay=replay)
    executor = unit_executor(settings, OBSERVABILITY, local=InlineExecutor, decode=status_from_dict)
    now = clock.now()
    context = MonitorContext(store, ContractSet(tuple(contracts)))
    unit_of = replayed_unit if replay else monitor_unit
    units = [unit_of(contract.dataset, now) for contract in contracts]
    statuses: dict[str, DatasetStatus] = {}
    for result in executor.run(partial(run_unit, context), units):
        if not result.ok or result.value is None:
            raise result.error or InvalidUnitError("no status", field="result")
        statuses[result.unit.key] = result.value
    return Evaluation(now, tuple(statuses[contract.dataset] for contract in contracts))


def _result(item: Any) -> Result:
    detail = item.get("detail") or {}
    return Result(**{**item, "detail": dict(detail)})
