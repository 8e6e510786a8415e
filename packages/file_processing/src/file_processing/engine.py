"""One DuckDB database shared by the quality analyses of a delivery's members.

Opening a DuckDB database costs tens of milliseconds (a thread pool, a buffer
manager); a zip of 10,000 small members paid it 10,000 times. A
:class:`QualityEngine` opens it once per delivery and gives each analysis its own
connection (:meth:`QualityEngine.connect`), whose temporary tables (the rejected
records, the failing rows) are private to it and gone when it closes. The
database may read and write only inside the delivery's scratch directory, and
spills there beyond its memory limit.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from etl_core.resources import Closeable
from file_processing.checks import sql_text

__all__ = ["QualityEngine"]


class QualityEngine(Closeable):
    """A DuckDB database confined to ``root`` (the delivery's scratch directory).

    Args:
        root: The only directory the engine may touch: the members, the outputs and
            the analyses' scratch must all be inside it.
        memory_limit: Bytes of memory before the engine spills to disk.
        threads: Worker threads (0: DuckDB's default, one per core; the processor passes
            the unit's share, :func:`~etl_core.work.cores.unit_threads`).
    """

    def __init__(self, root: Path, *, memory_limit: int, threads: int = 0) -> None:
        import duckdb  # the engine; imported with the first analysis

        self.root = root.resolve()
        self.scratch = Path(tempfile.mkdtemp(prefix="engine-", dir=self.root))
        config: dict[str, Any] = {
            "memory_limit": f"{int(memory_limit)}B",
            "preserve_insertion_order": True,
        }
        if threads > 0:
            config["threads"] = threads
        self._database = duckdb.connect(config=config)
        for statement in (
            f"SET temp_directory = {sql_text(str(self.scratch / 'spill'))}",
            f"SET allowed_directories = [{sql_text(str(self.root) + '/')}]",
            "SET enable_external_access = false",
            "SET enable_progress_bar = false",
            # Dates and instants in UTC, whatever the host's TZ: a ``date`` column read with
            # an offset (``%z``) is the UTC day, a timestamp compared with a bound the same
            # instant on every host (data_pipeline's engine reads them the same way).
            # GLOBAL: each analysis's connection (a cursor) starts from the global settings.
            "SET GLOBAL TimeZone = 'UTC'",
            "SET lock_configuration = true",
        ):
            self._database.execute(statement)

    def connect(self) -> Any:
        """A new connection to the database, for one analysis (close it when done)."""
        return self._database.cursor()

    def close(self) -> None:
        """Close the database and remove its scratch."""
        self._database.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
