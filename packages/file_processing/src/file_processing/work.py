"""The file lane's work units: one landing object each, run by any executor of ``etl_core.work``.

The worker's context is a :class:`~file_processing.process.Processor` (store,
contracts, settings, decryptors), built once per worker; the unit names only the
landing key. The ledger's compare-and-put claims make a repeated or concurrent
unit harmless: every object is processed exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import date
from typing import TYPE_CHECKING

from etl_core.errors import ObjectNotFoundError
from etl_core.work import InvalidUnitError
from etl_core.work.events import FILE_PROCESSING as LANE
from etl_core.work.events import LANDING_OBJECT, landing_object_unit, partition_unit
from file_processing.outcome import Outcome

if TYPE_CHECKING:  # the worker's context: importing this module does not load it
    from etl_core.work import UnitResult, WorkUnit
    from file_processing.process import Processor

__all__ = [
    "LANDING_OBJECT",
    "LANE",
    "landing_object_unit",
    "outcome_from_dict",
    "run_unit",
    "transform_validated",
]

logger = logging.getLogger(__name__)


def run_unit(processor: Processor, unit: WorkUnit) -> Outcome:
    """Process one landing object; one deleted before its turn is skipped, not failed.

    Raises:
        InvalidUnitError: the unit is not a landing object unit of this lane, or its
            ``params`` hold more than ``force`` (a boolean).
        StorageError: the store failed (retryable ones are retried by the executor).
        ConfigError: the contract's key reference cannot be resolved.
    """
    if (unit.lane, unit.kind) != (LANE, LANDING_OBJECT):
        raise InvalidUnitError(
            f"expected a {LANE} {LANDING_OBJECT} unit, got {unit.id}", field="kind"
        )
    force = unit.checked_params({"force": bool}).get("force", False)
    try:
        return processor.process(unit.key, force=force)
    except ObjectNotFoundError:
        # said: a storage event for a key that is not there (or a wrongly decoded one)
        # would otherwise vanish without a line; the store is named, since a worker set
        # up with another store than the scan's finds none of the scan's new objects
        store = processor.store.url
        logger.warning(
            "landing object %s not found in %s (deleted before it was processed, or this "
            "worker reads another store than its sender): skipped",
            unit.key, store, extra={"key": unit.key},
        )  # fmt: skip
        return Outcome(
            "skipped",
            unit.key,
            detail=f"not in {store}: deleted before it was processed, or the worker reads "
            "another store",
        )


def outcome_from_dict(data: object) -> Outcome:
    """The :class:`Outcome` a worker sent back as ``Outcome.to_dict()`` JSON.

    Raises:
        InvalidUnitError: ``data`` is not an outcome's JSON (field ``result``).
    """
    if not isinstance(data, Mapping) or not {"status", "key"} <= set(data):
        raise InvalidUnitError(f"expected an outcome as JSON, got {data!r:.200}", field="result")
    known = {f.name for f in fields(Outcome)}
    return Outcome(**{name: value for name, value in data.items() if name in known})


def transform_validated(
    send: Callable[[WorkUnit], object],
) -> Callable[[UnitResult[Outcome]], None]:
    """What a worker does after each landing object: a delivery just validated for a
    partition has that partition's transform sent (``send``, onto the ``data_pipeline``
    queue; docs/events.md), so it is curated within seconds, not at the next scheduled run.

    A send that fails is logged, not raised: the object is validated whatever happens to
    the message, and the pipeline's scheduled ``run`` finds the partition pending.
    """

    def after(result: UnitResult[Outcome]) -> None:
        outcome = result.value
        if not result.ok or outcome is None or outcome.status != "validated":
            return
        if outcome.dataset is None or outcome.partition is None:
            return
        unit = partition_unit(outcome.dataset, date.fromisoformat(outcome.partition))
        try:
            send(unit)
        except Exception as exc:  # the broker is down: the scheduled run catches up
            logger.error("transform of %s not enqueued: %s", unit.key, exc)
            return
        logger.info("enqueued transform %s", unit.key, extra={"unit": unit.id})

    return after
