"""Scan ``landing/``: process every object not yet processed, several at a time.

Each landing object is one work unit (:mod:`file_processing.work`) handed to an
executor of :mod:`etl_core.work`; the ledger's compare-and-put claims make two
scans running at once (threads, processes or hosts) process every object exactly
once. A failure of one object (a store error after its retries, an unresolvable
key reference) is counted and logged; the others go on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

from etl_core.errors import EtlError
from etl_core.layout import landing_prefix, quarantine_prefix, state_prefix, validated_prefix
from etl_core.work import Executor, UnitResult
from file_processing.process import Outcome, Processor
from file_processing.work import landing_object_unit, run_unit

__all__ = ["Failure", "ScanSummary", "landing_keys", "scan"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """An object that could not be processed (it stays in line for the next scan)."""

    key: str
    error: str


@dataclass
class ScanSummary:
    """What one scan did."""

    outcomes: list[Outcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many objects ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    def by_reason(self) -> Counter[str]:
        """Quarantined and duplicate objects per reason code."""
        return Counter(o.reason["code"] for o in self.outcomes if o.reason)


def landing_keys(processor: Processor, dataset: str | None = None) -> Iterator[str]:
    """Landing keys to consider (sidecars left out), restricted to ``dataset``'s source.

    Raises:
        ContractError: no contract declares ``dataset``.
    """
    source = None if dataset is None else processor.contracts.get(dataset).source
    for info in processor.store.list(landing_prefix(source)):
        if info.key.endswith("/") or processor.is_control_file(info.key):
            continue
        if dataset is not None and processor.contracts.find(info.key) is None:
            continue
        yield info.key


def scan(
    processor: Processor,
    executor: Executor,
    *,
    dataset: str | None = None,
    on_planned: Callable[[int], None] | None = None,
    on_done: Callable[[Outcome | Failure], None] | None = None,
) -> ScanSummary:
    """Process every unprocessed landing object (of ``dataset``) on ``executor``.

    Args:
        on_planned: Called once with the number of objects found (for a progress bar).
        on_done: Called after each object, with its outcome or failure.
    """
    _remove_abandoned_writes(processor)
    units = [landing_object_unit(key) for key in landing_keys(processor, dataset)]
    if on_planned is not None:
        on_planned(len(units))
    summary = ScanSummary()
    for result in executor.run(partial(run_unit, processor), units):
        done = _summarised(result)
        if isinstance(done, Failure):
            summary.failures.append(done)
        else:
            summary.outcomes.append(done)
        if on_done is not None:
            on_done(done)
    summary.outcomes.sort(key=lambda o: o.key)
    summary.failures.sort(key=lambda f: f.key)
    return summary


def _remove_abandoned_writes(processor: Processor) -> None:
    """Remove what writers of this lane killed mid-write left (older than a claim lasts)."""
    age = processor.settings.claim_timeout
    for prefix in (validated_prefix(), quarantine_prefix(), state_prefix("file_processing")):
        processor.store.remove_abandoned_writes(age, prefix)


def _summarised(result: UnitResult[Outcome]) -> Outcome | Failure:
    if result.ok and result.value is not None:
        return result.value
    key, error = result.unit.key, result.error
    logger.error(
        "could not process %s: %s",
        key,
        error,
        extra={"key": key, "attempts": result.attempts},
        exc_info=None if isinstance(error, EtlError) else error,
    )
    return Failure(key, f"{type(error).__name__}: {error}")
