"""StatsD client refusals (no datagram is sent on any of these paths)."""

from __future__ import annotations

import math

import pytest

from etl_core.metrics import MetricError, StatsdClient


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"port": 0}, "port must be 1-65535"),
        ({"port": 70000}, "port must be 1-65535"),
        ({"max_packet_bytes": 10}, "max_packet_bytes must be an int >= 64"),
        ({"tag_format": "influx"}, "tag_format must be 'dogstatsd' or 'none'"),
        ({"tags": {"env": "dev"}, "tag_format": "none"}, "constant tags need"),
        ({"tags": {"env": "a,b"}}, "tag 'env' value 'a,b'"),
    ],
)
def test_bad_client_settings_are_refused(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(MetricError, match=fragment):
        StatsdClient(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda c: c.incr("etl fp"), "name 'etl fp' is invalid"),
        (lambda c: c.incr("etl:fp"), "name 'etl:fp' is invalid"),
        (lambda c: c.gauge("etl_g", math.nan), "must be finite"),
        (lambda c: c.timing("etl_t", "5"), "must be a number, got str"),
        (lambda c: c.incr("etl_c", tags={"env": "a|b"}), "tag 'env' value 'a|b'"),
        (lambda c: c.incr("etl_c", tags={"1env": "x"}), "tag key '1env' is invalid"),
    ],
)
def test_bad_lines_are_refused_before_sending(call: object, fragment: str) -> None:
    with StatsdClient(port=9) as client, pytest.raises(MetricError, match=fragment):
        call(client)  # type: ignore[operator]


def test_tags_on_a_plain_statsd_client_are_refused() -> None:
    with (
        StatsdClient(port=9, tag_format="none") as client,
        pytest.raises(MetricError, match="tags given but the client uses tag_format='none'"),
    ):
        client.incr("etl_c", tags={"env": "dev"})
