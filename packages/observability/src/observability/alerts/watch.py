"""What ``check`` and ``serve`` do with each evaluation: update the alerts, hand notifications on.

An :class:`AlertWatch` joins the lifecycle (:class:`~observability.alerts.lifecycle.AlertBook`)
and delivery (:class:`~observability.alerts.delivery.Dispatcher`): the alerts are changed
in the store, then the notifications are queued and the evaluation goes on.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from etl_core.metrics import Registry
from etl_core.retry import RetryPolicy
from observability.alerts.delivery import (
    DEFAULT_POLICY,
    Channel,
    Dispatcher,
    SlackChannel,
    WebhookChannel,
)
from observability.alerts.lifecycle import AlertBook
from observability.alerts.model import ACTIVE_STATES, Alert
from observability.alerts.store import AlertStore
from observability.evaluation import Evaluation
from observability.monitors import Clock
from observability.settings import ObservabilitySettings

__all__ = ["AlertWatch"]


class AlertWatch:
    """The alerts of ``book``, updated per evaluation and told through ``dispatcher``."""

    def __init__(self, book: AlertBook, dispatcher: Dispatcher) -> None:
        self.book = book
        self.dispatcher = dispatcher

    @classmethod
    def from_settings(
        cls, store: AlertStore, clock: Clock, settings: ObservabilitySettings
    ) -> AlertWatch:
        """The watch the ``alert_*`` settings describe, over ``store``."""
        channels: list[Channel] = [SlackChannel(url) for url in settings.alert_slack_webhooks]
        channels += [WebhookChannel(url) for url in settings.alert_webhooks]
        deadline = settings.alert_delivery_deadline.total_seconds()
        policy: RetryPolicy = DEFAULT_POLICY.with_options(deadline=max(deadline, 1.0))
        book = AlertBook(store, clock, reminder_interval=settings.alert_reminder_interval)
        return cls(book, Dispatcher(channels, policy=policy))

    def update(self, evaluation: Evaluation) -> list[Alert]:
        """Change the alerts from ``evaluation``, queue what to tell; the active alerts.

        Raises:
            EtlError: the alerts could not be read or written (nothing is told then).
        """
        self.dispatcher.submit(self.book.observe(evaluation))
        return self.book.active()

    def finish(self, timeout: timedelta) -> None:
        """Wait up to ``timeout`` for the queued deliveries, then stop (``check``'s exit)."""
        self.dispatcher.drain(timeout.total_seconds())
        self.dispatcher.close()

    def record_metrics(self, active: list[Alert], registry: Registry) -> None:
        """The active alerts by state and level, and the deliveries, in ``registry``."""
        gauge = registry.gauge(
            "etl_observability_alerts",
            "Active alerts by state (open, acknowledged, snoozed) and level.",
            ("state", "level"),
        )
        counts = Counter((alert.state, alert.level) for alert in active)
        for state in ACTIVE_STATES:
            for level in ("warn", "critical"):
                gauge.labels(state=state, level=level).set(counts[state, level])
        self.dispatcher.record_metrics(registry)
