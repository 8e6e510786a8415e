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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etl_core.resources import Closeable
from etl_core.threads import ContextThreadPoolExecutor
from file_processing.checks import sql_text

__all__ = ["EngineAhead", "QualityEngine"]


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


class EngineAhead(Closeable):
    """A :class:`QualityEngine` made on a thread of its own while the delivery is opened.

    Making the engine (DuckDB's import on a first delivery, the database and its settings:
    about 0.1 s) used to come before the decryption started, on the critical path of every
    delivery; it needs nothing from the delivery's content, so it runs beside the keyring's
    wait and gpg's decryption and is ready, most often, when the first member is checked.

    Args:
        make: Makes the engine (called once, on the engine's thread).
    """

    def __init__(self, make: Callable[[], QualityEngine]) -> None:
        pool = ContextThreadPoolExecutor(1, "engine")
        self._future = pool.submit(make)
        pool.shutdown(wait=False)

    def get(self) -> QualityEngine:
        """The engine, once made (waits for it).

        Raises:
            Exception: what making the engine raised, every time it is asked for.
        """
        return self._future.result()

    def close(self) -> None:
        """Wait for the engine and close it; an engine that could not be made was never
        used (whoever asked for it got the error), so there is nothing to close."""
        if self._future.exception() is None:
            self._future.result().close()
