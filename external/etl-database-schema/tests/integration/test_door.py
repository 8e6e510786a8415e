"""The database door: connect, units of work, translated errors, surviving lost connections.

Every test sets Django up in a subprocess (conftest ``run_python``); the PostgreSQL ones get
a database of their own (conftest ``postgres_url``), dropped afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

RunPython = Callable[..., subprocess.CompletedProcess[str]]
RunCli = Callable[..., subprocess.CompletedProcess[str]]


LAST_RETAIL_APPLIED = "etl_retail.0003_partitioned_curated"


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_an_unmigrated_database_is_refused_until_migrations_are_applied(
    run_python: RunPython, migrations: list[str]
) -> None:
    result = run_python(
        """
        import etl_database_schema as s
        try:
            s.connect("sqlite:///etl.sqlite3")
        except s.MigrationsPendingError as exc:
            print("refused:", len(exc.pending), exc)
        print("connected", s.is_connected())
        s.connect("sqlite:///etl.sqlite3", require_migrated=False)
        print("unchecked", s.is_connected())
        s.migrate("etl_retail", "0003_partitioned_curated")
        print("applied", len(s.applied_migrations()), s.pending_migrations())
        try:
            s.connect("sqlite:///etl.sqlite3")
        except s.MigrationsPendingError as exc:
            print("behind:", exc.applied, exc)
        s.connect("sqlite:///etl.sqlite3", apply_migrations=True)
        s.connect("sqlite:///etl.sqlite3")
        print("migrated", s.pending_migrations())
        """
    )

    refused, connected, unchecked, applied, behind, migrated = _lines(result)
    first = ("etl_retail.0001_initial", "etl_retail.0002_footfall")
    lacking = [name for name in migrations if name not in (*first, LAST_RETAIL_APPLIED)]
    assert refused.startswith(f"refused: {len(migrations)} database sqlite:///")
    assert (
        f"holds none of the platform's schema (no migration applied, {len(migrations)} pending"
        in refused
    )
    assert refused.endswith("if it is a new one, run `etl-schema migrate`")
    assert applied == f"applied 3 {lacking}"
    assert behind.startswith("behind: 3 database sqlite:///")
    assert behind.endswith(
        f"lacks {len(lacking)} schema migration(s) ({', '.join(lacking)}); run `etl-schema migrate`"
    )
    assert "etl_ledger.0001_initial" in lacking
    assert "etl_retail.0004_bytewise_code_keys" in lacking
    assert (connected, unchecked, migrated) == ("connected False", "unchecked True", "migrated []")


def test_models_before_connect_and_of_an_unknown_app_are_refused(run_python: RunPython) -> None:
    result = run_python(
        """
        import etl_database_schema as s
        for attempt in ("before", "after"):
            if attempt == "after":
                s.connect("sqlite:///etl.sqlite3", apply_migrations=True)
            try:
                with s.models("etl_shop"):
                    pass
            except s.SchemaError as exc:
                print(type(exc).__name__, exc)
        with s.models(s.LEDGER_APP) as ledger:
            print(sorted(ledger)[:3], ledger["PipelineRun"].objects.count())
        """
    )

    before, after, models = _lines(result)
    assert before == (
        "NotConnectedError the database door is not open: call connect(database_url) first"
    )
    assert after == "SchemaError no app is labelled 'etl_shop' (apps: ledger, retail)"
    assert models == "['Alert', 'ApiIngestionState', 'BackfillJob'] 0"


def test_a_refused_operation_is_a_refused_error_and_the_next_unit_works(
    run_python: RunPython,
) -> None:
    result = run_python(
        """
        import etl_database_schema as s
        s.connect("sqlite:///etl.sqlite3", apply_migrations=True)
        s.start_run("r1", lane="data_pipeline", job="load")
        for lane in ("data_pipeline", "spaceship"):
            try:
                s.start_run("r1" if lane == "data_pipeline" else "r2", lane=lane, job="load")
            except s.DatabaseRefusedError as exc:
                said = "UNIQUE" in str(exc) or "CHECK" in str(exc)
                print("refused:", exc.url == s.connected_url(), said)
        print("runs", s.ledger_gauges()["runs_running"])
        """
    )

    assert _lines(result) == ["refused: True True", "refused: True True", "runs 1"]


def test_an_unreachable_database_is_unavailable_with_the_password_redacted(
    run_python: RunPython,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_python(
        f"""
        import etl_database_schema as s
        try:
            s.connect("postgresql://etl:hunter2@127.0.0.1:{port}/etl?connect_timeout=3")
        except s.DatabaseUnavailableError as exc:
            print("unavailable:", exc.url, "|", exc)
        """
    )

    (line,) = _lines(result)
    assert line.startswith(f"unavailable: postgresql://etl:***@127.0.0.1:{port}/etl")
    assert "is unavailable:" in line
    assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("user", "database", "named"),
    [
        ("postgres", "etl_no_such_db", 'no database "etl_no_such_db"'),
        ("etl_no_such_role", "postgres", 'no role "etl_no_such_role"'),
    ],
    ids=["no-database", "no-role"],
)
def test_a_login_the_server_refuses_is_a_settings_error_not_an_outage(
    run_python: RunPython,
    run_cli: RunCli,
    postgres_server_url: str,
    user: str,
    database: str,
    named: str,
) -> None:
    server = urlsplit(postgres_server_url)
    login = f"{user}:hunter2@{server.hostname}:{server.port or 5432}"
    url = urlunsplit(server._replace(netloc=login, path=f"/{database}"))
    result = _connect_in_child(run_python, url)
    migrate = run_cli("migrate", "--database-url", url)

    (line,) = _lines(result)
    assert line.startswith("login: invalid_")
    assert named in line
    assert migrate.returncode == 2, migrate.stderr
    assert named in migrate.stderr
    assert "hunter2" not in result.stdout + result.stderr + migrate.stdout + migrate.stderr


@pytest.mark.postgres
def test_check_exits_2_for_a_login_the_server_refuses_and_1_for_a_server_down(
    run_cli: RunCli, postgres_server_url: str
) -> None:
    server = urlsplit(postgres_server_url)
    login = f"{server.username or 'postgres'}:hunter2@{server.hostname}:{server.port or 5432}"
    missing = urlunsplit(server._replace(netloc=login, path="/etl_no_such_db"))
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    refused = run_cli("check", "--database-url", missing)
    down = run_cli("check", "--database-url", f"postgresql://etl:hunter2@127.0.0.1:{port}/etl")

    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert 'no database "etl_no_such_db"' in refused.stderr
    assert down.returncode == 1, down.stdout + down.stderr
    assert "hunter2" not in refused.stdout + refused.stderr + down.stdout + down.stderr


@pytest.fixture
def role_not_let_in(postgres_url: str) -> Iterator[dict[str, str]]:
    """URLs of roles the server has but does not let in: ``nologin`` (no LOGIN attribute)
    and ``noconnect`` (no CONNECT privilege on the test's database), password hunter2."""
    import psycopg
    from psycopg import sql

    database = urlsplit(postgres_url).path.lstrip("/")
    suffix = database.rsplit("_", 1)[-1]
    roles = {"nologin": f"etl_nologin_{suffix}", "noconnect": f"etl_noconnect_{suffix}"}
    with psycopg.connect(postgres_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(roles["nologin"])))
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(roles["noconnect"])))
        admin.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))
        )
    server = urlsplit(postgres_url)
    at = f"{server.hostname}:{server.port or 5432}"
    try:
        yield {
            kind: urlunsplit(server._replace(netloc=f"{role}:hunter2@{at}"))
            for kind, role in roles.items()
        }
    finally:
        with psycopg.connect(postgres_url, autocommit=True, connect_timeout=3) as admin:
            for role in roles.values():
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("kind", "named"),
    [("nologin", "may not log in"), ("noconnect", "no CONNECT privilege")],
)
def test_a_role_the_server_does_not_let_in_is_a_settings_error_not_an_outage(
    run_python: RunPython,
    run_cli: RunCli,
    role_not_let_in: dict[str, str],
    kind: str,
    named: str,
) -> None:
    url = role_not_let_in[kind]
    result = _connect_in_child(run_python, url)
    migrate = run_cli("migrate", "--database-url", url)

    (line,) = _lines(result)
    assert line.startswith("login: "), line
    assert named in line
    assert migrate.returncode == 2, migrate.stderr
    assert "hunter2" not in result.stdout + result.stderr + migrate.stdout + migrate.stderr


# A worker's loop: one unit of work, which reports the server process serving it.
_WORKER = """
import psycopg
import etl_database_schema as s
from django.db import connection

s.connect({url!r}, apply_migrations=True)

def unit(name):
    with s.models(s.LEDGER_APP) as ledger:
        ledger["PipelineRun"].objects.create(run_id=name, lane="observability", job="probe")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

def terminate(pid):
    with psycopg.connect({admin!r}, autocommit=True) as admin:
        return admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
"""


@pytest.mark.postgres
@pytest.mark.parametrize("options", ["", "?conn_max_age=600"], ids=["per-unit", "kept-open"])
def test_the_door_survives_its_connection_being_terminated_between_units(
    run_python: RunPython, postgres_url: str, postgres_server_url: str, options: str
) -> None:
    url = postgres_url + options
    result = run_python(
        _WORKER.format(url=url, admin=postgres_server_url)
        + f"""
first = unit("first")
with psycopg.connect({postgres_url!r}) as probe:
    kept = first in [row[0] for row in probe.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
print("kept open", kept)
if kept:
    print("terminated", terminate(first))
second = unit("second")
print("new connection", second != first)
with s.models(s.LEDGER_APP) as ledger:
    print("rows", ledger["PipelineRun"].objects.count())
"""
    )

    lines = _lines(result)
    assert lines[0] == f"kept open {bool(options)}"
    if options:
        assert lines[1] == "terminated True"
    assert lines[-2:] == ["new connection True", "rows 2"]


@pytest.mark.postgres
def test_a_connection_lost_during_a_unit_is_unavailable_and_the_next_unit_reconnects(
    run_python: RunPython, postgres_url: str, postgres_server_url: str
) -> None:
    result = run_python(
        _WORKER.format(url=postgres_url + "?conn_max_age=600", admin=postgres_server_url)
        + """
try:
    with s.models(s.LEDGER_APP) as ledger:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            terminate(cursor.fetchone()[0])
        ledger["PipelineRun"].objects.count()
except s.DatabaseUnavailableError as exc:
    print("unavailable:", "is unavailable" in str(exc))
unit("after")
print("recovered", s.get_run("after").job)
"""
    )

    assert _lines(result) == ["unavailable: True", "recovered probe"]


def test_a_full_database_is_refused_not_retried_as_unavailable(run_python: RunPython) -> None:
    """SQLITE_FULL (here a page limit: a full disk says the same) and PostgreSQL's
    disk_full (53100) came out as DatabaseUnavailableError, retryable: a load was tried
    again and again, and a Celery unit dead-lettered, on a disk nobody had freed."""
    result = run_python(
        """
        import psycopg.errors
        import etl_database_schema as s
        from etl_database_schema.door import _translated
        from django.db import connection
        s.connect("sqlite:///etl.sqlite3", apply_migrations=True)
        try:
            with s.models(s.LEDGER_APP), connection.cursor() as cursor:
                cursor.execute("PRAGMA max_page_count = 1")
                cursor.execute("CREATE TABLE filler (x text)")
                cursor.execute("INSERT INTO filler VALUES (randomblob(100000))")
        except s.DatabaseOperationError as exc:
            print(type(exc).__name__, "|", exc)
        try:
            with _translated("postgresql://etl:hunter2@db/etl"):
                raise psycopg.errors.DiskFull("could not extend file: No space left on device")
        except s.DatabaseOperationError as exc:
            print(type(exc).__name__, "|", exc)
        """
    )

    sqlite, postgres = _lines(result)
    assert sqlite.startswith("DatabaseRefusedError | database sqlite:///")
    assert "is out of disk space: database or disk is full" in sqlite
    assert postgres == (
        "DatabaseRefusedError | database postgresql://etl:***@db/etl is out of disk space: "
        "could not extend file: No space left on device; free space on its disk (or raise "
        "its quota), then run again"
    )


def _connect_in_child(run_python: Callable[[str], Any], url: str) -> Any:
    """A child's ``connect(url)``, one line: ``unavailable: …`` or ``login: <reason> | …``."""
    return run_python(
        f"""
        import etl_database_schema as s
        try:
            s.connect({url!r})
        except s.DatabaseUnavailableError as exc:
            print("unavailable:", exc)
        except s.DatabaseLoginError as exc:
            print("login:", exc.reason, "|", exc)
        """
    )


@pytest.mark.postgres
def test_check_login_tells_a_refused_login_from_a_server_down_and_leaves_no_connection_open(
    run_python: RunPython, postgres_url: str, postgres_server_url: str
) -> None:
    """What a worker checks once before it forks its processes: the login of its URL,
    without opening the door (no migration check) nor keeping a connection for the fork."""
    server = urlsplit(postgres_server_url)
    login = f"{server.username or 'postgres'}:hunter2@{server.hostname}:{server.port or 5432}"
    missing = urlunsplit(server._replace(netloc=login, path="/etl_no_such_db"))
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = f"postgresql://etl:hunter2@127.0.0.1:{port}/etl?connect_timeout=3"
    script = """
        import etl_database_schema as s
        from django.db import connections
        try:
            s.check_login({url!r})
            print("ok", s.is_connected(), [c.connection for c in connections.all()])
        except s.DatabaseUnavailableError as exc:
            print("unavailable:", exc)
        except s.DatabaseLoginError as exc:
            print("login:", exc.reason, "|", exc)
        """

    fine, refused, unreachable = (
        _lines(run_python(script.format(url=url))) for url in (postgres_url, missing, down)
    )

    assert fine == ["ok False [None]"]  # checked; the door not opened, nothing kept open
    (line,) = refused
    assert line.startswith("login: invalid_catalog_name | ")
    assert 'no database "etl_no_such_db"' in line
    (line,) = unreachable
    assert line.startswith(f"unavailable: database postgresql://etl:***@127.0.0.1:{port}/etl")
    assert "hunter2" not in "".join(fine + refused + unreachable)


@pytest.mark.postgres
def test_check_login_with_require_migrated_refuses_a_database_lacking_migrations(
    run_python: RunPython, postgres_url: str, migrations: list[str]
) -> None:
    """What a worker checks as it starts: it started, then every unit it took failed
    with the pending migrations. Each check leaves no connection open for the fork."""
    script = """
        import etl_database_schema as s
        from django.db import connections
        try:
            s.check_login({url!r}, require_migrated={required})
            print("ok", s.is_connected(), [c.connection for c in connections.all()])
        except s.MigrationsPendingError as exc:
            opened = [c.connection for c in connections.all()]
            print("pending:", len(exc.pending), exc.applied, opened, "|", exc)
        """
    migrate = """
        import etl_database_schema as s
        s.setup({url!r})
        s.migrate()
        s.migrate("etl_ledger", {back!r})
        """
    empty = _lines(run_python(script.format(url=postgres_url, required=True)))
    unchecked = _lines(run_python(script.format(url=postgres_url, required=False)))
    last = max(name for name in migrations if name.startswith("etl_ledger."))
    before_last = max(
        name.split(".")[1] for name in migrations if name.startswith("etl_ledger.") and name < last
    )
    _lines(run_python(migrate.format(url=postgres_url, back=before_last)))
    behind = _lines(run_python(script.format(url=postgres_url, required=True)))

    (line,) = empty
    assert line.startswith(f"pending: {len(migrations)} 0 [None] | database postgresql://")
    assert "holds none of the platform's schema" in line
    assert unchecked == ["ok False [None]"]  # the login only, as before
    (line,) = behind
    assert line.startswith(f"pending: 1 {len(migrations) - 1} [None] | database postgresql://")
    assert line.endswith(f"lacks 1 schema migration(s) ({last}); run `etl-schema migrate`")


@pytest.mark.postgres
def test_check_login_with_require_migrated_starts_a_worker_on_a_database_a_newer_release_migrated(
    run_python: RunPython, postgres_url: str
) -> None:
    """A rolling deploy migrates first: the old release's workers, restarted meanwhile,
    meet migrations their code does not know (a new one of an app, a new app). They lack
    none, so they start: exiting 2 would stop every old worker until the new one rolls."""
    script = """
        import etl_database_schema as s
        from django.db import connection
        s.setup({url!r})
        s.migrate()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES "
                "('etl_ledger', '9999_of_a_newer_release', now()), "
                "('etl_newer_app', '0001_initial', now())"
            )
        connection.close()
        s.check_login({url!r}, require_migrated=True)
        print("started")
        """

    assert _lines(run_python(script.format(url=postgres_url))) == ["started"]


def test_check_login_with_require_migrated_on_sqlite_checks_the_file_without_creating_it(
    run_python: RunPython, tmp_path: Any, migrations: list[str]
) -> None:
    """A SQLite file has no login, but its migrations are checked; a missing file is not
    created (each worker process would create it empty, then refuse every unit)."""
    script = """
        import etl_database_schema as s
        try:
            s.check_login("sqlite:///etl.sqlite3", require_migrated=True)
            print("ok")
        except s.MigrationsPendingError as exc:
            print("pending:", len(exc.pending), exc.applied)
        """
    missing = _lines(run_python(script))
    created = (tmp_path / "etl.sqlite3").exists()
    migrate = 'import etl_database_schema as s; s.connect("sqlite:///etl.sqlite3", %s)'
    _lines(run_python(migrate % "apply_migrations=True"))
    migrated = _lines(run_python(script))

    assert (missing, created) == ([f"pending: {len(migrations)} 0"], False)
    assert migrated == ["ok"]


def test_check_login_on_sqlite_in_a_missing_directory_names_the_directory_not_migrate(
    run_python: RunPython, tmp_path: Any
) -> None:
    """A worker's start check of a SQLite file whose directory does not exist: the URL's
    mistake, naming the directory (what `etl-schema migrate` would fail on), not "run
    `etl-schema migrate`" with every migration listed as pending."""
    result = run_python(
        """
        import etl_database_schema as s
        try:
            s.check_login("sqlite:///nodir/etl.sqlite3", require_migrated=True)
            print("ok")
        except s.SchemaError as exc:
            print(type(exc).__name__)
            print(exc)
        """
    )

    assert result.returncode == 0, result.stderr
    kind, message = result.stdout.splitlines()
    assert kind == "DatabaseUrlError"
    assert f"whose directory {tmp_path / 'nodir'} does not exist" in message
    assert "etl-schema migrate" not in message
    assert not (tmp_path / "nodir").exists()


def test_check_login_gives_up_on_a_server_that_never_answers_within_its_timeout(
    run_python: RunPython,
) -> None:
    """A host that takes the connection and says nothing (a hung server, a proxy whose
    backend is gone) held a starting worker for as long as the kernel kept trying."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the handshake completes; nothing ever reads or answers
        port = silent.getsockname()[1]
        result = run_python(
            f"""
            import time
            import etl_database_schema as s
            started = time.monotonic()
            try:
                s.check_login("postgresql://etl:hunter2@127.0.0.1:{port}/etl", timeout=2)
            except s.DatabaseUnavailableError as exc:
                print("unavailable", round(time.monotonic() - started))
            """
        )

    (line,) = _lines(result)
    assert line.split()[0] == "unavailable"
    assert int(line.split()[1]) <= 5


@pytest.mark.parametrize("told", ["PGCONNECT_TIMEOUT", "service file"])
def test_check_login_waits_as_long_as_pgconnect_timeout_or_the_service_file_says(
    run_python: RunPython, told: str, tmp_path: Any
) -> None:
    """libpq is told its connect timeout below the URL by PGCONNECT_TIMEOUT or the
    service's section: the door's connections honoured it, yet a starting worker's login
    check replaced it with its own 10 s (an operator's 2 s waited 10, their 60 s cut at 10)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the handshake completes; nothing ever reads or answers
        port = silent.getsockname()[1]
        services = tmp_path / "services.conf"
        services.write_text(f"[etl]\nhost=127.0.0.1\nport={port}\nconnect_timeout=2\n")
        env, url = {"PGCONNECT_TIMEOUT": "2"}, f"postgresql://etl:hunter2@127.0.0.1:{port}/etl"
        if told == "service file":
            env, url = {"PGSERVICEFILE": str(services)}, "postgresql://etl:hunter2@/etl?service=etl"
        result = run_python(
            f"""
            import time
            import etl_database_schema as s
            started = time.monotonic()
            try:
                s.check_login({url!r})
            except s.DatabaseUnavailableError as exc:
                print("unavailable", round(time.monotonic() - started))
            """,
            env=env,
        )

    (line,) = _lines(result)
    assert line.split()[0] == "unavailable"
    assert int(line.split()[1]) <= 5  # the operator's 2 s, not the door's 10


@pytest.mark.slow
def test_the_doors_connections_give_up_on_a_host_that_never_answers(
    run_python: RunPython,
) -> None:
    """A host that takes the connection and says nothing (a hung server, a proxy whose
    backend is gone, a firewall's half-open port) held every unit, and `connect` of every
    command, for as long as the kernel kept trying: the door's own connections now wait
    10 s unless the URL says otherwise, and fail as an outage naming the URL."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the handshake completes; nothing ever reads or answers
        port = silent.getsockname()[1]
        url = f"postgresql://etl:hunter2@127.0.0.1:{port}/etl"
        script = """
            import time
            import etl_database_schema as s
            started = time.monotonic()
            try:
                if {kind!r} == "connect":  # what every command opening the door does
                    s.connect({url!r})
                else:  # a unit of a process whose door is open (a worker's, checked earlier)
                    s.connect({url!r}, require_migrated=False)
                    with s.models(s.LEDGER_APP) as ledger:
                        ledger["PipelineRun"].objects.count()
            except s.DatabaseUnavailableError as exc:
                print({kind!r}, round(time.monotonic() - started), exc.url, "|", exc)
            """
        results = [  # one Django set-up each
            run_python(script.format(kind="connect", url=f"{url}?connect_timeout=2")),
            run_python(script.format(kind="unit", url=url)),
        ]

    said = [line for result in results for line in _lines(result)]
    assert [line.split()[0] for line in said] == ["connect", "unit"], said
    (connect_seconds, unit_seconds) = (int(line.split()[1]) for line in said)
    assert connect_seconds <= 5  # the URL's 2 s
    assert 8 <= unit_seconds <= 15  # the door's 10 s
    shown = f"postgresql://etl:***@127.0.0.1:{port}/etl"
    assert said[0].split()[2] == f"{shown}?connect_timeout=2"
    assert said[1].split()[2] == shown
    assert all(f"database {shown}" in line and "is unavailable" in line for line in said)
    assert not any("hunter2" in result.stdout + result.stderr for result in results)


@pytest.mark.postgres
def test_the_doors_connections_find_a_vanished_server_within_a_minute_of_silence(
    run_python: RunPython, postgres_url: str
) -> None:
    """TCP keepalives on the door's connections: a server gone under an open connection (a
    failover, a host powered off) was noticed after Linux's two hours of silence, a unit
    waiting on it all that time; 30 s idle, then 3 probes 10 s apart. The URL's win."""
    script = """
        import socket
        import etl_database_schema as s
        s.connect({url!r}, require_migrated=False)
        with s.models(s.LEDGER_APP):
            from django.db import connection
            connection.ensure_connection()
            fd = connection.connection.pgconn.socket
            sock = socket.socket(fileno=socket.dup(fd))
            print(*(sock.getsockopt(level, name) for level, name in (
                (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                (socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            )))
            sock.close()
        """
    separator = "&" if "?" in postgres_url else "?"
    said = [
        _lines(run_python(script.format(url=url)))
        for url in (postgres_url, f"{postgres_url}{separator}keepalives_idle=5&keepalives_count=9")
    ]

    assert said == [["1 30 10 3"], ["1 5 10 9"]]


@pytest.mark.postgres
def test_the_doors_connections_take_tcp_user_timeout_from_the_url_only(
    run_python: RunPython, postgres_url: str
) -> None:
    """No door default (it cut a COPY waiting on a lock:
    test_a_copy_into_the_door_waiting_over_a_minute_on_a_row_lock_is_not_cut); an operator's
    ``?tcp_user_timeout=`` reaches libpq and the socket."""
    script = """
        import socket
        import etl_database_schema as s
        s.connect({url!r}, require_migrated=False)
        with s.models(s.LEDGER_APP):
            from django.db import connection
            connection.ensure_connection()
            used = {{o.keyword.decode(): (o.val or b"").decode()
                     for o in connection.connection.pgconn.info}}
            fd = connection.connection.pgconn.socket
            sock = socket.socket(fileno=socket.dup(fd))
            print(used["tcp_user_timeout"],
                  sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT))
            sock.close()
        """
    separator = "&" if "?" in postgres_url else "?"
    said = [
        _lines(run_python(script.format(url=url)))
        for url in (postgres_url, f"{postgres_url}{separator}tcp_user_timeout=5000")
    ]

    assert said == [[" 0"], ["5000 5000"]]


@pytest.mark.postgres
@pytest.mark.slow
def test_a_copy_into_the_door_waiting_over_a_minute_on_a_row_lock_is_not_cut(
    run_python: RunPython, postgres_url: str
) -> None:
    """A load's ``COPY … FROM STDIN`` whose server waits on another session's lock (an
    uncommitted row of the same key) stops reading: the client's data fills the server's
    receive window (a zero window, its probes answered). Linux since 5.11 counts such a
    window against ``tcp_user_timeout``: the door's 60 s default cut a legitimate load
    waiting 60 s on a lock ("server closed the connection unexpectedly")."""
    script = f"""
        import threading, time
        import psycopg
        import etl_database_schema as s
        url = {postgres_url!r}
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("CREATE TABLE locked (k integer PRIMARY KEY, pad text)")
        holder = psycopg.connect(url)
        holder.execute("INSERT INTO locked VALUES (1, 'held')")  # uncommitted: k=1 waits

        def release():
            time.sleep(70)  # over the door's former tcp_user_timeout (60 s)
            holder.rollback()

        threading.Thread(target=release, daemon=True).start()
        s.connect(url, require_migrated=False)
        with s.models(s.LEDGER_APP):
            from django.db import connection, transaction
            started = time.monotonic()
            pad = "y" * 1000
            with transaction.atomic(), connection.cursor() as cursor:
                with cursor.cursor.copy("COPY locked (k, pad) FROM STDIN") as copy:
                    for k in range(1, 60001):  # ~60 MB: more than both sockets' buffers
                        copy.write_row((k, pad))
            waited = time.monotonic() - started
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM locked")
                print(cursor.fetchone()[0], waited >= 65)
        holder.close()
        """

    assert _lines(run_python(script)) == ["60000 True"]


@pytest.mark.postgres
def test_pgconnect_timeout_and_a_service_files_values_reach_the_doors_connections(
    run_python: RunPython, postgres_url: str, tmp_path: Any
) -> None:
    """libpq's environment and service file configure it below the URL: the door's
    defaults, given as connection parameters, silently replaced PGCONNECT_TIMEOUT and a
    service's connect_timeout and keepalives. Asked of the connection libpq made."""
    script = """
        import etl_database_schema as s
        s.check_login({url!r}, require_migrated=False)
        s.connect({url!r}, require_migrated=False)
        with s.models(s.LEDGER_APP):
            from django.db import connection
            connection.ensure_connection()
            used = {{o.keyword.decode(): (o.val or b"").decode()
                     for o in connection.connection.pgconn.info}}
            print(used["connect_timeout"], used["keepalives_idle"], used["keepalives_count"],
                  used["tcp_user_timeout"])
        """
    parts = urlsplit(postgres_url)
    services = tmp_path / "services.conf"
    services.write_text(
        f"[etl]\nhost={parts.hostname}\nport={parts.port or 5432}\n"
        f"user={parts.username or ''}\ndbname={parts.path.lstrip('/')}\n"
        "connect_timeout=7\nkeepalives_idle=77\ntcp_user_timeout=7000\n"
    )
    env_timeout = _lines(
        run_python(script.format(url=postgres_url), env={"PGCONNECT_TIMEOUT": "4"})
    )
    service = _lines(
        run_python(
            script.format(url="postgresql:///?service=etl"), env={"PGSERVICEFILE": str(services)}
        )
    )

    assert env_timeout == ["4 30 3 "]
    assert service == ["7 77 3 7000"]


@pytest.mark.postgres
@pytest.mark.parametrize("told", ["PGDATABASE", "PGSERVICE"])
def test_a_url_naming_no_database_reaches_the_one_libpqs_environment_names(
    run_python: RunPython, postgres_url: str, tmp_path: Any, told: str
) -> None:
    """``postgresql://user@host/`` takes the database from PGDATABASE or the service's
    section, as libpq (psql) does: the door refused it ("names no database")."""
    parts = urlsplit(postgres_url)
    database = parts.path.lstrip("/")
    services = tmp_path / "services.conf"
    services.write_text(f"[etl]\ndbname={database}\n")
    env = {"PGDATABASE": database}
    if told == "PGSERVICE":
        env = {"PGSERVICE": "etl", "PGSERVICEFILE": str(services), "PGDATABASE": "postgres"}
    url = urlunsplit(parts._replace(path="/"))
    script = f"""
        import etl_database_schema as s
        s.check_login({url!r}, require_migrated=False)
        s.connect({url!r}, require_migrated=False)
        with s.models(s.LEDGER_APP):
            from django.db import connection
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_database()")
                print(cursor.fetchone()[0])
        """

    assert _lines(run_python(script, env=env)) == [database]


@contextlib.contextmanager
def _server_without_tls() -> Iterator[int]:
    """A port whose server answers a TLS request as a PostgreSQL server without SSL does
    (``N``), then closes: what ``sslmode=require`` meets there."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            with client:
                client.settimeout(5)
                with contextlib.suppress(OSError):
                    client.recv(8)  # the SSLRequest
                    client.sendall(b"N")

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        server.join(timeout=5)
        listener.close()


def test_check_login_refuses_a_url_the_driver_cannot_connect_with_as_a_url_mistake(
    run_python: RunPython,
) -> None:
    """A URL whose options the driver refuses (an unknown option, a mistyped value) or
    that asks TLS of a server without it was an outage (a worker started, warning, and
    failed every unit, retried for ever) or an operation refused (exit 1, the setting not
    named): a URL mistake, the URL's password hidden."""
    with _server_without_tls() as port:
        at = f"etl:hunter2@127.0.0.1:{port}/etl"
        queries = ("sslmode=bogus", "no_such_option=1", "connect_timeout=soon", "sslmode=require")
        urls = [f"postgresql://{at}?{query}" for query in queries]
        script = """
            import etl_database_schema as s
            try:
                s.check_login({url!r})
                print("ok")
            except s.DatabaseUrlError as exc:
                print("url:", exc.url, "|", exc)
            except s.SchemaError as exc:
                print(type(exc).__name__, "|", exc)
            """
        results = [run_python(script.format(url=url)) for url in urls]  # one Django set-up each

    said = [line for result in results for line in _lines(result)]
    assert [line.split(" |")[0] for line in said] == [
        f"url: postgresql://etl:***@127.0.0.1:{port}/etl?{query}" for query in queries
    ], said
    assert 'invalid sslmode value: "bogus"' in said[0]
    assert 'invalid connection option "no_such_option"' in said[1]
    assert "connect_timeout" in said[2]
    assert "server does not support SSL, but SSL was required" in said[3]
    assert all("correct the URL" in line for line in said)
    assert not any("hunter2" in result.stdout + result.stderr for result in results)
