"""A connection the server refused for its login: a settings mistake, told apart from an outage.

PostgreSQL refuses a connection whose database or role does not exist, or whose password
is wrong, with a FATAL error at start-up (SQLSTATE ``3D000``, ``28000``, ``28P01``). The
driver raises it as the ``OperationalError`` it also raises for a server that is down, so
the door would call it "unavailable" and a worker would retry it for ever; it is the URL
that is wrong. psycopg 3 carries no SQLSTATE for an error at connection (libpq gives
none before a session exists), so the server's message is read too; SQLSTATE is used
when a driver provides it, and an error with another SQLSTATE is never a refused login
whatever its message (a ``GRANT`` to a missing role says ``role "x" does not exist`` too).

Importing this module imports neither Django nor a driver.
"""

from __future__ import annotations

import re

from etl_database_schema.database_url import redact_message, redact_url
from etl_database_schema.errors import DatabaseLoginError

__all__ = ["login_error"]

_NO_DATABASE = "invalid_catalog_name"
_NO_ROLE = "invalid_authorization_specification"
_BAD_PASSWORD = "invalid_password"

_SQLSTATES = {"3D000": _NO_DATABASE, "28000": _NO_ROLE, "28P01": _BAD_PASSWORD}

_PATTERNS = (
    (_NO_DATABASE, re.compile(r'database "(?P<database>[^"]*)" does not exist')),
    (_NO_ROLE, re.compile(r'role "(?P<role>[^"]*)" does not exist')),
    (
        _NO_ROLE,
        re.compile(
            r'no pg_hba\.conf entry for host "[^"]*", user "(?P<role>[^"]*)", '
            r'database "(?P<database>[^"]*)"'
        ),
    ),
    (_BAD_PASSWORD, re.compile(r'password authentication failed for user "(?P<role>[^"]*)"')),
    (_BAD_PASSWORD, re.compile(r"no password supplied")),
)


def login_error(error: BaseException, url: str) -> DatabaseLoginError | None:
    """``error`` (a driver's, or Django's wrapping one) as the login the server refused,
    with what to correct in the URL; ``None`` for any other error (an outage stays one).
    """
    causes = [cause for cause in (error, error.__cause__) if cause is not None]
    sqlstate = _sqlstate(causes)
    if sqlstate is not None and sqlstate not in _SQLSTATES:
        return None  # an error the server gave a session ("role … does not exist" of a GRANT)
    for cause in causes:
        text = " ".join(str(cause).split())
        reason = _SQLSTATES.get(sqlstate or "")
        for kind, pattern in _PATTERNS:
            found = pattern.search(text)
            if found is not None and reason in (None, kind):
                return _refused(kind, found.groupdict(), text, url)
        if reason is not None:
            return _refused(reason, {}, text, url)
    return None


def _sqlstate(causes: list[BaseException]) -> str | None:
    """The SQLSTATE the driver gave ``causes`` (Django's wrapper has none of its own)."""
    for cause in causes:
        sqlstate = getattr(cause, "sqlstate", None)
        if sqlstate:
            return str(sqlstate)
    return None


def _refused(reason: str, names: dict[str, str], text: str, url: str) -> DatabaseLoginError:
    shown = redact_url(url)
    said = redact_message(text, url)
    database = names.get("database")
    role = names.get("role")
    if reason == _NO_DATABASE:
        what = (
            f"the server has no database {_quoted(database)}: correct the database name "
            "in the URL, or create that database (then run `etl-schema migrate`)"
        )
    elif reason == _BAD_PASSWORD:
        what = (
            f"the server refused the password of role {_quoted(role)}: correct the "
            "password in the URL (it is not shown here)"
        )
    elif database is not None:
        what = (
            f"the server does not let role {_quoted(role)} connect to database "
            f"{_quoted(database)} from this host (pg_hba.conf): correct the user or "
            "database name in the URL, or have the server allow it"
        )
    else:
        what = (
            f"the server has no role {_quoted(role)}: correct the user name in the URL, "
            "or create that role"
        )
    message = f"database {shown} refused the login: {what} (server said: {said})"
    return DatabaseLoginError(message, url=shown, reason=reason)


def _quoted(name: str | None) -> str:
    return "(named in the URL)" if name is None else f'"{name}"'
