"""The state store contract on both stores, and one run per endpoint at a time."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from data_pipeline.errors import EndpointBusyError
from data_pipeline.ingest import ObjectStateStore, lease_key
from etl_core.storage import LocalObjectStore, acquire_lease

from .database_contract import migrated, passed_checks
from .state_contract import CHECKS, Check


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_object_state_store_contract(check: Check, tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    check(ObjectStateStore(store), store)


@pytest.mark.slow
def test_database_state_store_contract(migrated_sqlite: str, tmp_path: Path) -> None:
    assert passed_checks("state", migrated_sqlite, tmp_path) == len(CHECKS)


@pytest.mark.postgres
@pytest.mark.slow
def test_database_state_store_contract_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    assert passed_checks("state", migrated(postgres_url, tmp_path), tmp_path) == len(CHECKS)


def test_two_runs_of_one_endpoint_never_overlap(workspace) -> None:
    workspace.source(
        '[[endpoints]]\nname = "items"\npath = "/page"\ndataset = "shop_items"\n'
        'records_path = "data"\n[endpoints.pagination]\ntype = "page_number"\n',
        endpoints=("items",),
    )
    holder = acquire_lease(workspace.store, lease_key("shop", "items"), ttl=60, purpose="other run")

    with holder, pytest.raises(EndpointBusyError, match=r"being ingested by .*other run"):
        workspace.ingest("items")

    assert workspace.keys("landing/") == []


def test_a_window_whose_state_cannot_be_saved_leaves_no_writer_thread_running(
    workspace, api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.records = api.records[:10]
    workspace.source(
        '[[endpoints]]\nname = "items"\npath = "/page"\ndataset = "shop_items"\n'
        'records_path = "data"\nchunk_records = 4\n[endpoints.pagination]\n'
        'type = "page_number"\nsize_param = "per_page"\npage_size = 6\n',
        endpoints=("items",),
    )

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("state store down")

    monkeypatch.setattr(ObjectStateStore, "save", failing)
    for _ in range(3):  # a worker retrying the unit
        with pytest.raises(RuntimeError, match="state store down"):
            workspace.ingest("items")

    running = [t.name for t in threading.enumerate() if t.name.startswith("ingest-writer")]
    assert running == []
    assert workspace.keys("landing/") == []
