"""Fixtures of the schema package's tests.

Django settings are process-global, so every test that sets Django up does it in a
subprocess (a ``python -c`` script or the ``etl-schema`` console script): the pytest
process itself never configures Django, and other packages' tests sharing it are
unaffected.

The schema package depends on nothing of the platform's, so the service rule of
``etl_core.testing.services`` is repeated here: an absent PostgreSQL skips the test,
or fails it under ``ETL_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SUBPROCESS_TIMEOUT = 120

RunPython = Callable[..., subprocess.CompletedProcess[str]]
RunCli = Callable[..., subprocess.CompletedProcess[str]]


def platform_migrations() -> list[str]:
    """Every migration the package ships (``etl_ledger.0001_initial``, …), sorted as the
    door names them: derived from the migration files (the package is not imported, so
    Django stays unconfigured here), so a test counting what is pending or missing does
    not break when the next migration is added."""
    spec = importlib.util.find_spec("etl_database_schema")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    root = Path(next(iter(spec.submodule_search_locations)))
    return sorted(
        f"etl_{path.parent.parent.name}.{path.stem}"
        for path in root.glob("*/migrations/[0-9][0-9][0-9][0-9]_*.py")
    )


@pytest.fixture
def migrations() -> list[str]:
    """:func:`platform_migrations`."""
    return platform_migrations()


def service_unavailable(service: str, reason: str) -> NoReturn:
    """Skip the current test, or fail it when ``ETL_REQUIRE_SERVICES=1`` (CI)."""
    message = f"{service} is not available: {reason}"
    if os.environ.get("ETL_REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message} (ETL_REQUIRE_SERVICES=1 makes this a failure)", pytrace=False)
    pytest.skip(message)


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    """The test process's environment without database settings, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "ETL_DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(extra or {})
    return env


@pytest.fixture
def run_python(tmp_path: Path) -> RunPython:
    """Run a Python snippet in a fresh interpreter (cwd: the test's tmp dir)."""

    def run(
        code: str, *, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=cwd or tmp_path,
            env=_env(env),
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )

    return run


def etl_schema_command() -> list[str]:
    """The installed ``etl-schema`` console script (beside this interpreter)."""
    script = shutil.which("etl-schema", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail("the etl-schema console script is not installed beside this interpreter")
    return [script]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run ``etl-schema <args>`` (cwd: the test's tmp dir)."""

    def run(
        *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*etl_schema_command(), *args],
            cwd=cwd or tmp_path,
            env=_env(env),
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )

    return run


def database_url(server_url: str, name: str) -> str:
    """``server_url`` pointing at database ``name`` instead."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """URL of a PostgreSQL database we may create databases from (``ETL_TEST_POSTGRES_URL``)."""
    url = os.environ.get("ETL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as exc:  # any failure to connect means "service absent" here
        service_unavailable("PostgreSQL", f"cannot connect to {urlsplit(url).hostname}: {exc}")
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty, uniquely named PostgreSQL database, dropped after the test."""
    import psycopg
    from psycopg import sql

    name = f"etl_schema_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(postgres_server_url, name)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class RawDatabase:
    """Raw SQL on a test's database, bypassing the platform: a table as another release
    of it (or an operator) left it, read back as stored."""

    def __init__(self, url: str, file: Path | None = None) -> None:
        self.url, self._file = url, file

    def at(self, minutes: int) -> str:
        """A timestamp literal of 2026-12-01 06:MM UTC the database takes."""
        moment = f"2026-12-01 06:{minutes:02d}:00"
        return moment if self._file is not None else f"{moment}+00"

    def run(self, sql: str) -> list[tuple[object, ...]]:
        """Run ``sql`` in its own transaction; the rows it returns, if any."""
        if self._file is not None:
            import sqlite3

            with sqlite3.connect(self._file) as connection:
                rows = connection.execute(sql).fetchall()
            connection.close()
            return rows
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as con:
            cursor = con.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def rows(self, table: str, columns: str) -> list[tuple[object, ...]]:
        """``id``, ``columns`` and, once the table has it, ``store`` of every row of
        ``table`` in ``id`` order."""
        names = {
            name
            for (name,) in self.run(
                f"SELECT name FROM pragma_table_info('{table}')"
                if self._file is not None
                else "SELECT column_name FROM information_schema.columns "
                f"WHERE table_name = '{table}'"
            )
        }
        store = ", store" if "store" in names else ""
        return self.run(f"SELECT id, {columns}{store} FROM {table} ORDER BY id")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def raw_database(request: pytest.FixtureRequest, tmp_path: Path) -> RawDatabase:
    """The test's database, SQLite (``ledger.sqlite3`` in the working directory the
    ``run_python`` / ``run_cli`` scripts use) and PostgreSQL, for raw SQL."""
    if request.param == "sqlite":
        return RawDatabase("sqlite:///ledger.sqlite3", tmp_path / "ledger.sqlite3")
    return RawDatabase(request.getfixturevalue("postgres_url"))
