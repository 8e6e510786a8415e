"""Scan ``landing/``: process every object not yet processed, several at a time.

Each landing object is one work unit (:meth:`Processor.process`); the ledger's
compare-and-put claims make two scans running at once (threads, processes or
hosts) process every object exactly once. A failure of one object (a store
error, an unresolvable key reference) is counted and logged; the others go on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field

from etl_core.errors import EtlError, ObjectNotFoundError
from etl_core.layout import landing_prefix
from etl_core.threads import ContextThreadPoolExecutor
from file_processing.process import Outcome, Processor

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
        if dataset is not None and processor.contracts.match(info.key) is None:
            continue
        yield info.key


def scan(
    processor: Processor,
    *,
    dataset: str | None = None,
    concurrency: int = 2,
    on_planned: Callable[[int], None] | None = None,
    on_done: Callable[[Outcome | Failure], None] | None = None,
) -> ScanSummary:
    """Process every unprocessed landing object (of ``dataset``), ``concurrency`` at a time.

    Args:
        on_planned: Called once with the number of objects found (for a progress bar).
        on_done: Called after each object, with its outcome or failure.
    """
    keys = list(landing_keys(processor, dataset))
    if on_planned is not None:
        on_planned(len(keys))
    summary = ScanSummary()
    pool = ContextThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        futures: dict[Future[Outcome], str] = {
            pool.submit(processor.process, key): key for key in keys
        }
        for future in as_completed(futures):
            result = _result(future, futures[future])
            if isinstance(result, Failure):
                summary.failures.append(result)
            else:
                summary.outcomes.append(result)
            if on_done is not None:
                on_done(result)
    except BaseException:
        # Ctrl-C or a kill: objects not started stay in line; those in flight finish.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    summary.outcomes.sort(key=lambda o: o.key)
    summary.failures.sort(key=lambda f: f.key)
    return summary


def _result(future: Future[Outcome], key: str) -> Outcome | Failure:
    try:
        return future.result()
    except ObjectNotFoundError:
        return Outcome("skipped", key, detail="deleted from landing/ before it was processed")
    except EtlError as exc:
        logger.error("could not process %s: %s", key, exc, extra={"key": key})
        return Failure(key, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        logger.error("could not process %s: %s", key, exc, extra={"key": key}, exc_info=exc)
        return Failure(key, f"{type(exc).__name__}: {exc}")
