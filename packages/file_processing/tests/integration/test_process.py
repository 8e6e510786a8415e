"""Processing one landing object end to end, on the local store and on S3 (moto)."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from etl_core.artifacts import read_deliveries
from etl_core.layout import delivery_manifest_key, is_delivery_manifest
from etl_core.metrics import Registry, use_registry
from etl_core.storage import Holder, this_holder
from etl_core.testing.deliveries import zipped
from file_processing.ledger import Claim, ContentEntry, Ledger, LedgerConflictError
from file_processing.quarantine import list_quarantined, read_record, release

Orders = Callable[..., bytes]


def test_plain_csv_is_validated_with_its_report_and_landing_is_untouched(
    lane: Any, orders: Orders
) -> None:
    body = orders(20)
    key = lane.deliver("orders_20261101.csv", body)
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated"
    assert outcome.dataset == "orders"
    assert outcome.partition == "2026-11-01"
    data_key = "validated/orders/dt=2026-11-01/orders_20261101.csv"
    manifest_key = delivery_manifest_key("orders", date(2026, 11, 1), key)
    assert outcome.outputs == [data_key, data_key + ".quality.json", manifest_key]
    (manifest,) = read_deliveries(lane.store, "orders", date(2026, 11, 1))
    assert manifest.data_keys == (data_key,)
    assert (manifest.delivery.key, manifest.members[0].rows) == (key, 20)
    assert lane.store.read_bytes(data_key) == body
    report = json.loads(lane.store.read_bytes(data_key + ".quality.json"))
    assert report["outcome"] == "pass"
    assert report["file"] == "orders_20261101.csv"
    assert report["rows"]["total"] == 20
    assert report["delivery"]["key"] == key
    assert lane.store.read_bytes(key) == body


def test_reprocessing_the_same_object_is_a_no_op_unless_forced(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261101.csv", orders(5))
    with lane.processor() as processor:
        assert processor.process(key).status == "validated"
        again = processor.process(key)
        assert again.status == "skipped"
        assert "already validated" in again.detail
        assert processor.process(key, force=True).status == "validated"


def test_new_content_under_the_same_key_is_processed_again(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261101.csv", orders(5))
    with lane.processor() as processor:
        processor.process(key)
        lane.deliver("orders_20261101.csv", orders(7))
        outcome = processor.process(key)
    assert outcome.status == "validated"
    assert outcome.rows == 7


def test_unknown_file_is_quarantined_byte_for_byte_under_unknown(lane: Any) -> None:
    body = b"\x00\x01 not a known delivery"
    key = lane.deliver("surprise.bin", body, source="stranger")
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "contract.unmatched"
    copy = outcome.outputs[0]
    assert copy.startswith("quarantine/_unknown/dt=")
    assert copy.endswith("/stranger/surprise.bin")
    assert lane.store.read_bytes(copy) == body
    record = read_record(lane.store, copy)
    assert record.source_key == key
    assert record.source_etag == lane.store.head(key).etag
    assert record.run_id == "test-run"
    assert lane.store.read_bytes(key) == body


def test_zip_slip_member_is_refused_and_quarantined(lane: Any, orders: Orders) -> None:
    body = zipped({"../../etc/orders.csv": orders(3)})
    key = lane.deliver("orders_20261102.csv.zip", body)
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "archive.path_traversal"
    assert lane.keys("validated/") == []
    record = read_record(lane.store, "quarantine/orders/dt=2026-11-02/orders_20261102.csv.zip")
    assert record.reason == "archive.path_traversal"
    assert lane.store.read_bytes(record.key) == body
    assert lane.store.read_bytes(key) == body


def test_failed_checks_quarantine_the_file_with_samples(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261103.csv", orders(10, bad_amounts=5))
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "data.quality"
    record = read_record(lane.store, outcome.outputs[0])
    failed = {c["name"]: c for c in record.failed_checks}
    assert failed["range:amount"]["failed_count"] == 5
    assert failed["range:amount"]["samples"][0]["values"]["amount"] == "5000.00"
    assert lane.keys("validated/") == []


def test_few_bad_rows_are_split_off_and_the_rest_validated(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261104.csv", orders(100, bad_amounts=3))
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated"
    data_key = "validated/orders/dt=2026-11-04/orders_20261104.csv"
    assert data_key + ".rejected.csv" in outcome.outputs
    valid = lane.store.read_bytes(data_key).decode().splitlines()
    rejected = lane.store.read_bytes(data_key + ".rejected.csv").decode().splitlines()
    assert len(valid) == 1 + 97
    assert len(rejected) == 1 + 3
    assert "range:amount" in rejected[1]


def test_archive_members_keep_their_names_under_the_delivery(lane: Any, orders: Orders) -> None:
    body = zipped({"part1/a.csv": orders(4), "part2/b.csv": orders(6)})
    key = lane.deliver("orders_20261105.csv.zip", body)
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated"
    prefix = "validated/orders/dt=2026-11-05/orders_20261105.csv.zip/"
    assert lane.keys(prefix) == [
        prefix + "part1/a.csv",
        prefix + "part1/a.csv.quality.json",
        prefix + "part2/b.csv",
        prefix + "part2/b.csv.quality.json",
    ]
    assert [m["member"] for m in outcome.members] == [
        "orders_20261105.csv.zip/part1/a.csv",
        "orders_20261105.csv.zip/part2/b.csv",
    ]


def test_one_bad_member_quarantines_the_whole_delivery(lane: Any, orders: Orders) -> None:
    body = zipped({"a.csv": orders(4), "b.csv": b"id;amount\n1;2\n"})
    key = lane.deliver("orders_20261106.csv.zip", body)
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "data.schema"
    assert [m["outcome"] for m in outcome.members] == ["pass", "fail"]
    assert lane.keys("validated/") == []


def test_encrypted_zip_is_decrypted_and_validated(
    lane: Any, orders: Orders, pgp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEST_ORDERS_KEY", pgp.recipient_secret_armored.decode())
    plain = tmp_path / "orders.csv.zip"
    plain.write_bytes(zipped({"orders_20261107.csv": orders(8)}))
    sealed = pgp.encrypt(plain, tmp_path / "orders_20261107.csv.zip.pgp")
    key = lane.deliver(sealed.name, sealed)
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated", outcome.reason
    assert outcome.outputs[0] == (
        "validated/orders/dt=2026-11-07/orders_20261107.csv.zip/orders_20261107.csv"
    )
    assert lane.store.read_bytes(outcome.outputs[0]) == orders(8)


def test_file_for_another_key_is_quarantined_as_no_key(
    lane: Any, orders: Orders, pgp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEST_ORDERS_KEY", pgp.recipient_secret_armored.decode())
    plain = tmp_path / "orders.csv"
    plain.write_bytes(orders(3))
    sealed = pgp.encrypt(plain, tmp_path / "orders_20261108.csv.pgp", to="stranger@example.test")
    key = lane.deliver(sealed.name, sealed)
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "pgp.no_key"
    assert lane.store.read_bytes(outcome.outputs[0]) == sealed.read_bytes()


def test_unresolvable_key_reference_fails_without_blaming_the_file(
    lane: Any, orders: Orders, pgp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TEST_ORDERS_KEY", raising=False)
    plain = tmp_path / "orders.csv"
    plain.write_bytes(orders(3))
    sealed = pgp.encrypt(plain, tmp_path / "orders_20261109.csv.pgp")
    key = lane.deliver(sealed.name, sealed)
    with lane.processor() as processor, pytest.raises(Exception, match="TEST_ORDERS_KEY"):
        processor.process(key)
    assert lane.keys("quarantine/") == []
    record = Ledger(lane.store, run_id="x", claim_timeout=timedelta(hours=1)).get(key)
    assert record is not None
    assert record.state == "failed"
    monkeypatch.setenv("TEST_ORDERS_KEY", pgp.recipient_secret_armored.decode())
    with lane.processor() as processor:
        assert processor.process(key).status == "validated"


@pytest.mark.parametrize("name", ["orders_20261109.csv.pgp", "orders_20261109.csv"])
def test_a_keyring_that_could_not_be_made_is_made_again_for_the_next_delivery(
    lane: Any,
    orders: Orders,
    pgp: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
) -> None:
    """Whether its name announces OpenPGP (keyring made ahead) or not (made on demand)."""
    monkeypatch.delenv("TEST_ORDERS_KEY", raising=False)
    plain = tmp_path / "orders.csv"
    plain.write_bytes(orders(3))
    sealed = pgp.encrypt(plain, tmp_path / name)
    key = lane.deliver(sealed.name, sealed)
    with lane.processor() as processor:
        for _ in range(2):  # each delivery reports the failure, none is blamed for it
            with pytest.raises(Exception, match="TEST_ORDERS_KEY"):
                processor.process(key)
        assert lane.keys("quarantine/") == []
        monkeypatch.setenv("TEST_ORDERS_KEY", pgp.recipient_secret_armored.decode())
        assert processor.process(key).status == "validated"


def test_byte_identical_redelivery_is_recorded_as_a_duplicate(lane: Any, orders: Orders) -> None:
    body = orders(12)
    first = lane.deliver("orders_20261110.csv", body)
    second = lane.deliver("orders_20261110.csv.resent", body)
    with lane.processor() as processor:
        assert processor.process(first).status == "validated"
        outcome = processor.process(second)
    assert outcome.status == "skipped"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "duplicate"
    assert outcome.duplicate_of == first
    assert lane.keys("validated/") == [
        delivery_manifest_key("orders", date(2026, 11, 10), first),
        "validated/orders/dt=2026-11-10/orders_20261110.csv",
        "validated/orders/dt=2026-11-10/orders_20261110.csv.quality.json",
    ]
    record = Ledger(lane.store, run_id="x", claim_timeout=timedelta(hours=1)).get(second)
    assert record is not None
    assert record.state == "duplicate"


def test_checksum_sidecar_that_matches_lets_the_file_through(lane: Any) -> None:
    import hashlib

    body = b"id\n1\n2\n"
    key = lane.deliver("ledger_2026-11-01.csv", body, source="bank")
    lane.deliver(
        "ledger_2026-11-01.csv.sha256",
        f"{hashlib.sha256(body).hexdigest()}  ledger_2026-11-01.csv\n".encode(),
        source="bank",
    )
    with lane.processor() as processor:
        outcome = processor.process(key)
        sidecar = processor.process(key + ".sha256")
    assert outcome.status == "validated"
    assert outcome.checks[0]["name"] == "control.checksum:sha256"
    assert outcome.checks[0]["passed"]
    assert sidecar.status == "skipped"


def test_checksum_mismatch_quarantines_with_control_mismatch(lane: Any) -> None:
    key = lane.deliver("ledger_2026-11-02.csv", b"id\n1\n", source="bank")
    lane.deliver("ledger_2026-11-02.csv.sha256", b"0" * 64 + b"\n", source="bank")
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "control_mismatch"


def test_missing_sidecar_waits_then_quarantines_after_the_grace(lane: Any) -> None:
    key = lane.deliver("ledger_2026-11-03.csv", b"id\n1\n", source="bank")
    with lane.processor() as processor:
        waiting = processor.process(key)
    assert waiting.status == "skipped"
    assert "waiting for its sha256 sidecar" in waiting.detail
    with lane.processor(sidecar_grace=timedelta(0)) as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "control_mismatch"
    assert "none arrived" in outcome.reason["message"]


def test_claim_of_a_dead_worker_is_taken_over_and_completed(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261111.csv", orders(5))
    dead = subprocess.Popen(["true"])
    dead.wait()
    me = this_holder()  # the dead worker ran on this host, in this pid namespace
    crashed = Holder(f"{me.host}:{dead.pid}:crashed", me.host, dead.pid, me.namespace)
    ledger = Ledger(lane.store, run_id="crashed", claim_timeout=timedelta(hours=1), holder=crashed)
    claim = ledger.claim(key, lane.store.head(key).etag)
    assert isinstance(claim, Claim)
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "validated"
    record = ledger.get(key)
    assert record is not None
    assert record.attempts == 2


def test_live_claim_of_another_worker_is_respected(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261112.csv", orders(5))
    elsewhere = Holder("another-host:1", "another-host", 1, this_holder().namespace)
    ledger = Ledger(lane.store, run_id="other", claim_timeout=timedelta(hours=1), holder=elsewhere)
    ledger.claim(key, lane.store.head(key).etag)
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "skipped"
    assert "being processed by another-host:1" in outcome.detail
    assert lane.keys("validated/") == []


def _claimed_elsewhere(lane: Any, key: str, body: bytes) -> tuple[Ledger, Claim]:
    """``key`` and its content claimed by a live worker of another host (still processing)."""
    import hashlib

    elsewhere = Holder("another-host:1", "another-host", 1, this_holder().namespace)
    ledger = Ledger(lane.store, run_id="other", claim_timeout=timedelta(hours=1), holder=elsewhere)
    etag = lane.store.head(key).etag
    claim = ledger.claim(key, etag)
    assert isinstance(claim, Claim)
    sha256 = hashlib.sha256(body).hexdigest()
    assert ledger.claim_content(ContentEntry(sha256, key, etag, "orders", [])) is None
    return ledger, claim


def test_a_copy_of_a_file_being_processed_says_who_processes_it(lane: Any, orders: Orders) -> None:
    body = orders(6)
    original = lane.deliver("orders_20261114.csv", body)
    _claimed_elsewhere(lane, original, body)
    copy = lane.deliver("orders_20261116.csv", body)
    with lane.processor() as processor:
        outcome = processor.process(copy)
    assert outcome.status == "skipped"
    assert f"byte-identical to {original}, which another-host:1 is processing" in outcome.detail
    assert "retried by the next scan" in outcome.detail


@pytest.mark.parametrize("ended", ["quarantined", "failed"])
def test_a_copy_of_a_file_that_ended_unvalidated_meanwhile_is_processed_not_told_to_wait(
    lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch, ended: str
) -> None:
    body = orders(6)
    original = lane.deliver("orders_20261115.csv", body)
    other, claim = _claimed_elsewhere(lane, original, body)
    copy = lane.deliver("orders_20261117.csv", body)
    with lane.processor() as processor:
        claim_content = processor.ledger.claim_content

        def original_ends_meanwhile(entry: ContentEntry) -> ContentEntry | None:
            owner = claim_content(entry)
            if owner is not None and owner.key == original:  # it ends right after this read
                other.forget_content(owner.dataset, owner.sha256, original)
                other.finish(
                    claim, ended, reason="data.quality" if ended == "quarantined" else None
                )
            return owner

        monkeypatch.setattr(processor.ledger, "claim_content", original_ends_meanwhile)
        outcome = processor.process(copy)
    assert outcome.status == "validated", outcome.detail
    assert "being processed" not in outcome.detail


def test_released_quarantine_is_processed_again_and_keeps_its_history(
    lane: Any, orders: Orders
) -> None:
    key = lane.deliver("orders_20261113.csv", orders(10, bad_amounts=5))
    with lane.processor() as processor:
        first = processor.process(key)
        assert first.status == "quarantined"
        assert processor.process(key).status == "skipped"
        record = release(lane.store, processor.ledger, first.outputs[0], by="alice", note="fixed")
        assert record.released_by == "alice"
        assert list(list_quarantined(lane.store)) == []
        again = processor.process(key)
    assert again.status == "quarantined"
    latest = read_record(lane.store, first.outputs[0])
    assert latest.released_at is None
    assert [episode["released_by"] for episode in latest.history] == ["alice"]


def test_metrics_count_outcomes_by_reason(lane: Any, orders: Orders) -> None:
    registry = Registry()
    with use_registry(registry), lane.processor() as processor:
        processor.process(lane.deliver("orders_20261114.csv", orders(5)))
        processor.process(lane.deliver("junk.txt", b"?", source="nobody"))
    assert (
        registry.value(
            "etl_file_processing_objects_total", dataset="orders", outcome="validated", reason=""
        )
        == 1
    )
    assert (
        registry.value(
            "etl_file_processing_objects_total",
            dataset="",
            outcome="quarantined",
            reason="contract.unmatched",
        )
        == 1
    )


@pytest.mark.parametrize(
    ("members", "problem"),
    [
        ({".hidden.csv": b"id,amount\n1,2\n"}, "hidden name"),
        ({"a.csv": b"id,amount\n1,2\n", "a.csv.quality.json": b"id,amount\n1,2\n"}, "reserved"),
        ({"d": b"id,amount\n1,2\n", "d/x.csv": b"id,amount\n1,2\n"}, "also the folder"),
        ({"x" * 250 + ".csv": b"id,amount\n1,2\n"}, "too long"),
    ],
)
def test_member_names_that_cannot_be_published_are_refused_before_writing(
    lane: Any, members: dict[str, bytes], problem: str
) -> None:
    key = lane.deliver("orders_20261115.csv.zip", zipped(members))
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "archive.bad_name"
    assert problem in outcome.reason["message"]
    assert lane.keys("validated/") == []


def test_delivery_that_would_replace_another_deliverys_data_is_a_conflict(
    lane: Any, orders: Orders, pgp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEST_ORDERS_KEY", pgp.recipient_secret_armored.decode())
    first = lane.deliver("orders_20261116.csv", orders(5))
    plain = tmp_path / "orders_20261116.csv"
    plain.write_bytes(orders(9))
    sealed = pgp.encrypt(plain, tmp_path / "orders_20261116.csv.pgp")
    second = lane.deliver(sealed.name, sealed)
    with lane.processor() as processor:
        assert processor.process(first).status == "validated"
        outcome = processor.process(second)
    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "delivery.conflict"
    assert first in outcome.reason["message"]
    assert lane.store.read_bytes("validated/orders/dt=2026-11-16/orders_20261116.csv") == orders(5)


def test_new_version_of_a_key_removes_members_it_no_longer_has(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261117.csv.zip", zipped({"a.csv": orders(3), "b.csv": orders(4)}))
    with lane.processor() as processor:
        processor.process(key)
        lane.deliver("orders_20261117.csv.zip", zipped({"a.csv": orders(6)}))
        outcome = processor.process(key)
    assert outcome.status == "validated"
    prefix = "validated/orders/dt=2026-11-17/orders_20261117.csv.zip/"
    assert lane.keys(prefix) == [prefix + "a.csv", prefix + "a.csv.quality.json"]


def test_copy_of_a_quarantined_file_is_not_called_a_duplicate(lane: Any, orders: Orders) -> None:
    body = orders(10, bad_amounts=6)
    with lane.processor() as processor:
        first = processor.process(lane.deliver("orders_20261118.csv", body))
        second = processor.process(lane.deliver("orders_20261118.csv.again", body))
    assert first.status == "quarantined"
    assert second.status == "quarantined"
    assert second.duplicate_of is None


def test_a_file_named_like_a_quarantine_record_cannot_overwrite_one(lane: Any) -> None:
    with lane.processor() as processor:
        real = processor.process(lane.deliver("orders_20261119.csv", b"id;amount\n1;2\n"))
        forged = processor.process(
            lane.deliver("orders_20261119.csv.quarantine.json", b'{"reason": "forged"}')
        )
    assert real.status == forged.status == "quarantined"
    assert read_record(lane.store, real.outputs[0]).reason == "data.schema"
    assert forged.outputs[0].endswith("orders_20261119.csv.quarantine.json.original")
    assert [r.source_key for r in list_quarantined(lane.store)] == sorted(
        ["landing/vendor/orders_20261119.csv", "landing/vendor/orders_20261119.csv.quarantine.json"]
    )


def test_worker_whose_claim_was_taken_over_stops_before_publishing(
    lane: Any, orders: Orders, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = lane.deliver("orders_20261120.csv", orders(5))
    rival = Ledger(lane.store, run_id="rival", claim_timeout=timedelta(hours=1))
    rival.holder = "another-host:1"
    with lane.processor(claim_timeout=timedelta(microseconds=1)) as processor:
        check_members = processor._check_members

        def slow_check(*args: Any, **kwargs: Any) -> Any:
            assert isinstance(rival.claim(key, lane.store.head(key).etag), Claim)
            return check_members(*args, **kwargs)

        monkeypatch.setattr(processor, "_check_members", slow_check)
        with pytest.raises(LedgerConflictError, match="taken over"):
            processor.process(key)
    assert lane.keys("validated/") == []


def test_a_landing_name_too_long_for_its_record_is_still_quarantined(lane: Any) -> None:
    name = "n" * 250
    key = lane.deliver(name, b"whatever", source="stranger")
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    record = read_record(lane.store, outcome.outputs[0])
    assert record.source_key == key
    assert lane.store.read_bytes(record.key) == b"whatever"


@pytest.mark.parametrize("name", ["orders_20261125.csv", "orders_20261125.csv.zip"])
def test_an_empty_file_is_quarantined_as_empty_whatever_its_name(lane: Any, name: str) -> None:
    key = lane.deliver(name, b"")
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.status == "quarantined"
    assert outcome.reason == {"code": "data.empty", "message": f"{key} is empty (0 bytes)"}
    assert lane.store.read_bytes(key) == b""


def test_an_empty_member_of_an_archive_is_named(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261126.csv.zip", zipped({"a.csv": orders(3), "b.csv": b""}))
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.reason is not None
    assert outcome.reason["code"] == "data.empty"
    assert "b.csv is empty" in outcome.reason["message"]


def test_an_impossible_date_in_the_name_is_said_to_be_one(lane: Any, orders: Orders) -> None:
    key = lane.deliver("orders_20261332.csv", orders(3))
    with lane.processor() as processor:
        outcome = processor.process(key)
    assert outcome.reason is not None
    assert outcome.reason["code"] == "contract.unmatched"
    assert "'20261332' is not a calendar date in the format '%Y%m%d'" in outcome.reason["message"]
    assert "'orders'" in outcome.reason["message"]


def test_a_plaintext_named_gpg_is_quarantined_as_not_encrypted(
    lane: Any, orders: Orders, pgp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_ORDERS_KEY", pgp.recipient_secret_armored.decode())
    body = orders(4)
    key = lane.deliver("orders_20261110.csv.gpg", body)

    with lane.processor() as processor:
        outcome = processor.process(key)

    assert outcome.status == "quarantined"
    assert outcome.reason is not None
    assert outcome.reason["code"] == "pgp.not_encrypted"
    assert lane.store.read_bytes(outcome.outputs[0]) == body
    assert lane.keys("validated/") == []


def test_the_contracts_signature_policy_if_present_with_several_signers_applies(
    lane: Any, orders: Orders, pgp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    contract = lane.config_dir / "datasets" / "orders.toml"
    contract.write_text(
        contract.read_text().replace(
            'key = "env:TEST_ORDERS_KEY"\n',
            'key = "env:TEST_ORDERS_KEY"\nsignature = "if_present"\n'
            'signers = ["env:TEST_STRANGER_PUB", "env:TEST_VENDOR_PUB"]\n',
        )
    )
    monkeypatch.setenv("TEST_ORDERS_KEY", pgp.recipient_secret_armored.decode())
    monkeypatch.setenv("TEST_VENDOR_PUB", pgp.vendor_public.decode())
    stranger = pgp.gpg_run("--armor", "--export", "stranger@example.test")
    monkeypatch.setenv("TEST_STRANGER_PUB", stranger.decode())
    plain = tmp_path / "orders.csv"
    plain.write_bytes(orders(3))
    unsigned = pgp.encrypt(plain, tmp_path / "orders_20261111.csv.pgp")
    signed = pgp.encrypt(plain, tmp_path / "orders_20261112.csv.pgp", sign_as="vendor@example.test")
    forged = pgp.encrypt(
        plain, tmp_path / "orders_20261113.csv.pgp", sign_as="impostor@example.test"
    )

    with lane.processor() as processor:
        outcomes = [processor.process(lane.deliver(f.name, f)) for f in (unsigned, signed, forged)]

    assert [o.status for o in outcomes] == ["validated", "validated", "quarantined"]
    assert outcomes[2].reason is not None
    assert outcomes[2].reason["code"] == "pgp.bad_signature"


def test_a_unit_whose_object_is_gone_is_skipped_with_a_warning_naming_it(
    local_lane: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from file_processing.work import landing_object_unit, run_unit

    processor = local_lane.processor()
    with caplog.at_level(logging.WARNING, logger="file_processing.work"):
        outcome = run_unit(processor, landing_object_unit("landing/vendor/orders_20261109.csv"))
    assert outcome.status == "skipped"
    (said,) = [r for r in caplog.records if r.name == "file_processing.work"]
    assert said.levelno == logging.WARNING  # an event or a scan named it: not silently dropped
    assert "landing/vendor/orders_20261109.csv" in said.getMessage()
    assert "not found" in said.getMessage()
    store = processor.store.url  # a worker on another store than the scan's: it says which
    assert f"not found in {store}" in said.getMessage()
    assert outcome.detail == (
        f"not in {store}: deleted before it was processed, or the worker reads another store"
    )


def _manifest_reads_to_publish(lane: Any, orders: Orders, day: str, deliveries: int) -> int:
    """How many times the store read a delivery manifest while one processor published
    ``deliveries`` landing objects into the partition of ``day``, one after another."""
    store = lane.store
    reads: list[str] = []
    for name in ("open_read", "read_versioned"):
        method = getattr(store, name)

        def counted(key: str, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            reads.append(key)
            return _method(key, *args, **kwargs)

        setattr(store, name, counted)
    bodies = [f"id,amount\n{day}{n},1.25\n".encode() for n in range(deliveries)]  # no duplicates
    keys = [lane.deliver(f"orders_{day}.csv.{n}", body) for n, body in enumerate(bodies)]
    try:
        with lane.processor() as processor:
            for key in keys:
                outcome = processor.process(key)
                assert outcome.status == "validated", outcome.detail
    finally:
        for name in ("open_read", "read_versioned"):
            delattr(store, name)
    return sum(1 for key in reads if is_delivery_manifest(key))


def test_publishing_a_partitions_many_deliveries_reads_each_manifest_once(
    lane: Any, orders: Orders
) -> None:
    # The ownership check reads the partition's manifests: each once per processor (by
    # its ETag), not once for every later delivery (quadratic in a backlog's drops a day).
    small = _manifest_reads_to_publish(lane, orders, "20261125", 3)
    large = _manifest_reads_to_publish(lane, orders, "20261126", 12)
    assert (small, large) == (2, 11)  # before: 3 and 66
