"""What the file lane now accepts, read alike: JSON arrays, absent JSON keys, kept extra
columns across files, an open schema."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from data_pipeline.settings import PipelineSettings
from data_pipeline.transform import transform_partition
from etl_core.contracts import load_contracts
from etl_core.storage import ObjectStore
from etl_core.testing import publish_delivery

DAY = date(2026, 11, 1)


def transformed(
    store: ObjectStore,
    settings: PipelineSettings,
    retail: Any,
    tmp_path: Path,
    contract: str,
    files: dict[str, bytes],
) -> list[dict[str, Any]]:
    publish_delivery(store, "events", DAY, files, landing="landing/events/day.zip")
    retail.write_contract(settings.config_dir, "events", contract)
    transform_partition(store, load_contracts(settings.config_dir).get("events"), DAY, settings)
    rows: list[dict[str, Any]] = []
    for info in store.list("curated/events/"):
        if info.key.endswith(".parquet"):
            local = tmp_path / info.key.rsplit("/", 1)[-1]
            store.download(info.key, local)
            rows += pq.read_table(local).to_pylist()
    return sorted(rows, key=lambda row: str(row.get("id")))


DECLARED = """dataset = "events"
%s
[[columns]]
name = "id"
type = "int"
[[columns]]
name = "v"
[transform]
sql = "%s"
"""


def test_json_arrays_and_json_lines_are_read_alike_an_absent_key_is_null(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any, tmp_path: Path
) -> None:
    files = {
        "a.json": b'[\n {"id": 1, "v": "x", "more": 1},\n {"id": 2}\n]',
        "b.json": b'{"id": 3}\n',  # JSON lines, and no record has "v"
    }
    contract = DECLARED % ('format = "auto"', "SELECT id, v FROM input")
    rows = transformed(local_store, settings, retail, tmp_path, contract, files)
    assert [(r["id"], r["v"]) for r in rows] == [(1, "x"), (2, None), (3, None)]
    assert "more" not in rows[0]  # unset extra_columns: only declared columns are read


def test_kept_extra_columns_of_several_files_are_all_in_input(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any, tmp_path: Path
) -> None:
    files = {"a.csv": b"id,v,region\n1,x,EU\n", "b.csv": b"channel,id,v\nweb,2,y\n"}
    contract = DECLARED % (
        '[schema]\nextra_columns = "keep"',
        "SELECT id, v, region, channel FROM input",
    )
    rows = transformed(local_store, settings, retail, tmp_path, contract, files)
    assert [(r["id"], r["v"], r["region"], r["channel"]) for r in rows] == [
        (1, "x", "EU", None),
        (2, "y", None, "web"),
    ]


def test_an_open_schema_reads_every_column_as_written(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any, tmp_path: Path
) -> None:
    files = {"a.csv": b"id,city\n1,Oslo\n2,Lima\n"}
    contract = (
        'dataset = "events"\n[schema]\nmode = "open"\n'
        '[transform]\nsql = "SELECT CAST(id AS INTEGER) AS id, city FROM input"\n'
    )
    rows = transformed(local_store, settings, retail, tmp_path, contract, files)
    assert [(r["id"], r["city"]) for r in rows] == [(1, "Oslo"), (2, "Lima")]
