"""What ``check`` and ``serve`` do with each evaluation: update the alerts, hand notifications on.

An :class:`AlertWatch` joins the lifecycle (:class:`~observability.alerts.lifecycle.AlertBook`)
and delivery (:class:`~observability.alerts.delivery.Dispatcher`): the alerts are changed
in the store, each event recorded in its alert's outbox in the same write; then every
notification the store still owes (this cycle's and any an earlier cycle could not
deliver: a webhook outage, a killed process) is queued and the evaluation goes on. What
the dispatcher delivered (or a channel refused for good) is cleared from the outbox by
compare-and-put (``serve``: between cycles; ``check``: at its exit). A process posts what
it recorded, and what another recorded once older than the delivery deadline (its recorder
may still be posting it until then: no twice-told notification from a ``check`` beside
``serve``). A notification owed longer than :data:`OWED_LIMIT` is given up (logged as an
error, counted ``expired``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from etl_core.errors import EtlError
from etl_core.metrics import Registry
from etl_core.retry import RetryPolicy
from etl_core.secrets import SecretUnavailableError
from observability.alerts.delivery import (
    DEFAULT_POLICY,
    Channel,
    Dispatcher,
    SlackChannel,
    WebhookChannel,
)
from observability.alerts.lifecycle import AlertBook
from observability.alerts.model import ACTIVE_STATES, Alert, Notification
from observability.alerts.store import AlertStore
from observability.evaluation import Evaluation
from observability.monitors import Clock
from observability.settings import ObservabilitySettings

__all__ = ["OWED_LIMIT", "AlertWatch"]

logger = logging.getLogger(__name__)

OWED_LIMIT = timedelta(days=1)
"""How long an undelivered notification is retried, cycle after cycle, before it is given
up: a day-old "opened" is history, and the alert itself (``alerts list``) still shows it."""


_SILENCED: dict[tuple[str, str | None], str] = {
    ("acknowledged", "reminder"): "the alert was acknowledged since; no more reminders",
    ("snoozed", "reminder"): "the alert was snoozed since; its reminders are silenced",
    ("snoozed", "escalated"): "the alert was snoozed since; its level changes are silenced",
    ("snoozed", "deescalated"): "the alert was snoozed since; its level changes are silenced",
}
"""(state, owed event) an operator's ``ack`` or ``snooze`` during an outage silenced: the
lifecycle would not have told that event in that state, so the outbox does not either."""


class AlertWatch:
    """The alerts of ``book``, updated per evaluation and told through ``dispatcher``."""

    def __init__(
        self,
        book: AlertBook,
        dispatcher: Dispatcher,
        *,
        owed_limit: timedelta = OWED_LIMIT,
        takeover_after: timedelta | None = None,
    ) -> None:
        self.book = book
        self.dispatcher = dispatcher
        self.owed_limit = owed_limit
        self.takeover_after = (
            takeover_after
            if takeover_after is not None
            else timedelta(seconds=dispatcher.policy.deadline or 0.0)
        )
        """How old a notification another process recorded must be before this one posts
        it: until then, its recorder may still be posting it (a ``serve`` beside a
        ``check``, two replicas, two ``--no-wait`` workers of one dataset)."""
        self._unsettled: list[tuple[str, Notification]] = []
        self._owed: dict[tuple[str, datetime], Alert] = {}
        self._mine: set[tuple[str, datetime, str, datetime]] = set()

    @classmethod
    def from_settings(
        cls, store: AlertStore, clock: Clock, settings: ObservabilitySettings
    ) -> AlertWatch:
        """The watch the ``alert_*`` settings describe, over ``store``; a webhook
        reference that resolves to nothing now is warned of (:func:`_warn_unresolved`)."""
        _warn_unresolved(settings)
        channels: list[Channel] = [SlackChannel(url) for url in settings.alert_slack_webhooks]
        channels += [WebhookChannel(url) for url in settings.alert_webhooks]
        deadline = settings.alert_delivery_deadline.total_seconds()
        policy: RetryPolicy = DEFAULT_POLICY.with_options(deadline=max(deadline, 1.0))
        book = AlertBook(
            store,
            clock,
            reminder_interval=settings.alert_reminder_interval,
            channels=[channel.key for channel in channels],
        )
        return cls(book, Dispatcher(channels, policy=policy))

    def update(
        self, evaluation: Evaluation, *, declared: Collection[str] | None = None
    ) -> list[Alert]:
        """Settle what was delivered, change the alerts from ``evaluation``, queue what the
        alerts of its datasets owe (:meth:`_ours`); the active alerts.

        Only the evaluated datasets' notifications are queued, as only their alerts are
        changed (``check --dataset``; a ``--no-wait`` worker records one dataset: two
        workers never post each other's owed notifications), and those of a dataset not
        ``declared`` (its contract removed: :meth:`AlertBook.observe`).

        Raises:
            EtlError: the alerts could not be read or written (nothing is told then; what
                was recorded stays owed for the next cycle).
        """
        self.settle()
        recorded = self.book.observe(evaluation, declared=declared)
        self._mine.update((*n.alert.identity, n.event, n.at) for n in recorded)
        now = evaluation.evaluated_at
        covered = {status.dataset for status in evaluation.datasets}
        if declared is not None:
            covered &= set(declared)
        _warn_retired([n for n in recorded if n.alert.dataset not in covered])

        def touched(alert: Alert) -> bool:
            return alert.dataset in covered or (
                declared is not None and alert.dataset not in declared
            )

        owed = [alert for alert in self.book.store.owed() if touched(alert)]
        # What was delivered but could not be cleared from the store (settle failed) is
        # not owed: posting it again would tell it twice. Its clearing is retried.
        unsettled = _index(self._unsettled)
        owed = [new for alert in owed if (new := _told(alert, unsettled)).owed_to]
        owed = self._owing(owed, now)
        self._owed = {alert.identity: alert for alert in owed}
        ours = self._ours(owed, now)
        posted = {id(alert) for alert in ours}  # linear with thousands owed
        self.dispatcher.withdraw(alert for alert in owed if id(alert) not in posted)
        self.dispatcher.submit_owed(ours, since=now)
        return self.book.active()

    def _ours(self, owed: list[Alert], now: datetime) -> list[Alert]:
        """Of ``owed``, what this process posts: what it recorded (while still owed) and
        what is older than :attr:`takeover_after` (its recorder gave up, or died)."""
        said = {alert: (*alert.identity, alert.owed_event, alert.owed_at) for alert in owed}
        self._mine &= set(said.values())  # bounded: only what is still owed
        return [
            alert
            for alert in owed
            if said[alert] in self._mine
            or (alert.owed_at is not None and now - alert.owed_at >= self.takeover_after)
        ]

    def finish(self, timeout: timedelta) -> None:
        """Wait up to ``timeout`` for the queued deliveries, then stop (``check``'s exit)."""
        self.dispatcher.drain(timeout.total_seconds())
        self.close()

    def close(self) -> None:
        """Stop delivering; clear what was delivered from the outbox (the rest stays owed)."""
        self.dispatcher.close()
        self.settle()

    def settle(self) -> None:
        """Clear from the alerts' outbox what the dispatcher delivered or saw refused for good.

        By the store's compare-and-put: an operator's ``ack`` meanwhile is kept, and a
        newer event recorded meanwhile is not cleared (only the notification told is). A
        store failure is logged and the settling retried at the next call; should the
        process die first, the notification is told again (at least once, never lost).
        """
        done = self._unsettled + self.dispatcher.settled()
        if not done:
            return
        told = _index(done)

        def change(owing: Sequence[Alert]) -> list[Alert]:
            return [new for alert in owing if (new := _told(alert, told)) != alert]

        try:
            written = self.book.store.settle(change)
        except EtlError as exc:
            self._unsettled = done
            logger.error("delivered alert notifications not cleared from the store: %s", exc)
            return
        self._unsettled = []
        for alert in written:
            if alert.identity in self._owed:  # the owed gauge's count
                self._owed[alert.identity] = alert

    def _owing(self, owed: list[Alert], now: datetime) -> list[Alert]:
        """``owed`` less what is given up (:meth:`_why_given_up`), each logged as an error;
        a retry of it still queued here is withdrawn (a stale reminder, an event of an alert
        resolved since, is not posted by the retry either)."""

        def change(owing: Sequence[Alert]) -> list[Alert]:
            changed = []
            for alert in owing:
                new = alert
                for key in alert.owed_to:
                    if self._why_given_up(alert, key, now) is not None:
                        new = new.told(key)
                if new != alert:
                    changed.append(new)
            return changed

        dropped = [
            (alert, key, why)
            for alert in owed
            for key in alert.owed_to
            if (why := self._why_given_up(alert, key, now)) is not None
        ]
        if not dropped:
            return owed
        written = {alert.identity: alert for alert in self.book.store.settle(change)}
        unwritten = {alert.identity: alert for alert in change(owed)}  # settled meanwhile
        for alert, key, why in dropped:
            if why == self._expiry:
                self.dispatcher.count(key.split(" ", 1)[0], "expired")  # the channel's kind
            silenced = why in _SILENCED.values()  # the operator's wish, not a loss
            logger.log(
                logging.INFO if silenced else logging.ERROR,
                "alert %s (%s of %s: %s) given up for %s: %s",
                alert.fingerprint,
                alert.owed_event,
                alert.owed_at.isoformat() if alert.owed_at else "?",
                alert.describe()[:300],
                key,
                why,
                extra={"dataset": alert.dataset},
            )
        kept = [written.get(alert.identity, unwritten.get(alert.identity, alert)) for alert in owed]
        # A retry this process still has queued of what was given up is not posted either.
        self.dispatcher.withdraw(alert for alert in kept if not alert.owed_to)
        return [alert for alert in kept if alert.owed_to]

    def _why_given_up(self, alert: Alert, key: str, now: datetime) -> str | None:
        """Why the notification ``alert`` owes channel ``key`` is not worth posting any more:
        owed past :attr:`owed_limit` (counted ``expired``, by channel kind), a channel no
        longer configured, a stale event of an alert resolved since (by a release before
        the outbox, which left the outbox as it was), a reminder such a release told a newer
        notification after (:attr:`~observability.alerts.model.Alert.stale_reminder`), or one
        an ``ack`` or ``snooze`` since
        silenced (:data:`_SILENCED`, logged at INFO); ``None``: post it."""
        if key not in {channel.key for channel in self.dispatcher.channels}:
            return "the channel is no longer configured"
        if alert.state == "resolved" and alert.owed_event != "resolved":
            return "the alert was resolved since; a stale event is not told after it"
        if alert.stale_reminder:
            return (
                "the alert was notified since (by a release before the outbox); a stale "
                "reminder is not told after it"
            )
        if (alert.state, alert.owed_event) in _SILENCED:
            return _SILENCED[alert.state, alert.owed_event]
        if alert.owed_at is not None and now - alert.owed_at > self.owed_limit:
            return self._expiry
        return None

    @property
    def _expiry(self) -> str:
        return f"still undelivered after {self.owed_limit}"

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
        registry.gauge(
            "etl_observability_alert_notifications_owed",
            "Alert notifications recorded in the alert store and not yet delivered "
            "(per alert and channel), as of the latest cycle.",
        ).set(sum(len(alert.owed_to) for alert in self._owed.values()))


_Told = dict[tuple[str, datetime, str, datetime], set[str]]
"""Channel keys told, by notification (fingerprint, opening time, event, time)."""


_WARNED_UNRESOLVED: set[tuple[str, str]] = set()
"""The webhook references :func:`_warn_unresolved` warned of in this process."""


def _warn_unresolved(settings: ObservabilitySettings) -> None:
    """Warn, naming the setting and the reference (never a value), of each webhook whose
    reference cannot be resolved now (a mistyped ``env:`` name, a missing file): it would
    be said only when an alert is to be told, maybe days later. Not refused: a file a
    secrets agent has not written yet is told once it is there (the event stays owed).
    Once per process and reference: ``schedule`` builds a watch at every firing."""
    for setting in ("alert_slack_webhooks", "alert_webhooks"):
        for secret in getattr(settings, setting):
            if (setting, secret.reference) in _WARNED_UNRESOLVED:
                continue
            try:
                secret.reveal()
            except SecretUnavailableError as exc:
                _WARNED_UNRESOLVED.add((setting, secret.reference))
                logger.warning(
                    "%s: %s cannot be resolved now (%s): alerts are not told there until it "
                    "can (they stay owed)",
                    setting,
                    secret.reference,
                    exc,
                    extra={"setting": setting, "reference": secret.reference},
                )


def _warn_retired(retired: Sequence[Notification]) -> None:
    """Say, as a warning, which datasets' alerts were resolved because no contract declares
    them any more: a contract removed on purpose, or a config directory mounted wrong (or
    another project's), which resolves every alert at once; never silently."""
    if not retired:
        return
    datasets = sorted({n.alert.dataset for n in retired})
    logger.warning(
        "resolved %d alert%s of %d dataset%s no contract declares any more: %s (their "
        "contracts removed; if not, the config directory is not this deployment's, and "
        "the next run with the right one opens them again)",
        len(retired),
        "" if len(retired) == 1 else "s",
        len(datasets),
        "" if len(datasets) == 1 else "s",
        ", ".join(datasets),
    )


def _index(done: list[tuple[str, Notification]]) -> _Told:
    """``done`` by notification, so settling thousands of owing alerts stays linear."""
    told: _Told = {}
    for key, notification in done:
        said = (*notification.alert.identity, notification.event, notification.at)
        told.setdefault(said, set()).add(key)
    return told


def _told(alert: Alert, told: _Told) -> Alert:
    """``alert`` no longer owing the channels ``told`` its owed notification."""
    if alert.owed_event is None or alert.owed_at is None:
        return alert
    keys = told.get((*alert.identity, alert.owed_event, alert.owed_at), set())
    for key in alert.owed_to:
        if key in keys:
            alert = alert.told(key)
    return alert
