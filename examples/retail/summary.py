"""What one run of the example changed, read from the store, and the summary it ends with.

:func:`snapshot` records the documents each lane publishes last (delivery manifests,
quarantine records, curated manifests, landed API chunks) with their ETags; the
difference between the snapshots before and after the run is what the run did, read
from the store rather than from the commands' output. :func:`summary` turns it, the
API ingestion's and the freshness check's JSON into the few lines ``run.py`` ends with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from etl_core.artifacts import CuratedManifest, DeliveryManifest, QualitySummary, QuarantineRecord
from etl_core.layout import (
    API,
    API_CHUNK_SUFFIX,
    MANIFEST_NAME,
    QUARANTINE_SUFFIX,
    curated_prefix,
    is_delivery_manifest,
    landing_prefix,
    quarantine_prefix,
    validated_prefix,
)
from etl_core.storage import ObjectStore

Snapshot = dict[str, str]
"""Key → ETag of every document that says what a lane did."""


def snapshot(store: ObjectStore) -> Snapshot:
    """The delivery manifests, quarantine records, curated manifests and API chunks now."""
    found: Snapshot = {}
    for info in store.list(validated_prefix()):
        if is_delivery_manifest(info.key):
            found[info.key] = info.etag
    for info in store.list(quarantine_prefix()):
        if info.key.endswith(QUARANTINE_SUFFIX):
            found[info.key] = info.etag
    for info in store.list(curated_prefix()):
        if info.key.endswith("/" + MANIFEST_NAME):
            found[info.key] = info.etag
    for info in store.list(landing_prefix(API)):
        if info.key.endswith(API_CHUNK_SUFFIX):
            found[info.key] = info.etag
    return found


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    """The keys written (or rewritten with other content) between two snapshots."""
    return sorted(key for key, etag in after.items() if before.get(key) != etag)


@dataclass
class Changes:
    """What the run changed, per lane, from the documents it wrote."""

    validated: Counter[str] = field(default_factory=Counter)
    """Deliveries validated, by dataset."""
    valid_rows: Counter[str] = field(default_factory=Counter)
    rejected_rows: Counter[str] = field(default_factory=Counter)
    """Rows split off into ``.rejected.csv``, by dataset."""
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    """(dataset, reason) of each object quarantined."""
    curated: Counter[str] = field(default_factory=Counter)
    """Partitions published, by dataset."""
    curated_rows: Counter[str] = field(default_factory=Counter)
    chunks: int = 0
    """API chunks landed."""

    @property
    def nothing(self) -> bool:
        return not (self.validated or self.quarantined or self.curated or self.chunks)


def read_changes(store: ObjectStore, keys: Sequence[str]) -> Changes:
    """Read the documents the run wrote (``keys``, from :func:`changed`)."""
    changes = Changes()
    for key in keys:
        if is_delivery_manifest(key):
            delivery = DeliveryManifest.from_json(store.read_bytes(key), key=key)
            changes.validated[delivery.dataset] += 1
            changes.valid_rows[delivery.dataset] += sum(m.rows for m in delivery.members)
            for member in delivery.members:
                if member.rejected:
                    report = QualitySummary.from_json(store.read_bytes(member.report), key=key)
                    changes.rejected_rows[delivery.dataset] += report.rows.rejected
        elif key.endswith(QUARANTINE_SUFFIX):
            record = QuarantineRecord.from_json(store.read_bytes(key), key=key)
            if not record.released:
                changes.quarantined.append((record.dataset, record.reason))
        elif key.endswith(API_CHUNK_SUFFIX):
            changes.chunks += 1
        else:
            manifest = CuratedManifest.from_json(store.read_bytes(key), key=key)
            changes.curated[manifest.dataset] += 1
            changes.curated_rows[manifest.dataset] += manifest.rows
    return changes


@dataclass(frozen=True)
class RunFacts:
    """Everything the summary says, gathered by ``run.py``."""

    delivered: int
    unchanged: int
    changes: Changes
    ingested: Mapping[str, Any]
    """``etl-data-pipeline ingest --json``: windows, failures."""
    freshness: Mapping[str, Any]
    """``etl-observability check --json``."""
    tables: Mapping[str, str]
    """Dataset → the table its partitions are loaded into."""


def summary(facts: RunFacts, look_next: Sequence[tuple[str, str]]) -> list[str]:
    """The lines the example ends with: what this run did, freshness, where to look."""
    changes = facts.changes
    lines = ["this run:"]
    if changes.nothing and not facts.delivered:
        lines.append(
            f"  nothing changed: all {facts.unchanged} vendor drops were there already, every "
            "file was processed, every partition curated and loaded"
        )
    else:
        lines += _changes(facts)
    lines.append(f"  ingested     {_ingested(facts.ingested)}")
    lines.append(f"freshness as of {facts.freshness['evaluated_at']}:")
    for dataset in facts.freshness["datasets"]:
        lines.append(f"  {dataset['dataset']:<24} {dataset['level']:<8} {dataset['message']}")
    lines.append("look next:")
    width = max(len(label) for label, _ in look_next)
    lines += [f"  {label:<{width}}  {value}" for label, value in look_next]
    return lines


def _changes(facts: RunFacts) -> list[str]:
    changes = facts.changes
    reasons = Counter(reason for _, reason in changes.quarantined)
    return [
        f"  delivered    {facts.delivered} vendor drop(s) ({facts.unchanged} already there)",
        "  validated    "
        + _per_dataset(
            changes.validated,
            lambda d: f"{changes.valid_rows[d]:,} rows, {changes.rejected_rows[d]} rejected",
        ),
        f"  quarantined  {len(changes.quarantined)}"
        + (
            ": " + ", ".join(f"{r} x{n}" if n > 1 else r for r, n in reasons.items())
            if reasons
            else ""
        ),
        "  curated      "
        + (
            "; ".join(
                f"{d} {n} partition(s) ({changes.curated_rows[d]:,} rows)"
                for d, n in sorted(changes.curated.items())
            )
            or "nothing"
        ),
        "  loaded       "
        + (
            ", ".join(
                f"{changes.curated_rows[d]:,} rows into {facts.tables[d]}"
                for d in sorted(changes.curated)
                if d in facts.tables
            )
            or "nothing"
        ),
    ]


def _per_dataset(counts: Counter[str], detail: Any) -> str:
    if not counts:
        return "nothing"
    return "; ".join(f"{d} {n} file(s) ({detail(d)})" for d, n in sorted(counts.items()))


def _ingested(document: Mapping[str, Any]) -> str:
    """One line per run of ``ingest``: new records, or why there were none."""
    windows = document.get("windows", [])
    failures = document.get("failures", [])
    fetched = [w for w in windows if not w.get("skipped")]
    records = sum(int(w["records"]) for w in fetched)
    endpoints = sorted({f"{w['source']}/{w['endpoint']}" for w in windows})
    text = f"{', '.join(endpoints) or 'no endpoint'}: {records:,} new record(s)"
    if fetched:
        pages = sum(int(w["pages"]) for w in fetched)
        chunks = sum(int(w["chunks"]) for w in fetched)
        text += f" in {chunks} chunk(s) from {pages} page(s), {len(fetched)} window(s)"
    skipped = len(windows) - len(fetched)
    if skipped:
        text += f"; {skipped} window(s) ingested before, not requested again"
    cursors = [w["cursor"] for w in windows if w.get("cursor")]
    if cursors:
        text += f"; high-water mark {max(cursors)}"
    if failures:
        text += f"; {len(failures)} failed"
    return text
