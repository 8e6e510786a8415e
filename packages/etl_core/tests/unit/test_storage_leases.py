"""The lease document and holder rules (no store): encoding, legacy documents, freedom."""

from __future__ import annotations

import json
import os
import pickle

from etl_core.errors import FatalError, LeaseError, LeaseLostError, StorageError
from etl_core.storage import Holder, LeaseState, this_holder

NOW = 1_800_000_000.0


def held(holder: Holder, *, expires_at: float = NOW + 60, released: bool = False) -> LeaseState:
    return LeaseState(holder, 3, "transform", NOW, expires_at, released)


def test_a_lease_document_reads_back_as_written() -> None:
    state = held(this_holder())

    assert LeaseState.from_json(state.to_json(), "k") == state


def test_a_lease_is_free_when_released_or_expired_and_held_otherwise() -> None:
    other = Holder("h:1:x", "another-host", 1, "boot/pid:[1]")

    assert not held(other).is_free(NOW)
    assert held(other, released=True).is_free(NOW)
    assert held(other, expires_at=NOW).is_free(NOW)


def test_a_legacy_lease_is_held_by_its_host_and_pid_until_it_expires() -> None:
    legacy = {"host": "old", "pid": 7, "token": "ab12", "purpose": "backfill", "expires_at": NOW}

    state = LeaseState.from_json(json.dumps(legacy).encode(), "k")

    assert state.holder == Holder("", "old", 7, "")
    assert (state.token, state.describe_holder()) == (0, "old:7 (backfill)")
    assert not state.is_free(NOW - 1)
    assert state.is_free(NOW)


def test_an_unreadable_lease_document_counts_as_free_with_token_zero() -> None:
    for data in (
        b"{not json",
        b"[]",
        b'{"holder": {}}',
        b'{"expires_at": "soon"}',
        b'{"expires_at": NaN}',
        b'{"expires_at": "inf"}',
        b'{"expires_at": 1e999}',
    ):
        state = LeaseState.from_json(data, "k")
        assert state.is_free(NOW)
        assert state.token == 0


def test_only_a_holder_of_this_host_and_namespace_is_judged_by_its_pid() -> None:
    me = this_holder()

    assert Holder("x", me.host, me.pid, me.namespace).is_gone() == bool(me.namespace)
    assert not Holder(me.id, me.host, me.pid, me.namespace).is_gone()
    assert not Holder("x", "another-host", me.pid, me.namespace).is_gone()
    assert not Holder("x", me.host, me.pid, "another-boot/pid:[1]").is_gone()
    assert not Holder("x", me.host, me.pid, "").is_gone()
    assert not Holder("x", me.host, os.getppid(), me.namespace).is_gone()  # alive


def test_an_owner_named_host_pid_is_a_holder_judged_by_expiry_only() -> None:
    holder = Holder.from_dict("worker-1:4242")

    assert holder == Holder("worker-1:4242", "worker-1", 4242, "")
    assert not holder.is_gone()


def test_lease_errors_are_storage_errors_and_pickle_with_their_fields() -> None:
    error = LeaseLostError("lost", key="k", holder="h:1 (transform)", token=4, url="file:///s")

    assert isinstance(error, LeaseError)
    assert isinstance(error, StorageError)
    assert isinstance(error, FatalError)
    restored = pickle.loads(pickle.dumps(error))
    assert (restored.key, restored.holder, restored.token, restored.url) == (
        "k",
        "h:1 (transform)",
        4,
        "file:///s",
    )
