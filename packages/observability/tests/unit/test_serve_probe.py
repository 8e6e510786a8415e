"""The address ``serve-ping`` asks, from the settings ``serve`` listens by."""

from __future__ import annotations

import pickle

import pytest

from etl_core.runtime import load_runtime_settings
from observability.errors import ObservabilityError, ServeProbeError
from observability.serve_probe import probe_address
from observability.settings import ObservabilitySettings


@pytest.mark.parametrize(
    ("host", "asked"),
    [
        ("0.0.0.0", "127.0.0.1"),  # every IPv4 interface: loopback answers
        ("::", "::1"),  # every IPv6 interface
        ("127.0.0.1", "127.0.0.1"),
        ("10.1.2.3", "10.1.2.3"),
        ("localhost", "localhost"),
    ],
)
def test_a_wildcard_host_is_asked_on_loopback_any_other_as_it_is(host: str, asked: str) -> None:
    settings, _ = load_runtime_settings(
        ObservabilitySettings, {}, env={"ETL_SERVE_HOST": host, "ETL_SERVE_PORT": "9200"}
    )
    assert probe_address(settings) == (asked, 9200)


def test_port_zero_is_refused_saying_there_is_no_port_to_ask() -> None:
    settings, _ = load_runtime_settings(ObservabilitySettings, {}, env={"ETL_SERVE_PORT": "0"})
    with pytest.raises(ServeProbeError, match="serve_port is 0") as raised:
        probe_address(settings)
    assert isinstance(raised.value, ObservabilityError)
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)
