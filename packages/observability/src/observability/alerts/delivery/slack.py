"""Slack-compatible incoming webhooks: a ``text`` fallback and Block Kit ``blocks``."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from observability.alerts.delivery.channel import Channel
from observability.alerts.model import Notification

__all__ = ["SlackChannel"]

_HEADLINES = {
    "opened": "Alert opened",
    "escalated": "Alert escalated",
    "deescalated": "Alert eased",
    "reminder": "Alert still open",
    "resolved": "Alert resolved",
}
_MARKS = {"warn": ":warning:", "critical": ":rotating_light:", "resolved": ":white_check_mark:"}
_TEXT_LIMIT = 2900  # Slack refuses section texts over 3000 characters


class SlackChannel(Channel):
    """Posts a message Slack (and Mattermost, Rocket.Chat) show as a short card."""

    kind = "slack"

    def payload(self, notification: Notification) -> dict[str, Any]:
        """``text`` for notifications and clients without blocks; ``blocks`` for the card."""
        alert = notification.alert
        mark = _MARKS["resolved" if notification.event == "resolved" else alert.level]
        about = " ".join(part for part in (alert.dataset, alert.monitor, alert.subject) if part)
        headline = f"{_HEADLINES[notification.event]}: {about} ({alert.level})"
        summary = _escape(alert.summary)[:_TEXT_LIMIT]
        context = (
            f"fingerprint `{alert.fingerprint}` · state {alert.state} · "
            f"opened {alert.opened_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        )
        return {
            "text": f"{mark} {_escape(headline)}: {summary}"[:_TEXT_LIMIT],
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"{mark} *{_escape(headline)}*\n{summary}"},
                },
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        }


def _escape(text: str) -> str:
    """Slack's three control characters escaped, so a key or reason is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
