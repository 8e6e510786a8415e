"""Fault injection across the lanes: the real console scripts are killed (SIGKILL), interrupted
(SIGINT) and terminated (SIGTERM) at each named step, then run again.

The step is chosen with the test-only hook ``ETL_FAULT_AT`` (:mod:`etl_core.faults`):
the process signals itself there, so its own signal handling runs as for an
operator's signal. After the fault, what readers can see must be whole (every
delivery manifest names data that is all there; no curated manifest names a
missing part); after the re-run every landing object is validated or quarantined
with the right reason, each output exists once, the database holds each
partition's rows exactly once (SQLite and PostgreSQL), and nothing is left in
``work_dir`` nor a keyring of a dead process in the system temp directory.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from repo_layout import REPO

from etl_core.artifacts import CuratedManifest, QuarantineRecord, read_deliveries
from etl_core.faults import FAULT_ENV, Step
from etl_core.layout import (
    curated_prefix,
    delivery_manifest_key,
    landing_prefix,
    manifest_key,
    quarantine_key,
    quarantine_prefix,
    quarantine_record_key,
    validated_prefix,
)
from etl_core.scratch import OWNER_FILE
from etl_core.storage import open_store
from etl_core.storage.leases import Holder
from etl_core.testing.fixtures import postgres_server_url  # noqa: F401 - a fixture
from etl_core.testing.scripts import run_script
from etl_core.testing.services import service_unavailable
from file_processing.ledger import Ledger

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples/retail"
DATASET = "pos_transactions"
TABLE = "retail_sales_transaction"

PLAIN = f"{landing_prefix('pos')}pos_20261101.csv"
SEALED = f"{landing_prefix('pos')}pos_20261110.csv.zip.pgp"  # OpenPGP around a zip of two members
BAD = f"{landing_prefix('pos')}pos_20261107.csv"  # one row in ten fails a check
EXPECTED_ROWS = {date(2026, 11, 1): 300, date(2026, 11, 10): 200 + 250}
EXPECTED_STATE = {PLAIN: "validated", SEALED: "validated", BAD: "quarantined"}

FILE_STEPS = [
    Step.DOWNLOAD,
    Step.DECRYPT,
    Step.UNPACK,
    Step.CHECKS,
    Step.MEMBER_PUBLISH,
    Step.REPORT_PUBLISH,
    Step.DELIVERY_MANIFEST,
]
PIPELINE_STEPS = [Step.TRANSFORM, Step.PUBLISH, Step.LOAD]
PARTIAL_AGE = 2  # seconds: the claim and lease timeouts of the cases
EXIT_CODE = {"kill": -signal.SIGKILL, "interrupt": 130, "terminate": 143}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("retail_generate", EXAMPLE / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def drops() -> dict[str, bytes]:
    """The landing objects every case starts from (encrypted once per module)."""
    if shutil.which("gpg") is None:
        service_unavailable("gpg", "GnuPG is not installed (Debian package gnupg)")
    gen = _generator()
    members = {
        "a.csv": gen.day_csv(date(2026, 11, 10), 200),
        "b.csv": gen.day_csv(date(2026, 11, 11), 250),
    }
    return {
        PLAIN: gen.day_csv(date(2026, 11, 1)),
        SEALED: gen.encrypted(gen.zipped(members), gen.EXAMPLE_KEY),
        BAD: gen.day_csv(date(2026, 11, 7), bad_every=10),
    }


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied by each case (migrating once is enough)."""
    path = tmp_path_factory.mktemp("db") / "etl.sqlite3"
    done = run_script(
        "etl-schema", "migrate", cwd=path.parent, env={"DATABASE_URL": f"sqlite:///{path}"}
    )
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def postgres_database(postgres_server_url: str) -> Iterator[str]:  # noqa: F811 - the fixture
    """One migrated PostgreSQL database for the module; each case empties the curated table."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    name = f"etl_faults_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(postgres_server_url)._replace(path=f"/{name}"))
    try:
        done = run_script("etl-schema", "migrate", cwd=Path.cwd(), env={"DATABASE_URL": url})
        assert done.returncode == 0, done.stderr
        yield url
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@dataclass
class Lake:
    """One case's store, config, scratch and database, and the commands run on them."""

    root: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    def run(
        self, tool: str, *args: str, fault: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        extra = {**self.env, **env}
        if fault is not None:
            extra[FAULT_ENV] = fault
        return run_script(tool, *args, cwd=self.root, env=extra, timeout=180)

    def rows_by_day(self) -> dict[date, int]:
        query = f"SELECT dt, count(*) FROM {TABLE} GROUP BY dt"
        if self.database_url.startswith("sqlite"):
            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as db:
                found = db.execute(query).fetchall()
            return {date.fromisoformat(str(day)): n for day, n in found}
        import psycopg

        with psycopg.connect(self.database_url, connect_timeout=3) as db:
            return dict(db.execute(query).fetchall())


def _lake(root: Path, drops: dict[str, bytes], database_url: str) -> Lake:
    store = root / "store"
    for key, body in drops.items():
        (store / key).parent.mkdir(parents=True, exist_ok=True)
        (store / key).write_bytes(body)
    shutil.copytree(EXAMPLE / "reference", store / "reference")
    shutil.copytree(EXAMPLE / "config", root / "config")
    (root / "work").mkdir()
    return Lake(root, database_url, _env(root, database_url))


def _env(root: Path, database_url: str) -> dict[str, str]:
    """The settings of a case: its store, contracts, scratch, database and key."""
    return {
        "ETL_STORAGE_URL": str(root / "store"),
        "ETL_CONFIG_DIR": str(root / "config"),
        "ETL_WORK_DIR": str(root / "work"),
        **({"DATABASE_URL": database_url} if database_url else {}),
        "RETAIL_POS_PGP_KEY": (EXAMPLE / "keys/retail-example-secret.asc").read_text(),
        # Partial writes of a killed writer are collected once older than a claim or a
        # lease: short ones let the re-run show it.
        "ETL_CLAIM_TIMEOUT": f"{PARTIAL_AGE}s",
        "ETL_LEASE_SECONDS": str(PARTIAL_AGE),
    }


@pytest.fixture
def lake(tmp_path: Path, drops: dict[str, bytes], sqlite_template: Path) -> Lake:
    """A case on the embedded SQLite database, its landing objects not yet processed."""
    database = tmp_path / "etl.sqlite3"
    shutil.copyfile(sqlite_template, database)
    return _lake(tmp_path, drops, f"sqlite:///{database}")


@pytest.fixture(scope="module")
def scanned(
    tmp_path_factory: pytest.TempPathFactory, drops: dict[str, bytes], sqlite_template: Path
) -> Path:
    """A store whose landing objects were scanned (copied by each pipeline case)."""
    root = tmp_path_factory.mktemp("scanned")
    shutil.copyfile(sqlite_template, root / "etl.sqlite3")
    lake = _lake(root, drops, f"sqlite:///{root / 'etl.sqlite3'}")
    done = lake.run("etl-file-processing", "scan")
    assert done.returncode == 3, done.stderr[-3000:]  # the bad drop is quarantined
    return lake.store_dir


@pytest.fixture(scope="module")
def transformed(tmp_path_factory: pytest.TempPathFactory, scanned: Path) -> Path:
    """A scanned store whose partitions were transformed, none loaded."""
    root = tmp_path_factory.mktemp("transformed")
    shutil.copytree(scanned, root / "store")
    shutil.copytree(EXAMPLE / "config", root / "config")
    (root / "work").mkdir()
    done = Lake(root, "", _env(root, "")).run("etl-data-pipeline", "run", "--no-load")
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "store"


def _db_lake(request: pytest.FixtureRequest, root: Path, store: Path, database: str) -> Lake:
    """A case on a copy of ``store`` and a migrated, empty ``database`` (sqlite/postgresql)."""
    shutil.copytree(store, root / "store")
    shutil.copytree(EXAMPLE / "config", root / "config")
    (root / "work").mkdir()
    if database == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), root / "etl.sqlite3")
        url = f"sqlite:///{root / 'etl.sqlite3'}"
    else:
        import psycopg

        url = request.getfixturevalue("postgres_database")
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as db:
            db.execute(f"TRUNCATE {TABLE}, etl_load_fence")  # fresh store: fresh tokens
    return Lake(root, url, _env(root, url))


# ------------------------------------------------------------------ invariants
# ------------------------------------------------------------------ invariants


def assert_faulted(
    result: subprocess.CompletedProcess[str], action: str, step: Step, *, counted: str = ""
) -> None:
    """The process reached ``step``, took the fault and ended with the signal's exit code;
    a handled signal is said in one line (and ``counted``: how many finished and remain)."""
    assert f"{FAULT_ENV}: {action} at {step}" in result.stderr, result.stderr[-3000:]
    assert result.returncode == EXIT_CODE[action], result.stderr[-3000:]
    if action != "kill":  # a handled signal ends with one line saying so, and no traceback
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
        said = "SIGTERM" if action == "terminate" else "Ctrl-C"
        assert any(said in str(line.get("event")) for line in lines), result.stderr[-3000:]
        assert counted in result.stderr, result.stderr[-3000:]


def assert_readers_see_whole_deliveries(lake: Lake) -> None:
    """Whatever the manifests make visible is all there: no half delivery or partition."""
    store = open_store(str(lake.store_dir))
    for day in EXPECTED_ROWS:
        for manifest in read_deliveries(store, DATASET, day):
            for key in manifest.keys:
                assert store.exists(key), f"{manifest.delivery.key}: {key} is named but missing"
            rows = sum(member.rows for member in manifest.members)
            assert rows == EXPECTED_ROWS[day], manifest
        curated = _curated_manifest(lake, day)
        if curated is not None:
            assert curated.rows == EXPECTED_ROWS[day]
            assert all(store.exists(key) for key in curated.files)


def assert_landing_settled(lake: Lake, keys: tuple[str, ...] = tuple(EXPECTED_STATE)) -> None:
    """Each of ``keys`` ends validated or quarantined with the right reason, and every
    output exists once: validated/ holds exactly what the delivery manifests name."""
    store = open_store(str(lake.store_dir))
    ledger = Ledger(store, run_id="check", claim_timeout=timedelta(hours=1))
    for key in keys:
        record = ledger.get(key)
        assert record is not None, key
        assert record.state == EXPECTED_STATE[key], (key, record)
    manifests = [m for day in EXPECTED_ROWS for m in read_deliveries(store, DATASET, day)]
    assert sorted(m.delivery.key for m in manifests) == sorted(
        key for key in keys if EXPECTED_STATE[key] == "validated"
    )
    published = {key for m in manifests for key in m.keys} | {
        delivery_manifest_key(DATASET, date.fromisoformat(m.dt), m.delivery.key) for m in manifests
    }
    found = {info.key for info in store.list(validated_prefix(DATASET))}
    assert found == published, f"not named by a delivery manifest: {sorted(found - published)}"
    quarantined = sorted(info.key for info in store.list(quarantine_prefix()))
    if BAD not in keys:
        assert quarantined == []
        return
    original = quarantine_key(DATASET, date(2026, 11, 7), "pos_20261107.csv")
    assert quarantined == sorted([original, quarantine_record_key(original)])
    why = QuarantineRecord.from_json(store.read_bytes(quarantine_record_key(original)))
    assert why.reason == "data.quality"


def wait_out_timeouts(lake: Lake) -> None:
    """Let partial writes of the dead process age past the claim and lease timeouts (the
    store cannot tell a dead writer's partial file from a live one's, only its age can)."""
    partials = list(lake.store_dir.rglob(".etl-partial-*"))
    if partials:
        newest = max(p.stat().st_mtime for p in partials)
        time.sleep(max(0.0, newest + PARTIAL_AGE - time.time()))


def assert_no_leftovers(lake: Lake, dead_pid: int | None) -> None:
    """No scratch in work_dir, no partial write in the store, no keyring of the dead process."""
    assert sorted(p.name for p in lake.work_dir.iterdir()) == []
    assert list(lake.store_dir.rglob(".etl-partial-*")) == []
    if dead_pid is None:
        return
    for owner in Path(tempfile.gettempdir()).glob(f"etl-*/{OWNER_FILE}"):
        try:
            holder = Holder.from_dict(json.loads(owner.read_text()))
        except (OSError, ValueError):
            continue
        assert holder.pid != dead_pid or not holder.is_gone(), f"{owner.parent} was left behind"


def assert_loaded_exactly(lake: Lake) -> None:
    """Every partition is curated once and in the database once, whatever was cut short."""
    for day, rows in EXPECTED_ROWS.items():
        manifest = _curated_manifest(lake, day)
        assert manifest is not None, day
        assert manifest.rows == rows
        store = open_store(str(lake.store_dir))
        parts = sorted(
            i.key for i in store.list(curated_prefix(DATASET, day)) if i.key.endswith(".parquet")
        )
        assert parts == sorted(manifest.files), "parts no curated manifest names"
    assert lake.rows_by_day() == EXPECTED_ROWS


def _curated_manifest(lake: Lake, day: date) -> CuratedManifest | None:
    path = lake.store_dir / manifest_key(DATASET, day)
    return CuratedManifest.from_json(path.read_bytes()) if path.exists() else None


def _pid_of(result: subprocess.CompletedProcess[str]) -> int | None:
    for line in result.stderr.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if str(record.get("event", "")).startswith(f"{FAULT_ENV}:") and "pid" in record:
            return int(record["pid"])
    return None


# ----------------------------------------------------------------------- cases


def cases(*pairs: tuple[Step, str], **marks: Any) -> list[Any]:
    """``(step, action)`` pairs as test parameters with readable ids."""
    return [pytest.param(step, action, id=f"{step}-{action}", **marks) for step, action in pairs]


# A kill is a kill wherever it lands; a handled signal differs by where it is caught: in
# scan the unit runs on a worker thread and finishes, in process (and every pipeline
# command) it is raised in the step itself, which must abandon cleanly.
SCAN_CASES = cases(
    *[(step, "kill") for step in FILE_STEPS],
    *[(step, "interrupt") for step in FILE_STEPS],
    (Step.DECRYPT, "terminate"),
    (Step.DELIVERY_MANIFEST, "terminate"),
)
PROCESS_CASES = cases(
    *[(step, "interrupt") for step in FILE_STEPS],
    (Step.DECRYPT, "terminate"),
    (Step.MEMBER_PUBLISH, "terminate"),
    (Step.DECRYPT, "kill"),
    (Step.REPORT_PUBLISH, "kill"),
)
RUN_CASES = [
    *cases(*[(step, action) for step in PIPELINE_STEPS for action in ("kill", "interrupt")]),
    *cases((Step.LOAD, "terminate")),
]
RUN_POSTGRES_CASES = cases(
    (Step.PUBLISH, "kill"),
    (Step.LOAD, "interrupt"),
    (Step.TRANSFORM, "terminate"),
    marks=pytest.mark.postgres,
)


@pytest.mark.parametrize(("step", "action"), SCAN_CASES)
def test_scan_cut_short_at_a_step_is_completed_by_the_next_scan(
    lake: Lake, step: Step, action: str
) -> None:
    faulted = lake.run("etl-file-processing", "scan", fault=f"{step}:{action}")
    assert_faulted(faulted, action, step, counted="landing object(s) finished")
    assert_readers_see_whole_deliveries(lake)
    wait_out_timeouts(lake)
    again = lake.run("etl-file-processing", "scan")
    assert again.returncode in (0, 3), again.stderr[-3000:]
    assert_landing_settled(lake)
    assert_no_leftovers(lake, _pid_of(faulted))


@pytest.mark.parametrize(("step", "action"), PROCESS_CASES)
def test_process_cut_short_at_a_step_is_completed_by_the_next_process(
    lake: Lake, step: Step, action: str
) -> None:
    faulted = lake.run("etl-file-processing", "process", SEALED, fault=f"{step}:{action}")
    assert_faulted(faulted, action, step)
    assert_readers_see_whole_deliveries(lake)
    wait_out_timeouts(lake)
    again = lake.run("etl-file-processing", "process", SEALED)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_landing_settled(lake, (SEALED,))
    assert_no_leftovers(lake, _pid_of(faulted))


@pytest.mark.parametrize("database", ["sqlite"])
@pytest.mark.parametrize(("step", "action"), RUN_CASES)
def test_run_cut_short_at_a_step_is_completed_by_the_next_run(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    scanned: Path,
    database: str,
    step: Step,
    action: str,
) -> None:
    lake = _db_lake(request, tmp_path, scanned, database)
    faulted = lake.run("etl-data-pipeline", "run", fault=f"{step}:{action}")
    assert_faulted(faulted, action, step, counted="partition(s) finished")
    assert_readers_see_whole_deliveries(lake)
    wait_out_timeouts(lake)
    again = lake.run("etl-data-pipeline", "run")
    assert again.returncode == 0, again.stderr[-3000:]
    assert_loaded_exactly(lake)
    assert_landing_settled(lake)
    assert_no_leftovers(lake, _pid_of(faulted))


@pytest.mark.parametrize(("step", "action"), RUN_POSTGRES_CASES)
def test_run_cut_short_on_postgresql_is_completed_by_the_next_run(
    request: pytest.FixtureRequest, tmp_path: Path, scanned: Path, step: Step, action: str
) -> None:
    test_run_cut_short_at_a_step_is_completed_by_the_next_run(
        request, tmp_path, scanned, "postgresql", step, action
    )


@pytest.mark.parametrize(
    ("database", "action"),
    [
        ("sqlite", "kill"),
        ("sqlite", "interrupt"),
        pytest.param("postgresql", "kill", marks=pytest.mark.postgres),
        pytest.param("postgresql", "terminate", marks=pytest.mark.postgres),
    ],
)
def test_load_cut_short_leaves_the_table_as_it_was_and_the_next_load_is_exact(
    request: pytest.FixtureRequest, tmp_path: Path, transformed: Path, database: str, action: str
) -> None:
    lake = _db_lake(request, tmp_path, transformed, database)
    _cut_short_load_then_load_again(lake, Step.LOAD, action)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("step", "action"),
    [
        (Step.LOAD_INDEX, "kill"),
        (Step.LOAD_SWAP, "kill"),
        (Step.LOAD_SWAP, "terminate"),
        (Step.LOAD_ATTACH, "kill"),
    ],
)
def test_load_cut_short_during_the_partition_swap_keeps_the_day_and_the_next_load_is_exact(
    request: pytest.FixtureRequest, tmp_path: Path, transformed: Path, step: Step, action: str
) -> None:
    lake = _db_lake(request, tmp_path, transformed, "postgresql")
    _cut_short_load_then_load_again(lake, step, action)
    import psycopg

    with psycopg.connect(lake.database_url, autocommit=True) as db:
        staging = db.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE %s", [TABLE + r"\_p%\_load\_%"]
        ).fetchall()
    assert staging == []  # what the cut-short load left was dropped by name


def _cut_short_load_then_load_again(lake: Lake, step: Step, action: str) -> None:
    args = ("load", "--dataset", DATASET, "--date", "2026-11-10")
    loaded = {date(2026, 11, 10): EXPECTED_ROWS[date(2026, 11, 10)]}
    first = lake.run("etl-data-pipeline", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert lake.rows_by_day() == loaded
    faulted = lake.run("etl-data-pipeline", *args, fault=f"{step}:{action}")
    assert_faulted(faulted, action, step)
    assert lake.rows_by_day() == loaded  # the cut-short load left the day as it was
    wait_out_timeouts(lake)
    again = lake.run("etl-data-pipeline", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert lake.rows_by_day() == loaded
    assert_no_leftovers(lake, _pid_of(faulted))


# ------------------------------------------------------------------ re-delivery

REDELIVERY_STEPS = [
    Step.DELIVERY_MANIFEST,
    Step.STALE_REMOVED,
    Step.CONTENT_RECORDED,
    Step.SUPERSEDED,
    Step.RECORDED,
]
REDELIVERED_ROWS = {date(2026, 11, 1): 300, date(2026, 11, 7): 300, date(2026, 11, 10): 200}
DROPPED_MEMBER = f"{validated_prefix(DATASET, date(2026, 11, 10))}pos_20261110.csv.zip.pgp/b.csv"


@pytest.fixture(scope="module")
def redrops() -> dict[str, bytes]:
    """The vendor's re-deliveries: the sealed zip without its ``b.csv``, the bad day fixed."""
    gen = _generator()
    members = {"a.csv": gen.day_csv(date(2026, 11, 10), 200)}
    return {
        SEALED: gen.encrypted(gen.zipped(members), gen.EXAMPLE_KEY),
        BAD: gen.day_csv(date(2026, 11, 7)),
    }


@pytest.mark.parametrize("step", REDELIVERY_STEPS, ids=str)
def test_redelivery_scan_killed_at_a_step_is_settled_by_the_next_scan_and_loaded_once(
    lake: Lake, redrops: dict[str, bytes], step: Step
) -> None:
    """A scan of re-deliveries killed between publishing, removing the member the new zip
    lacks, the content index, closing the earlier quarantine and the ledger: the next scan
    leaves validated/ holding exactly what the manifests name (the dropped member gone),
    the quarantine closed in the store and the database, and every row is loaded once."""
    first = lake.run("etl-file-processing", "scan")
    assert first.returncode == 3, first.stderr[-3000:]  # the bad drop is quarantined
    for key, body in redrops.items():
        (lake.store_dir / key).write_bytes(body)
    faulted = lake.run("etl-file-processing", "scan", fault=f"{step}:kill")
    assert_faulted(faulted, "kill", step)
    wait_out_timeouts(lake)
    again = lake.run("etl-file-processing", "scan")
    assert again.returncode == 0, again.stderr[-3000:]

    store = open_store(str(lake.store_dir))
    ledger = Ledger(store, run_id="check", claim_timeout=timedelta(hours=1))
    for key in (PLAIN, SEALED, BAD):
        record = ledger.get(key)
        assert record is not None, key
        assert record.state == "validated", (key, record)
    manifests = [m for day in REDELIVERED_ROWS for m in read_deliveries(store, DATASET, day)]
    assert sorted(m.delivery.key for m in manifests) == sorted([PLAIN, SEALED, BAD])
    for manifest in manifests:
        day = date.fromisoformat(manifest.dt)
        assert sum(member.rows for member in manifest.members) == REDELIVERED_ROWS[day]
    published = {key for m in manifests for key in m.keys} | {
        delivery_manifest_key(DATASET, date.fromisoformat(m.dt), m.delivery.key) for m in manifests
    }
    found = {info.key for info in store.list(validated_prefix(DATASET))}
    assert found == published, f"not named by a delivery manifest: {sorted(found - published)}"
    assert DROPPED_MEMBER not in found
    original = quarantine_key(DATASET, date(2026, 11, 7), "pos_20261107.csv")
    closed = QuarantineRecord.from_json(store.read_bytes(quarantine_record_key(original)))
    assert closed.superseded, closed
    with sqlite3.connect(lake.database_url.removeprefix("sqlite:///")) as db:
        mirrored = db.execute(
            "SELECT released_by FROM etl_quarantine_record WHERE quarantine_key = ?", [original]
        ).fetchall()
    assert mirrored == [("superseded",)]  # the mirror closed it too

    loaded = lake.run("etl-data-pipeline", "run")
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert lake.rows_by_day() == REDELIVERED_ROWS
    assert_no_leftovers(lake, _pid_of(faulted))
