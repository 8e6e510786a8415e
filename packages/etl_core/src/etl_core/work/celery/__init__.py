"""Work units on Celery: the shared configuration, a lane's task, the executor, the worker
and its health check (``ping``).

Needs the optional extra ``celery`` (``pip install 'etl-core[celery]'``); importing this
package does not import Celery, building an application does (:func:`celery_app`).
Task names and their JSON arguments are the platform's event contract (docs/events.md).
"""

from etl_core.work.celery.app import celery_app
from etl_core.work.celery.config import (
    BROKER_SCHEMES,
    LaneQueues,
    celery_config,
    lane_queues,
    task_name,
    task_policy,
)
from etl_core.work.celery.deliveries import (
    DeliveryCounter,
    DeliveryLimit,
    TooManyDeliveriesError,
    store_delivery_limit,
)
from etl_core.work.celery.executor import BrokerLostError, CeleryExecutor
from etl_core.work.celery.messages import (
    RemoteUnitError,
    error_document,
    result_document,
    unit_result,
)
from etl_core.work.celery.ping import (
    BrokerRefusedError,
    BrokerUnreachableError,
    PingUnsupportedError,
    check_broker,
    ping_workers,
    worker_name,
)
from etl_core.work.celery.task import (
    DEAD_REASON_HEADER,
    LaneRunner,
    UnitTimeLimitError,
    register_lane_task,
)
from etl_core.work.celery.worker import run_worker

__all__ = [
    "BROKER_SCHEMES",
    "DEAD_REASON_HEADER",
    "BrokerLostError",
    "BrokerRefusedError",
    "BrokerUnreachableError",
    "CeleryExecutor",
    "DeliveryCounter",
    "DeliveryLimit",
    "LaneQueues",
    "LaneRunner",
    "PingUnsupportedError",
    "RemoteUnitError",
    "TooManyDeliveriesError",
    "UnitTimeLimitError",
    "celery_app",
    "celery_config",
    "check_broker",
    "error_document",
    "lane_queues",
    "ping_workers",
    "register_lane_task",
    "result_document",
    "run_worker",
    "store_delivery_limit",
    "task_name",
    "task_policy",
    "unit_result",
    "worker_name",
]
