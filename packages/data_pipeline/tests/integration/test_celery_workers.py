"""``run``/``backfill --executor celery`` and ``schedule`` with real ``worker`` processes.

Against the machine's Redis and RabbitMQ and PostgreSQL: a run fanned out to two
workers loads each partition once; a worker SIGKILLed inside a load's transaction
leaves its unit to be redelivered, and the rows are loaded once; SIGTERM lets the
partition in hand finish and leaves the rest queued; a backfill enqueued
with ``--no-wait`` releases its job's lease and is finished by the workers alone; of
two schedulers one fires, the other stands by until the first is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from data_pipeline.ledger import job_lease_key
from etl_core.storage import ObjectStore, open_store, read_lease
from etl_core.testing.brokers import TestBroker
from etl_core.testing.fixtures import REFUSED_LOGIN_PASSWORD
from etl_core.testing.logs import start_refused
from etl_core.testing.ports import free_port
from etl_core.testing.processes import BackgroundProcess
from etl_core.testing.scripts import run_script
from etl_core.work.celery import celery_app, lane_queues, task_name
from etl_core.work.events import partition_unit

BIN = Path(sys.executable).parent / "etl-data-pipeline"
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# short limits, so a unit of a dead Redis worker is visible again within the test
LIMITS = {
    "ETL_TASK_SOFT_TIME_LIMIT": "20s",
    "ETL_TASK_TIME_LIMIT": "25s",
    "ETL_BROKER_VISIBILITY_TIMEOUT": "30s",
}


@pytest.fixture
def lake(
    tmp_path: Path, config_dir: Path, local_store: ObjectStore, retail: Any, postgres_url: str
) -> dict[str, str]:
    """Four validated POS days, a migrated database; the environment every process shares."""
    retail.seed(local_store, DAYS[2:])
    migrated = run_script("etl-schema", "migrate", cwd=tmp_path, env={"DATABASE_URL": postgres_url})
    assert migrated.returncode == 0, migrated.stderr
    (tmp_path / "scratch").mkdir()
    return {
        "ETL_STORAGE_URL": str(tmp_path / "store"),
        "ETL_CONFIG_DIR": str(config_dir),
        "ETL_WORK_DIR": str(tmp_path / "scratch"),
        "ETL_LOG_FORMAT": "json",
        "ETL_DUCKDB_MEMORY_LIMIT": "256MB",
        "ETL_DUCKDB_THREADS": "1",
        "DATABASE_URL": postgres_url,
        **LIMITS,
    }


def environment(lake: dict[str, str], broker: TestBroker, **extra: str) -> dict[str, str]:
    return {**os.environ, **broker.env(), **lake, **extra}


def worker(
    tmp_path: Path, lake: dict[str, str], broker: TestBroker, name: str, **extra: str
) -> BackgroundProcess:
    started = BackgroundProcess(
        [str(BIN), "worker", "--concurrency", "1"],
        env=environment(lake, broker, **extra),
        log=tmp_path / f"{name}.log",
    )
    started.wait_for(" ready.", timeout=90)
    return started


def pipeline(
    lake: dict[str, str], broker: TestBroker, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args],
        env=environment(lake, broker, **extra),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def events(log: str, event: str) -> Counter[str]:
    """How many times each partition date logged ``event``."""
    found: Counter[str] = Counter()
    for line in log.splitlines():
        if line.startswith("{") and f'"event": "{event}"' in line:
            found[json.loads(line).get("dt", "")] += 1
    return found


def loaded_rows(url: str) -> list[tuple[str, int, int]]:
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT dt::text, count(*), count(DISTINCT transaction_id) "
            "FROM retail_sales_transaction GROUP BY dt ORDER BY dt"
        ).fetchall()
    return [(str(dt), int(n), int(distinct)) for dt, n, distinct in rows]


def test_a_run_fanned_out_to_two_workers_loads_each_partition_once(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    with (
        worker(tmp_path, lake, celery_broker, "w1") as first,
        worker(tmp_path, lake, celery_broker, "w2") as second,
    ):
        done = pipeline(lake, celery_broker, "run", "--executor", "celery")
        logs = first.log(), second.log()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 partition(s) processed, 0 failed" in done.stdout
    loads = events(logs[0], "partition loaded") + events(logs[1], "partition loaded")
    assert loads == dict.fromkeys(DAYS, 1)
    assert all(events(log, "partition loaded") for log in logs)  # both workers took some
    assert loaded_rows(lake["DATABASE_URL"]) == [(day, 200, 200) for day in DAYS]
    again = pipeline(lake, celery_broker, "run", "--executor", "celery")
    assert "0 partition(s) processed, 0 failed" in again.stdout, again.stderr[-3000:]


def test_a_worker_killed_inside_a_load_is_redelivered_and_the_rows_loaded_once(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    pause = {"ETL_FAULT_AT": "load:pause", "ETL_FAULT_PAUSE": "120"}
    with worker(tmp_path, lake, celery_broker, "doomed", **pause) as doomed:
        enqueued = pipeline(lake, celery_broker, "run", "--executor", "celery", "--no-wait")
        assert enqueued.returncode == 0, enqueued.stderr[-3000:]
        assert "enqueued 4 partition(s)" in enqueued.stdout
        doomed.wait_for("pause at load", timeout=120)
        doomed.kill_group()  # the host dies inside the load's transaction
        first = doomed.log()
    assert not events(first, "partition loaded")
    (killed,) = events(first, "partition transformed")
    assert loaded_rows(lake["DATABASE_URL"]) == []
    with worker(tmp_path, lake, celery_broker, "heir") as heir:
        heir.wait_for('"event": "partition loaded"', timeout=150, count=4)
        second = heir.log()
    assert events(second, "partition loaded") == dict.fromkeys(DAYS, 1)
    transformed = events(second, "partition transformed")
    assert killed not in transformed  # redelivered: its transform stood, only its load ran
    assert set(transformed) == set(DAYS) - {killed}
    assert loaded_rows(lake["DATABASE_URL"]) == [(day, 200, 200) for day in DAYS]


def backfill_ledger(url: str) -> tuple[list[str], list[tuple[str, int, int | None]]]:
    """The jobs' states, and every partition's state, attempts and rows (read with psycopg:
    this process's Django is bound to the first test's database)."""
    import psycopg

    with psycopg.connect(url) as connection:
        jobs = connection.execute("SELECT state FROM etl_backfill_job").fetchall()
        partitions = connection.execute(
            "SELECT state, attempts, rows_written FROM etl_backfill_partition "
            "ORDER BY partition_date"
        ).fetchall()
    return [str(j[0]) for j in jobs], [(str(a), int(b), c) for a, b, c in partitions]


def job_id(url: str) -> str:
    """The one backfill job's id."""
    import psycopg

    with psycopg.connect(url) as connection:
        ((found,),) = connection.execute("SELECT id FROM etl_backfill_job").fetchall()
    return str(found)


def test_a_backfill_enqueued_without_waiting_is_finished_by_the_workers(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    args = ["backfill", "--dataset", "pos", "--from", DAYS[0], "--to", DAYS[-1]]
    enqueued = pipeline(lake, celery_broker, *args, "--executor", "celery", "--no-wait")
    assert enqueued.returncode == 0, enqueued.stderr[-3000:]
    assert "enqueued 4 partition(s)" in enqueued.stdout
    url = lake["DATABASE_URL"]
    assert backfill_ledger(url) == (["running"], [("pending", 0, None)] * 4)
    lease = read_lease(open_store(lake["ETL_STORAGE_URL"]), job_lease_key(job_id(url)))
    assert lease is not None
    assert lease.released  # handed over at once, on every host: not left to expire
    status = ["backfill", "--dataset", "pos", "--status", job_id(url)]
    waiting = pipeline(lake, celery_broker, *status)
    assert waiting.returncode == 0, waiting.stderr[-3000:]
    assert "(database ledger)" in waiting.stdout
    assert "queued; 4 pending" in waiting.stdout  # handed over: its units wait on the queue
    assert "handed to the workers at" in waiting.stdout
    assert "(executor celery)" in waiting.stdout
    with worker(tmp_path, lake, celery_broker, "w"):
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and backfill_ledger(url)[0] == ["running"]:
            time.sleep(0.5)
    assert backfill_ledger(url) == (["succeeded"], [("succeeded", 1, 200)] * 4)
    assert loaded_rows(url) == [(day, 200, 200) for day in DAYS]
    done = pipeline(lake, celery_broker, *status)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "succeeded; 4 succeeded" in done.stdout


def test_one_scheduler_fires_while_a_second_stands_by_until_the_first_is_gone(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    fast = {
        "ETL_EXECUTOR": "celery",
        "ETL_SCHEDULE_RUN_INTERVAL": "1s",
        "ETL_SCHEDULE_TICK": "0.2s",
    }
    command = [str(BIN), "schedule", "--max-ticks", "600"]
    env = environment(lake, celery_broker, **fast)
    with BackgroundProcess(command, env=env, log=tmp_path / "leader.log") as leader:
        leader.wait_for("scheduled run fired: 4 unit(s) enqueued", timeout=60, count=2)
        spare = pipeline(lake, celery_broker, "schedule", "--max-ticks", "10", **fast)
        assert spare.returncode == 0, spare.stderr[-3000:]
        assert "10 tick(s), 0 leading; fired: run 0x" in spare.stdout
        assert "scheduler standing by" in spare.stderr
        leader.kill_group()  # the leader's host dies: its lease is free at once here
    queue = lane_queues(celery_broker.settings(), "data_pipeline").work
    assert celery_broker.queue_length(queue) >= 8  # only the leader's firings
    heir = pipeline(lake, celery_broker, "schedule", "--max-ticks", "10", **fast)
    assert heir.returncode == 0, heir.stderr[-3000:]
    assert "10 tick(s), 10 leading" in heir.stdout
    assert "scheduler leading (fencing token 2)" in heir.stderr


def test_no_wait_and_schedule_without_the_celery_executor_are_bad_usage(
    lake: dict[str, str], celery_broker: TestBroker
) -> None:
    for args, told in (
        (["run", "--no-wait"], "--no-wait needs --executor celery"),
        (["schedule", "--max-ticks", "1"], "schedule needs ETL_EXECUTOR=celery"),
    ):
        done = pipeline(lake, celery_broker, *args)
        assert done.returncode == 2, done.stderr
        assert told in done.stderr
    unknown = pipeline(lake, celery_broker, "run", "--executor", "threads")
    assert unknown.returncode == 2
    assert "executor" in unknown.stderr


def _unused_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


def test_no_wait_with_an_unreachable_broker_fails_at_once_and_starts_no_backfill_job(
    lake: dict[str, str],
) -> None:
    broker = f"redis://:hunter2@127.0.0.1:{_unused_port()}/0"
    env = {**os.environ, **lake, "ETL_BROKER_URL": broker, "ETL_EXECUTOR": "celery"}
    backfill = ["backfill", "--dataset", "pos", "--from", DAYS[0], "--to", DAYS[-1]]
    for args in (["run"], backfill):
        done = subprocess.run(
            [str(BIN), *args, "--no-wait"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1, done.stderr[-3000:]
        assert "the broker redis://:***@127.0.0.1:" in done.stderr
        assert "did not answer" in done.stderr
        assert "Traceback" not in done.stderr
        assert "hunter2" not in done.stderr
    assert backfill_ledger(lake["DATABASE_URL"]) == ([], [])  # no job left holding its lease


def test_a_followed_backfill_on_a_worker_reports_as_a_local_one(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    args = ["backfill", "--dataset", "pos", "--from", DAYS[0], "--to", DAYS[1]]
    with worker(tmp_path, lake, celery_broker, "w"):
        done = pipeline(lake, celery_broker, *args, "--executor", "celery")
    assert done.returncode == 0, done.stderr[-3000:]
    assert ": 2 succeeded, 0 failed, 0 already done, 400 rows" in done.stdout
    assert loaded_rows(lake["DATABASE_URL"]) == [(day, 200, 200) for day in DAYS[:2]]


def test_sigterm_lets_the_partition_in_hand_finish_and_leaves_the_rest_queued(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    pause = {"ETL_FAULT_AT": "transform:pause", "ETL_FAULT_PAUSE": "3"}
    with worker(tmp_path, lake, celery_broker, "stopped", **pause) as stopped:
        enqueued = pipeline(lake, celery_broker, "run", "--executor", "celery", "--no-wait")
        assert enqueued.returncode == 0, enqueued.stderr[-3000:]
        stopped.wait_for("pause at transform", timeout=120)
        stopped.signal(signal.SIGTERM)  # as `docker stop` does
        assert stopped.wait(timeout=90) == 0, stopped.log()[-3000:]
        first = events(stopped.log(), "partition loaded")
    assert sum(first.values()) == 1  # the one in hand, and no other
    queue = lane_queues(celery_broker.settings(), "data_pipeline").work
    assert celery_broker.queue_length(queue) == 3  # nothing lost
    with worker(tmp_path, lake, celery_broker, "next") as following:
        following.wait_for('"event": "partition loaded"', timeout=150, count=3)
        second = events(following.log(), "partition loaded")
    assert first + second == dict.fromkeys(DAYS, 1)
    assert loaded_rows(lake["DATABASE_URL"]) == [(day, 200, 200) for day in DAYS]


def test_a_partition_that_kills_its_worker_every_time_is_dead_lettered_after_the_limit(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    poison = {
        "ETL_FAULT_AT": "load:kill",  # a "segfault" inside every load
        "ETL_TASK_MAX_DELIVERIES": "2",
        "ETL_TASK_SOFT_TIME_LIMIT": "3s",
        "ETL_TASK_TIME_LIMIT": "8s",
        "ETL_BROKER_VISIBILITY_TIMEOUT": "10s",  # Redis hands an unacked unit back sooner
    }
    unit = partition_unit("pos", date.fromisoformat(DAYS[2]))
    queues = lane_queues(celery_broker.settings(), "data_pipeline")
    with worker(tmp_path, lake, celery_broker, "crashing", **poison) as crashing:
        app = celery_app(celery_broker.settings(), "data_pipeline")
        app.send_task(task_name("data_pipeline"), args=[unit.to_dict()], queue=queues.work)
        deadline = time.monotonic() + 150
        while not celery_broker.queue_length(queues.dead) and time.monotonic() < deadline:
            time.sleep(0.5)
        log = crashing.log()
    assert log.count("kill at load") == 2  # two deliveries, each one killed
    ((headers, body),) = celery_broker.messages(queues.dead)
    assert body[0] == [unit.to_dict()]
    assert "delivered 3 times (limit 2)" in headers["etl_dead_reason"]
    assert loaded_rows(lake["DATABASE_URL"]) == []


def test_a_run_whose_database_url_is_spelled_otherwise_than_the_workers_is_loaded(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    # the same database, written another way by the command (its other scheme, the host
    # by its other loopback name, the default port written or left out, an option): its
    # workers refused every partition (ForeignUnitError), exit 1, nothing loaded
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(lake["DATABASE_URL"])
    host = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(parts.hostname or "")
    assert host is not None, parts.hostname  # the test database is on this machine
    user = parts.netloc.rpartition("@")[0]
    port = "" if parts.port in (None, 5432) else f":{parts.port}"  # 5432 left out
    netloc = f"{user}@{host}{port}" if user else f"{host}{port}"
    spelled = urlunsplit(("postgres", netloc, parts.path, "application_name=caller", ""))
    _run_is_loaded_by_a_worker(tmp_path, lake, celery_broker, spelled)


def test_a_run_reaching_the_workers_database_by_another_name_is_loaded(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    # the compose stack's PostgreSQL is 127.0.0.1:15432 from the host, postgres:5432 to its
    # workers: no spelling rule makes the two URLs one, and the workers refused every
    # partition of a run from the host (ForeignUnitError). Here: TCP for the workers, the
    # server's Unix socket for the command; its database's id (etl_database_id) says it is
    # theirs.
    from urllib.parse import urlsplit

    parts = urlsplit(lake["DATABASE_URL"])
    socket_dir = Path("/var/run/postgresql")
    if not (socket_dir / f".s.PGSQL.{parts.port or 5432}").exists():
        pytest.skip(f"PostgreSQL has no Unix socket in {socket_dir} on this machine")
    user = parts.username or "postgres"
    query = f"host={socket_dir}&port={parts.port or 5432}"
    by_socket = f"postgresql://{user}@{parts.path}?{query}"
    _run_is_loaded_by_a_worker(tmp_path, lake, celery_broker, by_socket)


def _run_is_loaded_by_a_worker(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker, url: str
) -> None:
    """Check that a ``run`` on Celery whose command reaches the database as ``url``
    is loaded whole by a worker reaching it as ``lake`` says, none of its units refused
    as another database's (ForeignUnitError)."""
    with worker(tmp_path, lake, celery_broker, "w1") as one:
        done = pipeline(lake, celery_broker, "run", "--executor", "celery", DATABASE_URL=url)
        said = one.log()
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "4 partition(s) processed, 0 failed" in done.stdout
    assert "ForeignUnitError" not in said
    assert loaded_rows(lake["DATABASE_URL"]) == [(day, 200, 200) for day in DAYS]


@pytest.mark.parametrize(
    ("wrong", "named"),
    [("database", 'database "etl_no_such_database"'), ("role", 'role "etl_no_such_role"')],
)
def test_a_worker_whose_database_refuses_the_login_refuses_to_start_naming_the_setting(
    tmp_path: Path,
    lake: dict[str, str],
    celery_broker: TestBroker,
    refused_login_urls: dict[str, str],
    wrong: str,
    named: str,
) -> None:
    """It started, answered ping (the image's HEALTHCHECK) and failed every unit it took
    with the refused login, for ever."""
    url = refused_login_urls[wrong]
    done, errors = start_refused(
        [str(BIN), "worker", "--concurrency", "1"],
        environment(lake, celery_broker, DATABASE_URL=url),
    )
    assert "(from env DATABASE_URL)" in errors, done.stderr[-3000:]
    assert named in errors
    assert "refused the login" in errors
    assert REFUSED_LOGIN_PASSWORD not in done.stdout + done.stderr
    assert str(urlsplit(url).password) not in done.stdout + done.stderr


def test_a_worker_whose_database_lacks_migrations_refuses_to_start_naming_them(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    """It started, answered ping and failed every unit it took with the pending
    migrations (each worker process said them as it started, the units' messages lost)."""
    back = run_script(
        "etl-schema",
        "migrate",
        "etl_ledger",
        "0006",
        cwd=tmp_path,
        env=lake,  # a deploy's new one
    )
    assert back.returncode == 0, back.stderr
    done, errors = start_refused(
        [str(BIN), "worker", "--concurrency", "1"], environment(lake, celery_broker)
    )
    assert "(from env DATABASE_URL)" in errors, done.stderr[-3000:]
    assert "etl_ledger.0007_alert_store" in errors
    assert "run `etl-schema migrate`" in errors


def test_a_worker_started_while_its_database_is_down_starts_and_loads_once_it_answers(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    """An outage is no settings mistake: the worker starts (saying so) and its units
    connect once the database answers."""
    parts = urlsplit(lake["DATABASE_URL"])
    port = free_port()  # the worker's way to the database: nothing listens there yet
    netloc = parts.netloc.rpartition("@")[0]
    relayed = urlunsplit(parts._replace(netloc=f"{netloc + '@' if netloc else ''}127.0.0.1:{port}"))
    with worker(tmp_path, lake, celery_broker, "w", DATABASE_URL=relayed) as started:
        warned = started.log()
        with _relay(port, parts.hostname or "127.0.0.1", parts.port or 5432):
            done = pipeline(lake, celery_broker, "run", "--executor", "celery")
    assert "is unavailable" in warned, warned[-3000:]
    assert "the worker starts anyway" in warned
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "4 partition(s) processed, 0 failed" in done.stdout
    assert loaded_rows(lake["DATABASE_URL"]) == [(day, 200, 200) for day in DAYS]


def test_a_worker_started_while_its_database_is_down_warns_of_another_stores_rows_once_up(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    """The start-up check could not look (the database was down), and its processes no
    longer did: a worker started before its database (a compose stack coming up) never
    said the database was shared with another deployment."""
    import psycopg

    with psycopg.connect(lake["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(
            "INSERT INTO etl_freshness_status (store, dataset, level, message, changed_at) "
            "VALUES ('s3://staging-lake/etl', 'pos', 'ok', '', '2026-11-01 00:00:00+00')"
        )
    parts = urlsplit(lake["DATABASE_URL"])
    port = free_port()  # nothing listens there yet: the start-up check meets an outage
    netloc = parts.netloc.rpartition("@")[0]
    relayed = urlunsplit(parts._replace(netloc=f"{netloc + '@' if netloc else ''}127.0.0.1:{port}"))
    with worker(tmp_path, lake, celery_broker, "w", DATABASE_URL=relayed) as started:
        with _relay(port, parts.hostname or "127.0.0.1", parts.port or 5432):
            done = pipeline(lake, celery_broker, "run", "--executor", "celery")
        log = started.log()
    assert "the worker starts anyway" in log, log[-3000:]
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    said = [line for line in log.splitlines() if "other object store" in line]
    assert len(said) == 1, said  # its one process, once
    assert "s3://staging-lake/etl" in said[0]


@contextlib.contextmanager
def _relay(port: int, host: str, target: int) -> Iterator[None]:
    """Relay TCP connections of 127.0.0.1:``port`` to ``host``:``target`` while open."""
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            server = socket.create_connection((host, target))
            for ends in ((client, server), (server, client)):
                threading.Thread(target=pump, args=ends, daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield
    finally:
        stop.set()
        acceptor.join(timeout=5)
        listener.close()


def test_a_worker_whose_database_is_recreated_under_it_loads_into_the_new_one_unrestarted(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker, postgres_server_url: str
) -> None:
    """A deploy dropping and recreating the database (a new volume) while the workers
    run: each unit connects anew, so the next one loads into the new database once it is
    migrated, without a worker restart."""
    import psycopg
    from psycopg import sql

    url = lake["DATABASE_URL"]
    name = sql.Identifier(urlsplit(url).path.lstrip("/"))
    with worker(tmp_path, lake, celery_broker, "w") as started:
        started.wait_for("warm", timeout=60)  # its process connected to the old database
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
            admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
        migrated = run_script("etl-schema", "migrate", cwd=tmp_path, env={"DATABASE_URL": url})
        assert migrated.returncode == 0, migrated.stderr
        done = pipeline(lake, celery_broker, "run", "--executor", "celery")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "4 partition(s) processed, 0 failed" in done.stdout
    assert loaded_rows(url) == [(day, 200, 200) for day in DAYS]


def test_a_worker_whose_database_url_asks_what_the_driver_refuses_refuses_to_start(
    lake: dict[str, str], celery_broker: TestBroker
) -> None:
    """``?sslmode=requried`` (a typo) was an outage to the start-up check: the worker
    started, answered ping and failed every unit it took, retried for ever."""
    url = f"{lake['DATABASE_URL']}{'&' if '?' in lake['DATABASE_URL'] else '?'}sslmode=requried"
    done, errors = start_refused(
        [str(BIN), "worker", "--concurrency", "1"],
        environment(lake, celery_broker, DATABASE_URL=url),
    )
    assert "(from env DATABASE_URL)" in errors, done.stderr[-3000:]
    assert 'invalid sslmode value: "requried"' in errors
    assert "correct the URL" in errors
    assert "the worker starts anyway" not in done.stderr


def test_a_worker_on_a_database_holding_another_stores_rows_warns_once_not_per_process(
    tmp_path: Path, lake: dict[str, str], celery_broker: TestBroker
) -> None:
    """Each of its processes checked the ledger as it built its context and warned again:
    N warnings for a worker of concurrency N, and again for every process replacing one."""
    import psycopg

    with psycopg.connect(lake["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(
            "INSERT INTO etl_freshness_status (store, dataset, level, message, changed_at) "
            "VALUES ('s3://staging-lake/etl', 'pos', 'ok', '', '2026-11-01 00:00:00+00')"
        )
    started = BackgroundProcess(
        [str(BIN), "worker", "--concurrency", "3"],
        env=environment(lake, celery_broker),
        log=tmp_path / "shared.log",
    )
    with started:
        started.wait_for(" ready.", timeout=90)
        started.wait_for("warm: the lane's context built", timeout=60, count=3)
        log = started.log()
    said = [line for line in log.splitlines() if "other object store" in line]
    assert len(said) == 1, said
    assert "s3://staging-lake/etl" in said[0]
