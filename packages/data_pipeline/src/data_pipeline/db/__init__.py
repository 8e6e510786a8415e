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

from typing import TYPE_CHECKING

from etl_core.exports import lazy_exports

if TYPE_CHECKING:
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
        end_backfill_partition,
        merge_backfill_job_parameters,
        running_backfill_jobs,
        set_backfill_job_state,
        update_backfill_partition,
    )
    from data_pipeline.db.door import (
        check_login,
        connect,
        run_recorder,
        schema_installed,
        warn_other_stores,
    )
    from data_pipeline.db.loads import (
        CURATED_TABLES,
        Fence,
        load_batches,
        load_partition,
        table_columns,
    )
    from data_pipeline.db.references import REFERENCE_TABLES, iter_reference_rows

_EXPORTS = {
    "ApiState": "data_pipeline.db.api_state",
    "backfill_job": "data_pipeline.db.backfills",
    "BackfillJobRecord": "data_pipeline.db.backfills",
    "BackfillPartitionRecord": "data_pipeline.db.backfills",
    "check_login": "data_pipeline.db.door",
    "connect": "data_pipeline.db.door",
    "create_backfill_job": "data_pipeline.db.backfills",
    "end_backfill_partition": "data_pipeline.db.backfills",
    "merge_backfill_job_parameters": "data_pipeline.db.backfills",
    "CURATED_TABLES": "data_pipeline.db.loads",
    "Fence": "data_pipeline.db.loads",
    "iter_reference_rows": "data_pipeline.db.references",
    "load_api_state": "data_pipeline.db.api_state",
    "load_batches": "data_pipeline.db.loads",
    "load_partition": "data_pipeline.db.loads",
    "record_api_failure": "data_pipeline.db.api_state",
    "REFERENCE_TABLES": "data_pipeline.db.references",
    "run_recorder": "data_pipeline.db.door",
    "running_backfill_jobs": "data_pipeline.db.backfills",
    "save_api_checkpoint": "data_pipeline.db.api_state",
    "save_api_state": "data_pipeline.db.api_state",
    "schema_installed": "data_pipeline.db.door",
    "set_backfill_job_state": "data_pipeline.db.backfills",
    "table_columns": "data_pipeline.db.loads",
    "update_backfill_partition": "data_pipeline.db.backfills",
    "warn_other_stores": "data_pipeline.db.door",
}
"""Each re-exported name and its module, imported on first use (issue 16, start-up)."""

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, {})

__all__ = [
    "CURATED_TABLES",
    "REFERENCE_TABLES",
    "ApiState",
    "BackfillJobRecord",
    "BackfillPartitionRecord",
    "Fence",
    "backfill_job",
    "check_login",
    "connect",
    "create_backfill_job",
    "end_backfill_partition",
    "iter_reference_rows",
    "load_api_state",
    "load_batches",
    "load_partition",
    "merge_backfill_job_parameters",
    "record_api_failure",
    "run_recorder",
    "running_backfill_jobs",
    "save_api_checkpoint",
    "save_api_state",
    "schema_installed",
    "set_backfill_job_state",
    "table_columns",
    "update_backfill_partition",
    "warn_other_stores",
]
