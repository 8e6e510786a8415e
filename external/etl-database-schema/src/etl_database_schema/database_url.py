"""Database URLs → Django ``DATABASES`` entries, parsed with the standard library.

Supported forms (the SQLAlchemy / dj-database-url convention)::

    postgresql://user:password@host:5432/dbname?sslmode=require&connect_timeout=5
    postgresql://user@db1:5432,db2:5432/dbname?target_session_attrs=read-write
                                           (libpq's multi-host form: each host tried in turn)
    postgres://…                          (alias of postgresql://)
    sqlite:///relative/path.sqlite3        (relative to the working directory)
    sqlite:////absolute/path.sqlite3
    sqlite://  or  sqlite:///:memory:      (in-memory)

Every error message shows the URL with its password replaced by ``***``.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlsplit

from etl_database_schema.errors import DatabaseUrlError

__all__ = [
    "POSTGRESQL_DEFAULTS",
    "SUPPORTED_SCHEMES",
    "door_defaults",
    "parse_database_url",
    "postgresql_hosts",
    "redact_message",
    "redact_url",
    "sqlite_url",
]

SUPPORTED_SCHEMES = ("postgresql", "postgres", "sqlite")

_POSTGRESQL_ENGINE = "django.db.backends.postgresql"
_SQLITE_ENGINE = "django.db.backends.sqlite3"
_MEMORY = ":memory:"

# Django options that need Python objects (an enum, a dict, a bool) rather than strings.
_POSTGRESQL_REFUSED_OPTIONS = ("isolation_level", "pool", "server_side_binding")
_SQLITE_OPTIONS = ("init_command", "timeout", "transaction_mode")
_SQLITE_TRANSACTION_MODES = ("DEFERRED", "EXCLUSIVE", "IMMEDIATE")
# Concurrent workers on one SQLite file: take the write lock at BEGIN (so waits honour the
# timeout instead of failing mid-transaction) and let readers proceed during writes (WAL).
_SQLITE_DEFAULTS: dict[str, Any] = {
    "timeout": 20.0,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
}
POSTGRESQL_DEFAULTS: dict[str, str] = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}
"""The libpq parameters every PostgreSQL connection gets unless its URL sets them (the
URL's value wins, each on its own), or libpq is told them below the URL:
``PGCONNECT_TIMEOUT``, the named service's section (:func:`_postgresql_defaults`).
libpq has no connect timeout of its own, so a host
that accepts the connection and never answers (a hung server, a proxy whose backend is
gone) held a unit, or a command's start, for as long as the kernel kept trying: 10 s
(per address the host resolves to). TCP keepalives find a server that vanished under an
open connection (a failover, a host powered off, a NAT that forgot it) in
30 + 3 * 10 = 60 s of silence instead of the kernel's two hours and more.

No ``tcp_user_timeout``: Linux (5.11 and later) counts against it the time a server's
receive window stays closed, so it cut a load whose ``COPY … FROM STDIN`` waited on a
lock (another session's uncommitted row of the same key) longer than it, the server
reading nothing meanwhile; a URL or service setting it is the operator's choice."""
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_PASSWORD_QUERY = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


_USERINFO_TO_LAST_AT = frozenset(
    {
        "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle", "sqlite", "mongodb",
        "redis", "rediss", "sentinel", "amqp", "amqps", "pyamqp", "librabbitmq", "sqs",
    }
)  # fmt: skip
"""The database and broker schemes (a driver after ``+`` aside) whose URL's user-info ends
at its last ``@``: an ``@`` after their host is implausible, and a password pasted with an
unencoded ``/``, ``?``, ``#`` or ``@`` is not (etl_core's ``redaction.USERINFO_TO_LAST_AT``,
the same rule: this package imports no etl_core)."""
_SCHEME_END = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*$")
_NOT_A_PORT = re.compile(r"[^\[\]@:]*:(?![0-9]*$)")
"""An authority whose text after its ``:`` is no port: a password's start."""


def _userinfo_end(scheme: str, rest: str) -> int:
    """Where the user-info of a URL ends (its ``@``) in ``rest``, the URL after its
    ``scheme://`` (-1: it has none): at its last ``@`` for a database or broker URL, else
    at the last ``@`` before the first ``/``, ``?`` or ``#`` (``https://host/a@b`` has
    none), unless no port follows the ``:`` there (``https://etl:pa/ss@pgw:9091``: at its
    last ``@`` too, as etl_core's ``redaction`` reads it)."""
    name = _SCHEME_END.search(scheme)
    if name is not None and name[0].lower().partition("+")[0] in _USERINFO_TO_LAST_AT:
        return rest.rfind("@")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" not in authority and _NOT_A_PORT.match(authority):
        return rest.rfind("@")
    return authority.rfind("@")


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, safe to log or print.

    Errs on the side of hiding: an unencoded ``@``, ``/``, ``?`` or ``#`` in the password
    still leaves no part of it visible (the user-info of a database URL ends at its last
    ``@``: :data:`_USERINFO_TO_LAST_AT`).
    """
    scheme, sep, rest = url.partition("://")
    at = _userinfo_end(scheme, rest) if sep else -1
    user, colon, _ = rest[: max(at, 0)].partition(":")
    if at >= 0 and colon and "/" not in user:  # a user with a '/': a path (sqlite:////a:b@c)
        url = f"{scheme}://{user}:***{rest[at:]}"
    # after the user-info: an '@' in a masked ?password= value would end it elsewhere
    return _PASSWORD_QUERY.sub(r"\1***", url)


def _unencoded_password(url: str) -> bool:
    """Whether the password of the database URL ``url`` holds an unencoded ``/``, ``?`` or
    ``#``, where urllib (and libpq) read its host, port, database or options."""
    scheme, _, rest = url.partition("://")
    user, colon, password = rest[: max(_userinfo_end(scheme, rest), 0)].partition(":")
    return bool(colon) and "/" not in user and any(mark in password for mark in "/?#")


def redact_message(message: str, url: str) -> str:
    """``message`` without the password of ``url``, in case a driver echoed the DSN.

    The password is removed as given and percent-decoded; any URL left in the
    message is redacted too.
    """
    try:
        password = split_url(url.strip()).password
    except ValueError:
        password = None
    for secret in {password, unquote(password or "")} - {None, ""}:
        message = message.replace(str(secret), "***")
    return redact_url(message) if "://" in message else message


def sqlite_url(path: Path) -> str:
    """The ``sqlite:`` URL naming the file ``path`` (made absolute)."""
    return f"sqlite:///{quote(str(Path(path).resolve()))}"


def parse_database_url(url: str, *, base_dir: Path | None = None) -> dict[str, Any]:
    """Translate a database URL into a Django ``DATABASES`` entry.

    Args:
        url: a ``postgresql://``, ``postgres://`` or ``sqlite://`` URL.
        base_dir: directory that relative SQLite paths are resolved against
            (default: the working directory), so the entry names an absolute file.

    Raises:
        DatabaseUrlError: the URL is empty, malformed, has an unsupported scheme or
            an invalid option; the message names the problem and the redacted URL.
    """
    shown = redact_url(url)
    if not url.strip():
        raise DatabaseUrlError(
            "database URL is empty; expected postgresql://user@host:5432/dbname "
            "or sqlite:///path/to/file.sqlite3",
            url=shown,
        )
    try:
        parts = split_url(url.strip())
    except ValueError as exc:
        raise DatabaseUrlError(f"database URL {shown!r} is malformed: {exc}", url=shown) from exc
    scheme = parts.scheme.lower()
    if scheme in ("postgresql", "postgres"):
        try:
            return _postgresql(parts.netloc, parts.path, _query(parts.query, shown), shown)
        except DatabaseUrlError:
            if not _unencoded_password(url.strip()):
                raise
        # outside the except: what urllib read in the password's place (a port, a query
        # field, a database name) is part of it, and a chained error would show it
        raise DatabaseUrlError(
            f"database URL {shown!r} cannot be read: its password holds an unencoded '/', "
            "'?' or '#', where the host, port, database or options are read; percent-encode "
            "it ('/' as %2F, '?' as %3F, '#' as %23, '@' as %40)",
            url=shown,
        )
    if scheme == "sqlite":
        return _sqlite(parts.netloc, parts.path, _query(parts.query, shown), shown, base_dir)
    expected = ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
    if not scheme:
        raise DatabaseUrlError(
            f"database URL {shown!r} has no scheme; expected one of {expected}", url=shown
        )
    raise DatabaseUrlError(
        f"database URL scheme {scheme!r} is not supported (in {shown!r}); "
        f"expected one of {expected}",
        url=shown,
    )


def split_url(url: str) -> SplitResult:
    """``url`` taken apart as ``urlsplit`` does, but for a PostgreSQL URL's host part,
    taken as written: ``urlsplit`` refuses libpq's host list with an IPv6 address after
    the first host (``db1,[::1]:5432``) on Pythons that check brackets; :func:`postgresql_hosts`
    reads it."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in ("postgresql", "postgres"):
        return urlsplit(url)
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return urlsplit(f"{scheme}://host{rest[len(netloc) :]}")._replace(netloc=netloc)


def _query(query: str, shown: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise DatabaseUrlError(
            f"database URL {shown!r} has a malformed query string: {exc}", url=shown
        ) from exc
    options: dict[str, str] = {}
    for name, value in pairs:
        if name in options:
            raise DatabaseUrlError(
                f"database URL {shown!r} sets option {name!r} more than once", url=shown
            )
        options[name] = value
    return options


def postgresql_hosts(netloc: str, shown: str) -> list[tuple[str, str]]:
    """The hosts of a PostgreSQL URL's ``netloc``, each with its port (``""``: libpq's
    default), decoded: one, or libpq's comma-separated list (``db1:5432,db2:5432``,
    ``[::1]:5432,db2``), tried in turn. None for a URL naming no host.

    Raises:
        DatabaseUrlError: a host of a list is empty (``db1,,db2``), a port is no number
            from 1 to 65535, an IPv6 address has no closing ``]``; the message names which
            host (by its position), and quotes the part only when the redacted URL
            ``shown`` shows it too (a password's unencoded ``/`` or ``@`` leaves its
            remains where a host is read: never quoted).
    """
    hostports = netloc.rpartition("@")[2]
    if not hostports:
        return []
    quoted = (
        hostports == re.split(r"[/?#]", shown.partition("://")[2], maxsplit=1)[0].rpartition("@")[2]
    )
    items = hostports.split(",")
    hosts: list[tuple[str, str]] = []
    for index, item in enumerate(items, 1):
        which = f"host {index} of {len(items)}" if len(items) > 1 else "its host"
        if item.startswith("["):
            host, bracket, after = item[1:].partition("]")
            if not bracket or (after and not after.startswith(":")):
                said = f" ({item!r})" if quoted else ""
                problem = "has no closing ']'" if not bracket else "has text after ']' not ':port'"
                raise DatabaseUrlError(
                    f"database URL {shown!r} is malformed: {which}{said} {problem}; an IPv6 "
                    "address is written [address]:port",
                    url=shown,
                )
            port = after[1:]
        else:
            host, _, port = item.partition(":")
        if not host and len(items) > 1:
            raise DatabaseUrlError(
                f"database URL {shown!r} lists hosts separated by ',' and {which} is empty; "
                "write each host once, as host or host:port (postgresql://user@db1:5432,"
                "db2:5432/dbname)",
                url=shown,
            )
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            said = f" {port!r}" if quoted else ""
            named = f" ({unquote(host)})" if quoted else ""
            of = f" of host {index}{named}" if len(items) > 1 else ""
            raise DatabaseUrlError(
                f"database URL {shown!r} has an invalid port: port{said}{of} is not a number "
                "from 1 to 65535",
                url=shown,
            )
        hosts.append((unquote(host), port))
    _check_every_port_or_none(hosts, shown)
    return hosts


def _check_every_port_or_none(hosts: list[tuple[str, str]], shown: str) -> None:
    """Refuse a host list giving a port to some hosts only (``pgb1,pgb2:6432``): libpq
    tries a host without one on its default port, not on the port written after the
    last host, which a previous release (and many readers) took it to mean."""
    bare = [index for index, (_, port) in enumerate(hosts, 1) if not port]
    if len(hosts) > 1 and bare and len(bare) < len(hosts):
        which = ("host " if len(bare) == 1 else "hosts ") + ", ".join(map(str, bare))
        has = "has" if len(bare) == 1 else "have"
        raise DatabaseUrlError(
            f"database URL {shown!r} gives a port to some of its {len(hosts)} hosts only "
            f"({which} {has} none, so libpq would try it on its default port 5432, not "
            "on the port written after another host); write each host's port "
            "(postgresql://user@db1:6432,db2:6432/dbname) or none and one for all (?port=6432)",
            url=shown,
        )


def _check_host_counts(hosts: list[str], ports: list[str], shown: str) -> None:
    """libpq takes one port for every host, or one port for all of them: refuse another
    count (``?host=db1,db2&port=5432,5433,5434``) here, naming both lists."""
    if len(ports) > 1 and len(ports) != len(hosts):
        raise DatabaseUrlError(
            f"database URL {shown!r} gives {len(ports)} ports ({','.join(ports)}) for "
            f"{len(hosts)} hosts ({','.join(hosts)}); give one port for every host, in the "
            "same order, or one port for all of them",
            url=shown,
        )


def _postgresql(netloc: str, path: str, query: dict[str, str], shown: str) -> dict[str, Any]:
    userinfo, at, _ = netloc.rpartition("@")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    hosts = postgresql_hosts(netloc, shown)
    for key in ("host", "port"):  # libpq's ?host=db1,db2&port=5432,5433 (lists only)
        if "," in query.get(key, ""):
            _query_list(key, query[key], shown)
    host_list = [host for host, _ in hosts] or query.get("host", "").split(",")
    port_list = [port for _, port in hosts] if any(port for _, port in hosts) else None
    _check_host_counts(host_list, port_list or query.get("port", "").split(","), shown)
    name = unquote(path[1:] if path.startswith("/") else path)
    if "/" in name:
        raise DatabaseUrlError(
            f"database URL {shown!r} names database {name!r}; a database name has no '/'",
            url=shown,
        )
    if "dbname" in query:  # libpq's own spelling: ?dbname=
        if name:
            raise DatabaseUrlError(
                f"database URL {shown!r} names the database twice ({name!r} and "
                f"?dbname={query['dbname']!r}); keep one",
                url=shown,
            )
        name = query.pop("dbname")
    service = query.get("service") or os.environ.get("PGSERVICE")
    if not name and not service:
        name = os.environ.get("PGDATABASE", "")
    if not name and not service:
        # by hand: urlunsplit drops the '//' of an empty host (postgresql:/dbname)
        given = split_url(shown)
        query_text = f"?{given.query}" if given.query else ""
        written = f"{given.scheme}://{given.netloc}/dbname{query_text}"
        raise DatabaseUrlError(
            f"database URL {shown!r} names no database; write its name after the host: "
            f"{written} (or name a service, ?service=name, or set PGDATABASE or PGSERVICE, "
            "which libpq reads)",
            url=shown,
        )
    entry: dict[str, Any] = {
        "ENGINE": _POSTGRESQL_ENGINE,
        "NAME": name,
        "USER": unquote(user),
        "PASSWORD": unquote(password),
        "HOST": ",".join(host for host, _ in hosts),
        "PORT": ",".join(port_list or []),
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": _postgresql_options(query.get("service"), shown, "connect_timeout" in query),
    }
    if not name and "service" not in query:  # PGSERVICE's, given: Django asks for a name or one
        entry["OPTIONS"]["service"] = service
    for option, value in query.items():
        if option == "conn_max_age":
            entry["CONN_MAX_AGE"] = _conn_max_age(value, shown)
        elif option == "conn_health_checks":
            entry["CONN_HEALTH_CHECKS"] = _boolean(option, value, shown)
        elif option in _POSTGRESQL_REFUSED_OPTIONS:
            raise DatabaseUrlError(
                f"database URL {shown!r} sets {option!r}, which cannot be expressed in a URL; "
                "configure Django's DATABASES setting directly instead",
                url=shown,
            )
        else:  # a libpq connection parameter (sslmode, connect_timeout, application_name…)
            entry["OPTIONS"][option] = value
    return entry


def _query_list(key: str, value: str, shown: str) -> None:
    """Refuse an empty entry of a ``?host=`` or ``?port=`` list, or a port that is no
    number, naming its position."""
    items = value.split(",")
    for index, item in enumerate(items, 1):
        if key == "host" and not item:
            raise DatabaseUrlError(
                f"database URL {shown!r} lists hosts in ?host= and host {index} of "
                f"{len(items)} is empty; write each host once",
                url=shown,
            )
        if key == "port" and item and not (item.isdigit() and 1 <= int(item) <= 65535):
            raise DatabaseUrlError(
                f"database URL {shown!r} has an invalid port: port {item!r} ({index} of "
                f"{len(items)} in ?port=) is not a number from 1 to 65535",
                url=shown,
            )


def door_defaults(url: str) -> dict[str, str]:
    """The :data:`POSTGRESQL_DEFAULTS` a connection to the PostgreSQL ``url`` is given as the
    door's own: those neither the URL, ``PGCONNECT_TIMEOUT`` nor the service's section sets
    (what :func:`~etl_database_schema.door.check_login` may bound for its one login)."""
    query = dict(parse_qsl(split_url(url.strip()).query, keep_blank_values=True))
    own, _, _ = _postgresql_defaults(query.get("service"))
    return {name: value for name, value in own.items() if name not in query}


def _postgresql_options(service: str | None, shown: str, url_timeout: bool) -> dict[str, str]:
    """The options every PostgreSQL entry starts with, before the URL's: the door's own
    defaults and the service's ``connect_timeout`` (:func:`_postgresql_defaults`).

    Unless the URL sets its own, the connect timeout libpq is told below the URL (the
    service's, else ``PGCONNECT_TIMEOUT``) must be a number: psycopg refuses every
    connection otherwise ("bad value for connect_timeout"), which read as the URL's fault."""
    own, forwarded, file = _postgresql_defaults(service)
    if not url_timeout:
        told = os.environ.get("PGCONNECT_TIMEOUT", "")
        said, remedy = f"PGCONNECT_TIMEOUT={told!r}", ", or unset it"
        if "connect_timeout" in forwarded:
            told, remedy = forwarded["connect_timeout"], ""
            named = service or os.environ.get("PGSERVICE")
            said = f"connect_timeout={told!r} in service {named!r} of {file}"
        if (told or "connect_timeout" in forwarded) and not _is_seconds(told):
            raise DatabaseUrlError(
                f"{said} is not a number of seconds (libpq's connect timeout for database "
                f"URL {shown!r}); set it to a whole number of seconds{remedy}",
                url=shown,
            )
    return {**own, **forwarded}


def _is_seconds(value: str) -> bool:
    """Whether psycopg takes ``value`` as a connect timeout (``int(float(value))``)."""
    try:
        int(float(value))
    except (ValueError, OverflowError):
        return False
    return True


def _postgresql_defaults(
    service: str | None,
) -> tuple[dict[str, str], dict[str, str], Path | None]:
    """:data:`POSTGRESQL_DEFAULTS` less what libpq is told elsewhere, below the URL:
    ``PGCONNECT_TIMEOUT``, and the section of the service named (``?service=`` or
    ``PGSERVICE``). libpq applies those only to parameters not given, so a default given
    would silently replace them. A service found in neither ``PGSERVICEFILE`` (else
    ``~/.pg_service.conf``) nor ``$PGSYSCONFDIR/pg_service.conf`` is in libpq's own
    directory, unread here: no default is given then.

    Returned with the service's ``connect_timeout``, to be given as a parameter: psycopg
    times the connection itself, from the parameters and ``PGCONNECT_TIMEOUT`` only (it
    reads no service file), so a service's own timeout left to libpq waited psycopg's
    130 s); and the service file read, if any."""
    defaults = dict(POSTGRESQL_DEFAULTS)
    if os.environ.get("PGCONNECT_TIMEOUT"):
        del defaults["connect_timeout"]
    service = service or os.environ.get("PGSERVICE")
    if not service:
        return defaults, {}, None
    found = _service_section(service)
    if found is None:
        return {}, {}, None
    file, section = found
    own = {name: value for name, value in defaults.items() if name not in section}
    timeout = section.get("connect_timeout")
    return own, {} if timeout is None else {"connect_timeout": timeout}, file


def _service_section(service: str) -> tuple[Path, dict[str, str]] | None:
    """The file holding ``service``'s section, read where libpq looks first, and the
    section's parameters, or ``None`` when neither file has it (or one cannot be read)."""
    files: list[Path] = []
    if os.environ.get("PGSERVICEFILE"):
        files.append(Path(os.environ["PGSERVICEFILE"]))
    else:
        with contextlib.suppress(RuntimeError):  # no home (a user without one): skipped
            files.append(Path.home() / ".pg_service.conf")
    if os.environ.get("PGSYSCONFDIR"):
        files.append(Path(os.environ["PGSYSCONFDIR"]) / "pg_service.conf")
    for file in files:
        try:
            lines = file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            continue
        except OSError:
            return None
        section: dict[str, str] | None = None
        for line in (line.strip() for line in lines):
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                if section is not None:
                    break
                section = {} if line.rstrip("]")[1:] == service else None
            elif section is not None and "=" in line:
                name, _, value = line.partition("=")
                section[name.strip()] = value.strip()
        if section is not None:
            return file, section
    return None


def _sqlite(
    netloc: str, path: str, query: dict[str, str], shown: str, base_dir: Path | None
) -> dict[str, Any]:
    if netloc and netloc != _MEMORY:
        raise DatabaseUrlError(
            f"database URL {shown!r} has a host part; SQLite URLs have none: "
            "use sqlite:///relative/file.sqlite3 or sqlite:////absolute/file.sqlite3",
            url=shown,
        )
    if netloc == _MEMORY or path in ("", f"/{_MEMORY}"):
        if path not in ("", f"/{_MEMORY}"):
            raise DatabaseUrlError(
                f"database URL {shown!r} names both :memory: and a file", url=shown
            )
        return _sqlite_entry(_MEMORY, query, shown, memory=True)
    name = unquote(path[1:] if path.startswith("/") else path)
    if not name:
        raise DatabaseUrlError(
            f"database URL {shown!r} names no file; expected sqlite:///path/to/file.sqlite3",
            url=shown,
        )
    file = Path(name)
    if not file.is_absolute():
        file = (base_dir or Path.cwd()) / file
    return _sqlite_entry(str(file.resolve()), query, shown, memory=False)


def _sqlite_entry(name: str, query: dict[str, str], shown: str, *, memory: bool) -> dict[str, Any]:
    options = dict(_SQLITE_DEFAULTS)
    if memory:
        del options["init_command"]
    for option, value in query.items():
        if option not in _SQLITE_OPTIONS:
            raise DatabaseUrlError(
                f"database URL {shown!r} sets unknown SQLite option {option!r}; "
                f"expected one of {', '.join(_SQLITE_OPTIONS)}",
                url=shown,
            )
        options[option] = _sqlite_option(option, value, shown)
    return {
        "ENGINE": _SQLITE_ENGINE,
        "NAME": name,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": options,
    }


def _sqlite_option(option: str, value: str, shown: str) -> Any:
    if option == "timeout":
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not seconds > 0:
            raise DatabaseUrlError(
                f"database URL {shown!r}: timeout={value!r} is not a positive number of seconds",
                url=shown,
            )
        return seconds
    if option == "transaction_mode":
        if value.upper() not in _SQLITE_TRANSACTION_MODES:
            raise DatabaseUrlError(
                f"database URL {shown!r}: transaction_mode={value!r} is not one of "
                f"{', '.join(_SQLITE_TRANSACTION_MODES)}",
                url=shown,
            )
        return value.upper()
    return value


def _conn_max_age(value: str, shown: str) -> int | None:
    if value.lower() in ("", "none"):
        return None  # Django: keep connections open indefinitely
    if value.isdigit():
        return int(value)
    raise DatabaseUrlError(
        f"database URL {shown!r}: conn_max_age={value!r} is not a number of seconds or 'none'",
        url=shown,
    )


def _boolean(option: str, value: str, shown: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise DatabaseUrlError(
        f"database URL {shown!r}: {option}={value!r} is not a boolean (true/false)", url=shown
    )
