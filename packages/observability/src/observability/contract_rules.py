"""The contract rules this lane's engines judge, handed to the contract loader.

The platform's rules check that ``[freshness] expected`` has five cron fields; the cron
engine the monitors use (``cronsim``) judges it whole: ranges, steps, names, and that it
fires at all.
"""

from __future__ import annotations

from collections.abc import Iterator

from etl_core.contracts import Contract, ContractValidator
from observability.monitors import cron_problem

__all__ = ["VALIDATORS", "schedule_problems"]


def schedule_problems(contract: Contract) -> Iterator[tuple[str, str]]:
    """``freshness.expected`` when the cron engine refuses it."""
    expression = contract.freshness.expected
    if expression is not None:
        problem = cron_problem(expression)
        if problem is not None:
            yield "freshness.expected", problem


VALIDATORS: tuple[ContractValidator, ...] = (schedule_problems,)
"""Every rule of this lane, for ``load_contracts`` and ``contracts check``."""
