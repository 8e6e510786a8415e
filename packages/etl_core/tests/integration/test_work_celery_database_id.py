"""One PostgreSQL database reached by two names is one database to a unit's worker; two
databases of one server are still two (against the machine's PostgreSQL, reached over TCP
and over its Unix socket: two URLs that no spelling rule makes one)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from etl_core.config import DatabaseURL
from etl_core.runtime import RuntimeSettings
from etl_core.testing.fixtures import postgres_server_url
from etl_core.work.celery.database_id import database_id, forget_database_ids
from etl_core.work.celery.origin import (
    DATABASE_HEADER,
    DATABASE_ID_HEADER,
    ForeignUnitError,
    UnitOrigin,
    foreign_unit,
    origin_headers,
    unit_origin,
)
from etl_core.work.events import partition_unit

__all__ = ["postgres_server_url"]

pytestmark = pytest.mark.postgres

SOCKET_DIR = Path("/var/run/postgresql")
SECRET = "s3cr3t-pw"  # the server trusts this machine: any password is accepted
LOADS = partition_unit("pos", date(2026, 11, 1))


@pytest.fixture(autouse=True)
def _forgotten() -> Iterator[None]:
    """Each test learns its databases' ids itself."""
    forget_database_ids()
    yield
    forget_database_ids()


def _over_tcp(server_url: str, database: str) -> str:
    """The URL of ``database`` on the test server, as ``ETL_TEST_POSTGRES_URL`` reaches it,
    with a password."""
    parts = urlsplit(server_url)
    user = parts.username or "postgres"
    hostport = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{user}:{SECRET}@{hostport}", f"/{database}", "", ""))


def _over_socket(server_url: str, database: str) -> str:
    """The URL of ``database`` on the same server, reached by its Unix socket."""
    parts = urlsplit(server_url)
    if not (SOCKET_DIR / f".s.PGSQL.{parts.port or 5432}").exists():
        pytest.skip(f"PostgreSQL has no Unix socket in {SOCKET_DIR} on this machine")
    user = parts.username or "postgres"
    port = parts.port or 5432
    return f"postgres://{user}@/{database}?host={SOCKET_DIR}&port={port}&conn_max_age=0"


def _origin(url: str) -> UnitOrigin:
    return unit_origin(RuntimeSettings(storage_url="s3://lake/prod", database_url=DatabaseURL(url)))


def test_one_database_reached_by_two_names_is_one_database(postgres_server_url: str) -> None:
    # a command on the host reaching the stack's PostgreSQL by its published port, the
    # workers by the service's name: every partition was refused (ForeignUnitError)
    command = _origin(_over_socket(postgres_server_url, "test"))
    worker = _origin(_over_tcp(postgres_server_url, "test"))
    assert command.database != worker.database  # two names, no rule makes them one
    headers = origin_headers(command, LOADS)
    assert headers[DATABASE_ID_HEADER].endswith("/test")
    assert headers[DATABASE_ID_HEADER] == database_id(_over_tcp(postgres_server_url, "test"))
    assert foreign_unit(headers, worker, LOADS) is None


def test_two_databases_of_one_server_are_still_two_named_by_both(
    postgres_server_url: str,
) -> None:
    command = _origin(_over_socket(postgres_server_url, "postgres"))
    worker = _origin(_over_tcp(postgres_server_url, "test"))
    headers = origin_headers(command, LOADS)
    refused = foreign_unit(headers, worker, LOADS)
    assert isinstance(refused, ForeignUnitError)
    server = headers[DATABASE_ID_HEADER].removeprefix("postgresql:").partition("/")[0]
    assert f"(server {server}, database postgres)" in str(refused)
    assert f"is {worker.database} (server {server}, database test)" in str(refused)
    assert SECRET not in str(refused) + repr(headers) + repr(worker)


def test_a_unit_without_the_database_id_is_checked_by_its_url_as_before(
    postgres_server_url: str,
) -> None:
    worker = _origin(_over_tcp(postgres_server_url, "test"))
    other_name = {DATABASE_HEADER: _origin(_over_socket(postgres_server_url, "test")).database}
    assert foreign_unit(other_name, worker, LOADS) is not None  # an older sender's unit
    assert foreign_unit({DATABASE_HEADER: worker.database}, worker, LOADS) is None


def test_a_database_url_with_an_encoded_space_in_a_parameter_can_be_asked(
    postgres_server_url: str,
) -> None:
    # the platform decodes its URL's parameters (Django's OPTIONS): `options` with a
    # percent-encoded space is a valid setting; re-encoded for libpq, the space became a
    # `+` the server refused, so such a database was never asked which one it is
    url = f"{_over_tcp(postgres_server_url, 'test')}?options=-c%20statement_timeout%3D5000"
    assert database_id(url) == database_id(_over_tcp(postgres_server_url, "test"))


def test_a_database_url_in_any_spelling_the_platform_reads_can_be_asked(
    postgres_server_url: str,
) -> None:
    # an upper-case scheme (libpq reads only lower case) and a connect_timeout of its own
    # (given twice to libpq): valid platform settings whose database was never asked
    url = _over_tcp(postgres_server_url, "test")
    scheme, _, rest = url.partition("://")
    spelled = f"{scheme.upper()}://{rest}?connect_timeout=5&sslmode=disable"
    assert database_id(spelled) == database_id(url)


def test_a_database_whose_password_holds_an_unencoded_at_sign_can_be_asked(
    postgres_server_url: str,
) -> None:
    # the platform reads the user-info up to its last "@" (urlsplit); libpq, given the URL,
    # read a host "ssW0rd@127.0.0.1" and its error quoted it in the warning
    url = _over_tcp(postgres_server_url, "test")
    assert database_id(url.replace(SECRET, "p@ssW0rd")) == database_id(url)


def _asked_connection(
    monkeypatch: pytest.MonkeyPatch, url: str, timeout: float = 3
) -> tuple[dict[str, str], tuple[int, ...]]:
    """libpq's parameters and the socket's TCP options of the connection ``database_id``
    opens to ``url``, read as it is opened."""
    import socket

    import psycopg

    seen: list[tuple[dict[str, str], tuple[int, ...]]] = []
    connect = psycopg.Connection.connect

    def recording(conninfo: str = "", **kwargs: object) -> psycopg.Connection[object]:
        connection = connect(conninfo, **kwargs)  # type: ignore[arg-type]
        used = {o.keyword.decode(): (o.val or b"").decode() for o in connection.pgconn.info}
        with socket.socket(fileno=socket.dup(connection.pgconn.socket)) as sock:
            options = tuple(
                sock.getsockopt(level, name)
                for level, name in (
                    (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    (socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
                )
            )
        seen.append((used, options))
        return connection

    monkeypatch.setattr(psycopg, "connect", recording)
    assert database_id(url, timeout=timeout) is not None
    (answer,) = seen
    return answer


def test_the_database_id_question_gives_up_on_a_server_gone_silent_within_its_timeout(
    postgres_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The id is asked on a connection of its own, in a thread its caller stops waiting
    for after 3 s: without keepalives nor tcp_user_timeout, a server vanished under it left
    the thread (and every later asking, which waits for it) hung for hours: a worker's
    fresh look after a failover never got an answer. Its bounds follow its timeout; the
    URL's own keepalives do not lengthen them."""
    url = _over_tcp(postgres_server_url, "test")
    slow = f"{url}?keepalives=0&tcp_user_timeout=600000&keepalives_idle=7200"

    used, options = _asked_connection(monkeypatch, url)
    _, overridden = _asked_connection(monkeypatch, slow, timeout=5)

    assert (used["connect_timeout"], used["keepalives"], used["tcp_user_timeout"]) == (
        "3",
        "1",
        "3000",
    )
    assert options == (1, 3, 1, 3, 3000)
    assert overridden == (1, 5, 1, 3, 5000)


def test_a_multi_host_url_whose_first_host_refuses_is_asked_through_the_next(
    postgres_server_url: str,
) -> None:
    """Patroni, pgBouncer pairs: the id is the database the second host reaches."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    url = _over_tcp(postgres_server_url, "postgres")
    scheme, _, rest = url.partition("://")
    userinfo, _, tail = rest.partition("@")
    multi = f"{scheme}://{userinfo}@127.0.0.1:{closed},{tail}"

    assert database_id(multi) == database_id(url) is not None
