"""Incremental cursors, bounded windows and parent/child endpoints against the real API."""

from __future__ import annotations

import gzip
import json

import pytest

from data_pipeline.errors import ApiUnavailableError
from data_pipeline.ingest import ObjectStateStore
from etl_core.contracts import load_contracts
from etl_core.errors import ConfigError

from .conftest import Fault, cursor_items, customers_and_orders, stamp

INCREMENTAL = cursor_items("chunk_records = 4", 'end_param = "until"\n{extra}')
"""The cursor endpoint, with ``{extra}`` lines for its ``[endpoints.incremental]``."""

CHILD = customers_and_orders(extra="chunk_records = 3")


def test_until_without_an_end_param_is_refused_before_any_request(workspace, api) -> None:
    without_end = INCREMENTAL.format(extra="").replace('end_param = "until"\n', "")
    workspace.source(without_end, endpoints=("items",))

    with pytest.raises(ConfigError, match=r"incremental\.end_param") as raised:
        workspace.ingest("items", since=stamp(1), until=stamp(10))

    assert raised.value.errors[0].field == "items.incremental.end_param"
    assert api.requests == []
    assert workspace.keys("") == []


def state(workspace):
    return ObjectStateStore(workspace.store).load("shop", "items")


def landed_by(workspace, run: str) -> list[dict]:
    """The records of the chunks one run landed (its run id is in their names)."""
    records = []
    for key in workspace.keys("landing/"):
        if f"_{run}_" in key.rpartition("/")[2]:
            for line in gzip.decompress(workspace.store.read_bytes(key)).splitlines():
                records.append(json.loads(line))
    return records


@pytest.mark.parametrize(
    "pagination",
    ['type = "cursor"\ncursor_path = "meta.next"', 'type = "offset"\npage_size = 4'],
    ids=["cursor", "offset"],
)
def test_a_second_run_fetches_only_what_is_new(workspace, api, pagination) -> None:
    body = INCREMENTAL.format(extra="").replace(
        'type = "cursor"\ncursor_path = "meta.next"', pagination
    )
    path = "/cursor" if "cursor" in pagination else "/offset"
    body = body.replace('path = "/cursor"', f'path = "{path}"').replace(
        'records_path = "data"', f'records_path = "{"data" if path == "/cursor" else "items"}"'
    )
    workspace.source("concurrency = 3\n" + body, endpoints=("items",))
    workspace.ingest("items")
    committed = state(workspace).cursor
    assert committed == stamp(47)
    assert state(workspace).window is None
    new = [api.record(i) for i in range(48, 53)]
    api.records += new
    before = len(api.requests)

    [outcome] = workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")

    second = [r["query"] for r in api.requests[before:]]
    assert second, "the second run requested nothing"
    assert all(query["since"] == committed for query in second)  # from the committed mark on
    assert any("cursor" not in q and q.get("offset", "0") == "0" for q in second)  # page one
    # what the server answered: from the mark on (47 again, then 48..52), nothing before it
    start = "offset" if path == "/offset" else "cursor"
    served = {
        r["id"]
        for q in second
        for r in api.window(q)[int(q.get(start, 0)) :][: int(q.get("limit", 10))]
    }
    assert served == {47, 48, 49, 50, 51, 52}
    assert outcome.records == 5  # record 47 came again but landed before: skipped
    assert landed_by(workspace, "20260302T000000Z-bbbbbb") == new
    assert workspace.landed("items") == api.records  # no gap, no duplicate
    assert state(workspace).cursor == stamp(52)


def test_records_sharing_the_mark_that_arrive_later_still_land(workspace, api) -> None:
    workspace.source(INCREMENTAL.format(extra=""), endpoints=("items",))
    workspace.ingest("items")
    late = {"id": 1000, "name": "late", "updated_at": stamp(47)}
    api.records.append(late)

    [outcome] = workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")

    assert outcome.records == 1
    assert workspace.landed("items")[-1] == late


def test_the_lookback_resends_a_little_before_the_mark(workspace, api) -> None:
    workspace.source(INCREMENTAL.format(extra='lookback = "10m"'), endpoints=("items",))
    workspace.ingest("items")

    workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")

    assert api.requests[-1]["query"]["since"] == stamp(37)


def test_the_initial_value_starts_the_first_run(workspace, api) -> None:
    extra = f'initial_value = "{stamp(40)}"'
    workspace.source(INCREMENTAL.format(extra=extra), endpoints=("items",))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records[39:]


def test_full_refresh_starts_again_from_the_initial_value(workspace, api) -> None:
    workspace.source(INCREMENTAL.format(extra=""), endpoints=("items",))
    workspace.ingest("items")

    [outcome] = workspace.ingest("items", full_refresh=True, run_id="20260302T000000Z-bbbbbb")

    assert outcome.records == len(api.records)
    assert "since" not in api.requests[-1]["query"]


def test_a_bounded_range_split_in_windows_lands_each_in_its_partition(workspace, api) -> None:
    workspace.source(INCREMENTAL.format(extra='window = "10m"'), endpoints=("items",))

    outcomes = workspace.ingest("items", since=stamp(1), until=stamp(31))

    assert [o.records for o in outcomes] == [10, 10, 10]
    assert workspace.landed("items") == api.records[0:30]
    assert len({o.run for o in outcomes}) == 3
    assert state(workspace).cursor == stamp(30)
    contracts = load_contracts(workspace.config)
    assert {contracts.match(k)[1].isoformat() for k in workspace.keys("landing/")} == {"2026-03-01"}


def test_a_bounded_window_never_moves_the_mark_backwards(workspace, api) -> None:
    workspace.source(INCREMENTAL.format(extra=""), endpoints=("items",))
    workspace.ingest("items")

    workspace.ingest("items", since=stamp(1), until=stamp(5), run_id="20260302T000000Z-bbbbbb")

    assert state(workspace).cursor == stamp(47)


@pytest.mark.parametrize("initial", [False, True], ids=["after_a_mark", "after_initial_value"])
def test_a_bounded_window_past_the_mark_leaves_no_gap_for_the_incremental_run(
    workspace, api, caplog, initial
) -> None:
    extra = f'initial_value = "{stamp(1)}"' if initial else ""
    workspace.source(INCREMENTAL.format(extra=extra), endpoints=("items",))
    if not initial:  # the mark at stamp(9): everything before stamp(10) landed
        workspace.ingest("items", until=stamp(10), run_id="20260301T000000Z-aaaaaa")
    mark = state(workspace).cursor

    with caplog.at_level("WARNING", logger="data_pipeline.ingest.flow"):
        workspace.ingest(
            "items", since=stamp(20), until=stamp(30), run_id="20260302T000000Z-bbbbbb"
        )

    assert state(workspace).cursor == mark  # not moved past records no run landed
    (said,) = [r.getMessage() for r in caplog.records if "past" in r.getMessage()]
    assert f"--since {stamp(20)}" in said
    workspace.ingest("items", run_id="20260303T000000Z-cccccc")
    landed = {record["id"] for record in workspace.landed("items")}
    assert landed == {record["id"] for record in api.records}  # stamp(10)..stamp(19) too
    assert state(workspace).cursor == stamp(47)


@pytest.mark.parametrize("initial", [False, True], ids=["after_a_mark", "after_initial_value"])
def test_the_gap_filled_as_the_warning_says_lets_the_mark_pass_the_window_landed_past_it(
    workspace, api, caplog, initial
) -> None:
    extra = f'initial_value = "{stamp(1)}"' if initial else ""
    workspace.source(INCREMENTAL.format(extra=extra), endpoints=("items",))
    if not initial:
        workspace.ingest("items", until=stamp(10), run_id="20260301T000000Z-aaaaaa")
    with caplog.at_level("WARNING", logger="data_pipeline.ingest.flow"):
        workspace.ingest(
            "items", since=stamp(20), until=stamp(30), run_id="20260302T000000Z-bbbbbb"
        )
    (said,) = [r.getMessage() for r in caplog.records if "past" in r.getMessage()]
    since, until = said.rpartition("--since ")[2].split(" --until ")

    workspace.ingest("items", since=since, until=until, run_id="20260303T000000Z-cccccc")
    workspace.ingest("items", run_id="20260304T000000Z-dddddd")

    landed = sorted(record["id"] for record in workspace.landed("items"))
    assert landed == sorted(record["id"] for record in api.records)  # each once
    assert state(workspace).cursor == stamp(47)


def test_a_window_whose_end_is_still_to_come_is_not_trusted_to_its_end_once_the_gap_is_filled(
    workspace, api, caplog
) -> None:
    workspace.source(INCREMENTAL.format(extra=""), endpoints=("items",))
    workspace.ingest("items", until=stamp(10), run_id="20260301T000000Z-aaaaaa")
    with caplog.at_level("WARNING", logger="data_pipeline.ingest.flow"):
        workspace.ingest(
            "items", since=stamp(20), until="2999-01-01T00:00:00Z", run_id="20260302T000000Z-bbbbbb"
        )
    (said,) = [r.getMessage() for r in caplog.records if "past" in r.getMessage()]
    since, until = said.rpartition("--since ")[2].split(" --until ")
    api.records.append(api.record(48))  # within that window, after it ran
    workspace.ingest("items", since=since, until=until, run_id="20260303T000000Z-cccccc")
    workspace.ingest("items", run_id="20260304T000000Z-dddddd")

    assert 48 in {record["id"] for record in workspace.landed("items")}  # not skipped


def test_windows_of_a_range_run_in_order_move_the_mark_along(workspace, api) -> None:
    workspace.source(
        INCREMENTAL.format(extra=f'initial_value = "{stamp(1)}"\nwindow = "10m"'),
        endpoints=("items",),
    )
    workspace.ingest("items", since=stamp(1), until=stamp(21))
    assert state(workspace).cursor == stamp(20)
    workspace.ingest("items", since=stamp(21), until=stamp(31), run_id="20260302T000000Z-bbbbbb")
    assert state(workspace).cursor == stamp(30)  # it starts where the last window ended


def test_a_child_endpoint_is_requested_once_per_parent_record(workspace, api) -> None:
    workspace.source(CHILD, endpoints=("customers", "orders"))

    [outcome] = workspace.ingest("orders")

    expected = [order for customer in api.customers for order in api.orders[customer["id"]]]
    assert workspace.landed("orders") == expected
    assert outcome.records == len(expected)
    manifest = next(k for k in workspace.keys("raw/") if k.endswith("_manifest.json"))
    roles = [p["role"] for p in json.loads(workspace.store.read_bytes(manifest))["pages"]]
    assert roles[0] == "parent"
    assert roles.count("parent") == 1


def test_a_child_endpoint_resumes_inside_the_parent_it_stopped_at(workspace, api) -> None:
    workspace.source("max_attempts = 1\n" + CHILD, endpoints=("customers", "orders"))
    api.faults.append(Fault("/customers/c3/orders", 500, after=1))
    with pytest.raises(ApiUnavailableError):
        workspace.ingest("orders")
    stopped = ObjectStateStore(workspace.store).load("shop", "orders").window
    assert stopped is not None
    assert stopped.records == 3  # c1 and c2 landed; c3 failed

    [outcome] = workspace.ingest("orders", run_id="20260302T000000Z-bbbbbb")

    expected = [order for customer in api.customers for order in api.orders[customer["id"]]]
    assert outcome.resumed
    assert workspace.landed("orders") == expected


def test_rerunning_a_backfill_that_failed_midway_lands_each_window_once(workspace, api) -> None:
    extra = 'window = "10m"'
    workspace.source("max_attempts = 1\n" + INCREMENTAL.format(extra=extra), endpoints=("items",))
    api.faults.append(Fault("/cursor", 500, after=1))  # the second window's request
    with pytest.raises(ApiUnavailableError):
        workspace.ingest("items", since=stamp(1), until=stamp(31))

    outcomes = workspace.ingest(
        "items", since=stamp(1), until=stamp(31), run_id="20260302T000000Z-bbbbbb"
    )

    # the unfinished second window is finished first, then each window is skipped or run
    assert [(o.unit.rpartition("..")[2], o.resumed, o.skipped) for o in outcomes] == [
        (stamp(21), True, ""),
        (stamp(11), False, "ingested before"),
        (stamp(21), False, "ingested before"),
        (stamp(31), False, ""),
    ]
    assert workspace.landed("items") == api.records[0:30]


def test_full_refresh_fetches_a_finished_window_again(workspace, api) -> None:
    workspace.source(INCREMENTAL.format(extra=""), endpoints=("items",))
    workspace.ingest("items", since=stamp(1), until=stamp(11))

    [again] = workspace.ingest(
        "items",
        since=stamp(1),
        until=stamp(11),
        full_refresh=True,
        run_id="20260302T000000Z-bbbbbb",
    )

    assert again.records == 10


def test_until_alone_starts_at_the_initial_value_in_windows(workspace, api) -> None:
    extra = f'initial_value = "{stamp(5)}"\nwindow = "2m"'
    workspace.source(INCREMENTAL.format(extra=extra), endpoints=("items",))

    outcomes = workspace.ingest("items", until=stamp(10))

    assert [record["id"] for record in workspace.landed("items")] == list(range(5, 10))
    assert [o.unit.rpartition("/")[2] for o in outcomes] == [
        f"{stamp(5)}..{stamp(7)}",
        f"{stamp(7)}..{stamp(9)}",
        f"{stamp(9)}..{stamp(10)}",
    ]
    assert state(workspace).cursor == stamp(9)


def test_until_alone_without_an_initial_value_lands_the_history_from_the_first_record(
    workspace, api
) -> None:
    workspace.source(INCREMENTAL.format(extra=""), endpoints=("items",))

    [outcome] = workspace.ingest("items", until=stamp(10))

    assert [record["id"] for record in workspace.landed("items")] == list(range(1, 10))
    assert "since" not in api.requests[0]["query"]
    assert outcome.unit == f"shop/items/..{stamp(10)}"


def test_until_alone_with_windows_but_no_initial_value_is_refused_naming_it(workspace, api) -> None:
    workspace.source(INCREMENTAL.format(extra='window = "2m"'), endpoints=("items",))

    with pytest.raises(ConfigError, match="without --since") as raised:
        workspace.ingest("items", until=stamp(10))

    assert raised.value.errors[0].field == "items.incremental.initial_value"
    assert api.requests == []


def test_until_alone_not_after_the_initial_value_is_refused_naming_it(workspace, api) -> None:
    workspace.source(
        INCREMENTAL.format(extra=f'initial_value = "{stamp(10)}"'), endpoints=("items",)
    )

    with pytest.raises(ConfigError, match=r"is not after incremental\.initial_value"):
        workspace.ingest("items", until=stamp(5))

    assert api.requests == []


def test_until_alone_for_a_cursor_that_is_no_time_is_refused_naming_until(workspace, api) -> None:
    extra = 'type = "int"\ninitial_value = "5"'
    workspace.source(INCREMENTAL.format(extra=extra), endpoints=("items",))

    with pytest.raises(ConfigError, match=r"^--until needs an incremental cursor of type time"):
        workspace.ingest("items", until="10")

    assert api.requests == []
