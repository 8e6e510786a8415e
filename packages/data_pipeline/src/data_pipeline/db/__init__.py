"""The data pipeline's door to the platform database, one module per concern.

:mod:`~data_pipeline.db.door` opens the schema package's door (``etl-database-schema``,
the ``schema`` extra) and records runs; :mod:`~data_pipeline.db.loads` replaces curated
partitions, :mod:`~data_pipeline.db.references` streams reference tables,
:mod:`~data_pipeline.db.backfills` keeps the backfill ledger and
:mod:`~data_pipeline.db.api_state` the API ingestion state. These modules are the only
ones of the runtime that import Django or the schema (import-linter enforces it), lazily;
every function returns plain values and raises this runtime's errors.
"""

from __future__ import annotations

from data_pipeline.db.api_state import (
    ApiState,
    load_api_state,
    record_api_failure,
    save_api_checkpoint,
    save_api_state,
)
from data_pipeline.db.backfills import (
    BackfillJobRecord,
    BackfillPartitionRecord,
    backfill_job,
    create_backfill_job,
    running_backfill_jobs,
    set_backfill_job_state,
    update_backfill_partition,
)
from data_pipeline.db.door import connect, run_recorder, schema_installed
from data_pipeline.db.loads import CURATED_TABLES, load_batches, load_partition, table_columns
from data_pipeline.db.references import REFERENCE_TABLES, iter_reference_rows

__all__ = [
    "CURATED_TABLES",
    "REFERENCE_TABLES",
    "ApiState",
    "BackfillJobRecord",
    "BackfillPartitionRecord",
    "backfill_job",
    "connect",
    "create_backfill_job",
    "iter_reference_rows",
    "load_api_state",
    "load_batches",
    "load_partition",
    "record_api_failure",
    "run_recorder",
    "running_backfill_jobs",
    "save_api_checkpoint",
    "save_api_state",
    "schema_installed",
    "set_backfill_job_state",
    "table_columns",
    "update_backfill_partition",
]
