"""Alert notifications delivered to webhooks on 127.0.0.1: retries, refusals, secrets, the queue."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from etl_core.metrics import Registry, render_prometheus
from etl_core.retry import RetryPolicy
from etl_core.secrets import Secret
from etl_core.testing import capture_logs
from observability.alerts import Alert, Notification, fingerprint
from observability.alerts.delivery import CHANNEL_KINDS, Dispatcher, SlackChannel, WebhookChannel

Receivers = Callable[..., Any]

TOKEN = "T0001/B0002/SeCrEtToKeN42"
FAST = RetryPolicy(attempts=4, initial_delay=0.05, max_delay=0.2, jitter=False)
AT = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def notification(event: str = "opened", dataset: str = "sales") -> Notification:
    alert = Alert(
        fingerprint=fingerprint(dataset, "age", "landing"),
        dataset=dataset,
        monitor="age",
        subject="landing",
        level="critical",
        state="open",
        summary="landing/sales/<b>x</b> & co is 4h old, past critical after 3h",
        opened_at=AT,
        updated_at=AT,
        notified_at=AT,
    )
    return Notification(event, alert, AT)  # type: ignore[arg-type]


def secret_url(url: str) -> Secret:
    """The webhook URL as the settings hold it: a reference to a variable."""
    return Secret("env:ALERT_HOOK", environ={"ALERT_HOOK": f"{url}/hooks/{TOKEN}"})


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def accepting(webhook_receiver: Receivers) -> Any:
    return webhook_receiver(failures=0)


def test_a_webhook_failing_first_gets_the_alert_once_after_a_retry_and_logs_no_secret(
    receiver: Any,
) -> None:
    dispatcher = Dispatcher([WebhookChannel(secret_url(receiver.url))], policy=FAST)
    with capture_logs() as logs:
        dispatcher.submit([notification()])
        assert dispatcher.drain(30)
        dispatcher.close()

    statuses = [status for _, _, status in receiver.received]
    assert statuses == [500, 200]  # refused once, accepted on the retry
    (body,) = receiver.accepted()
    assert isinstance(body, dict)
    assert body["event"] == "opened"
    assert body["alert"]["fingerprint"] == fingerprint("sales", "age", "landing")
    assert receiver.received[0][0] == f"/hooks/{TOKEN}"
    assert dispatcher.outcomes == {("webhook", "retried"): 1, ("webhook", "delivered"): 1}
    said = json.dumps(logs, default=str)
    assert TOKEN not in said
    assert "SeCrEt" not in said
    assert any(
        "env:ALERT_HOOK" in str(r.get("event")) and "HTTP 500" in str(r.get("event")) for r in logs
    )


def test_a_retry_after_beyond_max_delay_waits_max_delay_and_delivers(
    webhook_receiver: Receivers,
) -> None:
    throttling = webhook_receiver(failures=1, status=503, retry_after="86400")
    policy = FAST.with_options(deadline=60.0)  # a day's wait would be past it: given up
    dispatcher = Dispatcher([WebhookChannel(secret_url(throttling.url))], policy=policy)
    dispatcher.submit([notification()])
    delivered = dispatcher.drain(30)
    dispatcher.close()

    assert delivered
    assert [status for _, _, status in throttling.received] == [503, 200]
    assert dispatcher.outcomes == {("webhook", "retried"): 1, ("webhook", "delivered"): 1}


@pytest.mark.parametrize("kind", sorted(CHANNEL_KINDS))
def test_every_channel_kind_posts_json_and_shows_only_its_reference(
    kind: str, accepting: Any
) -> None:
    channel = CHANNEL_KINDS[kind](secret_url(accepting.url))
    assert TOKEN not in channel.name
    assert TOKEN not in repr(channel)
    assert channel.name.startswith(kind)
    assert "webhook env:ALERT_HOOK" in channel.name
    assert "webhook webhook" not in channel.name  # the generic kind is named once
    payload = channel.payload(notification())
    assert json.loads(json.dumps(payload)) == payload
    dispatcher = Dispatcher([channel], policy=FAST)
    dispatcher.submit([notification()])
    assert dispatcher.drain(30)
    dispatcher.close()
    assert accepting.accepted() == [payload]
    assert dispatcher.outcomes == {(kind, "delivered"): 1}


def test_the_slack_payload_has_text_and_blocks_with_escaped_text() -> None:
    payload = SlackChannel(secret_url("http://x")).payload(notification("escalated"))
    assert "Alert escalated: sales age landing (critical)" in payload["text"]
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in payload["text"]
    section, context = payload["blocks"]
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    assert fingerprint("sales", "age", "landing") in context["elements"][0]["text"]


def test_a_refusal_a_retry_cannot_change_is_given_up_at_once_and_counted(
    webhook_receiver: Receivers,
) -> None:
    refusing = webhook_receiver(failures=10, status=404)
    dispatcher = Dispatcher([SlackChannel(secret_url(refusing.url))], policy=FAST)
    with capture_logs() as logs:
        dispatcher.submit([notification()])
        assert dispatcher.drain(30)
        dispatcher.close()
    assert len(refusing.received) == 1
    assert dispatcher.outcomes == {("slack", "failed"): 1}
    (error,) = [r for r in logs if r["level"] == "error"]
    assert "HTTP 404, which a retry would not change" in error["event"]
    assert TOKEN not in json.dumps(logs, default=str)


def test_an_endpoint_that_keeps_failing_is_logged_and_counted_after_the_last_attempt() -> None:
    dispatcher = Dispatcher([WebhookChannel(secret_url(closed_port_url()))], policy=FAST)
    with capture_logs() as logs:
        dispatcher.submit([notification()])
        assert dispatcher.drain(30)
        dispatcher.close()
    assert dispatcher.outcomes == {("webhook", "retried"): 3, ("webhook", "failed"): 1}
    (error,) = [r for r in logs if r["level"] == "error"]
    assert "after 4 attempts" in error["event"]
    assert "env:ALERT_HOOK" in error["event"]
    registry = Registry()
    dispatcher.record_metrics(registry)
    text = render_prometheus(registry)
    assert 'etl_observability_alert_deliveries_total{channel="webhook",outcome="failed"} 1' in text


def test_a_full_queue_drops_and_counts_and_submit_never_waits() -> None:
    slow = RetryPolicy(attempts=3, initial_delay=30.0, max_delay=30.0, jitter=False)
    dispatcher = Dispatcher(
        [WebhookChannel(secret_url(closed_port_url()))], policy=slow, capacity=2
    )
    with capture_logs() as logs:
        dispatcher.submit([notification(dataset=name) for name in ("a", "b", "c", "d")])
        assert dispatcher.outcomes[("webhook", "dropped")] == 2
        dispatcher.close(timeout=10)  # the two waiting ones are given up, not forgotten
    assert dispatcher.outcomes[("webhook", "failed")] == 2
    assert sum("the queue's capacity" in str(r["event"]) for r in logs) == 2
    assert sum("process stopped" in str(r["event"]) for r in logs) == 2


def test_an_unavailable_url_secret_is_a_failure_naming_its_reference() -> None:
    dispatcher = Dispatcher([WebhookChannel(Secret("env:ALERT_HOOK", environ={}))], policy=FAST)
    with capture_logs() as logs:
        dispatcher.submit([notification()])
        assert dispatcher.drain(30)
        dispatcher.close()
    assert dispatcher.outcomes == {("webhook", "failed"): 1}
    assert any("ALERT_HOOK is not set" in str(r["event"]) for r in logs)


@pytest.mark.parametrize(
    "garbage",
    [
        "hooks.example.com/T0001",
        "ftp://hooks.example.com/T0001",
        "http:/hooks.example.com",
        "https:///T0",
        "https://hooks.example.com:8443x/T0001",  # a port that is no number
        "https://hooks.example.com/T0001\n",  # a variable set from a file, newline kept
    ],
)
def test_a_url_secret_that_is_no_web_address_is_given_up_at_once_naming_its_reference(
    garbage: str,
) -> None:
    """A typo in the webhook URL (no scheme, another scheme, no host) is no network blip:
    it is said at once, naming the reference and what was expected, not retried for the
    whole deadline with httpx's words, and stays owed (not settled) until it is fixed."""
    slow = RetryPolicy(attempts=6, initial_delay=30.0, max_delay=30.0, jitter=False)
    secret = Secret("env:ALERT_HOOK", environ={"ALERT_HOOK": garbage})
    dispatcher = Dispatcher([WebhookChannel(secret)], policy=slow)
    with capture_logs() as logs:
        dispatcher.submit([notification()])
        assert dispatcher.drain(10)  # no 30 s wait for a retry
        dispatcher.close()
    assert dispatcher.outcomes == {("webhook", "failed"): 1}
    assert dispatcher.settled() == []  # still owed: told once the URL is fixed
    (error,) = [r for r in logs if r["level"] == "error"]
    assert "env:ALERT_HOOK" in error["event"]
    assert "expected an http:// or https:// URL with a host" in error["event"]
    assert garbage not in json.dumps(logs, default=str)  # it may carry the credential


def test_a_url_the_http_client_cannot_parse_leaves_the_other_channels_delivered(
    accepting: Any,
) -> None:
    """One thread posts for every channel: a URL the client refuses to parse (a newline a
    variable kept, a port that is no number) is given up, never raised out of that thread,
    so the other channels' alerts, and the ones after, are still delivered."""
    bad = Secret("env:BAD_HOOK", environ={"BAD_HOOK": "https://hooks.example.com/T0001\n"})
    channels = [WebhookChannel(bad), WebhookChannel(secret_url(accepting.url))]
    dispatcher = Dispatcher(channels, policy=FAST)
    dispatcher.submit([notification()])
    assert dispatcher.drain(10)
    dispatcher.submit([notification("escalated")])
    assert dispatcher.drain(10)
    dispatcher.close()
    assert [body["event"] for body in accepting.accepted()] == ["opened", "escalated"]
    assert dispatcher.outcomes[("webhook", "failed")] == 2


def test_a_notification_submitted_again_while_it_is_retried_is_not_queued_twice() -> None:
    slow = RetryPolicy(attempts=3, initial_delay=30.0, max_delay=30.0, jitter=False)
    channel = WebhookChannel(secret_url(closed_port_url()))
    dispatcher = Dispatcher([channel], policy=slow)
    owing = notification().alert.owing("opened", AT, [channel.key])
    later = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    try:
        dispatcher.submit_owed([owing], since=later)  # a serve cycle after the outage began
        dispatcher.submit_owed([owing], since=later)  # the next cycle, while it is retried
        assert dispatcher.waiting() == 1
        assert dispatcher.outcomes[("webhook", "resent")] == 1
    finally:
        dispatcher.close(timeout=10)


def test_a_newer_notification_replaces_an_older_one_still_waiting_for_its_retry(
    webhook_receiver: Receivers,
) -> None:
    refusing_once = webhook_receiver(failures=1, status=503)
    policy = RetryPolicy(attempts=4, initial_delay=0.5, max_delay=0.5, jitter=False)
    channel = WebhookChannel(secret_url(refusing_once.url))
    dispatcher = Dispatcher([channel], policy=policy)
    opened = notification("opened")
    ended = opened.alert.changed(state="resolved", resolved_at=AT)
    dispatcher.submit([opened])
    refusing_once.wait_for(1)  # refused: "opened" waits for its retry
    dispatcher.submit([Notification("resolved", ended, AT)])
    assert dispatcher.drain(30)
    dispatcher.close()

    assert [(b["event"], s) for _, b, s in refusing_once.received] == [  # type: ignore[index]
        ("opened", 503),
        ("resolved", 200),
    ]
    assert [(key, n.event) for key, n in dispatcher.settled()] == [(channel.key, "resolved")]
