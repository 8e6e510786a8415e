"""pytest fixtures shared by every package's tests.

Import them into a ``conftest.py`` to use them::

    from etl_core.testing.fixtures import s3_bucket, s3_endpoint  # noqa: F401

``s3_endpoint`` starts moto's S3 server on 127.0.0.1 once per session (skipped,
or failed under ``ETL_REQUIRE_SERVICES=1``, when moto is missing);
``s3_bucket`` creates one bucket on it; tests isolate themselves by prefix.
``postgres_url`` gives each test a fresh, uniquely named PostgreSQL database
(from ``ETL_TEST_POSTGRES_URL``, default the local server) and drops it after;
``refused_login_urls`` gives URLs on that server whose login it refuses (no such
database, no such role), each with a password a test checks never shows.
``session_cache`` and ``per_test_cache`` (autouse where imported; the repository's root
``conftest.py`` does) give the session, then each test, its own ``XDG_CACHE_HOME``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from etl_core.errors import MissingDependencyError
from etl_core.redaction import forget_secrets
from etl_core.testing.s3 import create_bucket, s3_server
from etl_core.testing.services import service_unavailable

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "REFUSED_LOGIN_PASSWORD",
    "forgotten_secrets",
    "per_test_cache",
    "postgres_server_url",
    "postgres_url",
    "refused_login_urls",
    "refused_login_urls_on",
    "s3_bucket",
    "s3_endpoint",
    "session_cache",
]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_CACHE_SETTINGS = ("ETL_CACHE_DIR", "ETL_CONTRACT_MEMO")


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's ``XDG_CACHE_HOME`` (what session fixtures' processes see): no test
    run reads or leaves a remembered contract check in the home directory."""
    cache = tmp_path_factory.mktemp("session-cache")
    with pytest.MonkeyPatch.context() as patch:
        _point_cache(patch, cache)
        yield cache


@pytest.fixture(autouse=True)
def forgotten_secrets() -> Iterator[None]:
    """This test starts with no remembered secret (:mod:`etl_core.redaction`): a value an
    earlier test revealed would otherwise be masked in this test's log lines."""
    forget_secrets()
    yield
    forget_secrets()


@pytest.fixture(autouse=True)
def per_test_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """This test's own ``XDG_CACHE_HOME``, for it and the commands it runs: an earlier
    test's remembered pass cannot skip a validator this test expects to run."""
    cache = tmp_path_factory.mktemp("cache")
    _point_cache(monkeypatch, cache)
    return cache


def _point_cache(patch: pytest.MonkeyPatch, cache: Path) -> None:
    patch.setenv("XDG_CACHE_HOME", str(cache))
    for name in _CACHE_SETTINGS:  # a developer's own settings would bypass it
        patch.delenv(name, raising=False)


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


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """A PostgreSQL URL allowed to create databases (``ETL_TEST_POSTGRES_URL``)."""
    url = os.environ.get("ETL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:  # any failure to connect means the service is absent here
        service_unavailable("PostgreSQL", f"cannot connect to {urlsplit(url).hostname}: {exc}")
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty, uniquely named PostgreSQL database, dropped after the test."""
    import psycopg
    from psycopg import sql

    name = f"etl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(postgres_server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


REFUSED_LOGIN_PASSWORD = "hunter2-not-shown"
"""The password in the :func:`refused_login_urls` URLs (the ``database`` one keeps the
server's own password when it has one): no message may show either."""


@pytest.fixture
def refused_login_urls(postgres_server_url: str) -> dict[str, str]:
    """URLs on the test server whose login it refuses, by what is wrong: ``database``
    (no such database) and ``role`` (no such role); see :func:`refused_login_urls_on`.
    A test checks that the password of each (``urlsplit(url).password``) never shows."""
    return refused_login_urls_on(postgres_server_url)


def refused_login_urls_on(server_url: str) -> dict[str, str]:
    """URLs on the server of ``server_url`` whose login it refuses: ``database`` logs in
    as ``server_url`` does (its password, else :data:`REFUSED_LOGIN_PASSWORD`: a server
    asking for a password checks it before the database) to a database it does not have;
    ``role`` is a role it does not have, with :data:`REFUSED_LOGIN_PASSWORD`. A wrong
    password cannot be tested on a server trusting every local login."""
    server = urlsplit(server_url)
    at = server.netloc.rpartition("@")[2] or "127.0.0.1:5432"
    user = server.username or "postgres"
    password = server.password or REFUSED_LOGIN_PASSWORD

    def login(role: str, secret: str, database: str) -> str:
        return urlunsplit(server._replace(netloc=f"{role}:{secret}@{at}", path=f"/{database}"))

    return {
        "database": login(user, password, "etl_no_such_database"),
        "role": login(
            "etl_no_such_role", REFUSED_LOGIN_PASSWORD, server.path.lstrip("/") or "postgres"
        ),
    }
