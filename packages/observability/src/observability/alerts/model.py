"""What an alert is: one monitor's condition on one dataset (and zone), opened to resolved.

An alert is identified by its :func:`fingerprint` (dataset, monitor and the zone the
monitor judges), so the same condition seen by many evaluations is one alert, not one per
evaluation. A :class:`Notification` is what the lifecycle asks the channels to say.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "ACTIVE_STATES",
    "Alert",
    "AlertLevel",
    "AlertState",
    "Event",
    "Notification",
    "fingerprint",
]

AlertState = Literal["open", "acknowledged", "snoozed", "resolved"]
AlertLevel = Literal["warn", "critical"]
Event = Literal["opened", "escalated", "deescalated", "reminder", "resolved"]
ACTIVE_STATES: tuple[AlertState, ...] = ("open", "acknowledged", "snoozed")
"""The states of an alert that is not over; one active alert per fingerprint at most."""
_TIMES = (
    "opened_at",
    "updated_at",
    "notified_at",
    "acknowledged_at",
    "snoozed_until",
    "resolved_at",
)


_LEVELS: tuple[AlertLevel, ...] = ("warn", "critical")
_STATES: tuple[AlertState, ...] = (*ACTIVE_STATES, "resolved")


def _instant(name: str, text: str) -> datetime:
    """``text`` as a timezone-aware time; one without an offset is refused, naming ``name``."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{name}: expected a time with a UTC offset, got {text!r}")
    return moment


def fingerprint(dataset: str, monitor: str, subject: str = "") -> str:
    """The alert's identity: 16 hex digits of SHA-256 over dataset, monitor and subject."""
    text = "\0".join((dataset, monitor, subject))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Alert:
    """One alert, as the stores keep it (the same fields as the ledger's ``etl_alert`` row).

    Attributes:
        fingerprint: :func:`fingerprint` of dataset, monitor and subject.
        dataset: The dataset.
        monitor: The monitor kind (``age``, ``arrival``, ``volume``).
        subject: The zone of an ``age`` alert; ``""`` for the dataset as a whole.
        level: ``warn`` or ``critical``: the worst level of the monitor's results.
        state: ``open``, ``acknowledged``, ``snoozed`` or ``resolved``.
        summary: Why, in the monitor's words.
        opened_at: When the condition was first seen.
        updated_at: When the level, state or summary last changed.
        notified_at: When the channels were last told about it (reminders count from it).
        acknowledged_at: When someone acknowledged it.
        acknowledged_by: Who did.
        snoozed_until: A snoozed alert is quiet until then.
        resolved_at: When the monitor was seen ok again.
    """

    fingerprint: str
    dataset: str
    monitor: str
    subject: str
    level: AlertLevel
    state: AlertState
    summary: str
    opened_at: datetime
    updated_at: datetime
    notified_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str = ""
    snoozed_until: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the alert is not resolved."""
        return self.state != "resolved"

    def changed(self, **fields: Any) -> Alert:
        """A copy with ``fields`` changed."""
        return replace(self, **fields)

    def to_dict(self) -> dict[str, Any]:
        """The alert as plain JSON data (times as ISO 8601)."""
        data = asdict(self)
        for name in _TIMES:
            moment = data[name]
            data[name] = moment.isoformat() if moment is not None else None
        return data

    def status(self) -> dict[str, Any]:
        """The alert as ``/api/status`` lists it (its ``alerts`` key)."""
        data = self.to_dict()
        keys = ("fingerprint", "dataset", "monitor", "subject", "level", "state")
        shown = {key: data[key] for key in keys}
        shown.update({key: data[key] for key in ("opened_at", "updated_at", "snoozed_until")})
        shown["summary"] = self.summary
        return shown

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """The alert :meth:`to_dict` gave.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not an alert (a level or state this
                version does not know, a time without a UTC offset: the field named).
        """
        fields = dict(data)
        for name, known in (("level", _LEVELS), ("state", _STATES)):
            if fields.get(name) not in known:
                raise ValueError(
                    f"{name}: expected one of {', '.join(known)}, got {fields.get(name)!r}"
                )
        for name in _TIMES:
            moment = fields.get(name)
            fields[name] = _instant(name, moment) if moment is not None else None
        return cls(**fields)

    def describe(self) -> str:
        """One line for people: ``critical sales age landing: why``."""
        about = " ".join(part for part in (self.dataset, self.monitor, self.subject) if part)
        return f"{self.level} {about}: {self.summary}"


@dataclass(frozen=True)
class Notification:
    """What to tell the channels: an ``event`` of ``alert`` (its state after the event)."""

    event: Event
    alert: Alert
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The notification as plain JSON data: the generic webhook's payload."""
        return {"event": self.event, "at": self.at.isoformat(), "alert": self.alert.to_dict()}
