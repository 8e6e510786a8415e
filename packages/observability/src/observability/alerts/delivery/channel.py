"""What every delivery channel is: a webhook URL (a secret reference) and a payload shape.

A channel kind is one class per module (``slack``, ``webhook``); the
:class:`~observability.alerts.delivery.dispatcher.Dispatcher` posts its payloads. The URL
is a :class:`~etl_core.secrets.Secret` (``env:NAME`` / ``file:/path``): webhook URLs
carry their credential, so only the reference is ever shown or logged.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from etl_core.secrets import Secret
from observability.alerts.model import Notification

__all__ = ["Channel"]


class Channel(abc.ABC):
    """One webhook that notifications are posted to as JSON."""

    kind: ClassVar[str]
    """The channel's name in settings, logs and metrics."""

    def __init__(self, url: Secret) -> None:
        self.url = url

    @property
    def name(self) -> str:
        """The channel for logs: its kind and URL reference, never the URL (``slack webhook
        env:HOOK``; a generic one ``webhook env:HOOK``, not ``webhook webhook …``)."""
        kind = self.kind if self.kind.endswith("webhook") else f"{self.kind} webhook"
        return f"{kind} {self.url.reference}"

    @property
    def key(self) -> str:
        """The channel in an alert's outbox (``owed_to``): kind and URL reference."""
        return f"{self.kind} {self.url.reference}"

    @abc.abstractmethod
    def payload(self, notification: Notification) -> dict[str, Any]:
        """The JSON body that tells ``notification``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url.reference}>"
