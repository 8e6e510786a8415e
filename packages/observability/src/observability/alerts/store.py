"""Where alerts are kept: one interface, two implementations.

:class:`~observability.alerts.object_store.ObjectStoreAlerts` keeps a JSON document in
the object store (no database); :class:`~observability.alerts.database.DatabaseAlerts`
keeps the ledger's ``etl_alert`` table. Both are held to the same contract test
(``tests/integration/test_alert_store_contract.py``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence

from observability.alerts.model import Alert

__all__ = ["AlertChange", "AlertStore", "OwedChange"]

AlertChange = Callable[[Mapping[str, Alert]], Iterable[Alert]]
"""Gets the active alerts by fingerprint; returns the alerts to write (changed or new)."""
OwedChange = Callable[[Sequence[Alert]], Iterable[Alert]]
"""Gets the alerts that owe notifications; returns those whose outbox (``owed_*``) to write."""


class AlertStore(abc.ABC):
    """Keeps alerts; changes are atomic, so a cycle and an operator's ``ack`` never collide."""

    @abc.abstractmethod
    def alerts(self, *, include_resolved: bool = False) -> list[Alert]:
        """The active alerts (with ``include_resolved``, also the kept history), newest first."""

    @abc.abstractmethod
    def change(self, change: AlertChange) -> list[Alert]:
        """Apply ``change`` to the active alerts atomically; return what was written.

        ``change`` may run more than once (a lost race is retried), so it must only
        compute. An alert it returns replaces the active one of its fingerprint, or is
        added; a resolved one joins the history.

        Raises:
            Exception: whatever ``change`` raised (nothing is written).
        """

    @abc.abstractmethod
    def owed(self) -> list[Alert]:
        """The alerts, active or resolved, whose ``owed_event`` is set, oldest owed first."""

    @abc.abstractmethod
    def settle(self, change: OwedChange) -> list[Alert]:
        """Apply ``change`` to the outbox of the owing alerts atomically; what was written.

        ``change`` gets :meth:`owed`'s alerts and may run more than once (a lost race is
        retried), so it must only compute. Of each alert it returns, only the
        ``owed_event``, ``owed_at`` and ``owed_to`` fields are written, to the owing alert
        of the same :attr:`~Alert.identity`; one matching none (settled meanwhile) is
        skipped. By the same compare-and-put (or locked rows) as :meth:`change`, so a
        delivery settled and an operator's ``ack`` never lose each other's change.
        """

    def describe(self) -> str:
        """Where the alerts are kept, for messages."""
        return type(self).__name__
