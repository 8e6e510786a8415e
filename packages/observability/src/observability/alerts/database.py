"""Alerts in the platform database: the ledger's ``etl_alert`` table, through ``observability.db``.

Changes run in one transaction with the active rows locked, so concurrent writers
serialise; resolved rows stay as the alerts' history.
"""

from __future__ import annotations

from observability import db
from observability.alerts.model import Alert
from observability.alerts.store import AlertChange, AlertStore, OwedChange

__all__ = ["HISTORY_LIMIT", "DatabaseAlerts"]

HISTORY_LIMIT = 1000
"""Alerts listed at most by ``alerts(include_resolved=True)``."""


class DatabaseAlerts(AlertStore):
    """Alerts kept in the ledger; the door must be open (:func:`observability.db.connect`)."""

    def describe(self) -> str:
        """The database (password redacted)."""
        return f"the ledger of {db.connected_url()}"

    def alerts(self, *, include_resolved: bool = False) -> list[Alert]:
        """The active alerts (and the latest resolved ones), newest first."""
        return db.alerts(include_resolved=include_resolved, limit=HISTORY_LIMIT)

    def change(self, change: AlertChange) -> list[Alert]:
        """Apply ``change`` in one transaction over the locked active rows."""
        return db.change_alerts(change)

    def owed(self) -> list[Alert]:
        """The rows, active or resolved, with an ``owed_event``, oldest owed first."""
        return db.owed_alerts()

    def settle(self, change: OwedChange) -> list[Alert]:
        """Apply ``change`` to the owing rows' outbox in one transaction, the rows locked."""
        return db.settle_alerts(change)
