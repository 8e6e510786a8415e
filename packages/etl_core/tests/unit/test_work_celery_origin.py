"""A unit names the store (and the database it loads into) it was made for, never a secret,
and a worker of another store or database refuses it naming both."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from etl_core.config import DatabaseURL
from etl_core.runtime import RuntimeSettings
from etl_core.work import WorkUnit
from etl_core.work.celery.origin import (
    DATABASE_HEADER,
    DATABASE_ID_HEADER,
    STORE_HEADER,
    ForeignUnitError,
    UnitOrigin,
    database_identity,
    foreign_unit,
    origin_headers,
    unit_origin,
)
from etl_core.work.events import landing_object_unit, partition_unit

SECRET = "s3cr3t-pw"
LOADS = partition_unit("pos", date(2026, 11, 1))
TRANSFORMS_ONLY = partition_unit("pos", date(2026, 11, 1), load=False)
LANDING = landing_object_unit("landing/pos/a.csv")


def on_postgres(tmp_path: Path) -> UnitOrigin:
    """The origin of a process on the store ``tmp_path`` loading into the database at
    ``postgresql://etl@postgres/etl`` (its id asked of it as the test arranged)."""
    return unit_origin(RuntimeSettings(
        storage_url=str(tmp_path), database_url=DatabaseURL("postgresql://etl@postgres/etl")
    ))  # fmt: skip


def test_a_unit_names_its_sender_s_store_and_the_database_it_loads_into_without_secrets(
    tmp_path: Path,
) -> None:
    settings = RuntimeSettings(
        storage_url=str(tmp_path / "store"),
        database_url=DatabaseURL(f"postgresql://etl:{SECRET}@db:5432/etl?password={SECRET}"),
    )
    origin = unit_origin(settings)
    headers = origin_headers(origin, LOADS)
    assert headers == {
        STORE_HEADER: (tmp_path / "store").as_uri(),
        DATABASE_HEADER: "postgresql://db:5432/etl",
    }
    assert SECRET not in repr(headers)
    # only a unit that loads names the database: the others' workers may have none
    assert origin_headers(origin, TRANSFORMS_ONLY) == {STORE_HEADER: headers[STORE_HEADER]}
    assert DATABASE_HEADER not in origin_headers(origin, LANDING)


def test_database_identity_names_the_database_never_a_secret() -> None:
    assert database_identity("postgresql://u:p@h:1/d") == "postgresql://h:1/d"
    assert database_identity("postgresql://:p@h/d?password=p&sslpassword=q") == (
        "postgresql://h:5432/d"
    )
    assert database_identity("sqlite:////tmp/etl.sqlite3") == "sqlite:////tmp/etl.sqlite3"
    # another server, port or database is another database
    assert len({database_identity(url) for url in (
        "postgresql://u@h/d", "postgresql://u@h:5433/d", "postgresql://u@h/e",
        "postgresql://u@other/d", "postgresql://u@h/d?dbname=f",
    )}) == 5  # fmt: skip


def test_one_database_spelled_two_ways_is_one_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker refused the units of a command on its very database, spelled otherwise."""
    same = [
        ("postgresql://etl:a@localhost/etl", "postgresql://etl:b@127.0.0.1:5432/etl"),
        ("postgres://etl@db/etl", "postgresql://etl@db:5432/etl"),
        ("postgresql://etl@DB/etl", "postgresql://etl@db/etl"),
        ("postgresql://etl@[::1]/etl", "postgresql://etl@localhost/etl"),
        ("postgresql://etl@db/etl?sslmode=require&application_name=a",
         "postgresql://etl@db/etl?application_name=b"),
        ("postgresql://loader@db/etl", "postgresql://etl@db/etl"),  # another role, same db
        ("postgresql://etl@db/etl/", "postgresql://etl@db/etl"),
        ("postgresql://etl@ignored/x?host=db&dbname=etl", "postgresql://etl@db/etl"),
    ]  # fmt: skip
    for one, other in same:
        assert database_identity(one) == database_identity(other), (one, other)
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    assert database_identity("sqlite:///link/etl.sqlite3") == database_identity(
        f"sqlite:///{tmp_path / 'data' / 'etl.sqlite3'}"
    )
    worker = unit_origin(RuntimeSettings(
        storage_url=str(tmp_path / "data"), database_url=DatabaseURL("postgresql://etl@db/etl")
    ))  # fmt: skip
    command = unit_origin(RuntimeSettings(
        storage_url=f"file://{tmp_path}/link/",
        database_url=DatabaseURL("postgres://etl:pw@db:5432/etl?sslmode=require"),
    ))  # fmt: skip
    assert foreign_unit(origin_headers(command, LOADS), worker, LOADS) is None


def test_a_worker_refuses_a_unit_of_another_store_or_database_naming_both() -> None:
    worker = UnitOrigin("s3://lake/prod", database_identity("postgresql://etl@db/etl"))
    same = {STORE_HEADER: "s3://lake/prod", DATABASE_HEADER: "postgresql://etl@db/etl"}
    assert foreign_unit(same, worker, LOADS) is None
    assert foreign_unit({}, worker, LOADS) is None  # a producer that names nothing: run

    store = foreign_unit({**same, STORE_HEADER: "file:///home/me/.etl/store"}, worker, LANDING)
    assert isinstance(store, ForeignUnitError)
    assert (store.field, store.sent_for, store.worker_has) == (
        "storage_url", "file:///home/me/.etl/store", "s3://lake/prod"
    )  # fmt: skip
    assert "made for the store file:///home/me/.etl/store" in str(store)
    assert "this worker's store is s3://lake/prod" in str(store)

    other_db = {**same, DATABASE_HEADER: "postgresql://etl@staging/etl"}
    database = foreign_unit(other_db, worker, LOADS)
    assert isinstance(database, ForeignUnitError)
    assert database.field == "database_url"
    assert foreign_unit(other_db, worker, TRANSFORMS_ONLY) is None  # it loads nothing
    no_db = foreign_unit(same, UnitOrigin("s3://lake/prod", None), LOADS)
    assert no_db is not None
    assert "it has no database_url" in str(no_db)
    copy = pickle.loads(pickle.dumps(database))
    assert (str(copy), copy.worker_has) == (str(database), database.worker_has)


def test_units_sent_without_following_carry_their_origin(tmp_path: Path) -> None:
    from etl_core.config import URL
    from etl_core.work.celery import CeleryExecutor, celery_app

    settings = RuntimeSettings(broker_url=URL("redis://127.0.0.1:1/0"), storage_url=str(tmp_path))
    app = celery_app(settings, "data_pipeline")
    sent: list[dict[str, object]] = []

    def send_task(*_: object, **options: object) -> object:
        sent.append(options)
        return type("Sent", (), {"id": "t-1"})()

    app.send_task = send_task
    CeleryExecutor(app).submit(WorkUnit("data_pipeline", "api_window", "s/e/full"))
    assert sent[0]["headers"] == {STORE_HEADER: tmp_path.as_uri()}


def test_a_worker_reads_a_header_in_another_spelling_as_its_own(tmp_path: Path) -> None:
    # another producer (docs/events.md), or an older platform during a rolling upgrade
    # (etl_database with its user, the path as written), spelled them otherwise: refused
    (tmp_path / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "data")
    worker = unit_origin(RuntimeSettings(
        storage_url=str(tmp_path / "data"), database_url=DatabaseURL("postgresql://etl@db/etl")
    ))  # fmt: skip
    for headers in (
        {STORE_HEADER: f"{(tmp_path / 'link').as_uri()}/"},
        {DATABASE_HEADER: "postgresql://etl@db:5432/etl"},  # the user: an older sender
        {DATABASE_HEADER: "postgres://etl@DB/etl?sslmode=require"},
    ):
        assert foreign_unit(headers, worker, LOADS) is None, headers
    s3 = UnitOrigin("s3://lake/prod", None)
    assert foreign_unit({STORE_HEADER: "s3://lake/prod/"}, s3, LANDING) is None
    assert foreign_unit({STORE_HEADER: "s3://lake/other"}, s3, LANDING) is not None
    assert foreign_unit({DATABASE_HEADER: "postgresql://etl@db/other"}, worker, LOADS)


@pytest.fixture(autouse=True)
def asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The URLs whose database was asked which one it is (none answers here: no test of
    this module reaches a server; tests/integration/test_work_celery_database_id.py does)."""
    from etl_core.work.celery import database_id

    urls: list[str] = []

    def unreachable(url: str, **_: object) -> str:
        urls.append(url)
        raise OSError(f"connection to {url} refused")

    database_id.forget_database_ids()
    monkeypatch.setattr(database_id, "database_id", unreachable)
    yield urls
    database_id.forget_database_ids()


def test_a_sender_that_cannot_ask_its_database_sends_its_units_without_the_id_warning_once(
    tmp_path: Path, asked: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    command = unit_origin(RuntimeSettings(
        storage_url=str(tmp_path),
        database_url=DatabaseURL(f"postgresql://etl:{SECRET}@db/etl?password={SECRET}"),
    ))  # fmt: skip
    with caplog.at_level("WARNING"):
        sent = [origin_headers(command, LOADS) for _ in range(3)]
    assert (
        sent == [{STORE_HEADER: tmp_path.as_uri(), DATABASE_HEADER: "postgresql://db:5432/etl"}] * 3
    )
    assert len(asked) == 1  # asked once: three units did not wait three times
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "postgresql://etl:***@db/etl" in warning.getMessage()
    assert SECRET not in caplog.text


def test_a_worker_that_cannot_ask_its_database_compares_urls_and_asks_again_next_unit(
    tmp_path: Path, asked: list[str]
) -> None:
    worker = on_postgres(tmp_path)
    sent = {
        DATABASE_HEADER: "postgresql://127.0.0.1:15432/etl",
        DATABASE_ID_HEADER: "postgresql:7716/etl",
    }
    refused = foreign_unit(sent, worker, LOADS)
    assert isinstance(refused, ForeignUnitError)
    assert (refused.sent_id, refused.worker_id) == ("postgresql:7716/etl", None)
    assert "postgresql://127.0.0.1:15432/etl (server 7716, database etl)" in str(refused)
    assert "could not ask its database which one it is" in str(refused)
    same_url = {**sent, DATABASE_HEADER: "postgresql://postgres:5432/etl"}
    assert foreign_unit(same_url, worker, LOADS) is None
    assert len(asked) == 2  # its database may be back by the next unit
    copy = pickle.loads(pickle.dumps(refused))
    assert (str(copy), copy.sent_id) == (str(refused), refused.sent_id)


def test_a_worker_compares_the_databases_ids_when_both_are_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl_core.work.celery import database_id

    ids = {"postgresql://etl@postgres/etl": "postgresql:7716/etl"}
    monkeypatch.setattr(database_id, "database_id", lambda url, **_: ids[url])
    worker = on_postgres(tmp_path)
    from_host = {DATABASE_HEADER: "postgresql://localhost:15432/etl"}
    # an older sender, or one that could not ask: its URL, as before
    assert foreign_unit(from_host, worker, LOADS) is not None
    assert (
        foreign_unit({**from_host, DATABASE_ID_HEADER: "postgresql:7716/etl"}, worker, LOADS)
        is None
    )
    # the same name, another server (a container's own localhost): the ids tell
    same_name = {
        DATABASE_HEADER: "postgresql://postgres:5432/etl",
        DATABASE_ID_HEADER: "postgresql:9/etl",
    }
    other = foreign_unit(same_name, worker, LOADS)
    assert isinstance(other, ForeignUnitError)
    assert "(server 9, database etl)" in str(other)
    assert (
        "this worker's database is postgresql://postgres:5432/etl (server 7716, database etl)"
        in str(other)
    )


def test_a_dead_lettered_unit_keeps_its_database_id_to_be_checked_again_when_re_driven() -> None:
    # Celery's protocol 2 sets a producer's headers on the request itself, not in
    # request.headers: the id was read nowhere there, and dropped from the moved message
    from types import SimpleNamespace

    from etl_core.work.celery import task as celery_task

    sent: list[dict[str, object]] = []
    app = SimpleNamespace(send_task=lambda *_, **options: sent.append(options))
    request = SimpleNamespace(
        headers=None,
        etl_store="s3://lake/prod",
        etl_database="postgresql://localhost:15432/etl",
        etl_database_id="postgresql:7716/etl",
    )
    task = SimpleNamespace(name="etl.data_pipeline.run_unit", app=app, request=request)
    refused = ForeignUnitError(LOADS.id, "database_url", "postgresql://localhost:15432/etl", None)
    celery_task._dead_letter(task, LOADS.to_dict(), "data_pipeline.dead", refused, 1)
    (moved,) = sent
    headers = moved["headers"]
    assert isinstance(headers, dict)
    assert headers[DATABASE_ID_HEADER] == "postgresql:7716/etl"
    assert headers[DATABASE_HEADER] == "postgresql://localhost:15432/etl"


def test_a_worker_whose_database_was_replaced_under_its_url_accepts_the_new_ones_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the stack's PostgreSQL recreated (a new volume, a restore into a new cluster) while
    # the workers ran: they kept the id they had learned and refused every unit of a
    # command naming the database by the same URL and its new id, until restarted
    from etl_core.work.celery import database_id

    ids = {"postgresql://etl@postgres/etl": "postgresql:7716/etl"}
    asked: list[str] = []

    def answer(url: str, **_: object) -> str:
        asked.append(url)
        return ids[url]

    monkeypatch.setattr(database_id, "database_id", answer)
    worker = on_postgres(tmp_path)
    sent = {DATABASE_HEADER: "postgresql://postgres:5432/etl"}
    assert foreign_unit({**sent, DATABASE_ID_HEADER: "postgresql:7716/etl"}, worker, LOADS) is None
    ids["postgresql://etl@postgres/etl"] = "postgresql:8818/etl"  # recreated
    assert foreign_unit({**sent, DATABASE_ID_HEADER: "postgresql:8818/etl"}, worker, LOADS) is None
    assert foreign_unit({**sent, DATABASE_ID_HEADER: "postgresql:8818/etl"}, worker, LOADS) is None
    assert len(asked) == 2  # once learned, asked again only before a refusal
    other = foreign_unit({**sent, DATABASE_ID_HEADER: "postgresql:9/etl"}, worker, LOADS)
    assert isinstance(other, ForeignUnitError)
    assert other.worker_id == "postgresql:8818/etl"


def test_a_long_running_sender_names_its_database_recreated_under_its_url_by_its_new_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the scheduler learned its database's id at start and sent it for ever: once that
    # database was recreated, every worker (asking its own anew) refused its partitions
    from types import SimpleNamespace

    from etl_core.work.celery import database_id

    ids = {"postgresql://etl@postgres/etl": "postgresql:7716/etl"}
    monkeypatch.setattr(database_id, "database_id", lambda url, **_: ids[url])
    clock = [1000.0]
    monkeypatch.setattr(
        database_id, "time", SimpleNamespace(monotonic=lambda: clock[0]), raising=False
    )
    scheduler = on_postgres(tmp_path)
    assert origin_headers(scheduler, LOADS)[DATABASE_ID_HEADER] == "postgresql:7716/etl"
    ids["postgresql://etl@postgres/etl"] = "postgresql:8818/etl"  # recreated
    assert origin_headers(scheduler, LOADS)[DATABASE_ID_HEADER] == "postgresql:7716/etl"
    clock[0] += 61  # a minute later
    assert origin_headers(scheduler, LOADS)[DATABASE_ID_HEADER] == "postgresql:8818/etl"


def test_a_worker_whose_database_does_not_answer_when_asked_again_keeps_its_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asked again a minute later while restarting: its id was forgotten, the URLs compared,
    # and a unit of a command reaching it by another name refused (not retried) meanwhile
    from types import SimpleNamespace

    from etl_core.work.celery import database_id

    answers = ["postgresql:7716/etl"]

    def answer(url: str, **_: object) -> str:
        if not answers:
            raise OSError("the database system is starting up")
        return answers.pop()

    monkeypatch.setattr(database_id, "database_id", answer)
    clock = [1000.0]
    monkeypatch.setattr(database_id, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    worker = on_postgres(tmp_path)
    from_host = {
        DATABASE_HEADER: "postgresql://localhost:15432/etl",
        DATABASE_ID_HEADER: "postgresql:7716/etl",
    }
    assert foreign_unit(from_host, worker, LOADS) is None
    clock[0] += 61  # a minute later, the database restarting
    assert foreign_unit(from_host, worker, LOADS) is None


def test_a_worker_whose_database_refuses_the_question_does_not_ask_it_for_every_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pg_control_system() not granted (or absent on a PostgreSQL-like server): a worker
    # opened one more connection per unit, for ever, to be refused the same way
    psycopg = pytest.importorskip("psycopg")
    from etl_core.work.celery import database_id

    asked: list[str] = []

    def refused(url: str, **_: object) -> str:
        asked.append(url)
        raise psycopg.errors.InsufficientPrivilege("permission denied for function")

    monkeypatch.setattr(database_id, "database_id", refused)
    worker = on_postgres(tmp_path)
    sent = {
        DATABASE_HEADER: "postgresql://postgres:5432/etl",
        DATABASE_ID_HEADER: "postgresql:7/etl",
    }
    for _ in range(3):
        assert foreign_unit(sent, worker, LOADS) is None  # the URLs compared, as before
    assert len(asked) == 1


def test_a_url_naming_no_database_is_the_database_libpq_reaches_by_pgdatabase_or_pgservice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The door takes a URL without a database name to PGDATABASE's database (or
    PGSERVICE's section's), as libpq does: a sender on prod and a worker on staging, one URL
    ``postgresql://etl@db/`` for both, named one database, the worker loading the sender's
    units into its own (when the databases' ids could not be asked)."""
    monkeypatch.delenv("PGSERVICE", raising=False)
    monkeypatch.setenv("PGDATABASE", "prod")
    sender = database_identity("postgresql://etl@db/")
    spelled = database_identity("postgresql://etl@db:5432/prod")
    monkeypatch.setenv("PGDATABASE", "staging")
    worker = UnitOrigin(None, database_identity("postgresql://etl@db/"))
    monkeypatch.setenv("PGSERVICE", "reporting")  # the service's section names it, not PGDATABASE
    by_service = database_identity("postgresql://etl@db/")

    assert sender == spelled == "postgresql://db:5432/prod"
    assert worker.database == "postgresql://db:5432/staging"
    assert by_service == "postgresql://db:5432/?service=reporting"
    # the sender's header, read by the worker in its own environment, stays the sender's
    refused = foreign_unit({DATABASE_HEADER: sender}, worker, LOADS)
    assert isinstance(refused, ForeignUnitError)
    assert database_identity("postgresql://etl@db/etl") == "postgresql://db:5432/etl"


def test_multi_host_urls_are_one_database_only_with_the_same_hosts_in_the_same_order() -> None:
    """libpq's multi-host URLs (Patroni, pgBouncer pairs): each host and port spelled as a
    single host's, the list kept in its order (libpq tries the hosts in it)."""
    pair = database_identity("postgresql://etl:pw@db1:5432,db2:6432/warehouse")
    assert pair == "postgresql://db1:5432,db2:6432/warehouse"
    same = [
        "postgresql://etl@DB1,db2:6432/warehouse?target_session_attrs=read-write",
        "postgres://loader:other@db1:5432,DB2:6432/warehouse",
        "postgresql://etl@/warehouse?host=db1,db2&port=5432,6432",
        "postgresql://etl@db1%2Cdb2:6432/warehouse?port=5432,6432",  # libpq decodes, then splits
    ]
    for url in same:
        assert database_identity(url) == pair, url
    assert database_identity("postgresql://etl@127.0.0.1,[::1]:5433/w") == (
        "postgresql://localhost:5432,localhost:5433/w"
    )
    # the previous release's header of `postgresql://etl@db1,db2/w` (it connected, its
    # header named one host "db1,db2"): the same database during a rolling upgrade
    assert database_identity("postgresql://db1%2Cdb2:5432/w") == database_identity(
        "postgresql://etl@db1,db2/w"
    )
    assert database_identity("postgresql://etl@/w?host=a,b&port=6000") == (
        "postgresql://a:6000,b:6000/w"  # one port for every host
    )
    others = [
        "postgresql://etl@db2:6432,db1:5432/warehouse",  # another order: another first host
        "postgresql://etl@db1:5432,db3:6432/warehouse",
        "postgresql://etl@db1:5432,db2:6433/warehouse",
        "postgresql://etl@db1:5432/warehouse",
        "postgresql://etl@db1:5432,db2:6432/other",
    ]
    assert len({pair, *(database_identity(url) for url in others)}) == 1 + len(others)
    worker = UnitOrigin(None, pair)
    sent = {DATABASE_HEADER: database_identity(others[0])}
    refused = foreign_unit(sent, worker, LOADS)
    assert refused is not None
    assert "db2:6432,db1:5432" in str(refused)
    assert foreign_unit({DATABASE_HEADER: database_identity(same[0])}, worker, LOADS) is None
