"""Run a Celery worker for one lane's queue in this process (``etl-<lane> worker``).

The worker consumes only its lane's queue, never the dead-letter one. Celery's own
signal handling applies: SIGTERM (``docker stop``) and a first Ctrl-C are a warm
shutdown (units running finish and are acknowledged, no new one is taken; a taken
but unstarted message goes back to the queue; a unit waiting for a busy lease or in a
retry's back-off stops waiting and its message goes back to the queue, uncounted:
:mod:`~etl_core.work.celery.task`); SIGQUIT or a second Ctrl-C a cold one
(units running are abandoned and redelivered later, since they were never acknowledged).
"""

from __future__ import annotations

from typing import Any

from etl_core.runtime import RuntimeSettings
from etl_core.work.celery.config import lane_queues
from etl_core.work.celery.ping import check_broker, worker_name
from etl_core.work.celery.refused_messages import dead_lettering_consumer
from etl_core.work.cores import share_cores_in_process

__all__ = ["run_worker"]


def run_worker(app: Any, settings: RuntimeSettings, lane: str, *, concurrency: int) -> int:
    """Consume ``lane``'s queue with ``concurrency`` worker processes until shut down.

    Returns:
        The worker's exit code (0 after a warm shutdown).

    Raises:
        BrokerRefusedError: the broker refused the login of ``broker_url`` (exit 2).
        BrokerUnreachableError: the broker did not answer the start-up check (exit 1).
    """
    # said at once, naming broker_url, as every command's broker check: a refused login
    # (exit 2) or an unreachable broker (exit 1), not Celery's own error line ~20 s later
    # and its retries forever (a supervisor or an orchestrator restarts the worker)
    check_broker(app, settings)
    queues = lane_queues(settings, lane)
    # its processes run `concurrency` units at once: each unit's engine gets its share of
    # the cores (etl_core.work.cores), not every core
    share_cores_in_process(concurrency)
    worker = app.Worker(
        hostname=worker_name(settings, lane),  # what `ping` looks for
        queues=[queues.work],
        consumer_cls=dead_lettering_consumer(queues.dead),  # nothing it cannot run is dropped
        concurrency=concurrency,
        pool_cls="prefork",
        loglevel=settings.log_level,
        quiet=True,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        optimization="fair",
    )
    worker.start()
    return int(worker.exitcode or 0)
