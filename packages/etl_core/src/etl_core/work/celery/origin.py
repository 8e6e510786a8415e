"""Which store (and database) a unit was made for, carried in its message's headers.

A unit names its work by keys relative to a store (``landing/pos/…``, ``pos/2026-11-01``),
so a unit run against another store than its sender's does other work or none: a caller
on a local store whose workers run on another directory or an S3 bucket saw "0
validated", then waited. So every unit a process sends carries, in the headers of its
message, the store its sender runs on (``etl_store``: the canonical store URL, which holds
no credentials) and, for a unit that loads into a database, that database
(``etl_database``: its URL without the password) and, when the sender could ask it, what
that database's server says it is (``etl_database_id``: :mod:`.database_id`), so one
database reached by two names (``127.0.0.1:15432`` from a host, ``postgres:5432`` inside a
compose stack) is one database. A worker whose own store or database differs refuses the
unit with :class:`ForeignUnitError` (never retried: no retry makes the stores agree),
naming both. A worker compares the databases' ids when the unit carries one and it knows
its own, else their URLs. A message without these headers (a producer of another
language, docs/events.md) is run as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from etl_core.errors import FatalError
from etl_core.work.celery.database_id import (
    describe_database_id,
    learned_database_id,
    postgresql_hosts,
)
from etl_core.work.events import DATA_PIPELINE, PARTITION
from etl_core.work.unit import WorkUnit

if TYPE_CHECKING:
    from etl_core.runtime import RuntimeSettings

__all__ = [
    "DATABASE_HEADER",
    "DATABASE_ID_HEADER",
    "ORIGIN_SETTING",
    "STORE_HEADER",
    "ForeignUnitError",
    "UnitOrigin",
    "app_origin",
    "database_identity",
    "foreign_unit",
    "loads_to_database",
    "origin_headers",
    "store_only",
    "unit_origin",
]

STORE_HEADER = "etl_store"
"""The message header naming the store a unit was made for (its canonical URL)."""
DATABASE_HEADER = "etl_database"
"""The message header naming the database a unit loads into (its URL, no password)."""
DATABASE_ID_HEADER = "etl_database_id"
"""The message header naming that database by what its server says of itself
(:func:`~etl_core.work.celery.database_id.database_id`); sent when the sender could ask."""
ORIGIN_SETTING = "etl_unit_origin"
"""The key of a lane's Celery configuration holding its process's :class:`UnitOrigin`."""

_SECRET_QUERY = frozenset({"password", "passfile", "sslpassword"})
"""Query parameters of a database URL that hold or point at a secret: never sent."""


class ForeignUnitError(FatalError):
    """A unit made for another store or database than this worker's: refused, never run.

    Attributes:
        unit_id: The unit's id.
        field: ``storage_url`` or ``database_url``: the setting that differs.
        sent_for: The store or database the unit was made for (no credentials).
        worker_has: This worker's (no credentials), or ``None`` when it has none.
        sent_id: The id of the database the unit was made for (``etl_database_id``), if sent.
        worker_id: The id of this worker's database, if it could learn it.
    """

    def __init__(
        self,
        unit_id: str,
        field: str,
        sent_for: str,
        worker_has: str | None,
        *,
        sent_id: str | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.unit_id = unit_id
        self.field = field
        self.sent_for = sent_for
        self.worker_has = worker_has
        self.sent_id = sent_id
        self.worker_id = worker_id
        what = "store" if field == "storage_url" else "database"
        mine = (
            f"this worker's {what} is {_with_id(worker_has, worker_id)}"
            if worker_has
            else f"it has no {field}"
        )
        if worker_has and sent_id and not worker_id:
            mine += " (it could not ask its database which one it is, so the URLs were compared)"
        super().__init__(
            f"work unit {unit_id} was made for the {what} {_with_id(sent_for, sent_id)} "
            f"({field} of its sender), "
            f"but {mine}: refused, not run. Give the workers and the command the same "
            f"{field}, then run the command again (or move the message back from the "
            "dead-letter queue)"
        )


def _with_id(name: str, database_id: str | None) -> str:
    """``postgresql://postgres:5432/etl (server 7716…, database etl)``: a database by both."""
    return f"{name} ({describe_database_id(database_id)})" if database_id else name


@dataclass(frozen=True)
class UnitOrigin:
    """The store and database of this process, as units it sends name them (no secrets).

    ``database_url``, the database's URL as configured (its password too: never shown,
    never sent), is what this process asks which database it is
    (:meth:`database_id`)."""

    store: str | None
    database: str | None
    database_url: str | None = field(default=None, repr=False, compare=False)

    def database_id(self, *, again: bool, fresh: bool = False) -> str | None:
        """What this process's database says it is, learned once (``None``: it has none,
        or could not be asked; :func:`~etl_core.work.celery.database_id.learned_database_id`
        says what ``again`` and ``fresh`` do)."""
        if self.database is None or self.database_url is None:
            return None
        return learned_database_id(self.database_url, again=again, fresh=fresh)


def app_origin(app: Any) -> UnitOrigin | None:
    """The :class:`UnitOrigin` :func:`~etl_core.work.celery.celery_app` gave ``app``."""
    origin = app.conf.get(ORIGIN_SETTING)
    return origin if isinstance(origin, UnitOrigin) else None


def store_only(app: Any) -> Any:
    """``app``, its units naming only their store (:data:`STORE_HEADER`), never a database:
    the sender of a chained unit, a worker of one lane enqueuing another lane's (the file
    lane a validated partition's transform). Where that unit loads is the other lane's own
    ``database_url``, which the sender neither knows nor needs (it may have none, or its
    own for its runs): a pipeline worker refused every chained partition of a file-lane
    worker whose database was not its own. The store is what both lanes must share: the
    unit's keys name its objects."""
    origin = app_origin(app)
    if origin is not None:
        app.conf.update({ORIGIN_SETTING: UnitOrigin(origin.store, None)})
    return app


def unit_origin(settings: RuntimeSettings) -> UnitOrigin:
    """The store and database of ``settings``, as :data:`STORE_HEADER` and
    :data:`DATABASE_HEADER` carry them (a store URL that does not parse: none, the store
    itself refuses it when opened). A local store is named by its real path: a symlinked
    directory and its target are one store."""
    from etl_core.storage.url import store_identity

    url = settings.database_url
    return UnitOrigin(
        store_identity(str(settings.storage_url)),
        database_identity(str(url)) if url is not None else None,
        url,
    )


_POSTGRESQL_SCHEMES = frozenset({"postgresql", "postgres"})
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_DEFAULT_PORT = "5432"


def database_identity(url: str) -> str:
    """What tells the database of ``url`` apart from another, and may travel on a broker:
    no password, and one spelling for one database, so that two processes on the same one
    never refuse each other's units. PostgreSQL: ``postgresql://host:port/dbname`` (either
    scheme, the host in lower case, a loopback name as ``localhost``, the default port
    written, ``host``/``port``/``dbname`` query parameters applied; the user and the
    connection options, ``sslmode``, ``application_name``…, name no other database; a URL
    naming no database names ``PGSERVICE``'s service, else ``PGDATABASE``'s database, as
    libpq and the schema package read it).
    SQLite: the file's real path (a relative one against the working directory, as the
    schema package reads it). Taken apart by hand: ``urlsplit`` would turn
    ``sqlite:////abs/path`` into another path."""
    scheme, separator, rest = url.strip().partition("://")
    scheme = scheme.lower()
    authority, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    if scheme in _POSTGRESQL_SCHEMES:
        return _postgresql_identity(authority, path, options)
    if scheme == "sqlite" and path and unquote(path) != ":memory:" and not authority:
        return f"sqlite:///{quote(os.path.realpath(unquote(path)))}"
    kept = [(k, v) for k, v in sorted(options.items()) if k.lower() not in _SECRET_QUERY]
    text = urlencode(kept)
    return f"{scheme}{separator}{authority}/{path}{'?' if text else ''}{text}".rstrip("/")


def _postgresql_identity(authority: str, path: str, options: dict[str, str]) -> str:
    """``postgresql://host:port/dbname`` of a PostgreSQL URL taken apart; libpq's list of
    hosts (``db1:5432,db2:5432``) as ``host:port,host:port``, in its order (the order
    libpq tries them in: another order is another first server)."""
    hostports = authority.rpartition("@")[2]
    try:
        hosts = postgresql_hosts(hostports)
    except ValueError:  # refused where it is connected to; named here as written
        host, _, port = hostports.partition(":")
        hosts = [(host, port)]
    names = [host for host, _ in hosts] or [""]
    if "host" in options:
        names = options["host"].split(",")
    elif len(names) == 1 and "," in names[0]:  # `db1%2Cdb2`: libpq decodes, then splits
        names = names[0].split(",")
    ports = [port for _, port in hosts] or [""]
    if "port" in options:
        ports = options["port"].split(",")
    if len(ports) == 1:  # one port for every host (libpq's rule)
        ports *= len(names)
    listed = ",".join(
        f"{_host_text(host)}:{port or _DEFAULT_PORT}"
        for host, port in zip_longest(names, ports, fillvalue="")
    )
    name = unquote(options.get("dbname", path.rstrip("/")))
    service = options.get("service")
    if not name and not service:  # the database libpq reaches, as the schema package reads it
        service = os.environ.get("PGSERVICE") or None
        name = "" if service else os.environ.get("PGDATABASE", "")
    suffix = f"?{urlencode({'service': service})}" if service else ""
    return f"postgresql://{listed}/{quote(name)}{suffix}"


def _host_text(host: str) -> str:
    """One host as :func:`database_identity` spells it: lower case, a loopback name as
    ``localhost``, an IPv6 address in brackets, a socket's ``/dir`` percent-encoded."""
    host = unquote(host).lower()
    if host in _LOOPBACK:
        host = "localhost"
    return f"[{host}]" if ":" in host else quote(host, safe="")


def loads_to_database(unit: WorkUnit) -> bool:
    """Whether ``unit`` loads into a database: a pipeline partition whose ``load`` is on."""
    if unit.lane != DATA_PIPELINE or unit.kind != PARTITION:
        return False
    return unit.params.get("load", True) is True


def origin_headers(origin: UnitOrigin | None, unit: WorkUnit) -> dict[str, str]:
    """The headers of ``unit``'s message sent from a process of ``origin``: its database's
    id too, asked of the database on the first unit that loads (a database that does not
    answer: one warning, the unit sent without it, named by its URL as before)."""
    if origin is None:
        return {}
    headers = {}
    if origin.store is not None:
        headers[STORE_HEADER] = origin.store
    if origin.database is not None and loads_to_database(unit):
        headers[DATABASE_HEADER] = origin.database
        database_id = origin.database_id(again=False)
        if database_id is not None:
            headers[DATABASE_ID_HEADER] = database_id
    return headers


def foreign_unit(
    headers: Mapping[str, object], origin: UnitOrigin | None, unit: WorkUnit
) -> ForeignUnitError | None:
    """Why a worker of ``origin`` refuses ``unit`` sent with ``headers``, if it does: the
    store the unit was made for is not the worker's, or the database it loads into (by
    the databases' ids when the unit carries one and this worker can learn its own, asked
    of its database once; else by their URLs)."""
    from etl_core.storage.url import store_identity

    if origin is None:
        return None
    store = headers.get(STORE_HEADER)
    # read as this version writes them: another producer's spelling (docs/events.md), or an
    # older platform's (the user in etl_database) during a rolling upgrade, is no refusal
    if isinstance(store, str) and (store_identity(store) or store) != origin.store:
        return ForeignUnitError(unit.id, "storage_url", store, origin.store)
    database = headers.get(DATABASE_HEADER)
    if not isinstance(database, str) or not loads_to_database(unit):
        return None
    sent_id = headers.get(DATABASE_ID_HEADER)
    sent_id = sent_id if isinstance(sent_id, str) and sent_id else None
    own_id = origin.database_id(again=True) if sent_id is not None else None
    if own_id is not None and own_id != sent_id:
        # its database may have been replaced under its URL since it learned the id (a
        # volume recreated, a restore into a new cluster): asked again before refusing
        own_id = origin.database_id(again=True, fresh=True)
    if own_id is not None:
        same = sent_id == own_id
    else:
        same = database_identity(database) == origin.database
    if same:
        return None
    return ForeignUnitError(
        unit.id, "database_url", database, origin.database, sent_id=sent_id, worker_id=own_id
    )
