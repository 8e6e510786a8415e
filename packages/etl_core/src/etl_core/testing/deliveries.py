"""Publish validated files as file_processing does, for the tests of the lanes reading them."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

from etl_core.artifacts import (
    Delivery,
    DeliveryManifest,
    DeliveryMember,
    QualitySummary,
    RowCounts,
    WithdrawalNotice,
    read_deliveries,
    utc_timestamp,
)
from etl_core.layout import (
    delivery_manifest_key,
    landing_key,
    quality_report_key,
    validated_key,
)
from etl_core.storage import ObjectStore

__all__ = ["delivered_keys", "notice_withdrawal", "publish_delivery", "record_delivery", "zipped"]


def publish_delivery(
    store: ObjectStore,
    dataset: str,
    dt: date,
    files: Mapping[str, bytes],
    *,
    landing: str | None = None,
    rows: int = 0,
) -> DeliveryManifest:
    """Write ``files`` (name -> bytes) to a validated partition with their quality reports,
    then the delivery manifest that makes readers see them.

    ``landing`` is the landing key they came from (default: one named after the
    first file); publishing again under the same landing key replaces that delivery.
    """
    for name, data in files.items():
        store.write_bytes(validated_key(dataset, dt, name), data)
    return record_delivery(store, dataset, dt, list(files), landing=landing, rows=rows)


def record_delivery(
    store: ObjectStore,
    dataset: str,
    dt: date,
    names: Sequence[str],
    *,
    landing: str | None = None,
    rows: int = 0,
) -> DeliveryManifest:
    """Write the quality reports and the delivery manifest of files already in a validated
    partition (for data too large to pass through memory)."""
    source_key = landing or landing_key(dataset, names[0])
    delivery = Delivery(key=source_key, etag="test", size=0, run_id="test", members=tuple(names))
    members = []
    for name in names:
        key = validated_key(dataset, dt, name)
        report = QualitySummary(
            delivery=delivery,
            dataset=dataset,
            file=name,
            outcome="pass",
            rows=RowCounts(total=rows, malformed=0, rejected=0, valid=rows),
            dt=dt.isoformat(),
        )
        store.write_bytes(quality_report_key(key), report.to_json())
        members.append(DeliveryMember(key, rows, quality_report_key(key)))
    manifest = DeliveryManifest(
        dataset=dataset,
        dt=dt.isoformat(),
        delivery=delivery,
        members=tuple(members),
        published_at=datetime.now(UTC).isoformat(),
    )
    store.write_bytes(delivery_manifest_key(dataset, dt, source_key), manifest.to_json())
    return manifest


def notice_withdrawal(
    store: ObjectStore,
    dataset: str,
    dt: date,
    *,
    landing: str,
    moved_to: Sequence[str] = (),
    data_keys: Sequence[str] = (),
    at: datetime | None = None,
    emptied: bool = False,
    data_etags: Mapping[str, str] | None = None,
) -> WithdrawalNotice:
    """Write the withdrawal notice of ``landing``'s delivery leaving a validated partition,
    as file_processing does before it removes that delivery's manifest (``at``: when,
    default now; ``data_keys``: the withdrawn delivery's validated data keys there;
    ``emptied``: the move left the day no other delivery; ``data_etags``: the ETag of the
    object withdrawn under each data key, when known)."""
    notice = WithdrawalNotice(
        dataset=dataset,
        dt=dt.isoformat(),
        landing_key=landing,
        withdrawn_at=utc_timestamp(at or datetime.now(UTC)),
        run_id="test",
        moved_to=tuple(moved_to),
        data_keys=tuple(data_keys),
        emptied=emptied,
        data_etags=dict(data_etags or {}),
    )
    store.write_bytes(notice.key, notice.to_json())
    return notice


def delivered_keys(store: ObjectStore, dataset: str, dt: date) -> list[str]:
    """The data keys readers see in a validated partition."""
    return sorted(
        key for manifest in read_deliveries(store, dataset, dt) for key in manifest.data_keys
    )


def zipped(entries: Mapping[str, bytes]) -> bytes:
    """A deflated zip archive of ``entries`` (member name -> bytes), as a vendor zips a drop."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()
