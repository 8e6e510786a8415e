"""The generic webhook: the notification as plain JSON (event, time, the whole alert)."""

from __future__ import annotations

from typing import Any

from observability.alerts.delivery.channel import Channel
from observability.alerts.model import Notification

__all__ = ["WebhookChannel"]


class WebhookChannel(Channel):
    """Posts ``{"event", "at", "alert": {...}}`` for any receiver to parse."""

    kind = "webhook"

    def payload(self, notification: Notification) -> dict[str, Any]:
        """:meth:`Notification.to_dict`."""
        return notification.to_dict()
