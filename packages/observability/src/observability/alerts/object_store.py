"""Alerts without a database: one JSON document in the object store, changed by compare-and-put.

The document (``_state/observability/alerts.json``) holds the active alerts and the
latest resolved ones (at most ``keep_resolved``, so it stays small). Every change reads it
with its ETag and writes it back only if nobody changed it meanwhile
(:class:`~etl_core.storage.records.Records`), so the write is atomic and a service's
cycle and an operator's ``ack`` never lose each other's change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from etl_core.layout import state_key
from etl_core.storage import ObjectStore
from etl_core.storage.records import NO_CHANGE, NoChange, Records
from observability.alerts.errors import AlertDocumentError
from observability.alerts.model import Alert
from observability.alerts.store import AlertChange, AlertStore

__all__ = ["ALERTS_KEY", "FORMAT", "KEEP_RESOLVED", "ObjectStoreAlerts"]

ALERTS_KEY = state_key("observability", "alerts.json")
"""Where the alerts' document lives in the store."""
FORMAT = "etl-observability-alerts/1"
"""The document's ``format``: what wrote it, so another version can refuse it clearly."""
KEEP_RESOLVED = 500
"""Resolved alerts kept as history in the document, newest first."""


@dataclass(frozen=True)
class _Document:
    active: dict[str, Alert]
    resolved: tuple[Alert, ...]


class ObjectStoreAlerts(AlertStore):
    """Alerts kept in ``store`` under :data:`ALERTS_KEY`."""

    def __init__(
        self, store: ObjectStore, *, key: str = ALERTS_KEY, keep_resolved: int = KEEP_RESOLVED
    ) -> None:
        self.key = key
        self.keep_resolved = keep_resolved
        self._records: Records[_Document] = Records(store, decode=_decode, encode=_encode)

    def describe(self) -> str:
        """The document's URL."""
        return self._records.store.url_for(self.key)

    def alerts(self, *, include_resolved: bool = False) -> list[Alert]:
        """The active alerts, newest first; then, with ``include_resolved``, the history."""
        found = self._records.read(self.key)
        if found is None:
            return []
        document = found.value
        active = sorted(document.active.values(), key=lambda a: a.opened_at, reverse=True)
        return active + list(document.resolved) if include_resolved else active

    def change(self, change: AlertChange) -> list[Alert]:
        """Apply ``change`` by compare-and-put; retried when another writer got there first."""
        written: list[Alert] = []

        def apply(current: _Document | None) -> _Document | NoChange:
            document = current or _Document({}, ())
            written[:] = change(MappingProxyType(document.active))
            if not written:
                return NO_CHANGE
            active = dict(document.active)
            resolved = list(document.resolved)
            for alert in written:
                active.pop(alert.fingerprint, None)
                if alert.active:
                    active[alert.fingerprint] = alert
                else:
                    resolved.insert(0, alert)
            return _Document(active, tuple(resolved[: self.keep_resolved]))

        self._records.update(self.key, apply)
        return list(written)


def _encode(document: _Document) -> bytes:
    return json.dumps(
        {
            "format": FORMAT,
            "active": [alert.to_dict() for alert in document.active.values()],
            "resolved": [alert.to_dict() for alert in document.resolved],
        },
        indent=1,
    ).encode()


def _decode(data: bytes, key: str) -> _Document:
    try:
        raw: Any = json.loads(data)
    except ValueError as exc:
        raise AlertDocumentError(
            f"not JSON ({exc}); move it aside to start afresh", key=key
        ) from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise AlertDocumentError(f"format {found!r}, expected {FORMAT!r}", key=key)
    try:
        active = [Alert.from_dict(item) for item in raw["active"]]
        resolved = tuple(Alert.from_dict(item) for item in raw["resolved"])
    except (KeyError, TypeError, ValueError) as exc:
        raise AlertDocumentError(f"an alert is malformed: {exc!r}", key=key) from exc
    return _Document({alert.fingerprint: alert for alert in active}, resolved)
