"""Enrichment joins: stage each reference into DuckDB and check it before joining.

A reference comes from another dataset's curated partition (read through its
manifest), a CSV / Parquet object in the store, or a reference table of the
database (through :mod:`data_pipeline.db`). A reference file that cannot be read
(a CSV row DuckDB cannot parse, text not UTF-8, a ``.gz`` cut short, a ``.parquet`` that
is not Parquet) is a :class:`~data_pipeline.errors.ReferenceFileError` naming the
reference and the file's key in the store, said as an input's is
(:mod:`data_pipeline.input_errors`); so is a key at which a local store holds no
regular file (a FIFO, never waited on; a directory). Reference files are staged on disk
(hard-linked or streamed) and read by DuckDB within its memory limit, never whole into
memory here. Before joining, the reference must
hold every key and added column, its keys must be unique (a duplicate would
multiply input rows), and each key pair must compare values of the same type
family.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_pipeline.engine import literal, quote, reader_sql, relation_columns, type_family
from data_pipeline.errors import (
    JoinKeyTypeError,
    MissingColumnError,
    MissingPartitionError,
    ReferenceFileError,
    ReferenceRepublishedError,
)
from data_pipeline.input_errors import (
    REFERENCE_CSV,
    REFERENCE_DELIMITERS,
    StagedKeys,
    empty_reference,
    reference_error,
    unreadable_input,
)
from data_pipeline.layout import list_curated_dates, publishes_generation, read_manifest
from etl_core.artifacts import CuratedManifest
from etl_core.contracts import Contract, Enrichment
from etl_core.errors import NotAnObjectError, ObjectNotFoundError
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
        MissingPartitionError: the reference object or partition does not exist (or its
            manifest names a file not in the store).
        ReferenceRepublishedError: a file of the reference dataset's manifest was gone,
            the dataset republished while read (retryable).
        ReferenceFileError: a reference file cannot be read as its name says, a local
            store holds no regular file at its key (a FIFO, refused without waiting for a
            writer; a directory), or a reference CSV is empty.
        PartitionError: DuckDB ran out of memory reading the reference.
        MissingColumnError: a key or added column is missing on either side.
        JoinKeyTypeError: a key pair compares different types, or reference keys repeat.
    """
    field = f"enrich.{join.name}"
    reference = _reference(store, contract, dt, join, work_dir / f"ref-{index}", field)
    _load_reference(con, contract, dt, index, join, reference)
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


@dataclass(frozen=True)
class _Reference:
    """A reference staged for DuckDB: the table function reading it, its format, and each
    staged file → its key in the store (none for a database table: no file of the store)."""

    sql: str
    fmt: str
    keys: StagedKeys
    delimiter: str = REFERENCE_CSV["delimiter"]


def _load_reference(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    dt: date,
    index: int,
    join: Enrichment,
    reference: _Reference,
) -> None:
    """Read the reference into its table: the rows are read here, once, so a file DuckDB
    cannot read fails here, named by its key (never later, as a fault of the transform).

    DuckDB failing to write its own files meanwhile (its database, WAL or spill files in
    the work directory: a full disk) is no fault of the reference and goes up as DuckDB
    raised it, never a ReferenceFileError (never retried, saying to fix the file)."""
    import duckdb  # imported when used: the ingest path never needs it

    try:
        con.execute(f"CREATE TABLE {ref_table(index)} AS SELECT * FROM {reference.sql}")
    except duckdb.Error as exc:
        if not reference.keys or _names_engine_file(exc, reference.keys):
            raise
        files = tuple(reference.keys)
        raise unreadable_input(
            contract,
            dt,
            reference.keys,
            exc,
            fmt=reference.fmt,
            paths=files,
            join=join,
            delimiter=reference.delimiter,
        ) from exc


def _names_engine_file(error: BaseException, keys: StagedKeys) -> bool:
    """Whether ``error`` names (in double quotes, as DuckDB names a file it cannot open or
    write) a file of the work directory (the staged reference's directory's parent, where
    DuckDB keeps its database and spill files) other than the staged reference files."""
    work_dir = next(iter(keys)).parent.parent
    named = re.findall(rf'"({re.escape(str(work_dir) + os.sep)}[^"]*)"', str(error))
    staged = {str(path) for path in keys}
    return any(path not in staged for path in named)


def _reference(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    join: Enrichment,
    directory: Path,
    field: str,
) -> _Reference:
    directory.mkdir(parents=True, exist_ok=True)
    if join.file:
        path = directory / join.file.rsplit("/", 1)[-1]
        try:
            store.download(join.file, path)
        except NotAnObjectError as exc:  # a FIFO, a directory at the key of a local store
            raise _not_a_file(contract, dt, join, path, join.file, exc) from exc
        except ObjectNotFoundError as exc:
            raise MissingPartitionError(
                contract.dataset, dt, f"reference object {join.file} does not exist", field=field
            ) from exc
        keys = {path: join.file}
        if join.file.endswith(".parquet"):
            return _Reference(reader_sql([path], "parquet"), "parquet", keys)
        if blank_reference(path):
            raise empty_reference(contract, dt, path, join.file, join)
        delimiter = header_delimiter(path)
        return _Reference(_csv_sql(path, delimiter), "csv", keys, delimiter)
    if join.dataset:
        curated = _curated_files(store, contract, dt, join, directory, field)
        return _Reference(reader_sql(list(curated), "parquet"), "parquet", curated)
    table = _database_table(join, directory / "table.parquet")
    return _Reference(f"read_parquet({literal(str(table))})", "parquet", {})


_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_HEADER_LIMIT = 1 << 20


def blank_reference(path: Path) -> bool:
    """Whether a reference CSV has no header at all: empty, or only blank lines (a newline,
    a byte-order mark, spaces). DuckDB reads such a file as one column ``column0``, and the
    reference would be said to lack the join's columns instead of having no header."""
    if path.stat().st_size > _HEADER_LIMIT:
        return False
    return not path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff").strip()


def header_delimiter(path: Path) -> str:
    """The delimiter of a reference CSV, from its header line alone: a comma, unless that
    line has none outside quotes and exactly one of :data:`REFERENCE_DELIMITERS`.

    References were read with their dialect sniffed before, so semicolon-, tab- or
    pipe-separated ones joined; they still do. Only the first line decides, so a broken
    row further down cannot change how the header is split (it fails the read instead).
    """
    with path.open("rb") as raw:  # a contract names a .csv or .parquet reference only
        first = raw.readline(_HEADER_LIMIT)
    line = _QUOTED.sub("", first.decode("utf-8", errors="replace").lstrip("\ufeff"))
    others = [mark for mark in REFERENCE_DELIMITERS if mark in line]
    if REFERENCE_CSV["delimiter"] in line or len(others) != 1:
        return REFERENCE_CSV["delimiter"]
    return others[0]


def _csv_sql(path: Path, delimiter: str) -> str:
    """``read_csv`` of a reference CSV in :data:`REFERENCE_CSV`'s dialect with
    ``delimiter``, column types detected. The dialect (and the header on the first line)
    is stated, not sniffed: a row DuckDB cannot parse then fails the read, where a sniffer
    would settle on one column holding the whole header, or on a later line as the header
    (and the reference would wrongly be said to lack the join's columns)."""
    quote_char, escape = REFERENCE_CSV["quote"], REFERENCE_CSV["escape"]
    return (
        f"read_csv({literal(str(path))}, header = true, "
        f"delim = {literal(delimiter)}, quote = {literal(quote_char)}, "
        f"escape = {literal(escape)}, skip = 0, comment = '', strict_mode = true)"
    )


def _curated_files(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    join: Enrichment,
    directory: Path,
    field: str,
) -> dict[Path, str]:
    """The files of the reference's curated partition, staged: each → its key."""
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
    paths = {}
    for number, key in enumerate(manifest.files):
        path = directory / f"{number:05d}.parquet"
        try:
            store.download(key, path)
        except NotAnObjectError as exc:
            raise _not_a_file(contract, dt, join, path, key, exc) from exc
        except ObjectNotFoundError as exc:
            raise _gone_reference_file(store, contract, dt, join, wanted, manifest, key) from exc
        paths[path] = key
    if not paths:
        raise MissingPartitionError(
            contract.dataset,
            dt,
            f"dataset {join.dataset!r} partition dt={wanted.isoformat()} is empty",
            field=field,
        )
    return paths


def _not_a_file(
    contract: Contract, dt: date, join: Enrichment, path: Path, key: str, error: NotAnObjectError
) -> ReferenceFileError:
    """The :class:`ReferenceFileError` for join ``join``'s reference ``key``, at which the
    (local) store holds no regular file but ``error.found``: a FIFO (refused unread, never
    waited on), a directory (what a bind mount of a missing file leaves)."""
    fmt = "parquet" if path.suffix.lower() == ".parquet" else "csv"
    reason = f"the store holds {error.found} at that key, not a regular file"
    return reference_error(contract, dt, join, (key,), path, fmt, reason)


def _gone_reference_file(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    join: Enrichment,
    partition: date,
    read: CuratedManifest,
    key: str,
) -> Exception:
    """The error for file ``key`` of the reference's manifest ``read`` not in the store.

    Republished (or withdrawn) since ``read`` was read, the manifest no longer names it: a
    :class:`ReferenceRepublishedError`, retryable (another attempt reads the new manifest).
    Still named by the current manifest, the partition lacks a file it publishes: a
    :class:`MissingPartitionError`, never retried (as a delivery manifest naming a file
    not in the store, :func:`data_pipeline.layout.input_objects`)."""
    assert join.dataset is not None
    if publishes_generation(store, join.dataset, partition, read.generation):
        return MissingPartitionError(
            contract.dataset,
            dt,
            f"dataset {join.dataset!r} partition dt={partition.isoformat()}: its manifest "
            f"names {key}, which is not in the store",
            field=f"enrich.{join.name}",
        )
    return ReferenceRepublishedError(
        contract.dataset, dt, join=join.name, reference=join.dataset, partition=partition, key=key
    )


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
