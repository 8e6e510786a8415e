"""Incremental storage metrics: the recent listing plus the kept tallies equal a full reconcile."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl_core.artifacts import QuarantineRecord
from etl_core.contracts import Column, Contract, Freshness
from etl_core.layout import (
    MANIFEST_NAME,
    ZONES,
    curated_prefix,
    deliveries_prefix,
    delivery_manifest_key,
    landing_key,
    partition_prefix,
    quarantine_key,
    state_key,
    validated_key,
    validated_prefix,
)
from etl_core.metrics import Registry, render_prometheus
from etl_core.storage import ObjectStore, open_store
from etl_core.testing import capture_logs
from etl_core.testing.s3 import aws_test_environment
from observability.evaluation import evaluate
from observability.inventory import DatasetInventory, take_inventory
from observability.monitors import DatasetFacts, horizon
from observability.page import render_page
from observability.service import StatusService
from observability.storage_index import (
    UNREADABLE_RECORD,
    StorageIndex,
    StorageSnapshot,
    record_storage_metrics,
)
from observability.storage_state import (
    STATE_KEY,
    indexed_inventory,
    load_snapshot,
    snapshot_from_json,
    snapshot_to_json,
)

REASONS = ("data.quality", "pgp.no_key", "name.unknown")
RECENT_DAYS = 3


def contract(dataset: str) -> Contract:
    return Contract(
        dataset=dataset,
        source=dataset,
        pattern=dataset + "_{date:%Y%m%d}.csv",
        columns=(Column("id"),),
        freshness=Freshness(warn_after=timedelta(hours=26), critical_after=timedelta(hours=50)),
    )


CONTRACTS = (contract("pos"), contract("crm"))


class Layout:
    """Random objects in every zone of the layout, each key built by ``etl_core.layout``."""

    def __init__(self, store: ObjectStore, rng: random.Random, today: date) -> None:
        self.store = store
        self.rng = rng
        self.today = today
        self.keys: set[str] = set()

    def day(self, recent: bool) -> date:
        low = -(RECENT_DAYS - 1) if recent else -12
        return self.today + timedelta(days=self.rng.randint(low, 1))

    def put(self, key: str, data: bytes) -> None:
        self.store.write_bytes(key, data)
        self.keys.add(key)

    def record(self, dataset: str, day: date, name: str) -> None:
        key = quarantine_key(dataset, day, name)
        self.put(key, b"q" * self.rng.randint(0, 9))
        released = self.rng.random() < 0.3
        record = QuarantineRecord(
            key=key,
            dataset=dataset,
            partition=day.isoformat(),
            reason=self.rng.choice(REASONS),
            message="refused",
            source_key=landing_key(dataset, name),
            source_etag="e",
            source_size=1,
            run_id="r",
            quarantined_at="2026-12-01T00:00:00+00:00",
            released_at="2026-12-02T00:00:00+00:00" if released else None,
            released_by="ops" if released else None,
        )
        self.put(record.record_key, record.to_json())

    def add(self, *, recent: bool) -> None:
        """One random object (with its documents) somewhere in the layout."""
        rng = self.rng
        dataset = rng.choice(("pos", "crm", "ads"))  # ads: no contract, found by reconcile
        day = self.day(recent)
        name = f"f{rng.randint(0, 30)}.csv"
        size = b"x" * rng.randint(0, 40)
        kind = rng.randrange(7)
        if kind == 0:
            self.put(landing_key(dataset, f"{dataset}_{day:%Y%m%d}_{name}"), size)
        elif kind == 1:
            self.put(validated_key(dataset, day, name), size)
            digest = hashlib.sha256(name.encode()).hexdigest()[:32]
            self.put(f"{deliveries_prefix(dataset, day)}{digest}.json", b"{}")
        elif kind == 2:
            self.put(partition_prefix("curated", dataset, day) + "part-0.parquet", size)
            self.put(partition_prefix("curated", dataset, day) + MANIFEST_NAME, b"{}")
        elif kind == 3:
            self.record(rng.choice((dataset, "_unknown")), day, name)
        elif kind == 4:
            folder = partition_prefix("raw", "api/shop/orders", day)
            self.put(f"{folder}run{rng.randint(0, 2)}/{rng.randint(0, 9):05d}.json.gz", size)
        elif kind == 5 and not recent:
            self.put(state_key("file_processing", "claims", name), size)
        elif not recent:
            self.put(validated_prefix(dataset) + "notes.txt", size)  # outside any partition

    def plant_known(self) -> None:
        """One old object in each partitioned dataset: the reconcile knows them all (a
        dataset no contract names is found by a reconcile, never between two)."""
        old = self.today - timedelta(days=30)
        for dataset in ("pos", "crm", "ads"):
            for zone in ("validated", "quarantine", "curated"):
                self.put(partition_prefix(zone, dataset, old) + "old.bin", b"o")
        self.put(partition_prefix("quarantine", "_unknown", old) + "old.bin", b"o")
        self.put(partition_prefix("raw", "api/shop/orders", old) + "run/00000.json.gz", b"o")

    def change_recent(self) -> None:
        """Delete or rewrite some recent objects and landing files; add new ones."""
        recent = {
            partition_prefix(zone, dataset, self.today + timedelta(days=n))
            for zone, dataset in (
                *((z, d) for z in ("validated", "quarantine", "curated") for d in ("pos", "crm")),
                *(("validated", "ads"), ("curated", "ads"), ("quarantine", "ads")),
                ("quarantine", "_unknown"),
                ("raw", "api/shop/orders"),
            )
            for n in range(-(RECENT_DAYS - 1), 2)
        }
        changeable = sorted(k for k in self.keys if k.startswith(("landing/", *recent)))
        for key in self.rng.sample(changeable, k=min(len(changeable), 4)):
            if self.rng.random() < 0.5:
                self.store.delete(key)
                self.keys.discard(key)
            elif not key.endswith(".quarantine.json"):
                self.put(key, b"rewritten" * self.rng.randint(0, 3))
        for _ in range(self.rng.randint(0, 12)):
            self.add(recent=True)


def comparable(snapshot: StorageSnapshot) -> dict[str, Any]:
    document = snapshot.to_dict()
    for timing in ("mode", "reconciled_at", "listed_objects", "seconds"):
        document.pop(timing)
    return document


def check_incremental_equals_reconcile(store: ObjectStore, seed: int) -> None:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    layout = Layout(store, rng, now.date())
    layout.plant_known()
    for _ in range(rng.randint(0, 40)):
        layout.add(recent=rng.random() < 0.5)
    index = StorageIndex(store, CONTRACTS, recent_days=RECENT_DAYS, workers=4)
    assert index.collect(now).mode == "reconcile"

    layout.change_recent()
    later = now + timedelta(minutes=1)
    incremental = index.collect(later)
    full = StorageIndex(store, CONTRACTS, recent_days=RECENT_DAYS).collect(later)

    assert incremental.mode == "incremental"
    assert dict(incremental.areas) == dict(full.areas)
    assert comparable(incremental) == comparable(full)
    for zone in ("validated", "curated"):
        for dataset in ("pos", "crm", "ads"):
            assert sorted(incremental.manifests(zone, dataset)) == sorted(
                full.manifests(zone, dataset)
            )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_incremental_equals_a_full_reconcile_on_the_local_store(seed: int) -> None:
    with tempfile.TemporaryDirectory() as root, open_store(root) as store:
        check_incremental_equals_reconcile(store, seed)


@contextlib.contextmanager
def s3_store(endpoint: str, bucket: str) -> Iterator[ObjectStore]:
    with aws_test_environment():
        url = f"s3://{bucket}/index-{uuid.uuid4().hex[:8]}"
        with open_store(url, endpoint_url=endpoint) as store:
            yield store


@pytest.mark.s3
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_incremental_equals_a_full_reconcile_on_s3(
    seed: int, s3_endpoint: str, s3_bucket: str
) -> None:
    with s3_store(s3_endpoint, s3_bucket) as store:
        check_incremental_equals_reconcile(store, seed)


def fill(store: ObjectStore, today: date) -> None:
    layout = Layout(store, random.Random(7), today)
    for _ in range(60):
        layout.add(recent=False)


@pytest.mark.s3
def test_s3_and_the_local_store_give_the_same_metrics(
    s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    texts = []
    with s3_store(s3_endpoint, s3_bucket) as s3, open_store(tmp_path) as local:
        for store in (s3, local):
            fill(store, now.date())
            snapshot = StorageIndex(store, CONTRACTS).collect(now)
            registry = Registry()
            record_storage_metrics(snapshot, registry)
            texts.append(
                [
                    line
                    for line in render_prometheus(registry).splitlines()
                    if "age_seconds{" not in line
                    and "_seconds " not in line
                    and "collection_seconds" not in line
                ]
            )
    assert texts[0] == texts[1]
    assert any(line.startswith("etl_observability_open_quarantines{") for line in texts[0])


class Recording:
    """A store recording each prefix listed (and each key read)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.listed: list[str] = []
        self.read: list[str] = []

    def list(self, prefix: str = "") -> Any:
        self.listed.append(prefix)
        return self.store.list(prefix)

    def read_bytes(self, key: str) -> bytes:
        self.read.append(key)
        return self.store.read_bytes(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_between_reconciles_only_recent_partitions_and_landing_are_listed(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with open_store(tmp_path) as local:
        fill(local, now.date())
        store = Recording(local)
        index = StorageIndex(store, CONTRACTS, reconcile_interval=timedelta(hours=1))  # type: ignore[arg-type]
        index.collect(now)
        assert sorted(store.listed) == sorted(f"{zone}/" for zone in ZONES)

        store.listed.clear()
        between = index.collect(now + timedelta(minutes=5))
        recent = {(now.date() + timedelta(days=n)).isoformat() for n in range(-2, 2)}
        newest = {  # each contract's newest published partition, its age's: checked still there
            partition_prefix(zone, c.dataset, max(found, key=lambda m: m[1])[0])
            for c in CONTRACTS
            for zone in ("validated", "curated")
            if (found := list(between.manifests(zone, c.dataset)))
        }
        assert "landing/" in store.listed
        for prefix in store.listed:
            assert (
                prefix == "landing/"
                or prefix.rstrip("/").rpartition("dt=")[2] in recent
                or prefix in newest
            )

        store.listed.clear()
        assert index.collect(now + timedelta(hours=1)).mode == "reconcile"
        assert sorted(store.listed) == sorted(f"{zone}/" for zone in ZONES)


def test_an_old_partition_changed_is_seen_by_the_next_reconcile(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old = now.date() - timedelta(days=20)
    with open_store(tmp_path) as store:
        index = StorageIndex(store, CONTRACTS, reconcile_interval=timedelta(hours=1))
        index.collect(now)
        store.write_bytes(validated_key("pos", old, "late.csv"), b"12345")  # a backfill

        between = index.collect(now + timedelta(minutes=30))
        after = index.collect(now + timedelta(hours=1, minutes=1))

    def objects(snapshot: StorageSnapshot) -> int:
        return sum(t.objects for t in snapshot.totals() if t.zone == "validated")

    assert (between.mode, objects(between)) == ("incremental", 0)
    assert (after.mode, objects(after)) == ("reconcile", 1)


def test_an_old_newest_partition_deleted_since_the_reconcile_is_seen_gone_by_the_next_cycle(
    tmp_path: Path,
) -> None:
    """A dataset's newest published partition older than the recent days, deleted since the
    reconcile (a lifecycle rule expiring the zone), is gone from the next incremental
    collection: its age would otherwise live on in ``serve`` until the reconcile while a
    ``check`` beside it lists the zone empty, their shared alert resolved as no longer
    measured by one and opened again by the other every cycle."""
    now = datetime.now(UTC)
    older, old = now.date() - timedelta(days=30), now.date() - timedelta(days=20)
    with open_store(tmp_path) as store:
        for day in (older, old):
            key = delivery_manifest_key("pos", day, landing_key("pos", f"pos_{day:%Y%m%d}.csv"))
            store.write_bytes(key, b"{}")
        index = StorageIndex(store, CONTRACTS, reconcile_interval=timedelta(hours=1))
        index.collect(now)
        for info in list(store.list(validated_prefix("pos"))):  # expired, the oldest first
            store.delete(info.key)

        between = index.collect(now + timedelta(minutes=5))
        clock = _Clock(now + timedelta(minutes=5))
        served = evaluate([contract("pos")], store, clock, manifests=between)
        listed = evaluate([contract("pos")], store, clock)

    assert between.mode == "incremental"
    assert list(between.manifests("validated", "pos")) == []
    assert served.to_dict() == listed.to_dict()


def test_open_quarantines_by_reason_records_read_once_and_unreadable_ones_named(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    with open_store(tmp_path) as local:
        layout = Layout(local, random.Random(3), today)
        for n in range(6):
            layout.record("pos", today, f"bad{n}.csv")
        broken = quarantine_key("pos", today, "broken.csv") + ".quarantine.json"
        local.write_bytes(broken, b"{not json")
        store = Recording(local)
        index = StorageIndex(store, CONTRACTS)  # type: ignore[arg-type]
        with capture_logs() as logs:
            first = index.collect(now)
        store.read.clear()
        second = index.collect(now + timedelta(minutes=1))

    expected: dict[str, int] = {}
    for key in layout.keys:
        if key.endswith(".quarantine.json"):
            record = json.loads(local_bytes(tmp_path, key))
            if record.get("released_at") is None:
                expected[record["reason"]] = expected.get(record["reason"], 0) + 1
    expected[UNREADABLE_RECORD] = 1
    (pos,) = [t for t in first.totals() if (t.zone, t.dataset) == ("quarantine", "pos")]
    assert dict(pos.open_quarantines) == expected
    assert store.read == []  # unchanged records are not read again
    assert [t.open_quarantines for t in second.totals()] == [
        t.open_quarantines for t in first.totals()
    ]
    assert any(
        broken in str(record.get("event")) and record["level"] == "warning" for record in logs
    )


def local_bytes(root: Path, key: str) -> bytes:
    return (root / key).read_bytes()


def test_the_status_carries_storage_and_the_page_draws_it(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    today = now.date()
    with open_store(tmp_path) as store:
        store.write_bytes(landing_key("pos", f"pos_{today:%Y%m%d}.csv"), b"id\n1\n")
        store.write_bytes(partition_prefix("curated", "pos", today) + "part-0.parquet", b"p" * 99)
        layout = Layout(store, random.Random(0), today)
        layout.record("pos", today, "refused.csv")
        service = StatusService([CONTRACTS[0]], store, _Clock(now), interval=timedelta(minutes=1))
        snapshot = service.refresh()

    status = json.loads(snapshot.status)
    metrics = snapshot.metrics.decode()
    page = " ".join(re.sub(r"<[^>]+>", " ", render_page(status)).split())
    rows = {(e["zone"], e["dataset"]): e for e in status["storage"]["datasets"]}
    assert status["storage"]["mode"] == "reconcile"
    assert rows[("landing", "pos")]["objects"] == 1
    assert rows[("landing", "pos")]["arrivals"] == {today.isoformat(): 1}
    assert rows[("curated", "pos")]["bytes"] == 99
    assert 'etl_observability_objects{zone="curated",dataset="pos"} 1' in metrics
    assert f'etl_observability_arrived_objects{{zone="landing",dataset="pos",day="{today}"}} 1' in (
        metrics
    )
    assert "1 obj · 99 B" in page  # the curated zone's objects and size
    reasons = rows[("quarantine", "pos")]["open_quarantines"]
    for reason, count in reasons.items():
        assert f"quarantine: {count} open — {reason}" in page


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment


def test_the_monitors_read_published_partitions_from_the_index_not_whole_listings(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    with open_store(tmp_path) as local:
        fill(local, now.date())
        store = Recording(local)
        clock = _Clock(now)
        service = StatusService(list(CONTRACTS), store, clock, interval=timedelta(minutes=1))  # type: ignore[arg-type]
        service.refresh()
        store.listed.clear()
        clock.moment = now + timedelta(minutes=1)
        served = service.refresh()
        from observability.evaluation import evaluate

        listed = evaluate(CONTRACTS, local, clock)

    whole = {"validated/", "curated/"} | {
        prefix(c.dataset) for c in CONTRACTS for prefix in (validated_prefix, curated_prefix)
    }
    assert not whole & set(store.listed)
    assert served.evaluation is not None
    assert served.evaluation.to_dict() == listed.to_dict()


NESTED = (
    contract("pos"),
    contract("vendor"),
    replace(contract("vendor_eu"), source="vendor/eu", pattern="eu_{date:%Y%m%d}.csv"),
)


def drop_landing_files(store: ObjectStore, today: date) -> None:
    """Landing files of sources nested in one another, plus files no contract claims."""
    for n in range(4):
        store.write_bytes(
            landing_key("vendor", f"vendor_{today - timedelta(days=n):%Y%m%d}.csv"), b"v"
        )
    for n in range(2):
        day = today - timedelta(days=n)
        store.write_bytes(landing_key("vendor/eu", f"eu_{day:%Y%m%d}.csv"), b"e")
    store.write_bytes(landing_key("vendor", "notes.txt"), b"n")
    store.write_bytes(landing_key("pos", f"pos_{today:%Y%m%d}.csv"), b"p")
    store.write_bytes(landing_key("stranger", "x.csv"), b"x")


def test_landing_is_listed_once_a_cycle_and_its_files_equal_a_listing_of_their_own(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    with open_store(tmp_path) as local:
        fill(local, now.date())
        drop_landing_files(local, now.date())
        store = Recording(local)
        clock = _Clock(now)
        service = StatusService(list(NESTED), store, clock, interval=timedelta(minutes=1))  # type: ignore[arg-type]
        for minutes in (0, 1):  # a reconcile, then an incremental cycle
            clock.moment = now + timedelta(minutes=minutes)
            store.listed.clear()
            served = service.refresh()
            assert [p for p in store.listed if p.startswith("landing/")] == ["landing/"]
            assert served.evaluation is not None
            assert served.evaluation.to_dict() == evaluate(NESTED, local, clock).to_dict()
            snapshot = service.storage.snapshot
            assert snapshot is not None
            since = clock.moment.date() - timedelta(days=3)
            for each in NESTED:
                indexed = DatasetFacts(local, each, since=since, manifests=snapshot)
                alone = DatasetFacts(local, each, since=since, horizon=horizon(clock.moment))
                assert indexed.arrivals() == alone.arrivals()
                mine, theirs = (vars(f.zone("landing")) for f in (indexed, alone))
                assert {**mine, "horizon": None} == {**theirs, "horizon": None}
    days = DatasetFacts(local, NESTED[2], since=since, manifests=snapshot).arrivals()
    assert len(days) == 2  # vendor/eu's own files, not vendor's
    assert len(DatasetFacts(local, NESTED[1], since=since, manifests=snapshot).arrivals()) == 4


def whole_listing(store: ObjectStore) -> list[DatasetInventory]:
    """take_inventory's rows, less the storage index's own document (see storage_state)."""
    return [e for e in take_inventory(store) if (e.zone, e.dataset) != ("_state", "observability")]


def indexed(store: ObjectStore, now: datetime, **options: Any) -> tuple[list[Any], str, int]:
    index = StorageIndex(store, recent_days=RECENT_DAYS, previous=load_snapshot(store))
    entries, snapshot = indexed_inventory(index, now, **options)
    rows = [e for e in entries if (e.zone, e.dataset) != ("_state", "observability")]
    return rows, snapshot.mode, snapshot.listed


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_the_inventory_from_the_kept_index_equals_a_whole_listing(
    seed: int, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with open_store(tmp_path) as store:
        layout = Layout(store, random.Random(seed), now.date())
        layout.plant_known()
        for _ in range(60):
            layout.add(recent=False)
        first, mode, _ = indexed(store, now)
        assert (first, mode) == (whole_listing(store), "reconcile")

        layout.change_recent()
        later, mode, listed = indexed(store, now + timedelta(minutes=5))
        assert (later, mode) == (whole_listing(store), "incremental")
        assert listed < sum(e.objects for e in later)  # only what may have changed is listed

        forced, mode, _ = indexed(store, now + timedelta(minutes=6), full=True)
        assert (forced, mode) == (whole_listing(store), "reconcile")
        due, mode, _ = indexed(store, now + timedelta(hours=2))  # the reconcile is due
        assert (due, mode) == (whole_listing(store), "reconcile")


def test_the_kept_index_round_trips_and_a_broken_one_means_a_reconcile(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with open_store(tmp_path) as store:
        fill(store, now.date())
        snapshot = StorageIndex(store, CONTRACTS).collect(now)
        again = snapshot_from_json(snapshot_to_json(snapshot))
        assert dict(again.areas) == dict(snapshot.areas)
        assert (again.collected_at, again.reconciled_at, again.days) == (
            snapshot.collected_at,
            snapshot.reconciled_at,
            snapshot.days,
        )
        for broken in (b"{not json", b'{"version": 99}', b"[]", b'{"version": 1}'):
            store.write_bytes(STATE_KEY, broken)
            with capture_logs() as logs:
                assert load_snapshot(store) is None
            assert any(STATE_KEY in str(record.get("event")) for record in logs)
        store.delete(STATE_KEY)
        assert load_snapshot(store) is None


def test_a_kept_index_with_a_time_without_offset_means_a_reconcile(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with open_store(tmp_path) as store:
        fill(store, now.date())
        document = json.loads(snapshot_to_json(StorageIndex(store, CONTRACTS).collect(now)))
        document["reconciled_at"] = now.replace(tzinfo=None).isoformat()
        store.write_bytes(STATE_KEY, json.dumps(document).encode())
        with capture_logs() as logs:
            assert load_snapshot(store) is None
    said = " ".join(str(record.get("event")) for record in logs)
    assert "reconciled_at: expected an instant with a UTC offset" in said


def test_a_reconcile_dated_after_now_is_due_again(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with open_store(tmp_path) as store:
        fill(store, now.date())
        kept = StorageIndex(store, CONTRACTS).collect(now + timedelta(days=365))
        index = StorageIndex(store, CONTRACTS, previous=kept)
        with capture_logs() as logs:
            snapshot = index.collect(now)
    assert (snapshot.mode, snapshot.reconciled_at) == ("reconcile", now)
    assert any("after now" in str(record.get("event")) for record in logs)


def test_a_future_dated_manifest_is_kept_apart_and_does_not_hide_the_partitions_newest(
    lake: Any,
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    lake.validate("pos", today, 5, now - timedelta(hours=60), "landing/pos/pos_a.csv")
    lake.validate("pos", today, 5, datetime(2099, 1, 1, tzinfo=UTC), "landing/pos/pos_b.csv")
    snapshot = StorageIndex(lake.store, CONTRACTS).collect(now)
    kept = snapshot_from_json(snapshot_to_json(snapshot))  # as inventory keeps it

    for source in (snapshot, kept):
        (status,) = evaluate(CONTRACTS[:1], lake.store, _Clock(now), manifests=source).datasets
        (validated,) = [r for r in status.results if r.subject == "validated"]
        assert (validated.level, validated.state) == ("critical", "stale")  # 60h old
        assert validated.detail["key"] == delivery_manifest_key(
            "pos", today, "landing/pos/pos_a.csv"
        )
        future = delivery_manifest_key("pos", today, "landing/pos/pos_b.csv")
        assert validated.detail["future_key"] == future


def test_a_kept_index_written_before_future_dated_manifests_were_kept_apart_is_read(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    with open_store(tmp_path) as store:
        fill(store, now.date())
        snapshot = StorageIndex(store, CONTRACTS).collect(now)
        document = json.loads(snapshot_to_json(snapshot))
        for area in document["areas"]:
            del area[3]["ahead"], area[3]["ahead_key"]  # the fields of an older writer
        store.write_bytes(STATE_KEY, json.dumps(document).encode())
        loaded = load_snapshot(store)
    assert loaded is not None
    assert dict(loaded.areas) == dict(snapshot.areas)


def test_future_dated_manifests_are_counted_alike_from_the_index_and_from_a_listing(
    lake: Any,
) -> None:
    """``serve`` (the index) and ``check`` (a listing) say how many manifests are dated
    ahead the same way: one partition holding two counts two, not one partition."""
    now = datetime.now(UTC)
    today = now.date()
    lake.validate("pos", today, 5, now - timedelta(hours=1), "landing/pos/pos_a.csv")
    for name, year in (("pos_b.csv", 2098), ("pos_c.csv", 2099)):
        lake.validate("pos", today, 5, datetime(year, 1, 1, tzinfo=UTC), f"landing/pos/{name}")
    snapshot = StorageIndex(lake.store, CONTRACTS).collect(now)
    kept = snapshot_from_json(snapshot_to_json(snapshot))

    for source in (None, snapshot, kept):
        (status,) = evaluate(CONTRACTS[:1], lake.store, _Clock(now), manifests=source).datasets
        (validated,) = [r for r in status.results if r.subject == "validated"]
        assert validated.state == "future"
        assert validated.detail["future_objects"] == "2", source
        assert "2 validated objects dated after listing" in validated.why
