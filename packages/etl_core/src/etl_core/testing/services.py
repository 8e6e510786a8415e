"""The test-suite rule for real services: skip when absent, fail under CI.

A test that needs a service (PostgreSQL, Redis, an S3 endpoint) calls
:func:`service_unavailable` when it cannot reach it. Locally that skips the test
with the reason; with ``ETL_REQUIRE_SERVICES=1`` (set by CI) it fails instead, so
CI can never go green by silently skipping the tests that matter.
"""

from __future__ import annotations

import os
import socket
from typing import NoReturn

__all__ = ["port_open", "service_unavailable", "services_required"]


def services_required() -> bool:
    """True when ``ETL_REQUIRE_SERVICES=1``: absent services are failures, not skips."""
    return os.environ.get("ETL_REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes"}


def service_unavailable(service: str, reason: str) -> NoReturn:
    """Skip the current test (or fail it under ``ETL_REQUIRE_SERVICES=1``)."""
    import pytest

    message = f"{service} is not available: {reason}"
    if services_required():
        pytest.fail(f"{message} (ETL_REQUIRE_SERVICES=1 makes this a failure)", pytrace=False)
    pytest.skip(message)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to ``host:port`` succeeds within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
