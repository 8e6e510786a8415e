"""Delivery of alert notifications: channel kinds (one module each) and the dispatcher."""

from observability.alerts.delivery.channel import Channel
from observability.alerts.delivery.dispatcher import DEFAULT_POLICY, Dispatcher, Outcome
from observability.alerts.delivery.slack import SlackChannel
from observability.alerts.delivery.webhook import WebhookChannel

CHANNEL_KINDS: dict[str, type[Channel]] = {
    SlackChannel.kind: SlackChannel,
    WebhookChannel.kind: WebhookChannel,
}
"""Every channel kind by its name; the shared contract test holds each to the interface."""

__all__ = [
    "CHANNEL_KINDS",
    "DEFAULT_POLICY",
    "Channel",
    "Dispatcher",
    "Outcome",
    "SlackChannel",
    "WebhookChannel",
]
