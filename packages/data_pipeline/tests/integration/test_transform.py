"""Transforms on a real DuckDB, read back with pyarrow, on the local store and on S3."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from data_pipeline.errors import (
    InputFileError,
    JoinKeyTypeError,
    MissingColumnError,
    MissingPartitionError,
    PartitionError,
    SupersededError,
    TransformSqlError,
    UnmatchedRowsError,
)
from data_pipeline.layout import new_generation, publish_partition, read_manifest
from data_pipeline.pipeline import pending_partitions, process_partition
from data_pipeline.settings import PipelineSettings
from data_pipeline.transform import transform_partition
from etl_core.contracts import load_contracts
from etl_core.storage import ObjectStore, open_store
from etl_core.testing import capture_metrics, publish_delivery

DAY = date(2026, 11, 1)


def read_partition(
    store: ObjectStore, dataset: str, dt: date, tmp_path: Path
) -> list[dict[str, Any]]:
    """Every row of a curated partition, read through its manifest with pyarrow."""
    manifest = read_manifest(store, dataset, dt)
    assert manifest is not None
    rows: list[dict[str, Any]] = []
    for number, key in enumerate(manifest.files):
        path = tmp_path / f"read-{number}.parquet"
        path.write_bytes(store.read_bytes(key))
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def test_transform_writes_enriched_zstd_parquet(
    local_store: ObjectStore, settings: PipelineSettings, tmp_path: Path
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    result = transform_partition(local_store, contract, DAY, settings, run_id="r1")
    assert result.rows == 200
    assert result.inputs == 1
    assert result.unmatched == {"stores": 0, "products": 0}
    rows = read_partition(local_store, "pos", DAY, tmp_path)
    assert len(rows) == 200
    first = min(rows, key=lambda r: r["transaction_id"])
    assert first["dt"] == DAY
    assert first["region"] in {"PT", "ES", "FR", "IT"}
    assert first["store_name"]
    assert first["category"]
    manifest = read_manifest(local_store, "pos", DAY)
    assert manifest is not None
    assert manifest.rows == 200
    assert list(manifest.inputs) == ["validated/pos/dt=2026-11-01/pos_2026-11-01.csv"]
    metadata = pq.ParquetFile(tmp_path / "read-0.parquet").metadata
    assert metadata.row_group(0).column(0).compression == "ZSTD"


def test_rerun_gives_the_same_rows_and_prunes_old_generations(
    local_store: ObjectStore, settings: PipelineSettings, tmp_path: Path
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    first = transform_partition(local_store, contract, DAY, settings)
    before = sorted(read_partition(local_store, "pos", DAY, tmp_path), key=str)
    transform_partition(local_store, contract, DAY, settings)
    third = transform_partition(local_store, contract, DAY, settings)
    assert sorted(read_partition(local_store, "pos", DAY, tmp_path), key=str) == before
    parts = [i.key for i in local_store.list("curated/pos/dt=2026-11-01/part-")]
    assert len(parts) == 2  # the current generation and the one it replaced
    assert all(first.generation not in key for key in parts)
    assert any(third.generation in key for key in parts)


def test_duplicates_are_removed_on_the_dedupe_key(
    local_store: ObjectStore, settings: PipelineSettings, tmp_path: Path, retail: Any
) -> None:
    again = {"again.csv": retail.rows("2026-11-01", 50).encode()}
    publish_delivery(local_store, "pos", DAY, again)
    contract = load_contracts(settings.config_dir).get("pos")
    with capture_metrics() as metrics:
        result = transform_partition(local_store, contract, DAY, settings)
    assert result.rows == 200
    assert result.duplicates == 50
    assert result.inputs == 2
    ids = [r["transaction_id"] for r in read_partition(local_store, "pos", DAY, tmp_path)]
    assert len(set(ids)) == 200
    assert metrics.value("etl_data_pipeline_duplicate_rows_total", dataset="pos") == 50


def unknown_store_rows(local_store: ObjectStore, retail: Any) -> None:
    text = retail.rows("2026-11-01", 200).replace(",S001,", ",S999,")
    publish_delivery(local_store, "pos", DAY, {"pos_2026-11-01.csv": text.encode()})


@pytest.mark.parametrize(("policy", "kept"), [("keep", True), ("drop", False)])
def test_unmatched_rows_are_kept_or_dropped_and_counted(
    local_store: ObjectStore,
    settings: PipelineSettings,
    tmp_path: Path,
    retail: Any,
    policy: str,
    kept: bool,
) -> None:
    unknown_store_rows(local_store, retail)
    retail.write_contract(settings.config_dir, "pos", retail.contract(stores=policy))
    contract = load_contracts(settings.config_dir).get("pos")
    with capture_metrics() as metrics:
        result = transform_partition(local_store, contract, DAY, settings)
    missed = result.unmatched["stores"]
    assert missed > 0
    rows = read_partition(local_store, "pos", DAY, tmp_path)
    unknown = [r for r in rows if r["store_code"] == "S999"]
    assert len(unknown) == (missed if kept else 0)
    assert all(r["region"] is None for r in unknown)
    assert len(rows) == 200 - (0 if kept else missed)
    assert (
        metrics.value(
            "etl_data_pipeline_unmatched_rows_total", dataset="pos", join="stores", policy=policy
        )
        == missed
    )


def test_unmatched_rows_fail_the_partition_when_the_policy_says_so(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    unknown_store_rows(local_store, retail)
    retail.write_contract(settings.config_dir, "pos", retail.contract(stores="fail"))
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(UnmatchedRowsError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    message = str(caught.value)
    assert "dataset 'pos', partition dt=2026-11-01, field 'enrich.stores'" in message
    assert "'S999'" in message
    assert read_manifest(local_store, "pos", DAY) is None


def test_missing_input_partition_is_named(
    local_store: ObjectStore, settings: PipelineSettings
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(
        MissingPartitionError, match=r"dataset 'pos', partition dt=2026-12-25: no validated input"
    ):
        transform_partition(local_store, contract, date(2026, 12, 25), settings)


def test_file_lacking_a_contract_column_is_named(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    lines = retail.rows("2026-11-01", 5).splitlines()
    cut = "\n".join(",".join(line.split(",")[:-1]) for line in lines) + "\n"
    publish_delivery(local_store, "pos", DAY, {"pos_2026-11-01.csv": cut.encode()})
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(MissingColumnError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    assert caught.value.field == "loyalty_member"
    assert "dataset 'pos', partition dt=2026-11-01, field 'loyalty_member'" in str(caught.value)
    assert "pos_2026-11-01.csv" in str(caught.value)


def test_join_key_type_mismatch_is_named(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    local_store.write_bytes("reference/stores.csv", b"store_id,name,country\n1,One,PT\n2,Two,ES\n")
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(JoinKeyTypeError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    assert caught.value.field == "enrich.stores.on.store_code"
    assert "VARCHAR" in str(caught.value)
    assert "BIGINT" in str(caught.value)


def test_invalid_sql_is_named(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    text = retail.contract(transform='[transform]\nsql = "SELECT no_such_column FROM input"\n')
    retail.write_contract(settings.config_dir, "pos", text)
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(TransformSqlError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    assert "field 'transform.sql'" in str(caught.value)
    assert "no_such_column" in str(caught.value)


def test_an_older_computation_never_replaces_a_newer_one(
    local_store: ObjectStore, settings: PipelineSettings, tmp_path: Path
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    newer = transform_partition(local_store, contract, DAY, settings)
    stale_start = datetime.now(UTC) - timedelta(hours=1)
    part = tmp_path / "part.parquet"
    part.write_bytes(b"PAR1 not really")
    with pytest.raises(SupersededError):
        publish_partition(
            local_store,
            dataset="pos",
            dt=DAY,
            generation=new_generation(stale_start),
            started_at=stale_start,
            files=[part],
            rows=1,
            inputs={},
        )
    manifest = read_manifest(local_store, "pos", DAY)
    assert manifest is not None
    assert manifest.generation == newer.generation
    assert len(list(local_store.list("curated/pos/dt=2026-11-01/part-"))) == 1


def test_reader_sees_old_partition_until_the_manifest_flips(
    local_store: ObjectStore, settings: PipelineSettings, tmp_path: Path
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    old = transform_partition(local_store, contract, DAY, settings)
    old_manifest = json.loads(local_store.read_bytes("curated/pos/dt=2026-11-01/_manifest.json"))
    new = transform_partition(local_store, contract, DAY, settings)
    # A reader holding the old manifest can still read every file it names.
    assert all(local_store.exists(key) for key in old_manifest["files"])
    current = read_manifest(local_store, "pos", DAY)
    assert current is not None
    assert current.generation == new.generation != old.generation


def test_enrichment_from_another_datasets_curated_partition(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any, tmp_path: Path
) -> None:
    retail.write_contract(
        settings.config_dir,
        "stores",
        'dataset = "stores"\n'
        + retail.columns_toml([("store_id", "string"), ("name", "string"), ("country", "string")])
        + '[transform]\nsql = "SELECT store_id, name, country FROM input"\n',
    )
    stores = {"stores.csv": local_store.read_bytes("reference/stores.csv")}
    publish_delivery(local_store, "stores", date(2026, 10, 31), stores)
    transform_partition(
        local_store, load_contracts(settings.config_dir).get("stores"), date(2026, 10, 31), settings
    )
    text = retail.contract().replace(
        'file = "reference/stores.csv"', 'dataset = "stores"\npartition = "latest"'
    )
    retail.write_contract(settings.config_dir, "pos", text)
    result = transform_partition(
        local_store, load_contracts(settings.config_dir).get("pos"), DAY, settings
    )
    assert result.unmatched["stores"] == 0
    rows = read_partition(local_store, "pos", DAY, tmp_path)
    assert {r["region"] for r in rows} <= {"PT", "ES", "FR", "IT"}


@pytest.mark.s3
def test_transform_on_s3(
    s3_endpoint: str, s3_bucket: str, config_dir: Path, retail: Any, tmp_path: Path
) -> None:
    url = f"s3://{s3_bucket}/transform-{tmp_path.name}"
    settings = PipelineSettings(
        storage_url=url,
        s3_endpoint_url=s3_endpoint,
        config_dir=config_dir,  # type: ignore[arg-type]
    )
    with open_store(url, endpoint_url=s3_endpoint) as store:
        retail.seed(store, ["2026-11-01"], rows=100)
        contract = load_contracts(config_dir).get("pos")
        result = transform_partition(store, contract, DAY, replace(settings, duckdb_threads=1))
        assert result.rows == 100
        rows = read_partition(store, "pos", DAY, tmp_path)
    assert len(rows) == 100
    assert all(r["category"] for r in rows)


def test_rows_of_another_date_fail_the_partition_naming_the_field(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    transform = retail.TRANSFORM.replace("FROM input", ", DATE '2026-10-31' AS dt FROM input")
    retail.write_contract(settings.config_dir, "pos", retail.contract(transform=transform))
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(PartitionError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    assert "field 'transform.partition_by'" in str(caught.value)
    assert read_manifest(local_store, "pos", DAY) is None


def test_a_transform_that_keeps_no_rows_publishes_an_empty_partition(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    transform = retail.TRANSFORM.replace("FROM input", "FROM input WHERE false")
    retail.write_contract(settings.config_dir, "pos", retail.contract(transform=transform))
    contract = load_contracts(settings.config_dir).get("pos")
    result = transform_partition(local_store, contract, DAY, settings)
    assert (result.rows, result.duplicates) == (0, 0)
    manifest = read_manifest(local_store, "pos", DAY)
    assert manifest is not None
    assert manifest.rows == 0


EVENTS = """dataset = "events"
[[columns]]
name = "id"
[[columns]]
name = "n"
type = "int"
[[columns]]
name = "v"
[transform]
sql = "SELECT id, n, v FROM input"
dedupe_on = ["id", "n"]
[enrich.kinds]
file = "reference/kinds.csv"
on = { v = "v" }
columns = ["label"]
unmatched = "%s"
"""


def events(store: ObjectStore, files: dict[str, str]) -> None:
    store.write_bytes("reference/kinds.csv", b"v,label\na,A\nb,B\nc,C\no,O\np,P\nx,X\ny,Y\n")
    encoded = {name: text.encode() for name, text in files.items()}
    publish_delivery(store, "events", DAY, encoded, landing="landing/events/day.zip")


@pytest.mark.parametrize("policy", ["keep", "drop"])  # one-pass and materialised paths
@pytest.mark.parametrize("first", ["a.csv", "z.csv"])
def test_a_repeated_key_keeps_its_first_row_by_every_column_whatever_the_file_order(
    local_store: ObjectStore,
    settings: PipelineSettings,
    tmp_path: Path,
    retail: Any,
    policy: str,
    first: str,
) -> None:
    second = "z.csv" if first == "a.csv" else "a.csv"
    events(
        local_store,
        {
            first: "id,n,v\nk1,1,b\nk1,1,c\nk2,1,x\n,1,p\n,1,o\n",
            second: "id,n,v\nk1,1,a\nk3,2,y\nk3,3,y\n",
        },
    )
    retail.write_contract(settings.config_dir, "events", EVENTS % policy)
    contract = load_contracts(settings.config_dir).get("events")
    with capture_metrics() as metrics:
        result = transform_partition(local_store, contract, DAY, settings)
    rows = read_partition(local_store, "events", DAY, tmp_path)
    kept = sorted((r["id"] or "", r["n"], r["v"], r["label"]) for r in rows)
    assert kept == [
        ("", 1, "o", "O"),  # a null key part groups like any other value
        ("k1", 1, "a", "A"),
        ("k2", 1, "x", "X"),
        ("k3", 2, "y", "Y"),
        ("k3", 3, "y", "Y"),
    ]
    assert (result.rows, result.duplicates) == (5, 3)
    assert metrics.value("etl_data_pipeline_duplicate_rows_total", dataset="events") == 3


def test_a_failing_join_only_judges_the_rows_de_duplication_keeps(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    events(local_store, {"a.csv": "id,n,v\nk1,1,a\nk1,1,unknown\n"})
    retail.write_contract(settings.config_dir, "events", EVENTS % "fail")
    contract = load_contracts(settings.config_dir).get("events")
    result = transform_partition(local_store, contract, DAY, settings)
    assert (result.rows, result.duplicates, result.unmatched) == (1, 1, {"kinds": 0})


PARSED = """dataset = "events"
[parse]
delimiter = ";"
header = %s
escape = "\\\\"
null_values = ["NA"]
[[columns]]
name = "id"
[[columns]]
name = "day"
type = "date"
format = "%%d/%%m/%%Y"
[[columns]]
name = "qty"
type = "int"
[[columns]]
name = "note"
[transform]
sql = "SELECT * FROM input"
"""


@pytest.mark.parametrize(
    ("header", "text"),
    [
        ("false", 'a;01/11/2026;3;"semi;colon"\nb;02/11/2026;NA;"say \\"hi\\""\n'),
        (
            "true",
            "\ufeffnote;extra;qty;day;id\n"
            '"semi;colon";x;3;01/11/2026;a\n"say \\"hi\\"";y;NA;02/11/2026;b\n',
        ),
    ],
    ids=["no-header", "header-in-another-order"],
)
def test_validated_csv_is_read_with_the_contracts_dialect_nulls_and_formats(
    local_store: ObjectStore,
    settings: PipelineSettings,
    tmp_path: Path,
    retail: Any,
    header: str,
    text: str,
) -> None:
    files = {"e.csv": text.encode()}
    _, rows = transform_events(local_store, settings, retail, tmp_path, PARSED % header, files)
    rows.sort(key=lambda r: r["id"])
    assert [(r["id"], r["day"], r["qty"], r["note"]) for r in rows] == [
        ("a", date(2026, 11, 1), 3, "semi;colon"),
        ("b", date(2026, 11, 2), None, 'say "hi"'),
    ]


def test_a_header_naming_a_column_twice_is_named(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    events(local_store, {"a.csv": "id,n,v,n\nk1,1,a,2\n"})
    retail.write_contract(settings.config_dir, "events", EVENTS % "keep")
    contract = load_contracts(settings.config_dir).get("events")
    with pytest.raises(PartitionError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    assert caught.value.field == "n"
    assert "a.csv names column 'n' more than once" in str(caught.value)


def transform_events(
    store: ObjectStore,
    settings: PipelineSettings,
    retail: Any,
    tmp_path: Path,
    contract: str,
    files: dict[str, bytes],
) -> tuple[Any, list[dict[str, Any]]]:
    """Write ``files`` as the validated day of dataset ``events``, transform it, read it back."""
    publish_delivery(store, "events", DAY, files, landing="landing/events/day.zip")
    retail.write_contract(settings.config_dir, "events", contract)
    result = transform_partition(
        store, load_contracts(settings.config_dir).get("events"), DAY, settings
    )
    return result, read_partition(store, "events", DAY, tmp_path)


BIG_KEYS = """dataset = "events"
[[columns]]
name = "n"
type = "int"
[[columns]]
name = "v"
[transform]
sql = "SELECT CAST(n AS HUGEINT) AS n, v FROM input"
dedupe_on = ["n"]
"""


def test_keys_parquet_cannot_give_back_exactly_are_deduplicated_in_the_query(
    local_store: ObjectStore, settings: PipelineSettings, tmp_path: Path, retail: Any
) -> None:
    # HUGEINT reads back from Parquet as DOUBLE, where 2**62 and 2**62 + 1 are equal.
    big = 2**62
    text = f"n,v\n{big},a\n{big + 1},b\n{big + 1},c\n"
    result, rows = transform_events(
        local_store, settings, retail, tmp_path, BIG_KEYS, {"e.csv": text.encode()}
    )
    assert (result.rows, result.duplicates) == (2, 1)
    assert sorted(r["v"] for r in rows) == ["a", "b"]


def test_a_time_zone_offset_in_the_data_becomes_utc_whatever_the_hosts_zone(
    local_store: ObjectStore,
    settings: PipelineSettings,
    tmp_path: Path,
    retail: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    contract = (
        'dataset = "events"\n[[columns]]\nname = "id"\n[[columns]]\nname = "at"\n'
        'type = "timestamp"\nformat = "%Y-%m-%d %H:%M %z"\n'
    )
    files = {"e.csv": b"id,at\na,2024-01-01 10:00 +0200\n"}
    _, (row,) = transform_events(local_store, settings, retail, tmp_path, contract, files)
    assert row["at"] == datetime(2024, 1, 1, 8, 0)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_header_names_are_stripped_and_gzipped_csv_is_read(
    local_store: ObjectStore, settings: PipelineSettings, tmp_path: Path, retail: Any, suffix: str
) -> None:
    text = b"id , n ,v\nk1,1,a\n"
    files = {f"e{suffix}": gzip.compress(text) if suffix.endswith(".gz") else text}
    contract = (
        'dataset = "events"\n[[columns]]\nname = "id"\n[[columns]]\nname = "n"\ntype = "int"\n'
        '[[columns]]\nname = "v"\n'
    )
    _, (row,) = transform_events(local_store, settings, retail, tmp_path, contract, files)
    assert (row["id"], row["n"], row["v"]) == ("k1", 1, "a")


def test_a_headerless_file_with_another_field_count_is_named(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    publish_delivery(local_store, "events", DAY, {"e.csv": b"a;01/11/2026;3\n"})
    retail.write_contract(settings.config_dir, "events", PARSED % "false")
    contract = load_contracts(settings.config_dir).get("events")
    with pytest.raises(PartitionError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    assert caught.value.field == "parse.header"
    assert "e.csv has 3 fields on its first line" in str(caught.value)


def test_files_no_delivery_manifest_names_are_never_read(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    day = date(2026, 11, 9)  # a publish cut short: data written, manifest not
    local_store.write_bytes(
        "validated/pos/dt=2026-11-09/pos_2026-11-09.csv", retail.rows("2026-11-09", 5).encode()
    )
    contract = load_contracts(settings.config_dir).get("pos")
    assert day not in [p.dt for p in pending_partitions(local_store, contract, load=False)]
    with pytest.raises(MissingPartitionError):
        transform_partition(local_store, contract, day, settings)
    publish_delivery(local_store, "pos", day, {"late.csv": retail.rows("2026-11-09", 3).encode()})
    result = transform_partition(local_store, contract, day, settings)
    assert result.rows == 3  # only the published delivery


def test_a_run_does_not_redo_a_partition_another_worker_finished_meanwhile(
    local_store: ObjectStore, settings: PipelineSettings
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    listed = pending_partitions(local_store, contract, load=False)  # what a run saw at its start
    assert DAY in [p.dt for p in listed]
    process_partition(local_store, contract, DAY, settings, load=False)  # the other worker
    again = process_partition(
        local_store, contract, DAY, settings, load=False, only_if_pending=True
    )
    assert (again.skipped, again.transform) == ("done elsewhere", None)


ID_N_V = (
    'dataset = "events"\n[[columns]]\nname = "id"\n[[columns]]\nname = "n"\ntype = "int"\n'
    '[[columns]]\nname = "v"\n'
)


def test_a_csv_duckdb_cannot_read_is_named_as_such(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    # The header names every column, so the file is not described before the view
    # over it is made: DuckDB's error is still the partition's, named as before.
    publish_delivery(local_store, "events", DAY, {"e.csv": b"id,n,v\nk1,1,a,extra\nk2,2\n"})
    retail.write_contract(settings.config_dir, "events", ID_N_V)
    contract = load_contracts(settings.config_dir).get("events")
    with pytest.raises(InputFileError, match=r"input file validated/events/dt=2026-11-01/e\.csv "):
        transform_partition(local_store, contract, DAY, settings)


def test_header_names_differing_in_case_only_read_as_duckdb_names_them(
    local_store: ObjectStore, settings: PipelineSettings, tmp_path: Path, retail: Any
) -> None:
    # DuckDB renames the second of two names equal but for case; the contract's "N"
    # is then no column of the file (a null, its name made unique), as when every
    # file was described before the view over it was made.
    contract = ID_N_V.replace('name = "v"', 'name = "N"')
    files = {"e.csv": b"id,n,N\nk1,1,x\n"}
    _, (row,) = transform_events(local_store, settings, retail, tmp_path, contract, files)
    assert row == {"id": "k1", "n": 1, "N_1": None, "dt": DAY}


@pytest.mark.parametrize(("extra_columns", "before_files"), [("drop", True), ("keep", False)])
def test_the_transform_view_is_bound_before_a_headed_csv_is_read_when_its_columns_are_known(
    settings: PipelineSettings, retail: Any, tmp_path: Path, extra_columns: str, before_files: bool
) -> None:
    import duckdb

    from data_pipeline.engine import create_input_view, relation_columns

    path = tmp_path / "e.csv"
    path.write_text("id,n,v\nk1,1,a\n")
    text = ID_N_V + f'[schema]\nextra_columns = "{extra_columns}"\n'
    retail.write_contract(settings.config_dir, "events", text)
    contract = load_contracts(settings.config_dir).get("events")
    con = duckdb.connect()
    seen: list[tuple[int, dict[str, str]]] = []

    def bind() -> None:
        row = con.execute("SELECT count(*) FROM input").fetchone()
        seen.append((row[0] if row else -1, relation_columns(con, "input")))

    assert create_input_view(con, contract, DAY, {path: "e.csv"}, before_files=bind) is before_files
    typed = relation_columns(con, "input")
    assert seen == ([(0, typed)] if before_files else [])
    assert con.execute("SELECT id, n, v FROM input").fetchall() == [("k1", 1, "a")]


def test_a_header_name_that_is_a_null_value_reads_as_when_every_file_was_described(
    local_store: ObjectStore, settings: PipelineSettings, tmp_path: Path, retail: Any
) -> None:
    # DuckDB names a header cell equal to a null value "column<n>": the contract's "NA"
    # is then no column of the file, a null, as when the file was described first.
    contract = ID_N_V.replace('name = "v"', 'name = "NA"') + '[parse]\nnull_values = ["NA"]\n'
    files = {"e.csv": b"id,n,NA\nk1,1,x\n"}
    _, (row,) = transform_events(local_store, settings, retail, tmp_path, contract, files)
    assert row == {"id": "k1", "n": 1, "NA": None, "dt": DAY}


def test_a_file_duckdb_cannot_read_is_named_before_a_transform_sql_that_does_not_bind(
    local_store: ObjectStore, settings: PipelineSettings, retail: Any
) -> None:
    # The transform is bound before the files are read: its error must not hide theirs.
    publish_delivery(local_store, "events", DAY, {"e.csv": b"id,n,v\nk1,1,a,extra\nk2,2\n"})
    text = ID_N_V + '[transform]\nsql = "SELECT nope FROM input"\n'
    retail.write_contract(settings.config_dir, "events", text)
    contract = load_contracts(settings.config_dir).get("events")
    with pytest.raises(InputFileError, match=r"input file validated/events/dt=2026-11-01/e\.csv "):
        transform_partition(local_store, contract, DAY, settings)


def test_a_header_duckdb_names_otherwise_than_checked_is_described_after_all(
    settings: PipelineSettings, retail: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever way DuckDB may name a header cell otherwise than it was checked, the
    # files are then described and the contract column it lacks is null, as before.
    import duckdb

    from data_pipeline import engine

    reader = engine._csv_reader
    monkeypatch.setattr(engine, "_csv_reader", lambda *args: (reader(*args)[0], True))
    path = tmp_path / "e.csv"
    path.write_text("id,n,NA\nk1,1,x\n")
    text = ID_N_V.replace('name = "v"', 'name = "NA"') + '[parse]\nnull_values = ["NA"]\n'
    retail.write_contract(settings.config_dir, "events", text)
    contract = load_contracts(settings.config_dir).get("events")
    con = duckdb.connect()
    bound: list[bool] = []
    assert engine.create_input_view(
        con, contract, DAY, {path: "e.csv"}, before_files=lambda: bound.append(True)
    )
    assert bound == [True]
    assert con.execute('SELECT id, n, "NA" FROM input').fetchall() == [("k1", 1, None)]


@pytest.mark.parametrize(
    ("setting", "at_once", "threads"), [(0, 1, 4), (0, 2, 2), (0, 8, 1), (3, 2, 3)]
)
def test_a_partition_s_engine_shares_the_cores_with_the_partitions_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: int, at_once: int, threads: int
) -> None:
    """Partitions run at once (``backfill --concurrency``, a worker's processes) on 4 cores:
    each engine gets its share unless ``duckdb_threads`` names a number."""
    from data_pipeline.engine import connect_engine
    from etl_core.work.cores import sharing_cores

    monkeypatch.setattr("etl_core.work.cores.host_cores", lambda: 4)
    with sharing_cores(at_once):
        con = connect_engine(tmp_path, memory_limit="100MB", threads=setting)
    try:
        assert con.execute("SELECT current_setting('threads')").fetchone() == (threads,)
    finally:
        con.close()
