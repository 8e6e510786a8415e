"""Where the pipeline reads and writes in the object store, and the curated publish protocol.

Inputs: ``validated/<dataset>/dt=<date>/<file>`` (sidecars ``*.quality.json`` and
``*.rejected.csv`` are not data). Outputs: ``curated/<dataset>/dt=<date>/``.

A curated partition is replaced whole, atomically for readers, although S3 has no
multi-object rename. Each computation is a *generation* (a sortable id) whose files
are ``part-<generation>-<n>.parquet``. The partition's ``_manifest.json`` names the
current generation and its files; it is written with one PUT after every part is
uploaded, so a reader that reads the manifest first sees the old partition or the
new one, never a mix or a half. The generation it replaces is kept until the next
publish (a reader that fetched the old manifest a moment ago can finish); older
ones are deleted. Readers must go through :func:`read_manifest` — globbing
``*.parquet`` may see two generations.

A manifest also records when its computation started: a computation that started
before the published one never replaces it (:class:`~data_pipeline.errors.SupersededError`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from data_pipeline.errors import SupersededError
from etl_core.errors import ObjectNotFoundError
from etl_core.storage import ObjectInfo, ObjectStore

__all__ = [
    "MANIFEST",
    "Manifest",
    "curated_prefix",
    "input_objects",
    "list_curated_dates",
    "list_validated_dates",
    "manifest_key",
    "new_generation",
    "publish_partition",
    "read_manifest",
    "timestamp",
    "validated_prefix",
]

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.json"
_SIDECARS = (".quality.json", ".rejected.csv", ".quarantine.json")
_DT = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/")


@dataclass(frozen=True)
class Manifest:
    """The published state of one curated partition."""

    dataset: str
    dt: str
    generation: str
    started_at: str
    published_at: str
    files: list[str]
    rows: int
    bytes: int
    inputs: dict[str, str]
    """Input key → ETag of the validated objects this generation was computed from."""
    run_id: str = ""


def validated_prefix(dataset: str, dt: date) -> str:
    """The prefix of a partition's validated inputs."""
    return f"validated/{dataset}/dt={dt.isoformat()}/"


def curated_prefix(dataset: str, dt: date) -> str:
    """The prefix of a curated partition."""
    return f"curated/{dataset}/dt={dt.isoformat()}/"


def manifest_key(dataset: str, dt: date) -> str:
    """The key of a curated partition's manifest."""
    return curated_prefix(dataset, dt) + MANIFEST


def new_generation(started: datetime) -> str:
    """A generation id that sorts by start time: ``20261101T101500123456-ab12cd``."""
    return f"{started.astimezone(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


def input_objects(store: ObjectStore, dataset: str, dt: date) -> list[ObjectInfo]:
    """The data objects of a validated partition (sidecars left out), sorted by key."""
    return [
        info
        for info in store.list(validated_prefix(dataset, dt))
        if not info.key.endswith(_SIDECARS) and not info.key.rsplit("/", 1)[-1].startswith(".")
    ]


def list_validated_dates(store: ObjectStore, dataset: str) -> list[date]:
    """Every partition date that has validated objects, ascending."""
    dates = set()
    for info in store.list(f"validated/{dataset}/dt="):
        match = _DT.search(info.key)
        if match and not info.key.endswith(_SIDECARS):
            dates.add(date.fromisoformat(match[1]))
    return sorted(dates)


def list_curated_dates(store: ObjectStore, dataset: str) -> list[date]:
    """Every partition date with a published manifest, ascending."""
    dates = []
    for info in store.list(f"curated/{dataset}/dt="):
        match = _DT.search(info.key)
        if match and info.key.endswith("/" + MANIFEST):
            dates.append(date.fromisoformat(match[1]))
    return sorted(dates)


def read_manifest(store: ObjectStore, dataset: str, dt: date) -> Manifest | None:
    """The published manifest of a curated partition, or ``None`` when none is published."""
    try:
        raw = store.read_bytes(manifest_key(dataset, dt))
    except ObjectNotFoundError:
        return None
    return Manifest(**json.loads(raw))


def publish_partition(
    store: ObjectStore,
    *,
    dataset: str,
    dt: date,
    generation: str,
    started_at: datetime,
    files: Sequence[Path],
    rows: int,
    inputs: dict[str, str],
    run_id: str = "",
) -> Manifest:
    """Upload a generation's Parquet files, flip the manifest to it, then prune old ones.

    Raises:
        SupersededError: a computation that started later is already published; the
            uploaded files of this generation are removed again.
    """
    prefix = curated_prefix(dataset, dt)
    keys = []
    size = 0
    for number, path in enumerate(sorted(files)):
        key = f"{prefix}part-{generation}-{number:05d}.parquet"
        size += store.upload(path, key)
        keys.append(key)
    current = read_manifest(store, dataset, dt)
    started = timestamp(started_at)
    if current is not None and current.started_at > started:
        for key in keys:
            store.delete(key)
        raise SupersededError(
            f"dataset {dataset!r}, partition dt={dt.isoformat()}: a computation started at "
            f"{current.started_at} is already published; this one (started {started}) is dropped"
        )
    manifest = Manifest(
        dataset=dataset,
        dt=dt.isoformat(),
        generation=generation,
        started_at=started,
        published_at=timestamp(datetime.now(UTC)),
        files=keys,
        rows=rows,
        bytes=size,
        inputs=inputs,
        run_id=run_id,
    )
    store.write_bytes(manifest_key(dataset, dt), json.dumps(asdict(manifest), indent=1).encode())
    keep = {current.generation} if current is not None else set()
    _prune(store, prefix, keep | {generation})
    return manifest


def timestamp(moment: datetime) -> str:
    """A UTC timestamp in one fixed format, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _prune(store: ObjectStore, prefix: str, keep: set[str]) -> None:
    for key in list(_stale_parts(store, prefix, keep)):
        store.delete(key)
        logger.debug("stale curated part deleted", extra={"key": key})


def _stale_parts(store: ObjectStore, prefix: str, keep: set[str]) -> Iterator[str]:
    pattern = re.compile(re.escape(prefix) + r"part-(.+)-\d{5}\.parquet")
    for info in store.list(prefix):
        match = pattern.fullmatch(info.key)
        if match and match[1] not in keep:
            yield info.key
