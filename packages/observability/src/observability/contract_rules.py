"""The contract rules this lane's engines judge, handed to the contract loader.

The platform's rules check that ``[freshness] expected`` has five cron fields; the cron
engine the monitors use (``cronsim``) judges it whole: ranges, steps, names, and that it
fires at all; and ``[freshness] grace`` against it: no longer than the shortest time
between two due times, or a delivery would still be on time after the next one is due.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from etl_core.contracts import Contract, ContractValidator
from observability.monitors import cron_problem, human_duration, shortest_period

__all__ = ["VALIDATORS", "schedule_problems"]


def schedule_problems(contract: Contract) -> Iterator[tuple[str, str]]:
    """``freshness.expected`` when the cron engine refuses it; ``freshness.grace`` when it
    is longer than the schedule's shortest period."""
    expression = contract.freshness.expected
    if expression is None:
        return
    problem = cron_problem(expression)
    if problem is not None:
        yield "freshness.expected", problem
        return
    grace = contract.freshness.grace
    period = shortest_period(expression) if grace > timedelta(0) else None
    if period is not None and grace > period:
        yield (
            "freshness.grace",
            (
                f"expected at most the shortest time between two due times of expected "
                f"'{expression}' ({human_duration(period)}), got {human_duration(grace)}: a "
                "delivery would still be on time after the next one is due"
            ),
        )


VALIDATORS: tuple[ContractValidator, ...] = (schedule_problems,)
"""Every rule of this lane, for ``load_contracts`` and ``contracts check``."""
