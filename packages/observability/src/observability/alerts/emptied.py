"""A zone emptied while late stays late: the evaluation's emptied zones judged by the alerts.

A dead feed's zone whose age alert is open (its newest object grew old) and that is then
emptied (a lifecycle rule expiring ``landing/``, say) reads ``empty`` to the age monitor:
nothing to age. Resolving the alert as no longer measured would leave nothing telling that
the feed is dead, only older. So before the alerts are updated, ``check`` and ``serve`` (and
the workers of ``check --no-wait``) pass each evaluation through :func:`carry_emptied`: an
``empty`` zone with an active age alert that named its newest object (the why of a late
age: "nothing newer than 2026-12-01 06:00 UTC") is judged by that object's age, growing
with the clock (:meth:`~observability.monitors.AgeMonitor.emptied`, state ``emptied``), so
its alert stays open (escalates, reminds) and the dataset reads late (``check`` exits 1),
until an object arrives again. The alert store is what remembers it, so a restart of
``serve`` or a new ``check`` process judges it the same. A late zone holding only objects
older than that (its newer ones removed, then an old file backfilled with its modification
time kept) is judged by it too (:meth:`~observability.monitors.AgeMonitor.thinned`): the
backfill makes the feed no staler, nor is its time what the alert remembers. So is an
emptied zone holding only future-dated objects (their warning told beside its age).

Left as the monitor said (``empty``: the alert resolves as no longer measured): a zone the
contract no longer judges (no thresholds nor schedule), no longer expects data in (a
curated zone it stopped building), or judges within its thresholds now; a stuck zone's
alert (``never_reached``: its awaited upstream objects are gone without reaching it); a
future-dated object's warning. A dataset with no contract is not evaluated: its alerts
are left as they are, as before. A replay (``check --at``) is not carried: the alerts are
of now.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from etl_core.contracts import Contract
from observability.alerts.model import Alert
from observability.evaluation import DatasetStatus, Evaluation
from observability.monitors import AgeMonitor, Result, last_seen

__all__ = ["carry_emptied"]


def carry_emptied(
    evaluation: Evaluation, contracts: Iterable[Contract], alerts: Iterable[Alert]
) -> Evaluation:
    """``evaluation`` with each ``empty`` zone whose active age alert (of ``alerts``) judged
    it late judged again by the newest object that alert last saw (see the module)."""
    seen = {
        (alert.dataset, alert.subject): moment
        for alert in alerts
        if alert.active
        and alert.monitor == "age"
        and (moment := last_seen(alert.summary)) is not None
    }
    if not seen:
        return evaluation
    by_name = {contract.dataset: contract for contract in contracts}
    statuses: list[DatasetStatus] = []
    for status in evaluation.datasets:
        contract = by_name.get(status.dataset)
        results = status.results
        if contract is not None and any((status.dataset, r.subject) in seen for r in results):
            monitor = AgeMonitor.from_contract(contract)
            results = tuple(
                _carried(monitor, result, seen, evaluation.evaluated_at)
                for result in status.results
            )
        statuses.append(status if results == status.results else status.with_results(results))
    return Evaluation(evaluation.evaluated_at, tuple(statuses))


def _carried(
    monitor: AgeMonitor, result: Result, seen: dict[tuple[str, str], datetime], now: datetime
) -> Result:
    """``result``, or the verdict on its emptied zone (or one that lost its newer objects)
    by the object last seen in it."""
    moment = seen.get((result.dataset, result.subject))
    if result.monitor != "age" or moment is None:
        return result
    return monitor.carried(result, moment, now) or result
