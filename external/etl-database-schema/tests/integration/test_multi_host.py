"""libpq's multi-host URLs (Patroni, pgBouncer pairs, RDS failover) on a real PostgreSQL:
the first host refuses (a closed port), the connection lands on the second."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable

import pytest

pytestmark = pytest.mark.postgres

RunPython = Callable[..., subprocess.CompletedProcess[str]]
RunCli = Callable[..., subprocess.CompletedProcess[str]]


def _closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _multi_host(url: str, first: str) -> str:
    """``url`` (``postgresql://user@host:port/db``) with ``first`` listed before its host,
    and a password (the server trusts: never checked, never to be shown)."""
    scheme, _, rest = url.partition("://")
    user, _, hostport = rest.partition("/")[0].rpartition("@")
    name = rest.partition("/")[2]
    return f"{scheme}://{user or 'postgres'}:hunter2@{first},{hostport}/{name}"


def test_the_door_and_check_login_land_on_the_second_host_when_the_first_refuses(
    run_python: RunPython, postgres_url: str
) -> None:
    url = _multi_host(postgres_url, f"127.0.0.1:{_closed_port()}")
    result = run_python(
        f"""
        import etl_database_schema as s
        s.connect({url!r}, apply_migrations=True)
        s.check_login({url!r}, require_migrated=True)
        from django.db import connection
        with s.models(s.LEDGER_APP) as ledger:
            with connection.cursor() as cursor:
                cursor.execute("SELECT inet_server_port(), current_database()")
                print(*cursor.fetchone(), ledger["PipelineRun"].objects.count())
        print(s.connected_url())
        """
    )

    assert result.returncode == 0, result.stderr
    port, name, runs, shown = result.stdout.split()
    assert (port, name, runs) == ("5432", postgres_url.rpartition("/")[2], "0")
    assert shown == url.replace(":hunter2@", ":***@")


def test_a_multi_host_url_none_of_whose_hosts_answers_is_unavailable_without_its_password(
    run_python: RunPython, postgres_url: str
) -> None:
    url = _multi_host(postgres_url, f"127.0.0.1:{_closed_port()}").replace(
        "127.0.0.1:5432", f"127.0.0.1:{_closed_port()}"
    )
    result = run_python(
        f"""
        import etl_database_schema as s
        try:
            s.check_login({url!r})
        except s.DatabaseUnavailableError as exc:
            print(type(exc).__name__, exc)
        """
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("DatabaseUnavailableError"), result.stdout
    assert url.replace(":hunter2@", ":***@") in result.stdout
    assert "hunter2" not in result.stdout + result.stderr


def test_etl_schema_migrates_and_checks_through_a_multi_host_url(
    run_cli: RunCli, postgres_url: str
) -> None:
    url = _multi_host(postgres_url, f"127.0.0.1:{_closed_port()}")

    migrated = run_cli("migrate", "--database-url", url)
    checked = run_cli("check", env={"DATABASE_URL": url})
    mistyped = run_cli("check", "--database-url", url.replace(",", ",,"))

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying etl_ledger.0001_initial... OK" in migrated.stdout
    assert url.replace(":hunter2@", ":***@") in migrated.stderr
    assert checked.returncode == 0, checked.stderr
    assert mistyped.returncode != 0
    assert "host 2 of 3 is empty" in mistyped.stderr
    assert "hunter2" not in migrated.stderr + checked.stderr + mistyped.stderr
