"""A login the server refused (no such database or role, a wrong password) is told apart
from an outage: the first is the URL's fault, the second may pass on a retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_database_schema.refused_login import login_error, url_error

URL = "postgresql://etl:hunter2@db.example:5432/etl"
HEAD = 'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '


class DriverError(Exception):
    """A driver's error as psycopg raises it: ``sqlstate`` is ``None`` at connection."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("message", "reason", "named"),
    [
        ('database "sales" does not exist', "invalid_catalog_name", 'database "sales"'),
        ('role "etl_ro" does not exist', "invalid_authorization_specification", 'role "etl_ro"'),
        (
            'password authentication failed for user "etl"',
            "invalid_password",
            'password of role "etl"',
        ),
        (
            'no pg_hba.conf entry for host "10.0.0.9", user "etl", database "etl", no encryption',
            "invalid_authorization_specification",
            'role "etl" connect to database "etl"',
        ),
        (
            'pg_hba.conf rejects connection for host "10.0.0.9", user "etl", database "etl", '
            "no encryption",
            "invalid_authorization_specification",
            'role "etl" connect to database "etl"',
        ),
    ],
    ids=["no-database", "no-role", "wrong-password", "not-allowed", "rejected"],
)
def test_the_servers_refusal_of_the_login_names_what_to_correct_in_the_url(
    message: str, reason: str, named: str
) -> None:
    error = login_error(DriverError(HEAD + message), URL)

    assert error is not None
    assert error.reason == reason
    assert named in str(error)
    assert "in the URL" in str(error)
    assert error.url == "postgresql://etl:***@db.example:5432/etl"
    assert "hunter2" not in str(error)


def test_a_refusal_is_found_behind_the_error_wrapping_it() -> None:
    wrapper = RuntimeError("wrapped")
    wrapper.__cause__ = DriverError(HEAD + 'role "etl_ro" does not exist')

    error = login_error(wrapper, URL)

    assert error is not None
    assert error.reason == "invalid_authorization_specification"


def test_a_wrong_password_is_known_by_its_sqlstate_whatever_the_servers_language() -> None:
    error = login_error(
        DriverError("FATAL:  Passwort-Authentifizierung fehlgeschlagen", "28P01"), URL
    )

    assert error is not None
    assert error.reason == "invalid_password"
    assert "correct the password in the URL" in str(error)


@pytest.mark.parametrize(
    "message",
    [
        'connection to server at "10.0.0.5", port 5432 failed: Connection refused',
        'connection to server at "10.0.0.5", port 5432 failed: timeout expired',
        "FATAL:  the database system is starting up",
        "FATAL:  sorry, too many clients already",
    ],
)
def test_a_server_down_or_busy_is_not_a_refused_login(message: str) -> None:
    assert login_error(DriverError(message), URL) is None


class WrappingError(Exception):
    """Django's error around the driver's: the same message, no ``sqlstate`` of its own."""


@pytest.mark.parametrize(
    ("message", "sqlstate"),
    [
        ('role "etl_ro" does not exist', "42704"),  # GRANT … TO a missing role
        ('role "etl_ro" does not exist', "22023"),  # SET ROLE to a missing role
        ('could not connect: password authentication failed for user "remote"', "08001"),
    ],
    ids=["grant", "set-role", "foreign-server"],
)
def test_an_error_of_a_session_the_driver_gives_another_sqlstate_is_not_a_refused_login(
    message: str, sqlstate: str
) -> None:
    driver = DriverError(message, sqlstate)
    wrapper = WrappingError(message)
    wrapper.__cause__ = driver

    assert login_error(driver, URL) is None
    assert login_error(wrapper, URL) is None


@pytest.mark.parametrize(
    ("message", "reason", "named"),
    [
        (
            'role "etl_ro" is not permitted to log in',
            "invalid_authorization_specification",
            'role "etl_ro" may not log in',
        ),
        (
            'permission denied for database "sales" DETAIL: User does not have CONNECT privilege.',
            "insufficient_privilege",
            'connect to database "sales"',
        ),
    ],
    ids=["nologin-role", "no-connect-privilege"],
)
def test_a_role_the_server_does_not_let_log_in_is_a_refused_login(
    message: str, reason: str, named: str
) -> None:
    error = login_error(DriverError(HEAD + message), URL)

    assert error is not None
    assert error.reason == reason
    assert named in str(error)
    assert "hunter2" not in str(error)


@pytest.mark.parametrize(
    "message",
    [
        "FATAL:  the database system is shutting down",
        "FATAL:  the database system is in recovery mode",
        "FATAL:  the database system is not yet accepting connections",
        'FATAL:  database "etl" is not currently accepting connections',
        "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute",
        'FATAL:  too many connections for role "etl"',
        "FATAL:  terminating connection due to administrator command",
        "ERROR:  no more connections allowed (max_client_conn)",
        "ERROR:  pgbouncer cannot connect to server",
        "ERROR:  query_wait_timeout",
    ],
)
def test_a_server_starting_stopping_or_full_is_not_a_refused_login(message: str) -> None:
    assert login_error(DriverError(HEAD + message), URL) is None


@pytest.mark.parametrize("severity", ["ERROR", "FATAL"])
@pytest.mark.parametrize("said", ["No such database: sales", "no such database: sales"])
def test_a_database_pgbouncer_does_not_know_is_a_refused_login(severity: str, said: str) -> None:
    head = 'connection failed: connection to server at "10.0.0.5", port 6432 failed: '
    error = login_error(DriverError(f"{head}{severity}:  {said}"), URL)

    assert error is not None
    assert error.reason == "invalid_catalog_name"
    assert 'no database "sales"' in str(error)


def test_sqlites_no_such_database_of_a_detach_is_not_a_refused_login() -> None:
    assert login_error(DriverError("no such database: archive"), "sqlite:///etl.sqlite3") is None


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("postgresql://etl@db.example:5432/etl", "PGPASSWORD"),
        ("postgresql://etl@db.example:5432/etl?password=hunter2", "in the URL"),
        (URL, "in the URL"),
    ],
    ids=["from-the-environment", "query-parameter", "in-the-netloc"],
)
def test_a_refused_password_is_looked_for_where_it_was_given(url: str, where: str) -> None:
    message = HEAD + 'password authentication failed for user "etl"'

    error = login_error(DriverError(message), url)

    assert error is not None
    assert where in str(error)
    assert "hunter2" not in str(error)


def test_a_sqlstate_two_wrappers_down_still_says_it_is_not_a_refused_login() -> None:
    message = 'role "etl_ro" does not exist'
    django = WrappingError(message)
    django.__cause__ = DriverError(message, "42704")
    door = WrappingError(f"database postgresql://etl:***@db/etl refused the operation: {message}")
    door.__cause__ = django

    assert login_error(door, URL) is None


@pytest.mark.parametrize(
    ("message", "is_the_url"),
    [
        (HEAD + 'invalid value for parameter "TimeZone": "Mars/Olympus"', True),
        ('invalid sslmode value: "requried"', True),
        ('invalid connection option "sslmod"', True),
        ('invalid integer value "x" for connection option "keepalives"', True),
        (HEAD + "server does not support SSL, but SSL was required", True),
        # ?service=/PGSERVICE naming a section no service file has: exit 1, unnamed URL
        ('connection is bad: definition of service "nosuch" not found', True),
        ('service file "/etc/pg_service.conf" not found', True),
        (HEAD + "the database system is starting up", False),
        (HEAD + "sorry, too many clients already", False),
        ('connection failed: could not translate host name "db" to address', False),
    ],
)
def test_a_url_the_driver_cannot_connect_with_is_told_from_an_outage(
    message: str, is_the_url: bool
) -> None:
    error = url_error(DriverError(message), URL)

    assert (error is not None) is is_the_url
    if error is not None:
        assert error.url == "postgresql://etl:***@db.example:5432/etl"
        said = str(error)
        assert "correct the URL" in said or "correct the service name" in said
        assert "hunter2" not in str(error)


def test_a_session_s_error_with_a_sqlstate_is_never_the_url_s() -> None:
    """``SET TimeZone = 'x'`` in a unit says what an ``options=-c`` of the URL says at
    start-up; the server gave it a SQLSTATE (a session existed): the statement's fault."""
    error = DriverError('invalid value for parameter "TimeZone": "x"', sqlstate="22023")

    assert url_error(error, URL) is None


def test_a_sqlite_error_is_never_the_url_s() -> None:
    """SQLite's errors carry no SQLSTATE: what they say is never read as URL options."""
    error = DriverError('invalid value for column "x"')

    assert url_error(error, "sqlite:///etl.sqlite3") is None
    assert url_error(error, URL) is not None


def test_a_sqlite_file_in_a_missing_directory_is_the_url_s_naming_the_directory(
    tmp_path: Path,
) -> None:
    """A worker called it "unavailable" (exit 1, retried for ever): no retry creates it."""
    error = DriverError("unable to open database file")
    missing = tmp_path / "nodir" / "etl.sqlite3"

    refused = url_error(error, f"sqlite:///{missing}")

    assert refused is not None
    assert f"{tmp_path / 'nodir'} does not exist" in str(refused)
    assert url_error(error, f"sqlite:///{tmp_path / 'etl.sqlite3'}") is None  # a permission
