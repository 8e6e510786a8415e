"""README's "Upgrade it" stays true: its statements finishing the runs a release before the
holder left ``running`` run on each ledger database, migrated from before the holder, and
finish only those (not a run of this release, which records its holder)."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from repo_layout import REPO

from etl_core.testing.fixtures import postgres_server_url, postgres_url  # noqa: F401

README = REPO / "README.md"
STATEMENT = re.compile(
    r"^<!-- upgrade: finish the runs left running, (\w+) -->\n```sql\n(.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
TIMEOUT = 120
_INSERT = (
    "INSERT INTO etl_pipeline_run (run_id, lane, job, dataset, status, parameters, started_at,"
    " inputs_count, outputs_count, quarantined_count, failed_count, rows_written, error{holder})"
    " VALUES (%s, 'observability', 'check', '', 'running', '{{}}', {started}, 0, 0, 0, 0, 0, ''"
    "{value})"
)
HOLDER = {"id": "x", "host": "elsewhere", "pid": 1, "namespace": "n", "started": 1.0}


def statement(database: str) -> str:
    """The README's statement for ``database``."""
    found = dict(STATEMENT.findall(README.read_text()))
    assert database in found, f"README.md has no statement for {database}"
    return found[database]


def migrate(url: str, *target: str) -> None:
    script = Path(sys.executable).parent / "etl-schema"
    done = subprocess.run(
        [str(script), "--database-url", url, "migrate", *target],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def runs_as_the_ledger_reads_them(url: str) -> dict[str, dict[str, Any]]:
    code = (
        "import json, sys\n"
        "from etl_database_schema.door import connect\n"
        "from etl_database_schema.ledger.queries import get_run\n"
        "connect(sys.argv[1])\n"
        "print(json.dumps({r: (lambda x: {'status': x.status, 'error': x.error,"
        " 'after': x.finished_at is not None and x.finished_at >= x.started_at})(get_run(r))"
        " for r in ('before', 'after', 'ahead', 'live')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    runs: dict[str, dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return runs


def left_by_a_release_before_the_holder(
    url: str, execute: Callable[[str, tuple[Any, ...]], None], now: str, ahead: str
) -> None:
    """Runs as that release left them: one before the migration, two after it (one started
    on a host whose clock is ahead), and one of this release, still running."""
    migrate(url, "etl_ledger", "0002")
    execute(_INSERT.format(holder="", started=now, value=""), ("before",))
    migrate(url)
    execute(_INSERT.format(holder="", started=now, value=""), ("after",))
    execute(_INSERT.format(holder="", started=ahead, value=""), ("ahead",))
    insert = _INSERT.format(holder=", holder", started=now, value=", %s")
    execute(insert, ("live", json.dumps(HOLDER)))


def assert_only_the_old_runs_finished(url: str) -> None:
    runs = runs_as_the_ledger_reads_them(url)
    for run_id in ("before", "after", "ahead"):
        assert runs[run_id] == {
            "status": "failed",
            "error": "abandoned before the upgrade",
            "after": True,
        }
    assert runs["live"]["status"] == "running"


def test_the_readme_statement_finishes_only_the_old_runs_on_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "etl.sqlite3"
    url = f"sqlite:///{path}"

    def execute(sql: str, values: tuple[Any, ...]) -> None:
        with sqlite3.connect(path) as connection:
            connection.execute(sql.replace("%s", "?"), values)

    left_by_a_release_before_the_holder(
        url,
        execute,
        "strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')",
        "strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 hour')",
    )
    with sqlite3.connect(path) as connection:
        connection.execute(statement("sqlite"))

    assert_only_the_old_runs_finished(url)


@pytest.mark.usefixtures("postgres_server_url")
def test_the_readme_statement_finishes_only_the_old_runs_on_postgresql(
    postgres_url: str,  # noqa: F811 - the fixture
) -> None:
    import psycopg

    def execute(sql: str, values: tuple[Any, ...]) -> None:
        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(sql, values)  # type: ignore[arg-type]

    left_by_a_release_before_the_holder(
        postgres_url, execute, "now() - interval '1 hour'", "now() + interval '1 hour'"
    )
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(statement("postgresql"))  # type: ignore[arg-type]

    assert_only_the_old_runs_finished(postgres_url)


NOTICE_SNIPPET = re.compile(
    r"^<!-- upgrade: notice a day moved before, python -->\n```python\n(.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


def test_the_hand_written_withdrawal_notice_withdraws_a_day_moved_before_the_release(
    tmp_path: Path,
) -> None:
    """The README's snippet writes a notice data_pipeline takes: it applies to the day's
    curated partition, built before it, and the day is planned for withdrawal."""
    from datetime import date

    from data_pipeline.withdraw import notice_applies, noticed_dates
    from etl_core.artifacts import CuratedManifest, read_withdrawal_notice
    from etl_core.storage import open_store

    (snippet,) = NOTICE_SNIPPET.findall(README.read_text())
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    code = snippet.replace('"s3://etl-platform"', repr(str(store_dir)))
    assert code != snippet
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    day = date(2026, 2, 11)
    built = CuratedManifest(
        dataset="pos",
        dt=day.isoformat(),
        generation="20261101T000000000000-abcdef",
        started_at="2026-11-01T00:00:00.000000Z",
        published_at="2026-11-01T00:00:05.000000Z",
        files=("part-20261101T000000000000-abcdef-00000.parquet",),
        rows=30,
        bytes=1,
        inputs={"validated/pos/dt=2026-02-11/pos_20261103.csv": "e"},
    )
    with open_store(store_dir) as store:
        notice = read_withdrawal_notice(store, "pos", day)
        assert notice is not None
        assert notice.landing_key == "landing/pos/pos_20261103.csv"
        assert noticed_dates(store, "pos") == {day}
        assert notice_applies(store, "pos", day, built)
