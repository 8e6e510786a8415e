"""Contracts that fit real vendors, end to end: what file_processing accepts under date_from,
a schema policy or format = "json", data_pipeline reads alike into curated Parquet."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from etl_core.testing.scripts import run_script


def lane(tool: str, *args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {"ETL_STORAGE_URL": str(root / "store"), "ETL_CONFIG_DIR": str(root / "config")}
    return run_script(tool, *args, cwd=root, env=env)


def deliver(root: Path, contracts: dict[str, str], files: dict[str, bytes]) -> None:
    (root / "config/datasets").mkdir(parents=True)
    for name, text in contracts.items():
        (root / f"config/datasets/{name}.toml").write_text(text)
    for key, data in files.items():
        path = root / "store" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def curated_rows(root: Path, dataset: str, day: str) -> list[dict[str, object]]:
    transform = lane(
        "etl-data-pipeline", "transform", "--dataset", dataset, "--date", day, root=root
    )
    assert transform.returncode == 0, transform.stderr
    (part,) = (root / f"store/curated/{dataset}/dt={day}").glob("part-*.parquet")
    rows: list[dict[str, object]] = pq.read_table(part).to_pylist()
    return sorted(rows, key=lambda row: str(row.get("id")))


JSON_CONTRACT = """
dataset = "acme_orders"
source = "acme"
pattern = "export.json"
date_from = "arrival"
timezone = "Asia/Tokyo"
format = "auto"

[[columns]]
name = "id"
type = "int"
required = true

[[columns]]
name = "amount"
type = "decimal(10,2)"

[transform]
sql = "SELECT id, amount FROM input"
"""


def test_a_json_array_dated_by_arrival_reaches_curated(tmp_path: Path) -> None:
    records = [{"id": 1, "amount": 12.5, "extra": {"a": 1}}, {"id": 2, "amount": None}]
    deliver(
        tmp_path,
        {"acme": JSON_CONTRACT},
        {"landing/acme/export.json": json.dumps(records, indent=2).encode()},
    )
    arrived = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)  # 1 November, 05:00 in Tokyo
    os.utime(tmp_path / "store/landing/acme/export.json", (arrived.timestamp(),) * 2)

    scan = lane("etl-file-processing", "scan", root=tmp_path)
    assert scan.returncode == 0, scan.stderr
    validated = tmp_path / "store/validated/acme_orders/dt=2026-11-01"
    report = json.loads((validated / "export.json.quality.json").read_text())
    assert report["format"] == "json"
    assert report["rows"]["valid"] == 2

    rows = curated_rows(tmp_path, "acme_orders", "2026-11-01")
    assert [(r["id"], r["amount"]) for r in rows] == [(1, Decimal("12.50")), (2, None)]


CSV_CONTRACT = """
dataset = "shop_sales"
source = "shop"
pattern = "{date:%Y-%m-%d}/report.csv"
date_from = "path"

[schema]
extra_columns = "keep"
missing_columns = "null"

[[columns]]
name = "id"
type = "int"
required = true

[[columns]]
name = "amount"
type = "decimal(10,2)"

[[columns]]
name = "note"

[transform]
sql = "SELECT id, amount, note, region FROM input"
"""


def test_a_csv_dated_by_its_folder_with_kept_and_missing_columns_reaches_curated(
    tmp_path: Path,
) -> None:
    deliver(
        tmp_path,
        {"shop": CSV_CONTRACT},
        {"landing/shop/2026-11-02/report.csv": b"region,id,amount\nEU,1,2.50\nUS,2,\n"},
    )
    scan = lane("etl-file-processing", "scan", root=tmp_path)
    assert scan.returncode == 0, scan.stderr
    report = json.loads(
        (tmp_path / "store/validated/shop_sales/dt=2026-11-02/report.csv.quality.json").read_text()
    )
    assert [(c["name"], c["source"]) for c in report["columns"]] == [
        ("region", "extra"),
        ("id", "declared"),
        ("amount", "declared"),
        ("note", "filled"),
    ]
    rows = curated_rows(tmp_path, "shop_sales", "2026-11-02")
    assert [(r["id"], r["amount"], r["note"], r["region"]) for r in rows] == [
        (1, Decimal("2.50"), None, "EU"),
        (2, None, None, "US"),
    ]


OPEN_CONTRACT = """
dataset = "any_feed"
source = "feed"
pattern = "feed_{date:%Y%m%d}.csv"

[schema]
mode = "open"

[transform]
sql = "SELECT id, city FROM input"
"""


def test_an_open_schema_file_reaches_curated_as_text(tmp_path: Path) -> None:
    deliver(
        tmp_path,
        {"feed": OPEN_CONTRACT},
        {"landing/feed/feed_20261103.csv": b"id,city,score\n1,Oslo,3.5\n2,Lima,\n"},
    )
    scan = lane("etl-file-processing", "scan", root=tmp_path)
    assert scan.returncode == 0, scan.stderr
    report = json.loads(
        (
            tmp_path / "store/validated/any_feed/dt=2026-11-03/feed_20261103.csv.quality.json"
        ).read_text()
    )
    assert {c["name"]: c["type"] for c in report["columns"]} == {
        "id": "int",
        "city": "string",
        "score": "float",
    }
    rows = curated_rows(tmp_path, "any_feed", "2026-11-03")
    assert [(r["id"], r["city"]) for r in rows] == [("1", "Oslo"), ("2", "Lima")]
    assert date(2026, 11, 3).isoformat() in {str(r["dt"]) for r in rows}
