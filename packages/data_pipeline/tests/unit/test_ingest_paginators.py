"""The paginator contract: every style walks all records once, stops, and resumes from JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from data_pipeline.errors import (
    ApiAuthError,
    ApiRequestError,
    ApiResponseError,
    ApiUnavailableError,
)
from data_pipeline.ingest.pagination import (
    PAGINATORS,
    Page,
    PageRequest,
    Paginator,
    next_link,
)
from etl_core.contracts import Pagination

BASE = "https://api.test/v1"
RECORDS = [{"id": i} for i in range(23)]
SIZE = 5
Responder = Callable[[PageRequest], Page]


def _page(
    url: str, document: Any, records: list[Any], headers: dict[str, str] | None = None
) -> Page:
    return Page(url, headers or {}, document, records)


def _query(request: PageRequest) -> dict[str, str]:
    if request.url:
        return {k: v[-1] for k, v in parse_qs(urlsplit(request.url).query).items()}
    return dict(request.params)


def page_number(request: PageRequest) -> Page:
    number = int(_query(request)["page"])
    rows = RECORDS[(number - 1) * SIZE : number * SIZE]
    return _page(BASE, {"data": rows, "total": len(RECORDS)}, rows)


def offset(request: PageRequest) -> Page:
    start = int(_query(request)["offset"])
    rows = RECORDS[start : start + SIZE]
    return _page(BASE, {"items": rows}, rows)


def cursor(request: PageRequest) -> Page:
    start = int(_query(request).get("cursor", 0))
    rows = RECORDS[start : start + SIZE]
    following = str(start + SIZE) if start + SIZE < len(RECORDS) else None
    return _page(BASE, {"data": rows, "next": following}, rows)


def next_url(request: PageRequest) -> Page:
    start = int(_query(request).get("after", 0))
    rows = RECORDS[start : start + SIZE]
    link = f"/v1/items?after={start + SIZE}" if start + SIZE < len(RECORDS) else None
    return _page(f"{BASE}/items", {"data": rows, "next": link}, rows)


def link_header(request: PageRequest) -> Page:
    start = int(_query(request).get("after", 0))
    rows = RECORDS[start : start + SIZE]
    headers = {}
    if start + SIZE < len(RECORDS):
        headers["link"] = f'<{BASE}/items?after={start + SIZE}>; rel="next", <{BASE}>; rel=first'
    return _page(f"{BASE}/items", rows, rows, headers)


def single(request: PageRequest) -> Page:
    return _page(BASE, RECORDS, RECORDS)


STYLES: dict[str, tuple[Pagination, Responder]] = {
    "none": (Pagination(), single),
    "page_number": (Pagination(type="page_number", page_size=SIZE, size_param="n"), page_number),
    "offset": (Pagination(type="offset", page_size=SIZE), offset),
    "cursor": (Pagination(type="cursor", cursor_path="next"), cursor),
    "next_url": (Pagination(type="next_url", next_url_path="next"), next_url),
    "link_header": (Pagination(type="link_header"), link_header),
}


def paginator(config: Pagination) -> Paginator:
    return PAGINATORS[config.type](config, source="s", endpoint="e", base_url=BASE)


def walk(
    pages: Paginator, respond: Responder, start: PageRequest | None = None, limit: int = 100
) -> tuple[list[Any], list[PageRequest]]:
    records: list[Any] = []
    requests: list[PageRequest] = []
    current = start or pages.first()
    while current is not None and len(requests) < limit:
        requests.append(current)
        page = respond(current)
        records.extend(page.records)
        current = pages.next(current, page)
    return records, requests


def test_every_style_has_a_contract_case() -> None:
    assert set(STYLES) == set(PAGINATORS)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_walk_yields_every_record_once_and_ends(style: str) -> None:
    config, respond = STYLES[style]
    records, requests = walk(paginator(config), respond)

    assert records == RECORDS
    assert [r.number for r in requests] == list(range(len(requests)))
    assert requests[-1].seen + len(respond(requests[-1]).records) == len(RECORDS)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_walk_resumed_from_a_checkpointed_request_continues_exactly(style: str) -> None:
    config, respond = STYLES[style]
    _, requests = walk(paginator(config), respond)
    middle = requests[len(requests) // 2]

    resumed = PageRequest.from_dict(middle.to_dict())
    records, _ = walk(paginator(config), respond, start=resumed)

    assert resumed == middle
    assert records == RECORDS[middle.seen :]


@pytest.mark.parametrize("style", sorted(STYLES))
def test_an_empty_page_ends_every_style(style: str) -> None:
    config, _ = STYLES[style]
    pages = paginator(config)
    first = pages.first()

    assert pages.next(first, _page(BASE, {"data": [], "next": "5"}, [])) is None


@pytest.mark.parametrize("style", sorted(STYLES))
def test_predicted_requests_are_the_ones_full_pages_lead_to(style: str) -> None:
    config, respond = STYLES[style]
    pages = paginator(config)
    _, requests = walk(pages, respond)

    predicted = pages.predict(requests[0], 3)

    if pages.parallel:
        assert [p.params for p in predicted] == [r.params for r in requests[1:3]]
    else:
        assert predicted == []


def test_total_count_stops_before_an_extra_request() -> None:
    config = Pagination(type="page_number", page_size=SIZE, total_path="total")
    _, requests = walk(paginator(config), page_number)

    assert len(requests) == 5  # 23 records, 5 a page: no sixth (empty) request


def test_has_more_false_stops() -> None:
    pages = paginator(Pagination(type="page_number", has_more_path="more"))
    page = _page(BASE, {"data": [1], "more": False}, [{"id": 1}])

    assert pages.next(pages.first(), page) is None


@pytest.mark.parametrize(
    ("config", "document"),
    [
        (Pagination(type="page_number", has_more_path="hasMore"),  # no page_size: fullness unknown
         {"data": [1, 2], "has_more": True}),
        (Pagination(type="page_number", page_size=2, size_param="n", has_more_path="hasMore"),
         {"data": [1, 2], "has_more": True}),
        (Pagination(type="cursor", cursor_path="next", has_more_path="meta.hasMore"),
         {"data": [1], "next": "abc", "meta": {"has_more": True}}),
    ],
)  # fmt: skip
def test_a_has_more_path_absent_from_two_pages_with_records_fails_naming_the_path_and_keys(
    config: Pagination, document: dict[str, Any]
) -> None:
    pages = paginator(config)
    page = _page(BASE, document, [{"id": n} for n in document["data"]])
    second = pages.next(pages.first(), page)  # absent from the first: the next page settles it
    assert second is not None

    with pytest.raises(ApiResponseError, match="has_more_path") as raised:
        pages.next(second, replace(page, document={**document, "next": "abd"}))

    message = str(raised.value)
    assert repr(config.has_more_path) in message
    assert "has_more" in message  # the key the body has
    assert "API s/e:" in message  # the source and endpoint


@pytest.mark.parametrize(
    ("config", "document"),
    [
        (Pagination(type="page_number", has_more_path="more"), {"data": []}),
        (Pagination(type="page_number", page_size=2, size_param="n", has_more_path="more"),
         {"data": []}),
        (Pagination(type="cursor", cursor_path="next", has_more_path="more"),  # a cursor to the end
         {"data": [], "next": "end"}),
    ],
)  # fmt: skip
def test_a_has_more_path_absent_from_the_only_page_with_records_ends_at_the_next_empty_page(
    config: Pagination, document: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    pages = paginator(config)
    only = _page(BASE, {"data": [1, 2], "next": "abc"}, [{"id": 1}, {"id": 2}])
    second = pages.next(pages.first(), only)
    assert second is not None

    with caplog.at_level("WARNING"):
        assert pages.next(second, _page(BASE, document, [])) is None

    [warning] = [r.getMessage() for r in caplog.records]
    assert "has_more_path 'more' was in none of the 2 page(s)" in warning
    assert "nothing was missed" in warning


def test_a_has_more_path_seen_on_a_page_and_absent_from_a_later_one_ends_the_walk() -> None:
    config = Pagination(type="page_number", page_size=2, size_param="n", has_more_path="more")
    pages = paginator(config)
    later = pages.next(
        pages.first(), _page(BASE, {"data": [1, 2], "more": True}, [{"id": 1}, {"id": 2}])
    )
    assert later is not None
    assert later.flagged
    full = _page(BASE, {"data": [3, 4]}, [{"id": 3}, {"id": 4}])

    assert pages.next(later, full) is None  # seen on page 1, absent on page 2: the end


def test_a_short_first_page_without_has_more_asks_the_next_as_a_server_may_cap_its_pages() -> None:
    config = Pagination(type="page_number", page_size=5, size_param="n", has_more_path="more")
    pages = paginator(config)
    short = _page(BASE, {"data": [1, 2]}, [{"id": 1}, {"id": 2}])  # capped at 2 a page

    following = pages.next(pages.first(), short)

    assert following is not None
    assert following.params["page"] == "2"


def test_a_checkpointed_request_keeps_whether_has_more_was_seen() -> None:
    flagged = PageRequest(params={"page": "3"}, number=2, seen=4, flagged=True)
    probing = PageRequest(params={"page": "2"}, number=1, seen=2)

    assert PageRequest.from_dict(flagged.to_dict()) == flagged
    assert PageRequest.from_dict(probing.to_dict()) == probing
    # written before the field was kept: past a first page with records only if it had it
    assert PageRequest.from_dict({"params": {"page": "2"}, "number": 1, "seen": 2}).flagged


def test_a_next_link_to_another_host_is_refused() -> None:
    pages = paginator(Pagination(type="next_url", next_url_path="next"))
    page = _page(BASE, {"next": "https://evil.test/steal"}, [{"id": 1}])

    with pytest.raises(ApiResponseError, match=r"evil\.test.*refused"):
        pages.next(pages.first(), page)


@pytest.mark.parametrize(
    ("config", "value", "said"),
    [
        (Pagination(type="cursor", cursor_path="next"), {"after": "abc"}, "is an object"),
        (Pagination(type="cursor", cursor_path="next"), ["abc"], "is an array"),
        (Pagination(type="cursor", cursor_path="next"), 2.5, "is a number"),
        (Pagination(type="cursor", cursor_path="next"), True, "is true"),
        (Pagination(type="next_url", next_url_path="next"), {"href": "/v1/x?p=2"}, "an object"),
        (Pagination(type="next_url", next_url_path="next"), 2, "is a number"),
    ],
)
def test_a_next_cursor_or_link_of_an_unusable_kind_fails_instead_of_ending_the_walk(
    config: Pagination, value: Any, said: str
) -> None:
    pages = paginator(config)
    page = _page(BASE, {"next": value}, [{"id": 1}])

    with pytest.raises(ApiResponseError, match=said) as raised:
        pages.next(pages.first(), page)
    assert "'next'" in str(raised.value)


@pytest.mark.parametrize("value", [None, "", False])
@pytest.mark.parametrize("style", ["cursor", "next_url"])
def test_no_next_cursor_or_link_ends_the_walk(style: str, value: Any) -> None:
    config = Pagination(type=style, cursor_path="next", next_url_path="next")  # type: ignore[arg-type]
    pages = paginator(config)

    assert pages.next(pages.first(), _page(BASE, {"next": value}, [{"id": 1}])) is None


@pytest.mark.parametrize("link", ["http://[::1/items?after=5", "https://api.test:port/v1/x"])
@pytest.mark.parametrize("style", ["next_url", "link_header"])
def test_a_next_link_that_is_not_a_url_fails_naming_the_page_and_the_link(
    style: str, link: str
) -> None:
    if style == "next_url":
        pages = paginator(Pagination(type="next_url", next_url_path="next"))
        page = _page(BASE, {"next": link}, [{"id": 1}])
    else:
        pages = paginator(Pagination(type="link_header"))
        page = _page(BASE, [{"id": 1}], [{"id": 1}], {"link": f'<{link}>; rel="next"'})

    with pytest.raises(ApiResponseError, match="is not a URL") as raised:
        pages.next(pages.first(), page)
    assert BASE in str(raised.value)
    assert link in str(raised.value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('<https://a/x?p=2>; rel="next"', "https://a/x?p=2"),
        ('<https://a/x?p=1>; rel="prev", <https://a/x?p=3>; rel="next"', "https://a/x?p=3"),
        ("<https://a/x?p=9>; rel=last", None),
        ('<https://a/x?p=2>; title="a, b"; REL="Next Last"', "https://a/x?p=2"),
        ("", None),
    ],
)
def test_link_header_parsing(header: str, expected: str | None) -> None:
    assert next_link(header) == expected


@pytest.mark.parametrize(
    ("config", "document", "headers"),
    [
        (Pagination(type="cursor", cursor_path="next"), {"next": "abc"}, {}),
        (Pagination(type="next_url", next_url_path="next"), {"next": "/v1/items?after=5"}, {}),
        (Pagination(type="link_header"), {}, {"link": f'<{BASE}/items?after=5>; rel="next"'}),
    ],
    ids=["cursor", "next_url", "link_header"],
)
def test_a_next_page_that_is_the_same_request_again_is_refused(
    config: Pagination, document: dict[str, Any], headers: dict[str, str]
) -> None:
    """An API handing back the cursor (or link) it was just asked with would be walked
    forever, landing the same records again and again."""
    pages = paginator(config)
    first = pages.next(pages.first(), _page(f"{BASE}/items", document, [{"id": 1}], headers))
    assert first is not None
    again = _page(f"{BASE}/items?after=5", document, [{"id": 1}], headers)

    with pytest.raises(ApiResponseError, match=r"items\?after=5 gives the same next page again"):
        pages.next(first, again)


LOOPING = {
    "cursor": (Pagination(type="cursor", cursor_path="next"), lambda n: str(n)),
    "next_url": (Pagination(type="next_url", next_url_path="next"), lambda n: f"/v1/items?p={n}"),
    "link_header": (Pagination(type="link_header"), lambda n: f"{BASE}/items?p={n}"),
}


def _looping(style: str, length: int) -> Responder:
    """An API whose pages each hold one record and lead to the next (by cursor, next link
    or Link header): page 0 to page 1, page ``length`` back to page 1."""
    pointer = LOOPING[style][1]

    def respond(request: PageRequest) -> Page:
        at = int(_query(request).get("cursor") or _query(request).get("p") or 0)
        following = pointer(at % length + 1)
        rows = [{"id": at}]
        if style == "link_header":
            return _page(f"{BASE}/items", rows, rows, {"link": f'<{following}>; rel="next"'})
        return _page(f"{BASE}/items", {"data": rows, "next": following}, rows)

    return respond


@pytest.mark.parametrize("style", sorted(LOOPING))
@pytest.mark.parametrize("length", [2, 3, 16])
def test_a_next_page_leading_back_to_an_earlier_page_is_refused_before_it_is_asked_twice(
    style: str, length: int
) -> None:
    """``a -> b -> a``: an API cycling between pages would be walked forever, landing the
    same records again and again; a loop this short is refused before any page repeats."""
    pages = paginator(LOOPING[style][0])
    asked: list[PageRequest] = []
    with pytest.raises(ApiResponseError, match=r"asked for \d+ pages back .*go round in a loop"):
        walk(pages, lambda r: asked.append(r) or _looping(style, length)(r), limit=500)

    ids = [_looping(style, length)(r).records[0]["id"] for r in asked]
    assert ids == list(range(length + 1))  # every page once, none twice


@pytest.mark.parametrize("style", sorted(LOOPING))
def test_a_loop_longer_than_the_recent_requests_kept_is_refused_within_a_few_turns(
    style: str,
) -> None:
    length = 100
    pages = paginator(LOOPING[style][0])
    asked: list[PageRequest] = []
    with pytest.raises(ApiResponseError, match=r"asked for earlier .*go round in a loop"):
        walk(pages, lambda r: asked.append(r) or _looping(style, length)(r), limit=10_000)

    assert len(asked) <= 4 * length


def test_a_loop_is_refused_by_a_walk_resumed_from_its_checkpoint() -> None:
    """The walk's history is in the checkpoint: a run stopped inside the loop and resumed
    knows the pages asked before the stop."""
    config = LOOPING["cursor"][0]
    respond = _looping("cursor", 3)
    pages = paginator(config)
    first = pages.first()
    second = pages.next(first, respond(first))
    assert second is not None
    third = pages.next(second, respond(second))
    assert third is not None

    resumed = PageRequest.from_dict(third.to_dict())
    fourth = paginator(config).next(resumed, respond(resumed))
    assert fourth is not None  # cursor 3, the last before the loop
    with pytest.raises(ApiResponseError, match=r"\(cursor=1\): the pages go round in a loop"):
        paginator(config).next(fourth, respond(fourth))


def test_a_walk_past_an_unreadable_page_keeps_whether_has_more_was_seen() -> None:
    pages = paginator(Pagination(type="page_number", has_more_path="more"))
    second = pages.next(pages.first(), _page(BASE, {"data": [1], "more": True}, [{"id": 1}]))
    assert second is not None
    unreadable = Page(BASE, {}, None, [], readable=False)

    third = pages.past_unreadable(second, unreadable)

    assert third is not None
    assert third.flagged  # its absence from the next page is then the end, not a typo
    assert pages.next(third, _page(BASE, {"data": [3]}, [{"id": 3}])) is None


def test_a_link_header_loop_through_an_unreadable_page_is_refused() -> None:
    """Past a body it cannot read, a ``link_header`` walk follows the page's Link: one
    leading back to a page asked before (``a -> b (HTML, Link: a) -> a``) was walked for
    ever, the walk's history lost at the unreadable page."""
    pages = paginator(Pagination(type="link_header"))
    first = pages.first()
    rows = [{"id": 1}]
    second = pages.next(first, _page(BASE, rows, rows, {"link": f'<{BASE}/items?p=2>; rel="next"'}))
    assert second is not None
    looping_back = {"link": f'<{BASE}/items?p=1>; rel="next"'}
    unreadable = Page(f"{BASE}/items?p=2", looping_back, None, [], readable=False)
    third = pages.past_unreadable(second, unreadable)
    assert third is not None  # page 1 by its link: not asked by that URL before
    back_to_two = {"link": f'<{BASE}/items?p=2>; rel="next"'}

    with pytest.raises(ApiResponseError, match=r"asked for 2 pages back .*go round in a loop"):
        pages.next(third, _page(f"{BASE}/items?p=1", rows, rows, back_to_two))


def _unflagged_second(config: Pagination) -> tuple[Paginator, PageRequest]:
    """A paginator and the request after a first page with records and no has-more field."""
    pages = paginator(config)
    first = _page(BASE, {"data": [1, 2], "next": "abc"}, [{"id": 1}, {"id": 2}])
    second = pages.next(pages.first(), first)
    assert second is not None
    return pages, second


def test_only_a_made_up_next_page_asked_to_settle_has_more_may_be_past_the_end() -> None:
    numbered, probe = _unflagged_second(Pagination(type="page_number", has_more_path="more"))
    cursor, given = _unflagged_second(
        Pagination(type="cursor", cursor_path="next", has_more_path="more")
    )
    flagged = paginator(Pagination(type="page_number", has_more_path="more"))
    seen = flagged.next(flagged.first(), _page(BASE, {"data": [1], "more": True}, [{"id": 1}]))
    assert seen is not None

    assert numbered.probes(probe)
    assert not cursor.probes(given)  # a cursor the API gave is followed as any other
    assert not flagged.probes(seen)
    assert not numbered.probes(numbered.first())


@pytest.mark.parametrize(
    ("error", "ends"),
    [
        (ApiRequestError("404", source="s", endpoint="e", url=BASE, status=404), True),
        (ApiRequestError("400", source="s", endpoint="e", url=BASE, status=400), True),
        (ApiAuthError("403", source="s", endpoint="e", url=BASE, status=403), False),
        (ApiUnavailableError("503", source="s", endpoint="e", url=BASE, status=503), False),
        (ApiRequestError("no status", source="s", endpoint="e", url=BASE), False),
    ],
)
def test_a_made_up_next_page_refused_with_a_4xx_is_the_end(
    error: Exception, ends: bool, caplog: pytest.LogCaptureFixture
) -> None:
    pages, probe = _unflagged_second(Pagination(type="page_number", has_more_path="more"))

    with caplog.at_level("WARNING"):
        assert pages.past_the_end(probe, error) is ends
        assert not pages.past_the_end(pages.first(), error)  # not asked to settle anything

    assert len(caplog.records) == (1 if ends else 0)


def test_a_made_up_next_page_repeating_the_page_before_is_the_end_and_survives_a_checkpoint() -> (
    None
):
    pages, probe = _unflagged_second(Pagination(type="offset", page_size=5, has_more_path="more"))
    probe = pages.with_prior(probe, b'{"id":1}\n{"id":2}\n')

    restored = PageRequest.from_dict(probe.to_dict())

    assert restored == probe
    assert pages.repeats(restored, b'{"id":1}\n{"id":2}\n')
    assert not pages.repeats(restored, b'{"id":3}\n{"id":4}\n')
    assert not pages.repeats(restored, None)  # records too deep to encode: not compared


def test_once_a_page_had_has_more_its_absence_from_another_walks_first_page_is_the_end() -> None:
    pages = paginator(Pagination(type="page_number", has_more_path="more"))
    two = _page(BASE, {"data": [1], "more": True}, [{"id": 1}])
    assert pages.next(pages.first(), two) is not None  # a first walk (parent) saw the field

    only = _page(BASE, {"data": [1, 2]}, [{"id": 1}, {"id": 2}])

    assert pages.next(pages.first(), only) is None  # the next walk's only page: no page more


def test_the_same_records_history_survives_the_checkpoint_and_an_older_one_has_none() -> None:
    """A resumed walk knows its pages in a row with the same records; a checkpoint written
    before they were kept (or mangled) reads back as none counted."""
    request = PageRequest(params={"cursor": "3"}, same=("k" * 32, "w" * 32, 2))

    assert PageRequest.from_dict(request.to_dict()).same == ("k" * 32, "w" * 32, 2)
    older = {k: v for k, v in request.to_dict().items() if k != "same"}
    assert PageRequest.from_dict(older).same is None
    assert PageRequest.from_dict({**older, "same": ["k", None, True]}).same is None
    assert PageRequest.from_dict({**older, "same": ["k", 7, 1]}).same == ("k", None, 1)


@pytest.mark.parametrize(
    "link",
    [
        "https://bob:hunter2-Secret@evil.test/steal",
        "https://bob:hunter2-Secret@api.test/v1/items?page=2",  # the source's host, a password
    ],
)
def test_a_next_link_with_a_password_is_refused_without_showing_it(link: str) -> None:
    pages = paginator(Pagination(type="next_url", next_url_path="next"))
    page = _page(BASE, {"next": link}, [{"id": 1}])

    with pytest.raises(ApiResponseError, match=r"bob:\*\*\*@.*refused") as caught:
        pages.next(pages.first(), page)

    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "config",
    [
        Pagination(type="cursor", cursor_path="next"),
        Pagination(type="next_url", next_url_path="next"),
    ],
    ids=["cursor", "next_url"],
)
def test_a_next_cursor_or_link_too_long_for_a_url_is_refused_naming_the_page(
    config: Pagination,
) -> None:
    pages = paginator(config)
    page = _page(BASE, {"next": "/v1/items?c=" + "x" * 2_000_000}, [{"id": 1}])

    with pytest.raises(
        ApiResponseError,
        match=r"s/e: .* 'next' of https://api\.test/v1 is 2,000,0\d\d characters long, longer "
        r"than a URL may be \(32,768\)",
    ) as caught:
        pages.next(pages.first(), page)

    assert len(str(caught.value)) < 1000


@pytest.mark.parametrize(
    "link",
    [
        "https://api.test:443/v1/items?page=2",  # the default port said
        "HTTPS://API.Test/v1/items?page=2",  # other letter case
        "https://api.test./v1/items?page=2",  # the fully qualified form
        "https://Api.Test.:443/v1/items?page=2",  # all of them
    ],
)
@pytest.mark.parametrize("style", ["next_url", "link_header"])
def test_a_next_link_to_the_same_origin_spelled_otherwise_is_followed_to_the_source_host(
    style: str, link: str
) -> None:
    if style == "next_url":
        pages = paginator(Pagination(type="next_url", next_url_path="next"))
        page = _page(BASE, {"next": link}, [{"id": 1}])
    else:
        pages = paginator(Pagination(type="link_header"))
        page = _page(BASE, [{"id": 1}], [{"id": 1}], {"link": f'<{link}>; rel="next"'})

    following = pages.next(pages.first(), page)

    assert following is not None
    assert following.url == "https://api.test/v1/items?page=2"


@pytest.mark.parametrize(
    "link",
    [
        "http://api.test/v1/items?page=2",  # https -> http
        "http://api.test:443/v1/items?page=2",  # the port of https, not the scheme
        "https://api.test:8443/v1/items?page=2",  # another port
        "https://api.test.evil.test/v1/items?page=2",  # another host starting alike
        "https://api.test../v1/items?page=2",  # two dots: not a name of the host
        "https://api.tes/v1/items?page=2",
        "https://api.test:0/v1/items?page=2",  # port 0 is no default port
        "https://api.test@evil.test/v1/items?page=2",  # evil.test, its user api.test
    ],
)
def test_a_next_link_to_another_scheme_port_or_host_stays_refused(link: str) -> None:
    pages = paginator(Pagination(type="next_url", next_url_path="next"))
    page = _page(BASE, {"next": link}, [{"id": 1}])

    with pytest.raises(ApiResponseError, match="refused"):
        pages.next(pages.first(), page)
