"""An enrichment's reference file that is no regular file in a local store is refused at
once, naming the join (``enrich.<name>``) and the key: a FIFO at the key hung the
transform for ever (the staged link read, waiting for a writer), a directory said the
reference "does not exist". A symlink to a regular file still joins."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from data_pipeline.errors import ReferenceFileError
from data_pipeline.transform import transform_partition
from etl_core.contracts import load_contracts
from etl_core.storage import ObjectStore

Cli = Callable[..., Any]
DAY = date(2026, 11, 1)
STORES = "reference/stores.csv"
FOUND = {"fifo": "a FIFO (named pipe)", "directory": "a directory"}


def place(store: ObjectStore, kind: str) -> Path:
    path = Path(store.url.removeprefix("file://")) / STORES
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:  # what a bind mount of a missing file leaves
        path.mkdir()
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", list(FOUND))
def test_a_reference_key_that_is_no_regular_file_is_refused_naming_join_and_key(
    local_store: ObjectStore, settings: Any, kind: str
) -> None:
    place(local_store, kind)
    contract = load_contracts(settings.config_dir).get("pos")

    with pytest.raises(ReferenceFileError) as caught:
        transform_partition(local_store, contract, DAY, settings)

    error = caught.value
    assert error.keys == (STORES,)
    assert error.join == "stores"
    said = str(error)
    assert said.startswith("dataset 'pos', partition dt=2026-11-01, field 'enrich.stores': ")
    assert f"reference file {STORES} cannot be read: expected CSV (by its name)" in said
    assert f"the store holds {FOUND[kind]} at that key, not a regular file" in said
    assert not local_store.exists("curated/pos/dt=2026-11-01/_manifest.json")


@pytest.mark.timeout(120)
def test_transform_with_a_fifo_as_reference_exits_1_naming_it_without_hanging(
    cli_on: Callable[[Path], Cli], local_store: ObjectStore, tmp_path: Path
) -> None:
    place(local_store, "fifo")

    done = cli_on(tmp_path / "store")("transform", "--dataset", "pos", "--date", "2026-11-01")

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    said = "\n".join(
        str(event.get("error") or event["event"])
        for event in map(json.loads, done.stderr.splitlines())
    )
    assert f"reference file {STORES} cannot be read" in said
    assert "the store holds a FIFO (named pipe) at that key" in said


def test_a_reference_key_symlinked_to_a_regular_file_joins(
    local_store: ObjectStore, settings: Any, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "stores-2026-11.csv"  # a mounted reference, say
    elsewhere.write_bytes(local_store.read_bytes(STORES))
    path = Path(local_store.url.removeprefix("file://")) / STORES
    path.unlink()
    path.symlink_to(elsewhere)
    contract = load_contracts(settings.config_dir).get("pos")

    transform_partition(local_store, contract, DAY, settings)

    manifest = json.loads(local_store.read_bytes("curated/pos/dt=2026-11-01/_manifest.json"))
    (part,) = manifest["files"]
    local = tmp_path / "part.parquet"
    local_store.download(part, local)
    query = f"SELECT count(*) FROM '{local}' WHERE store_name IS NOT NULL"
    assert duckdb.connect().execute(query).fetchall() != [(0,)]
