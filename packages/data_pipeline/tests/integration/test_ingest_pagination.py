"""Every pagination style against the real HTTP API: landed records equal the server's."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import date
from typing import Any

import pytest

from data_pipeline.errors import ApiResponseError, ApiUnavailableError
from data_pipeline.ingest import flow
from data_pipeline.ingest.replay import find_run, replay_run
from etl_core.contracts import load_contracts
from etl_core.layout import raw_api_manifest_key, raw_api_prefix

from .conftest import Fault, customers_and_orders

STYLES = {
    "page_number": """
[endpoints.pagination]
type = "page_number"
size_param = "per_page"
page_size = 10
""",
    "page_number_total": """
[endpoints.pagination]
type = "page_number"
size_param = "per_page"
page_size = 10
total_path = "meta.total"
""",
    "has_more": """
[endpoints.pagination]
type = "page_number"
size_param = "per_page"
page_size = 10
has_more_path = "has_more"
""",
    "offset": """
[endpoints.pagination]
type = "offset"
page_size = 10
total_path = "total"
""",
    "cursor": """
[endpoints.pagination]
type = "cursor"
cursor_path = "meta.next"
""",
    "next_url": """
[endpoints.pagination]
type = "next_url"
next_url_path = "links.next"
""",
    "link_header": """
[endpoints.pagination]
type = "link_header"
""",
}
PATHS = {
    "page_number": ("/page", "data"),
    "page_number_total": ("/page", "data"),
    "has_more": ("/hasmore", "data"),
    "offset": ("/offset", "items"),
    "cursor": ("/cursor", "data"),
    "next_url": ("/next", "results"),
    "link_header": ("/link", ""),
}


def endpoint(style: str, *, chunk: int = 7, extra: str = "") -> str:
    path, records = PATHS[style]
    return f"""
[[endpoints]]
name = "items"
path = "{path}"
dataset = "shop_items"
records_path = "{records}"
primary_key = ["id"]
chunk_records = {chunk}
{extra}
{STYLES[style]}
"""


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_pagination_style_lands_exactly_the_servers_records(workspace, api, style) -> None:
    workspace.source(endpoint(style), endpoints=("items",))

    [outcome] = workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert outcome.records == len(api.records)
    assert outcome.chunks == -(-len(api.records) // 7)


@pytest.mark.parametrize("style", ["page_number", "offset", "page_number_total"])
def test_pages_requested_ahead_land_exactly_the_servers_records(workspace, api, style) -> None:
    api.delay = 0.02
    workspace.source("concurrency = 4\n" + endpoint(style), endpoints=("items",))

    [outcome] = workspace.ingest("items")

    assert workspace.landed("items") == api.records
    manifest = next(k for k in workspace.keys("raw/") if k.endswith("_manifest.json"))
    pages = json.loads(workspace.store.read_bytes(manifest))["pages"]
    assert [p["page"] for p in pages] == list(range(outcome.pages))


@pytest.mark.parametrize(
    ("style", "parallel"),
    [("offset", True), ("page_number", True), ("cursor", False), ("next_url", False)],
)
def test_offset_and_page_number_pages_are_fetched_in_parallel_up_to_concurrency(
    workspace, api, style, parallel
) -> None:
    api.delay = 0.05  # a slow API: pages requested ahead overlap
    workspace.source("concurrency = 4\n" + endpoint(style), endpoints=("items",))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    if parallel:
        assert 2 <= api.max_in_flight <= 4  # bounded by concurrency
    else:  # the next request is in the answer: one at a time
        assert api.max_in_flight == 1


@pytest.mark.parametrize("read_aside", [True, False], ids=["read-aside", "walk-reads"])
def test_a_record_with_a_lone_surrogate_lands_instead_of_failing_the_endpoint(
    workspace, api, read_aside
) -> None:
    api.records[12]["name"] = "half an emoji \ud83d"  # sent as the JSON escape, not UTF-8
    workspace.read_aside = read_aside
    workspace.source(endpoint("page_number"), endpoints=("items",))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records


def test_a_short_page_corrects_the_offsets_requested_ahead(workspace, api) -> None:
    api.max_page = 4  # asked for 10, the server gives 4: every prediction is wrong
    workspace.source("concurrency = 3\n" + endpoint("offset"), endpoints=("items",))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records


def test_landed_chunks_match_the_dataset_contract_with_their_partition_date(workspace) -> None:
    workspace.source(endpoint("offset"), endpoints=("items",))
    workspace.ingest("items")

    contracts = load_contracts(workspace.config)
    keys = workspace.keys("landing/")
    assert keys
    for key in keys:
        matched = contracts.match(key)
        assert matched is not None, key
        assert matched[0].dataset == "shop_items"


def test_raw_archive_keeps_each_body_byte_for_byte_with_a_manifest(workspace, api) -> None:
    workspace.source(endpoint("page_number"), endpoints=("items",))
    [outcome] = workspace.ingest("items")

    manifests = [k for k in workspace.keys("raw/") if k.endswith("_manifest.json")]
    assert len(manifests) == 1
    manifest = json.loads(workspace.store.read_bytes(manifests[0]))
    assert manifest["status"] == "complete"
    assert manifest["records"] == len(api.records)
    pages = manifest["pages"]
    assert [p["page"] for p in pages] == list(range(outcome.pages))
    for entry in pages:
        body = gzip.decompress(workspace.store.read_bytes(entry["key"]))
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert entry["status"] == 200
        assert entry["etag"]
        assert entry["url"].startswith(api.url + "/page?")
        assert json.loads(body)["data"] == api.records[entry["page"] * 10 : entry["page"] * 10 + 10]
    dt = date.fromisoformat(manifest["dt"])
    assert manifests[0] == raw_api_manifest_key("shop", "items", dt, outcome.run)
    assert entry["key"].startswith(raw_api_prefix("shop", "items", dt, outcome.run))


def test_an_empty_endpoint_lands_nothing_and_finishes(workspace, api) -> None:
    api.records = []
    workspace.source(endpoint("cursor"), endpoints=("items",))

    [outcome] = workspace.ingest("items")

    assert outcome.records == 0
    assert workspace.keys("landing/") == []


@pytest.mark.parametrize(
    ("style", "chunk", "concurrency", "aside"),
    [
        ("offset", 20, 4, "all"),  # pages of 10 fill chunks of 20: every page read aside
        ("offset", 25, 1, "some"),  # a chunk ends inside every third page: the walk reads it
        ("offset", 7, 1, "none"),  # a chunk ends inside every page
        ("page_number_total", 30, 4, "all"),
        ("cursor", 10, 1, "all"),
        ("next_url", 25, 1, "some"),
        ("link_header", 10, 1, "none"),  # the body is the records array: not read aside
    ],
)
def test_pages_read_aside_land_and_profile_what_the_walk_reading_them_does(
    workspace, tmp_path, api, readings_taken, monkeypatch, style, chunk, concurrency, aside
) -> None:
    taken = readings_taken
    stores = {}
    walk_reads = type(workspace)(tmp_path / "walk", api)
    walk_reads.read_aside = False
    for reads_aside, space in ((True, workspace), (False, walk_reads)):
        extra = f"concurrency = {concurrency}\n"
        space.source(extra + endpoint(style, chunk=chunk), endpoints=("items",))
        [outcome] = space.ingest("items")
        assert outcome.records == len(api.records)
        stores[reads_aside] = {  # lines compared, not deflate streams (ISA-L's vary)
            info.key: _inflated(info.key, space.store.read_bytes(info.key))
            for info in space.store.list("")
            if info.key.startswith("landing/") or info.key.endswith("drift.json")
        }
        state = json.loads(space.store.read_bytes(_state_key()))
        stores[reads_aside]["last_run"] = json.dumps(state["last_run"]).encode()

    assert stores[True] == stores[False]
    assert any(key.endswith("drift.json") for key in stores[True])
    expected = {"all": len(api.records), "none": 0}
    if aside in expected:
        assert sum(taken) == expected[aside]
    else:
        assert 0 < sum(taken) < len(api.records)


def _inflated(key: str, data: bytes) -> bytes:
    """An object's bytes, a gzip chunk's decompressed."""
    return gzip.decompress(data) if key.endswith(".gz") else data


def _state_key() -> str:
    return flow.lease_key("shop", "items").replace(".lease.json", ".json")


def test_a_paginator_reading_the_records_array_itself_gets_no_page_read_aside(
    workspace, api, monkeypatch
) -> None:
    taken: list[int] = []
    monkeypatch.setattr(flow._Walk, "_take_reading", lambda walk, reading, *args: taken.append(1))
    workspace.source(
        endpoint("has_more").replace('has_more_path = "has_more"', 'has_more_path = "data"'),
        endpoints=("items",),
    )

    [outcome] = workspace.ingest("items")

    assert outcome.records == len(api.records)  # the array it reads was not emptied
    assert taken == []


def test_a_page_reader_that_dies_mid_run_leaves_the_pages_to_the_walk_and_the_run_lands_all(
    workspace, api, readings_taken, monkeypatch, caplog
) -> None:
    taken = readings_taken
    from data_pipeline.ingest.reader import PageReader

    submit = PageReader.submit
    sent: list[int] = []

    def dies_after_two(reader: PageReader, body: bytes, *args: Any) -> Any:
        sent.append(1)
        if len(sent) == 3:  # killed (out of memory, say) while the walk goes on
            assert reader._process is not None
            reader._process.kill()
            reader._process.wait()
        return submit(reader, body, *args)

    monkeypatch.setattr(PageReader, "submit", dies_after_two)
    workspace.source(endpoint("page_number", chunk=30), endpoints=("items",))

    with caplog.at_level("WARNING"):
        [outcome] = workspace.ingest("items")

    assert outcome.records == len(api.records)
    assert [record["id"] for record in workspace.landed("items")] == [
        record["id"] for record in api.records
    ]
    assert 0 < sum(taken) < len(api.records)
    warnings = [r for r in caplog.records if "page reader process" in r.getMessage()]
    assert len(warnings) == 1
    assert len(sent) < 6  # once it failed, no page is sent to it


def test_parent_pages_are_not_sent_to_the_page_reader(workspace, api, monkeypatch) -> None:
    from data_pipeline.ingest.reader import PageReader

    submit = PageReader.submit
    bodies: list[bytes] = []

    def spy(reader: PageReader, body: bytes, *args: Any) -> Any:
        bodies.append(body)
        return submit(reader, body, *args)

    monkeypatch.setattr(PageReader, "submit", spy)
    workspace.source(customers_and_orders(), endpoints=("customers", "orders"))

    [outcome] = workspace.ingest("orders")

    assert outcome.records == sum(len(orders) for orders in api.orders.values())
    assert bodies  # the orders' pages went to it
    assert not [body for body in bodies if b"customer " in body]


@pytest.mark.parametrize("own_field", [False, True])
def test_pages_read_aside_are_stamped_with_provenance_as_replay_stamps_them(
    workspace, api, readings_taken, monkeypatch, own_field
) -> None:
    taken = readings_taken
    from .test_ingest_replay_infer import RUN, chunks, replay

    api.records[3] = {}  # an empty object: refused (no id), its page read here
    api.records[14]["note"] = 'ends "}\\n" and {"x": {}}'
    if own_field:  # replaced in place by the stamp: every page with one read here
        api.records[32]["_http_page"] = "the record's own"
    workspace.source(
        "concurrency = 4\n" + endpoint("offset", chunk=20, extra="provenance = true"),
        endpoints=("items",),
    )
    workspace.ingest("items", run_id=RUN)
    landed = chunks(workspace)
    for key in landed:
        workspace.store.delete(key)

    result = replay(workspace)

    assert result.returncode == 3, result.stderr  # the empty object is a dead letter
    assert chunks(workspace) == landed  # the same lines, stamped by the walk or by replay
    # page 0 holds the dead letter, chunks of 20 end inside pages 2 and 4 (9 + 10 + 10 > 20)
    assert taken == ([10] if own_field else [10, 10])
    records = workspace.landed("items")
    assert [r["_http_page"] for r in records[:3]] == [0, 0, 0]
    assert records[13]["note"] == 'ends "}\\n" and {"x": {}}'


NUMBERED_NO_SIZE = """
[[endpoints]]
name = "items"
path = "/hasmore"
dataset = "shop_items"
records_path = "data"
chunk_records = 7

[endpoints.pagination]
type = "page_number"
has_more_path = "{path}"
"""


def test_a_mistyped_has_more_path_without_page_size_fails_and_the_fixed_rerun_lands_all(
    workspace, api
) -> None:
    workspace.source(NUMBERED_NO_SIZE.format(path="hasMore"), endpoints=("items",))

    with pytest.raises(ApiResponseError) as raised:
        workspace.ingest("items")

    message = str(raised.value)
    assert "'hasMore'" in message  # the path
    assert "data, has_more" in message  # the body's keys
    assert len(api.requests) == 2  # the second page with records settled it
    landed = workspace.landed("items")
    assert landed == api.records[: len(landed)]  # what landed is kept, in order

    workspace.source(NUMBERED_NO_SIZE.format(path="has_more"), endpoints=("items",))
    workspace.ingest("items", run_id="20260301T010000Z-bbbbbb")

    assert workspace.landed("items") == api.records  # nothing lost, nothing twice


CURSOR_FLAG = """
[[endpoints]]
name = "items"
path = "/cursor_flag"
dataset = "shop_items"
records_path = "data"
chunk_records = 7

[endpoints.pagination]
type = "cursor"
cursor_path = "next"
has_more_path = "has_more"
{size}
"""


@pytest.mark.parametrize(
    ("records", "size"),
    [
        (8, ""),  # one page, its cursor given: full as far as the style can tell
        (47, 'size_param = "per_page"\npage_size = 47'),  # one page of exactly page_size
        (47, ""),  # five pages, the flag left out of the last
    ],
)
def test_an_api_leaving_has_more_out_of_its_last_page_but_sending_a_cursor_lands_all(
    workspace, api, caplog, records, size
) -> None:
    api.records = api.records[:records]
    workspace.source(CURSOR_FLAG.format(size=size), endpoints=("items",))

    with caplog.at_level("WARNING"):
        [outcome] = workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert outcome.records == records
    unseen = [r for r in caplog.records if "has_more_path" in r.getMessage()]
    assert len(unseen) == (1 if len(api.records) <= 10 or size else 0)


FLAG_WHEN_MORE = """
[[endpoints]]
name = "items"
path = "/flag_when_more"
dataset = "shop_items"
records_path = "data"
primary_key = ["id"]
chunk_records = 7

[endpoints.pagination]
has_more_path = "has_more"
{style}
"""
MADE_UP_NEXT = {
    "page_number": 'type = "page_number"',
    "page_number_sized": 'type = "page_number"\nsize_param = "per_page"\npage_size = 10',
    "offset": 'type = "offset"\nlimit_param = "per_page"\npage_size = 10',
}


@pytest.mark.parametrize("past_end", ["404", "repeat", "empty"])
@pytest.mark.parametrize("style", sorted(MADE_UP_NEXT))
@pytest.mark.parametrize("records", [5, 10])
def test_an_api_leaving_has_more_out_of_its_only_page_lands_it_however_it_answers_past_its_end(
    workspace, api, caplog, style, past_end, records
) -> None:
    api.records, api.past_end = api.records[:records], past_end
    workspace.source(FLAG_WHEN_MORE.format(style=MADE_UP_NEXT[style]), endpoints=("items",))

    with caplog.at_level("WARNING"):
        [outcome] = workspace.ingest("items")

    assert workspace.landed("items") == api.records  # once each, not a failure
    assert outcome.records == records
    assert len(api.requests) == 2  # the page after settled has_more_path
    unseen = [r.getMessage() for r in caplog.records if "has_more_path" in r.getMessage()]
    assert len(unseen) == 1
    assert "nothing was missed" in unseen[0]


def test_a_page_the_api_repeats_past_its_end_is_skipped_by_a_replay_too(workspace, api) -> None:
    api.records, api.past_end = api.records[:5], "repeat"
    workspace.source(FLAG_WHEN_MORE.format(style=MADE_UP_NEXT["page_number"]), endpoints=("items",))
    workspace.ingest("items", run_id="20260301T000000Z-aaaaaa")
    contracts = load_contracts(workspace.config)
    context = workspace.context()
    source = context.sources.get("shop")
    context.close()

    run = "20260301T000000Z-aaaaaa"
    dt = find_run(workspace.store, "shop", "items", run)

    outcome = replay_run(
        workspace.store, source, source.endpoint("items"), run, dt, contracts.get("shop_items")
    )

    assert outcome.records == 5
    assert workspace.landed("items") == api.records


def test_a_walk_resumed_at_the_page_asked_past_the_end_still_knows_a_repeat(workspace, api) -> None:
    api.records, api.past_end = api.records[:7], "repeat"  # one page, one chunk exactly
    body = "max_attempts = 1\n" + FLAG_WHEN_MORE.format(style=MADE_UP_NEXT["page_number"])
    workspace.source(body, endpoints=("items",))
    api.faults.append(Fault("/flag_when_more", status=503, after=1))
    with pytest.raises(ApiUnavailableError):  # page 2 fails after page 1 landed
        workspace.ingest("items")

    workspace.ingest("items", run_id="20260301T010000Z-bbbbbb")

    assert workspace.landed("items") == api.records
    assert api.requests[-1]["query"] == {"page": "2"}  # the resume asked page 2 only


@pytest.mark.parametrize("past_end", ["404", "repeat"])
def test_a_parent_leaving_has_more_out_of_its_only_page_gives_each_child_walk_once(
    workspace, api, past_end
) -> None:
    api.records, api.past_end = api.records[:3], past_end
    parent = FLAG_WHEN_MORE.format(style=MADE_UP_NEXT["page_number"])
    workspace.source(
        parent
        + """
[[endpoints]]
name = "orders"
path = "/customers/c{parent.id}/orders"
parent = "items"
dataset = "shop_orders"
records_path = "data"
[endpoints.pagination]
type = "page_number"
""",
        endpoints=("items", "orders"),
    )

    [outcome] = workspace.ingest("orders")

    orders = [o["order"] for o in workspace.landed("orders")]
    assert orders == ["c1-1", "c2-1", "c2-2", "c3-1", "c3-2", "c3-3"]  # once each
    assert outcome.records == 6


@pytest.mark.parametrize(
    ("path", "style"),
    [
        ("/hasmore", 'type = "page_number"\nsize_param = "per_page"\npage_size = 10'),
        ("/cursor_flag", 'type = "cursor"\ncursor_path = "next"'),  # the flag left out last
    ],
)
def test_a_walk_checkpointed_before_has_more_was_kept_resumes_to_the_end(
    workspace, api, path, style
) -> None:
    body = FLAG_WHEN_MORE.format(style=style).replace("/flag_when_more", path)
    workspace.source("max_attempts = 1\n" + body, endpoints=("items",))
    api.faults.append(Fault(path, status=503, after=3))
    with pytest.raises(ApiUnavailableError):  # page 4 fails, 28 records landed
        workspace.ingest("items")
    key = next(k for k in workspace.keys("") if k.endswith("/items.json"))
    state = json.loads(workspace.store.read_bytes(key))
    page = state["window"]["page"]
    del page["flagged"], page["prior"]  # as the previous release wrote it
    workspace.store.write_bytes(key, json.dumps(state).encode())

    workspace.ingest("items", run_id="20260301T010000Z-bbbbbb")

    assert workspace.landed("items") == api.records


def test_a_cursor_leading_back_to_an_earlier_page_fails_naming_it_and_the_fixed_rerun_lands_all(
    workspace, api
) -> None:
    """Page 3 of the API sends the walk back to page 2: followed, the walk would never end
    and land pages 2 and 3 again and again."""
    workspace.source(endpoint("cursor"), endpoints=("items",))
    looping = {"data": api.records[20:30], "meta": {"next": "10"}}
    api.faults.append(Fault("/cursor", body=json.dumps(looping).encode(), after=2))

    with pytest.raises(
        ApiResponseError,
        match=r"shop/items: the page of http://.*/cursor\?cursor=20 gives as next page one this "
        r"walk asked for 2 pages back \(cursor=10\): the pages go round in a loop",
    ):
        workspace.ingest("items")
    assert [r["query"] for r in api.requests] == [{}, {"cursor": "10"}, {"cursor": "20"}]

    workspace.ingest("items", run_id="20260301T010000Z-bbbbbb")  # the API fixed

    assert workspace.landed("items") == api.records


SAME = """
[[endpoints]]
name = "items"
path = "/same"
dataset = "shop_items"
records_path = "data"
chunk_records = 100
[endpoints.pagination]
type = "cursor"
cursor_path = "meta.next"
size_param = "per_page"
page_size = 5
"""


@pytest.mark.parametrize("read_aside", [True, False], ids=["read-aside", "walk-reads"])
def test_new_cursors_with_the_same_records_every_time_are_refused_naming_the_limit(
    workspace, api, read_aside
) -> None:
    """Each page gives a new cursor (no loop to see) with the records of the page before: a
    walk following it would never end (here the API gives up after 50 pages)."""
    workspace.read_aside = read_aside
    workspace.source(SAME, endpoints=("items",))
    api.same_pages = 50

    with pytest.raises(ApiResponseError) as raised:
        workspace.ingest("items")

    said = str(raised.value)
    assert f"page 2 of {api.url}/same?per_page=5&cursor=2 holds the same 5 records" in said
    assert f"MAX_SAME_PAGES_IN_A_ROW = {flow.MAX_SAME_PAGES_IN_A_ROW}" in said
    assert len(api.requests) == flow.MAX_SAME_PAGES_IN_A_ROW + 1  # refused at once
    assert workspace.landed("items") == []  # no chunk was full: the state stays before it


def test_a_page_repeating_the_one_before_once_is_taken(workspace, api) -> None:
    """An offset API whose records moved by a page between two requests gives the same page
    twice: that is not refused (the API sent the records twice; the walk ends)."""
    workspace.source(SAME, endpoints=("items",))
    api.same_pages = flow.MAX_SAME_PAGES_IN_A_ROW

    [outcome] = workspace.ingest("items")

    assert outcome.records == 5 * flow.MAX_SAME_PAGES_IN_A_ROW
    assert workspace.landed("items") == api.records[:5] * flow.MAX_SAME_PAGES_IN_A_ROW


OFFSET_WITHOUT_KEY = """
[[endpoints]]
name = "items"
path = "/offset"
dataset = "shop_items"
records_path = "items"
chunk_records = 100
[endpoints.pagination]
type = "offset"
page_size = {size}
"""


def test_pages_with_the_same_first_and_last_records_but_others_between_are_taken(
    workspace, api
) -> None:
    """A log without keys whose pages each begin and end with the same heartbeat: the
    records between differ, so the pages are not the same (a healthy API walked to its end)."""
    beat = {"msg": "heartbeat"}
    api.records = [r for n in range(4) for r in (beat, {"msg": f"event {n}"}, beat)]
    workspace.source(OFFSET_WITHOUT_KEY.format(size=3), endpoints=("items",))

    [outcome] = workspace.ingest("items")

    assert outcome.records == len(api.records)
    assert workspace.landed("items") == api.records


def test_a_run_of_identical_records_one_a_page_is_taken(workspace, api) -> None:
    """Without a primary key the same record may come several times in a row: one a page,
    each is a page like the one before, all of them the API's records."""
    api.records = [{"msg": "start"}, *[{"msg": "tick"}] * 5, {"msg": "end"}]
    workspace.source(OFFSET_WITHOUT_KEY.format(size=1), endpoints=("items",))

    [outcome] = workspace.ingest("items")

    assert outcome.records == len(api.records)
    assert workspace.landed("items") == api.records


def test_new_cursors_with_pages_beginning_and_ending_alike_are_refused(workspace, api) -> None:
    """Pages compared whole: the same first and last record around others is refused too,
    when every record of the page is the page before's (an API ignoring its cursor)."""
    api.records = [{"msg": "heartbeat"}, {"msg": "event"}, {"msg": "heartbeat"}]
    workspace.source(SAME.replace("page_size = 5", "page_size = 3"), endpoints=("items",))
    api.same_pages = 50

    with pytest.raises(ApiResponseError, match="MAX_SAME_PAGES_IN_A_ROW"):
        workspace.ingest("items")

    assert len(api.requests) == flow.MAX_SAME_PAGES_IN_A_ROW + 1


def test_a_resumed_walk_refuses_the_same_records_at_once(workspace, api) -> None:
    """The pages in a row with the same records are kept in the checkpoint: a run resumed
    after them refuses the next such page, not landing two more every run."""
    workspace.source(SAME.replace("chunk_records = 100", "chunk_records = 5"), endpoints=("items",))
    api.same_pages = 50
    landed = []
    for run in range(3):  # bounded: each run fails at the refusal
        with pytest.raises(ApiResponseError, match="MAX_SAME_PAGES_IN_A_ROW"):
            workspace.ingest("items", run_id=f"2026030{run + 1}T000000Z-bbbbbb")
        landed.append(len(workspace.landed("items")))

    assert landed == [5 * flow.MAX_SAME_PAGES_IN_A_ROW] * 3
