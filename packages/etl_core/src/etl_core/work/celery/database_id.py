"""Which database a URL reaches, by what its server says of itself, not by the name used.

One PostgreSQL is ``127.0.0.1:15432`` from a host and ``postgres:5432`` inside a compose
stack: the two URLs name one database, yet no spelling rule can tell (a host name, an
address, a socket directory). Its server can: ``pg_control_system()`` gives the cluster's
``system_identifier`` (chosen by ``initdb``, readable by any role) and
``current_database()`` the database, so the id of a PostgreSQL database is
``postgresql:<system_identifier>/<database, percent-encoded>``. A SQLite database is its
file's real path (``sqlite:///…``, as :func:`~etl_core.work.celery.origin.database_identity`
writes it), learned without opening it.

A process learns the id of its database and remembers it a minute
(:func:`learned_database_id`): a sender on its first unit that loads, a worker on the
first such unit it receives (a database recreated under its URL is another one). The
server is asked with psycopg, imported lazily (etl_core imports only the standard
library), 3 s at most in all, on a connection whose TCP keepalives and
``tcp_user_timeout`` follow that budget (a server vanishing under the question ends it
within seconds, not the kernel's hours); a database that cannot be reached, or no psycopg, is no
error: the unit is sent (or checked) by its URL alone, as before, and one warning says so.

A physical copy of a cluster (``pg_basebackup``, a copied data directory, a standby) keeps
its ``system_identifier``: a copy and its original with the same database name are one
database by this id (docs/events.md).
"""

from __future__ import annotations

import logging
import math
import re
import sys
import threading
import time
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlsplit

from etl_core.redaction import (
    SECRET_NAME,
    mask_url_password,
    mask_values,
    redact_text,
    url_password,
)

__all__ = [
    "DATABASE_ID_LASTS",
    "DATABASE_ID_TIMEOUT",
    "database_id",
    "describe_database_id",
    "forget_database_ids",
    "learned_database_id",
    "postgresql_hosts",
]

logger = logging.getLogger(__name__)

DATABASE_ID_TIMEOUT = 3
"""Seconds to wait for the database's answer when learning its id, in all: resolving its
host name (a DNS server that does not answer), every address of it, the query. A sender
whose database is unreachable waits no longer than this, once."""

_POSTGRESQL = "postgresql"
_POSTGRESQL_SCHEMES = frozenset({"postgresql", "postgres"})
_NOT_LIBPQ = frozenset({"conn_max_age", "conn_health_checks", "assume_role", "prepare_threshold"})
"""Query parameters of a platform database URL read by Django or psycopg, not libpq (which
refuses them)."""
_QUERY = "SELECT system_identifier::text, current_database() FROM pg_control_system()"

DATABASE_ID_LASTS = 60
"""Seconds an id learned is used before its database is asked again: a long-running
sender (the scheduler) whose database was recreated under its URL (a new volume, a
restore into a new cluster) sent the id of the old one, refused by every worker."""

_lock = threading.Lock()
_learned: dict[str, tuple[str | None, float]] = {}
"""URL → its database's id, ``None`` once learning it failed, and when (this process)."""
_warned: set[str] = set()
_refused: set[str] = set()
"""URLs whose database refused the question for good (not granted, no such function, no
psycopg): not asked again, even by a worker (one connection per unit, for ever)."""
_asking: dict[str, _Question] = {}
"""URL → the question still unanswered after its caller stopped waiting (one at a time)."""


def database_id(url: str, *, timeout: float = DATABASE_ID_TIMEOUT) -> str | None:
    """The id of the database ``url`` reaches (module docstring); ``None`` for a database
    that has none (in memory, another scheme).

    Raises:
        ImportError: psycopg is not installed (a PostgreSQL URL).
        Exception: psycopg's error when the server cannot be reached or refuses the query.
    """
    from etl_core.work.celery.origin import database_identity

    scheme = url.strip().partition("://")[0].lower()
    if scheme == "sqlite":
        identity = database_identity(url)
        return identity if identity.startswith("sqlite:////") else None  # a real path
    if scheme not in _POSTGRESQL_SCHEMES:
        return None
    import psycopg
    from psycopg.conninfo import make_conninfo

    parameters: dict[str, str | int] = {**_connection_parameters(url), **_bounds(timeout)}
    conninfo = make_conninfo("", **parameters)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        row = connection.execute(_QUERY).fetchone()
    if row is None:  # pragma: no cover - the function always returns one row
        return None
    system, name = row
    return f"{_POSTGRESQL}:{system}/{quote(str(name), safe='')}"


_TCP_USER_TIMEOUT_LIBPQ = 120000
"""The first libpq version (``psycopg.pq.version()``) with ``tcp_user_timeout``."""


def _bounds(timeout: float) -> dict[str, str | int]:
    """The libpq parameters bounding one asking by ``timeout``, over the URL's (a question
    of its own, not the operator's connections): ``connect_timeout`` (libpq's least, 2 s);
    TCP keepalives probing after ``timeout`` seconds of silence, each second, three times;
    ``tcp_user_timeout`` giving up on the query unacknowledged after ``timeout`` (libpq 12
    and later; an older one refuses it). Its caller stops waiting after ``timeout``; these
    end the question's thread too when the server vanishes under it (a failover): it held
    every later asking, which waits for it, for the kernel's hours.

    Not the database door's defaults (``etl_database_schema.database_url.POSTGRESQL_DEFAULTS``,
    a minute, for connections that work): etl_core does not import the schema package,
    nor it etl_core (its own repository, which depends on Django and psycopg only)."""
    import psycopg

    seconds = max(1, math.ceil(timeout))
    bounds: dict[str, str | int] = {
        "connect_timeout": max(2, round(timeout)),
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": 1,
        "keepalives_count": 3,
    }
    if psycopg.pq.version() >= _TCP_USER_TIMEOUT_LIBPQ:
        bounds["tcp_user_timeout"] = seconds * 1000
    return bounds


class _Question:
    """One asking of a database, in a thread of its own, so that its caller waits no longer
    than its timeout: psycopg bounds each connection attempt (``connect_timeout``), not the
    host name's resolution before them, nor the sum of one attempt per address. A question
    still unanswered is left to end in its thread (its connection closed there)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.answer: str | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(
            target=self._ask, args=(url, timeout), name="etl-database-id", daemon=True
        )
        self.thread.start()

    def _ask(self, url: str, timeout: float) -> None:
        try:
            self.answer = database_id(url, timeout=timeout)
        except Exception as exc:  # handed to the caller, raised there
            self.error = exc


def _asked(url: str, timeout: float) -> str | None:
    """The id of ``url``'s database, waited for ``timeout`` seconds at most (a question
    still unanswered from a previous call is waited for, not asked twice)."""
    question = _asking.pop(url, None)
    if question is None or not question.thread.is_alive():
        question = _Question(url, timeout)
    question.thread.join(timeout)
    if question.thread.is_alive():
        _asking[url] = question
        raise TimeoutError(f"no answer within {timeout:g} s")
    if question.error is not None:
        raise question.error
    return question.answer


def learned_database_id(url: str, *, again: bool, fresh: bool = False) -> str | None:
    """The id of ``url``'s database, learned in this process and remembered
    :data:`DATABASE_ID_LASTS` seconds, then asked again (an id that does not answer then
    still holds: a database restarting is no other one); ``None`` when it cannot be
    learned (one warning per URL, never an error). ``again``: a failure is not
    remembered, the next call tries once more (a worker, whose database may be back by
    its next unit; unless the server refused the question itself); else it is (a sender:
    one wait, one warning, per process).
    ``fresh``: asked again whatever was learned (a worker about to refuse a unit by an id
    learned before its database was replaced under the same URL). Each asking waits
    :data:`DATABASE_ID_TIMEOUT` seconds at most, in all."""
    with _lock:  # held while asking: concurrent callers ask the server once
        known, when = _learned.get(url, (None, None))
        if not fresh and when is not None:
            if known is None and (not again or url in _refused):
                return None
            if known is not None and time.monotonic() - when < DATABASE_ID_LASTS:
                return known
        try:
            learned = _asked(url, DATABASE_ID_TIMEOUT)
        except Exception as exc:  # unreachable, refused, no driver: the URL alone is used
            learned = known  # else the URLs compared: a unit by another name refused
            if known is None:
                _warn_once(url, exc)
                if _lasting(exc):
                    _refused.add(url)
            else:
                logger.debug("database %s not asked again: %s", _shown(url), _first_line(exc, url))
        _learned[url] = (learned, time.monotonic())
        return learned


def _lasting(error: BaseException) -> bool:
    """Whether ``error`` says the question will never be answered: no psycopg, or the
    server refused the query (psycopg's ``ProgrammingError``: the function not granted,
    not there; the URL not read), not that the server could not be reached."""
    if isinstance(error, ImportError):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.ProgrammingError)


def _warn_once(url: str, error: BaseException) -> None:
    """Say once per URL that its database could not be asked, and what follows."""
    if url in _warned:
        return
    _warned.add(url)
    logger.warning(
        "could not ask the database %s which one it is (%s): it is named by "
        "its URL only (etl_database, as before etl_database_id), so a unit that "
        "loads into it is refused where it is reached by another name "
        "(docs/events.md)",
        _shown(url),
        _first_line(error, url),
        extra={"field": "database_url"},
    )


def describe_database_id(value: str) -> str:
    """``value`` as read by a person: ``server 7716…, database etl``; a SQLite id as is."""
    scheme, _, rest = value.partition(":")
    if scheme == _POSTGRESQL and not rest.startswith("//"):
        system, _, name = rest.partition("/")
        return f"server {system}, database {unquote(name)}"
    return value


def forget_database_ids() -> None:
    """Forget every id learned and warned about (tests; a process that changes databases)."""
    with _lock:
        _learned.clear()
        _warned.clear()
        _refused.clear()
        _asking.clear()


def _connection_parameters(url: str) -> dict[str, str]:
    """The libpq parameters of ``url``, read as the platform reads it (its database
    settings, then Django): the URL taken apart as ``urlsplit`` does, its host part as
    libpq's list (:func:`postgresql_hosts`), its parts and its query
    parameters decoded (``+`` and ``%20`` a space: ``options=-c%20statement_timeout%3D5000``),
    those only Django or psycopg read left out, the URL's user, password, hosts and ports
    over the parameters'. Given to libpq as a URL, one the platform reads was refused or
    misread (an unencoded ``@`` in the password, ``POSTGRESQL://``, a space re-encoded
    as ``+``), and libpq's error quoted the password's remains."""
    scheme, _, rest = url.strip().partition("://")
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    parts = urlsplit(f"{scheme}://host{rest[len(netloc) :]}")
    userinfo, at, hostports = netloc.rpartition("@")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    hosts = postgresql_hosts(hostports)
    name = unquote(parts.path.removeprefix("/"))
    parameters = {"dbname": name} if name else {}
    query = parse_qsl(parts.query, keep_blank_values=True)
    parameters.update((key, value) for key, value in query if key not in _NOT_LIBPQ)
    for key, value in (("user", user), ("password", password)):
        if value:
            parameters[key] = unquote(value)
    if any(host for host, _ in hosts):
        parameters["host"] = ",".join(host for host, _ in hosts)
    if any(port for _, port in hosts):
        parameters["port"] = ",".join(port for _, port in hosts)
    return parameters


def postgresql_hosts(hostports: str) -> list[tuple[str, str]]:
    """The hosts of a PostgreSQL URL's host part (after its user-info), each with its port
    (``""``: libpq's default), decoded: one, or libpq's comma-separated list
    (``db1:5432,db2:5432``, ``[::1]:5432,db2``, tried in turn by libpq); none for a URL
    naming no host. The schema package reads it so (``database_url.postgresql_hosts``).

    Raises:
        ValueError: a host of a list is empty, a port is no number from 1 to 65535, an IPv6
            address has no closing ``]``; naming the host by its position only (what
            urllib reads there may be a password's remains, an unencoded ``/`` in it).
    """
    if not hostports:
        return []
    items = hostports.split(",")
    hosts: list[tuple[str, str]] = []
    for index, item in enumerate(items, 1):
        which = f"host {index} of {len(items)}" if len(items) > 1 else "its host"
        if item.startswith("["):
            host, bracket, after = item[1:].partition("]")
            if not bracket or (after and not after.startswith(":")):
                raise ValueError(f"the URL's {which} is an IPv6 address not written [address]:port")
            port = after[1:]
        else:
            host, _, port = item.partition(":")
        if not host and len(items) > 1:
            raise ValueError(f"the URL lists hosts separated by ',' and {which} is empty")
        if port and not (port.isdigit() and 1 <= int(port) <= 65535):
            of = f" of host {index}" if len(items) > 1 else ""
            raise ValueError(f"the URL's port{of} is not a number from 1 to 65535")
        hosts.append((unquote(host), port))
    return hosts


def _shown(url: str) -> str:
    """``url`` without its password, for the log: all of the user-info after the user's
    name, up to its last ``@`` (an unencoded ``@``, ``/`` or ``?`` in the password:
    :func:`~etl_core.redaction.mask_url_password`)."""
    return redact_text(mask_url_password(url))


def _first_line(error: BaseException, url: str) -> str:
    """The first line of ``error``, no secret of ``url`` in it (libpq quotes a user-info
    it cannot decode as written: ``invalid percent-encoded token: "p%40ss%zz"``)."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return redact_text(mask_values(text, _secrets(url)))


def _secrets(url: str) -> set[str]:
    """The secrets of ``url``, as written and decoded: its user-info's password (as either
    reading ends the user-info), the value
    of every parameter whose name says it holds one (``password``, ``sslpassword``)."""
    rest = url.partition("://")[2]
    # either reading of the user-info: to its last '@' (an unencoded '/', '?', '#' in the
    # password), or to the last '@' before its host's end (an '@' in a query value)
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    _, colon, read = authority.rpartition("@")[0].partition(":")
    readings = {url_password(url), read if colon and "@" in authority else None}
    written = [password for password in readings if password]
    for pair in rest.partition("?")[2].split("&"):
        name, _, value = pair.partition("=")
        if SECRET_NAME.search(unquote_plus(name)):
            written.append(value)
    decoded = [unquote(value) for value in written] + [unquote_plus(value) for value in written]
    return {value for value in written + decoded if value}
