"""The object-store layout: the keys every lane builds, and what a key says about itself."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from etl_core import layout
from etl_core.layout import Partition
from etl_core.storage import validate_key, validate_prefix

DAY = date(2026, 11, 1)


def test_zones_are_the_top_level_prefixes_in_the_order_data_flows() -> None:
    assert layout.ZONES == ("landing", "validated", "quarantine", "curated", "raw", "_state")
    assert [layout.zone_prefix(zone) for zone in layout.ZONES] == [
        "landing/",
        "validated/",
        "quarantine/",
        "curated/",
        "raw/",
        "_state/",
    ]


def test_an_unknown_zone_is_refused_naming_the_argument() -> None:
    with pytest.raises(ValueError, match=r"zone: .*'landingg'"):
        layout.zone_prefix("landingg")


def test_zone_of_a_key_is_its_first_folder_when_that_is_a_zone() -> None:
    assert layout.zone_of("validated/pos/dt=2026-11-01/a.csv") == "validated"
    assert layout.zone_of("_state/file_processing/objects/x.json") == "_state"
    assert layout.zone_of("reference/stores.csv") is None
    assert layout.zone_of("landing") is None


def test_strip_zone_removes_only_that_zones_prefix() -> None:
    assert layout.strip_zone("landing/pos/a.csv", layout.LANDING) == "pos/a.csv"
    assert layout.strip_zone("quarantine/pos/a.csv", layout.LANDING) == "quarantine/pos/a.csv"


def test_landing_keys_keep_the_source_folders_and_ignore_outer_slashes() -> None:
    assert layout.landing_prefix() == "landing/"
    assert layout.landing_prefix("pos/") == "landing/pos/"
    assert layout.landing_key("vendor/eu", "a.csv") == "landing/vendor/eu/a.csv"
    assert layout.landing_api_prefix("weather", "daily") == "landing/api/weather/daily/"


@pytest.mark.parametrize("source", ["", "/", "a//b", "a/../b", ".."])
def test_a_landing_source_with_an_empty_or_dot_folder_is_refused(source: str) -> None:
    with pytest.raises(ValueError, match="source: "):
        layout.landing_prefix(source)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("landing/pos/pos_20261101.csv", ("pos", "pos_20261101.csv")),
        ("landing/vendor/eu/a.csv", ("vendor/eu", "a.csv")),
        ("landing/api/weather/daily/chunk-0.jsonl", ("api/weather/daily", "chunk-0.jsonl")),
        ("/landing/pos/a.csv", ("pos", "a.csv")),
        ("landing/a.csv", None),
        ("landing/pos/", None),
        ("validated/pos/dt=2026-11-01/a.csv", None),
        ("landings/pos/a.csv", None),
    ],
)
def test_split_landing_key_gives_source_and_name_only_inside_landing(
    key: str, expected: tuple[str, str] | None
) -> None:
    assert layout.split_landing_key(key) == expected


def test_split_landing_key_inverts_landing_key() -> None:
    key = layout.landing_key("vendor/eu", "orders 2026.csv")
    assert layout.split_landing_key(key) == ("vendor/eu", "orders 2026.csv")


def test_validated_keys_and_their_sidecars() -> None:
    key = layout.validated_key("pos", DAY, "d.zip/pos.csv")
    assert key == "validated/pos/dt=2026-11-01/d.zip/pos.csv"
    assert layout.quality_report_key(key) == key + ".quality.json"
    assert layout.rejected_rows_key(key) == key + ".rejected.csv"
    assert layout.validated_prefix("pos", DAY) == "validated/pos/dt=2026-11-01/"
    assert layout.validated_prefix("pos") == "validated/pos/"
    assert layout.validated_prefix() == "validated/"


def test_quarantine_keys_and_records() -> None:
    key = layout.quarantine_key(layout.UNKNOWN_DATASET, DAY, "pos/notes.txt")
    assert key == "quarantine/_unknown/dt=2026-11-01/pos/notes.txt"
    assert layout.quarantine_record_key(key) == key + ".quarantine.json"
    assert layout.quarantine_record_key(key + ".quarantine.json") == key + ".quarantine.json"
    assert layout.quarantine_prefix() == "quarantine/"
    assert layout.quarantine_prefix("pos") == "quarantine/pos/"


def test_curated_partition_and_its_manifest() -> None:
    assert layout.curated_prefix("pos", DAY) == "curated/pos/dt=2026-11-01/"
    assert layout.manifest_key("pos", DAY) == "curated/pos/dt=2026-11-01/_manifest.json"


def test_raw_api_pages_sort_in_page_order_under_their_run() -> None:
    prefix = layout.raw_api_prefix("weather", "daily", DAY, "r1")
    assert prefix == "raw/api/weather/daily/dt=2026-11-01/r1/"
    pages = [layout.raw_api_page_key("weather", "daily", DAY, "r1", n) for n in (10, 2, 0)]
    assert pages[2] == prefix + "00000.json.gz"
    assert sorted(pages) == [pages[2], pages[1], pages[0]]


@pytest.mark.parametrize("page", [-1, True, 1.5])
def test_a_page_that_is_not_a_number_from_zero_is_refused(page: object) -> None:
    with pytest.raises(ValueError, match="page: "):
        layout.raw_api_page_key("weather", "daily", DAY, "r1", page)  # type: ignore[arg-type]


def test_state_keys_are_under_their_lane() -> None:
    assert layout.state_prefix("file_processing") == "_state/file_processing/"
    assert layout.state_prefix("file_processing", "objects") == "_state/file_processing/objects/"
    assert layout.state_key("data_pipeline", "backfills", "j1.json") == (
        "_state/data_pipeline/backfills/j1.json"
    )
    assert layout.partition_state_key("data_pipeline", "leases", "pos", DAY) == (
        "_state/data_pipeline/leases/pos/dt=2026-11-01.json"
    )


def test_a_state_key_needs_a_name() -> None:
    with pytest.raises(ValueError, match="parts: "):
        layout.state_key("data_pipeline")
    with pytest.raises(ValueError, match="lane: "):
        layout.state_prefix("a/b")


@pytest.mark.parametrize("dataset", ["", "a/b", ".", "..", None])
def test_a_dataset_that_is_not_one_folder_name_is_refused(dataset: str) -> None:
    for build in (layout.validated_key, layout.quarantine_key):
        with pytest.raises(ValueError, match="dataset: "):
            build(dataset, DAY, "a.csv")
    with pytest.raises(ValueError, match="dataset: "):
        layout.manifest_key(dataset, DAY)
    with pytest.raises(ValueError, match="dataset: "):
        layout.partition_state_key("data_pipeline", "leases", dataset, DAY)


@pytest.mark.parametrize("dt", [datetime(2026, 11, 1, 5, tzinfo=UTC), "2026-11-01", 20261101, None])
def test_a_partition_date_must_be_a_date_not_a_datetime_or_text(dt: object) -> None:
    with pytest.raises(ValueError, match="dt: "):
        layout.validated_key("pos", dt, "a.csv")  # type: ignore[arg-type]


def test_a_partition_date_without_its_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="dt: "):
        layout.curated_prefix(None, DAY)


def test_every_built_key_and_prefix_is_valid_in_a_store() -> None:
    keys = [
        layout.landing_key("vendor/eu", "a.csv"),
        layout.validated_key("pos", DAY, "a.csv"),
        layout.quality_report_key(layout.validated_key("pos", DAY, "a.csv")),
        layout.quarantine_key("pos", DAY, "a.csv"),
        layout.manifest_key("pos", DAY),
        layout.raw_api_page_key("weather", "daily", DAY, "r1", 0),
        layout.state_key("file_processing", "objects", "x.json"),
        layout.partition_state_key("data_pipeline", "loads", "pos", DAY),
    ]
    prefixes = [
        layout.landing_prefix("pos"),
        layout.landing_api_prefix("weather", "daily"),
        layout.validated_prefix("pos", DAY),
        layout.quarantine_prefix("pos"),
        layout.curated_prefix("pos", DAY),
        layout.raw_api_prefix("weather", "daily", DAY, "r1"),
        layout.state_prefix("data_pipeline", "backfills"),
    ]
    assert [validate_key(k) for k in keys] == keys
    assert [validate_prefix(p) for p in prefixes] == prefixes


def test_partition_of_a_curated_part_names_zone_dataset_and_date() -> None:
    key = "curated/pos/dt=2026-11-01/part-x-00000.parquet"
    assert layout.partition_of(key) == Partition("curated", "pos", DAY)
    assert layout.partition_of(key) == ("curated", "pos", DAY)


def test_partition_of_reads_back_every_partitioned_key_the_layout_builds() -> None:
    assert layout.partition_of(layout.validated_key("pos", DAY, "d.zip/a.csv")) == (
        "validated",
        "pos",
        DAY,
    )
    assert layout.partition_of(layout.quarantine_key("_unknown", DAY, "pos/a.txt")) == (
        "quarantine",
        "_unknown",
        DAY,
    )
    assert layout.partition_of(layout.manifest_key("pos", DAY)) == ("curated", "pos", DAY)
    page = layout.raw_api_page_key("weather", "daily", DAY, "r1", 3)
    assert layout.partition_of(page) == ("raw", "api/weather/daily", DAY)


@pytest.mark.parametrize(
    "key",
    [
        "landing/pos/pos_20261101.csv",
        "_state/data_pipeline/leases/pos/dt=2026-11-01.json",
        "validated/pos/dt=2026-11-01/",
        "validated/pos/dt=2026-11-01",
        "validated/pos/sub/dt=2026-11-01/a.csv",
        "validated/pos/dt=2026-13-01/a.csv",
        "validated/pos/dt=20261101/a.csv",
        "validated//dt=2026-11-01/a.csv",
        "raw/other/weather/daily/dt=2026-11-01/r1/0.json.gz",
        "reference/stores.csv",
    ],
)
def test_partition_of_anything_else_is_none(key: str) -> None:
    assert layout.partition_of(key) is None


def test_sidecars_and_hidden_names_are_not_data() -> None:
    key = layout.validated_key("pos", DAY, "a.csv")
    assert layout.is_data_key(key)
    for sidecar in (layout.quality_report_key(key), layout.rejected_rows_key(key)):
        assert layout.is_sidecar(sidecar)
        assert not layout.is_data_key(sidecar)
    assert layout.is_sidecar(layout.quarantine_record_key(key))
    assert not layout.is_data_key(layout.validated_key("pos", DAY, ".etl-partial-1a2b"))
    assert layout.SIDECAR_SUFFIXES == (".quality.json", ".rejected.csv", ".quarantine.json")


def test_a_runs_dead_letters_and_drift_report_sit_beside_its_manifest() -> None:
    from datetime import date as day

    from etl_core import layout

    dt = day(2026, 3, 1)
    manifest = layout.raw_api_manifest_key("shop", "items", dt, "r1")
    folder = manifest.rpartition("/")[0]

    assert layout.raw_api_dead_letters_key("shop", "items", dt, "r1") == (
        f"{folder}/_dead_letters.jsonl"
    )
    assert layout.raw_api_drift_key("shop", "items", dt, "r1") == f"{folder}/_drift.json"
    assert manifest.startswith(layout.raw_api_endpoint_prefix("shop", "items"))
    assert layout.raw_api_run_of(manifest) == (dt, "r1")
    assert layout.raw_api_run_of("raw/api/shop/items/latest.json") is None


@pytest.mark.parametrize(
    "key",
    [
        "validated/pos/dt=2026-11-11/a.csv",
        "quarantine/_unknown/dt=2026-11-11/x.zip",
        "curated/pos/dt=2026-11-11/_manifest.json",
        "raw/api/shop/orders/dt=2026-11-11/run1/00000.json.gz",
    ],
)
def test_partition_prefix_is_the_folder_partition_of_finds(key: str) -> None:
    partition = layout.partition_of(key)
    assert partition is not None
    prefix = layout.partition_prefix(*partition)
    assert key.startswith(prefix)
    assert prefix.endswith("/dt=2026-11-11/")
    assert partition.zone in layout.PARTITIONED_ZONES


@pytest.mark.parametrize(
    ("zone", "dataset"), [("landing", "pos"), ("_state", "file_processing"), ("raw", "pos")]
)
def test_partition_prefix_refuses_a_zone_without_partitions(zone: str, dataset: str) -> None:
    with pytest.raises(ValueError, match="zone: expected a partitioned zone"):
        layout.partition_prefix(zone, dataset, date(2026, 11, 11))


def test_a_partition_state_key_reads_back_as_its_dataset_and_day() -> None:
    key = layout.partition_state_key("data_pipeline", "loads", "pos", DAY)
    assert layout.partition_state_of(key, "data_pipeline", "loads") == ("pos", DAY)
    assert layout.partition_state_of(key, "data_pipeline", "leases") is None
    for other in (
        "_state/data_pipeline/loads/pos/dt=2026-02-30.json",
        "_state/data_pipeline/loads/pos/dt=2026-02-11.txt",
        "_state/data_pipeline/loads/pos/notes.json",
        "_state/data_pipeline/loads/dt=2026-02-11.json",
        "_state/data_pipeline/loads/a/b/dt=2026-02-11.json",
    ):
        assert layout.partition_state_of(other, "data_pipeline", "loads") is None, other


def test_a_withdrawal_notice_key_is_listed_under_its_datasets_prefix_and_reads_back() -> None:
    key = layout.withdrawal_notice_key("pos", DAY)
    assert key.startswith(layout.withdrawal_notices_prefix("pos"))
    assert key.startswith("_state/file_processing/withdrawals/pos/")
    assert not key.startswith(layout.withdrawal_notices_prefix("po"))
    assert layout.withdrawal_notice_of(key) == ("pos", DAY)
    assert (
        layout.withdrawal_notice_of(
            layout.partition_state_key("data_pipeline", "loads", "pos", DAY)
        )
        is None
    )
    with pytest.raises(ValueError, match="dataset"):
        layout.withdrawal_notices_prefix("a/b")
