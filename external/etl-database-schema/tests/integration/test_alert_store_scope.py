"""Alerts scoped by the object store (``etl_alert.store``, migration ``0007_alert_store``).

Two deployments sharing one database (staging and production stores) keep their alerts
apart: every alert query takes the store and reads or writes only its rows. Rows written
before the store was part of the alert (``store`` empty) are adopted by the first store
that touches them, except an active one whose fingerprint that store already has active.
Migrating a populated table forwards keeps every row (``store`` empty); migrating back
keeps every row too, resolving, of two stores' active alerts of one fingerprint, all but
the latest updated (the table then allows one active alert per fingerprint again).
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

RunPython = Callable[..., subprocess.CompletedProcess[str]]
RunCli = Callable[..., subprocess.CompletedProcess[str]]
PROD = "s3://prod-lake/etl"
STAGING = "file:///srv/staging-lake"

PRELUDE = """
from dataclasses import replace
from datetime import datetime, timedelta, timezone
import etl_database_schema as s
s.connect({url!r}, apply_migrations=True)
T = datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
PROD, STAGING = {prod!r}, {staging!r}

def opened(fp, dataset, minutes=0):
    at = T + timedelta(minutes=minutes)
    return s.AlertRecord(fp, dataset, "age", "landing", "warn", "open", "late", at, at,
                         None, None, "", None, None)

def shown(store, **options):
    return [(a.fingerprint, a.state, a.dataset) for a in s.alerts(store=store, **options)]
"""

SCOPED = """
s.change_alerts(lambda active: [opened("f1", "sales")], store=PROD)
s.change_alerts(lambda active: [opened("f1", "sales", 5), opened("f2", "stock", 5)], store=STAGING)
print("prod", shown(PROD))
print("staging", shown(STAGING))
seen = []
def ack(active):
    seen.extend(a.fingerprint for a in active)
    return [replace(a, state="acknowledged", acknowledged_at=T)
            for a in active if a.fingerprint == "f1"]
s.change_alerts(ack, store=PROD)
print("prod change saw", seen)
print("staging", shown(STAGING))
s.change_alerts(lambda active: [replace(a, state="resolved", resolved_at=T) for a in active],
                store=STAGING)
print("prod", shown(PROD, include_resolved=True))
print("staging", shown(STAGING, include_resolved=True))
owing = replace(opened("f3", "orders"), owed_event="opened", owed_at=T, owed_to=("hook",))
s.change_alerts(lambda active: [owing], store=PROD)
print("owed", [a.fingerprint for a in s.owed_alerts(store=PROD)],
      [a.fingerprint for a in s.owed_alerts(store=STAGING)])
told = replace(owing, owed_event=None, owed_at=None, owed_to=())
print("settled by staging", s.settle_alerts(lambda owed: [told], store=STAGING))
print("owed", [a.fingerprint for a in s.owed_alerts(store=PROD)])
print("settled by prod", [a.fingerprint for a in s.settle_alerts(lambda owed: [told], store=PROD)])
for call in (lambda: s.alerts(store=""), lambda: s.change_alerts(lambda a: [], store=""),
             lambda: s.owed_alerts(store=""), lambda: s.settle_alerts(lambda a: [], store="")):
    try:
        call()
    except ValueError as exc:
        print("refused:", exc)
"""


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _script(url: str, body: str) -> str:
    return PRELUDE.format(url=url, prod=PROD, staging=STAGING) + body


def test_two_stores_on_one_database_keep_their_alerts_apart(run_python: RunPython) -> None:
    result = run_python(_script("sqlite:///ledger.sqlite3", SCOPED))

    refused = (
        "refused: store must be the alerts' object store (its canonical root URL, a "
        "non-empty string), got ''"
    )
    assert _lines(result) == [
        "prod [('f1', 'open', 'sales')]",
        "staging [('f2', 'open', 'stock'), ('f1', 'open', 'sales')]",
        "prod change saw ['f1']",
        "staging [('f2', 'open', 'stock'), ('f1', 'open', 'sales')]",
        "prod [('f1', 'acknowledged', 'sales')]",
        "staging [('f2', 'resolved', 'stock'), ('f1', 'resolved', 'sales')]",
        "owed ['f3'] []",
        "settled by staging []",
        "owed ['f3']",
        "settled by prod ['f3']",
        refused,
        refused,
        refused,
        refused,
    ]


ADOPT = """
s.change_alerts(lambda active: [opened("f1", "sales", 9)], store=STAGING)
with s.models(s.LEDGER_APP) as ledger:  # as a process of the release before 0007 writes them
    table = ledger["Alert"].objects
    for fp, dataset, state in (("f1", "sales", "open"), ("f3", "orders", "open"),
                               ("f1", "sales", "resolved")):
        table.create(fingerprint=fp, dataset=dataset, monitor="age", level="warn", state=state,
                     opened_at=T, updated_at=T, resolved_at=T if state == "resolved" else None)
    print("unscoped", table.filter(store="").count())
print("staging", shown(STAGING, include_resolved=True))
print("prod", shown(PROD, include_resolved=True))
with s.models(s.LEDGER_APP) as ledger:
    print("unscoped", ledger["Alert"].objects.filter(store="").count())
"""


def test_alerts_written_before_the_store_was_kept_are_adopted_by_the_first_store_touching_them(
    run_python: RunPython,
) -> None:
    """Every row without a store joins the first store that reads or writes its alerts,
    but an active one whose fingerprint that store has active stays for the next store."""
    result = run_python(_script("sqlite:///ledger.sqlite3", ADOPT))

    assert _lines(result) == [
        "unscoped 3",
        "staging [('f1', 'open', 'sales'), ('f1', 'resolved', 'sales'), ('f3', 'open', 'orders')]",
        "prod [('f1', 'open', 'sales')]",
        "unscoped 0",
    ]


# ------------------------------------------------------------- migrating the table


def _insert_alert(database: Any, fingerprint: str, state: str, minutes: int) -> None:
    """An alert row as a process of the release before 0007 writes it."""
    at = database.at(minutes)
    resolved = f"'{at}'" if state == "resolved" else "NULL"
    database.run(
        "INSERT INTO etl_alert (fingerprint, dataset, monitor, subject, level, state, "
        "summary, opened_at, updated_at, acknowledged_by, resolved_at) VALUES "
        f"('{fingerprint}', 'sales', 'age', 'landing', 'warn', '{state}', 'late', "
        f"'{at}', '{at}', '', {resolved})"
    )


def test_a_populated_alert_table_gains_the_store_keeping_its_rows_and_back(
    raw_database: Any, run_cli: RunCli, run_python: RunPython
) -> None:
    url = raw_database.url
    assert run_cli("migrate", "--database-url", url).returncode == 0
    assert run_cli("migrate", "--database-url", url, "etl_ledger", "0006").returncode == 0
    _insert_alert(raw_database, "f1", "resolved", 0)  # the history
    _insert_alert(raw_database, "f1", "open", 10)
    _insert_alert(raw_database, "f2", "acknowledged", 20)
    before = raw_database.rows("etl_alert", "fingerprint, state")

    migrated = run_cli("migrate", "--database-url", url)

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying etl_ledger.0007_alert_store... OK" in migrated.stdout
    assert raw_database.rows("etl_alert", "fingerprint, state") == [(*row, "") for row in before]
    # production touches them first (adopting them all); staging opens f1 of its own, later
    body = """
print("prod", shown(PROD, include_resolved=True))
s.change_alerts(lambda active: [opened("f1", "sales", 30)], store=STAGING)
print("staging", shown(STAGING))
"""
    assert _lines(run_python(_script(url, body))) == [
        "prod [('f2', 'acknowledged', 'sales'), ('f1', 'open', 'sales'), "
        "('f1', 'resolved', 'sales')]",
        "staging [('f1', 'open', 'sales')]",
    ]

    back = run_cli("migrate", "--database-url", url, "etl_ledger", "0006")

    assert back.returncode == 0, back.stderr
    (ids, _, _), *_ = before
    assert raw_database.rows("etl_alert", "fingerprint, state") == [
        (ids, "f1", "resolved"),
        (ids + 1, "f1", "resolved"),  # production's f1: staging's was updated later
        (ids + 2, "f2", "acknowledged"),
        (ids + 3, "f1", "open"),
    ]
    with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
        _insert_alert(raw_database, "f1", "open", 40)  # one active alert per fingerprint again


# ------------------------------------------------------------- reading without writing

READ_ONLY_SETUP = """
s.change_alerts(lambda active: [opened("f1", "sales")], store=PROD)
print("prod", shown(PROD))
"""

READ_ONLY = """
import etl_database_schema as s
s.connect({url!r})
print("prod", [(a.fingerprint, a.state) for a in s.alerts(store={prod!r})])
print("owed", s.owed_alerts(store={prod!r}))
"""


@pytest.mark.postgres
def test_alerts_with_nothing_to_adopt_are_read_without_writing_on_a_read_only_database(
    postgres_url: str, run_python: RunPython
) -> None:
    """Once no row is left to adopt, reading a store's alerts (``alerts list``, a status
    page, a read replica's role) runs no UPDATE: a read-only transaction can read them."""
    assert _lines(run_python(_script(postgres_url, READ_ONLY_SETUP))) == [
        "prod [('f1', 'open', 'sales')]"
    ]
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')

    result = run_python(READ_ONLY.format(url=postgres_url, prod=PROD))

    assert _lines(result) == ["prod [('f1', 'open')]", "owed []"]


LOGGED = """
import logging, sys
with s.models(s.LEDGER_APP) as ledger:  # as a process of the release before 0007 writes them
    for fp in ("f1", "f2"):
        ledger["Alert"].objects.create(fingerprint=fp, dataset="sales", monitor="age",
                                       level="warn", state="open", opened_at=T, updated_at=T)
logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                    format="%(levelname)s %(message)s [%(store)s %(adopted)s]")
print("staging", shown(STAGING))
print("again", shown(STAGING))
"""


def test_taking_over_the_alerts_of_before_is_logged_naming_the_store_and_how_many(
    run_python: RunPython,
) -> None:
    """An operator can see which deployment took the alerts of before over (a command
    run with the wrong ``--storage`` takes them all), and that it happens once."""
    result = run_python(_script("sqlite:///ledger.sqlite3", LOGGED))

    lines = _lines(result)
    assert lines[0].startswith("WARNING adopted 2 alerts written before")
    assert lines[0].endswith(f"[{STAGING} 2]")
    assert lines[1:] == [
        "staging [('f2', 'open', 'sales'), ('f1', 'open', 'sales')]",
        "again [('f2', 'open', 'sales'), ('f1', 'open', 'sales')]",
    ]


WHILE_WRITING = """
import sqlite3
s.change_alerts(lambda active: [opened("f1", "sales")], store=PROD)
writer = sqlite3.connect("ledger.sqlite3", isolation_level=None)
writer.execute("BEGIN IMMEDIATE")  # a load or a check run writing meanwhile
print("prod", shown(PROD))
print("owed", s.owed_alerts(store=PROD))
writer.execute("ROLLBACK")
"""


def test_reading_alerts_on_sqlite_does_not_wait_for_a_writer_once_nothing_is_left_to_adopt(
    run_python: RunPython,
) -> None:
    """``alerts list`` and the deliveries' reading of what is owed take no write lock
    (SQLite's transactions are IMMEDIATE): a write under way does not hold them up until
    ``database is locked``."""
    result = run_python(_script("sqlite:///ledger.sqlite3?timeout=1", WHILE_WRITING))

    assert _lines(result) == ["prod [('f1', 'open', 'sales')]", "owed []"]
