"""A setting set by a command-line flag is said to come from the flag typed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from etl_core.config import load_settings_with_sources
from etl_core.errors import ConfigError
from etl_core.setting_checks import is_host


@dataclass(frozen=True)
class _Settings:
    port: int = 1


def test_a_refused_override_names_the_source_given_for_it() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings_with_sources(
            _Settings, env={}, overrides={"port": "x"}, override_sources={"port": "flag --port"}
        )

    assert "(from flag --port)" in str(refused.value)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "0.0.0.0",
        "::1",
        "localhost",
        "svc-1.ns.local",
        "my_service",  # a docker-compose service
        "fe80::1%eth0",  # a link-local address with its zone
        "etl.example.com.",  # a fully qualified name
    ],
)
def test_an_address_or_host_name_is_a_host(host: str) -> None:
    assert is_host(host)


@pytest.mark.parametrize("host", ["bücher.example", "münchen.de.", "δοκιμή"])
def test_an_internationalised_host_name_is_a_host(host: str) -> None:
    """The resolver is handed its IDNA form (``xn--bcher-kva.example``), as Python's
    sockets do: a server can listen on it, so it is not refused."""
    assert is_host(host)


@pytest.mark.parametrize(
    "host", ["", " ", "bad host", "host:80", "[::1]", "-x", "a..b", ".", "ü" * 64, "bü host"]
)
def test_a_value_with_spaces_or_punctuation_is_no_host(host: str) -> None:
    assert not is_host(host)
