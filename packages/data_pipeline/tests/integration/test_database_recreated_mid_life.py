"""A worker's units while a deploy drops, recreates and migrates the database under it.

The worker checked the migrations at its first connect; a unit taken while the database
is recreated but not yet migrated failed with the driver's raw ``relation … does not
exist`` as a refused operation, never retried. It is now this runtime's retryable
:class:`~data_pipeline.errors.DatabaseUnavailableError`, saying which migrations are
missing and to run ``etl-schema migrate``: retried with the worker's back-off, so a deploy
that migrates in the meantime lets it succeed, and a database nobody migrates ends it
after the policy's attempts. Django is set up once per process, so each test runs in a
subprocess of its own against a scratch database (``postgres_url``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

_WORKER = """
import psycopg
from psycopg import sql
from etl_core.retry import RetryPolicy
from etl_core.work.executor import attempt_unit
from etl_core.work.unit import WorkUnit
from data_pipeline import db, errors
from data_pipeline.db.door import door

URL, SERVER = {url!r}, {server!r}
NAME = URL.rsplit("/", 1)[1]

def admin(statement):
    with psycopg.connect(SERVER, autocommit=True) as connection:
        connection.execute(sql.SQL(statement).format(sql.Identifier(NAME)))

def run_unit(unit):
    with door("a worker's unit") as schema:
        return len(schema.last_successes())

def deploy_migrates(seconds):
    with door("the deploy") as schema:
        schema.migrate()

db.connect(URL, migrate=True)  # the worker process's first connect: migrated
UNIT = WorkUnit("data_pipeline", "partition", "sales/2024-05-01")
print("before", attempt_unit(run_unit, UNIT, RetryPolicy(attempts=3)).status)
admin("DROP DATABASE {{}} WITH (FORCE)")
"""


def _run(script: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.postgres
def test_a_unit_retried_while_a_deploy_recreates_and_migrates_the_database_succeeds(
    postgres_url: str, postgres_server_url: str
) -> None:
    lines = _run(
        _WORKER.format(url=postgres_url, server=postgres_server_url)
        + """
admin("CREATE DATABASE {}")
policy = RetryPolicy(attempts=3, initial_delay=0, sleep=deploy_migrates)
result = attempt_unit(run_unit, UNIT, policy)
print("during deploy", result.status, result.attempts, result.value)
"""
    )

    assert lines == ["before succeeded", "during deploy succeeded 2 0"]


@pytest.mark.postgres
def test_a_unit_on_a_database_left_unmigrated_fails_after_its_attempts_saying_run_migrate(
    postgres_url: str, postgres_server_url: str
) -> None:
    lines = _run(
        _WORKER.format(url=postgres_url, server=postgres_server_url)
        + """
admin("CREATE DATABASE {}")
waits = []
result = attempt_unit(run_unit, UNIT, RetryPolicy(attempts=3, sleep=waits.append))
error = result.error
print("left unmigrated", result.status, result.attempts, len(waits))
print("retryable", isinstance(error, errors.DatabaseUnavailableError), error.__class__.__name__)
print(error)
"""
    )

    assert lines[:3] == [
        "before succeeded",
        "left unmigrated failed 3 2",
        "retryable True DatabaseUnavailableError",
    ]
    message = lines[3]
    # the count is the schema package's to know (its tests count it): any next migration
    pending = r"no migration applied, [1-9][0-9]* pending: etl_ledger\.0001_initial"
    assert re.search(pending, message)
    assert "run `etl-schema migrate`" in message
    assert 'relation "etl_pipeline_run" does not exist' in message


@pytest.mark.postgres
def test_a_unit_while_the_database_is_dropped_is_retried_then_succeeds_once_it_is_back(
    postgres_url: str, postgres_server_url: str
) -> None:
    lines = _run(
        _WORKER.format(url=postgres_url, server=postgres_server_url)
        + """
def deploy_recreates(seconds):
    if not steps:
        admin("CREATE DATABASE {}")
    else:
        deploy_migrates(seconds)
    steps.append(seconds)

steps = []
result = attempt_unit(run_unit, UNIT, RetryPolicy(attempts=3, sleep=deploy_recreates))
print("database dropped", result.status, result.attempts)
"""
    )

    assert lines == ["before succeeded", "database dropped succeeded 3"]
