"""The alert is its own outbox: a notification a webhook outage (or a killed process) kept
from its channel is told by the next `check`, once, and never a stale one after a newer."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from etl_core.layout import landing_key
from etl_core.retry import RetryPolicy
from etl_core.secrets import Secret
from etl_core.storage import open_store
from etl_core.testing.deliveries import publish_delivery
from observability.alerts import AlertBook, AlertWatch, ObjectStoreAlerts, fingerprint
from observability.alerts.delivery import Dispatcher, WebhookChannel
from observability.evaluation import DatasetStatus, Evaluation
from observability.monitors import FixedClock, Result

Cli = Callable[..., subprocess.CompletedProcess[str]]
Receivers = Callable[..., Any]
TOKEN = "T0001/B0002/OutboxSeCrEt9"
FAST = {"ETL_ALERT_DELIVERY_DEADLINE": "2s"}  # an outage is given up within the run quickly
STOCK = fingerprint("stock", "age", "landing")
AGED = """
dataset = "stock"
source = "stock"
pattern = "stock_{date:%Y%m%d}.csv"
[[columns]]
name = "id"
[freshness]
warn_after = "1h"
critical_after = "3h"
"""


def configure(tmp_path: Path) -> list[str]:
    """One dataset, ``stock``, late after an hour; the CLI options that find it."""
    datasets = tmp_path / "config" / "datasets"
    datasets.mkdir(parents=True, exist_ok=True)
    (datasets / "stock.toml").write_text(AGED)
    (tmp_path / "lake").mkdir(exist_ok=True)
    return ["--config-dir", str(tmp_path / "config"), "--storage", str(tmp_path / "lake")]


def drop(tmp_path: Path, age: timedelta) -> None:
    """A ``stock`` file landed ``age`` ago, validated now (the alert here is landing's)."""
    at = datetime.now(UTC) - age
    key = landing_key("stock", f"stock_{at:%Y%m%d}.csv")
    with open_store(str(tmp_path / "lake")) as store:
        store.write_bytes(key, b"id\n1\n")
        publish_delivery(store, "stock", at.date(), {"part.csv": b"x"}, landing=key)
    os.utime(tmp_path / "lake" / key, (at.timestamp(), at.timestamp()))


def late_and_unheard(tmp_path: Path, webhook_receiver: Receivers) -> tuple[list[str], Any]:
    """``stock`` (:func:`configure`) landed four hours ago, so late, and a webhook receiver
    refusing every post with 503; the CLI options and the receiver."""
    options = configure(tmp_path)
    drop(tmp_path, timedelta(hours=4))
    return options, webhook_receiver(failures=10**6, status=503)


def alerts_document(tmp_path: Path) -> Path:
    """The alerts document (active, resolved and owed) the CLI keeps in the lake."""
    return tmp_path / "lake" / "_state" / "observability" / "alerts.json"


def listed(cli: Cli, options: list[str], *flags: str) -> Any:
    result = cli(*options, "alerts", "list", "--json", *flags)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["alerts"]


def hook(url: str) -> dict[str, str]:
    """The webhook setting, a reference to a variable holding ``url`` (the same channel
    whatever the URL: a channel is its kind and reference)."""
    return {**FAST, "ETL_ALERT_WEBHOOKS": "env:HOOK", "HOOK": f"{url}/hooks/{TOKEN}"}


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
"""The fixed time the in-process watches below start at."""


def channel_to(receiver: Any) -> WebhookChannel:
    """The webhook channel posting to ``receiver`` (its URL behind ``env:HOOK``)."""
    return WebhookChannel(Secret("env:HOOK", environ={"HOOK": f"{receiver.url}/h"}))


def book_over(store: ObjectStoreAlerts, channel: WebhookChannel) -> AlertBook:
    """The alert book over ``store`` at :data:`START`, reminding every four hours, telling
    ``channel``."""
    return AlertBook(
        store, FixedClock(START), reminder_interval=timedelta(hours=4), channels=[channel.key]
    )


def stock_at(seconds: float, level: str, age: str = "4h", limit: str = "3h") -> Evaluation:
    """An evaluation ``seconds`` after :data:`START` finding ``stock``'s landing ``age``
    old against ``limit``, at ``level``."""
    result = Result("stock", "age", "landing", level, "stale", age, limit, "late")
    status = DatasetStatus("stock", level, (result,), None, None)  # type: ignore[arg-type]
    return Evaluation(START + timedelta(seconds=seconds), (status,))


def posted(receiver: Any, count: int) -> None:
    """Wait (twenty seconds at most) until ``receiver`` was sent ``count`` requests,
    accepted or refused."""
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while len(receiver.received) < count and datetime.now(UTC) < deadline:
        threading.Event().wait(0.05)


def told(receiver: Any) -> list[tuple[str, str]]:
    """(event, fingerprint) of each notification the receiver accepted, in order."""
    return [(body["event"], body["alert"]["fingerprint"]) for body in receiver.accepted()]


def past_takeover(cli: Cli, options: list[str]) -> None:
    """Wait (two seconds at most) until every owed notification is older than FAST's
    delivery deadline: the takeover delay, after which a run posts what another recorded."""
    owed = [a["owed_at"] for a in listed(cli, options, "--all") if a["owed_at"] is not None]
    takeover = max(map(datetime.fromisoformat, owed), default=datetime.now(UTC))
    while datetime.now(UTC) < takeover + timedelta(seconds=2):
        threading.Event().wait(0.1)


@pytest.mark.parametrize("outage", ["503", "connection refused"])
def test_a_notification_an_outage_kept_from_the_webhook_is_delivered_once_by_the_next_check(
    cli: Cli, tmp_path: Path, webhook_receiver: Receivers, outage: str
) -> None:
    options, receiver = late_and_unheard(tmp_path, webhook_receiver)
    down = hook(receiver.url if outage == "503" else closed_port_url())

    first = cli(*options, "check", env=down)
    assert first.returncode == 1, first.stderr
    assert told(receiver) == []
    assert TOKEN not in first.stderr
    (owing,) = listed(cli, options)

    receiver.failures = 0  # the outage is over
    past_takeover(cli, options)
    second = cli(*options, "check", env=hook(receiver.url))
    third = cli(*options, "check", env=hook(receiver.url))

    assert second.returncode == third.returncode == 1, second.stderr + third.stderr
    assert told(receiver) == [("opened", STOCK)]  # once: the third run owed nothing
    assert (owing.get("owed_event"), owing.get("owed_to")) == ("opened", ["webhook env:HOOK"])
    (body,) = receiver.accepted()
    assert "owed_to" not in body["alert"]  # the outbox is bookkeeping, not news
    (alert,) = listed(cli, options)
    assert (alert["owed_event"], alert["owed_to"]) == (None, [])


def test_an_alert_opened_and_resolved_during_an_outage_is_told_resolved_only(
    cli: Cli, tmp_path: Path, webhook_receiver: Receivers
) -> None:
    options, receiver = late_and_unheard(tmp_path, webhook_receiver)

    assert cli(*options, "check", env=hook(receiver.url)).returncode == 1
    drop(tmp_path, timedelta(minutes=1))
    assert cli(*options, "check", env=hook(receiver.url)).returncode == 0
    assert told(receiver) == []
    refused = [body["event"] for _, body, _ in receiver.received]  # type: ignore[index]
    assert refused[-1] == "resolved"  # the second run already tried the resolution

    receiver.failures = 0
    past_takeover(cli, options)
    after = cli(*options, "check", env=hook(receiver.url))
    again = cli(*options, "check", env=hook(receiver.url))

    assert after.returncode == again.returncode == 0, after.stderr + again.stderr
    assert told(receiver) == [("resolved", STOCK)]  # never a stale "opened" after it
    (history,) = listed(cli, options, "--all")
    assert (history["state"], history["owed_event"]) == ("resolved", None)


class HangingWebhook:
    """A webhook on 127.0.0.1 that holds each request unanswered until released (bounded)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.arrived.set()
                owner.release.wait(30)
                try:
                    self.send_response(503)
                    self.end_headers()
                except OSError:
                    pass  # the poster was killed

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def hanging() -> Iterator[HangingWebhook]:
    webhook = HangingWebhook()
    yield webhook
    webhook.close()


def test_a_check_killed_after_recording_and_before_posting_is_told_by_the_next_run(
    cli: Cli, tmp_path: Path, webhook_receiver: Receivers, hanging: HangingWebhook
) -> None:
    options = configure(tmp_path)
    drop(tmp_path, timedelta(hours=4))
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"
    }
    script = Path(sys.executable).parent / "etl-observability"
    env = {**environ, "ETL_LOG_FORMAT": "json", **hook(hanging.url)}
    env["ETL_ALERT_DELIVERY_DEADLINE"] = "60s"
    with subprocess.Popen(
        [str(script), *options, "check"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as killed:
        assert hanging.arrived.wait(60), "the check never posted"
        killed.send_signal(signal.SIGKILL)  # the alert is recorded; its post never answered
        assert killed.wait(30) == -signal.SIGKILL

    receiver = webhook_receiver(failures=0)
    past_takeover(cli, options)
    after = cli(*options, "check", env=hook(receiver.url))

    assert after.returncode == 1, after.stderr
    assert told(receiver) == [("opened", STOCK)]
    assert cli(*options, "check", env=hook(receiver.url)).returncode == 1
    assert told(receiver) == [("opened", STOCK)]  # delivered: not told again


def test_a_notification_owed_longer_than_a_day_is_given_up_logged_and_counted(
    cli: Cli, tmp_path: Path, webhook_receiver: Receivers
) -> None:
    options, receiver = late_and_unheard(tmp_path, webhook_receiver)
    assert cli(*options, "check", env=hook(receiver.url)).returncode == 1
    document = alerts_document(tmp_path)
    data = json.loads(document.read_text())
    data["owed"][0]["owed_at"] = "2020-01-01T00:00:00+00:00"  # owed for years
    document.write_text(json.dumps(data))
    receiver.failures = 0
    metrics = tmp_path / "metrics.prom"

    after = cli(*options, "check", "--metrics-file", str(metrics), env=hook(receiver.url))

    assert after.returncode == 1, after.stderr
    assert told(receiver) == []
    assert "still undelivered after 1 day" in after.stderr
    text = metrics.read_text()
    assert 'etl_observability_alert_deliveries_total{channel="webhook",outcome="expired"} 1' in text
    assert "etl_observability_alert_notifications_owed 0" in text
    (alert,) = listed(cli, options)
    assert alert["owed_event"] is None


def test_serve_cycles_tell_a_notification_an_outage_kept_once_and_settle_it(
    tmp_path: Path, webhook_receiver: Receivers
) -> None:
    receiver = webhook_receiver(failures=10**6, status=503)
    channel = channel_to(receiver)
    store = ObjectStoreAlerts(open_store(str(tmp_path)))
    policy = RetryPolicy(attempts=2, initial_delay=0.05, max_delay=0.05, jitter=False)
    watch = AlertWatch(book_over(store, channel), Dispatcher([channel], policy=policy))

    def cycle(minutes: int) -> None:
        watch.update(stock_at(minutes * 60, "critical"))
        assert watch.dispatcher.drain(30)

    try:
        cycle(0)  # refused twice: given up for this cycle, still owed
        assert [a.owed_event for a in store.owed()] == ["opened"]
        receiver.failures = 0
        cycle(1)  # told now
        cycle(2)  # settled: nothing more
        cycle(3)
    finally:
        watch.close()
    assert told(receiver) == [("opened", STOCK)]
    assert store.owed() == []
    assert watch.dispatcher.outcomes[("webhook", "resent")] == 1


def test_a_stale_event_owed_by_an_alert_resolved_since_is_never_told(
    cli: Cli, tmp_path: Path, webhook_receiver: Receivers
) -> None:
    options, receiver = late_and_unheard(tmp_path, webhook_receiver)
    assert cli(*options, "check", env=hook(receiver.url)).returncode == 1
    document = alerts_document(tmp_path)
    data = json.loads(document.read_text())
    (alert,) = data.pop("active")  # resolved by a release that kept no outbox: "opened" left
    alert.update(state="resolved", resolved_at=alert["opened_at"])
    document.write_text(json.dumps({**data, "active": [], "resolved": [alert]}))
    drop(tmp_path, timedelta(minutes=1))
    receiver.failures = 0

    after = cli(*options, "check", env=hook(receiver.url))

    assert after.returncode == 0, after.stderr
    assert told(receiver) == []
    assert "a stale event is not told after it" in after.stderr
    (history,) = listed(cli, options, "--all")
    assert (history["state"], history["owed_event"]) == ("resolved", None)


def _owing_alert(at: datetime, channel: WebhookChannel) -> Any:
    """A ``stock`` alert opened at ``at`` that owes its ``opened`` to ``channel``."""
    from observability.alerts import Alert

    alert = Alert(STOCK, "stock", "age", "landing", "critical", "open", "late", at, at, at)
    return alert.owing("opened", at, [channel.key])


def test_a_notification_delivered_after_the_cycle_settled_is_not_posted_again(
    webhook_receiver: Receivers,
) -> None:
    receiver = webhook_receiver(failures=0)
    channel = channel_to(receiver)
    dispatcher = Dispatcher([channel])
    at = START
    owing = _owing_alert(at, channel)
    try:
        dispatcher.submit_owed([owing], since=at)
        assert dispatcher.drain(30)
        # The next cycle settled before that delivery ended: the store still lists it.
        dispatcher.submit_owed([owing], since=at + timedelta(minutes=1))
        assert dispatcher.drain(30)
    finally:
        dispatcher.close()
    assert told(receiver) == [("opened", STOCK)]
    assert [key for key, _ in dispatcher.settled()] == [channel.key]


def test_a_delivery_the_store_failed_to_clear_is_not_posted_again_and_is_cleared_later(
    tmp_path: Path, webhook_receiver: Receivers
) -> None:
    from etl_core.errors import StorageError

    receiver = webhook_receiver(failures=0)
    channel = channel_to(receiver)
    store = ObjectStoreAlerts(open_store(str(tmp_path)))
    failing = [1]
    settle = store.settle

    def flaky_settle(change: Any) -> Any:
        if failing:
            failing.pop()
            raise StorageError("the store is briefly unreachable")
        return settle(change)

    store.settle = flaky_settle  # type: ignore[method-assign]
    watch = AlertWatch(book_over(store, channel), Dispatcher([channel]))

    def cycle(minutes: int) -> None:
        watch.update(stock_at(minutes * 60, "critical"))
        assert watch.dispatcher.drain(30)

    try:
        cycle(0)  # delivered
        cycle(1)  # its clearing fails: still listed as owed
        assert [a.owed_event for a in store.owed()] == ["opened"]
        cycle(2)  # cleared now
    finally:
        watch.close()
    assert told(receiver) == [("opened", STOCK)]
    assert store.owed() == []


def _watch_over(tmp_path: Path, receiver: Any) -> tuple[AlertWatch, ObjectStoreAlerts, Any]:
    """A watch over a store in ``tmp_path`` telling ``receiver``, its retries quick; and a
    ``cycle(minutes, level)`` that evaluates ``stock`` at that level and waits for delivery."""
    channel = channel_to(receiver)
    store = ObjectStoreAlerts(open_store(str(tmp_path)))
    policy = RetryPolicy(attempts=1, initial_delay=0.05, max_delay=0.05, jitter=False)
    watch = AlertWatch(book_over(store, channel), Dispatcher([channel], policy=policy))

    def cycle(minutes: int, level: str = "warn") -> None:
        watch.update(stock_at(minutes * 60, level))
        assert watch.dispatcher.drain(30)

    return watch, store, cycle


@contextmanager
def _an_outage_after_opened(
    tmp_path: Path, webhook_receiver: Receivers
) -> Iterator[tuple[Any, AlertWatch, ObjectStoreAlerts, Any]]:
    """A watch (:func:`_watch_over`) that told ``stock``'s alert opened, its webhook down
    since (503 to every post); the receiver, the watch, its store and its ``cycle``. The
    watch is closed on leaving."""
    receiver = webhook_receiver(failures=0)
    watch, store, cycle = _watch_over(tmp_path, receiver)
    try:
        cycle(0)  # opened, told
        receiver.failures, receiver.status = 10**6, 503  # the outage
        yield receiver, watch, store, cycle
    finally:
        watch.close()


@pytest.mark.parametrize(
    ("owed", "silence"),
    [("reminder", "ack"), ("reminder", "snooze"), ("escalated", "snooze")],
)
def test_an_event_owed_through_an_outage_is_not_told_after_an_ack_or_snooze_silenced_it(
    tmp_path: Path, webhook_receiver: Receivers, owed: str, silence: str
) -> None:
    with _an_outage_after_opened(tmp_path, webhook_receiver) as (receiver, watch, store, cycle):
        cycle(5 * 60, "critical" if owed == "escalated" else "warn")
        assert [a.owed_event for a in store.owed()] == [owed]
        if silence == "ack":
            watch.book.acknowledge(STOCK, by="oncall")
        else:
            watch.book.snooze(STOCK, timedelta(hours=8))
        receiver.failures = 0  # over
        cycle(5 * 60 + 1, "critical" if owed == "escalated" else "warn")
    assert told(receiver) == [("opened", STOCK)]
    assert store.owed() == []


def test_a_reminder_owed_is_not_told_again_after_a_release_before_the_outbox_told_one(
    tmp_path: Path, webhook_receiver: Receivers
) -> None:
    with _an_outage_after_opened(tmp_path, webhook_receiver) as (receiver, _, store, cycle):
        cycle(5 * 60)  # a reminder, owed
        assert [a.owed_event for a in store.owed()] == ["reminder"]
        # Rolled back: the previous release tells its own reminder once the webhook is
        # back, moving notified_at and leaving the outbox (unknown to it) as it was.
        receiver.failures = 0
        told_at = START + timedelta(minutes=5 * 60 + 10)
        store.change(lambda active: [active[STOCK].changed(notified_at=told_at)])
        cycle(5 * 60 + 20)  # this release again
    assert told(receiver) == [("opened", STOCK)]
    assert store.owed() == []


def test_a_reminder_owed_again_through_a_long_outage_is_told_once_after_it(
    tmp_path: Path, webhook_receiver: Receivers
) -> None:
    with _an_outage_after_opened(tmp_path, webhook_receiver) as (receiver, _, store, cycle):
        cycle(5 * 60)  # the outage, two reminders long
        cycle(9 * 60 + 1)
        (owing,) = store.owed()
        assert (owing.owed_event, owing.owed_at) == ("reminder", owing.notified_at)
        receiver.failures = 0  # over
        cycle(9 * 60 + 2)
    assert told(receiver) == [("opened", STOCK), ("reminder", STOCK)]
    assert store.owed() == []


def test_a_stale_reminder_given_up_is_not_posted_by_a_retry_still_queued(
    tmp_path: Path, webhook_receiver: Receivers
) -> None:
    receiver = webhook_receiver(failures=0)
    channel = channel_to(receiver)
    store = ObjectStoreAlerts(open_store(str(tmp_path)))
    slow = RetryPolicy(attempts=3, initial_delay=30.0, max_delay=30.0, jitter=False, deadline=300)
    watch = AlertWatch(book_over(store, channel), Dispatcher([channel], policy=slow))

    def cycle(seconds: int) -> None:
        watch.update(stock_at(seconds, "warn", age="2h", limit="1h"))

    try:
        cycle(0)  # "opened", told
        posted(receiver, 1)
        receiver.failures, receiver.status = 10**6, 503  # the outage
        cycle(4 * 3600)  # a reminder, refused once: its retry waits 30s
        posted(receiver, 2)
        # A release before the outbox (rolled back to, or its serve in a rolling upgrade)
        # told one since, moving notified_at and leaving the outbox as it was.
        told_at = START + timedelta(hours=4, minutes=10)
        store.change(lambda active: [active[STOCK].changed(notified_at=told_at)])
        cycle(4 * 3600 + 20 * 60)  # the owed reminder is stale: given up
        waiting = watch.dispatcher.waiting()
    finally:
        watch.close()
    assert store.owed() == []
    assert waiting == 0, "a stale reminder given up is still queued to be posted"


def test_a_given_up_notification_is_not_posted_though_another_process_settled_it_first(
    tmp_path: Path, webhook_receiver: Receivers
) -> None:
    receiver = webhook_receiver(failures=10**6, status=503)
    watch, store, cycle = _watch_over(tmp_path, receiver)
    watch.owed_limit = timedelta(minutes=30)
    try:
        cycle(0)  # opened, not told: owed
        receiver.failures = 0
        store.settle = lambda change: []  # type: ignore[method-assign,assignment]
        cycle(60)  # owed over the limit: given up, though this process wrote nothing
    finally:
        watch.close()
    assert told(receiver) == []


def test_serve_clears_a_delivered_notification_from_the_store_before_its_next_cycle(
    tmp_path: Path, webhook_receiver: Receivers
) -> None:
    """Else a ``check`` (or another ``serve``) reading the outbox within the interval
    would post it again."""
    import time

    from observability.service import StatusService

    receiver = webhook_receiver(failures=0)
    watch, store, _ = _watch_over(tmp_path / "alerts", receiver)
    at = START
    (channel,) = watch.dispatcher.channels
    owing = _owing_alert(at, channel)  # type: ignore[arg-type]
    lake = open_store(str(tmp_path / "lake"))
    service = StatusService([], lake, FixedClock(at), interval=timedelta(hours=1), alerts=watch)
    stop = threading.Event()
    cycles = threading.Thread(target=service.run_cycles, args=(stop,), daemon=True)
    cycles.start()
    try:
        store.change(lambda active: [owing])  # what a cycle recorded and queued
        watch.dispatcher.submit_owed([owing], since=at)
        deadline = time.monotonic() + 20
        while store.owed() and time.monotonic() < deadline:
            time.sleep(0.1)
        cleared = store.owed() == []
    finally:
        stop.set()
        cycles.join(30)
        watch.close()
    assert told(receiver) == [("opened", STOCK)]
    assert cleared, "still owed until the next cycle, an hour away"


class _ListedAlerts(ObjectStoreAlerts):
    """The outbox in memory (no document to encode): settling's own cost measured."""

    def __init__(self, alerts: list[Any]) -> None:
        self.listed = alerts

    def owed(self) -> list[Any]:
        return [alert for alert in self.listed if alert.owed_event is not None]

    def settle(self, change: Any) -> list[Any]:
        written = {alert.identity: alert for alert in change(self.owed())}
        self.listed = [written.get(alert.identity, alert) for alert in self.listed]
        return list(written.values())


def _settling_seconds(alerts: int) -> float:
    """The fastest of three settlings of ``alerts`` owing alerts delivered to two channels."""
    import time

    at = START
    channels = [
        WebhookChannel(Secret(f"env:HOOK{n}", environ={f"HOOK{n}": "http://127.0.0.1:9/h"}))
        for n in range(2)
    ]
    keys = [channel.key for channel in channels]
    fastest = float("inf")
    for _ in range(3):
        owing = [
            _owing_alert(at + timedelta(seconds=n), channels[0]).changed(
                fingerprint=f"{n:016x}", owed_to=tuple(keys)
            )
            for n in range(alerts)
        ]
        store = _ListedAlerts(owing)
        book = AlertBook(store, FixedClock(at), reminder_interval=timedelta(hours=4), channels=keys)
        watch = AlertWatch(book, Dispatcher(channels))
        # Delivered during an outage's recovery, their clearing left by a store failure.
        watch._unsettled = [(key, alert.owed()) for alert in owing for key in keys]
        started = time.monotonic()
        watch.settle()
        fastest = min(fastest, time.monotonic() - started)
        watch.close()
        assert store.owed() == []
    return fastest


def test_settling_thousands_of_delivered_notifications_takes_time_linear_in_them() -> None:
    # Four times the deliveries: about four times the time when linear, sixteen when
    # quadratic (8,000 deliveries took 5 s so). A ratio, not seconds: the machine's speed
    # and load move both sizes alike.
    small, large = _settling_seconds(1000), _settling_seconds(4000)
    assert large < 8 * small + 0.05, f"1,000 alerts {small:.3f}s, 4,000 alerts {large:.3f}s"


def test_a_fresh_notification_another_process_recorded_is_left_to_it_then_taken_over(
    tmp_path: Path, webhook_receiver: Receivers
) -> None:
    """``serve`` recorded and posted it; a ``check`` run before ``serve`` cleared it from
    the store does not post it again; one recorded by a process that died is posted once
    the takeover delay (the delivery deadline) passed."""
    receiver = webhook_receiver(failures=0)
    channel = channel_to(receiver)
    store = ObjectStoreAlerts(open_store(str(tmp_path)))

    def process() -> AlertWatch:
        policy = RetryPolicy(attempts=1, initial_delay=0.05, max_delay=0.05, deadline=300.0)
        return AlertWatch(book_over(store, channel), Dispatcher([channel], policy=policy))

    def cycle(watch: AlertWatch, seconds: int) -> None:
        watch.update(stock_at(seconds, "critical"))
        assert watch.dispatcher.drain(30)

    serve, check, later = process(), process(), process()
    try:
        cycle(serve, 0)  # recorded and told; cleared from the store at its next settle
        cycle(check, 10)
        assert told(receiver) == [("opened", STOCK)]
        serve.close()  # cleared
        assert store.owed() == []

        # Recorded by a process that died before telling it, five minutes ago.
        store.change(lambda active: [active[STOCK].owing("reminder", START, [channel.key])])
        cycle(later, 299)  # its recorder may still be posting it
        assert told(receiver) == [("opened", STOCK)]
        cycle(later, 301)
    finally:
        for watch in (serve, check, later):
            watch.close()
    assert told(receiver) == [("opened", STOCK), ("reminder", STOCK)]


def test_a_retry_of_an_event_another_process_superseded_since_is_withdrawn(
    tmp_path: Path, webhook_receiver: Receivers
) -> None:
    receiver = webhook_receiver(failures=10**6, status=503)
    channel = channel_to(receiver)
    store = ObjectStoreAlerts(open_store(str(tmp_path)))
    slow = RetryPolicy(attempts=3, initial_delay=30.0, max_delay=30.0, jitter=False, deadline=300)

    def process() -> AlertWatch:
        return AlertWatch(book_over(store, channel), Dispatcher([channel], policy=slow))

    def cycle(watch: AlertWatch, seconds: int, level: str) -> None:
        watch.update(stock_at(seconds, level))

    first, second = process(), process()
    try:
        cycle(first, 0, "critical")  # "opened" refused once: its retry waits 30s
        posted(receiver, 1)
        cycle(second, 10, "ok")  # another process resolved it: "resolved" owed, its own
        cycle(first, 20, "ok")
        waiting = first.dispatcher.waiting()
    finally:
        first.close()
        second.close()
    assert waiting == 0, "a stale 'opened' still waits to be posted after 'resolved'"
