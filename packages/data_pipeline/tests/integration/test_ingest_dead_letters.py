"""Dead letters: pages that are not JSON and items that cannot land are set aside beside the
run manifest, counted, and the run goes on; a resumed run lists each once."""

from __future__ import annotations

import json

import pytest

from data_pipeline.errors import ApiResponseError, ApiUnavailableError
from data_pipeline.ingest import ObjectStateStore
from etl_core.testing import capture_metrics

from .conftest import Fault, customers_and_orders, stamp

PAGED = """
[[endpoints]]
name = "items"
path = "/page"
dataset = "shop_items"
records_path = "data"
primary_key = ["id"]
chunk_records = 10
[endpoints.pagination]
type = "page_number"
size_param = "per_page"
page_size = 5
"""

CURSOR = """
[[endpoints]]
name = "items"
path = "/cursor"
dataset = "shop_items"
records_path = "data"
[endpoints.pagination]
type = "cursor"
cursor_path = "meta.next"
"""


def dead_letters(workspace) -> list[dict]:
    [key] = [k for k in workspace.keys("raw/") if k.endswith("_dead_letters.jsonl")]
    return [json.loads(line) for line in workspace.store.read_bytes(key).splitlines()]


def manifest(workspace) -> dict:
    [key] = [k for k in workspace.keys("raw/") if k.endswith("_manifest.json")]
    return json.loads(workspace.store.read_bytes(key))


def test_a_page_that_is_not_json_is_set_aside_and_the_walk_goes_on(workspace, api) -> None:
    workspace.source(PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 200, body=b"<html>oops</html>", after=4))

    [outcome] = workspace.ingest("items")

    assert outcome.dead_letters == 1
    assert workspace.landed("items") == api.records[:20] + api.records[25:]
    [letter] = dead_letters(workspace)
    assert letter["reason"] == "not_json"
    assert (letter["page"], letter["position"]) == (4, None)
    assert letter["raw_text"] == "<html>oops</html>"
    assert "page=5" in letter["url"]
    assert "is not JSON" in letter["error"]
    document = manifest(workspace)
    assert document["dead_letters"] == 1
    assert document["status"] == "complete"
    assert 4 in [p["page"] for p in document["pages"]]  # archived byte for byte all the same
    assert ObjectStateStore(workspace.store).load("shop", "items").last_run["dead_letters"] == 1


@pytest.mark.parametrize("read_aside", [True, False], ids=["read-aside", "walk-reads"])
@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'"down for maintenance"', "the body is a string"),
        (b"42", "the body is a number"),
        (b"[[1, 2], [3]]", "the body is an array"),
    ],
)
def test_a_body_the_records_path_cannot_be_followed_in_is_set_aside_not_an_empty_page(
    workspace, api, read_aside, body, said
) -> None:
    workspace.read_aside = read_aside
    workspace.source(PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 200, body=body, after=2))

    [outcome] = workspace.ingest("items")

    [letter] = dead_letters(workspace)
    assert letter["reason"] == "not_an_array"
    assert said in letter["error"]
    assert "'data'" in letter["error"]
    assert outcome.dead_letters == 1
    assert workspace.landed("items") == api.records[:10] + api.records[15:]


@pytest.mark.parametrize("read_aside", [True, False], ids=["read-aside", "walk-reads"])
def test_an_empty_array_body_is_an_empty_page_not_a_dead_letter(workspace, api, read_aside) -> None:
    # PHP's json_encode writes an empty map as []: an API's empty last page may be one
    workspace.read_aside = read_aside
    workspace.source(PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 200, body=b"[]", after=2))

    [outcome] = workspace.ingest("items")

    assert outcome.dead_letters == 0
    assert not [k for k in workspace.keys("raw/") if k.endswith("_dead_letters.jsonl")]
    assert workspace.landed("items") == api.records[:10]  # the walk ends at the empty page


def test_items_that_are_not_objects_or_lack_the_primary_key_are_set_aside(workspace, api) -> None:
    workspace.source(PAGED, endpoints=("items",))
    api.records[2] = "just text"  # type: ignore[call-overload]
    api.records[7] = {"name": "no id", "updated_at": "2026-03-01T00:00:00Z"}
    api.records[11] = [1, 2]  # type: ignore[call-overload]
    good = [r for i, r in enumerate(api.records) if i not in (2, 7, 11)]

    [outcome] = workspace.ingest("items")

    assert workspace.landed("items") == good
    assert outcome.records == len(good)
    assert outcome.dead_letters == 3
    letters = dead_letters(workspace)
    assert [(d["reason"], d["page"], d["position"]) for d in letters] == [
        ("not_an_object", 0, 2),
        ("missing_primary_key", 1, 2),
        ("not_an_object", 2, 1),
    ]
    assert letters[0]["raw_text"] == '"just text"'
    assert "'id'" in letters[1]["error"]
    assert json.loads(letters[2]["raw_text"]) == [1, 2]


def test_a_records_path_that_is_not_an_array_sets_the_pages_aside_and_keeps_the_window_open(
    workspace, api
) -> None:
    workspace.source(
        PAGED.replace('records_path = "data"', 'records_path = "meta"'), endpoints=("items",)
    )

    with pytest.raises(ApiResponseError, match=r"pages 0, 1, 2 \(.*stays open at page 0"):
        workspace.ingest("items")  # three in a row: the walk asks no more (bounded)

    assert workspace.landed("items") == []
    letters = dead_letters(workspace)
    assert [(d["reason"], d["page"]) for d in letters] == [("not_an_array", n) for n in range(3)]
    assert "'meta'" in letters[0]["error"]  # the path to fix is named
    assert ObjectStateStore(workspace.store).load("shop", "items").window.raw_page == 0


def test_a_cursor_walk_stays_open_at_a_page_it_cannot_read(workspace, api) -> None:
    workspace.source(CURSOR, endpoints=("items",))
    api.faults.append(Fault("/cursor", 200, body=b"not json", after=2))

    with pytest.raises(ApiResponseError, match=r"page 2 of .* stays open") as raised:
        workspace.ingest("items")  # the next cursor was in that body

    assert raised.value.endpoint == "items"
    assert workspace.landed("items") == api.records[:20]
    assert [(d["reason"], d["page"]) for d in dead_letters(workspace)] == [("not_json", 2)]
    assert ObjectStateStore(workspace.store).load("shop", "items").window.raw_page == 2

    [outcome] = workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")

    assert (outcome.resumed, outcome.dead_letters) == (True, 0)
    assert workspace.landed("items") == api.records
    assert dead_letters(workspace) == []  # read this time: no longer set aside


def test_a_first_page_it_cannot_read_keeps_the_window_open_at_the_first_request(
    workspace, api
) -> None:
    workspace.source(CURSOR, endpoints=("items",))
    api.faults.append(Fault("/cursor", 200, body=b"<html>busy</html>"))

    with pytest.raises(ApiResponseError, match=r"page 0 of .* stays open"):
        workspace.ingest("items")

    window = ObjectStateStore(workspace.store).load("shop", "items").window
    assert (window.raw_page, window.records, window.dead_letters) == (0, 0, 0)
    [outcome] = workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")
    assert (outcome.resumed, outcome.dead_letters) == (True, 0)
    assert workspace.landed("items") == api.records  # each once


def test_a_page_still_unreadable_on_resume_is_listed_and_counted_once(workspace, api) -> None:
    workspace.source(CURSOR, endpoints=("items",))
    api.faults.append(Fault("/cursor", 200, body=b"not json", after=2))
    with pytest.raises(ApiResponseError):
        workspace.ingest("items")
    api.faults.append(Fault("/cursor", 200, body=b"still not json"))

    with pytest.raises(ApiResponseError):
        workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")

    assert ObjectStateStore(workspace.store).load("shop", "items").window.dead_letters == 0
    [letter] = dead_letters(workspace)
    assert (letter["page"], letter["raw_text"]) == (2, "still not json")
    assert workspace.landed("items") == api.records[:20]


def test_a_window_stuck_at_an_unreadable_page_names_the_command_that_drops_it(
    workspace, api
) -> None:
    """A page no run can read (the next cursor is in it) fails every run: the error says
    how to get past it, and that command does (the landed chunks stay)."""
    workspace.source(CURSOR, endpoints=("items",))
    api.faults.append(Fault("/cursor", 200, body=b"not json", after=2))
    with pytest.raises(ApiResponseError):
        workspace.ingest("items")
    api.faults.append(Fault("/cursor", 200, body=b"still not json", after=0))

    with pytest.raises(ApiResponseError) as raised:
        workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")

    assert "ingest --source shop --endpoint items --full-refresh" in str(raised.value)
    assert "--since" not in str(raised.value)  # not an incremental endpoint

    [outcome] = workspace.ingest("items", run_id="20260303T000000Z-cccccc", full_refresh=True)

    assert (outcome.resumed, outcome.records) == (False, len(api.records))
    assert ObjectStateStore(workspace.store).load("shop", "items").window is None


def test_full_refresh_from_since_drops_an_incremental_window_stuck_at_an_unreadable_page(
    workspace, api
) -> None:
    """The way past named by the error, for an incremental endpoint: the refresh starts at
    --since, not at the stuck window (whose landed chunk stays)."""
    incremental = '[endpoints.incremental]\ncursor_field = "updated_at"\nparam = "since"\n'
    workspace.source(CURSOR + incremental, endpoints=("items",))
    api.faults.append(Fault("/cursor", 200, body=b"not json", after=2))
    with pytest.raises(ApiResponseError, match=r"--full-refresh \(with --since"):
        workspace.ingest("items")

    workspace.ingest("items", run_id="20260302T000000Z-bbbbbb", full_refresh=True, since=stamp(31))

    assert ObjectStateStore(workspace.store).load("shop", "items").window is None
    assert api.requests[-1]["query"].get("since") == stamp(31)
    landed = sorted(r["id"] for r in workspace.landed("items"))
    assert landed == list(range(1, 21)) + list(range(31, 48))  # each once


ORDERS = customers_and_orders()


def test_unreadable_pages_of_two_parents_walks_are_gone_past_in_each(workspace, api) -> None:
    """Pages in a row that cannot be read are counted within one parent's walk."""
    workspace.source(ORDERS, endpoints=("customers", "orders"))
    html = b"<html>busy</html>"
    api.faults += [Fault("/customers/c3/orders", 200, body=html) for _ in range(2)]
    api.faults.append(Fault("/customers/c4/orders", 200, body=html))  # its page 1 of 2

    [outcome] = workspace.ingest("orders")

    orders = {o["order"] for o in workspace.landed("orders")}
    assert {"c4-3", "c4-4", "c5-5"} <= orders  # c4's walk went past its page 1
    assert not {"c3-1", "c3-3", "c4-1"} & orders
    assert (outcome.dead_letters, outcome.pages_unread) == (3, 3)


def test_three_unreadable_pages_of_one_parents_walk_keep_the_window_open_at_its_first(
    workspace, api
) -> None:
    """Whether pages with orders follow them is not known: the window stays open at the
    parent's first unreadable page, and the next run lands that parent's and the later
    parents' orders, each once."""
    workspace.source(ORDERS, endpoints=("customers", "orders"))
    html = b"<html>busy</html>"
    api.faults += [Fault("/customers/c3/orders", 200, body=html) for _ in range(3)]

    with pytest.raises(ApiResponseError, match=r"pages \d+, \d+, \d+ \(.*/customers/c3/orders"):
        workspace.ingest("orders")

    assert ObjectStateStore(workspace.store).load("shop", "orders").window.sequence == 2
    [outcome] = workspace.ingest("orders", run_id="20260302T000000Z-bbbbbb")
    assert (outcome.resumed, outcome.dead_letters) == (True, 0)
    landed = sorted(o["order"] for o in workspace.landed("orders"))
    assert landed == sorted(o["order"] for orders in api.orders.values() for o in orders)


SINGLE = """
[[endpoints]]
name = "items"
path = "/customers"
dataset = "shop_items"
records_path = "data"
[endpoints.pagination]
type = "none"
"""

LINKED = """
[[endpoints]]
name = "items"
path = "/link"
dataset = "shop_items"
primary_key = ["id"]
[endpoints.pagination]
type = "link_header"
"""


def test_an_unreadable_single_page_is_a_dead_letter_not_a_window_open_for_ever(
    workspace, api
) -> None:
    """``type = "none"``: no page follows the one page, so none is missed by completing."""
    workspace.source(SINGLE, endpoints=("items",))
    api.faults.append(Fault("/customers", 200, body=b"<html>maintenance</html>"))

    [outcome] = workspace.ingest("items")

    assert (outcome.records, outcome.dead_letters) == (0, 1)
    assert ObjectStateStore(workspace.store).load("shop", "items").window is None
    assert [(d["reason"], d["page"]) for d in dead_letters(workspace)] == [("not_json", 0)]


def test_an_unreadable_last_link_header_page_completes_the_window(workspace, api) -> None:
    """The API's last page says so in its ``Link`` (a ``prev``, no ``next``): the pages
    before it land and the window completes; it is not asked for again run after run."""
    workspace.source(LINKED, endpoints=("items",))
    prev = f'<{api.url}/link?page=4>; rel="prev", <{api.url}/link?page=1>; rel="first"'
    api.faults.append(Fault("/link", 200, {"Link": prev}, b"<html>oops</html>", after=4))

    [outcome] = workspace.ingest("items")

    assert outcome.dead_letters == 1
    assert workspace.landed("items") == api.records[:40]
    assert ObjectStateStore(workspace.store).load("shop", "items").window is None


def test_an_unreadable_link_header_page_without_a_link_keeps_the_window_open(
    workspace, api
) -> None:
    """No ``Link`` at all (a proxy's page, say): whether pages follow it is not known."""
    workspace.source(LINKED, endpoints=("items",))
    api.faults.append(Fault("/link", 200, body=b"<html>proxy</html>", after=2))

    with pytest.raises(ApiResponseError, match=r"page 2 of .* stays open"):
        workspace.ingest("items")

    assert workspace.landed("items") == api.records[:20]
    assert ObjectStateStore(workspace.store).load("shop", "items").window.raw_page == 2


def test_a_resumed_run_lists_each_dead_letter_once(workspace, api) -> None:
    workspace.source("max_attempts = 1\n" + PAGED, endpoints=("items",))
    api.records[1] = "early"  # type: ignore[call-overload]
    api.records[22] = "later"  # type: ignore[call-overload]
    api.faults.append(Fault("/page", 500, after=6))  # page 7 fails after two chunks landed
    with pytest.raises(ApiUnavailableError):
        workspace.ingest("items")
    stopped = ObjectStateStore(workspace.store).load("shop", "items").window
    # the second chunk landed at page 4 item 0: the dead letter at item 2 came after it
    assert (stopped.raw_page, stopped.skip, stopped.dead_letters) == (4, 1, 1)

    [outcome] = workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")

    assert outcome.resumed
    assert outcome.dead_letters == 2
    assert [(d["page"], d["position"]) for d in dead_letters(workspace)] == [(0, 1), (4, 2)]
    assert workspace.landed("items") == [r for r in api.records if isinstance(r, dict)]


@pytest.mark.parametrize("read_aside", [True, False], ids=["read_aside", "read_here"])
def test_a_records_path_in_no_page_is_said_not_taken_for_an_empty_window(
    workspace, api, caplog, read_aside
) -> None:
    workspace.read_aside = read_aside
    workspace.source(
        CURSOR.replace('records_path = "data"', 'records_path = "dta"'), endpoints=("items",)
    )

    with caplog.at_level("WARNING", logger="data_pipeline.ingest.flow"):
        [outcome] = workspace.ingest("items")

    assert outcome.records == 0
    (said,) = [r.getMessage() for r in caplog.records if "records_path" in r.getMessage()]
    assert "records_path 'dta' was in none of the 1 page(s)" in said
    assert "data, meta" in said  # the keys the page had: the typo is plain to see
    assert f"ingest replay --source shop --endpoint items --run {outcome.run}" in said


def test_an_empty_records_array_is_a_quiet_empty_window(workspace, api, caplog) -> None:
    later = 'path = "/cursor"\nparams = { since = "2099-01-01T00:00:00Z" }'
    workspace.source(CURSOR.replace('path = "/cursor"', later), endpoints=("items",))

    with caplog.at_level("WARNING", logger="data_pipeline.ingest.flow"):
        [outcome] = workspace.ingest("items")

    assert outcome.records == 0
    assert not [r for r in caplog.records if "records_path" in r.getMessage()]


INCREMENTAL = '[endpoints.incremental]\ncursor_field = "updated_at"\nparam = "since"\n'
OFFSET = """
[[endpoints]]
name = "items"
path = "/offset"
dataset = "shop_items"
records_path = "items"
primary_key = ["id"]
chunk_records = 10
[endpoints.pagination]
type = "offset"
page_size = 5
"""
DOWN = {  # the API's answers to archive pages 5, 6 and 7, in each style
    "page_number": (PAGED, {("/page", "page", str(n)) for n in (6, 7, 8)}),
    "offset": (OFFSET, {("/offset", "offset", str(n)) for n in (25, 30, 35)}),
}


@pytest.mark.parametrize("style", sorted(DOWN))
def test_pages_unreadable_in_a_row_keep_the_window_open_and_the_next_run_lands_the_rest(
    workspace, api, style
) -> None:
    """Pages 5, 6 and 7 answer an HTML 200 during one run (maintenance), pages 8 and 9 hold
    records. Completing the window there moved the mark past pages never fetched (the API is
    not sorted by it: page 0 holds the latest change), so no incremental run landed them."""
    body, down = DOWN[style]
    workspace.source(body + INCREMENTAL, endpoints=("items",))
    api.records[2]["updated_at"] = stamp(100)
    api.maintenance |= down

    with pytest.raises(ApiResponseError) as raised:
        workspace.ingest("items")

    said = str(raised.value)
    assert "pages 5, 6, 7 (" in said
    assert "3 in a row" in said
    assert "stays open at page 5" in said
    assert "ingest --source shop --endpoint items --full-refresh (with --since" in said
    stopped = ObjectStateStore(workspace.store).load("shop", "items")
    assert stopped.cursor is None  # the mark did not move past the unread pages
    assert (stopped.window.raw_page, stopped.window.records) == (5, 25)
    assert [(d["page"], d["position"]) for d in dead_letters(workspace)] == [
        (5, None),
        (6, None),
        (7, None),
    ]
    assert sorted(r["id"] for r in workspace.landed("items")) == list(range(1, 26))

    api.maintenance.clear()
    [outcome] = workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")

    assert (outcome.resumed, outcome.dead_letters, outcome.pages_unread) == (True, 0, 0)
    assert dead_letters(workspace) == []  # read this time: no longer set aside
    landed = sorted(r["id"] for r in workspace.landed("items"))
    assert landed == list(range(1, 48))  # every record, each once
    assert ObjectStateStore(workspace.store).load("shop", "items").cursor == stamp(100)


def test_unreadable_pages_in_a_row_keep_a_full_endpoints_window_open_at_the_first(
    workspace, api
) -> None:
    """The records taken before the row land with the window's position at its first page
    (no chunk was full yet), and the resumed run lands the rest, each once."""
    workspace.source(PAGED, endpoints=("items",))
    api.maintenance |= {("/page", "page", str(n)) for n in (2, 3, 4)}

    with pytest.raises(ApiResponseError, match=r"pages 1, 2, 3 \(.*stays open at page 1"):
        workspace.ingest("items")

    assert workspace.landed("items") == api.records[:5]
    api.maintenance.clear()
    [outcome] = workspace.ingest("items", run_id="20260302T000000Z-bbbbbb")
    assert outcome.resumed
    assert workspace.landed("items") == api.records


def test_a_single_unreadable_page_skipped_is_counted_as_a_page_unread(
    workspace, api, caplog
) -> None:
    """One unreadable page is gone past (the walk knows its next request): the window
    completes without its records, which the outcome, the state, a metric and a warning say
    apart from the items set aside."""
    workspace.source(OFFSET + INCREMENTAL + 'end_param = "until"\n', endpoints=("items",))
    api.maintenance.add(("/offset", "offset", "10"))
    api.records[20] = "not an object"  # type: ignore[call-overload]

    with capture_metrics() as metrics, caplog.at_level("WARNING", "data_pipeline.ingest.flow"):
        [outcome] = workspace.ingest("items")

    assert (outcome.dead_letters, outcome.pages_unread) == (2, 1)
    last_run = ObjectStateStore(workspace.store).load("shop", "items").last_run
    assert (last_run["dead_letters"], last_run["pages_unread"]) == (2, 1)
    labels = {"source": "shop", "endpoint": "items"}
    assert metrics.value("etl_data_pipeline_api_pages_unread_total", **labels) == 1
    [said] = [r.getMessage() for r in caplog.records if "could not read" in r.getMessage()]
    assert "completed past 1 page(s) it could not read (pages 2;" in said
    assert "their records were not landed" in said
    assert f"--until {stamp(47)}" in said  # the range to ingest again
    assert sorted(r["id"] for r in workspace.landed("items")) == [
        i for i in range(1, 48) if i not in (11, 12, 13, 14, 15, 21)
    ]
