"""A database recreated, restored from an older schema or dropped under a running process.

A worker checks the migrations once, at its first connect. A deploy that drops and
recreates the database (or restores an older backup) after that left units failing with
the driver's raw ``relation … does not exist`` (a refused operation: never retried), and a
database dropped outright with the refused-login settings error (not retried either).
Each test runs the door in a subprocess (conftest ``run_python``) against a scratch
database of its own (conftest ``postgres_url``), which it drops and recreates.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

RunPython = Callable[..., subprocess.CompletedProcess[str]]

_PROCESS = """
import pickle
import psycopg
from psycopg import sql
import etl_database_schema as s

URL = {url!r}
NAME = URL.rsplit("/", 1)[1]

def admin(statement):
    with psycopg.connect({admin!r}, autocommit=True) as connection:
        connection.execute(sql.SQL(statement).format(sql.Identifier(NAME)))

def drop():
    admin("DROP DATABASE {{}} WITH (FORCE)")

def recreate():
    drop()
    admin("CREATE DATABASE {{}}")

def unit():
    with s.models(s.LEDGER_APP) as ledger:
        return len(list(ledger["PipelineRun"].objects.all()[:1]))

def attempt():
    try:
        return "ok %d" % unit()
    except s.SchemaError as exc:
        again = pickle.loads(pickle.dumps(exc))
        assert str(again) == str(exc) and vars(again) == vars(exc)
        return "%s %s retryable=%s: %s" % (
            type(exc).__name__, getattr(exc, "pending", "-"),
            isinstance(exc, s.DatabaseUnavailableError), exc)

s.connect(URL, apply_migrations=True)
print(attempt())
"""


def _ledger_after_0002(migrations: list[str]) -> list[str]:
    """The ledger's migrations after ``0002_alert`` (a database restored from then lacks)."""
    ledger = (name for name in migrations if name.startswith("etl_ledger."))
    return [name for name in ledger if name > "etl_ledger.0002_alert"]


def _run(run_python: RunPython, url: str, admin: str, body: str) -> list[str]:
    result = run_python(_PROCESS.format(url=url, admin=admin) + body)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.postgres
def test_a_database_recreated_empty_under_a_running_process_says_run_migrate_and_is_retried(
    run_python: RunPython, postgres_url: str, postgres_server_url: str, migrations: list[str]
) -> None:
    lines = _run(
        run_python,
        postgres_url,
        postgres_server_url,
        """
recreate()
print(attempt())
s.migrate()
print(attempt())
""",
    )

    before, recreated, migrated = lines
    assert before == "ok 0"
    assert recreated.startswith("SchemaBehindError ('etl_ledger.0001_initial', ")
    assert "retryable=True" in recreated
    none = f"holds none of the platform's schema (no migration applied, {len(migrations)} pending"
    assert none in recreated
    assert "run `etl-schema migrate`" in recreated
    assert "does not exist" in recreated  # what the unit met, said once
    assert "password" not in recreated
    assert migrated == "ok 0"


@pytest.mark.postgres
def test_a_database_restored_from_an_older_schema_names_the_missing_migrations(
    run_python: RunPython, postgres_url: str, postgres_server_url: str, migrations: list[str]
) -> None:
    """A column a later migration added (``holder``, 0003) is missing: UndefinedColumn."""
    lines = _run(
        run_python,
        postgres_url,
        postgres_server_url,
        """
recreate()
s.migrate("etl_ledger", "0002_alert")
s.migrate("etl_retail")
print(attempt())
""",
    )

    assert lines[0] == "ok 0"
    older = lines[1]
    missing = _ledger_after_0002(migrations)
    assert older.startswith(f"SchemaBehindError {tuple(missing)} retryable=True")
    assert missing[0] == "etl_ledger.0003_pipelinerun_holder"
    assert f"lacks {len(missing)} schema migration(s) ({', '.join(missing)})" in older
    assert "run `etl-schema migrate`" in older


@pytest.mark.postgres
def test_a_table_missing_from_a_fully_migrated_database_stays_refused_not_retried(
    run_python: RunPython, postgres_url: str, postgres_server_url: str
) -> None:
    """Every migration applied and still no table (dropped by hand): migrating will not
    bring it back, so the unit is not retried as if a deploy were under way."""
    lines = _run(
        run_python,
        postgres_url,
        postgres_server_url,
        """
with psycopg.connect(URL, autocommit=True) as own:
    own.execute("DROP TABLE etl_pipeline_run CASCADE")
print(attempt())
""",
    )

    assert lines[0] == "ok 0"
    assert lines[1].startswith("DatabaseRefusedError - retryable=False: ")
    assert "refused the operation" in lines[1]


@pytest.mark.postgres
def test_a_database_dropped_under_a_running_process_is_an_outage_not_a_settings_mistake(
    run_python: RunPython, postgres_url: str, postgres_server_url: str
) -> None:
    lines = _run(
        run_python,
        postgres_url,
        postgres_server_url,
        """
drop()
print(attempt())
admin("CREATE DATABASE {}")
print(attempt())
s.migrate()
print(attempt())
""",
    )

    before, dropped, recreated, migrated = lines
    assert before == "ok 0"
    assert dropped.startswith("DatabaseUnavailableError - retryable=True: ")
    assert "no longer exists" in dropped
    assert recreated.startswith("SchemaBehindError ")
    assert migrated == "ok 0"


@pytest.mark.postgres
def test_a_worker_whose_database_vanished_after_its_start_check_retries_and_a_typo_does_not(
    run_python: RunPython, postgres_url: str, postgres_server_url: str
) -> None:
    """A worker logs in before it forks (check_login); a process it forks connects at its
    first unit. The database gone by then is an outage; one never reached is the URL's
    mistake, refused as before."""
    script = _PROCESS.split("s.connect(URL,")[0].format(url=postgres_url, admin=postgres_server_url)
    vanished = run_python(
        script
        + """
s.check_login(URL)
print("logged in")
drop()
try:
    s.connect(URL)
except s.SchemaError as exc:
    print(type(exc).__name__, "no longer exists" in str(exc))
"""
    )
    typo = run_python(
        script
        + """
try:
    s.check_login(URL + "_typo")
except s.SchemaError as exc:
    print(type(exc).__name__, exc.reason)
"""
    )

    assert vanished.returncode == 0, vanished.stderr
    assert vanished.stdout.splitlines() == ["logged in", "DatabaseUnavailableError True"]
    assert typo.returncode == 0, typo.stderr
    assert typo.stdout.splitlines() == ["DatabaseLoginError invalid_catalog_name"]


def test_an_sqlite_file_replaced_by_an_empty_one_says_run_migrate_and_is_retried(
    run_python: RunPython,
) -> None:
    result = run_python(
        """
        import os
        import etl_database_schema as s

        s.connect("sqlite:///etl.sqlite3", apply_migrations=True)
        os.remove("etl.sqlite3")
        try:
            s.get_run("r1")
        except s.SchemaError as exc:
            print(type(exc).__name__, isinstance(exc, s.DatabaseUnavailableError), exc.met)
        s.migrate()
        print("migrated", s.get_run("r1"))
        """
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "SchemaBehindError True no such table: etl_pipeline_run",
        "migrated None",
    ]


_OUR_SQL_BUG = """
import etl_database_schema as s
from django.db import connection

s.connect({url!r}, apply_migrations=True)
try:
    with s.models(s.LEDGER_APP):
        with connection.cursor() as cursor:
            cursor.execute("SELECT no_such_column FROM etl_pipeline_run")
except s.SchemaError as exc:
    print(type(exc).__name__, isinstance(exc, s.DatabaseUnavailableError))
    print(exc)
"""


@pytest.mark.parametrize("url", ["sqlite:///etl.sqlite3", "sqlite:///:memory:"])
def test_a_column_our_own_sql_gets_wrong_on_a_migrated_sqlite_database_is_refused_not_retried(
    run_python: RunPython, url: str
) -> None:
    """No migration is missing (and an in-memory database cannot be recreated under the
    process): a ``no such column`` is a bug in the SQL, refused like PostgreSQL's, never
    retried as an outage nor told to run ``etl-schema migrate``."""
    result = run_python(_OUR_SQL_BUG.format(url=url))

    assert result.returncode == 0, result.stderr
    kind, message = result.stdout.splitlines()
    assert kind == "DatabaseRefusedError False"
    assert "no such column: no_such_column" in message
    assert "etl-schema migrate" not in message


@pytest.mark.postgres
def test_a_unit_meeting_a_missing_table_whose_migration_check_cannot_connect_is_retried(
    run_python: RunPython, postgres_url: str, postgres_server_url: str
) -> None:
    """The check runs on a connection of its own; one the server will not give (out of
    connection slots, the database going away again mid-deploy) is an outage: the unit is
    retried, not failed for good with the raw ``relation … does not exist``."""
    lines = _run(
        run_python,
        postgres_url,
        postgres_server_url,
        """
from django.db import connections

create_connection = connections.create_connection

def refused(alias):  # a new connection the server will not give
    own = create_connection(alias)
    own.settings_dict = {**own.settings_dict, "PORT": "1"}
    return own

recreate()
connections.create_connection = refused
print(attempt())
""",
    )

    assert lines[0] == "ok 0"
    assert lines[1].startswith("DatabaseUnavailableError - retryable=True: ")
    assert "could not check its migrations" in lines[1]
    assert 'relation "etl_pipeline_run" does not exist' in lines[1]


def test_a_migration_connect_applies_that_meets_a_missing_table_is_refused_not_told_to_migrate(
    run_python: RunPython,
) -> None:
    """``connect(apply_migrations=True)`` (embedded SQLite) whose migration fails on a table
    dropped by hand: the migration is what broke, so neither retried as a deploy under way
    nor told to run ``etl-schema migrate`` (which fails the same way)."""
    result = run_python(
        """
        import sqlite3, subprocess, sys
        import etl_database_schema as s

        subprocess.run([sys.executable, "-c", "import etl_database_schema as s; "
            "s.setup('sqlite:///etl.sqlite3'); s.migrate('etl_ledger', '0002_alert'); "
            "s.migrate('etl_retail')"], check=True)
        with sqlite3.connect("etl.sqlite3") as by_hand:
            by_hand.execute("DROP TABLE etl_pipeline_run")
        try:
            s.connect("sqlite:///etl.sqlite3", apply_migrations=True)
        except s.SchemaError as exc:
            print(type(exc).__name__, isinstance(exc, s.DatabaseUnavailableError))
            print(exc)
        """
    )

    assert result.returncode == 0, result.stderr
    kind, message = result.stdout.splitlines()
    assert kind == "DatabaseRefusedError False"
    assert "no such table: etl_pipeline_run" in message
    assert "etl-schema migrate" not in message


def test_a_write_to_an_sqlite_database_restored_from_an_older_schema_names_the_migrations(
    run_python: RunPython, migrations: list[str]
) -> None:
    """SQLite says a column an INSERT names is missing in words of its own (``table … has
    no column named …``, PostgreSQL's ``undefined_column`` either way): a run started on
    the restored database is retried saying what to migrate, not an unexplained outage."""
    result = run_python(
        """
        import shutil, subprocess, sys
        import etl_database_schema as s

        subprocess.run([sys.executable, "-c", "import etl_database_schema as s; "
            "s.setup('sqlite:///older.sqlite3'); s.migrate('etl_ledger', '0002_alert'); "
            "s.migrate('etl_retail')"], check=True)
        s.connect("sqlite:///etl.sqlite3", apply_migrations=True)
        shutil.copyfile("older.sqlite3", "etl.sqlite3")  # the backup restored
        try:
            s.start_run("r1", lane="data_pipeline", job="transform")
        except s.SchemaError as exc:
            print(type(exc).__name__, isinstance(exc, s.DatabaseUnavailableError), exc.met)
            print(exc)
        """
    )

    assert result.returncode == 0, result.stderr
    kind, message = result.stdout.splitlines()
    assert kind == ("SchemaBehindError True table etl_pipeline_run has no column named holder")
    missing = _ledger_after_0002(migrations)
    assert f"lacks {len(missing)} schema migration(s) ({', '.join(missing)})" in message
    assert "run `etl-schema migrate`" in message


def test_an_sqlite_directory_removed_under_a_running_process_is_an_outage_not_the_urls(
    run_python: RunPython,
) -> None:
    """A directory this process reached its SQLite file in, gone (a volume unmounted, a
    data directory recreated by a deploy), is an outage a unit retries once it is back,
    like a PostgreSQL database dropped under it; only a directory never reached is the
    URL's mistake."""
    result = run_python(
        """
        import os, shutil
        import etl_database_schema as s

        os.mkdir("data")
        s.connect("sqlite:///data/etl.sqlite3", apply_migrations=True)
        shutil.rmtree("data")
        try:
            s.get_run("r1")
        except s.SchemaError as exc:
            print(type(exc).__name__, isinstance(exc, s.DatabaseUnavailableError))
        os.mkdir("data")
        s.migrate()
        print("back", s.get_run("r1"))
        """
    )

    typo = run_python(
        """
        import etl_database_schema as s

        try:
            s.connect("sqlite:///nodir/etl.sqlite3", apply_migrations=True)
        except s.SchemaError as exc:
            print(type(exc).__name__, isinstance(exc, s.DatabaseUnavailableError))
        """
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["DatabaseUnavailableError True", "back None"]
    assert typo.returncode == 0, typo.stderr
    assert typo.stdout.splitlines() == ["DatabaseUrlError False"]


@pytest.mark.postgres
def test_a_service_file_rewritten_under_a_running_process_is_an_outage_not_the_urls(
    run_python: RunPython, postgres_url: str, tmp_path: Path
) -> None:
    """A service this process logged in through, found in no service file a moment later
    (a configuration tool rewriting the file in place, truncated first), is an outage the
    next attempt outlives; a service never reached is the URL's mistake, as before."""
    parts = urlsplit(postgres_url)
    services = tmp_path / "services.conf"
    section = (
        f"[etl]\nhost={parts.hostname}\nport={parts.port or 5432}\n"
        f"user={parts.username or ''}\ndbname={parts.path.lstrip('/')}\n"
    )
    services.write_text(section)
    script = f"""
        import etl_database_schema as s

        URL = "postgresql:///?service=etl"
        s.check_login(URL)
        s.connect(URL, require_migrated=False)
        def attempt():
            from django.db import connection
            connection.close()  # a unit's fresh connection reads the service file again
            try:
                with s.models(s.LEDGER_APP):
                    connection.ensure_connection()
                return "ok"
            except s.SchemaError as exc:
                return f"{{type(exc).__name__}} {{isinstance(exc, s.DatabaseUnavailableError)}}"

        print(attempt())
        open({str(services)!r}, "w").close()
        print(attempt())
        with open({str(services)!r}, "w") as rewritten:
            rewritten.write({section!r})
        print(attempt())
        """
    never = """
        import etl_database_schema as s
        try:
            s.check_login("postgresql:///?service=etl_typo")
        except s.SchemaError as exc:
            print(type(exc).__name__)
        """
    env = {"PGSERVICEFILE": str(services)}

    assert _lines(run_python(script, env=env)) == ["ok", "DatabaseUnavailableError True", "ok"]
    assert _lines(run_python(never, env=env)) == ["DatabaseUrlError"]


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_an_sqlite_directory_gone_before_a_forked_process_first_connects_is_an_outage(
    run_python: RunPython,
) -> None:
    """A worker on SQLite checks its database before it forks (check_login); a process
    it forks later (one replacing another) connects at its first unit. The directory the
    worker reached, gone by then (a volume unmounted), is an outage that process retries,
    as a PostgreSQL database dropped there is, not a URL mistake it fails the unit with."""
    result = run_python(
        """
        import os, shutil
        import etl_database_schema as s

        os.mkdir("data")
        url = "sqlite:///data/etl.sqlite3"
        s.setup(url)
        s.migrate()
        s.check_login(url, require_migrated=True)
        print("checked")
        shutil.rmtree("data")
        pid = os.fork()
        if pid == 0:  # the forked process's first unit
            try:
                s.connect(url)
            except s.SchemaError as exc:
                print(type(exc).__name__, isinstance(exc, s.DatabaseUnavailableError), flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        """
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["checked", "DatabaseUnavailableError True"]


def test_a_service_found_at_start_while_its_server_was_down_missing_a_moment_later_is_retried(
    run_python: RunPython, tmp_path: Path
) -> None:
    """A worker started while its database was down (its start check an outage: it starts
    anyway) found the service in the service file. The operator rewrites that file in
    place (the service pointed at another host): a process connecting in that moment is
    told of an outage and retried, not of a URL mistake that fails its unit for good."""
    services = tmp_path / "pg_service.conf"
    services.write_text("[etl]\nhost=127.0.0.1\nport=1\ndbname=etl\n")
    script = f"""
        import os
        import etl_database_schema as s

        URL = "postgresql:///?service=etl"
        try:
            s.check_login(URL)
        except s.SchemaError as exc:
            print(type(exc).__name__)
        open({str(services)!r}, "w").close()  # being rewritten
        pid = os.fork()
        if pid == 0:  # a worker process's first unit
            try:
                s.connect(URL)
            except s.SchemaError as exc:
                print(type(exc).__name__, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
        """

    assert _lines(run_python(script, env={"PGSERVICEFILE": str(services)})) == [
        "DatabaseUnavailableError",
        "DatabaseUnavailableError",
    ]


def test_a_service_file_edited_under_a_running_worker_does_not_refuse_its_own_url(
    run_python: RunPython, tmp_path: Path
) -> None:
    """A worker set up for ``?service=etl``; the operator edits the service file (another
    host, its own connect_timeout). A process the worker forks after that sets up the same
    URL: the same database, not a "cannot switch" conflict failing every unit it takes."""
    services = tmp_path / "pg_service.conf"
    services.write_text("[etl]\nhost=127.0.0.1\nport=1\ndbname=etl\n")
    script = f"""
        import etl_database_schema as s

        URL = "postgresql:///?service=etl"
        s.setup(URL)
        with open({str(services)!r}, "w") as edited:
            edited.write("[etl]\\nhost=127.0.0.1\\nport=2\\ndbname=etl\\nconnect_timeout=3\\n")
        s.setup(URL)
        print("same database")
        """

    assert _lines(run_python(script, env={"PGSERVICEFILE": str(services)})) == ["same database"]
