"""The raw archive of a run: every response body, byte for byte (gzip), and the run manifest.

``raw/api/<source>/<endpoint>/dt=<date>/<run>/<page>.json.gz`` holds one body; the
run's ``_manifest.json`` lists each page with its request URL (secrets removed),
status, selected response headers, ETag, fetch time, size and SHA-256 of the body (and
``masked``: how many of the source's credentials the API echoed in it, kept as ``***``).
The manifest is rewritten whole at every checkpoint, so it lists what the state
accounts for; a page fetched again after a crash keeps its number and replaces
itself.

Pages are compressed, hashed and written by the window's background writer
(:class:`~data_pipeline.ingest.writer.CheckpointWriter`: igzip, hashlib and the flushes
let the walk go on meanwhile). The manifest is queued after the pages it lists and
published with them, so it only lists durable pages, and a failed page write fails
the checkpoint, before any state could count it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import orjson

from data_pipeline.ingest.client import Response
from data_pipeline.ingest.compression import gzip_bytes
from data_pipeline.ingest.writer import CheckpointWriter
from etl_core.errors import ObjectNotFoundError
from etl_core.layout import raw_api_manifest_key, raw_api_page_key
from etl_core.storage import ObjectStore
from etl_core.threads import result_of

__all__ = ["RunArchive"]


class RunArchive:
    """The raw archive folder of one window's run.

    Args:
        store: Where it is written.
        source: The source, ``endpoint`` the endpoint, ``dt`` and ``run`` the folder.
        resume_at: The first page number the run writes (earlier pages stay listed).
        writer: The window's background writer (one of its own when ``None``).
    """

    def __init__(
        self,
        store: ObjectStore,
        source: str,
        endpoint: str,
        dt: date,
        run: str,
        resume_at: int,
        writer: CheckpointWriter | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.endpoint = endpoint
        self.dt = dt
        self.run = run
        self.manifest_key = raw_api_manifest_key(source, endpoint, dt, run)
        stored = self._stored()
        self.pages: dict[int, dict[str, Any]] = {
            number: entry for number, entry in stored.items() if number < resume_at
        }
        self.skipped: dict[int, set[int]] = {
            number: set(entry.get("skipped", ())) for number, entry in stored.items()
        }
        self._own_writer = writer is None
        self.writer = writer or CheckpointWriter(store, "raw-archive")

    def add(self, number: int, response: Response, *, role: str = "records") -> None:
        """Archive ``response``'s body as page ``number`` (replacing an earlier copy), in the
        background; an earlier failed write is raised here."""
        self.writer.submit(partial(self._write, number, response, role))

    def skip(self, number: int, position: int) -> None:
        """Item ``position`` of page ``number`` was landed by an earlier run (a record at the
        high-water mark sent again): listed in the manifest, so a replay skips it too."""
        self.skipped.setdefault(number, set()).add(position)

    def close(self) -> None:
        """Stop its own background writer (pages not yet sealed are dropped: no manifest
        lists them)."""
        if self._own_writer:
            self.writer.close()

    def _write(self, number: int, response: Response, role: str) -> None:
        key = raw_api_page_key(self.source, self.endpoint, self.dt, self.run, number)
        self.store.write_bytes(key, gzip_bytes(response.body))
        self.pages[number] = {
            "page": number,
            "key": key,
            "role": role,
            "url": response.url,
            "status": response.status,
            "headers": response.recorded_headers,
            "etag": response.headers.get("etag"),
            "fetched_at": response.fetched_at.isoformat(),
            "bytes": len(response.body),
            "sha256": hashlib.sha256(response.body).hexdigest(),
        }
        if response.masked:  # the API echoed a credential: masked in the body kept here
            self.pages[number]["masked"] = response.masked

    def write_manifest(
        self, *, status: str, records: int, chunks: int, dead_letters: int = 0
    ) -> None:
        """Write the manifest now (:meth:`queue_manifest`, then wait until it is durable)."""
        counts = {"records": records, "chunks": chunks, "dead_letters": dead_letters}
        self.queue_manifest(status=status, **counts)
        result_of(self.writer.seal())

    def queue_manifest(
        self, *, status: str, records: int, chunks: int, dead_letters: int = 0
    ) -> None:
        """Queue the manifest after the pages added: those pages, ``status``
        (``running``/``complete``); published with them when the checkpoint is sealed."""
        skipped = {number: sorted(positions) for number, positions in self.skipped.items()}
        counts = {"records": records, "chunks": chunks, "dead_letters": dead_letters}
        self.writer.submit(partial(self._write_manifest, status, counts, skipped))

    def _write_manifest(
        self, status: str, counts: dict[str, int], skipped: dict[int, list[int]]
    ) -> None:
        """In the writer's thread, after the pages it lists were written."""
        document = {
            "source": self.source,
            "endpoint": self.endpoint,
            "run": self.run,
            "dt": self.dt.isoformat(),
            "status": status,
            **counts,
            "updated_at": datetime.now(UTC).isoformat(),
            "pages": [self._entry(number, skipped) for number in sorted(self.pages)],
        }
        # orjson: the manifest grows by a page at a time and is rewritten whole at every
        # checkpoint; the standard library's indenting encoder is pure Python, holding the GIL
        self.store.write_bytes(
            self.manifest_key, orjson.dumps(document, option=orjson.OPT_INDENT_2)
        )

    def _entry(self, number: int, skipped: dict[int, list[int]]) -> dict[str, Any]:
        entry = self.pages[number]
        positions = skipped.get(number)
        return {**entry, "skipped": positions} if positions else entry

    def _stored(self) -> dict[int, dict[str, Any]]:
        try:
            document = json.loads(self.store.read_bytes(self.manifest_key))
        except ObjectNotFoundError:
            return {}
        except ValueError:  # a manifest cut short cannot be: writes are whole; start afresh
            return {}
        return {int(entry["page"]): entry for entry in document.get("pages", [])}
