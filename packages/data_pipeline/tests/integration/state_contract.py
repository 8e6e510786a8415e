"""The state store contract: checks every :class:`~data_pipeline.ingest.StateStore` passes.

Each check takes a state store and an object store (for the endpoint leases) and uses its
own endpoint, so the checks share one database. ``test_ingest_state`` runs them on the
object store in-process and, through ``contract_worker.py``, on the database in a process of
their own (Django is configured once per process).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from data_pipeline.ingest import EndpointState, StateStore, Window, lease_key
from etl_core.errors import LeaseLostError
from etl_core.storage import ObjectStore, acquire_lease

Check = Callable[[StateStore, ObjectStore], None]


def window(**changes: object) -> Window:
    base = Window(unit="shop/x/incremental", run="r1", dt=date(2026, 3, 1), start="5")
    return Window(**{**base.__dict__, **changes})


def a_new_endpoint_has_an_empty_state(states: StateStore, store: ObjectStore) -> None:
    assert states.load("shop", "fresh") == EndpointState("shop", "fresh")


def a_checkpoint_keeps_the_window_and_adds_the_records(
    states: StateStore, store: ObjectStore
) -> None:
    lease = acquire_lease(store, lease_key("shop", "checkpoint"), ttl=60)
    opened = window(
        chunk=3,
        records=12,
        page={"params": {"page": "4"}},
        boundary=["[7]"],
        dead_letters=2,
        profile={"records": 12, "fields": {"id": {"int": 12}}, "truncated": False},
    )
    state = EndpointState("shop", "checkpoint", cursor="4", window=opened)

    states.save(lease, state, landed=12, finished=False)
    states.save(lease, state, landed=5, finished=False)

    found = states.load("shop", "checkpoint")
    assert found.window == opened
    assert found.cursor == "4"
    assert found.records_total == 17
    assert found.last_success_at is None


def finishing_moves_the_cursor_and_resets_failures(states: StateStore, store: ObjectStore) -> None:
    lease = acquire_lease(store, lease_key("shop", "finish"), ttl=60)
    states.fail("shop", "finish", "HTTP 500")
    states.fail("shop", "finish", "HTTP 502")
    assert states.load("shop", "finish").consecutive_failures == 2

    last_run = {
        "run": "r1",
        "dt": "2026-03-01",
        "records": 3,
        "dead_letters": 1,
        "drift": {"new_fields": ["colour"], "missing_fields": [], "type_changes": []},
    }
    done = EndpointState("shop", "finish", cursor="9", boundary=["[9]"], last_run=last_run)
    states.save(lease, done, landed=3, finished=True)

    found = states.load("shop", "finish")
    assert found.cursor == "9"
    assert found.boundary == ["[9]"]
    assert found.last_run == last_run
    assert found.window is None
    assert found.consecutive_failures == 0
    assert found.last_error == ""
    assert found.last_success_at is not None


def a_failure_keeps_the_position(states: StateStore, store: ObjectStore) -> None:
    lease = acquire_lease(store, lease_key("shop", "failure"), ttl=60)
    state = EndpointState("shop", "failure", window=window(chunk=2))
    states.save(lease, state, landed=8, finished=False)

    states.fail("shop", "failure", "not JSON")

    found = states.load("shop", "failure")
    assert found.window == window(chunk=2)
    assert found.last_error == "not JSON"
    assert found.consecutive_failures == 1


def a_lease_taken_over_cannot_save(states: StateStore, store: ObjectStore) -> None:
    key = lease_key("shop", "fenced")
    stale = acquire_lease(store, key, ttl=60)
    stale.release()
    acquire_lease(store, key, ttl=60)  # the successor

    try:
        states.save(stale, EndpointState("shop", "fenced", cursor="1"), landed=1, finished=True)
    except LeaseLostError:
        pass
    else:
        raise AssertionError("a stale lease saved the state")
    assert states.load("shop", "fenced").cursor is None


CHECKS: list[Check] = [
    a_new_endpoint_has_an_empty_state,
    a_checkpoint_keeps_the_window_and_adds_the_records,
    finishing_moves_the_cursor_and_resets_failures,
    a_failure_keeps_the_position,
    a_lease_taken_over_cannot_save,
]
