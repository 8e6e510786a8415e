"""The redelivery count of the Celery task: store records, removed once a unit ends."""

from __future__ import annotations

import contextlib
import pickle
from pathlib import Path

import pytest

from etl_core.config import URL
from etl_core.errors import ConfigError
from etl_core.runtime import RuntimeSettings
from etl_core.storage import open_store
from etl_core.work.celery import DeliveryCounter, DeliveryLimit, TooManyDeliveriesError
from etl_core.work.celery.config import celery_config
from etl_core.work.celery.deliveries import ProcessCounter


def test_each_redelivery_counts_from_two_and_forgetting_removes_the_record(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        counter = DeliveryCounter(store, "file_processing")
        assert [counter.redelivered("t-1") for _ in range(3)] == [2, 3, 4]
        assert counter.redelivered("t-2") == 2  # one count per message
        key = "_state/file_processing/deliveries/t-1.json"
        assert store.exists(key)
        counter.forget("t-1")
        counter.forget("t-1")  # twice is harmless
        assert not store.exists(key)
        assert counter.redelivered("t-1") == 2


def test_a_delivery_handed_back_is_not_counted(tmp_path: Path) -> None:
    # a worker shutting down gives back a unit that waited for a busy lease: no crash, so
    # its next delivery counts as the one handed back did (else it neared dead-lettering)
    with open_store(tmp_path) as store:
        counter = DeliveryCounter(store, "data_pipeline")
        counter.handed_back("first")  # the first delivery, handed back
        assert counter.redelivered("first") == 1
        assert counter.redelivered("crashed") == 2
        counter.handed_back("crashed")
        assert counter.redelivered("crashed") == 2


def test_an_unreadable_count_starts_again_instead_of_blocking_the_message(tmp_path: Path) -> None:
    with open_store(tmp_path) as store:
        store.write_bytes("_state/file_processing/deliveries/t.json", b"garbage")
        assert DeliveryCounter(store, "file_processing").redelivered("t") == 2


def test_the_counter_is_built_once_per_process_and_closed_with_it(tmp_path: Path) -> None:
    built: list[int] = []

    def open_counter(opened: contextlib.ExitStack) -> DeliveryCounter:
        built.append(1)
        return DeliveryCounter(opened.enter_context(open_store(tmp_path)), "data_pipeline")

    holder = ProcessCounter(DeliveryLimit(2, open_counter))
    assert holder.get() is holder.get()
    holder.close()
    holder.get()
    assert len(built) == 2


def test_the_error_names_the_task_and_pickles() -> None:
    error = TooManyDeliveriesError("abc", 4, 3)
    assert "task abc was delivered 4 times (limit 3)" in str(error)
    again = pickle.loads(pickle.dumps(error))
    assert (again.task_id, again.deliveries, str(again)) == ("abc", 4, str(error))


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_deliveries"):
        DeliveryLimit(0, lambda opened: None)  # type: ignore[arg-type,return-value]
    settings = RuntimeSettings(broker_url=URL("redis://127.0.0.1:6379/0"), task_max_deliveries=0)
    with pytest.raises(ConfigError) as caught:
        celery_config(settings, "file_processing")
    assert caught.value.fields == ("task_max_deliveries",)
