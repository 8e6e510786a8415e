"""A reference file of an enrichment join that cannot be read is named, as an input is.

A reference CSV was read with its dialect sniffed: one broken row (a field too many, a
quote left open) made DuckDB settle on one column holding the whole header, and the
partition failed saying the reference lacked the join's columns. Now the error names
the join's reference, the file's key in the store, what it was read as and DuckDB's
reason; "lacks column(s)" is said only of a reference that parsed and lacks them.
Nothing is lost: the reference and the inputs stay, no curated partition appears, and
`transform --date`, `run` and `backfill` fail and record it as for a bad input.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from data_pipeline import enrich
from data_pipeline.errors import (
    InputFileError,
    MissingColumnError,
    MissingPartitionError,
    PartitionError,
    ReferenceFileError,
    ReferenceRepublishedError,
    TransformSqlError,
)
from data_pipeline.input_errors import unreadable_input
from data_pipeline.transform import transform_partition
from etl_core.contracts import load_contracts
from etl_core.errors import FatalError, RetryableError
from etl_core.retry import RetryPolicy
from etl_core.storage import ObjectStore
from etl_core.testing import publish_delivery

Cli = Callable[..., subprocess.CompletedProcess[str]]
DAY = date(2026, 11, 1)
STORES = "reference/stores.csv"
HEADER = b"store_id,name,country,city\n"
READ_AS = (
    "expected CSV (by its name) with a header, delimiter ',', quote '\"', escape the quote "
    "doubled (a reference file's dialect; its column types detected)"
)
BROKEN = {
    "field-too-many": (
        HEADER + b"S001,Lisbon Baixa,PT,Lisbon\nS002,Porto,PT,Porto,extra\n",
        f'Error when sniffing file "{STORES}"',
    ),
    "quote-left-open": (
        HEADER + b'S001,Lisbon Baixa,PT,Lisbon\nS002,"Porto,PT,Porto\nS003,Faro,PT,Faro\n',
        f'Error when sniffing file "{STORES}"',
    ),
    "not-utf8": (
        HEADER + b"S001,Lisbon \xff\xfe,PT,Lisbon\n",
        "Invalid unicode (byte sequence mismatch) detected",
    ),
}


def pos_files(store: ObjectStore) -> dict[str, bytes]:
    return {info.key: store.read_bytes(info.key) for info in store.list("validated/pos/")}


def assert_nothing_lost(store: ObjectStore, reference: str, data: bytes, inputs: Any) -> None:
    assert store.read_bytes(reference) == data
    assert pos_files(store) == inputs
    assert not store.exists("curated/pos/dt=2026-11-01/_manifest.json")


@pytest.mark.parametrize("case", list(BROKEN))
def test_an_unreadable_reference_csv_is_named_by_join_and_key_not_said_to_lack_columns(
    local_store: ObjectStore, settings: Any, case: str
) -> None:
    data, reason = BROKEN[case]
    local_store.write_bytes(STORES, data)
    inputs = pos_files(local_store)
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(ReferenceFileError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    said = str(caught.value)
    assert isinstance(caught.value, InputFileError)  # failed, recorded and exited alike
    assert caught.value.keys == (STORES,)
    assert caught.value.join == "stores"
    assert said.startswith("dataset 'pos', partition dt=2026-11-01, field 'enrich.stores': ")
    assert f"reference file {STORES} cannot be read: {READ_AS}; " in said
    assert reason in said
    assert "lacks" not in said
    assert "etl-transform-" not in said
    assert_nothing_lost(local_store, STORES, data, inputs)


def test_a_reference_that_parses_without_a_join_column_is_said_to_lack_it(
    local_store: ObjectStore, settings: Any
) -> None:
    local_store.write_bytes(STORES, b"store_id,name,city\nS001,Lisbon Baixa,Lisbon\n")
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(
        MissingColumnError,
        match=r"reference file reference/stores.csv lacks "
        r"column\(s\) country \(it has: store_id, name, city\)",
    ):
        transform_partition(local_store, contract, DAY, settings)


def test_an_unreadable_file_of_a_curated_reference_is_named_by_dataset_and_key(
    local_store: ObjectStore, settings: Any, retail: Any
) -> None:
    contracts = _stores_reference(settings, retail, local_store)
    manifest = json.loads(local_store.read_bytes("curated/stores/dt=2026-11-01/_manifest.json"))
    (part,) = manifest["files"]
    cut = local_store.read_bytes(part)[:40]
    local_store.write_bytes(part, cut)
    inputs = pos_files(local_store)
    with pytest.raises(ReferenceFileError) as caught:
        transform_partition(local_store, contracts.get("pos"), DAY, settings)
    said = str(caught.value)
    assert caught.value.keys == (part,)
    assert f"reference dataset stores (same partition): file {part} cannot be read: " in said
    assert "expected Parquet (by its name)" in said
    assert "lacks" not in said
    assert "etl-transform-" not in said
    assert_nothing_lost(local_store, part, cut, inputs)


def test_a_transform_sql_failing_on_the_data_is_not_blamed_on_the_reference(
    local_store: ObjectStore, settings: Any, retail: Any
) -> None:
    failing = retail.TRANSFORM.replace("currency, payment_type", "CAST(currency AS INTEGER) AS c")
    retail.write_contract(settings.config_dir, "pos", retail.contract(transform=failing))
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(TransformSqlError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    assert not isinstance(caught.value, InputFileError)
    assert "reference" not in str(caught.value)


def test_the_engine_out_of_memory_on_a_reference_blames_its_memory_limit(
    settings: Any, tmp_path: Path
) -> None:
    contract = load_contracts(settings.config_dir).get("pos")
    (join,) = [j for j in contract.enrich if j.name == "stores"]
    staged = tmp_path / "ref-0" / "stores.csv"
    error = duckdb.OutOfMemoryException(f"Out of Memory Error: reading {staged}")
    said = unreadable_input(
        contract, DAY, {staged: STORES}, error, fmt="csv", paths=(staged,), join=join
    )
    assert type(said) is PartitionError
    assert "out of memory reading the reference of enrich.stores, file(s) " in str(said)
    assert STORES in str(said)
    assert "duckdb_memory_limit" in str(said)
    assert "cannot be read" not in str(said)


@pytest.fixture
def pipeline(cli_on: Callable[[Path], Cli], tmp_path: Path, local_store: ObjectStore) -> Cli:
    return cli_on(tmp_path / "store")


def test_transform_run_and_backfill_fail_and_record_an_unreadable_reference(
    pipeline: Cli, local_store: ObjectStore, migrated_sqlite: str, tmp_path: Path
) -> None:
    data, reason = BROKEN["field-too-many"]
    local_store.write_bytes(STORES, data)
    inputs = pos_files(local_store)
    env = {"ETL_DATABASE_URL": migrated_sqlite}
    named = f"reference file {STORES} cannot be read: {READ_AS}; Invalid Input Error: {reason}"

    transformed = pipeline("transform", "--dataset", "pos", "--date", "2026-11-01", env=env)
    args = ("backfill", "--dataset", "pos", "--from", "2026-11-01", "--to", "2026-11-01")
    backfilled = pipeline(*args, "--no-load", env=env)

    for done in (transformed, backfilled):
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr
        said = "\n".join(
            str(event.get("error") or event["event"])
            for event in map(json.loads, done.stderr.splitlines())
        )
        assert named in said
        assert "lacks" not in said
    with sqlite3.connect(migrated_sqlite.removeprefix("sqlite:///")) as connection:
        runs = connection.execute(
            "SELECT job, status, error FROM etl_pipeline_run ORDER BY started_at"
        ).fetchall()
    assert [(job, status) for job, status, _ in runs] == [
        ("transform", "failed"),
        ("backfill", "failed"),
    ]
    assert named in runs[0][2]  # a --no-load backfill's run says "exit code 1", its job the error
    (job,) = [
        json.loads(p.read_text())
        for p in (tmp_path / "store").glob("_state/data_pipeline/backfills/*.json")
    ]
    (partition,) = job["partitions"]
    assert partition["state"] == "failed"
    assert named in partition["error"]
    assert_nothing_lost(local_store, STORES, data, inputs)


YESTERDAY = {
    "semicolon": lambda text: text.replace(",", ";"),
    "tab": lambda text: text.replace(",", "\t"),
    "pipe": lambda text: text.replace(",", "|"),
    "semicolon-bom-crlf": lambda text: "\ufeff" + text.replace(",", ";").replace("\n", "\r\n"),
    "semicolon-quoted-header": lambda text: text.replace(",", ";").replace(
        "store_id;name", '"store_id";"name"', 1
    ),
}


@pytest.mark.parametrize("case", list(YESTERDAY))
def test_a_reference_csv_delimited_otherwise_than_by_commas_joins_as_before(
    local_store: ObjectStore, settings: Any, case: str
) -> None:
    """A reference read with its delimiter sniffed before (semicolons, tabs, pipes) keeps
    joining: its delimiter is the one its header line uses, not a comma it lacks."""
    contract = load_contracts(settings.config_dir).get("pos")
    text = local_store.read_bytes(STORES).decode()
    local_store.write_bytes(STORES, YESTERDAY[case](text).encode())
    joined = transform_partition(local_store, contract, DAY, settings)
    local_store.write_bytes(STORES, text.encode())
    with_commas = transform_partition(local_store, contract, DAY, settings)
    assert joined.unmatched == with_commas.unmatched
    assert joined.rows == with_commas.rows


def test_an_unreadable_semicolon_reference_is_said_read_with_its_header_delimiter(
    local_store: ObjectStore, settings: Any
) -> None:
    data = b"store_id;name;country;city\nS001;Baixa;PT;Lisbon\nS002;Porto;PT;Porto;extra\n"
    local_store.write_bytes(STORES, data)
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(ReferenceFileError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    assert "with a header, delimiter ';', quote" in str(caught.value)
    assert "lacks" not in str(caught.value)


@pytest.fixture
def file_size_limit() -> Iterator[Callable[[int], None]]:
    """Cap the size of files this process writes (as a full disk would), restored after;
    writing past it fails with EFBIG rather than killing the process."""
    import resource
    import signal

    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield lambda size: resource.setrlimit(resource.RLIMIT_FSIZE, (size, limits[1]))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)


def test_the_engine_failing_to_write_its_database_is_not_blamed_on_the_reference(
    local_store: ObjectStore,
    settings: Any,
    tmp_path: Path,
    file_size_limit: Callable[[int], None],
) -> None:
    """Copying a readable reference into DuckDB's database fails when the disk is full:
    that is no fault of the reference (an InputFileError is never retried and says to fix
    the file), so DuckDB's own error goes up, naming its file, not the reference's key."""
    from data_pipeline import enrich

    rows = "".join(f"S{n:06d},{'x' * 60},PT,Lisbon\n" for n in range(40_000))
    local_store.write_bytes(STORES, HEADER + rows.encode())
    contract = load_contracts(settings.config_dir).get("pos")
    (join,) = [j for j in contract.enrich if j.name == "stores"]
    con = duckdb.connect(str(tmp_path / "work.duckdb"))
    reference = enrich._reference(local_store, contract, DAY, join, tmp_path / "ref-0", "f")
    file_size_limit(256 * 1024)
    with pytest.raises(duckdb.Error) as caught:
        enrich._load_reference(con, contract, DAY, 0, join, reference)
    assert not isinstance(caught.value, PartitionError)
    assert "work.duckdb" in str(caught.value)


def test_an_empty_reference_csv_is_said_to_be_empty_naming_join_and_key(
    local_store: ObjectStore, settings: Any
) -> None:
    local_store.write_bytes(STORES, b"")
    inputs = pos_files(local_store)
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(ReferenceFileError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    said = str(caught.value)
    assert caught.value.keys == (STORES,)
    assert caught.value.join == "stores"
    assert said.startswith("dataset 'pos', partition dt=2026-11-01, field 'enrich.stores': ")
    assert f"reference file {STORES} cannot be read: {READ_AS}; the file is empty (0 bytes)" in (
        said
    )
    assert "lacks" not in said
    assert "column0" not in said
    assert_nothing_lost(local_store, STORES, b"", inputs)


@pytest.mark.parametrize(
    "content",
    [b"\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf \r\n\r\n"],
    ids=["newline", "bom", "blank-lines"],
)
def test_a_reference_csv_of_blank_lines_says_it_has_no_header(
    local_store: ObjectStore, settings: Any, content: bytes
) -> None:
    """Not only zero bytes: a file of one newline or a byte-order mark (an export of an
    empty table), or of blank lines, has no header either; DuckDB reads it as one column
    ``column0``, which must not be blamed as a reference lacking the columns."""
    local_store.write_bytes(STORES, content)
    inputs = pos_files(local_store)
    contract = load_contracts(settings.config_dir).get("pos")
    with pytest.raises(ReferenceFileError) as caught:
        transform_partition(local_store, contract, DAY, settings)
    message = str(caught.value)
    assert caught.value.keys == (STORES,)
    assert "the file holds only blank lines: no header line names its columns" in message
    assert "column0" not in message
    assert "lacks" not in message
    assert_nothing_lost(local_store, STORES, content, inputs)


def _stores_reference(settings: Any, retail: Any, store: ObjectStore) -> Any:
    """The ``stores`` dataset, published for DAY, as the ``dataset`` reference of ``pos``."""
    columns = [("store_id", "string"), ("name", "string"), ("country", "string")]
    retail.write_contract(
        settings.config_dir,
        "stores",
        'dataset = "stores"\n'
        + retail.columns_toml(columns)
        + '[transform]\nsql = "SELECT * FROM input"\n',
    )
    retail.write_contract(
        settings.config_dir,
        "pos",
        retail.contract().replace('file = "reference/stores.csv"', 'dataset = "stores"'),
    )
    publish_delivery(store, "stores", DAY, {"s.csv": b"store_id,name,country\nS001,Baixa,PT\n"})
    contracts = load_contracts(settings.config_dir)
    transform_partition(store, contracts.get("stores"), DAY, settings)
    return contracts


def test_a_reference_dataset_republished_while_read_is_named_and_retried(
    local_store: ObjectStore, settings: Any, retail: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest read names a file two republishes later deleted (the replaced
    generation is kept one publish): a retryable error naming the reference dataset, its
    partition and the file, and the next attempt reads the new manifest."""
    contracts = _stores_reference(settings, retail, local_store)
    read_manifest = enrich.read_manifest
    first = read_manifest(local_store, "stores", DAY)
    assert first is not None

    def read_then_republished(store: ObjectStore, dataset: str, dt: date) -> Any:
        manifest = read_manifest(store, dataset, dt)
        if dataset == "stores":
            for _ in range(2):
                transform_partition(store, contracts.get("stores"), DAY, settings)
        return manifest

    monkeypatch.setattr(enrich, "read_manifest", read_then_republished)
    with pytest.raises(ReferenceRepublishedError) as caught:
        transform_partition(local_store, contracts.get("pos"), DAY, settings)
    monkeypatch.undo()
    said = str(caught.value)
    (gone,) = first.files
    assert isinstance(caught.value, RetryableError)
    assert not isinstance(caught.value, FatalError)
    assert RetryPolicy().is_retryable(caught.value)
    assert (caught.value.reference, caught.value.partition, caught.value.key) == (
        "stores",
        DAY,
        gone,
    )
    assert said.startswith("dataset 'pos', partition dt=2026-11-01, field 'enrich.stores': ")
    assert (
        f"reference dataset 'stores' partition dt=2026-11-01 was republished while it was "
        f"read: its file {gone}, named by the manifest read, is gone" in said
    )
    assert pickle.loads(pickle.dumps(caught.value)).key == gone
    assert not local_store.exists("curated/pos/dt=2026-11-01/_manifest.json")

    transform_partition(local_store, contracts.get("pos"), DAY, settings)  # the retry
    assert local_store.exists("curated/pos/dt=2026-11-01/_manifest.json")


def test_a_reference_manifest_naming_a_missing_file_is_not_retried(
    local_store: ObjectStore, settings: Any, retail: Any
) -> None:
    contracts = _stores_reference(settings, retail, local_store)
    manifest = enrich.read_manifest(local_store, "stores", DAY)
    assert manifest is not None
    (part,) = manifest.files
    local_store.delete(part)
    with pytest.raises(MissingPartitionError, match=f"its manifest names {part}, which is not"):
        transform_partition(local_store, contracts.get("pos"), DAY, settings)
