"""A crash at every write of a run (chunk, raw page, manifest, state, lease), then a resume:
the landed records equal the server's exactly, none missing, none twice."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from data_pipeline.ingest import lease_key
from etl_core.contracts import PROVENANCE_FIELDS as PROVENANCE
from etl_core.storage import LocalObjectStore, read_lease

from .conftest import cursor_items, customers_and_orders, stamp

SOURCE = """
[[endpoints]]
name = "items"
path = "/page"
dataset = "shop_items"
records_path = "data"
chunk_records = 4
[endpoints.pagination]
type = "page_number"
size_param = "per_page"
page_size = 6
[endpoints.incremental]
cursor_field = "updated_at"
param = "since"
"""


class Crash(BaseException):
    """The process dies here (nothing handles it, as nothing handles SIGKILL)."""


class CrashingStore(LocalObjectStore):
    """A local store whose ``crash_at``-th write never happens: the process dies first."""

    def __init__(self, *args: Any, crash_at: int) -> None:
        super().__init__(*args)
        self.crash_at = crash_at
        self.writes = 0
        self.keys: list[str] = []

    def _count(self, key: str) -> None:
        self.keys.append(key)
        if self.writes == self.crash_at:
            raise Crash
        self.writes += 1

    def open_write(self, key: str, **options: Any) -> Any:
        self._count(key)
        return super().open_write(key, **options)

    def put_if(self, key: str, data: Any, *, etag: str | None) -> str:
        self._count(key)
        return super().put_if(key, data, etag=etag)


def died_holding(store: LocalObjectStore) -> None:
    """The dead process's lease, as a new process finds it: its holder is gone. (In-process the
    holder is this very process, so it is marked released, its fencing token kept.)"""
    key = lease_key("shop", "items")
    lease = read_lease(store, key)
    if lease is not None:
        store.write_bytes(key, replace(lease, released=True).to_json())


def count_writes(workspace) -> int:
    store = CrashingStore(workspace.store_dir, crash_at=-1)
    workspace.store = store
    workspace.ingest("items")
    return store.writes


def crash_then_resume(workspace, root: Path, crash_at: int) -> None:
    """Ingest ``items`` into a fresh store at ``root`` crashing at write ``crash_at``, then
    resume it as a later run would, after the crashed process's lease is known dead."""
    root.mkdir()
    workspace.store_dir = root
    workspace.store = CrashingStore(root, crash_at=crash_at)
    with pytest.raises(Crash):
        workspace.ingest("items")
    workspace.store = LocalObjectStore(root)
    died_holding(workspace.store)
    workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")


@pytest.mark.slow
@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_crash_at_every_write_then_a_resume_lands_each_record_exactly_once(
    workspace, api, tmp_path, concurrency
) -> None:
    api.records = api.records[:22]
    workspace.source(f"concurrency = {concurrency}\n" + SOURCE, endpoints=("items",))
    total = count_writes(workspace)
    assert total > 15

    for crash_at in range(total):
        crash_then_resume(workspace, tmp_path / f"crash{crash_at}", crash_at)

        landed = workspace.landed("items")
        assert landed == api.records, f"crash at write {crash_at}"


@pytest.mark.slow
def test_a_crash_at_every_write_keeps_dead_letters_and_provenance_exactly_once(
    workspace, api, tmp_path
) -> None:
    api.records = api.records[:22]
    api.records[3] = "not a record"  # type: ignore[call-overload]
    api.records[15] = {"name": "no id"}
    good = [r for r in api.records if isinstance(r, dict) and "id" in r]
    source = SOURCE.replace(
        "chunk_records = 4", 'chunk_records = 4\nprovenance = true\nprimary_key = ["id"]'
    )
    workspace.source(source, endpoints=("items",))
    total = count_writes(workspace)

    for crash_at in range(total):
        crash_then_resume(workspace, tmp_path / f"crash{crash_at}", crash_at)

        landed = workspace.landed("items")
        where = f"crash at write {crash_at}"
        assert [{k: v for k, v in r.items() if not k.startswith("_")} for r in landed] == good, (
            where
        )
        for key in workspace.keys("landing/"):  # each record names the run that landed it
            for line in gzip.decompress(workspace.store.read_bytes(key)).splitlines():
                assert f"_{json.loads(line)['_run_id']}_" in key, where
        [key] = [k for k in workspace.keys("raw/") if k.endswith("_dead_letters.jsonl")]
        letters = [json.loads(line) for line in workspace.store.read_bytes(key).splitlines()]
        assert [(d["page"], d["position"]) for d in letters] == [(0, 3), (2, 3)], where


@pytest.mark.slow
@pytest.mark.parametrize("read_aside", [True, False])
def test_a_crash_at_every_write_then_a_resume_stamps_pages_read_aside_exactly_once(
    workspace, api, tmp_path, readings_taken, monkeypatch, read_aside
) -> None:
    taken = readings_taken
    # no incremental cursor: the pages go to the page reader and are stamped from its lines
    # (chunks of 13, pages of 6: two taken whole, a chunk boundary inside the third)
    api.records = api.records[:22]
    api.records[8] = {}  # refused (no id): its page is read by the walk
    api.records[13]["_http_url"] = "its own"  # replaced in place: its page read by the walk
    api.records[19]["nested"] = {"_http_page": "nested, kept"}
    good = [r for r in api.records if "id" in r]
    source = SOURCE.split("[endpoints.incremental]")[0].replace(
        "chunk_records = 4", 'chunk_records = 13\nprovenance = true\nprimary_key = ["id"]'
    )
    workspace.read_aside = read_aside
    workspace.source("concurrency = 3\n" + source, endpoints=("items",))
    total = count_writes(workspace)
    assert isinstance(workspace.store, CrashingStore)
    *_, done = (n for n, key in enumerate(workspace.store.keys) if key.endswith("/items.json"))
    assert total - done <= 3
    assert bool(taken) is read_aside

    for crash_at in range(done + 1):  # later: the window is done, a new run a new snapshot
        crash_then_resume(workspace, tmp_path / f"crash{crash_at}", crash_at)

        where = f"crash at write {crash_at}"
        landed = workspace.landed("items")
        assert [{k: v for k, v in r.items() if k not in PROVENANCE} for r in landed] == [
            {k: v for k, v in r.items() if k != "_http_url"} for r in good
        ], where
        pages = [api.records.index(r) // 6 for r in good]
        assert [r["_http_page"] for r in landed] == pages, where
        assert [r["_http_url"].split("page=")[1].split("&")[0] for r in landed] == [
            str(p + 1) for p in pages
        ], where
        nested = landed[good.index(api.records[19])]["nested"]
        assert nested == {"_http_page": "nested, kept"}, where
        assert list(landed[0])[-4:] == list(PROVENANCE), where


CHILD = customers_and_orders("items", "shop_items", 'primary_key = ["order"]\nchunk_records = 2')

WINDOWS = cursor_items(
    'primary_key = ["id"]\nchunk_records = 4\nparams = { per_page = 3 }',
    'end_param = "until"\nwindow = "10m"',
)


@pytest.mark.slow
def test_a_crash_at_every_write_of_a_child_endpoint_then_a_resume_lands_each_once(
    workspace, api, tmp_path
) -> None:
    workspace.source(CHILD, endpoints=("customers", "items"))
    orders = [o for c in api.customers for o in api.orders[c["id"]]]
    total = count_writes(workspace)
    assert isinstance(workspace.store, CrashingStore)
    *_, done = (n for n, key in enumerate(workspace.store.keys) if key.endswith("/items.json"))
    assert total - done <= 3

    for crash_at in range(0, done + 1, 2):  # later: the window is done, a new run a new snapshot
        crash_then_resume(workspace, tmp_path / f"crash{crash_at}", crash_at)

        assert workspace.landed("items") == orders, f"crash at write {crash_at}"


@pytest.mark.slow
def test_a_crash_at_every_write_of_bounded_windows_then_a_resume_lands_each_once(
    workspace, api, tmp_path, monkeypatch
) -> None:
    workspace.source(WINDOWS, endpoints=("items",))
    ingest = workspace.ingest  # every run the same backfill: four windows of ten minutes
    monkeypatch.setattr(
        workspace,
        "ingest",
        lambda endpoint, **kw: ingest(endpoint, since=stamp(0), until=stamp(40), **kw),
    )
    inside = [r for r in api.records if r["updated_at"] < stamp(40)]
    total = count_writes(workspace)
    assert workspace.landed("items") == inside

    for crash_at in range(0, total, 2):
        crash_then_resume(workspace, tmp_path / f"crash{crash_at}", crash_at)

        assert workspace.landed("items") == inside, f"crash at write {crash_at}"
