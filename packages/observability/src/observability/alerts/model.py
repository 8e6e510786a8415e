"""What an alert is: one monitor's condition on one dataset (and zone), opened to resolved.

An alert is identified by its :func:`fingerprint` (dataset, monitor and the zone the
monitor judges), so the same condition seen by many evaluations is one alert, not one per
evaluation. A :class:`Notification` is what the lifecycle asks the channels to say.

An alert is also its own outbox: ``owed_event`` is its latest event not yet told to every
channel (``owed_to``), kept with the alert in its store until delivered, so a webhook
outage or a killed process delays a notification instead of losing it. A newer event
supersedes an older one still owed (a resolution is never followed by a stale
``opened``), except a reminder, which says nothing an owed event does not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal, get_args

__all__ = [
    "ACTIVE_STATES",
    "EVENTS",
    "OUTBOX_FIELDS",
    "Alert",
    "AlertLevel",
    "AlertState",
    "Event",
    "Notification",
    "fingerprint",
    "outbox_from_dict",
]

AlertState = Literal["open", "acknowledged", "snoozed", "resolved"]
AlertLevel = Literal["warn", "critical"]
Event = Literal["opened", "escalated", "deescalated", "reminder", "resolved"]
EVENTS: tuple[Event, ...] = get_args(Event)
ACTIVE_STATES: tuple[AlertState, ...] = ("open", "acknowledged", "snoozed")
"""The states of an alert that is not over; one active alert per fingerprint at most."""
_TIMES = (
    "opened_at",
    "updated_at",
    "notified_at",
    "acknowledged_at",
    "snoozed_until",
    "resolved_at",
    "owed_at",
)
OUTBOX_FIELDS = ("owed_event", "owed_at", "owed_to")
"""An alert's outbox: its latest event not told to every channel, its time, the channels."""


_LEVELS: tuple[AlertLevel, ...] = ("warn", "critical")
_STATES: tuple[AlertState, ...] = (*ACTIVE_STATES, "resolved")


def _instant(name: str, text: str) -> datetime:
    """``text`` as a timezone-aware time; one without an offset is refused, naming ``name``."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{name}: expected a time with a UTC offset, got {text!r}")
    return moment


def outbox_from_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """The outbox fields (:data:`OUTBOX_FIELDS`) of ``data``, checked: all or none.

    An ``owed_event`` without its time or its channels (or channels owed no event) would
    stay in the store for good, never posted nor given up, so it is refused.

    Raises:
        ValueError: naming the field and what was expected.
    """
    event = data.get("owed_event")
    if event is not None and event not in EVENTS:
        raise ValueError(f"owed_event: expected one of {', '.join(EVENTS)}, got {event!r}")
    owed_to = data.get("owed_to") or ()
    if not isinstance(owed_to, list | tuple) or not all(
        isinstance(key, str) and key for key in owed_to
    ):
        raise ValueError(f"owed_to: expected a list of channel names, got {owed_to!r}")
    moment = data.get("owed_at")
    if moment is not None and not isinstance(moment, str | datetime):
        raise ValueError(f"owed_at: expected an ISO 8601 time, got {moment!r}")
    at = _instant("owed_at", moment) if isinstance(moment, str) else moment
    if event is None and (at is not None or owed_to):
        raise ValueError("owed_event: missing, though owed_at or owed_to is set")
    if event is not None and at is None:
        raise ValueError(f"owed_at: missing, though owed_event is {event!r}")
    if event is not None and not owed_to:
        raise ValueError(f"owed_to: no channel, though owed_event is {event!r}")
    return {"owed_event": event, "owed_at": at, "owed_to": tuple(owed_to)}


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
        owed_event: The latest event some channel was not told yet (``None``: all told).
        owed_at: When that event happened (the notification's time; its age bounds retries).
        owed_to: The channels (:attr:`Channel.key`) still owed it.
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
    owed_event: Event | None = None
    owed_at: datetime | None = None
    owed_to: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Whether the alert is not resolved."""
        return self.state != "resolved"

    def changed(self, **fields: Any) -> Alert:
        """A copy with ``fields`` changed."""
        return replace(self, **fields)

    @property
    def identity(self) -> tuple[str, datetime]:
        """The episode: fingerprint and opening time (a resolved one may still owe)."""
        return self.fingerprint, self.opened_at

    def owing(self, event: Event, at: datetime, channels: Iterable[str]) -> Alert:
        """A copy that owes ``event`` (of ``at``) to ``channels`` as well as what it owed.

        The newer event supersedes the one owed (never a stale ``opened`` after a
        ``resolved``), except a ``reminder``: it says nothing an owed event does not, so
        the owed one is kept (its time too) and only the channels are added. A reminder
        owed again replaces the one owed (its time is the alert's ``notified_at``: an owed
        reminder older than that was superseded by a notification told without the
        outbox, :meth:`stale_reminder`).
        """
        to = tuple(dict.fromkeys((*self.owed_to, *channels)))
        if not to:
            return self
        if self.owed_event not in (None, "reminder") and event == "reminder":
            return self.changed(owed_to=to)
        return self.changed(owed_event=event, owed_at=at, owed_to=to)

    @property
    def stale_reminder(self) -> bool:
        """Whether the alert owes a ``reminder`` older than its last notification.

        This release owes a reminder at the time it notifies it (:meth:`owing`), so an
        older one was followed by a notification told by a release before the outbox (a
        rollback, or a rolling upgrade's old ``serve``), which moved ``notified_at`` and left
        the outbox as it was: telling the owed reminder after it would repeat it.
        """
        return (
            self.owed_event == "reminder"
            and self.owed_at is not None
            and self.notified_at is not None
            and self.notified_at > self.owed_at
        )

    def told(self, channel: str) -> Alert:
        """A copy no longer owing ``channel``; with nobody left, owing nothing."""
        to = tuple(key for key in self.owed_to if key != channel)
        if to:
            return self.changed(owed_to=to)
        return self.changed(owed_event=None, owed_at=None, owed_to=())

    def owed(self) -> Notification | None:
        """The notification the alert still owes (to :attr:`owed_to`), if any."""
        if self.owed_event is None or self.owed_at is None:
            return None
        return Notification(self.owed_event, self, self.owed_at)

    def to_dict(self) -> dict[str, Any]:
        """The alert as plain JSON data (times as ISO 8601)."""
        data = asdict(self)
        for name in _TIMES:
            moment = data[name]
            data[name] = moment.isoformat() if moment is not None else None
        data["owed_to"] = list(self.owed_to)
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
        fields.update(outbox_from_dict(fields))
        for name in _TIMES:
            if name not in OUTBOX_FIELDS:
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
        """The notification as plain JSON data: the generic webhook's payload (the alert
        without its outbox, which is the sender's bookkeeping)."""
        alert = {k: v for k, v in self.alert.to_dict().items() if k not in OUTBOX_FIELDS}
        return {"event": self.event, "at": self.at.isoformat(), "alert": alert}
