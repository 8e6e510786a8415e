"""Where ``ingest`` runs its endpoint windows: this process, or the broker's workers.

A wave of windows (endpoints side by side) runs on the ``executor`` setting's choice
and is waited for before the next wave (children after their parents). With
``--no-wait`` nobody waits, so each source's windows are enqueued as one Celery chain:
they run one after another, parents first, whichever worker takes each.
"""

from __future__ import annotations

from collections.abc import Sequence

from data_pipeline.settings import PipelineSettings
from data_pipeline.tasks import window_outcomes, with_run_id
from etl_core.contracts import Source
from etl_core.work import DEFAULT_POLICY, Executor, ThreadExecutor, WorkUnit, unit_executor
from etl_core.work.celery import CeleryExecutor, celery_app, check_broker
from etl_core.work.events import DATA_PIPELINE

__all__ = ["enqueue_windows", "wave_executor"]


def wave_executor(settings: PipelineSettings, workers: int) -> Executor:
    """The executor of one wave: ``workers`` threads (one try each: the client retries
    requests), or the ``data_pipeline`` workers."""
    policy = DEFAULT_POLICY.with_options(attempts=1)
    return unit_executor(
        settings,
        DATA_PIPELINE,
        local=lambda: ThreadExecutor(workers, policy=policy),
        decode=window_outcomes,
    )


def enqueue_windows(
    settings: PipelineSettings, plan: Sequence[tuple[Source, list[WorkUnit]]], run_id: str
) -> int:
    """Enqueue the planned windows, a chain per source in plan order; how many."""
    app = celery_app(settings, DATA_PIPELINE)
    check_broker(app, settings)  # an unreachable broker or a refused login: said at once
    sender = CeleryExecutor(app)
    chains: dict[str, list[WorkUnit]] = {}
    for source, units in plan:  # planned parents first within each source
        chains.setdefault(source.source, []).extend(with_run_id(u, run_id) for u in units)
    for units in chains.values():
        if units:
            sender.submit_chain(units)
    return sum(len(units) for units in chains.values())
