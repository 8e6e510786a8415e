"""Enrichment joins: stage each reference into DuckDB and check it before joining.

A reference comes from another dataset's curated partition (read through its
manifest), a CSV / Parquet object in the store, or a reference table of the
database (through :mod:`data_pipeline.db`). Before joining, the reference must
hold every key and added column, its keys must be unique (a duplicate would
multiply input rows), and each key pair must compare values of the same type
family.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_pipeline.engine import literal, quote, reader_sql, relation_columns, type_family
from data_pipeline.errors import JoinKeyTypeError, MissingColumnError, MissingPartitionError
from data_pipeline.layout import list_curated_dates, read_manifest
from etl_core.contracts import Contract, Enrichment
from etl_core.errors import ObjectNotFoundError
from etl_core.storage import ObjectStore

if TYPE_CHECKING:
    import duckdb

__all__ = ["join_sql", "stage_reference", "unmatched_column"]

logger = logging.getLogger(__name__)

_DOWNLOAD_CHUNK = 8 * 1024 * 1024
_DB_BATCH_ROWS = 10_000


def ref_table(index: int) -> str:
    """The DuckDB table holding join ``index``'s reference rows."""
    return f"__ref_{index}"


def unmatched_column(index: int) -> str:
    """The flag column marking rows that found no match in join ``index``."""
    return f"__unmatched_{index}"


def stage_reference(
    con: duckdb.DuckDBPyConnection,
    store: ObjectStore,
    contract: Contract,
    dt: date,
    index: int,
    join: Enrichment,
    work_dir: Path,
    left_columns: dict[str, str],
) -> None:
    """Load join ``index``'s reference into DuckDB and validate it against the left side.

    Raises:
        MissingPartitionError: the reference object or partition does not exist.
        MissingColumnError: a key or added column is missing on either side.
        JoinKeyTypeError: a key pair compares different types, or reference keys repeat.
    """
    field = f"enrich.{join.name}"
    source = _reference_sql(store, contract, dt, join, work_dir / f"ref-{index}", field)
    con.execute(f"CREATE TABLE {ref_table(index)} AS SELECT * FROM {source}")
    right_columns = relation_columns(con, ref_table(index))
    wanted = [right for _, right in join.on] + [source_col for _, source_col in join.columns]
    missing = [name for name in wanted if name not in right_columns]
    if missing:
        raise MissingColumnError(
            contract.dataset,
            dt,
            f"reference {join.source} lacks column(s) {', '.join(missing)} "
            f"(it has: {', '.join(right_columns)})",
            field=f"{field}.{missing[0]}",
        )
    for left, right in join.on:
        if left not in left_columns:
            raise MissingColumnError(
                contract.dataset,
                dt,
                f"join key {left!r} is not a column of the transform output "
                f"(columns: {', '.join(left_columns)})",
                field=f"{field}.on.{left}",
            )
        left_type, right_type = left_columns[left], right_columns[right]
        if type_family(left_type) != type_family(right_type):
            raise JoinKeyTypeError(
                contract.dataset,
                dt,
                f"join key type mismatch: input {left!r} is {left_type} but "
                f"{join.source} {right!r} is {right_type}",
                field=f"{field}.on.{left}",
            )
    _check_unique_keys(con, contract, dt, index, join, field)


def join_sql(base: str, joins: Sequence[Enrichment]) -> str:
    """``SELECT`` of ``base`` left-joined to every reference, with unmatched flags."""
    selects = ["t.*"]
    froms = [f"{base} AS t"]
    for index, join in enumerate(joins):
        alias = f"r{index}"
        keys = ", ".join(quote(right) for _, right in join.on)
        added = ", ".join(f"{quote(src)} AS {quote(name)}" for name, src in join.columns)
        froms.append(
            f"LEFT JOIN (SELECT {keys}, {added}, true AS __matched FROM {ref_table(index)}) "
            f"AS {alias} ON "
            + " AND ".join(f"t.{quote(left)} = {alias}.{quote(right)}" for left, right in join.on)
        )
        selects.extend(f"{alias}.{quote(name)}" for name, _ in join.columns)
        selects.append(f"({alias}.__matched IS NULL) AS {unmatched_column(index)}")
    return "SELECT " + ", ".join(selects) + " FROM " + " ".join(froms)


def _check_unique_keys(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    dt: date,
    index: int,
    join: Enrichment,
    field: str,
) -> None:
    keys = ", ".join(quote(right) for _, right in join.on)
    row = con.execute(
        f"SELECT {keys}, count(*) FROM {ref_table(index)} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if row is not None:
        raise JoinKeyTypeError(
            contract.dataset,
            dt,
            f"reference {join.source} repeats key {tuple(row[:-1])!r} ({row[-1]} rows); "
            "join keys must be unique in the reference",
            field=f"{field}.on",
        )


def _reference_sql(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    join: Enrichment,
    directory: Path,
    field: str,
) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    if join.file:
        path = directory / join.file.rsplit("/", 1)[-1]
        try:
            store.download(join.file, path)
        except ObjectNotFoundError as exc:
            raise MissingPartitionError(
                contract.dataset, dt, f"reference object {join.file} does not exist", field=field
            ) from exc
        fmt = "parquet" if join.file.endswith(".parquet") else "csv"
        if fmt == "csv":
            return f"read_csv({literal(str(path))}, header = true)"
        return reader_sql([path], fmt)
    if join.dataset:
        return reader_sql(_curated_files(store, contract, dt, join, directory, field), "parquet")
    return f"read_parquet({literal(str(_database_table(join, directory / 'table.parquet')))})"


def _curated_files(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    join: Enrichment,
    directory: Path,
    field: str,
) -> list[Path]:
    assert join.dataset is not None
    wanted = dt
    if join.partition == "latest":
        dates = [d for d in list_curated_dates(store, join.dataset) if d <= dt]
        if not dates:
            raise MissingPartitionError(
                contract.dataset,
                dt,
                f"dataset {join.dataset!r} has no curated partition",
                field=field,
            )
        wanted = dates[-1]
    manifest = read_manifest(store, join.dataset, wanted)
    if manifest is None:
        raise MissingPartitionError(
            contract.dataset,
            dt,
            f"dataset {join.dataset!r} has no curated partition dt={wanted.isoformat()}",
            field=field,
        )
    paths = []
    for number, key in enumerate(manifest.files):
        path = directory / f"{number:05d}.parquet"
        store.download(key, path)
        paths.append(path)
    if not paths:
        raise MissingPartitionError(
            contract.dataset,
            dt,
            f"dataset {join.dataset!r} partition dt={wanted.isoformat()} is empty",
            field=field,
        )
    return paths


def _database_table(join: Enrichment, path: Path) -> Path:
    """Stream a reference table of the database into a local Parquet file."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    from data_pipeline import db

    assert join.table is not None
    names = [right for _, right in join.on] + [src for _, src in join.columns]
    columns = list(dict.fromkeys(names))
    writer: Any = None
    try:
        for batch in _batches(db.iter_reference_rows(join.table, columns)):
            table = pa.Table.from_pylist([dict(zip(columns, row, strict=True)) for row in batch])
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table.cast(writer.schema))
        if writer is None:
            empty = pa.table({name: pa.array([], pa.string()) for name in columns})
            pq.write_table(empty, str(path))
    finally:
        if writer is not None:
            writer.close()
    return path


def _batches(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _DB_BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch
