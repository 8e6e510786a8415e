"""Alerts without a database: one JSON document in the object store, changed by compare-and-put.

The document (``_state/observability/alerts.json``) holds the active alerts and the
latest resolved ones (at most ``keep_resolved``, so it stays small), and their outbox
(``owed``: one entry per alert, active or resolved, that still owes a notification; a
section of its own, so the previous release, which refuses unknown alert fields, still
reads the document; a document with the outbox inline in its alerts is read too). Every
change reads it
with its ETag and writes it back only if nobody changed it meanwhile
(:class:`~etl_core.storage.records.Records`), so the write is atomic and a service's
cycle and an operator's ``ack`` never lose each other's change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from etl_core.layout import state_key
from etl_core.storage import ObjectStore
from etl_core.storage.records import NO_CHANGE, NoChange, Records
from observability.alerts.errors import AlertDocumentError
from observability.alerts.model import OUTBOX_FIELDS, Alert, outbox_from_dict
from observability.alerts.store import AlertChange, AlertStore, OwedChange

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
            return _Document(active, _trimmed(resolved, self.keep_resolved))

        self._records.update(self.key, apply)
        return list(written)

    def owed(self) -> list[Alert]:
        """The active and resolved alerts with an ``owed_event``, oldest owed first."""
        found = self._records.read(self.key)
        return _owing(found.value) if found is not None else []

    def settle(self, change: OwedChange) -> list[Alert]:
        """Apply ``change`` to the owing alerts' outbox by compare-and-put (retried on a race)."""
        written: list[Alert] = []

        def apply(current: _Document | None) -> _Document | NoChange:
            written.clear()
            if current is None:
                return NO_CHANGE
            owing = {alert.identity: alert for alert in _owing(current)}
            outboxes: dict[tuple[str, datetime], Alert] = {}
            for alert in change(_owing(current)):
                if alert.identity in owing:
                    outboxes[alert.identity] = alert
            if not outboxes:
                return NO_CHANGE

            def settled(alert: Alert) -> Alert:
                new = outboxes.get(alert.identity)
                if new is None:
                    return alert
                written.append(_with_outbox(alert, new))
                return written[-1]

            active = {key: settled(alert) for key, alert in current.active.items()}
            return _Document(active, tuple(settled(alert) for alert in current.resolved))

        self._records.update(self.key, apply)
        return list(written)


def _trimmed(resolved: list[Alert], keep: int) -> tuple[Alert, ...]:
    """The newest ``keep`` resolved alerts, and up to ``keep`` older ones that still owe their
    resolution (an outage with more resolutions than the history holds would otherwise lose
    them untold; the outbox gives each up after a day)."""
    owing = [alert for alert in resolved[keep:] if alert.owed_event is not None]
    return (*resolved[:keep], *owing[:keep])


def _owing(document: _Document) -> list[Alert]:
    alerts = [*document.active.values(), *document.resolved]
    owing = [alert for alert in alerts if alert.owed_event is not None]
    return sorted(owing, key=lambda alert: (alert.owed_at or alert.updated_at, alert.fingerprint))


def _with_outbox(alert: Alert, source: Alert) -> Alert:
    """``alert`` with the outbox of ``source`` (nothing else of it)."""
    return alert.changed(
        owed_event=source.owed_event, owed_at=source.owed_at, owed_to=source.owed_to
    )


def _encode(document: _Document) -> bytes:
    """The document as JSON: the alerts without their outbox, which is a section of its own
    (``owed``), so a release before the outbox (whose alerts have no such fields and refuse
    unknown ones) still reads the document a newer one wrote."""
    alerts = [*document.active.values(), *document.resolved]
    return json.dumps(
        {
            "format": FORMAT,
            "active": [_without_outbox(alert) for alert in document.active.values()],
            "resolved": [_without_outbox(alert) for alert in document.resolved],
            "owed": [_outbox_entry(alert) for alert in alerts if alert.owed_event is not None],
        },
        indent=1,
    ).encode()


def _without_outbox(alert: Alert) -> dict[str, Any]:
    return {k: v for k, v in alert.to_dict().items() if k not in OUTBOX_FIELDS}


def _outbox_entry(alert: Alert) -> dict[str, Any]:
    data = alert.to_dict()
    return {key: data[key] for key in ("fingerprint", "opened_at", *OUTBOX_FIELDS)}


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
    outboxes = _outboxes(raw.get("owed", []), key)
    active = [_with_entry(alert, outboxes) for alert in active]
    resolved = tuple(_with_entry(alert, outboxes) for alert in resolved)
    return _Document({alert.fingerprint: alert for alert in active}, resolved)


def _outboxes(entries: Any, key: str) -> dict[tuple[str, datetime], dict[str, Any]]:
    """The ``owed`` section by alert episode (fingerprint, opening time), each checked.

    An entry whose alert is gone (a release before the outbox trimmed it) is ignored.
    """
    if not isinstance(entries, list):
        raise AlertDocumentError(f"owed: expected a list, got {type(entries).__name__}", key=key)
    found: dict[tuple[str, datetime], dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise ValueError(f"expected an object, got {type(entry).__name__}")
            name = entry.get("fingerprint")
            if not isinstance(name, str):
                raise ValueError(f"fingerprint: expected a string, got {name!r}")
            opened = entry.get("opened_at")
            if not isinstance(opened, str):
                raise ValueError(f"opened_at: expected an ISO 8601 time, got {opened!r}")
            found[name, _opened(opened)] = outbox_from_dict(entry)
        except ValueError as exc:
            raise AlertDocumentError(f"owed[{index}] is malformed: {exc}", key=key) from exc
    return found


def _opened(text: str) -> datetime:
    """An entry's ``opened_at``, offset required (as the alerts' own times)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"opened_at: expected an ISO 8601 time with a UTC offset, got {text!r}")
    return moment


def _with_entry(alert: Alert, outboxes: dict[tuple[str, datetime], dict[str, Any]]) -> Alert:
    """``alert`` with its ``owed`` entry, if any (else as read: owing nothing, or its
    outbox inline, as the first release of the outbox wrote it)."""
    outbox = outboxes.get(alert.identity)
    return alert.changed(**outbox) if outbox is not None else alert
