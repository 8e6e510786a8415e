"""A landing file still being uploaded in place (SFTP writes a file in pieces with pauses)
is not taken for the whole delivery: ``landing_min_age`` leaves a local store's young
files (and young checksum sidecars) for a later scan, neither claimed nor recorded."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from etl_core.metrics import Registry, use_registry
from etl_core.storage import LocalObjectStore
from etl_core.testing.deliveries import zipped
from etl_core.work import ThreadExecutor
from file_processing.scan import scan

Orders = Callable[..., bytes]

QUIET = timedelta(minutes=10)


def _landing_file(lane: Any, key: str) -> Path:
    """The file a vendor's SFTP server writes for ``key`` in a local store's landing zone."""
    path = Path(lane.store.root, *key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _age(path: Path, span: timedelta) -> None:
    """Make ``path`` last modified ``span`` ago (its upload ended then)."""
    moment = time.time() - span.total_seconds()
    os.utime(path, (moment, moment))


def test_a_half_uploaded_local_file_waits_then_is_validated_whole(
    local_lane: Any, orders: Orders
) -> None:
    body = orders(20)
    key = "landing/vendor/orders_20261101.csv"
    upload = _landing_file(local_lane, key)
    upload.write_bytes(body[: len(body) // 2])  # the first piece, cut within a row
    with local_lane.processor(landing_min_age=QUIET) as processor:
        early = processor.process(key)
        assert early.status == "skipped"
        assert "landing_min_age (600s)" in early.detail
        assert early.dataset == "orders"
        assert processor.ledger.get(key) is None  # not seen: nothing to forget later
        assert local_lane.keys("validated/") == local_lane.keys("quarantine/") == []
        with upload.open("ab") as sftp:  # the rest arrives; the upload ends
            sftp.write(body[len(body) // 2 :])
        _age(upload, QUIET + timedelta(seconds=5))
        outcome = processor.process(key)
    assert outcome.status == "validated"
    assert outcome.rows == 20
    assert upload.read_bytes() == body  # the landing file is left where it was


def test_without_a_quiet_period_a_piece_cut_at_a_row_boundary_passes_for_the_file(
    local_lane: Any, orders: Orders
) -> None:
    """Why the setting exists: the default (0) takes a local file at once, whole or not."""
    body = orders(20)
    piece = body[: body.index(b"\n", len(body) // 2) + 1]
    key = "landing/vendor/orders_20261101.csv"
    _landing_file(local_lane, key).write_bytes(piece)
    with local_lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated"
    assert 0 < outcome.rows < 20


def test_a_truncated_zip_taken_too_early_is_quarantined_and_its_completion_validated(
    local_lane: Any, orders: Orders
) -> None:
    """Without a quiet period the first piece of a zip is refused; the complete upload, a new
    ETag, is not "already quarantined": the next scan validates it."""
    body = zipped({"orders_20261104.csv": orders(400)})
    key = "landing/vendor/orders_20261104.csv.zip"
    upload = _landing_file(local_lane, key)
    upload.write_bytes(body[: len(body) // 2])
    with local_lane.processor() as processor:
        early = processor.process(key)
        assert early.status == "quarantined"
        upload.write_bytes(body)
        outcome = processor.process(key)
    assert outcome.status == "validated"
    assert outcome.rows == 400


def test_a_young_checksum_sidecar_is_waited_for_not_refused(local_lane: Any) -> None:
    body = b"id\n1\n"
    key = local_lane.deliver("ledger_2026-11-03.csv", body, source="bank")
    _age(_landing_file(local_lane, key), QUIET * 2)
    sidecar = _landing_file(local_lane, key + ".sha256")
    digest = hashlib.sha256(body).hexdigest()
    sidecar.write_text(digest[:20])  # half a digest so far
    with local_lane.processor(landing_min_age=QUIET) as processor:
        waiting = processor.process(key)
        assert waiting.status == "skipped"
        assert "waiting for its sha256 sidecar" in waiting.detail
        assert "modified within landing_min_age" in waiting.detail  # not "still to arrive"
        sidecar.write_text(f"{digest}  ledger_2026-11-03.csv\n")
        _age(sidecar, QUIET + timedelta(seconds=5))
        outcome = processor.process(key)
    assert outcome.status == "validated"


def test_the_quiet_period_delays_local_files_only(lane: Any, orders: Orders) -> None:
    """An S3 object appears whole when its upload ends: nothing to wait for."""
    key = lane.deliver("orders_20261102.csv", orders(5))
    with lane.processor(landing_min_age=QUIET) as processor:
        outcome = processor.process(key)
    local = isinstance(lane.store, LocalObjectStore)
    assert outcome.status == ("skipped" if local else "validated")


def test_scan_reports_a_settling_file_and_a_later_scan_takes_it(
    local_lane: Any, orders: Orders
) -> None:
    key = local_lane.deliver("orders_20261103.csv", orders(5))
    early = local_lane.cli("scan", "--json", ETL_LANDING_MIN_AGE="10m")
    assert early.returncode == 0, early.stderr
    assert "landing_min_age" in early.stdout
    assert local_lane.keys("validated/") == []
    _age(_landing_file(local_lane, key), QUIET + timedelta(seconds=5))
    later = local_lane.cli("scan", "--json", ETL_LANDING_MIN_AGE="10m")
    assert later.returncode == 0, later.stderr
    assert local_lane.keys("validated/orders/")


def test_the_scan_summary_counts_settling_files_apart_from_skipped_ones(
    local_lane: Any, orders: Orders
) -> None:
    """An operator tells "waiting for the upload to settle" from "skipped" in what
    ``scan`` prints: its JSON counts, its table's status and its summary line."""
    young = local_lane.deliver("orders_20261103.csv", orders(5))
    done = local_lane.deliver("orders_20261104.csv", orders(5))
    _age(_landing_file(local_lane, done), QUIET * 2)
    assert local_lane.cli("scan", ETL_LANDING_MIN_AGE="10m").returncode == 0

    as_json = local_lane.cli("scan", "--json", ETL_LANDING_MIN_AGE="10m")
    shown = local_lane.cli("scan", ETL_LANDING_MIN_AGE="10m", COLUMNS="200")

    assert (as_json.returncode, shown.returncode) == (0, 0), as_json.stderr + shown.stderr
    summary = json.loads(as_json.stdout)
    assert summary["counts"] == {
        "validated": 0,
        "quarantined": 0,
        "skipped": 1,
        "settling": 1,
        "failed": 0,
    }
    assert {o["key"]: (o["status"], o["settling"]) for o in summary["outcomes"]} == {
        young: ("skipped", True),
        done: ("skipped", False),
    }
    assert "0 validated, 0 quarantined, 1 skipped, 1 settling, 0 failed" in shown.stdout
    row = next(line for line in shown.stdout.splitlines() if "orders_20261103.csv" in line)
    assert "settling" in row
    assert "skipped" not in row


def test_a_settling_file_is_counted_as_settling_not_skipped_on_every_scan(
    local_lane: Any, orders: Orders
) -> None:
    """A dashboard of ``outcome="skipped"`` must not show thousands of skips for files
    that are merely young: each scan sees them again, so they are counted apart."""
    young = local_lane.deliver("orders_20261103.csv", orders(5))
    done = local_lane.deliver("orders_20261104.csv", orders(5))
    _age(_landing_file(local_lane, done), QUIET * 2)
    sidecar_waits = local_lane.deliver("ledger_2026-11-03.csv", b"id\n1\n", source="bank")
    _age(_landing_file(local_lane, sidecar_waits), QUIET * 2)
    _landing_file(local_lane, sidecar_waits + ".sha256").write_text("0123")  # still writing

    registry = Registry()
    with use_registry(registry), local_lane.processor(landing_min_age=QUIET) as processor:
        for _ in range(3):
            summary = scan(processor, ThreadExecutor(2))

    def counted(dataset: str, outcome: str) -> float:
        found = registry.value(
            "etl_file_processing_objects_total", dataset=dataset, outcome=outcome, reason=""
        )
        return found or 0

    assert {o.key: (o.status, o.settling) for o in summary.outcomes} == {
        young: ("skipped", True),
        done: ("skipped", False),  # already validated by the first scan
        sidecar_waits: ("skipped", True),
    }
    assert (counted("orders", "settling"), counted("ledger", "settling")) == (3, 3)
    assert counted("orders", "skipped") == 2  # the validated one, by the two later scans
    assert counted("orders", "validated") == 1
    assert counted("ledger", "skipped") == 0


def test_a_negative_quiet_period_is_refused_at_start(local_lane: Any) -> None:
    result = local_lane.cli("scan", ETL_LANDING_MIN_AGE="-5s")
    assert result.returncode == 2
    assert "landing_min_age" in result.stderr
    json.dumps(result.stderr)  # said, not a traceback
    assert "Traceback" not in result.stderr


def test_a_file_dated_in_the_future_is_not_left_waiting_for_ever(
    local_lane: Any, orders: Orders
) -> None:
    """A time set explicitly (``put -p``, ``rsync -t`` from a host whose clock or zone is
    wrong) far ahead of this host's clock is not a write in progress: the upload that set
    it has ended. Measured from that time, the file would wait until the clock caught up
    (for ever, for a date in 2099) while the scan said "last modified 0s ago"."""
    key = local_lane.deliver("orders_20261105.csv", orders(5))
    path = _landing_file(local_lane, key)
    _age(path, -timedelta(days=365 * 70))
    with local_lane.processor(landing_min_age=QUIET) as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated", outcome.detail


def test_a_file_dated_slightly_ahead_says_so_and_waits(local_lane: Any, orders: Orders) -> None:
    """A file server's clock a little ahead (NFS) while it writes: the file is young, and
    the scan says its time is ahead of this host's clock, not that it is 0 s old."""
    key = local_lane.deliver("orders_20261106.csv", orders(5))
    _age(_landing_file(local_lane, key), -timedelta(minutes=3))
    with local_lane.processor(landing_min_age=QUIET) as processor:
        outcome = processor.process(key)
        assert outcome.status == "skipped"
        assert "ahead of this host's clock" in outcome.detail
        assert processor.ledger.get(key) is None
