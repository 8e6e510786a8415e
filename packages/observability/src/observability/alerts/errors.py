"""Errors of the alerts: an unknown fingerprint, an alert document that cannot be read."""

from __future__ import annotations

from etl_core.errors import ConfigError
from observability.errors import ObservabilityError

__all__ = ["AlertDocumentError", "AlertError", "AlertNotFoundError", "AlertRowError"]


class AlertError(ObservabilityError):
    """Root of the alerts' errors."""


class AlertNotFoundError(AlertError, ConfigError):
    """No active alert has this fingerprint (bad usage of ``alerts ack`` / ``snooze``: exit 2)."""

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        ConfigError.__init__(
            self,
            f"no open, acknowledged or snoozed alert has fingerprint {fingerprint!r}; "
            "'etl-observability alerts list' shows them",
        )


class AlertDocumentError(AlertError):
    """The alerts' document in the object store is not what this version wrote."""

    def __init__(self, message: str, *, key: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")


class AlertRowError(AlertError):
    """An alert row of the ledger (``etl_alert``) holds what this version cannot use, such
    as a hand-edited outbox: an ``owed_event`` it does not know, or one without its time."""

    def __init__(self, fingerprint: str, message: str) -> None:
        self.fingerprint = fingerprint
        super().__init__(f"etl_alert row of alert {fingerprint}: {message}")
