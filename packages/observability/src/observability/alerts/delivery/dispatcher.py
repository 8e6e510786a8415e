"""Delivery of notifications to the channels: a bounded queue, one background thread, retries.

:meth:`Dispatcher.submit` never blocks (evaluations go on whatever the webhooks do): each
notification is queued once per channel. The thread posts them with httpx; a network
error, a timeout, 408, 429 or a 5xx is retried with exponential backoff and full jitter
(``Retry-After`` honoured) until the attempts or the deadline run out; any other answer
is final. A delivery that is given up, refused, or dropped because the queue is full is
logged (with the channel's URL *reference*, never the URL) and counted in
``etl_observability_alert_deliveries_total`` — never lost silently. What was delivered or
refused for good is handed to :meth:`Dispatcher.settled`, so the watch clears it from the
alert's outbox; anything else stays owed there and is submitted again by the next cycle.
One delivery per channel and alert episode is queued at a time: the same notification
submitted again (a cycle while it is retried) is not queued twice, and a newer one
replaces an older one still waiting (a stale ``opened`` is never posted after ``resolved``).
httpx logs each request's URL (at INFO, shown with ``--log-level DEBUG``): while a
dispatcher is open, a filter on its logger replaces the webhook URLs it posted to.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from etl_core.errors import EtlError
from etl_core.metrics import Registry
from etl_core.retry import RetryPolicy, parse_retry_after
from etl_core.threads import start_thread
from observability.alerts.delivery.channel import Channel
from observability.alerts.model import Alert, Notification

if TYPE_CHECKING:  # imported by the dispatcher that posts: a command without alerts skips it
    import httpx

__all__ = ["DEFAULT_POLICY", "Dispatcher", "Outcome"]

logger = logging.getLogger(__name__)

Outcome = Literal["delivered", "retried", "failed", "dropped", "resent", "expired"]
DEFAULT_POLICY = RetryPolicy(attempts=6, initial_delay=1.0, max_delay=60.0, deadline=300.0)
"""Six attempts within five minutes: waits of up to 1, 2, 4, 8, 16 s between them."""
_RETRYABLE_STATUS = frozenset({408, 425, 429})


class _UrlRedaction(logging.Filter):
    """Replaces the webhook URLs in httpx's records: they carry the webhooks' credentials."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = message
        for url in self.urls:
            hidden = hidden.replace(url, "<webhook URL>")
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


@dataclass(order=True)
class _Delivery:
    due: float
    order: int
    channel: Channel = field(compare=False)
    notification: Notification = field(compare=False)
    attempt: int = field(default=1, compare=False)
    first_at: float = field(default=0.0, compare=False)


class Dispatcher:
    """Posts notifications to ``channels`` from a background thread.

    Args:
        channels: Where every notification goes.
        policy: Attempts, backoff and deadline of one delivery.
        timeout: Seconds one POST may take (connect, write, read each).
        capacity: Deliveries waiting at most; more are dropped (logged, counted).
        transport: httpx transport (tests); the default one otherwise.
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        timeout: float = 10.0,
        capacity: int = 1000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.channels = tuple(channels)
        self.policy = policy
        self.capacity = capacity
        import httpx

        self._client = httpx.Client(timeout=timeout, transport=transport)
        self._pending: list[_Delivery] = []
        self._in_flight = 0
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._redaction = _UrlRedaction()
        logging.getLogger("httpx").addFilter(self._redaction)
        self._counted = threading.Lock()
        self._outcomes: Counter[tuple[str, Outcome]] = Counter()
        self._queued: dict[tuple[str, str, datetime], _Delivery] = {}
        self._done: list[tuple[str, Notification]] = []

    @property
    def outcomes(self) -> dict[tuple[str, Outcome], int]:
        """Deliveries by (channel kind, outcome) since start."""
        with self._counted:
            return dict(self._outcomes)

    def count(self, kind: str, outcome: Outcome, n: int = 1) -> None:
        """Count ``n`` deliveries of channel ``kind`` with ``outcome``."""
        with self._counted:
            self._outcomes[kind, outcome] += n

    def settled(self) -> list[tuple[str, Notification]]:
        """The (channel key, notification) delivered or refused for good since last asked."""
        with self._counted:
            done, self._done = self._done, []
        return done

    def submit(self, notifications: Iterable[Notification]) -> None:
        """Queue each notification for every channel; returns at once."""
        self._submit((channel, n, False) for n in notifications for channel in self.channels)

    def submit_owed(self, alerts: Iterable[Alert], *, since: datetime) -> None:
        """Queue what each alert owes, to the channels it owes it; returns at once.

        A notification owed from before ``since`` (an earlier cycle) is counted ``resent``.
        One this dispatcher already delivered (or saw refused) and :meth:`settled` has not
        handed over yet is skipped: the store still lists it only because the delivery
        ended after the cycle settled, and posting it again would tell it twice.
        """
        by_key = {channel.key: channel for channel in self.channels}
        self._submit(
            (
                (by_key[key], owed, owed.at < since)
                for alert in alerts
                if (owed := alert.owed()) is not None
                for key in alert.owed_to
                if key in by_key
            ),
            skip_settled=True,
        )

    def withdraw(self, alerts: Iterable[Alert]) -> None:
        """Drop each queued delivery, not being posted, that the alerts' owed notification
        supersedes: another process recorded a newer event of that episode (and posts it),
        so a retry of the older one would tell a stale ``opened`` after ``resolved``."""
        with self._cond:
            for alert in alerts:
                for channel in self.channels:
                    key = (channel.key, *alert.identity)
                    queued = self._queued.get(key)
                    if queued is None or queued not in self._pending:
                        continue
                    said = queued.notification
                    if (said.event, said.at) != (alert.owed_event, alert.owed_at):
                        self._pending.remove(queued)
                        heapq.heapify(self._pending)
                        del self._queued[key]

    def _submit(
        self,
        deliveries: Iterable[tuple[Channel, Notification, bool]],
        *,
        skip_settled: bool = False,
    ) -> None:
        if not self.channels:
            return
        with self._cond:
            # Under the condition: a delivery ending now is in ``_done`` before it leaves
            # ``_queued`` (see ``_run``), so it is seen by one check or the other.
            told = self._unsettled() if skip_settled else set()
            for channel, notification, resent in deliveries:
                if (channel.key, *_said(notification)) in told:
                    continue
                self._enqueue(channel, notification, resent=resent)
            if self._thread is None and self._pending and not self._closing:
                self._thread = start_thread(self._run, name="alert-delivery")
            self._cond.notify_all()

    def _unsettled(self) -> set[tuple[str, str, datetime, str, datetime]]:
        """What was delivered or refused for good and not yet handed to :meth:`settled`."""
        with self._counted:
            return {(key, *_said(notification)) for key, notification in self._done}

    def _enqueue(self, channel: Channel, notification: Notification, *, resent: bool) -> None:
        key = (channel.key, *notification.alert.identity)
        queued = self._queued.get(key)
        if queued is not None:
            said = queued.notification
            if (said.event, said.at) == (notification.event, notification.at):
                return  # already queued or being posted (a cycle while it is retried)
            if queued in self._pending:  # superseded before it was posted
                self._pending.remove(queued)
                heapq.heapify(self._pending)
            del self._queued[key]
        if len(self._pending) + self._in_flight >= self.capacity:
            self.count(channel.kind, "dropped")
            logger.error(
                "alert %s not delivered to %s: %d deliveries already wait (the queue's capacity)",
                notification.alert.fingerprint,
                channel.name,
                self.capacity,
                extra={"dataset": notification.alert.dataset},
            )
            return
        now = time.monotonic()
        delivery = _Delivery(now, next(self._order), channel, notification, first_at=now)
        heapq.heappush(self._pending, delivery)
        self._queued[key] = delivery
        if resent:
            self.count(channel.kind, "resent")

    def waiting(self) -> int:
        """Deliveries queued or being posted."""
        with self._cond:
            return len(self._pending) + self._in_flight

    def drain(self, timeout: float) -> bool:
        """Wait until every queued delivery is done (delivered or given up); whether it was."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._pending and not self._in_flight, timeout=timeout
            )

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread; deliveries still waiting are logged and counted as failed."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            left, self._pending = self._pending, []
            self._queued.clear()
        for delivery in left:
            self._give_up(
                delivery,
                "the process stopped before it could be retried (still owed: told by the next run)",
            )
        self._client.close()
        logging.getLogger("httpx").removeFilter(self._redaction)

    def record_metrics(self, registry: Registry) -> None:
        """Add the deliveries' counter and the queue's gauge to ``registry``."""
        counter = registry.counter(
            "etl_observability_alert_deliveries_total",
            "Alert notifications by channel and outcome "
            "(delivered, retried, failed, dropped, resent, expired).",
            ("channel", "outcome"),
        )
        for (kind, outcome), count in sorted(self.outcomes.items()):
            counter.labels(channel=kind, outcome=outcome).inc(count)
        registry.gauge(
            "etl_observability_alert_delivery_queue",
            "Alert notifications waiting to be delivered (or retried).",
        ).set(self.waiting())

    # ----------------------------------------------------------------- thread

    def _run(self) -> None:
        while True:
            with self._cond:
                delivery = self._next()
                if delivery is None:
                    return
                self._in_flight += 1
            retry_in = self._attempt(delivery)
            with self._cond:
                self._in_flight -= 1
                key = (delivery.channel.key, *delivery.notification.alert.identity)
                current = self._queued.get(key) is delivery
                if retry_in is not None and current:
                    delivery.due = time.monotonic() + retry_in
                    delivery.attempt += 1
                    heapq.heappush(self._pending, delivery)
                elif current:
                    del self._queued[key]
                self._cond.notify_all()

    def _next(self) -> _Delivery | None:
        """The next due delivery (waiting for it), or ``None`` when closing."""
        while not self._closing:
            now = time.monotonic()
            if self._pending and self._pending[0].due <= now:
                return heapq.heappop(self._pending)
            wait = self._pending[0].due - now if self._pending else None
            self._cond.wait(wait)
        return None

    def _attempt(self, delivery: _Delivery) -> float | None:
        """Post once; seconds until the next attempt, or ``None`` when done."""
        import httpx

        channel, alert = delivery.channel, delivery.notification.alert
        try:
            url = channel.url.reveal()
        except EtlError as exc:
            self._give_up(delivery, f"its URL is unavailable: {exc}")
            return None
        problem = _not_a_web_address(url)
        if problem:  # a typo, not a network blip: said at once, still owed once fixed
            self._give_up(
                delivery,
                f"the URL {channel.url.reference} holds is not a web address ({problem}):"
                " expected an http:// or https:// URL with a host",
            )
            return None
        self._redaction.urls.add(url)
        hint: float | None = None
        try:
            response = self._client.post(url, json=channel.payload(delivery.notification))
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {_without(str(exc), url)}"
        else:
            if response.is_success:
                self.count(channel.kind, "delivered")
                self._settle(delivery)
                logger.info(
                    "alert %s (%s) delivered to %s",
                    alert.fingerprint,
                    delivery.notification.event,
                    channel.name,
                    extra={"dataset": alert.dataset},
                )
                return None
            reason = f"HTTP {response.status_code}"
            if response.status_code not in _RETRYABLE_STATUS and response.status_code < 500:
                self._give_up(delivery, f"{reason}, which a retry would not change")
                self._settle(delivery)  # refused for good: not owed any more
                return None
            hint = parse_retry_after(response.headers.get("retry-after", ""))
        return self._retry_in(delivery, reason, hint)

    def _retry_in(self, delivery: _Delivery, reason: str, hint: float | None) -> float | None:
        policy = self.policy
        elapsed = time.monotonic() - delivery.first_at
        delay = policy.wait(delivery.attempt, hint)  # a Retry-After capped at max_delay
        if delivery.attempt >= policy.attempts:
            self._give_up(delivery, f"{reason} after {delivery.attempt} attempts")
            return None
        if policy.deadline is not None and elapsed + delay > policy.deadline:
            self._give_up(delivery, f"{reason}; its {policy.deadline:.0f}s deadline is past")
            return None
        self.count(delivery.channel.kind, "retried")
        logger.warning(
            "alert %s not delivered to %s (%s); attempt %d in %.1fs",
            delivery.notification.alert.fingerprint,
            delivery.channel.name,
            reason,
            delivery.attempt + 1,
            delay,
            extra={"dataset": delivery.notification.alert.dataset},
        )
        return delay

    def _settle(self, delivery: _Delivery) -> None:
        with self._counted:
            self._done.append((delivery.channel.key, delivery.notification))

    def _give_up(self, delivery: _Delivery, why: str) -> None:
        self.count(delivery.channel.kind, "failed")
        alert = delivery.notification.alert
        logger.error(
            "alert %s (%s: %s) was not delivered to %s: %s",
            alert.fingerprint,
            delivery.notification.event,
            alert.describe()[:300],
            delivery.channel.name,
            why,
            extra={"dataset": alert.dataset},
        )


def _not_a_web_address(url: str) -> str:
    """Why ``url`` cannot be posted to (no ``http``/``https`` scheme, no host, or what the
    client's own parser refuses: a bad port, a control character such as the newline a
    variable set from a file keeps), or ``""``.

    Parsed as the post parses it: a URL it refused would end the delivery thread, every
    channel's notifications with it. Says what is wrong without quoting the URL, which
    carries the webhook's credential.
    """
    import httpx

    if url != url.strip():
        return "a space or line break at its start or end"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return "it does not parse as a URL: a space or control character, or a bad port"
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        if not scheme:
            return "no scheme"
        # a short word is a mistyped scheme; anything else may be part of the credential
        return f"scheme {scheme!r}" if scheme.isalpha() and len(scheme) <= 8 else "no scheme"
    if not parsed.host:
        return "no host"
    return ""


def _without(text: str, secret: str) -> str:
    """``text`` with the secret URL (which an error may quote) replaced by a mark."""
    return text.replace(secret, "<webhook URL>") if secret else text


def _said(notification: Notification) -> tuple[str, datetime, str, datetime]:
    """What makes ``notification`` the same told twice: its alert's episode, event and time."""
    return (*notification.alert.identity, notification.event, notification.at)
