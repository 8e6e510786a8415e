"""Alerts in the platform database: the ledger's ``etl_alert`` table, through ``observability.db``.

The table is shared by every deployment using the database (staging and production
stores pointing at one PostgreSQL), so each keeps its alerts apart by its object store's
identity (:attr:`~etl_core.storage.ObjectStore.identity`, the canonical root URL the
load fence is keyed by too): every read and write of this store is of that store's rows
only. Changes run in one transaction, the store's writers queued up before its active
rows are read and those rows locked, so concurrent writers (``serve``'s cycle, a ``check``
run, replicas, the deliveries, ``ack``) serialise per store, even two opening the same
new alert at once (the second updates the first's); resolved rows stay as the alerts'
history.
"""

from __future__ import annotations

from etl_core.storage import ObjectStore
from observability import db
from observability.alerts.model import Alert
from observability.alerts.store import AlertChange, AlertStore, OwedChange

__all__ = ["HISTORY_LIMIT", "DatabaseAlerts"]

HISTORY_LIMIT = 1000
"""Alerts listed at most by ``alerts(include_resolved=True)``."""


class DatabaseAlerts(AlertStore):
    """The alerts of the deployment whose object store is ``store``, kept in the ledger;
    the door must be open (:func:`observability.db.connect`)."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store.identity

    @property
    def store(self) -> str:
        """The object store the alerts belong to (its canonical root URL)."""
        return self._store

    def describe(self) -> str:
        """The database (password redacted) and the store."""
        return f"the ledger of {db.connected_url()} (alerts of {self._store})"

    def alerts(self, *, include_resolved: bool = False) -> list[Alert]:
        """The active alerts (and the latest resolved ones), newest first."""
        return db.alerts(store=self._store, include_resolved=include_resolved, limit=HISTORY_LIMIT)

    def change(self, change: AlertChange) -> list[Alert]:
        """Apply ``change`` in one transaction over the locked active rows."""
        return db.change_alerts(change, store=self._store)

    def owed(self) -> list[Alert]:
        """The rows, active or resolved, with an ``owed_event``, oldest owed first."""
        return db.owed_alerts(store=self._store)

    def settle(self, change: OwedChange) -> list[Alert]:
        """Apply ``change`` to the owing rows' outbox in one transaction, the rows locked."""
        return db.settle_alerts(change, store=self._store)
