"""A connection the server refused for its login: a settings mistake, told apart from an outage.

PostgreSQL refuses a connection whose database or role does not exist, whose password
is wrong, whose role may not log in (no ``LOGIN``, no ``CONNECT`` privilege, no or a
``reject`` line of ``pg_hba.conf``) with a FATAL error at start-up (SQLSTATE ``3D000``,
``28000``, ``28P01``, ``42501``); PgBouncer says ``no such database``. The
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
from pathlib import Path
from urllib.parse import parse_qs

from etl_database_schema.database_url import (
    parse_database_url,
    redact_message,
    redact_url,
    split_url,
)
from etl_database_schema.errors import DatabaseLoginError, DatabaseUrlError

__all__ = ["local_file_error", "login_error", "url_error"]

_NO_DATABASE = "invalid_catalog_name"
_NO_ROLE = "invalid_authorization_specification"
_BAD_PASSWORD = "invalid_password"
_NO_PRIVILEGE = "insufficient_privilege"

_SQLSTATES = {"3D000": _NO_DATABASE, "28000": _NO_ROLE, "28P01": _BAD_PASSWORD}
"""The SQLSTATEs of a refused login. ``42501`` (``permission denied for database``, no
``CONNECT`` privilege) is not one: a session gets it for any statement it may not run."""

_PATTERNS = (  # (reason, which refusal: how to word it, the server's message)
    (_NO_DATABASE, "no database", re.compile(r'database "(?P<database>[^"]*)" does not exist')),
    (  # PgBouncer's, for a database its configuration does not list (not SQLite's DETACH)
        _NO_DATABASE,
        "no database",
        re.compile(r"failed: (?:FATAL|ERROR): [Nn]o such database: (?P<database>\S+)"),
    ),
    (_NO_ROLE, "no role", re.compile(r'role "(?P<role>[^"]*)" does not exist')),
    (
        _NO_ROLE,
        "pg_hba",
        re.compile(
            r'(?:no pg_hba\.conf entry|pg_hba\.conf rejects connection) for host "[^"]*", '
            r'user "(?P<role>[^"]*)", '
            r'database "(?P<database>[^"]*)"'
        ),
    ),
    (_NO_ROLE, "no login", re.compile(r'role "(?P<role>[^"]*)" is not permitted to log in')),
    (
        _NO_PRIVILEGE,
        "no connect",
        re.compile(
            r'permission denied for database "(?P<database>[^"]*)"'
            r"(?= DETAIL: User does not have CONNECT privilege)"
        ),
    ),
    (
        _BAD_PASSWORD,
        "password",
        re.compile(r'password authentication failed for user "(?P<role>[^"]*)"'),
    ),
    (_BAD_PASSWORD, "password", re.compile(r"no password supplied")),
)

_WHEN_ONLY_SQLSTATE = {_NO_DATABASE: "no database", _NO_ROLE: "no role", _BAD_PASSWORD: "password"}


def login_error(error: BaseException, url: str) -> DatabaseLoginError | None:
    """``error`` (a driver's, or Django's wrapping one) as the login the server refused,
    with what to correct in the URL; ``None`` for any other error (an outage stays one).
    """
    causes = _chain(error)
    sqlstate = _sqlstate(causes)
    if sqlstate is not None and sqlstate not in _SQLSTATES:
        return None  # an error the server gave a session ("role … does not exist" of a GRANT)
    reason = _SQLSTATES.get(sqlstate or "")
    for cause in causes:
        text = " ".join(str(cause).split())
        for kind, case, pattern in _PATTERNS:
            found = pattern.search(text)
            if found is not None and reason in (None, kind):
                return _refused(kind, case, found.groupdict(), text, url)
    if reason is not None:  # a message in another language, or worded otherwise
        text = " ".join(str(causes[0]).split())
        return _refused(reason, _WHEN_ONLY_SQLSTATE[reason], {}, text, url)
    return None


_URL_REFUSED = re.compile(
    r"invalid connection option \"[^\"]*\""  # psycopg, for a parameter libpq does not know
    r"|bad value for connect_timeout"  # psycopg
    r"|invalid (?:integer )?value (?:for|\")"  # an option's value refused (libpq, the server)
    r"|invalid [a-z_]+ value: "  # libpq: `invalid sslmode value: "bogus"`
    r"|invalid port number"  # libpq
    r"|server does not support SSL, but SSL was required"  # libpq: sslmode=require on no TLS
    r"|server does not support GSSAPI encryption, but it was required"
)
"""What the driver says of a URL it cannot connect with, whatever the server: an option
it does not know or a value it refuses, or TLS (GSSAPI) asked of a server without it."""


_SERVICE_MISSING = re.compile(
    r'definition of service "[^"]*" not found|service file "[^"]*" not found'
)
"""libpq, for a service (``?service=``, ``PGSERVICE``) no service file defines, or a
service file (``PGSERVICEFILE``) that is not there: no retry finds it."""


def url_error(error: BaseException, url: str) -> DatabaseUrlError | None:
    """``error`` as the URL mistake it is when the driver refused the URL's options, or
    the server lacks the TLS the URL asks for: no answer later changes it (not an outage
    to wait out, nor an operation to refuse); ``None`` for any other error."""
    if url.strip().lower().startswith("sqlite:"):
        # no driver options, no server: SQLite's errors carry no SQLSTATE; only a file
        # whose directory does not exist is the URL's (SQLite creates the file, never
        # its directory), said as "unable to open database file"
        return _sqlite_directory_missing(error, url)
    causes = _chain(error)
    if _sqlstate(causes) is not None:
        return None  # the server answered a session: not the URL's options
    for cause in causes:
        text = " ".join(str(cause).split())
        if _SERVICE_MISSING.search(text):
            shown = redact_url(url)
            return DatabaseUrlError(
                f"database URL {shown} cannot be connected with: {redact_message(text, url)}; "
                "correct the service name (the URL's ?service=, else PGSERVICE) or the service "
                "file that should define it (PGSERVICEFILE, else ~/.pg_service.conf, "
                "$PGSYSCONFDIR/pg_service.conf)",
                url=shown,
            )
        if _URL_REFUSED.search(text):
            shown = redact_url(url)
            said = redact_message(text, url)
            return DatabaseUrlError(
                f"database URL {shown} cannot be connected with: {said}; correct the URL "
                "(its options: https://www.postgresql.org/docs/current/libpq-connect.html"
                "#LIBPQ-PARAMKEYWORDS)",
                url=shown,
            )
    return None


def local_file_error(error: BaseException, url: str) -> bool:
    """Whether ``error``, a :func:`url_error`, was decided by a file on this machine (a
    SQLite file's directory, a service file's section) rather than the URL's text: for a
    URL this process already reached, that file went away under it (an outage), and a
    later attempt may find it back."""
    if url.strip().lower().startswith("sqlite:"):
        return True
    return any(_SERVICE_MISSING.search(" ".join(str(cause).split())) for cause in _chain(error))


def _sqlite_directory_missing(error: BaseException, url: str) -> DatabaseUrlError | None:
    """The URL's mistake when SQLite could not open its file because the directory the
    URL puts it in does not exist; ``None`` for any other error (a permission, a disk)."""
    if not any("unable to open database file" in str(cause) for cause in _chain(error)):
        return None
    try:
        name = str(parse_database_url(url)["NAME"])
    except DatabaseUrlError:  # setup refused the URL before anything ran
        return None
    if name == ":memory:":
        return None
    directory = Path(name).parent
    if directory.is_dir():
        return None
    shown = redact_url(url)
    return DatabaseUrlError(
        f"database URL {shown} names the SQLite file {name}, whose directory {directory} "
        "does not exist (SQLite creates the file, not its directory): create the directory "
        "or correct the URL (sqlite:///relative/file.sqlite3 is read from the working "
        "directory, sqlite:////absolute/file.sqlite3 is absolute)",
        url=shown,
    )


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the errors it was raised from (the door's, Django's, the driver's)."""
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and len(chain) < 8:
        chain.append(cause)
        cause = cause.__cause__
    return chain


def _sqlstate(causes: list[BaseException]) -> str | None:
    """The SQLSTATE the driver gave ``causes`` (Django's wrapper has none of its own)."""
    for cause in causes:
        sqlstate = getattr(cause, "sqlstate", None)
        if sqlstate:
            return str(sqlstate)
    return None


def _refused(
    reason: str, case: str, names: dict[str, str], text: str, url: str
) -> DatabaseLoginError:
    shown = redact_url(url)
    said = redact_message(text, url)
    what = _what_to_correct(case, _quoted(names.get("role")), _quoted(names.get("database")))
    if case == "password" and not _gives_password(url):
        what = (
            f"the server refused the password of role {_quoted(names.get('role'))}: the URL "
            "gives none, so it came from PGPASSWORD or the password file (~/.pgpass, "
            "PGPASSFILE): correct it there, or give it in the URL"
        )
    message = f"database {shown} refused the login: {what} (server said: {said})"
    return DatabaseLoginError(message, url=shown, reason=reason)


def _gives_password(url: str) -> bool:
    """Whether ``url`` carries a password (``user:password@`` or ``?password=``); without
    one, libpq takes it from ``PGPASSWORD`` or the password file."""
    try:
        given = split_url(url.strip())
    except ValueError:
        return True
    return given.password is not None or "password" in parse_qs(given.query)


def _what_to_correct(case: str, role: str, database: str) -> str:
    """What the server refused (``case`` of :data:`_PATTERNS`) and how to put it right."""
    if case == "no database":
        return (
            f"the server has no database {database}: correct the database name "
            "in the URL, or create that database (then run `etl-schema migrate`)"
        )
    if case == "password":
        return (
            f"the server refused the password of role {role}: correct the "
            "password in the URL (it is not shown here)"
        )
    if case == "pg_hba":
        return (
            f"the server does not let role {role} connect to database "
            f"{database} from this host (pg_hba.conf): correct the user or "
            "database name in the URL, or have the server allow it"
        )
    if case == "no login":
        return (
            f"role {role} may not log in (it has no LOGIN attribute): correct the user "
            "name in the URL, or have the server grant it LOGIN"
        )
    if case == "no connect":
        return (
            f"the server does not let the URL's role connect to database {database} "
            "(no CONNECT privilege): correct the user or database name in the URL, or "
            "have the server grant it CONNECT"
        )
    return f"the server has no role {role}: correct the user name in the URL, or create that role"


def _quoted(name: str | None) -> str:
    return "(named in the URL)" if name is None else f'"{name}"'
