"""The address ``serve`` announces: one a browser can open."""

from __future__ import annotations

from observability.http_server import served_url


def test_an_ipv6_host_is_announced_in_brackets() -> None:
    """``serve --host ::`` announced ``http://:::9108``, which no browser opens."""
    assert served_url("::", 9108) == "http://[::]:9108"
    assert served_url("::1", 8080) == "http://[::1]:8080"
    assert served_url("127.0.0.1", 9108) == "http://127.0.0.1:9108"
