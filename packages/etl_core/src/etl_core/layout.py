"""The object-store layout: every key the lanes share, built in one place.

One store per environment, zones as top-level prefixes (docs/architecture.md section 3)::

    landing/<source>/<original file name>                    vendor drops, never modified
    landing/api/<source>/<endpoint>/<chunk>                   records extracted from API pages
    validated/<dataset>/dt=<YYYY-MM-DD>/<file>                unpacked, decrypted, passed quality
    validated/<dataset>/dt=<YYYY-MM-DD>/<file>.quality.json   its quality report
    validated/<dataset>/dt=<YYYY-MM-DD>/<file>.rejected.csv   rows split off by the quality checks
    quarantine/<dataset or _unknown>/dt=<YYYY-MM-DD>/<file>   a refused original, byte for byte
    quarantine/.../<file>.quarantine.json                     why it was refused
    curated/<dataset>/dt=<YYYY-MM-DD>/_manifest.json          the published parts of a partition
    raw/api/<source>/<endpoint>/dt=<YYYY-MM-DD>/<run>/<page>.json.gz   API response bodies
    _state/<lane>/...                                         each lane's checkpoints and ledgers
    _state/file_processing/withdrawals/<dataset>/dt=<YYYY-MM-DD>.json   a withdrawn delivery

The layout is the contract between lanes, so no lane spells a zone, a ``dt=``
folder or a sidecar suffix: they call these functions. Everything here is pure
(no I/O). A dataset, source, lane or date that would give a wrong key is refused
with ``ValueError`` naming the argument; file names are not checked here (the
store validates every key it is given, and a lane that publishes a delivery's
names checks them first, to refuse the delivery rather than fail).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from typing import NamedTuple

__all__ = [
    "API",
    "API_CHUNK_SUFFIX",
    "CURATED",
    "DEAD_LETTERS_NAME",
    "DELIVERIES",
    "DRIFT_NAME",
    "LANDING",
    "MANIFEST_NAME",
    "PARTITIONED_ZONES",
    "QUALITY_SUFFIX",
    "QUARANTINE",
    "QUARANTINE_SUFFIX",
    "RAW",
    "REJECTED_SUFFIX",
    "SIDECAR_SUFFIXES",
    "STATE",
    "UNKNOWN_DATASET",
    "VALIDATED",
    "ZONES",
    "Partition",
    "curated_prefix",
    "deliveries_prefix",
    "delivery_manifest_key",
    "is_data_key",
    "is_delivery_manifest",
    "is_sidecar",
    "landing_api_chunk_key",
    "landing_api_chunk_name",
    "landing_api_prefix",
    "landing_key",
    "landing_prefix",
    "manifest_key",
    "partition_of",
    "partition_prefix",
    "partition_state_key",
    "partition_state_of",
    "quality_report_key",
    "quarantine_key",
    "quarantine_prefix",
    "quarantine_record_key",
    "raw_api_dead_letters_key",
    "raw_api_drift_key",
    "raw_api_endpoint_prefix",
    "raw_api_manifest_key",
    "raw_api_page_key",
    "raw_api_prefix",
    "raw_api_run_of",
    "rejected_rows_key",
    "split_landing_key",
    "state_key",
    "state_prefix",
    "strip_zone",
    "validated_key",
    "validated_prefix",
    "withdrawal_notice_key",
    "withdrawal_notice_of",
    "withdrawal_notices_prefix",
    "zone_of",
    "zone_prefix",
]

LANDING = "landing"
"""Vendor drops and extracted API records, as delivered."""
VALIDATED = "validated"
"""Files that passed their quality checks, by dataset and partition date."""
QUARANTINE = "quarantine"
"""Refused originals with their records, by dataset and partition date."""
CURATED = "curated"
"""Transformed partitions (Parquet), published through their manifest."""
RAW = "raw"
"""API response bodies, byte for byte, for audit and replay."""
STATE = "_state"
"""Each lane's checkpoints, leases and ledgers."""
ZONES: tuple[str, ...] = (LANDING, VALIDATED, QUARANTINE, CURATED, RAW, STATE)
"""Every zone, in the order data flows through them."""

API = "api"
"""The folder of API ingestion under ``raw/`` and ``landing/``."""
UNKNOWN_DATASET = "_unknown"
"""The dataset folder in ``quarantine/`` of objects that match no contract."""

QUALITY_SUFFIX = ".quality.json"
"""Appended to a validated file's key: its quality report."""
REJECTED_SUFFIX = ".rejected.csv"
"""Appended to a validated file's key: the rows its checks split off."""
QUARANTINE_SUFFIX = ".quarantine.json"
"""Appended to a quarantined object's key: its quarantine record."""
SIDECAR_SUFFIXES: tuple[str, ...] = (QUALITY_SUFFIX, REJECTED_SUFFIX, QUARANTINE_SUFFIX)
"""Suffixes of documents written beside data; a file so named is never data."""
MANIFEST_NAME = "_manifest.json"
DEAD_LETTERS_NAME = "_dead_letters.jsonl"
DRIFT_NAME = "_drift.json"
"""The name of a curated partition's manifest, inside the partition's folder (and of an API
run's manifest, inside the run's folder under ``raw/``)."""
DELIVERIES = "_deliveries"
"""The folder of a validated partition holding its delivery manifests."""
API_CHUNK_SUFFIX = ".jsonl.gz"
"""The ending of a landed API records chunk (gzip JSON Lines)."""

_PARTITIONED = (VALIDATED, QUARANTINE, CURATED)
PARTITIONED_ZONES: tuple[str, ...] = (*_PARTITIONED, RAW)
"""The zones with ``dt=`` partition folders (in ``raw/``, those under ``api/``)."""
_DT_FOLDER = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")


class Partition(NamedTuple):
    """Where a key sits in a partitioned zone."""

    zone: str
    dataset: str
    """The dataset; for ``raw/`` keys ``api/<source>/<endpoint>``."""
    dt: date


# --------------------------------------------------------------------- zones


def zone_prefix(zone: str) -> str:
    """The prefix of a whole zone: ``landing/``.

    Raises:
        ValueError: ``zone`` is not one of :data:`ZONES`.
    """
    if zone not in ZONES:
        raise ValueError(f"zone: expected one of {', '.join(ZONES)}, got {zone!r}")
    return f"{zone}/"


def zone_of(key: str) -> str | None:
    """The zone ``key`` is in, or ``None`` when its first folder is not a zone."""
    zone, slash, _ = key.partition("/")
    return zone if slash and zone in ZONES else None


def strip_zone(key: str, zone: str) -> str:
    """``key`` without the prefix of ``zone``, for display; unchanged when it is not in ``zone``."""
    return key.removeprefix(zone_prefix(zone))


# ------------------------------------------------------------------- landing


def landing_prefix(source: str | None = None) -> str:
    """The prefix of ``landing/``, or of one source's drops: ``landing/<source>/``.

    Slashes around ``source`` are ignored (contracts may write ``pos/``); a source
    may have several folders (``vendor/eu``).

    Raises:
        ValueError: ``source`` has an empty, ``.`` or ``..`` folder.
    """
    if source is None:
        return zone_prefix(LANDING)
    return f"{LANDING}/{_path(source, 'source')}/"


def landing_key(source: str, name: str) -> str:
    """Where a vendor drops ``name``: ``landing/<source>/<name>``."""
    return landing_prefix(source) + name


def landing_api_prefix(source: str, endpoint: str) -> str:
    """Where records extracted from an API endpoint land: ``landing/api/<source>/<endpoint>/``."""
    return landing_prefix(f"{API}/{_segment(source, 'source')}/{_segment(endpoint, 'endpoint')}")


def landing_api_chunk_name(endpoint: str, dt: date, run: str, chunk: int) -> str:
    """The file name of a landed records chunk: ``<endpoint>_<YYYYMMDD>_<run>_<chunk>.jsonl.gz``.

    A dataset contract fed by the endpoint matches it with ``source =
    "api/<source>/<endpoint>"`` and ``pattern = "<endpoint>_{date:%Y%m%d}_*.jsonl.gz"``.
    Chunks are numbered from 0 with six digits, so names sort in chunk order, and the
    name depends only on its arguments, so a chunk rewritten after a crash replaces itself.

    Raises:
        ValueError: a bad endpoint, date, run or chunk number.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 0:
        raise ValueError(f"chunk: expected a chunk number >= 0, got {chunk!r}")
    if isinstance(dt, datetime) or not isinstance(dt, date):
        raise ValueError(f"dt: expected a date (not a datetime), got {dt!r}")
    name = f"{_segment(endpoint, 'endpoint')}_{dt:%Y%m%d}_{_segment(run, 'run')}"
    return f"{name}_{chunk:06d}{API_CHUNK_SUFFIX}"


def landing_api_chunk_key(source: str, endpoint: str, dt: date, run: str, chunk: int) -> str:
    """Where one chunk of an endpoint's records lands: ``landing/api/<source>/<endpoint>/<name>``.

    The name is :func:`landing_api_chunk_name`'s.
    """
    return landing_api_prefix(source, endpoint) + landing_api_chunk_name(endpoint, dt, run, chunk)


def split_landing_key(key: str) -> tuple[str, str] | None:
    """Split ``landing/<source>/<name>`` into ``(source, name)``.

    The source is every folder between the zone and the name (``vendor/eu``, or
    ``api/<source>/<endpoint>`` for extracted API records). Leading slashes are
    ignored, as contracts' matching always did.

    Returns:
        ``None`` for a key outside ``landing/``, directly under it, or ending in ``/``.
    """
    zone, _, rest = key.lstrip("/").partition("/")
    source, _, name = rest.rpartition("/")
    if zone != LANDING or not source or not name:
        return None
    return source, name


# ------------------------------------------------------- partitioned zones


def validated_prefix(dataset: str | None = None, dt: date | None = None) -> str:
    """The prefix of ``validated/``, of one dataset, or of one partition (``dt`` given)."""
    return _prefix(VALIDATED, dataset, dt)


def validated_key(dataset: str, dt: date, name: str) -> str:
    """Where a validated file goes: ``validated/<dataset>/dt=<date>/<name>``.

    ``name`` may have folders (an archive's member path).
    """
    return _partition(VALIDATED, dataset, dt) + name


def deliveries_prefix(dataset: str, dt: date) -> str:
    """Where a validated partition's delivery manifests are: ``…/dt=<date>/_deliveries/``."""
    return _partition(VALIDATED, dataset, dt) + DELIVERIES + "/"


def delivery_manifest_key(dataset: str, dt: date, landing_key: str) -> str:
    """The manifest of the delivery ``landing_key`` in a validated partition.

    Named by a hash of the landing key, so a re-delivery under the same key
    replaces its manifest and any landing name fits.
    """
    digest = hashlib.sha256(landing_key.encode()).hexdigest()[:32]
    return f"{deliveries_prefix(dataset, dt)}{digest}.json"


def is_delivery_manifest(key: str) -> bool:
    """Whether ``key`` is a delivery manifest of a validated partition."""
    partition = partition_of(key)
    if partition is None or partition.zone != VALIDATED or not key.endswith(".json"):
        return False
    return key.rpartition("/")[0].endswith(f"/dt={partition.dt.isoformat()}/{DELIVERIES}")


def quality_report_key(data_key: str) -> str:
    """The quality report beside a validated file: ``<key>.quality.json``."""
    return data_key + QUALITY_SUFFIX


def rejected_rows_key(data_key: str) -> str:
    """The rejected rows beside a validated file: ``<key>.rejected.csv``."""
    return data_key + REJECTED_SUFFIX


def quarantine_prefix(dataset: str | None = None, dt: date | None = None) -> str:
    """The prefix of ``quarantine/``, of one dataset, or of one partition (``dt`` given)."""
    return _prefix(QUARANTINE, dataset, dt)


def quarantine_key(dataset: str, dt: date, name: str) -> str:
    """Where a refused original goes: ``quarantine/<dataset>/dt=<date>/<name>``.

    Objects that match no contract go under :data:`UNKNOWN_DATASET`.
    """
    return _partition(QUARANTINE, dataset, dt) + name


def quarantine_record_key(key: str) -> str:
    """The record of the quarantined object ``key`` (``key`` itself when it names a record)."""
    return key if key.endswith(QUARANTINE_SUFFIX) else key + QUARANTINE_SUFFIX


def curated_prefix(dataset: str | None = None, dt: date | None = None) -> str:
    """The prefix of ``curated/``, of one dataset, or of one partition (``dt`` given)."""
    return _prefix(CURATED, dataset, dt)


def manifest_key(dataset: str, dt: date) -> str:
    """The manifest of a curated partition: ``curated/<dataset>/dt=<date>/_manifest.json``."""
    return _partition(CURATED, dataset, dt) + MANIFEST_NAME


def is_sidecar(key: str) -> bool:
    """Whether ``key`` is a document written beside data (report, rejected rows, record)."""
    return key.endswith(SIDECAR_SUFFIXES)


def is_data_key(key: str) -> bool:
    """Whether ``key`` may be data: not a sidecar, a delivery manifest or a hidden name.

    Readers of ``validated/`` take data keys from the delivery manifests, never
    from a listing: a listing may show a delivery half published.
    """
    hidden = key.rpartition("/")[2].startswith(".")
    return not (is_sidecar(key) or hidden or is_delivery_manifest(key))


def partition_of(key: str) -> Partition | None:
    """The zone, dataset and date of a key inside a partition folder.

    ``validated/<dataset>/dt=<date>/<name>`` (and the same in ``quarantine/`` and
    ``curated/``) and ``raw/api/<source>/<endpoint>/dt=<date>/<run>/<page>``.

    Returns:
        ``None`` for any other key (``landing/``, ``_state/``, a partition's prefix).
    """
    parts = key.split("/")
    if parts[0] in _PARTITIONED:
        folders = 1
    elif parts[0] == RAW and len(parts) > 1 and parts[1] == API:
        folders = 3
    else:
        return None
    at = 1 + folders
    if len(parts) <= at + 1 or not all(parts[1:]):
        return None
    found = _DT_FOLDER.fullmatch(parts[at])
    if found is None:
        return None
    try:
        day = date.fromisoformat(found[1])
    except ValueError:
        return None
    return Partition(parts[0], "/".join(parts[1:at]), day)


def partition_prefix(zone: str, dataset: str, dt: date) -> str:
    """The folder of one partition, the inverse of :func:`partition_of`.

    ``validated/<dataset>/dt=<date>/`` (and the same in ``quarantine/`` and ``curated/``);
    for ``raw/`` the dataset is ``api/<source>/<endpoint>``, as :func:`partition_of` gives
    it: ``raw/api/<source>/<endpoint>/dt=<date>/``. A reader that lists the recent days of a
    dataset lists these prefixes instead of the whole dataset.

    Raises:
        ValueError: ``zone`` is not partitioned, or a bad dataset or date.
    """
    if zone in _PARTITIONED:
        return _partition(zone, dataset, dt)
    folders = dataset.split("/") if isinstance(dataset, str) else []
    if zone != RAW or len(folders) != 3 or folders[0] != API:
        expected = f"{', '.join(_PARTITIONED)} or {RAW} (dataset {API}/<source>/<endpoint>)"
        raise ValueError(f"zone: expected a partitioned zone, {expected}; got {zone!r} {dataset!r}")
    source, endpoint = _segment(folders[1], "dataset"), _segment(folders[2], "dataset")
    return f"{RAW}/{API}/{source}/{endpoint}/{_dt_folder(dt)}/"


# ------------------------------------------------------------------ raw API


def raw_api_prefix(source: str, endpoint: str, dt: date, run: str) -> str:
    """The folder of one ingestion run: ``raw/api/<source>/<endpoint>/dt=<date>/<run>/``."""
    folders = [_segment(source, "source"), _segment(endpoint, "endpoint")]
    return f"{RAW}/{API}/{'/'.join(folders)}/{_dt_folder(dt)}/{_segment(run, 'run')}/"


def raw_api_page_key(source: str, endpoint: str, dt: date, run: str, page: int) -> str:
    """One response body of a run: ``raw/api/<source>/<endpoint>/dt=<date>/<run>/<page>.json.gz``.

    Pages are numbered from 0 and written with five digits, so keys sort in page order.

    Raises:
        ValueError: ``page`` is negative (or not an integer).
    """
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
        raise ValueError(f"page: expected a page number >= 0, got {page!r}")
    return f"{raw_api_prefix(source, endpoint, dt, run)}{page:05d}.json.gz"


def raw_api_manifest_key(source: str, endpoint: str, dt: date, run: str) -> str:
    """The manifest of one ingestion run: ``raw/api/<source>/<endpoint>/dt=<date>/<run>/`` +
    ``_manifest.json``.

    It lists every archived page of the run (request URL without secrets, status,
    selected headers, ETag, fetch time, SHA-256).
    """
    return raw_api_prefix(source, endpoint, dt, run) + MANIFEST_NAME


def raw_api_endpoint_prefix(source: str, endpoint: str) -> str:
    """Every archived run of an endpoint: ``raw/api/<source>/<endpoint>/``."""
    return f"{RAW}/{API}/{_segment(source, 'source')}/{_segment(endpoint, 'endpoint')}/"


def raw_api_run_of(key: str) -> tuple[date, str] | None:
    """The date and run of a key inside a run folder (``…/dt=<date>/<run>/<name>``), else
    ``None``."""
    parts = key.split("/")
    if len(parts) < 7 or parts[:2] != [RAW, API] or not parts[4].startswith("dt="):
        return None
    try:
        return date.fromisoformat(parts[4][3:]), parts[5]
    except ValueError:
        return None


def raw_api_dead_letters_key(source: str, endpoint: str, dt: date, run: str) -> str:
    """What a run could not land, one JSON object a line, beside its manifest:
    ``raw/api/<source>/<endpoint>/dt=<date>/<run>/_dead_letters.jsonl``."""
    return raw_api_prefix(source, endpoint, dt, run) + DEAD_LETTERS_NAME


def raw_api_drift_key(source: str, endpoint: str, dt: date, run: str) -> str:
    """A run's drift report (its records against the dataset contract), beside its manifest:
    ``raw/api/<source>/<endpoint>/dt=<date>/<run>/_drift.json``."""
    return raw_api_prefix(source, endpoint, dt, run) + DRIFT_NAME


# -------------------------------------------------------------------- state


def state_prefix(lane: str, *folders: str) -> str:
    """The prefix of a lane's state, or of a folder in it: ``_state/<lane>/<folders>/``."""
    names = [_segment(lane, "lane"), *(_segment(f, "folders") for f in folders)]
    return f"{STATE}/{'/'.join(names)}/"


def state_key(lane: str, *parts: str) -> str:
    """A lane's state object: ``_state/<lane>/<parts>``; the last part is the object's name.

    Raises:
        ValueError: no part given, or a part is not a single non-empty name.
    """
    if not parts:
        raise ValueError("parts: expected at least the object's name")
    return state_prefix(lane, *parts[:-1]) + _segment(parts[-1], "parts")


def partition_state_key(lane: str, area: str, dataset: str, dt: date) -> str:
    """A lane's state about one partition: ``_state/<lane>/<area>/<dataset>/dt=<date>.json``."""
    return state_prefix(lane, area, _segment(dataset, "dataset")) + f"{_dt_folder(dt)}.json"


def partition_state_of(key: str, lane: str, area: str) -> tuple[str, date] | None:
    """The dataset and date of a :func:`partition_state_key` of ``lane`` and ``area``.

    Returns:
        ``None`` for any other key.
    """
    prefix = state_prefix(lane, area)
    if not key.startswith(prefix) or not key.endswith(".json"):
        return None
    dataset, _, name = key[len(prefix) : -len(".json")].rpartition("/")
    found = _DT_FOLDER.fullmatch(name)
    if not dataset or "/" in dataset or found is None:
        return None
    try:
        return dataset, date.fromisoformat(found[1])
    except ValueError:
        return None


_WITHDRAWALS = ("file_processing", "withdrawals")
"""The lane and state area of withdrawal notices."""


def withdrawal_notice_key(dataset: str, dt: date) -> str:
    """Where the file lane notes that it withdrew a delivery from a validated partition
    (its landing key now publishes to another one): the only proof downstream takes that a
    day's input was withdrawn, not lost (a lifecycle rule, a hand deletion):
    ``_state/file_processing/withdrawals/<dataset>/dt=<date>.json``."""
    return partition_state_key(*_WITHDRAWALS, dataset, dt)


def withdrawal_notices_prefix(dataset: str) -> str:
    """The prefix of one dataset's :func:`withdrawal_notice_key` keys (one listing)."""
    return state_prefix(*_WITHDRAWALS, _segment(dataset, "dataset"))


def withdrawal_notice_of(key: str) -> tuple[str, date] | None:
    """The dataset and date of a :func:`withdrawal_notice_key`; ``None`` for another key."""
    return partition_state_of(key, *_WITHDRAWALS)


# ---------------------------------------------------------------- internals


def _prefix(zone: str, dataset: str | None, dt: date | None) -> str:
    if dataset is None:
        if dt is not None:
            raise ValueError("dt: a partition date needs its dataset")
        return zone_prefix(zone)
    if dt is None:
        return f"{zone}/{_segment(dataset, 'dataset')}/"
    return _partition(zone, dataset, dt)


def _partition(zone: str, dataset: str, dt: date) -> str:
    return f"{zone}/{_segment(dataset, 'dataset')}/{_dt_folder(dt)}/"


def _dt_folder(dt: date) -> str:
    if isinstance(dt, datetime) or not isinstance(dt, date):
        raise ValueError(f"dt: expected a date (not a datetime), got {dt!r}")
    return f"dt={dt.isoformat()}"


def _segment(value: str, argument: str) -> str:
    """``value`` if it is one non-empty folder or file name, else ``ValueError``."""
    if not isinstance(value, str) or not value or "/" in value or value in {".", ".."}:
        raise ValueError(f"{argument}: expected a single non-empty name without '/', got {value!r}")
    return value


def _path(value: str, argument: str) -> str:
    """``value`` without outer slashes, if every folder of it is a valid name."""
    if not isinstance(value, str):
        raise ValueError(f"{argument}: expected a string, got {value!r}")
    stripped = value.strip("/")
    if not stripped or any(part in {"", ".", ".."} for part in stripped.split("/")):
        raise ValueError(f"{argument}: expected folder names separated by '/', got {value!r}")
    return stripped
