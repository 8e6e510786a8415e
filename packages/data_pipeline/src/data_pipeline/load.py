"""Load a curated partition into its database table (``[load]`` of the contract).

The partition is read through its manifest, so a load sees one whole generation.
Parquet row groups are streamed (``iter_batches``) into
:func:`data_pipeline.db.load_batches`, which replaces the table's partition whole
(on PostgreSQL by attaching a freshly ``COPY``-filled and indexed partition in one
short transaction): a re-run replaces rather than duplicates, and a failure at any
step leaves the previous rows in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_pipeline import db
from data_pipeline.errors import InputGoneError, MissingColumnError, MissingPartitionError
from data_pipeline.layout import publishes_generation, read_manifest
from etl_core.artifacts import CuratedManifest
from etl_core.contracts import Contract, ContractError
from etl_core.errors import FieldError, ObjectNotFoundError
from etl_core.faults import Step, fault_point
from etl_core.layout import manifest_key
from etl_core.logging import bound_context
from etl_core.metrics import counter
from etl_core.scratch import scratch_dir
from etl_core.storage import ObjectStore

if TYPE_CHECKING:
    from data_pipeline.db import Fence

__all__ = ["LoadResult", "load_curated_partition"]

logger = logging.getLogger(__name__)

_BATCH_ROWS = 50_000
_loaded = counter(
    "etl_data_pipeline_rows_loaded_total", "Rows loaded into curated tables.", ["dataset", "table"]
)


@dataclass(frozen=True)
class LoadResult:
    """What loading one partition did."""

    dataset: str
    dt: date
    table: str
    rows: int
    generation: str
    seconds: float


def load_curated_partition(
    store: ObjectStore,
    contract: Contract,
    dt: date,
    *,
    run_id: str = "",
    work_dir: Path | None = None,
    fence: Fence | None = None,
    analyze: bool = False,
) -> LoadResult:
    """Replace partition ``dt`` of the contract's table with the curated partition.

    ``fence`` (the partition's lease) is checked right before the new rows become
    visible, and its fencing token recorded in the transaction that makes them visible:
    a writer whose lease was taken over stops at the check, or, when it stalled after it
    and the new holder loaded first, at the commit (:mod:`data_pipeline.db.loads`).
    ``analyze`` gathers the new day partition's statistics before it is swapped in
    (PostgreSQL).

    Raises:
        ContractError: the contract has no ``[load]`` section.
        MissingPartitionError: the partition has no published curated output, or its
            manifest names a part the store lacks.
        InputGoneError: a part of the manifest read was gone when it was read (the
            partition republished or withdrawn meanwhile; retryable).
        MissingColumnError: a mapped output column is not in the curated files.
        ValueError: the table or a table column is unknown (from the adapter).
        LeaseLostError: the lease was taken over (``LoadFencedError`` when the new
            holder loaded the partition first); the rows are left as they were.
    """
    if contract.load is None:
        raise ContractError(
            f"dataset {contract.dataset!r} declares no [load] table",
            [FieldError("load.table", "missing", contract.origin)],
        )
    table = contract.load.table
    clock = time.monotonic()
    with bound_context(dataset=contract.dataset, dt=dt.isoformat(), table=table):
        manifest = read_manifest(store, contract.dataset, dt)
        if manifest is None:
            raise MissingPartitionError(
                contract.dataset, dt, "no curated partition is published; run `transform` first"
            )
        with scratch_dir(work_dir, "load") as tmp:
            paths = []
            for number, key in enumerate(manifest.files):
                paths.append(Path(tmp) / f"{number:05d}.parquet")
                try:
                    store.download(key, paths[-1])
                except ObjectNotFoundError as exc:
                    raise _gone_part(store, contract.dataset, dt, manifest, key) from exc
            pairs = _column_pairs(contract, dt, table, paths, run_id)
            rows = db.load_batches(
                table,
                dt,
                [name for name, _ in pairs],
                _batches(paths, pairs, run_id),
                fence=fence,
                rows=_row_count(paths),
                analyze=analyze,
            )
        seconds = time.monotonic() - clock
        _loaded.labels(dataset=contract.dataset, table=table).inc(rows)
        logger.info("partition loaded", extra={"rows": rows, "seconds": round(seconds, 3)})
    return LoadResult(contract.dataset, dt, table, rows, manifest.generation, seconds)


def _gone_part(
    store: ObjectStore, dataset: str, dt: date, read: CuratedManifest, key: str
) -> Exception:
    """The error for part ``key`` of the curated manifest ``read`` not in the store:
    :class:`InputGoneError` (retryable) once another manifest replaced it (republished or
    withdrawn since it was read), :class:`MissingPartitionError` (never retried) while it
    is still the published one."""
    if publishes_generation(store, dataset, dt, read.generation):
        return MissingPartitionError(
            dataset, dt, f"its curated manifest names {key}, which is not in the store"
        )
    return InputGoneError(
        dataset,
        dt,
        key,
        what="curated part",
        listing=f"the curated manifest {manifest_key(dataset, dt)} (generation {read.generation})",
    )


def _column_pairs(
    contract: Contract, dt: date, table: str, paths: Sequence[Path], run_id: str
) -> list[tuple[str, str | None]]:
    """(table column, output column) pairs; ``None`` feeds the run id."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    available = set(pq.read_schema(str(paths[0])).names) if paths else set()
    table_columns = db.table_columns(table)
    assert contract.load is not None
    pairs: list[tuple[str, str | None]]
    if contract.load.columns:
        pairs = list(contract.load.columns)
        missing = [src for _, src in contract.load.columns if src not in available]
        if paths and missing:
            raise MissingColumnError(
                contract.dataset,
                dt,
                f"load.columns names {', '.join(missing)}, not in the curated output "
                f"(columns: {', '.join(sorted(available))})",
                field=f"load.columns.{missing[0]}",
            )
    else:
        pairs = [(name, name) for name in table_columns if name in available]
    if "run_id" in table_columns and all(name != "run_id" for name, _ in pairs):
        pairs.append(("run_id", None))
    if not paths:
        pairs = [(name, src) for name, src in pairs if src is None]
    return pairs


def _row_count(paths: Sequence[Path]) -> int:
    """The rows of the Parquet files, from their footers (ids are reserved for them)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(str(path)).metadata.num_rows for path in paths)


def _batches(
    paths: Sequence[Path], pairs: Sequence[tuple[str, str | None]], run_id: str
) -> Iterator[Any]:
    """Arrow record batches with the table's column names (``None`` feeds the run id)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = list(dict.fromkeys(src for _, src in pairs if src is not None))
    run_ids = pa.array([], type=pa.string())
    for path in paths:
        parquet = pq.ParquetFile(str(path))
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=wanted):
            if len(run_ids) < batch.num_rows:  # the run id repeated, built by Arrow, once
                run_ids = pa.repeat(pa.scalar(run_id, type=pa.string()), batch.num_rows)
            arrays = [
                batch.column(wanted.index(src))
                if src is not None
                else run_ids.slice(0, batch.num_rows)
                for _, src in pairs
            ]
            fault_point(Step.LOAD)  # inside the load's transaction
            yield pa.RecordBatch.from_arrays(arrays, names=[name for name, _ in pairs])
