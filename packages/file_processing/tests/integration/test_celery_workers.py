"""``scan --executor celery`` with real ``worker`` processes on Redis and RabbitMQ.

Every landing object is processed exactly once however its unit travels: fanned out
to two workers, redelivered after its worker was SIGKILLed mid-publish, or left in the
queue by a worker stopped with SIGTERM (which finishes the object in hand first).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from etl_core.artifacts import read_deliveries
from etl_core.testing.brokers import TestBroker
from etl_core.testing.fixtures import REFUSED_LOGIN_PASSWORD
from etl_core.testing.logs import start_refused
from etl_core.testing.processes import BackgroundProcess
from etl_core.testing.statsd import agent_address, statsd_agent
from etl_core.work.celery import celery_app, lane_queues, task_name

BIN = Path(sys.executable).parent / "etl-file-processing"
Orders = Callable[..., bytes]

pytestmark = pytest.mark.slow

# short limits, so a unit of a dead Redis worker is visible again within the test
LIMITS = {
    "ETL_TASK_SOFT_TIME_LIMIT": "20s",
    "ETL_TASK_TIME_LIMIT": "25s",
    "ETL_BROKER_VISIBILITY_TIMEOUT": "30s",
}


def environment(lane: Any, broker: TestBroker, **extra: str) -> dict[str, str]:
    (lane.tmp / "scratch").mkdir(exist_ok=True)
    return {
        **os.environ,
        **broker.env(),
        **LIMITS,
        "ETL_STORAGE_URL": lane.store.url,
        "ETL_CONFIG_DIR": str(lane.config_dir),
        "ETL_WORK_DIR": str(lane.tmp / "scratch"),
        "ETL_LOG_FORMAT": "json",
        **extra,
    }


def worker(lane: Any, broker: TestBroker, name: str, **extra: str) -> BackgroundProcess:
    command = [str(BIN), "worker", "--concurrency", "1"]
    started = BackgroundProcess(
        command, env=environment(lane, broker, **extra), log=lane.tmp / f"{name}.log"
    )
    started.wait_for(" ready.", timeout=90)
    return started


def scan(lane: Any, broker: TestBroker, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), "scan", "--executor", "celery", *args],
        env=environment(lane, broker),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def deliver(lane: Any, orders: Orders, days: range) -> dict[str, date]:
    """One distinct ``orders`` file per day; its landing key and partition date."""
    return {
        lane.deliver(f"orders_202611{day:02d}.csv", orders(10 + day)): date(2026, 11, day)
        for day in days
    }


def validated_lines(log: str, key: str) -> int:
    return log.count(f'"event": "validated {key}"')


def test_a_scan_fanned_out_to_two_workers_validates_every_object_once(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    keys = deliver(local_lane, orders, range(1, 9))
    with (
        worker(local_lane, celery_broker, "w1") as first,
        worker(local_lane, celery_broker, "w2") as second,
    ):
        done = scan(local_lane, celery_broker, "--json")
        logs = first.log(), second.log()
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["counts"] == {
        "validated": 8,
        "quarantined": 0,
        "skipped": 0,
        "settling": 0,
        "failed": 0,
    }
    assert sorted(o["key"] for o in summary["outcomes"]) == sorted(keys)
    for key, day in keys.items():
        assert sum(validated_lines(log, key) for log in logs) == 1, key
        assert len(read_deliveries(local_lane.store, "orders", day)) == 1
    assert all('"event": "validated ' in log for log in logs)  # both workers took some
    succeeded = [line for log in logs for line in log.splitlines() if " succeeded in " in line]
    assert len(succeeded) == 8
    assert max(map(len, succeeded)) < 1500  # the result document cut short: ~2.5 kB before


def test_a_unit_whose_worker_was_killed_mid_publish_is_redelivered_and_published_once(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    ((key, day),) = deliver(local_lane, orders, range(21, 22)).items()
    data_key = "validated/orders/dt=2026-11-21/orders_20261121.csv"
    pause = {"ETL_FAULT_AT": "member_publish:pause", "ETL_FAULT_PAUSE": "120"}
    with worker(local_lane, celery_broker, "doomed", **pause) as doomed:
        enqueued = scan(local_lane, celery_broker, "--no-wait")
        assert enqueued.returncode == 0, enqueued.stderr[-3000:]
        assert "enqueued 1 landing object(s)" in enqueued.stdout
        doomed.wait_for("pause at member_publish", timeout=120)
        doomed.kill_group()  # the host dies: the message was never acknowledged
    # Half done: the data written, but members become visible only all together.
    assert not local_lane.store.exists(data_key)
    assert list((local_lane.tmp / "lake" / "validated").rglob(".etl-partial-*"))
    assert read_deliveries(local_lane.store, "orders", day) == []
    with worker(local_lane, celery_broker, "heir") as heir:
        heir.wait_for(f'"event": "validated {key}"', timeout=150)
    (manifest,) = read_deliveries(local_lane.store, "orders", day)
    assert manifest.data_keys == (data_key,)
    prefix = "validated/orders/dt=2026-11-21/"
    published = [k for k in local_lane.keys(prefix) if "/_deliveries/" not in k]
    assert published == [data_key, data_key + ".quality.json"]


def test_sigterm_lets_the_unit_in_hand_finish_and_leaves_the_rest_queued(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    keys = deliver(local_lane, orders, range(11, 14))
    pause = {"ETL_FAULT_AT": "checks:pause", "ETL_FAULT_PAUSE": "3"}
    with worker(local_lane, celery_broker, "stopped", **pause) as stopped:
        assert scan(local_lane, celery_broker, "--no-wait").returncode == 0
        stopped.wait_for("pause at checks", timeout=120)
        stopped.signal(signal.SIGTERM)  # as `docker stop` does
        assert stopped.wait(timeout=90) == 0, stopped.log()[-3000:]
        first = stopped.log()
    finished = [key for key in keys if validated_lines(first, key)]
    assert len(finished) == 1  # the one in hand, and no other
    queue = lane_queues(celery_broker.settings(), "file_processing").work
    assert celery_broker.queue_length(queue) == 2  # nothing lost
    with worker(local_lane, celery_broker, "next") as following:
        for key in keys:
            if key not in finished:
                following.wait_for(f'"event": "validated {key}"', timeout=120)
        second = following.log()
    for key, day in keys.items():
        assert validated_lines(first, key) + validated_lines(second, key) == 1, key
        assert len(read_deliveries(local_lane.store, "orders", day)) == 1


def test_a_message_that_is_no_landing_object_lands_in_the_dead_letter_queue(
    local_lane: Any, celery_broker: TestBroker
) -> None:
    settings = celery_broker.settings()
    bogus = {"lane": "file_processing", "kind": "landing_object"}  # no key
    with worker(local_lane, celery_broker, "w"):
        sent = celery_app(settings, "file_processing").send_task(
            task_name("file_processing"), args=[bogus]
        )
        document = sent.get(timeout=90)
    assert (document["status"], document["dead_lettered"]) == ("failed", True)
    ((_, body),) = celery_broker.messages(lane_queues(settings, "file_processing").dead)
    assert body[0] == [bogus]


def test_no_wait_without_the_celery_executor_is_refused_naming_the_executor_setting(
    local_lane: Any,
) -> None:
    """scan said only "--no-wait needs --executor celery (ETL_EXECUTOR=celery)", unlike the
    other lanes' refusal: no reason, no field, no source."""
    done = local_lane.cli("scan", "--no-wait")
    assert done.returncode == 2
    assert "--no-wait needs --executor celery (ETL_EXECUTOR=celery): it enqueues" in done.stderr
    assert "executor: is 'local'; expected 'celery' (from default)" in done.stderr


def test_a_no_wait_scan_whose_broker_does_not_answer_fails_at_once_naming_it(
    local_lane: Any,
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    local_lane.deliver("orders_20261101.csv", b"id,amount\n1,2.00\n")
    broker = f"redis://:hunter2@127.0.0.1:{port}/0"
    done = local_lane.cli("scan", "--no-wait", "--executor", "celery", ETL_BROKER_URL=broker)
    assert done.returncode == 1, done.stderr
    assert f"the broker redis://:***@127.0.0.1:{port}/0 did not answer" in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr


def test_the_celery_executor_without_a_broker_is_a_configuration_error(local_lane: Any) -> None:
    local_lane.deliver("orders_20261101.csv", b"id,amount\n1,2.00\n")
    done = local_lane.cli("scan", "--executor", "celery", drop=["ETL_BROKER_URL"])
    assert done.returncode == 2, done.stderr
    assert "broker_url" in done.stderr
    assert local_lane.store.exists("landing/vendor/orders_20261101.csv")  # nothing lost


def test_a_celery_setting_out_of_range_is_said_with_where_it_was_set(local_lane: Any) -> None:
    done = local_lane.cli(
        "scan",
        "--executor",
        "celery",
        ETL_BROKER_URL="redis://127.0.0.1:6379/0",
        ETL_TASK_ATTEMPTS="0",
    )
    assert done.returncode == 2, done.stderr
    assert "task_attempts: must be from 1 to 100 (from env ETL_TASK_ATTEMPTS)" in done.stderr


def test_a_following_scan_stopped_by_sigterm_revokes_what_no_worker_started(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    keys = deliver(local_lane, orders, range(15, 19))
    pause = {"ETL_FAULT_AT": "checks:pause", "ETL_FAULT_PAUSE": "4"}
    with worker(local_lane, celery_broker, "w", **pause) as busy:
        command = [str(BIN), "scan", "--executor", "celery"]
        env = environment(local_lane, celery_broker)
        with BackgroundProcess(command, env=env, log=local_lane.tmp / "scan.log") as following:
            busy.wait_for("pause at checks", timeout=120)
            following.signal(signal.SIGTERM)
            assert following.wait(timeout=90) == 143, following.log()[-3000:]
        busy.wait_for("Discarding revoked task", timeout=60, count=3)  # dropped, not run
        first = busy.log()
        rescan = scan(local_lane, celery_broker, "--json")
    assert rescan.returncode == 0, rescan.stderr[-3000:]
    finished = [key for key in keys if validated_lines(first, key)]
    assert len(finished) == 1  # the one in hand finished; nothing else had started
    counts = json.loads(rescan.stdout)["counts"]
    assert (counts["validated"], counts["failed"]) == (3, 0)  # the rest stayed in line
    for day in keys.values():
        assert len(read_deliveries(local_lane.store, "orders", day)) == 1


def test_a_unit_that_kills_its_worker_process_every_time_is_dead_lettered_after_the_limit(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    ((key, day),) = deliver(local_lane, orders, range(25, 26)).items()
    poison = {"ETL_FAULT_AT": "checks:kill", "ETL_TASK_MAX_DELIVERIES": "3"}  # a "segfault"
    with worker(local_lane, celery_broker, "crashing", **poison) as crashing:
        sent = celery_app(celery_broker.settings(), "file_processing").send_task(
            task_name("file_processing"), args=[{"lane": "file_processing",
                                                 "kind": "landing_object", "key": key}]
        )  # fmt: skip
        document = sent.get(timeout=150)
        queues = lane_queues(celery_broker.settings(), "file_processing")
        crashing.signal(signal.SIGTERM)  # the result is sent just before the message is acked:
        assert crashing.wait(timeout=90) == 0, crashing.log()[-3000:]  # warm: acks, not requeued
        log = crashing.log()
    assert (document["status"], document["dead_lettered"]) == ("failed", True)
    assert document["error"]["type"].endswith(":TooManyDeliveriesError")
    assert log.count("kill at checks") == 3  # three deliveries, each one killed
    assert "delivery 3 of at most 3" in log
    ((headers, body),) = celery_broker.messages(queues.dead)
    assert body[0] == [{"lane": "file_processing", "kind": "landing_object", "key": key}]
    assert "delivered 4 times (limit 3)" in headers["etl_dead_reason"]
    assert celery_broker.queue_length(queues.work) == 0
    assert read_deliveries(local_lane.store, "orders", day) == []  # never half published
    assert local_lane.keys("_state/file_processing/deliveries/") == []  # its count removed
    assert local_lane.store.exists(key)  # the landing original stays, for a re-drive


def test_a_scan_whose_workers_run_on_another_store_fails_naming_both_stores(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    # the workers ran the caller's units against their own store, silently: "0 validated",
    # then the caller waited; now each unit is refused, said in the summary, exit non-zero
    deliver(local_lane, orders, range(1, 3))
    elsewhere = local_lane.tmp / "workers-store"
    elsewhere.mkdir()
    with worker(local_lane, celery_broker, "w1", ETL_STORAGE_URL=str(elsewhere)) as other:
        done = scan(local_lane, celery_broker)
        said = other.log()
    assert done.returncode == 1, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert f"made for the store {local_lane.store.url}" in output, output[-3000:]
    assert f"this worker's store is {elsewhere.as_uri()}" in output
    assert "ForeignUnitError after 1 attempt(s)" in said
    assert not list(elsewhere.rglob("*.json"))  # nothing ran against the workers' store


def test_a_worker_whose_work_dir_is_missing_refuses_to_start_naming_it(
    local_lane: Any, celery_broker: TestBroker
) -> None:
    """It started and took every unit off the queue to fail it with WorkDirError (units a
    healthy worker could have done)."""
    missing = local_lane.tmp / "no-such-work"
    done, errors = start_refused(
        [str(BIN), "worker", "--concurrency", "1"],
        environment(local_lane, celery_broker, ETL_WORK_DIR=str(missing)),
    )
    assert f"work directory {missing}" in errors, done.stderr[-3000:]
    assert "(from env ETL_WORK_DIR)" in errors


def test_a_worker_sends_each_object_s_metrics_to_statsd_as_its_unit_ends(
    local_lane: Any, orders: Orders, celery_broker: TestBroker
) -> None:
    keys = deliver(local_lane, orders, range(1, 3))
    with statsd_agent(timeout=60) as agent:
        statsd = {
            "ETL_METRICS_EXPORTERS": "statsd",
            "ETL_STATSD_ADDRESS": agent_address(agent),
        }
        with worker(local_lane, celery_broker, "counted", **statsd):
            done = scan(local_lane, celery_broker, "--no-wait")
            assert done.returncode == 0, done.stderr[-3000:]
            objects: list[str] = []
            for _ in range(200):  # the worker's datagrams, until both objects are counted
                lines = agent.recv(65535).decode().splitlines()
                objects += [line for line in lines if "etl_file_processing_objects_total:" in line]
                if len(objects) == len(keys):
                    break

    assert objects == [
        "etl_file_processing_objects_total:1|c|#dataset:orders,outcome:validated,reason"
    ] * len(keys)


@pytest.mark.postgres
def test_a_worker_whose_database_lacks_migrations_refuses_to_start_naming_them(
    local_lane: Any, celery_broker: TestBroker, postgres_url: str
) -> None:
    """It started, answered ping and failed every object it took mirroring its outcome
    into a database not migrated yet."""
    done, errors = start_refused(
        [str(BIN), "worker", "--concurrency", "1", "--database-url", postgres_url],
        environment(local_lane, celery_broker),
    )
    assert "(from flag --database-url)" in errors, done.stderr[-3000:]
    assert "holds none of the platform's schema" in errors
    assert "run `etl-schema migrate --database-url <that URL>`" in errors


@pytest.mark.postgres
def test_a_worker_whose_database_refuses_the_login_refuses_to_start_naming_the_flag(
    local_lane: Any, celery_broker: TestBroker, refused_login_urls: dict[str, str]
) -> None:
    """It started, answered ping and failed every object it took, mirroring its outcome
    into a database that refused it, for ever."""
    url = refused_login_urls["database"]
    done, errors = start_refused(
        [str(BIN), "worker", "--concurrency", "1", "--database-url", url],
        environment(local_lane, celery_broker),
    )
    assert "(from flag --database-url)" in errors, done.stderr[-3000:]
    assert 'database "etl_no_such_database"' in errors
    assert REFUSED_LOGIN_PASSWORD not in done.stdout + done.stderr
    assert str(urlsplit(url).password) not in done.stdout + done.stderr


@pytest.mark.postgres
def test_a_worker_on_a_database_holding_another_stores_rows_warns_once_not_per_process(
    local_lane: Any, celery_broker: TestBroker, postgres_url: str
) -> None:
    """Each of its processes checked the ledger as it built its processor and warned again:
    N warnings for a worker of concurrency N, and again for every process replacing one."""
    import psycopg

    from etl_core.testing.scripts import run_script

    migrated = run_script(
        "etl-schema", "migrate", cwd=local_lane.tmp, env={"DATABASE_URL": postgres_url}
    )
    assert migrated.returncode == 0, migrated.stderr
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO etl_freshness_status (store, dataset, level, message, changed_at) "
            "VALUES ('s3://staging-lake/etl', 'pos', 'ok', '', '2026-11-01 00:00:00+00')"
        )
    started = BackgroundProcess(
        [str(BIN), "worker", "--concurrency", "3", "--database-url", postgres_url],
        env=environment(local_lane, celery_broker),
        log=local_lane.tmp / "shared.log",
    )
    with started:
        started.wait_for(" ready.", timeout=90)
        started.wait_for("warm: the lane's context built", timeout=60, count=3)
        log = started.log()
    said = [line for line in log.splitlines() if "other object store" in line]
    assert len(said) == 1, said
    assert "s3://staging-lake/etl" in said[0]
