"""Alerts: monitor results open, update and resolve them; stores keep them; webhooks tell them."""

from observability.alerts.database import DatabaseAlerts
from observability.alerts.emptied import carry_emptied
from observability.alerts.errors import (
    AlertDocumentError,
    AlertError,
    AlertNotFoundError,
    AlertRowError,
)
from observability.alerts.lifecycle import MAX_SNOOZE, AlertBook, Condition, conditions
from observability.alerts.model import ACTIVE_STATES, Alert, Notification, fingerprint
from observability.alerts.object_store import ALERTS_KEY, ObjectStoreAlerts
from observability.alerts.store import AlertChange, AlertStore
from observability.alerts.watch import AlertWatch

__all__ = [
    "ACTIVE_STATES",
    "ALERTS_KEY",
    "MAX_SNOOZE",
    "Alert",
    "AlertBook",
    "AlertChange",
    "AlertDocumentError",
    "AlertError",
    "AlertNotFoundError",
    "AlertRowError",
    "AlertStore",
    "AlertWatch",
    "Condition",
    "DatabaseAlerts",
    "Notification",
    "ObjectStoreAlerts",
    "carry_emptied",
    "conditions",
    "fingerprint",
]
