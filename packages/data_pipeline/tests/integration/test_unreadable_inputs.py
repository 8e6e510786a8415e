"""A validated object the transform cannot read is named by its key in the store.

The transform copies a partition's objects into a scratch directory and DuckDB reads the
copies: its errors named ``/tmp/etl-transform-…/input/00000-e.csv``, a file gone with the
run. Each case below is a file its name and the contract allow, malformed; the error names
the object key, what it was read as and DuckDB's (or Python's) reason, the object stays
where it was and no curated partition appears; `transform --date`, `run` and `backfill`
say and record the same.
"""

from __future__ import annotations

import gzip
import json
import random
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from data_pipeline.errors import InputFileError, PartitionError
from data_pipeline.transform import transform_partition
from etl_core.contracts import load_contracts
from etl_core.storage import ObjectStore
from etl_core.testing import publish_delivery

Cli = Callable[..., subprocess.CompletedProcess[str]]
DAY = date(2026, 11, 1)
PREFIX = "validated/events/dt=2026-11-01/"
ID_N_V = (
    'dataset = "events"\n[[columns]]\nname = "id"\n[[columns]]\nname = "n"\ntype = "int"\n'
    '[[columns]]\nname = "v"\n'
)
JOBS = "_state/data_pipeline/backfills/*.json"
GOOD = b"id,n,v\nk0,0,z\n"
"""A readable file beside the bad one: never the one blamed."""


def _cut_gzip() -> bytes:
    noise = random.Random(7)
    rows = b"".join(b"k%d,%d,%x\n" % (i, i, noise.getrandbits(64)) for i in range(20000))
    whole = gzip.compress(b"id,n,v\n" + rows)
    return whole[: len(whole) // 2]


def _corrupt_gzip() -> bytes:
    """A gzip member whose header is sound and whose compressed data is not."""
    whole = gzip.compress(b"id,n,v\n" + b"k1,1,a\n" * 10)
    return whole[:10] + b"\xff" * 40 + whole[50:]


@dataclass(frozen=True)
class Bad:
    """A malformed file: its name, its bytes, what it was expected to be, what is wrong."""

    name: str
    data: bytes
    expected: str
    reason: str


CSV = "expected CSV (by its name) with a header, delimiter ',', quote '\"', escape the quote "
BAD = [
    Bad(
        "e.csv",
        b"id,n,v\nk1,1,a\nk2,2,b,extra\n",
        CSV,
        f'Error when sniffing file "{PREFIX}e.csv"',
    ),
    Bad(
        "e.csv",
        b"id,n,v\nk1,x,a\n",
        CSV,
        'CSV Error on Line: 2; Original Line: k1,x,a; Error when converting column "n". '
        'Could not convert string "x"',
    ),
    Bad("e.csv", b"id,n,v\nk1,1,\xff\xfe\n", CSV, "'utf-8' codec can't decode byte 0xff"),
    Bad(
        "e.csv.gz", b"id,n,v\nk1,1,a\n", "expected gzip-compressed CSV (by its name)", "Not a gzip"
    ),
    Bad(
        "e.csv.gz",
        _cut_gzip(),
        "expected gzip-compressed CSV (by its name)",
        f"Unexpected end of GZIP stream: {PREFIX}e.csv.gz",
    ),
    Bad(
        "e.csv.gz",
        _corrupt_gzip(),
        "expected gzip-compressed CSV (by its name)",
        "Error -3 while decompressing data: invalid block type",
    ),
    Bad(
        "e.parquet",
        b"id,n,v\nk1,1,a\n",
        "expected Parquet (by its name)",
        f"No magic bytes found at end of file '{PREFIX}e.parquet'",
    ),
    Bad(
        "e.json",
        b'{"id": "k1", "n": 1, "v": "a"}\n{"id": ',
        "expected JSON (by its name): an array of objects or JSON lines",
        f'Malformed JSON in file "{PREFIX}e.json"',
    ),
]
IDS = [
    "row-too-long",
    "not-an-int",
    "not-utf8",
    "not-gzip",
    "gzip-cut-short",
    "gzip-corrupt",
    "not-parquet",
    "json-cut-short",
]


def publish_bad(store: ObjectStore, config_dir: Path, retail: Any, bad: Bad) -> None:
    publish_delivery(store, "events", DAY, {"a.csv": GOOD, bad.name: bad.data})
    retail.write_contract(config_dir, "events", ID_N_V)


def assert_named_by_key(said: str, bad: Bad) -> None:
    assert f"input file {PREFIX}{bad.name} cannot be read: {bad.expected}" in said
    assert bad.reason in said
    assert "etl-transform-" not in said  # the scratch copy's path
    assert "00000-" not in said  # its name there
    assert "00001-" not in said


def assert_nothing_lost(store: ObjectStore, bad: Bad) -> None:
    assert store.read_bytes(PREFIX + bad.name) == bad.data  # the input stays as it was
    assert store.read_bytes(PREFIX + "a.csv") == GOOD
    assert not store.exists("curated/events/dt=2026-11-01/_manifest.json")


@pytest.mark.parametrize("bad", BAD, ids=IDS)
def test_an_unreadable_input_is_named_by_its_store_key_and_stays_where_it_was(
    local_store: ObjectStore, settings: Any, retail: Any, bad: Bad
) -> None:
    publish_bad(local_store, settings.config_dir, retail, bad)
    contract = load_contracts(settings.config_dir).get("events")
    with pytest.raises(InputFileError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    assert caught.value.keys == (PREFIX + bad.name,)
    assert str(caught.value).startswith("dataset 'events', partition dt=2026-11-01: ")
    assert_named_by_key(str(caught.value), bad)
    assert_nothing_lost(local_store, bad)


@pytest.fixture
def pipeline(cli_on: Callable[[Path], Cli], tmp_path: Path, local_store: ObjectStore) -> Cli:
    return cli_on(tmp_path / "store")


def error_events(stderr: str) -> str:
    """Every error logged (JSON lines), one per line."""
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return "\n".join(str(line.get("error") or line["event"]) for line in lines)


@pytest.mark.parametrize("bad", [BAD[0], BAD[1], BAD[6]], ids=[IDS[0], IDS[1], IDS[6]])
def test_transform_run_and_backfill_name_the_store_key_and_record_the_failure(
    pipeline: Cli,
    local_store: ObjectStore,
    config_dir: Path,
    retail: Any,
    migrated_sqlite: str,
    tmp_path: Path,
    bad: Bad,
) -> None:
    publish_bad(local_store, config_dir, retail, bad)
    env = {"ETL_DATABASE_URL": migrated_sqlite}

    transformed = pipeline("transform", "--dataset", "events", "--date", "2026-11-01", env=env)
    ran = pipeline("run", "--dataset", "events", "--no-load", env=env)
    args = ("backfill", "--dataset", "events", "--from", "2026-11-01", "--to", "2026-11-01")
    backfilled = pipeline(*args, "--no-load", env=env)

    for done in (transformed, ran, backfilled):
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert_named_by_key(error_events(done.stderr), bad)
    with sqlite3.connect(migrated_sqlite.removeprefix("sqlite:///")) as connection:
        runs = connection.execute(
            "SELECT job, status, error FROM etl_pipeline_run ORDER BY started_at"
        ).fetchall()
    assert [(job, status) for job, status, _ in runs] == [
        ("transform", "failed"),
        ("run", "failed"),
        ("backfill", "failed"),
    ]
    # a --no-load backfill keeps its job in the store; its run's error is "exit code 1"
    (job,) = [json.loads(p.read_text()) for p in (tmp_path / "store").glob(JOBS)]
    (partition,) = job["partitions"]
    assert partition["state"] == "failed"
    for error in (runs[0][2], runs[1][2], partition["error"]):
        assert error.startswith("dataset 'events', partition dt=2026-11-01: "), error
        assert_named_by_key(error, bad)
    assert_nothing_lost(local_store, bad)


def test_the_engine_running_out_of_memory_blames_its_memory_limit_not_the_inputs(
    local_store: ObjectStore, settings: Any, retail: Any
) -> None:
    """DuckDB out of memory while it reads the inputs is no fault of the files (they read
    with more memory): the error says so and names the setting, not 'cannot be read'."""
    rows = b"".join(b"k%d,%d,%d\n" % (i, i, i) for i in range(200_000))
    files = {"a.csv": b"id,n,v\n" + rows, "b.csv": b"id,n,v\n" + rows}
    publish_delivery(local_store, "events", DAY, files)
    retail.write_contract(settings.config_dir, "events", ID_N_V)
    contract = load_contracts(settings.config_dir).get("events")
    tight = replace(settings, duckdb_memory_limit="1MB", duckdb_threads=1)
    with pytest.raises(PartitionError) as caught:
        transform_partition(local_store, contract, DAY, tight)
    said = str(caught.value)
    assert not isinstance(caught.value, InputFileError), said
    assert "out of memory" in said.lower()
    assert "duckdb_memory_limit" in said
    assert "cannot be read" not in said
    assert f"{PREFIX}a.csv" in said  # what it was reading
    assert "etl-transform-" not in said
    assert transform_partition(local_store, contract, DAY, settings).rows == 400_000
