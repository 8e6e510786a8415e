"""The raw archive of a run: every response body, byte for byte (gzip), and the run manifest.

``raw/api/<source>/<endpoint>/dt=<date>/<run>/<page>.json.gz`` holds one body; the
run's ``_manifest.json`` lists each page with its request URL (secrets removed),
status, selected response headers, ETag, fetch time, size and SHA-256 of the body.
The manifest is rewritten whole at every checkpoint, so it lists what the state
accounts for; a page fetched again after a crash keeps its number and replaces
itself.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from data_pipeline.ingest.client import Response
from etl_core.errors import ObjectNotFoundError
from etl_core.layout import raw_api_manifest_key, raw_api_page_key
from etl_core.storage import ObjectStore

__all__ = ["RunArchive"]

COMPRESS_LEVEL = 6


class RunArchive:
    """The raw archive folder of one window's run.

    Args:
        store: Where it is written.
        source: The source, ``endpoint`` the endpoint, ``dt`` and ``run`` the folder.
        resume_at: The first page number the run writes (earlier pages stay listed).
    """

    def __init__(
        self, store: ObjectStore, source: str, endpoint: str, dt: date, run: str, resume_at: int
    ) -> None:
        self.store = store
        self.source = source
        self.endpoint = endpoint
        self.dt = dt
        self.run = run
        self.manifest_key = raw_api_manifest_key(source, endpoint, dt, run)
        self.pages: dict[int, dict[str, Any]] = {
            number: entry for number, entry in self._stored().items() if number < resume_at
        }

    def add(self, number: int, response: Response, *, role: str = "records") -> None:
        """Archive ``response``'s body as page ``number`` (replacing an earlier copy)."""
        key = raw_api_page_key(self.source, self.endpoint, self.dt, self.run, number)
        self.store.write_bytes(key, gzip.compress(response.body, COMPRESS_LEVEL, mtime=0))
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

    def write_manifest(self, *, status: str, records: int, chunks: int) -> None:
        """Write the manifest: the pages up to now, ``status`` (``running``/``complete``)."""
        document = {
            "source": self.source,
            "endpoint": self.endpoint,
            "run": self.run,
            "dt": self.dt.isoformat(),
            "status": status,
            "records": records,
            "chunks": chunks,
            "updated_at": datetime.now(UTC).isoformat(),
            "pages": [self.pages[number] for number in sorted(self.pages)],
        }
        self.store.write_bytes(self.manifest_key, json.dumps(document, indent=1).encode())

    def _stored(self) -> dict[int, dict[str, Any]]:
        try:
            document = json.loads(self.store.read_bytes(self.manifest_key))
        except ObjectNotFoundError:
            return {}
        except ValueError:  # a manifest cut short cannot be: writes are whole; start afresh
            return {}
        return {int(entry["page"]): entry for entry in document.get("pages", [])}
