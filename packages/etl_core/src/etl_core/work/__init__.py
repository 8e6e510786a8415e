"""Work units and the executors that run them (in-process, local pool; Celery in its extra).

A lane turns its work into :class:`WorkUnit` values, offers one idempotent
``run_unit(context, unit)``, and lets the CLI choose where units run::

    units = [WorkUnit("file_processing", "landing_object", key) for key in keys]
    for result in ThreadExecutor(4).run(partial(run_unit, context), units):
        report(result)

Exactly-once effects come from the lane's claims, leases and manifests, never
from the executor: a unit may run twice (a retry, a redelivery) and must not
double its output.
"""

from typing import TYPE_CHECKING

from etl_core.exports import lazy_exports

if TYPE_CHECKING:
    from etl_core.work.choice import EXECUTORS, require_broker, unit_executor, unit_sender
    from etl_core.work.executor import DEFAULT_POLICY, Executor, RunUnit, attempt_unit
    from etl_core.work.inline import InlineExecutor
    from etl_core.work.result import UnitResult, UnitStatus
    from etl_core.work.threads import ThreadExecutor
    from etl_core.work.unit import InvalidUnitError, WorkUnit

_EXPORTS = {
    "DEFAULT_POLICY": "etl_core.work.executor",
    "EXECUTORS": "etl_core.work.choice",
    "Executor": "etl_core.work.executor",
    "InlineExecutor": "etl_core.work.inline",
    "InvalidUnitError": "etl_core.work.unit",
    "RunUnit": "etl_core.work.executor",
    "ThreadExecutor": "etl_core.work.threads",
    "UnitResult": "etl_core.work.result",
    "UnitStatus": "etl_core.work.result",
    "WorkUnit": "etl_core.work.unit",
    "attempt_unit": "etl_core.work.executor",
    "require_broker": "etl_core.work.choice",
    "unit_executor": "etl_core.work.choice",
    "unit_sender": "etl_core.work.choice",
}
"""Each re-exported name and its module, imported on first use: a command that only sizes
its DuckDB threads (``etl_core.work.cores``) or names its lane (``etl_core.work.events``)
loads no executor, retry policy or unit model (issue 16, start-up)."""

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, {})

__all__ = [
    "DEFAULT_POLICY",
    "EXECUTORS",
    "Executor",
    "InlineExecutor",
    "InvalidUnitError",
    "RunUnit",
    "ThreadExecutor",
    "UnitResult",
    "UnitStatus",
    "WorkUnit",
    "attempt_unit",
    "require_broker",
    "unit_executor",
    "unit_sender",
]
