"""Transform one partition: validated files → SQL → enrichment → Parquet, one row per key.

:func:`transform_partition` is the work unit: plain inputs (dataset contract, date,
settings), idempotent output (the curated partition is replaced whole through the
manifest protocol of :mod:`data_pipeline.layout`). Inputs are streamed from the
store into a scratch directory (bounded disk, not memory), DuckDB reads them there,
writes Parquet there, and the files are uploaded before the manifest flips.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from data_pipeline.engine import (
    connect_engine,
    create_input_view,
    file_format,
    literal,
    quote,
    view_columns,
)
from data_pipeline.enrich import join_sql, ref_table, stage_reference, unmatched_column
from data_pipeline.errors import (
    InputGoneError,
    MissingColumnError,
    MissingPartitionError,
    PartitionError,
    TransformSqlError,
    UnmatchedRowsError,
)
from data_pipeline.input_errors import StagedKeys, staged_file_named, unreadable_input
from data_pipeline.layout import input_objects, new_generation, publish_partition
from data_pipeline.settings import PipelineSettings
from etl_core.contracts import Contract
from etl_core.errors import ObjectNotFoundError, first_line
from etl_core.faults import Step, fault_point
from etl_core.layout import validated_prefix
from etl_core.logging import bound_context
from etl_core.metrics import counter, histogram
from etl_core.scratch import scratch_dir
from etl_core.storage import Lease, ObjectInfo, ObjectStore

if TYPE_CHECKING:
    import duckdb

__all__ = ["TransformResult", "transform_partition"]

logger = logging.getLogger(__name__)


_partitions = counter(
    "etl_data_pipeline_partitions_transformed_total",
    "Partitions transformed, by dataset and outcome.",
    ["dataset", "outcome"],
)
_rows = counter("etl_data_pipeline_rows_written_total", "Curated rows written.", ["dataset"])
_input_bytes = counter(
    "etl_data_pipeline_input_bytes_total", "Validated input bytes read.", ["dataset"]
)
_unmatched = counter(
    "etl_data_pipeline_unmatched_rows_total",
    "Rows that found no match in an enrichment join, by join and policy.",
    ["dataset", "join", "policy"],
)
_duplicates = counter(
    "etl_data_pipeline_duplicate_rows_total", "Rows removed by de-duplication.", ["dataset"]
)
_seconds = histogram(
    "etl_data_pipeline_transform_seconds", "Time to transform one partition.", ["dataset"]
)


@dataclass(frozen=True)
class TransformResult:
    """What transforming one partition did."""

    dataset: str
    dt: date
    generation: str
    rows: int
    files: int
    bytes: int
    inputs: int
    input_bytes: int
    duplicates: int
    seconds: float
    unmatched: dict[str, int] = field(default_factory=dict)
    """Join name → rows without a match (dropped ones included)."""
    dropped: int = 0


def transform_partition(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    settings: PipelineSettings,
    *,
    run_id: str = "",
    lease: Lease | None = None,
) -> TransformResult:
    """Build and publish ``curated/<dataset>/dt=<dt>/`` from its validated inputs.

    Args:
        lease: The partition's lease, held by the caller: the publish checks it and
            records its fencing token (see :func:`data_pipeline.layout.publish_partition`).

    Raises:
        MissingPartitionError: the partition has no validated input (or a reference is absent).
        InputGoneError: a validated input listed was gone when it was read (withdrawn or
            replaced meanwhile; retryable).
        MissingColumnError: an input file or reference lacks a column the contract names.
        InputFileError: an input object cannot be read as its name and the contract say
            (named by its key in the store, with the engine's reason).
        JoinKeyTypeError: an enrichment join compares keys of different types.
        TransformSqlError: the contract's SQL is invalid or fails on this data.
        UnmatchedRowsError: a ``fail`` join left rows unmatched.
        SupersededError: a newer computation of the partition was published meanwhile.
        LeaseLostError: ``lease`` was taken over before the publish; nothing is published.
    """
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    with bound_context(dataset=contract.dataset, dt=dt.isoformat()):
        try:
            result = _transform(store, contract, dt, settings, started_at, run_id, lease)
        except Exception:
            _partitions.labels(dataset=contract.dataset, outcome="failed").inc()
            raise
        seconds = time.monotonic() - clock
        _partitions.labels(dataset=contract.dataset, outcome="succeeded").inc()
        _rows.labels(dataset=contract.dataset).inc(result.rows)
        _input_bytes.labels(dataset=contract.dataset).inc(result.input_bytes)
        _duplicates.labels(dataset=contract.dataset).inc(result.duplicates)
        _seconds.labels(dataset=contract.dataset).observe(seconds)
        logger.info(
            "partition transformed",
            extra={
                "rows": result.rows,
                "files": result.files,
                "bytes": result.bytes,
                "inputs": result.inputs,
                "unmatched": result.unmatched,
                "seconds": round(seconds, 3),
            },
        )
        return replace(result, seconds=seconds)


def _transform(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    settings: PipelineSettings,
    started_at: datetime,
    run_id: str,
    lease: Lease | None,
) -> TransformResult:
    objects = input_objects(store, contract.dataset, dt)
    if not objects:
        raise MissingPartitionError(
            contract.dataset,
            dt,
            f"no validated input under {validated_prefix(contract.dataset, dt)}",
        )
    scratch = str(settings.work_dir) if settings.work_dir else None
    with scratch_dir(scratch, "transform") as tmp:
        work = Path(tmp)
        staged, input_bytes = _stage_inputs(store, contract.dataset, dt, objects, work / "input")
        con = connect_engine(
            work, memory_limit=settings.duckdb_memory_limit, threads=settings.duckdb_threads
        )
        try:
            plan = _build(con, store, contract, dt, staged, work)
            with _inputs_named_by_key(contract, dt, staged):
                if any(join.unmatched == "drop" for join in contract.enrich):
                    counts, rows, files = _materialised(con, contract, dt, plan, work / "out")
                else:
                    counts, rows, files = _one_pass(con, contract, dt, plan, work)
        finally:
            con.close()
        fault_point(Step.TRANSFORM)
        generation = new_generation(started_at)
        manifest = publish_partition(
            store,
            dataset=contract.dataset,
            dt=dt,
            generation=generation,
            started_at=started_at,
            files=files,
            rows=rows,
            inputs={info.key: info.etag for info in objects},
            run_id=run_id,
            lease=lease,
        )
    return TransformResult(
        dataset=contract.dataset,
        dt=dt,
        generation=generation,
        rows=rows,
        files=len(files),
        bytes=manifest.bytes,
        inputs=len(objects),
        input_bytes=input_bytes,
        duplicates=counts.duplicates,
        seconds=0.0,
        unmatched=counts.unmatched,
        dropped=counts.total - rows,
    )


def _stage_inputs(
    store: ObjectStore, dataset: str, dt: date, objects: list[ObjectInfo], directory: Path
) -> tuple[dict[Path, str], int]:
    """Copy the partition's objects into ``directory``: each copy → its store key (what
    an error names), and the bytes copied.

    Raises:
        InputGoneError: an object listed was gone when it was copied (its delivery
            withdrawn or replaced meanwhile): retryable, the next attempt lists again.
        PartitionError: it was gone while a delivery manifest still names it.
    """
    directory.mkdir()
    staged = {}
    size = 0
    for number, info in enumerate(objects):
        path = directory / f"{number:05d}-{info.key.rsplit('/', 1)[-1]}"
        try:
            size += store.download(info.key, path)
        except ObjectNotFoundError as exc:
            input_objects(store, dataset, dt)  # still named: PartitionError, never retried
            raise InputGoneError(
                dataset,
                dt,
                info.key,
                what="validated input",
                listing=f"the delivery manifests of {validated_prefix(dataset, dt)}",
            ) from exc
        staged[path] = info.key
    return staged, size


@contextmanager
def _inputs_named_by_key(contract: Contract, dt: date, staged: StagedKeys) -> Iterator[None]:
    """Say a file DuckDB fails to read while running the transform (a CSV row it cannot
    parse, a value the contract's type cannot hold, a compressed stream cut short) as an
    :class:`~data_pipeline.errors.InputFileError` naming its store key: the files are
    read as the query runs, and DuckDB's message names the scratch copy.

    Raises:
        InputFileError: instead of a TransformSqlError whose cause names a staged file
            (a PartitionError naming duckdb_memory_limit when DuckDB ran out of memory).
    """
    try:
        yield
    except TransformSqlError as exc:
        cause = exc.__cause__
        path = staged_file_named(staged, cause) if cause is not None else None
        if cause is None or path is None:
            raise
        fmt = file_format(path)
        raise unreadable_input(contract, dt, staged, cause, fmt=fmt, paths=(path,)) from cause


@dataclass
class _Counts:
    total: int = 0
    duplicates: int = 0
    unmatched: dict[str, int] = field(default_factory=dict)


def _build(
    con: duckdb.DuckDBPyConnection,
    store: ObjectStore,
    contract: Contract,
    dt: date,
    staged: StagedKeys,
    work: Path,
) -> _Plan:
    """The partition's transformed rows (with their partition column) and references staged."""
    import duckdb  # imported when used: the ingest path never needs it

    spec = contract.transform
    columns: dict[str, str] = {}

    def bind_transform() -> None:
        try:
            con.execute(f"CREATE VIEW transformed AS {spec.sql}")
            columns.update(view_columns(con, "transformed"))
        except duckdb.Error as exc:
            raise TransformSqlError(
                contract.dataset,
                dt,
                f"{first_line(exc)} (in {contract.origin})",
                field="transform.sql",
            ) from exc

    if not create_input_view(con, contract, dt, staged, before_files=bind_transform):
        bind_transform()
    missing = [name for name in spec.dedupe_on if name not in columns]
    if missing:
        raise MissingColumnError(
            contract.dataset,
            dt,
            f"de-duplication key {missing[0]!r} is not a column of the transform output "
            f"(columns: {', '.join(columns)})",
            field="transform.dedupe_on",
        )
    rows = "transformed"
    if spec.partition_by not in columns:
        day = literal(dt.isoformat())
        rows = f"(SELECT *, DATE {day} AS {quote(spec.partition_by)} FROM transformed)"
    for index, join in enumerate(contract.enrich):
        stage_reference(con, store, contract, dt, index, join, work, columns)
    return _Plan(rows=rows, columns=list(columns), types=list(columns.values()))


@dataclass(frozen=True)
class _Plan:
    rows: str
    """SQL of the transformed rows, partition column included, not yet de-duplicated."""
    columns: list[str]
    """The transform's output columns: the order that picks the row a key keeps."""
    types: list[str]
    """Their DuckDB types."""

    @property
    def survives_parquet(self) -> bool:
        """Whether every column reads back from Parquet as the same values and order
        (``HUGEINT`` comes back as ``DOUBLE``, ``ENUM`` as ``VARCHAR``, ...)."""
        return all(_PARQUET_EXACT.fullmatch(t) for t in self.types)


_PARQUET_EXACT = re.compile(
    r"BOOLEAN|U?(TINYINT|SMALLINT|INTEGER|BIGINT)|FLOAT|DOUBLE|DECIMAL\(\d+,\d+\)|VARCHAR"
    r"|DATE|TIME|TIMESTAMP|TIMESTAMP WITH TIME ZONE|BLOB"
)


def _deduplicated(relation: str, keys: tuple[str, ...], columns: list[str]) -> str:
    """``relation`` with one row per key: the first by every column, whatever the input order."""
    order = ", ".join(quote(c) for c in columns)
    return (
        f"(SELECT * FROM {relation} QUALIFY row_number() OVER "
        f"(PARTITION BY {', '.join(quote(k) for k in keys)} ORDER BY {order}) = 1)"
    )


def _one_pass(
    con: duckdb.DuckDBPyConnection, contract: Contract, dt: date, plan: _Plan, work: Path
) -> tuple[_Counts, int, list[Path]]:
    """Write the Parquet straight from the query, then de-duplicate and check what was written.

    De-duplication is optimistic: the keys of the written files are checked, and only
    when some key repeats are the files written again, each repeated key reduced to
    one row (rows with unique keys pass through, no sort of every row). A transform
    with a column Parquet does not give back exactly de-duplicates inside the query
    instead. The checks then read only a few columns of the final files: the
    partition column and each join's key columns, looked up in the staged references
    (a row without a match is exactly one whose ``__matched`` flag would have been null).
    """
    keys = contract.transform.dedupe_on
    optimistic = bool(keys) and plan.survives_parquet
    source = _deduplicated(plan.rows, keys, plan.columns) if keys and not optimistic else plan.rows
    first = work / "out"
    rows = _write(
        con, contract, dt, _output_select(contract, join_sql(source, contract.enrich)), first
    )
    files = _parquet_files(first)
    duplicates = 0
    if keys and not optimistic:
        duplicates = _raw_rows(con, contract, rows)
    elif optimistic and files:
        duplicates = _count_repeats(con, contract, dt, _read(files), rows)
    if duplicates and optimistic:
        again = work / "deduplicated"
        rewrite = _without_repeats(_read(files), contract, plan)
        rows = _write(con, contract, dt, rewrite, again, field="transform.dedupe_on")
        shutil.rmtree(first)
        files = _parquet_files(again)
    if not files:
        return _Counts(duplicates=duplicates), 0, files
    flags = [_no_match(index, join.on) for index, join in enumerate(contract.enrich)]
    counts = _check_result(con, contract, dt, _read(files), flags)
    counts.duplicates = duplicates
    return counts, rows, files


def _materialised(
    con: duckdb.DuckDBPyConnection, contract: Contract, dt: date, plan: _Plan, out: Path
) -> tuple[_Counts, int, list[Path]]:
    """Materialise the flagged rows first: a ``drop`` join's rows must be counted before
    they are left out, which the written files can no longer tell."""
    keys = contract.transform.dedupe_on
    rows = _deduplicated(plan.rows, keys, plan.columns) if keys else plan.rows
    _execute(con, contract, dt, f"CREATE TABLE result AS {join_sql(rows, contract.enrich)}")
    flags = [unmatched_column(index) for index in range(len(contract.enrich))]
    counts = _check_result(con, contract, dt, "result", flags)
    written = _write(con, contract, dt, _output_select(contract, "SELECT * FROM result"), out)
    counts.duplicates = _raw_rows(con, contract, counts.total)
    return counts, written, _parquet_files(out)


def _parquet_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.parquet"))


def _read(files: list[Path]) -> str:
    return f"read_parquet([{', '.join(literal(str(f)) for f in files)}])"


_REPEATED = "__etl_repeated"


def _count_repeats(
    con: duckdb.DuckDBPyConnection, contract: Contract, dt: date, relation: str, rows: int
) -> int:
    """Rows of ``relation`` beyond the first of their key; the repeated keys go to a table.

    Equal keys hash alike, so as many distinct key hashes as rows proves every key
    unique: that count over one integer column is the usual case's whole cost; the
    keys themselves are grouped only when some hash repeats.
    """
    names = ", ".join(quote(k) for k in contract.transform.dedupe_on)
    field = "transform.dedupe_on"
    sql = f"SELECT count(DISTINCT hash({names})) FROM {relation}"
    row = _execute(con, contract, dt, sql, field=field).fetchone()
    if row is not None and row[0] == rows:
        return 0
    sql = (
        f"CREATE OR REPLACE TEMP TABLE {_REPEATED} AS SELECT {names}, "
        f"count(*) - 1 AS __etl_extra FROM {relation} GROUP BY ALL HAVING count(*) > 1"
    )
    _execute(con, contract, dt, sql, field=field)
    row = con.execute(f"SELECT coalesce(sum(__etl_extra), 0) FROM {_REPEATED}").fetchone()
    return int(row[0]) if row else 0


def _without_repeats(relation: str, contract: Contract, plan: _Plan) -> str:
    """``relation`` with each repeated key (see :func:`_count_repeats`) reduced to the row
    it keeps."""
    keys = contract.transform.dedupe_on
    on = " AND ".join(f"w.{quote(k)} IS NOT DISTINCT FROM r.{quote(k)}" for k in keys)
    unique = f"SELECT w.* FROM {relation} AS w ANTI JOIN {_REPEATED} AS r ON {on}"
    repeats = f"(SELECT w.* FROM {relation} AS w SEMI JOIN {_REPEATED} AS r ON {on})"
    return f"{unique} UNION ALL SELECT * FROM {_deduplicated(repeats, keys, plan.columns)}"


def _no_match(index: int, on: tuple[tuple[str, str], ...]) -> str:
    keys = " AND ".join(f"r.{quote(right)} = t.{quote(left)}" for left, right in on)
    return f"NOT EXISTS (SELECT 1 FROM {ref_table(index)} AS r WHERE {keys})"


def _raw_rows(con: duckdb.DuckDBPyConnection, contract: Contract, kept: int) -> int:
    """Rows removed by de-duplication: the transform's rows minus those kept."""
    if not contract.transform.dedupe_on:
        return 0
    row = con.execute("SELECT count(*) FROM transformed").fetchone()
    return (int(row[0]) if row else kept) - kept


def _execute(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    dt: date,
    sql: str,
    *,
    field: str = "transform.sql",
) -> duckdb.DuckDBPyConnection:
    import duckdb  # imported when used: the ingest path never needs it

    try:
        return con.execute(sql)
    except duckdb.Error as exc:
        raise TransformSqlError(contract.dataset, dt, first_line(exc), field=field) from exc


def _check_result(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    dt: date,
    relation: str,
    flags: list[str],
) -> _Counts:
    """Count the rows of ``relation``, check their partition and each join's misses.

    ``flags`` holds, per join, a SQL condition over ``t`` true for a row without a match.
    """
    part = quote(contract.transform.partition_by)
    row = con.execute(
        "SELECT count(*), "
        f"count(*) FILTER (WHERE {part} IS DISTINCT FROM DATE {literal(dt.isoformat())})"
        + "".join(f", count(*) FILTER (WHERE {flag})" for flag in flags)
        + f" FROM {relation} AS t"
    ).fetchone()
    assert row is not None
    total, outside, *unmatched = row
    if outside:
        raise PartitionError(
            contract.dataset,
            dt,
            f"{outside} of {total} rows have {contract.transform.partition_by} other than "
            f"{dt.isoformat()}; a partition holds only its own date",
            field="transform.partition_by",
        )
    counts = _Counts(total=total)
    for index, join in enumerate(contract.enrich):
        missed = unmatched[index]
        counts.unmatched[join.name] = missed
        if missed:
            _unmatched.labels(dataset=contract.dataset, join=join.name, policy=join.unmatched).inc(
                missed
            )
            logger.warning(
                "rows without a match in an enrichment join",
                extra={"join": join.name, "unmatched": missed, "policy": join.unmatched},
            )
        if missed and join.unmatched == "fail":
            raise UnmatchedRowsError(
                contract.dataset,
                dt,
                f"{missed} of {total} rows found no match in {join.source}; for example "
                f"{_sample_keys(con, relation, flags[index], join.on)}",
                field=f"enrich.{join.name}",
            )
    return counts


def _sample_keys(
    con: duckdb.DuckDBPyConnection, relation: str, flag: str, on: tuple[tuple[str, str], ...]
) -> str:
    keys = ", ".join(f"t.{quote(left)}" for left, _ in on)
    rows = con.execute(
        f"SELECT DISTINCT {keys} FROM {relation} AS t WHERE {flag} ORDER BY ALL LIMIT 5"
    ).fetchall()
    names = ", ".join(left for left, _ in on)
    return f"{names} = " + "; ".join(", ".join(repr(v) for v in row) for row in rows)


def _output_select(contract: Contract, source: str) -> str:
    """The rows of ``source`` to write: flags left out, ``drop`` misses filtered."""
    flags = [unmatched_column(i) for i in range(len(contract.enrich))]
    drops = [
        f"NOT {unmatched_column(i)}"
        for i, join in enumerate(contract.enrich)
        if join.unmatched == "drop"
    ]
    select = "SELECT *" + (f" EXCLUDE ({', '.join(flags)})" if flags else "")
    select += f" FROM ({source})"
    if drops:
        select += " WHERE " + " AND ".join(drops)
    return select


def _write(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    dt: date,
    select: str,
    out: Path,
    *,
    field: str = "transform.sql",
) -> int:
    """``COPY`` the rows of ``select`` to Parquet files in ``out``; the number of rows."""
    options = (
        f"FORMAT parquet, COMPRESSION {contract.output.compression}, "
        f"ROW_GROUP_SIZE {contract.output.row_group_size}, "
        f"FILE_SIZE_BYTES {contract.output.max_file_size}, FILENAME_PATTERN 'part-{{i}}'"
    )
    sql = f"COPY ({select}) TO {literal(str(out))} ({options})"
    row = _execute(con, contract, dt, sql, field=field)
    out.mkdir(exist_ok=True)
    fetched = row.fetchone()
    return int(fetched[0]) if fetched else 0
