"""Two writers of one store's alerts (or one dataset's freshness) at the same moment.

``etl-observability serve``'s cycle and a ``check`` run (or two replicas, or two cron
runs) may open the same new alert at once: no row of its fingerprint exists yet, so the
active rows' ``SELECT … FOR UPDATE`` locks nothing. The writers are serialised per store
instead (a transaction-scoped advisory lock on PostgreSQL; the write lock taken at the
start of the transaction on SQLite, whatever its ``transaction_mode``): the second sees
the first's row and updates it, never a unique violation, never a change lost. The same
holds for the outbox (``settle_alerts``) and the freshness history, which grows once per
level change however many writers observe it.

Each test runs two threads in a child interpreter (Django is set up per process). A
writer that reaches its change waits, bounded, until the other writer reaches it too
(what happens without the serialisation: both then insert together) or is seen waiting
for a lock (PostgreSQL's ``pg_locks``; SQLite's wait is not observable, so there the
wait is only bounded).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

RunPython = Callable[..., subprocess.CompletedProcess[str]]

PRELUDE = """
import threading, time
from dataclasses import replace
from datetime import datetime, timezone
import etl_database_schema as s
URL = {url!r}
s.connect(URL, apply_migrations=True)
T = datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
STORE = "s3://prod-lake/etl"
WRITERS = ("cycle", "check")
inside = {{name: threading.Event() for name in WRITERS}}
errors = []

if URL.startswith("postgres"):
    import psycopg
    watcher = psycopg.connect(URL, autocommit=True)
    watching = threading.Lock()

    def other_blocked():
        with watching:
            return watcher.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a "
                "ON l.pid = a.pid WHERE NOT l.granted AND a.datname = current_database())"
            ).fetchone()[0]
    ROUNDS = 3000  # 30 s at most; one of the two conditions comes at once
else:
    def other_blocked():
        return False  # a writer waiting for SQLite's lock cannot be seen from here
    ROUNDS = 100  # so wait 1 s for the other to come in too (it cannot: serialised)

def meet():
    # The writer has read what it changes: wait until the other writer has read too, or
    # is held up before reading (serialised), bounded.
    me = threading.current_thread().name
    if me not in inside:
        return  # the main thread's writes before the race
    inside[me].set()
    other = inside[WRITERS[1 - WRITERS.index(me)]]
    for _ in range(ROUNDS):
        if other.is_set() or other_blocked():
            return
        time.sleep(0.01)

def run_both(work):
    def guarded(name):
        try:
            work(name)
        except BaseException as exc:
            errors.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
        finally:
            from django.db import connections
            connections.close_all()
    threads = [threading.Thread(target=guarded, args=(n,), name=n) for n in WRITERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    print("alive", [t.name for t in threads if t.is_alive()])
    print("errors", errors)

def opened(fp, by, owed=False):
    return s.AlertRecord(fp, "sales", "age", "landing", "warn", "open", f"by {{by}}", T, T,
                         None, None, "", None, None,
                         *(("opened", T, ("hook",)) if owed else ()))
"""

OPEN_ONE = """
def open_or_add(name):
    def change(active):
        meet()
        (current,) = [a for a in active if a.fingerprint == "f1"] or [None]
        if current is None:
            return [opened("f1", name)]
        return [replace(current, summary=f"{current.summary} then {name}", level="critical")]
    s.change_alerts(change, store=STORE)

run_both(open_or_add)
active = s.alerts(store=STORE, include_resolved=True)
print("rows", [(a.fingerprint, a.state, a.level) for a in active])
print("writers", [sorted(a.summary.split()[1::2]) for a in active])  # by x then y
"""


def _lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _script(url: str, body: str) -> str:
    return PRELUDE.format(url=url) + body


OPENED_ONCE = [
    "alive []",
    "errors []",
    "rows [('f1', 'open', 'critical')]",  # one active row, the second writer's change on it
    "writers [['check', 'cycle']]",
]


@pytest.mark.postgres
def test_two_writers_opening_the_same_alert_at_once_on_postgresql_write_one_row_with_both(
    run_python: RunPython, postgres_url: str
) -> None:
    assert _lines(run_python(_script(postgres_url, OPEN_ONE))) == OPENED_ONCE


@pytest.mark.parametrize("mode", ["IMMEDIATE", "DEFERRED"])
def test_two_writers_opening_the_same_alert_at_once_on_sqlite_write_one_row_with_both(
    run_python: RunPython, mode: str
) -> None:
    url = f"sqlite:///ledger.sqlite3?transaction_mode={mode}"

    assert _lines(run_python(_script(url, OPEN_ONE))) == OPENED_ONCE


SETTLE_AND_OPEN = """
s.change_alerts(lambda active: [opened("f1", "before", owed=True)], store=STORE)

def settle_or_open(name):
    if name == "cycle":  # the deliveries settle f1's outbox (f2's, owed after, is not theirs)
        def settle(owing):
            meet()
            return [
                replace(a, owed_event=None, owed_at=None, owed_to=())
                for a in owing
                if a.fingerprint == "f1"
            ]
        s.settle_alerts(settle, store=STORE)
    else:  # a check run opens f2, owing it, and escalates f1
        def change(active):
            meet()
            done = {a.fingerprint: a for a in active}
            return [opened("f2", name, owed=True), replace(done["f1"], level="critical")]
        s.change_alerts(change, store=STORE)

run_both(settle_or_open)
print("rows", sorted((a.fingerprint, a.level, a.owed_event) for a in s.alerts(store=STORE)))
"""


@pytest.mark.postgres
def test_a_settle_beside_a_change_of_the_same_store_loses_neither_on_postgresql(
    run_python: RunPython, postgres_url: str
) -> None:
    """Whichever of the two comes first (the check's f2 is owing when the settle comes
    second, and only what was told is settled), neither change is lost."""
    assert _lines(run_python(_script(postgres_url, SETTLE_AND_OPEN)))[1:] == [
        "errors []",
        "rows [('f1', 'critical', None), ('f2', 'warn', 'opened')]",
    ]


CROSSED_LOCKS = """
from datetime import timedelta
H = timedelta(hours=1)

def owing(fp, hours, **changed):
    return replace(opened(fp, "before", owed=True), owed_at=T + hours * H, **changed)

# A settle locks the owing rows oldest owed first (f3, f4 resolved, f1), a change the
# active ones as stored (f1, f2 owing nothing, f3): opposite orders of f1 and f3.
s.change_alerts(lambda active: [
    owing("f1", 3), opened("f2", "before"), owing("f3", 1),
    owing("f4", 2, state="resolved", resolved_at=T),
], store=STORE)

def waiting():
    with watching:
        return watcher.execute(
            "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a "
            "ON l.pid = a.pid WHERE NOT l.granted AND a.datname = current_database()"
        ).fetchone()[0]

def until_waiting(n):
    for _ in range(3000):  # 30 s at most
        if waiting() >= n:
            return
        time.sleep(0.01)
    print("never waiting", n)

# Other transactions hold f4 (on the settle's way, after f3) and f2 (on the change's, after f1).
holders = [psycopg.connect(URL) for _ in range(2)]
for holder, fp in zip(holders, ("f4", "f2")):
    holder.execute("SELECT id FROM etl_alert WHERE fingerprint = %s FOR UPDATE", [fp])

def guarded(work):
    try:
        work()
    except BaseException as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        from django.db import connections
        connections.close_all()

def settle():
    s.settle_alerts(lambda owing: [replace(a, owed_event=None, owed_at=None, owed_to=())
                                   for a in owing], store=STORE)

def change():
    s.change_alerts(lambda active: [replace(a, level="critical") for a in active], store=STORE)

threads = []
for n, work in enumerate((settle, change), 1):
    threads.append(threading.Thread(target=guarded, args=(work,)))
    threads[-1].start()
    until_waiting(n)  # the settle holds f3 (without the queue, the change holds f1 too)
for holder in holders:
    holder.commit()
for thread in threads:
    thread.join(60)
print("alive", [t.name for t in threads if t.is_alive()])
print("errors", errors)
print("rows", sorted((a.fingerprint, a.level, a.owed_event) for a in s.alerts(store=STORE)))
print("owed", [a.fingerprint for a in s.owed_alerts(store=STORE)])
"""


@pytest.mark.postgres
def test_a_settle_and_a_change_locking_rows_in_opposite_orders_do_not_deadlock_on_postgresql(
    run_python: RunPython, postgres_url: str
) -> None:
    """The settle locks the owing rows oldest owed first, the change the active rows as
    stored: each would hold a row the other waits for (PostgreSQL detects the deadlock
    and fails one). Queued up by the store, the change waits for the whole settle."""
    assert _lines(run_python(_script(postgres_url, CROSSED_LOCKS))) == [
        "alive []",
        "errors []",
        "rows [('f1', 'critical', None), ('f2', 'critical', None), ('f3', 'critical', None)]",
        "owed []",
    ]


FRESHNESS = """
from django.db.models.query import QuerySet
real_create = QuerySet.create

def create(self, **values):  # both writers have read the level: now they append
    if self.model._meta.db_table == "etl_freshness_status":
        meet()
    return real_create(self, **values)

QuerySet.create = create
s.record_freshness("sales", "ok", 60.0, store=STORE)
changed = {}

def observe(name):
    changed[name] = s.record_freshness("sales", "warning", 100000.0, store=STORE)

run_both(observe)
print("changed", sorted(changed.values()))
with s.models(s.LEDGER_APP) as ledger:
    rows = ledger["FreshnessStatus"].objects.filter(dataset="sales").order_by("id")
    print("history", [row.level for row in rows])
"""

CHANGED_ONCE = [
    "alive []",
    "errors []",
    "changed [False, True]",
    "history ['ok', 'warning']",
]


@pytest.mark.postgres
def test_two_writers_seeing_the_same_freshness_change_append_it_once_on_postgresql(
    run_python: RunPython, postgres_url: str
) -> None:
    assert _lines(run_python(_script(postgres_url, FRESHNESS))) == CHANGED_ONCE


@pytest.mark.parametrize("mode", ["IMMEDIATE", "DEFERRED"])
def test_two_writers_seeing_the_same_freshness_change_append_it_once_on_sqlite(
    run_python: RunPython, mode: str
) -> None:
    url = f"sqlite:///ledger.sqlite3?transaction_mode={mode}"

    assert _lines(run_python(_script(url, FRESHNESS))) == CHANGED_ONCE


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("script", "expected"),
    [(OPEN_ONE, OPENED_ONCE), (FRESHNESS, CHANGED_ONCE)],
    ids=["alert", "freshness"],
)
def test_the_writers_queue_holds_though_the_database_defaults_to_repeatable_read(
    run_python: RunPython, postgres_url: str, script: str, expected: list[str]
) -> None:
    """A DBA's ``default_transaction_isolation = 'repeatable read'``: a transaction's
    snapshot is taken at its first statement, the queue's own, before it waits, so the
    second writer would not see the first's row (a unique violation, a history row twice)."""
    _default_to_repeatable_read(postgres_url)

    assert _lines(run_python(_script(postgres_url, script))) == expected


INSIDE_A_CALLERS_TRANSACTION = """
from django.db import connection, transaction

def read_then_write(fp):
    s.latest_freshness("sales", store=STORE)  # the caller has begun its transaction
    s.change_alerts(lambda active: [opened(fp, "caller")], store=STORE)
    s.record_freshness("sales", "ok", 1.0, store=STORE)

with s.models(s.LEDGER_APP), transaction.atomic():
    read_then_write("f1")
with s.models(s.LEDGER_APP):
    connection.set_autocommit(False)  # a caller's own transaction, no atomic block
    read_then_write("f2")
    connection.commit()
    connection.set_autocommit(True)
print("rows", sorted(a.fingerprint for a in s.alerts(store=STORE)))
"""


@pytest.mark.postgres
def test_the_writers_queue_joins_a_callers_transaction_that_has_already_read(
    run_python: RunPython, postgres_url: str
) -> None:
    """Its isolation level is the caller's (set only at a transaction's first statement)."""
    _default_to_repeatable_read(postgres_url)

    assert _lines(run_python(_script(postgres_url, INSIDE_A_CALLERS_TRANSACTION))) == [
        "rows ['f1', 'f2']"
    ]


def _default_to_repeatable_read(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation"
            " = ''repeatable read''', current_database()); END $$"
        )
