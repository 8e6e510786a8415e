"""Learning which database a URL reaches never holds its caller past the timeout (a host
name whose resolution does not answer), nor shows a secret of the URL, whatever its
spelling; an in-memory database has no id. No server here."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from etl_core.work.celery import database_id

HANGING_HOST = "db.hangs.invalid"


@pytest.fixture
def hanging_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """``HANGING_HOST`` resolves only once the event is set (a DNS server that does not
    answer), within 12 s at most; other names as usual."""
    pytest.importorskip("psycopg")
    answered = threading.Event()
    resolve = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host == HANGING_HOST:
            answered.wait(12)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)  # type: ignore[arg-type]

    database_id.forget_database_ids()
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield answered
    answered.set()
    database_id.forget_database_ids()


def test_a_database_whose_host_name_does_not_resolve_holds_its_caller_no_longer_than_the_timeout(
    hanging_dns: threading.Event, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # psycopg's connect_timeout bounds each connection attempt, not the resolution of the
    # host name before them: a sender (or a worker child) waited as long as the resolver
    monkeypatch.setattr(database_id, "DATABASE_ID_TIMEOUT", 1)
    url = f"postgresql://etl:pw@{HANGING_HOST}/etl"
    started = time.monotonic()
    with caplog.at_level("WARNING"):
        learned = database_id.learned_database_id(url, again=True)
        again = database_id.learned_database_id(url, again=True)
    waited = time.monotonic() - started
    assert (learned, again) == (None, None)
    assert waited < 8, f"waited {waited:.1f} s for an answer bounded at 1 s, twice"
    assert "no answer within 1 s" in caplog.text
    assert [t.name for t in threading.enumerate()].count("etl-database-id") == 1  # asked once


def test_an_in_memory_sqlite_database_has_no_id() -> None:
    # each process's in-memory database is its own: no id names two of them as one
    for url in ("sqlite:///:memory:", "sqlite:///:memory:?timeout=5", "sqlite://"):
        assert database_id.database_id(url) is None, url
    assert database_id.database_id("sqlite:////srv/etl/etl.sqlite3") == (
        "sqlite:////srv/etl/etl.sqlite3"
    )


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://etl:p%40ss%zz@127.0.0.1/etl", "p%40ss"),  # one escape libpq cannot read
        ("postgresql://etl:p%40ss%zz@127.0.0.1/etl", "p@ss"),
        ("postgresql://etl@127.0.0.1/etl?password=p%40ss%zz", "p%40ss"),
        ("POSTGRESQL://etl:pa%ss@127.0.0.1/etl?sslpassword=k3y-pass", "pa%ss"),
        # unencoded in the password (the platform reads the first): its remains were quoted
        ("postgresql://etl:p@ssW0rd@127.0.0.1:1/etl", "ssW0rd"),
        ("postgresql://etl:pa/ssW0rd@127.0.0.1/etl", "ssW0rd"),
        ("postgresql://etl:pa?ssW0rd@127.0.0.1/etl", "ssW0rd"),
    ],
)
def test_a_database_url_that_cannot_be_read_leaves_no_secret_in_the_warning(
    url: str, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("psycopg")
    database_id.forget_database_ids()
    with caplog.at_level("WARNING"):
        assert database_id.learned_database_id(url, again=False) is None
    assert "could not ask the database" in caplog.text
    assert secret not in caplog.text
    assert "k3y-pass" not in caplog.text


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("postgresql://etl:pw@db1:5432,db2:6432/w", "db1,db2", "5432,6432"),
        ("postgresql://etl@db1,db2/w", "db1,db2", None),
        ("postgresql://etl@db1:5433,[::1]/w", "db1,::1", "5433,"),
        ("postgresql://etl@/w?host=db1,db2&port=5432", "db1,db2", "5432"),
    ],
)
def test_a_multi_host_url_is_asked_through_each_of_its_hosts_as_libpq_lists_them(
    url: str, host: str, port: str | None
) -> None:
    parameters = database_id._connection_parameters(url)

    assert (parameters.get("host"), parameters.get("port"), parameters["dbname"]) == (
        host,
        port,
        "w",
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://etl:s3cret@db1,,db2/w", "host 2 of 3 is empty"),
        ("postgresql://etl:s3cret@db1:x,db2/w", "port of host 1 is not a number"),
    ],
)
def test_a_mistyped_multi_host_url_is_not_asked_and_says_which_host(url: str, said: str) -> None:
    with pytest.raises(ValueError, match=said) as caught:
        database_id._connection_parameters(url)

    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://etl:pW0rd%zz@db/etl?application_name=a@b",  # an '@' in a query value
        "postgresql://etl:pW0rd/%zz@db/etl",  # an unencoded '/' in the password
    ],
)
def test_an_error_quoting_the_password_is_masked_whichever_at_ends_the_user_info(url: str) -> None:
    """The user-info ends at the last '@' for display (over-masking an '@' in the query),
    so the password masked in a driver's error is either reading's."""
    password = "pW0rd/%zz" if "/%zz@" in url else "pW0rd%zz"
    said = database_id._first_line(ValueError(f'invalid token in password "{password}"'), url)

    assert "pW0rd" not in said
