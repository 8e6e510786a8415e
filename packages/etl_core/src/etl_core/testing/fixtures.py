"""pytest fixtures shared by every package's tests.

Import them into a ``conftest.py`` to use them::

    from etl_core.testing.fixtures import s3_bucket, s3_endpoint  # noqa: F401

``s3_endpoint`` starts moto's S3 server on 127.0.0.1 once per session (skipped,
or failed under ``ETL_REQUIRE_SERVICES=1``, when moto is missing);
``s3_bucket`` creates one bucket on it; tests isolate themselves by prefix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from etl_core.errors import MissingDependencyError
from etl_core.testing.s3 import create_bucket, s3_server
from etl_core.testing.services import service_unavailable

__all__ = ["s3_bucket", "s3_endpoint"]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on 127.0.0.1, shared by the whole session."""
    with contextlib.ExitStack() as stack:
        try:
            endpoint = stack.enter_context(s3_server())
        except (MissingDependencyError, RuntimeError, OSError) as exc:
            service_unavailable("S3 (moto server)", str(exc))
        yield endpoint


@pytest.fixture(scope="session")
def s3_bucket(s3_endpoint: str) -> str:
    """A bucket on the session's S3 server."""
    return create_bucket(s3_endpoint)
