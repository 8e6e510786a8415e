"""The lanes agree on one contract: what file_processing validates, data_pipeline reads alike."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from etl_core.testing.scripts import run_script

# A vendor writing the European way: Latin-1, semicolons, backslash escapes, "NA" for
# nothing, day-first dates; one row fails a check and is split off.
CONTRACT = r"""
dataset = "eu_orders"
source = "eu"
pattern = "orders_{date:%Y%m%d}.csv"
format = "csv"
max_rejected_fraction = 1

[parse]
delimiter = ";"
escape = "\\"
null_values = ["NA"]
encoding = "latin-1"

[[columns]]
name = "order_id"
type = "int"
required = true

[[columns]]
name = "ordered_on"
type = "date"
format = "%d.%m.%Y"

[[columns]]
name = "amount"
type = "decimal"
precision = 10
scale = 2

[[columns]]
name = "note"

[[checks]]
kind = "range"
column = "amount"
min = 0

[transform]
sql = "SELECT order_id, ordered_on, amount, note FROM input"
"""
DELIVERY = (
    "order_id;ordered_on;amount;note\n"
    '1;01.11.2026;12.50;"M\u00fcller \\"GmbH\\"; Wien"\n'
    "2;02.11.2026;NA;caf\u00e9\n"
    "3;01.11.2026;-1;refund\n"
)


def lane(tool: str, *args: str, root: Path) -> subprocess.CompletedProcess[str]:
    env = {"ETL_STORAGE_URL": str(root / "store"), "ETL_CONFIG_DIR": str(root / "config")}
    return run_script(tool, *args, cwd=root, env=env)


def test_a_split_latin1_delivery_in_a_vendor_dialect_reaches_curated_intact(
    tmp_path: Path,
) -> None:
    (tmp_path / "config/datasets").mkdir(parents=True)
    (tmp_path / "config/datasets/eu_orders.toml").write_text(CONTRACT)
    landing = tmp_path / "store/landing/eu/orders_20261101.csv"
    landing.parent.mkdir(parents=True)
    landing.write_bytes(DELIVERY.encode("latin-1"))

    scan = lane("etl-file-processing", "scan", root=tmp_path)
    assert scan.returncode == 0, scan.stderr
    validated = tmp_path / "store/validated/eu_orders/dt=2026-11-01"
    assert (validated / "orders_20261101.csv.rejected.csv").is_file()

    transform = lane(
        "etl-data-pipeline", "transform", "--dataset", "eu_orders", "--date", "2026-11-01",
        root=tmp_path,
    )  # fmt: skip
    assert transform.returncode == 0, transform.stderr
    curated = tmp_path / "store/curated/eu_orders/dt=2026-11-01"
    (part,) = curated.glob("part-*.parquet")
    rows = sorted(pq.read_table(part).to_pylist(), key=lambda r: r["order_id"])
    assert [(r["order_id"], r["ordered_on"], r["amount"], r["note"]) for r in rows] == [
        (1, date(2026, 11, 1), Decimal("12.50"), 'M\u00fcller "GmbH"; Wien'),
        (2, date(2026, 11, 2), None, "caf\u00e9"),
    ]


# Contracts that lanes once judged differently: every runtime must now give one verdict.
PROBES = {
    "int_type": ('[[columns]]\nname = "n"\ntype = "int"\n', set()),
    "integer_type": ('[[columns]]\nname = "n"\ntype = "integer"\n', {"columns[0].type"}),
    "tz_type": ('[[columns]]\nname = "at"\ntype = "timestamptz"\n', {"columns[0].type"}),
    "bool_type": ('[[columns]]\nname = "b"\ntype = "boolean"\n', {"columns[0].type"}),
    "short_decimal": ('[[columns]]\nname = "price"\ntype = "decimal(12,2)"\n', set()),
    "hyphen_column": ('[[columns]]\nname = "store-id"\n', set()),
    "hyphen_dataset": ('[[columns]]\nname = "n"\n', {"dataset"}),
    "format_typo": (
        '[[columns]]\nname = "day"\ntype = "date"\nformatt = "%d.%m.%Y"\n',
        {"columns[0].formatt"},
    ),
    "freshness_typo": (
        '[[columns]]\nname = "n"\n[freshness]\nwarn_afer = "1h"\n',
        {"freshness.warn_afer"},
    ),
    "load_typo": ('[[columns]]\nname = "n"\n[laod]\ntable = "t"\n', {"laod"}),
    "transform_typo": (
        '[[columns]]\nname = "n"\n[transform]\nsqll = "SELECT 1"\n',
        {"transform.sqll"},
    ),
    "join_policy": (
        '[[columns]]\nname = "n"\n[enrich.refs]\nfile = "r.csv"\non = ["n"]\n'
        'columns = ["m"]\nunmatched = "ignore"\n',
        {"enrich.refs.unmatched"},
    ),
}


def test_every_runtime_gives_each_probe_contract_the_same_verdict(tmp_path: Path) -> None:
    datasets = tmp_path / "config/datasets"
    datasets.mkdir(parents=True)
    for name, (body, _) in PROBES.items():
        dataset = name.replace("_", "-") if name == "hyphen_dataset" else name
        head = f'dataset = "{dataset}"\nsource = "{name}"\npattern = "{name}_{{date:%Y%m%d}}.csv"\n'
        (datasets / f"{name}.toml").write_text(head + body)
    expected = {name: fields for name, (_, fields) in PROBES.items() if fields}
    for tool in ("etl-file-processing", "etl-data-pipeline", "etl-observability"):
        result = lane(tool, "contracts", "check", "--json", root=tmp_path)
        assert result.returncode == 2, f"{tool}: {result.stdout}{result.stderr}"
        verdict: dict[str, set[str]] = {}
        for error in json.loads(result.stdout)["errors"]:
            verdict.setdefault(Path(error["file"]).stem, set()).add(error["field"])
            assert error["line"] is not None, f"{tool}: {error}"
        assert verdict == expected, tool
