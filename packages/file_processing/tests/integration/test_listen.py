"""``listen`` against moto's S3 and SQS servers: the notifications S3 itself sends for new objects.

The bucket's notification configuration makes moto send real ``ObjectCreated``
messages (URL-encoded keys, ``+`` for a space) and an ``s3:TestEvent`` to the queue;
``listen`` processes or enqueues every landing object once, deletes each message only
after that, and moves what it cannot use to the dead-letter queue.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from etl_core.artifacts import read_deliveries
from etl_core.storage import open_store
from etl_core.testing.brokers import TestBroker
from etl_core.testing.processes import BackgroundProcess
from etl_core.testing.s3 import TEST_REGION, create_bucket
from etl_core.testing.statsd import agent_address, drained, statsd_agent

BIN = Path(sys.executable).parent / "etl-file-processing"
Orders = Callable[..., bytes]

pytestmark = [pytest.mark.s3, pytest.mark.slow]


@dataclass
class Events:
    """A bucket whose ObjectCreated events go to ``queue``, and a dead-letter queue."""

    endpoint: str
    bucket: str
    queue: str
    dead: str
    sqs: Any
    s3: Any

    def messages(self, queue: str) -> list[dict[str, Any]]:
        taken: list[dict[str, Any]] = []
        for _ in range(10):  # bounded: at most 100 messages
            answer = self.sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                MessageAttributeNames=["All"], VisibilityTimeout=60,
            )  # fmt: skip
            if not answer.get("Messages"):
                break
            taken += answer["Messages"]
            for message in answer["Messages"]:  # taken off the queue
                self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return taken

    def peek(self) -> list[str]:
        """The bodies waiting in the work queue, left there (visible again at once)."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0
        )
        return [m["Body"] for m in answer.get("Messages", [])]

    def waiting(self, queue: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)
        return sum(int(attributes["Attributes"][name]) for name in names)

    def send(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue, MessageBody=body)


@pytest.fixture
def events(s3_endpoint: str, tmp_path: Path) -> Iterator[Events]:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name=TEST_REGION)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=TEST_REGION)
    bucket = create_bucket(s3_endpoint)
    name = bucket.removeprefix("etl-test-")
    queue = sqs.create_queue(QueueName=f"drops-{name}")["QueueUrl"]
    dead = sqs.create_queue(QueueName=f"drops-{name}-dead")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn["QueueArn"], "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    try:
        yield Events(s3_endpoint, bucket, queue, dead, sqs, s3)
    finally:
        for url in (queue, dead):
            sqs.delete_queue(QueueUrl=url)
        sqs.close()
        s3.close()


@pytest.fixture
def s3_lane(events: Events, tmp_path: Path) -> Iterator[Any]:
    from .conftest import _lane

    with open_store(f"s3://{events.bucket}/lake", endpoint_url=events.endpoint) as store:
        yield _lane(store, tmp_path)


def listen(lane: Any, events: Events, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    (lane.tmp / "scratch").mkdir(exist_ok=True)
    environment = {
        **os.environ,
        "ETL_STORAGE_URL": f"s3://{events.bucket}/lake",
        "ETL_S3_ENDPOINT_URL": events.endpoint,
        "ETL_SQS_ENDPOINT_URL": events.endpoint,
        "ETL_CONFIG_DIR": str(lane.config_dir),
        "ETL_WORK_DIR": str(lane.tmp / "scratch"),
        "ETL_LOG_FORMAT": "json",
        **env,
    }
    command = [str(BIN), "listen", "--queue", events.queue, "--wait-seconds", "1", "--json"]
    return subprocess.run(
        [*command, "--idle-exit", "3", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_objects_s3_announces_are_validated_once_and_their_messages_deleted(
    s3_lane: Any, events: Events, orders: Orders
) -> None:
    spaced = s3_lane.deliver("orders_20261102.csv resent+1", orders(12))
    plain = s3_lane.deliver("orders_20261101.csv", orders(11))
    s3_lane.store.write_bytes("notes/readme.txt", b"not in landing/")
    events.s3.put_object(Bucket=events.bucket, Key="other/orders_20261101.csv", Body=b"x")
    (first,) = [body for body in events.peek() if "resent" in body]
    assert "orders_20261102.csv+resent%2B1" in first  # as S3 encodes a key
    events.send(first)  # a duplicate delivery of one notification, in the same batch
    done = listen(s3_lane, events)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["test_events"] == 1
    # the platform's own writes (validated/, _state/) are announced too, and ignored
    objects = summary["objects"]
    assert (objects["validated"], objects["failed"], objects.get("skipped")) == (2, 0, None)
    assert objects["ignored"] >= 2  # other/ and notes/ at least
    assert summary["messages"]["deleted"] == summary["messages"]["received"]
    assert (summary["messages"]["kept"], summary["messages"]["dead_lettered"]) == (0, 0)
    assert events.waiting(events.queue) == 0
    events.send(first)  # delivered once more, later: harmless
    again = listen(s3_lane, events)
    assert again.returncode == 0, again.stderr[-3000:]
    repeated = json.loads(again.stdout)["objects"]
    assert (repeated.get("validated"), repeated["skipped"]) == (None, 1)
    for key, day in ((spaced, date(2026, 11, 2)), (plain, date(2026, 11, 1))):
        (manifest,) = read_deliveries(s3_lane.store, "orders", day)
        assert manifest.delivery.key == key
    assert events.waiting(events.queue) == 0


def test_unusable_messages_go_to_the_dead_letter_queue_after_their_good_records_ran(
    s3_lane: Any, events: Events, orders: Orders
) -> None:
    key = s3_lane.deliver("orders_20261103.csv", orders(5))
    good = json.loads(
        next(m for m in events.messages(events.queue) if "Records" in m["Body"])["Body"]
    )  # S3's own messages taken away: the good record comes back only in the one sent below
    broken = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": events.bucket}, "object": {}},
    }
    events.send(json.dumps({"Records": [*good["Records"], broken]}))
    events.send("this is not JSON")
    events.send(json.dumps({"hello": "world"}))
    done = listen(s3_lane, events, "--dead-letter-queue", events.dead)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    messages = summary["messages"]  # with those announcing the platform's own writes
    assert (messages["kept"], messages["dead_lettered"]) == (0, 3)
    assert messages["deleted"] == messages["received"]
    assert summary["objects"]["validated"] == 1
    assert len(read_deliveries(s3_lane.store, "orders", date(2026, 11, 3))) == 1
    dead = {m["Body"]: m["MessageAttributes"]["etl_dead_reason"]["StringValue"]
            for m in events.messages(events.dead)}  # fmt: skip
    assert len(dead) == 3  # each unchanged, with the reason
    assert "'Records[1].s3.object.key'" in dead[json.dumps({"Records": [*good["Records"], broken]})]
    assert "'body'" in dead["this is not JSON"]
    assert "'Records'" in dead[json.dumps({"hello": "world"})]
    assert events.waiting(events.queue) == 0
    assert s3_lane.store.exists(key)  # the landing original is never touched


def test_with_celery_each_object_is_enqueued_as_the_unit_scan_makes(
    s3_lane: Any, events: Events, orders: Orders, celery_broker: TestBroker
) -> None:
    s3_lane.deliver("orders_20261104.csv copy", orders(5))
    s3_lane.deliver("orders_20261105.csv", orders(5))
    done = listen(s3_lane, events, "--executor", "celery", **celery_broker.env())
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["objects"] == {"enqueued": 2, "ignored": 0, "failed": 0}
    assert events.waiting(events.queue) == 0
    queue = celery_broker.settings().queue_prefix + "file_processing"
    units = sorted(body[0][0]["key"] for _, body in celery_broker.messages(queue))
    assert units == [
        "landing/vendor/orders_20261104.csv copy",
        "landing/vendor/orders_20261105.csv",
    ]


def test_a_notification_whose_object_cannot_be_enqueued_is_kept_then_dead_lettered(
    s3_lane: Any, events: Events, orders: Orders
) -> None:
    s3_lane.deliver("orders_20261106.csv", orders(5))
    broker_down = {
        "ETL_BROKER_URL": "redis://127.0.0.1:9/0",  # nothing listens there
        "ETL_LISTEN_VISIBILITY_TIMEOUT": "0s",  # kept: visible again at once
        "ETL_LISTEN_MAX_RECEIVES": "2",
    }
    done = listen(
        s3_lane, events, "--executor", "celery", "--dead-letter-queue", events.dead, **broker_down
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["messages"]["kept"] == 1
    assert summary["messages"]["dead_lettered"] == 1
    (dead,) = events.messages(events.dead)
    reason = dead["MessageAttributes"]["etl_dead_reason"]["StringValue"]
    assert reason.startswith("not done after 2 receive(s): landing/vendor/orders_20261106.csv")
    assert "orders_20261106.csv" in dead["Body"]
    assert events.waiting(events.queue) == 0


def test_a_broker_refusing_the_login_stops_the_listener_before_any_message_is_taken(
    s3_lane: Any, events: Events, orders: Orders
) -> None:
    s3_lane.deliver("orders_20261107.csv", orders(5))
    refused = {
        "ETL_BROKER_URL": "amqp://guest:wrong-Secret@127.0.0.1:5672//",
        "ETL_LISTEN_VISIBILITY_TIMEOUT": "0s",
        "ETL_LISTEN_MAX_RECEIVES": "1",  # a message taken would be dead-lettered at once
    }
    done = listen(
        s3_lane, events, "--executor", "celery", "--dead-letter-queue", events.dead, **refused
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "refused the login" in done.stderr
    assert "wrong-Secret" not in done.stderr
    assert events.messages(events.dead) == []
    assert any("orders_20261107.csv" in body for body in events.peek())  # left for a listener


def test_listen_on_a_local_store_is_refused_once_naming_the_storage_setting(
    local_lane: Any, tmp_path: Path
) -> None:
    """It read "error    error: listen needs …" (a prefix in the message too), naming no
    setting, unlike the other commands' refusals."""
    env = {**os.environ, "ETL_STORAGE_URL": local_lane.store.url, "ETL_LOG_FORMAT": "json",
           "ETL_CONFIG_DIR": str(local_lane.config_dir)}  # fmt: skip
    done = subprocess.run(
        [str(BIN), "listen", "--queue", "http://127.0.0.1:9/123/q", "--idle-exit", "1"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    (refusal,) = [json.loads(line) for line in done.stderr.splitlines() if "listen needs" in line]
    assert refusal["event"].startswith("listen needs an s3:// store")
    assert f"storage_url: is {local_lane.store.url}" in refusal["event"]
    assert "(from env ETL_STORAGE_URL)" in refusal["event"]


def test_a_queue_that_does_not_exist_is_a_configuration_error(s3_lane: Any, events: Events) -> None:
    missing = events.queue.rsplit("/", 1)[0] + "/no-such-queue"
    done = listen(s3_lane, Events(**{**vars(events), "queue": missing}))
    assert done.returncode == 2, done.stderr[-3000:]
    assert "SQS receive failed" in done.stderr
    assert "no-such-queue" in done.stderr


def test_without_a_dead_letter_queue_an_unusable_message_is_logged_whole_then_deleted(
    s3_lane: Any, events: Events
) -> None:
    events.messages(events.queue)  # the bucket's test event taken away
    events.send('{"Records": "not a list"}')
    done = listen(s3_lane, events)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["messages"]["dead_lettered"] == 1
    dropped = [json.loads(line) for line in done.stderr.splitlines() if "dropped" in line]
    assert len(dropped) == 1
    assert "'Records'" in dropped[0]["event"]
    assert '{"Records": "not a list"}' in dropped[0]["event"]  # the body, for whoever fixes it
    assert events.waiting(events.queue) == 0


def test_sigterm_stops_a_listener_waiting_on_the_queue_at_once(
    s3_lane: Any, events: Events
) -> None:
    env = {
        **os.environ,
        "ETL_STORAGE_URL": f"s3://{events.bucket}/lake",
        "ETL_S3_ENDPOINT_URL": events.endpoint,
        "ETL_SQS_ENDPOINT_URL": events.endpoint,
        "ETL_CONFIG_DIR": str(s3_lane.config_dir),
        "ETL_LOG_FORMAT": "json",
    }
    command = [str(BIN), "listen", "--queue", events.queue, "--wait-seconds", "20"]
    with BackgroundProcess(command, env=env, log=s3_lane.tmp / "listen.log") as listening:
        deadline = time.monotonic() + 60
        while events.waiting(events.queue) and time.monotonic() < deadline:
            time.sleep(0.2)  # the bucket's test event taken: it is polling now
        started = time.monotonic()
        listening.signal(signal.SIGTERM)  # as `docker stop` does
        assert listening.wait(timeout=30) == 143, listening.log()[-3000:]
        assert time.monotonic() - started < 15  # not after the long poll's 20 s


OBJECTS = "etl_file_processing_objects_total:"


def test_a_listener_exports_its_metrics_as_it_works_and_never_counts_them_twice(
    s3_lane: Any, events: Events, orders: Orders
) -> None:
    with statsd_agent(timeout=60) as agent:
        env = {
            **os.environ,
            "ETL_STORAGE_URL": f"s3://{events.bucket}/lake",
            "ETL_S3_ENDPOINT_URL": events.endpoint,
            "ETL_SQS_ENDPOINT_URL": events.endpoint,
            "ETL_CONFIG_DIR": str(s3_lane.config_dir),
            "ETL_WORK_DIR": str(s3_lane.tmp),
            "ETL_LOG_FORMAT": "json",
            "ETL_METRICS_EXPORTERS": "statsd",
            "ETL_STATSD_ADDRESS": agent_address(agent),
        }
        s3_lane.deliver("orders_20261101.csv", orders(5))
        command = [str(BIN), "listen", "--queue", events.queue, "--wait-seconds", "1"]
        with BackgroundProcess(command, env=env, log=s3_lane.tmp / "listen.log") as listening:
            counted: list[str] = []
            for _ in range(500):  # until the validated object is counted, the listener running
                lines = agent.recv(65535).decode().splitlines()
                counted += [line for line in lines if line.startswith(OBJECTS)]
                if counted:
                    break
            still_listening = listening.process.poll() is None
            listening.signal(signal.SIGTERM)
            assert listening.wait(timeout=30) == 143, listening.log()[-3000:]
        exited = drained(agent)  # what it sent at exit, if anything
        counted += [line for line in exited if line.startswith(OBJECTS)]

    assert still_listening
    assert counted == [
        "etl_file_processing_objects_total:1|c|#dataset:orders,outcome:validated,reason"
    ]
