"""The database door of the platform's runtimes: connect once, then one unit of work at a time.

A runtime (a batch job, a long-running worker) opens the door with :func:`connect`, which
configures Django for the process and refuses a database that lacks migrations, then does
each unit of work inside :func:`models`. Around every outermost unit the door tidies the
thread's connections the way Django does between web requests
(``close_old_connections()``) and checks that a kept-open connection still answers, so a
worker survives a database restart or a connection the server (or a proxy) killed while
it was idle: the next unit simply connects again.

Inside a unit, Django and driver errors are translated into this package's errors:
:class:`~etl_database_schema.errors.DatabaseUnavailableError` when the database could not
be reached or the connection was lost (the unit may be retried),
:class:`~etl_database_schema.errors.DatabaseRefusedError` when it refused the operation,
and :class:`~etl_database_schema.errors.DatabaseLoginError` when the server refused the
URL's login (no such database or role, a wrong password: a settings mistake, not retried);
and :class:`~etl_database_schema.errors.DatabaseUrlError` when the driver cannot connect with
the URL's options (``?sslmode=requried``, TLS asked of a server without it): not retried either.

The migrations are checked once, at :func:`connect`; a database recreated or restored from
an older schema later (a deploy under way) is noticed by the unit that meets a table or
column it lacks: the migrations are checked again and, when some are missing, the unit
fails with :class:`~etl_database_schema.errors.SchemaBehindError` (an unavailable error:
retried; its message is :class:`~etl_database_schema.errors.MigrationsPendingError`'s).
A database this process reached once that the server no longer has (dropped) is
unavailable too, not a refused login: it was there, so the URL is not the mistake.

Messages show the URL with its password redacted. A caller with an error tree of its own
(a platform runtime) has them raised as its classes inside :func:`raising_as`.

Importing this module imports neither Django nor a driver.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType, ModuleType
from typing import Any, Protocol

from etl_database_schema.bootstrap import (
    INSTALLED_APPS,
    applied_migrations,
    migrate,
    pending_migrations,
    setup,
)
from etl_database_schema.database_url import (
    POSTGRESQL_DEFAULTS,
    door_defaults,
    redact_message,
    redact_url,
)
from etl_database_schema.errors import (
    DatabaseLoginError,
    DatabaseRefusedError,
    DatabaseUnavailableError,
    MigrationsPendingError,
    NotConnectedError,
    SchemaBehindError,
    SchemaError,
)
from etl_database_schema.refused_login import local_file_error, login_error, url_error

__all__ = [
    "LEDGER_APP",
    "RETAIL_APP",
    "CallerErrors",
    "check_login",
    "connect",
    "connected_url",
    "is_connected",
    "models",
    "raising_as",
]

LEDGER_APP = "etl_ledger"
"""App label of the operations ledger (runs, processed objects, backfills, freshness…)."""
RETAIL_APP = "etl_retail"
"""App label of the retail example's reference and curated tables."""

_lock = threading.Lock()
_connected: str | None = None
_migrated = False
_units = threading.local()
_reached: set[str] = set()
"""URLs this process logged in to (or its parent, before it forked this one): a database
of theirs the server no longer has was dropped under it (an outage), not mistyped."""
_found: set[str] = set()
"""URLs whose files on this machine (a SQLite file's directory, a service file's
section) this process (or its parent) found, whether or not the server answered then: a
worker started while its server was down found its service; the section missing a
moment later (the file rewritten in place) is an outage, not a mistyped service."""


class CallerErrors(Protocol):
    """A caller's own classes for the door's failures (a runtime's errors module has them).

    Each is called with the door error's message; the two configuration errors with the
    feature that needed the database first.
    """

    @property
    def DatabaseNotConfiguredError(self) -> Callable[[str], Exception]:  # noqa: N802
        """No database URL: called with the feature."""

    @property
    def DatabaseNotReadyError(self) -> Callable[[str, str], Exception]:  # noqa: N802
        """Not usable as configured (bad URL, lacks migrations): feature and problem."""

    @property
    def DatabaseUnavailableError(self) -> Callable[[str], Exception]:  # noqa: N802
        """Unreachable, or the connection was lost (retry)."""

    @property
    def DatabaseRefusedError(self) -> Callable[[str], Exception]:  # noqa: N802
        """The database refused the operation."""


def connect(
    database_url: str | None, *, require_migrated: bool = True, apply_migrations: bool = False
) -> None:
    """Open the door to ``database_url`` for this process.

    Configures Django (:func:`~etl_database_schema.setup`) and checks that every schema
    migration is applied. Calling it again for the same database is cheap: the check is
    made once per process.

    Args:
        database_url: ``postgresql://…`` or ``sqlite:///…``; ``None`` or empty when the
            caller has none configured (refused with :class:`NotConnectedError`).
        require_migrated: Refuse a database that lacks migrations (the default); a caller
            about to inspect or migrate the database itself passes ``False``.
        apply_migrations: Apply pending migrations instead of refusing them (embedded
            SQLite databases, tests); concurrent callers apply each migration once.

    Raises:
        NotConnectedError: No URL was given.
        DatabaseUrlError: The URL cannot be parsed, or the driver cannot connect with it
            (an option it does not know or a value it refuses, TLS the server lacks).
        SetupConflictError: Django is already set up for another database in this process.
        DatabaseUnavailableError: The database could not be reached.
        DatabaseLoginError: The server refused the URL's database, role or password.
        MigrationsPendingError: The database lacks migrations (run ``etl-schema migrate``).
    """
    global _connected, _migrated
    if not database_url:
        raise NotConnectedError("no database URL is configured")
    check = require_migrated or apply_migrations
    with _lock:
        if _connected == database_url and (_migrated or not check):
            return
        setup(database_url)
        if check:
            with _unit(database_url, recheck=False):  # its own check: nothing to re-check
                if apply_migrations:
                    migrate()
                pending = pending_migrations()
                applied = len(applied_migrations()) if pending else 0
            _reached.add(database_url)
            if pending:
                raise MigrationsPendingError(redact_url(database_url), pending, applied=applied)
        _connected, _migrated = database_url, check


CHECK_LOGIN_TIMEOUT = int(POSTGRESQL_DEFAULTS["connect_timeout"])
"""Seconds :func:`check_login` waits for the server to answer (libpq's
``connect_timeout``), unless the URL sets its own, or libpq is told one below the URL
(``PGCONNECT_TIMEOUT``, the service's section), as the door's connections: a host
that never answers is an outage said then, not a process held for as long as the
kernel keeps trying. The door's own connections wait as long
(:data:`~etl_database_schema.database_url.POSTGRESQL_DEFAULTS`)."""


def check_login(
    database_url: str | None,
    *,
    timeout: int = CHECK_LOGIN_TIMEOUT,
    require_migrated: bool = False,
    store: str | None = None,
) -> None:
    """Log in to ``database_url`` once, then close the connection: what a long-running
    process (a worker, before it forks its processes) checks as it starts, so a URL the
    server refuses is found then, not by every unit it takes.

    With ``store`` (the deployment's store identity), the ledger is also checked for rows
    of other stores (:func:`~etl_database_schema.ledger.queries.warn_other_stores`), here,
    once: the processes forked after it inherit that it was, so a worker of concurrency N
    says it once, not once per process (nor again for each process that replaces one).
    The door is left as it was and no connection stays open.

    The door is not opened (:func:`connect` does that in each process that uses it) and
    no connection is left open to be shared by forked processes. With
    ``require_migrated`` the migrations are checked on that connection too, so a worker
    started before ``etl-schema migrate`` stops then instead of failing every unit it
    takes. A SQLite URL has no login and a missing file is not created (no migration
    applied: all pending); an in-memory one is not checked (each process has its own).
    The server is given ``timeout`` seconds to answer, unless the URL sets
    ``connect_timeout`` or libpq is told one below it (``PGCONNECT_TIMEOUT``, the
    service's section: the door's own rule, ``database_url.POSTGRESQL_DEFAULTS``).

    Raises:
        NotConnectedError: No URL was given.
        DatabaseUrlError: The URL cannot be parsed, or the driver cannot connect with it
            (an option it does not know or a value it refuses, TLS the server lacks).
        SetupConflictError: Django is already set up for another database in this process.
        DatabaseLoginError: The server refused the URL's database, role or password.
        DatabaseUnavailableError: The database could not be reached (an outage: it may
            answer later).
        MigrationsPendingError: With ``require_migrated``, the database lacks migrations
            (run ``etl-schema migrate``).
    """
    if not database_url:
        raise NotConnectedError("no database URL is configured")
    _check_login(database_url, timeout=timeout, require_migrated=require_migrated)
    if store is not None:
        _warn_other_stores_here(database_url, store)


def _warn_other_stores_here(database_url: str, store: str) -> None:
    """:func:`~etl_database_schema.ledger.queries.warn_other_stores` in this process, the
    door opened for it and put back as it was after (closed, in a worker about to fork),
    its connections closed: a forked process must not share one."""
    global _connected, _migrated
    from django.db import connections

    from etl_database_schema.ledger.queries import warn_other_stores

    with _lock:
        before = _connected, _migrated
    try:
        connect(database_url)
        warn_other_stores(store)
    finally:
        connections.close_all()
        with _lock:
            _connected, _migrated = before


def _check_login(database_url: str, *, timeout: int, require_migrated: bool) -> None:
    """:func:`check_login`'s login and migration check."""
    setup(database_url)
    from django.db import connections

    connection = connections["default"]
    if connection.vendor == "sqlite":
        if require_migrated and not connection.is_in_memory_db():
            _check_sqlite_migrations(database_url, connection)
        return
    options = connection.settings_dict["OPTIONS"]
    default = options.get("connect_timeout")
    # The door's rule: its own default only, not the URL's, PGCONNECT_TIMEOUT's or the
    # service section's value (database_url.door_defaults).
    bounded = "connect_timeout" in door_defaults(database_url)
    if bounded:  # this login only: the door's own connections keep theirs
        options["connect_timeout"] = str(max(2, timeout))  # libpq's least
    pending: list[str] = []
    applied = 0
    with _translated(database_url, recheck=False):
        try:
            connection.ensure_connection()
            _reached.add(database_url)
            if require_migrated:
                pending = pending_migrations(connection=connection)
                applied = len(applied_migrations(connection=connection)) if pending else 0
        finally:
            connection.close()
            if bounded:
                options["connect_timeout"] = default
    if pending:
        raise MigrationsPendingError(redact_url(database_url), pending, applied=applied)


def _check_sqlite_migrations(database_url: str, connection: Any) -> None:
    """:func:`check_login`'s migration check of a SQLite file, which a connection to a
    missing file would create: a missing one lacks every migration."""
    from pathlib import Path

    from django.db.migrations.loader import MigrationLoader

    if Path(connection.settings_dict["NAME"]).exists():
        with _translated(database_url, recheck=False):
            try:
                pending = pending_migrations(connection=connection)
                applied = len(applied_migrations(connection=connection)) if pending else 0
            finally:
                connection.close()
        # reached, as a server's login is: a process forked after this check that finds
        # the file's directory gone (a volume unmounted) meets an outage, not a URL mistake
        _reached.add(database_url)
    elif not Path(connection.settings_dict["NAME"]).parent.is_dir():
        # what SQLite says of a file in a missing directory (it creates neither), told as
        # a connection would be: the URL's mistake, or an outage once this process reached it
        from django.db import OperationalError

        with _translated(database_url, recheck=False):
            raise OperationalError("unable to open database file")
    else:
        graph = MigrationLoader(None, ignore_no_migrations=True).graph
        pending = []
        for leaf in sorted(graph.leaf_nodes()):
            pending += [
                f"{a}.{n}" for a, n in graph.forwards_plan(leaf) if f"{a}.{n}" not in pending
            ]
        applied = 0
    if pending:
        raise MigrationsPendingError(redact_url(database_url), pending, applied=applied)


def is_connected() -> bool:
    """Whether :func:`connect` has opened the door in this process."""
    return _connected is not None


def connected_url() -> str | None:
    """The URL the door is open to, password redacted (for messages); ``None`` when closed."""
    return None if _connected is None else redact_url(_connected)


@contextmanager
def models(app_label: str) -> Iterator[Mapping[str, Any]]:
    """One unit of work with the model classes of an app, by class name.

    ``with models(LEDGER_APP) as ledger: ledger["PipelineRun"].objects…``. Units nest: only
    the outermost one tidies the thread's connections, before and after; a unit entered
    inside a transaction leaves the connection alone.

    Raises:
        NotConnectedError: :func:`connect` has not been called in this process.
        SchemaError: No app has this label.
        DatabaseUnavailableError: The database could not be reached, or the connection was
            lost during the unit (retry the unit).
        DatabaseRefusedError: The database refused an operation of the unit.
    """
    url = _connected
    if url is None:
        raise NotConnectedError("the database door is not open: call connect(database_url) first")
    from django.apps import apps

    try:
        config = apps.get_app_config(app_label)
    except LookupError:
        labels = ", ".join(label.rsplit(".", 1)[-1] for label in INSTALLED_APPS)
        raise SchemaError(f"no app is labelled {app_label!r} (apps: {labels})") from None
    with _unit(url):
        yield MappingProxyType({model.__name__: model for model in config.get_models()})


@contextmanager
def raising_as(errors: CallerErrors, feature: str) -> Iterator[ModuleType]:
    """Raise the door's errors inside the block as the caller's classes (``raise … from``).

    ``with raising_as(my_errors, "curated loads") as schema:`` yields this package. A door
    that is not open becomes ``DatabaseNotConfiguredError(feature)``; unavailable and
    refused become their namesakes (with the message; a :class:`SchemaBehindError`'s
    ``retry_after`` is kept, for the caller's retry policy to honour); any other error of
    this package (lacking migrations, a bad URL, a login the server refused, another
    database in use) ``DatabaseNotReadyError``: a settings mistake (exit code 2 for a
    platform runtime).
    """
    import etl_database_schema

    try:
        yield etl_database_schema
    except NotConnectedError as exc:
        raise errors.DatabaseNotConfiguredError(feature) from exc
    except DatabaseUnavailableError as exc:
        unavailable = errors.DatabaseUnavailableError(str(exc))
        wait = getattr(exc, "retry_after", None)  # a schema behind: a migration's time
        if wait is not None:
            unavailable.retry_after = wait  # type: ignore[attr-defined]
        raise unavailable from exc
    except DatabaseRefusedError as exc:
        raise errors.DatabaseRefusedError(str(exc)) from exc
    except SchemaError as exc:
        raise errors.DatabaseNotReadyError(feature, str(exc)) from exc


@contextmanager
def _unit(url: str, *, recheck: bool = True) -> Iterator[None]:
    """Tidy connections around the outermost unit of this thread; translate errors inside
    (``recheck``: see :func:`_translated`)."""
    depth: int = getattr(_units, "depth", 0)
    _units.depth = depth + 1
    try:
        with _translated(url, recheck=recheck):
            if depth == 0:
                _tidy(check_health=True)
            yield
    finally:
        _units.depth = depth
        if depth == 0:
            _tidy(check_health=False)


def _tidy(*, check_health: bool) -> None:
    """Close broken or expired connections; with ``check_health``, also silent dead ones.

    ``close_old_connections()`` only notices a dead connection after an error on it, so a
    connection kept open (``conn_max_age``) that the server killed while idle is probed
    (``SELECT 1`` on PostgreSQL) and closed; the unit then opens a fresh one.
    """
    from django.db import close_old_connections, connections

    opened = connections.all(initialized_only=True)
    if any(connection.in_atomic_block for connection in opened):
        return  # inside a caller's transaction: closing would lose it
    close_old_connections()
    if check_health:
        for connection in opened:
            if connection.connection is not None and not connection.is_usable():
                connection.close()


@contextmanager
def _translated(url: str, *, recheck: bool = True) -> Iterator[None]:
    """Django and driver errors raised as the door's unavailable / refused errors (a full
    disk is refused: an operational error, but not one another attempt fixes).

    A missing table or column has the migrations checked again with ``recheck`` (a unit);
    without it (:func:`connect`'s own check, or the migrations it applies) it is refused:
    a migration that fails on one is broken, not behind."""
    from django.db import Error, InterfaceError, OperationalError

    shown = redact_url(url)
    # psycopg's own errors escape Django's wrappers where a caller uses the driver directly
    # (COPY); they can only occur once the driver is loaded.
    driver = sys.modules.get("psycopg")
    lost: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
    refused: tuple[type[BaseException], ...] = (Error,)
    if driver is not None:
        lost += (driver.OperationalError, driver.InterfaceError)
        refused += (driver.Error,)
    try:
        yield
    except refused as exc:
        wrong_url = url_error(exc, url)
        if wrong_url is None:  # libpq read the service, SQLite's directory was there
            _found.add(url)
        found = url in _reached or url in _found
        if wrong_url is not None and found and local_file_error(exc, url):
            raise DatabaseUnavailableError(
                f"database {shown} is unavailable: a file on this machine it was reached "
                "through is not there now (the SQLite file's directory, the service file's "
                "section: a volume unmounted, a file being rewritten?); a unit tried again "
                f"once it is back succeeds ({_one_line(exc, url)})",
                url=shown,
            ) from exc
        if wrong_url is not None:  # the URL's options or TLS: no retry changes them
            raise wrong_url from exc
        met = _undefined(exc)
        if met is not None:  # a table or column it lacks: a deploy under way, or our SQL
            raise _schema_behind(exc, url, met, recheck=recheck) from exc
        if not isinstance(exc, lost):
            detail = _one_line(exc, url)
            raise DatabaseRefusedError(
                f"database {shown} refused the operation: {detail}", url=shown
            ) from exc
        refused_login = login_error(exc, url)
        if refused_login is not None and _vanished(refused_login, url):
            raise DatabaseUnavailableError(
                f"database {shown} is unavailable: it no longer exists on the server, which "
                "had it when this process reached it (dropped, or being recreated by a "
                "deploy?); a unit tried again once it is back succeeds. If it was removed for "
                "good, create it and run `etl-schema migrate`, or correct the URL "
                f"(server said: {_one_line(exc, url)})",
                url=shown,
            ) from exc
        if refused_login is not None:  # a wrong URL, not an outage: never retried
            raise refused_login from exc
        detail = _one_line(exc, url)
        if _is_full(exc):
            raise DatabaseRefusedError(
                f"database {shown} is out of disk space: {detail}; free space on its disk "
                "(or raise its quota), then run again",
                url=shown,
            ) from exc
        raise DatabaseUnavailableError(
            f"database {shown} is unavailable: {detail}", url=shown
        ) from exc


_UNDEFINED_SQLSTATES = frozenset({"42P01", "42703"})
"""PostgreSQL's ``undefined_table`` and ``undefined_column``."""
_SQLITE_UNDEFINED = re.compile(r"no such (table|column): |table .+ has no column named ")
"""SQLite's words for a missing table or column (an INSERT or UPDATE naming a column the
table lacks says ``table … has no column named …``), at the start of its message."""


def _undefined(error: BaseException) -> str | None:
    """The driver's first line when ``error`` is a table or column the database lacks
    (PostgreSQL's SQLSTATE, SQLite's message as SQLite starts it), else ``None``."""
    import sqlite3

    for cause in (error, error.__cause__):
        if getattr(cause, "sqlstate", None) in _UNDEFINED_SQLSTATES or (
            isinstance(cause, sqlite3.OperationalError) and _SQLITE_UNDEFINED.match(str(cause))
        ):
            return str(cause).strip().splitlines()[0]
    return None


def _schema_behind(error: BaseException, url: str, met: str, *, recheck: bool) -> SchemaError:
    """What a unit that met a table or column the database lacks (``met``) is told, once
    the migrations are checked again: :class:`SchemaBehindError` when some are missing (a
    deploy under way: retried); :class:`DatabaseRefusedError` when none is (a table
    dropped by hand, a bug in the unit's SQL: never retried, on either backend), the
    database is in memory (it cannot have been recreated under this process), or not
    ``recheck`` (a migration :func:`connect` applies failed on it);
    :class:`DatabaseUnavailableError` when the check cannot reach the database (out of
    connection slots, the database going away again mid-deploy: retried, bounded).

    The check runs on a connection of its own: the unit's may be inside an aborted
    transaction.
    """
    import sqlite3

    from django.db import DEFAULT_DB_ALIAS, Error, InterfaceError, OperationalError, connections

    shown = redact_url(url)
    refused = DatabaseRefusedError(
        f"database {shown} refused the operation: {_one_line(error, url)}", url=shown
    )
    unit = connections[DEFAULT_DB_ALIAS]
    if not recheck or (unit.vendor == "sqlite" and unit.is_in_memory_db()):
        return refused
    driver = sys.modules.get("psycopg")
    failed: tuple[type[BaseException], ...] = (Error, sqlite3.Error)
    lost: tuple[type[BaseException], ...] = (
        OperationalError,
        InterfaceError,
        sqlite3.OperationalError,
    )
    if driver is not None:
        failed += (driver.Error,)
        lost += (driver.OperationalError, driver.InterfaceError)
    own = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        pending = pending_migrations(connection=own)
        applied = len(applied_migrations(connection=own)) if pending else 0
    except lost as check:
        return DatabaseUnavailableError(
            f"database {shown} is unavailable: a unit met {met!r} and the door could not "
            f"check its migrations again ({_one_line(check, url)}); a unit tried again once "
            "the database answers is told whether `etl-schema migrate` is needed",
            url=shown,
        )
    except failed:
        return refused  # the unit's own error says what happened
    finally:
        own.close()
    if not pending:
        return refused
    return SchemaBehindError(shown, pending, applied=applied, met=met)


def _vanished(refused: DatabaseLoginError, url: str) -> bool:
    """Whether the server refused ``url`` for naming a database it no longer has although
    this process (or its parent) reached it: dropped under a running process."""
    return refused.reason == "invalid_catalog_name" and url in _reached


_DISK_FULL_SQLSTATE = "53100"
"""PostgreSQL's ``disk_full`` (a full disk or quota on the server)."""


def _is_full(error: BaseException) -> bool:
    """Whether the driver error behind ``error`` (Django wraps it) says the database's
    disk is full: PostgreSQL's ``disk_full``, SQLite's ``SQLITE_FULL``. An operational
    error, but not one to retry: another attempt within the run finds the same disk."""
    import sqlite3

    for cause in (error, error.__cause__):
        if getattr(cause, "sqlstate", None) == _DISK_FULL_SQLSTATE:
            return True
        if getattr(cause, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
    return False


def _one_line(error: BaseException, url: str) -> str:
    """A driver's (often multi-line) message on one line, without the URL's password."""
    return redact_message(" ".join(str(error).split()), url)
