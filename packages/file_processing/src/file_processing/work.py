"""The file lane's work units: one landing object each, run by any executor of ``etl_core.work``.

The worker's context is a :class:`~file_processing.process.Processor` (store,
contracts, settings, decryptors), built once per worker; the unit names only the
landing key. The ledger's compare-and-put claims make a repeated or concurrent
unit harmless: every object is processed exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields

from etl_core.errors import ObjectNotFoundError
from etl_core.work import InvalidUnitError, WorkUnit
from file_processing.process import Outcome, Processor

__all__ = ["LANDING_OBJECT", "LANE", "landing_object_unit", "outcome_from_dict", "run_unit"]

LANE = "file_processing"
LANDING_OBJECT = "landing_object"


def landing_object_unit(key: str, *, force: bool = False) -> WorkUnit:
    """The unit that processes the landing object ``key`` (``force`` redoes a done one)."""
    return WorkUnit(LANE, LANDING_OBJECT, key, {"force": force} if force else {})


def run_unit(processor: Processor, unit: WorkUnit) -> Outcome:
    """Process one landing object; one deleted before its turn is skipped, not failed.

    Raises:
        InvalidUnitError: the unit is not a landing object unit of this lane.
        StorageError: the store failed (retryable ones are retried by the executor).
        ConfigError: the contract's key reference cannot be resolved.
    """
    if (unit.lane, unit.kind) != (LANE, LANDING_OBJECT):
        raise InvalidUnitError(
            f"expected a {LANE} {LANDING_OBJECT} unit, got {unit.id}", field="kind"
        )
    try:
        return processor.process(unit.key, force=bool(unit.params.get("force", False)))
    except ObjectNotFoundError:
        return Outcome("skipped", unit.key, detail="deleted from landing/ before it was processed")


def outcome_from_dict(data: object) -> Outcome:
    """The :class:`Outcome` a worker sent back as ``Outcome.to_dict()`` JSON.

    Raises:
        InvalidUnitError: ``data`` is not an outcome's JSON (field ``result``).
    """
    if not isinstance(data, Mapping) or not {"status", "key"} <= set(data):
        raise InvalidUnitError(f"expected an outcome as JSON, got {data!r:.200}", field="result")
    known = {f.name for f in fields(Outcome)}
    return Outcome(**{name: value for name, value in data.items() if name in known})
