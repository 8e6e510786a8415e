"""S3 event notifications as S3 and SNS write them: keys decoded, test events ignored."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from etl_core.events import CreatedObject, NotificationError, parse_notification


def record(key: str, *, event: str = "ObjectCreated:Put", bucket: str = "lake") -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": event,
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 12, "eTag": "0cc175b9c0f1b6a831c399e269772661"},
        },
    }


def test_keys_are_url_decoded_with_plus_as_a_space() -> None:
    body = json.dumps({"Records": [record("landing/vendor/orders+1%2B2%2Fx+%C3%A9.csv")]})
    (created,) = parse_notification(body).created
    assert created == CreatedObject(
        "lake", "landing/vendor/orders 1+2/x é.csv", "ObjectCreated:Put", 12,
        "0cc175b9c0f1b6a831c399e269772661",
    )  # fmt: skip


def test_the_test_event_of_a_new_configuration_names_no_object() -> None:
    body = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-04T16:48:49Z",
            "Bucket": "lake", "RequestId": "R", "HostId": "H"}  # fmt: skip
    notification = parse_notification(json.dumps(body))
    assert (notification.created, notification.ignored) == ((), ("s3:TestEvent",))


def test_events_other_than_creations_are_ignored() -> None:
    body = json.dumps({"Records": [record("a", event="ObjectRemoved:Delete"), record("b")]})
    notification = parse_notification(body)
    assert [c.key for c in notification.created] == ["b"]
    assert notification.ignored == ("ObjectRemoved:Delete",)


def test_a_notification_wrapped_by_sns_is_unwrapped() -> None:
    inner = json.dumps({"Records": [record("landing/v/x+y.csv")]})
    envelope = {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:t", "Message": inner}
    (created,) = parse_notification(json.dumps(envelope).encode()).created
    assert created.key == "landing/v/x y.csv"


def test_a_broken_record_is_a_problem_naming_its_field_and_the_good_ones_stay() -> None:
    broken = record("x")
    del broken["s3"]["object"]["key"]
    negative = record("y")
    negative["s3"]["object"]["size"] = -1
    notification = parse_notification(json.dumps({"Records": [record("good"), broken, negative]}))
    assert [c.key for c in notification.created] == ["good"]
    assert [p.field for p in notification.problems] == [
        "Records[1].s3.object.key",
        "Records[2].s3.object.size",
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        (b"\xff\xfe", "body"),
        ("[1, 2]", "body"),
        ('{"Records": []}', "Records"),
        ('{"hello": "world"}', "Records"),
        ('{"Type": "Notification", "Message": 3}', "Message"),
        ('{"Type": "Notification", "Message": "{oops"}', "Message"),
    ],
)
def test_a_message_that_is_no_notification_is_refused_naming_the_field(
    body: str | bytes, field: str
) -> None:
    with pytest.raises(NotificationError) as caught:
        parse_notification(body)
    assert caught.value.field == field
    assert field in str(caught.value)
    again = pickle.loads(pickle.dumps(caught.value))
    assert (again.field, str(again)) == (field, str(caught.value))
