"""A hostile or broken API: every run ends, bounded, with an error naming the source, the
page and what was expected, and nothing past what was durably written is committed."""

from __future__ import annotations

import email.utils
import gzip
import json
import time
import tracemalloc
import zlib

import pytest

from data_pipeline.errors import (
    ApiAuthError,
    ApiResponseError,
    ApiUnavailableError,
)
from data_pipeline.ingest import ObjectStateStore

from .conftest import SECRETS, Fault, cursor_items
from .test_ingest_dead_letters import dead_letters

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

PAGED = """
[[endpoints]]
name = "items"
path = "/page"
dataset = "shop_items"
records_path = "data"
[endpoints.pagination]
type = "page_number"
size_param = "per_page"
page_size = 5
"""


def _page(records: list, cursor: str | None) -> bytes:
    return json.dumps({"data": records, "meta": {"next": cursor}}).encode()


def test_a_cursor_cycle_a_b_a_is_refused_without_landing_a_page_twice(workspace, api) -> None:
    workspace.source(CURSOR, endpoints=("items",))
    first, second = api.records[:3], api.records[3:6]
    api.faults += [
        Fault("/cursor", body=_page(first, "A")),
        Fault("/cursor", body=_page(second, "B")),
        Fault("/cursor", body=_page(api.records[6:9], "A")),
    ]

    with pytest.raises(ApiResponseError, match=r"shop/items: .*cursor=B.*loop.*refused"):
        workspace.ingest("items")

    landed = workspace.landed("items")
    assert len(landed) == len({item["id"] for item in landed})  # nothing twice
    assert [r["query"].get("cursor") for r in api.requests] == [None, "A", "B"]


@pytest.mark.parametrize(
    "link",
    [
        "ftp://127.0.0.1/next?after=5",
        "file:///etc/passwd",
        "https://127.0.0.1/next?after=5",
        "//evil.test/next?after=5",
    ],
)
def test_a_next_link_to_another_scheme_or_host_never_receives_the_credentials(
    workspace, api, monkeypatch, link
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", SECRETS["token"])
    workspace.source(
        '[auth]\ntype = "bearer"\ntoken = "env:SHOP_TOKEN"\n'
        """
[[endpoints]]
name = "items"
path = "/next"
dataset = "shop_items"
records_path = "results"
[endpoints.pagination]
type = "next_url"
next_url_path = "links.next"
""",
        endpoints=("items",),
    )
    body = json.dumps({"results": api.records[:5], "links": {"next": link}}).encode()
    api.faults.append(Fault("/next", body=body))

    with pytest.raises(ApiResponseError, match=r"shop/items: .*refused") as caught:
        workspace.ingest("items")

    assert SECRETS["token"] not in str(caught.value)
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    "retry_after",
    [
        "1000000000",
        "1e999",
        "99999999999999999999999999999999",
        "soon",
        "-5",
        "",
        email.utils.formatdate(time.time() - 86_400, usegmt=True),  # a date past
        "Mon, 99 Foo 2026 99:99:99 GMT",
    ],
)
def test_a_huge_past_or_garbage_retry_after_waits_within_the_cap(
    workspace, api, retry_after
) -> None:
    workspace.source('max_retry_wait = "5s"\n' + PAGED, endpoints=("items",))
    api.faults += [Fault("/page", 503, {"Retry-After": retry_after}) for _ in range(2)]

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert len(workspace.sleeps) == 2
    assert all(0 <= waited <= 5 for waited in workspace.sleeps)


def test_a_server_sending_headers_then_no_body_fails_within_the_timeout_naming_the_page(
    workspace, api
) -> None:
    workspace.source('timeout = "1s"\nmax_attempts = 2\n' + cursor_items(), endpoints=("items",))
    api.faults += [
        Fault("/cursor", body=b'{"data": []}', stall=5, after=1),
        Fault("/cursor", body=b'{"data": []}', stall=5),
    ]
    started = time.monotonic()

    with pytest.raises(ApiUnavailableError, match=r"shop/items: GET .*/cursor\?.*cursor=10"):
        workspace.ingest("items")

    assert time.monotonic() - started < 5
    state = ObjectStateStore(workspace.store).load("shop", "items")
    assert state.cursor is None  # the incremental mark did not move past a failed window


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not_json"),
        (b'{"data": [{"id": 1, "na', "not_json"),
        (b'{"data": [{"id": 1, "name": "caf\xe9"}]}', "not_json"),
        (b'{"data": {"id": 1}}', "not_an_array"),
    ],
    ids=["empty", "truncated", "latin-1", "records-an-object"],
)
def test_an_unreadable_page_is_set_aside_naming_the_page_and_what_was_expected(
    workspace, api, body, reason
) -> None:
    workspace.source(PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", body=body, after=1))

    [outcome] = workspace.ingest("items")

    assert outcome.dead_letters == 1
    assert workspace.landed("items") == api.records[:5] + api.records[10:]
    [letter] = dead_letters(workspace)
    assert letter["reason"] == reason
    assert "page=2" in letter["url"]
    assert "shop/items" in letter["error"]


@pytest.mark.parametrize(
    ("status", "answer", "said"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "revoked"},
            r"HTTP 400 \(error invalid_grant: revoked\)",
        ),
        (200, {"error": "temporarily_unavailable"}, r"access_token"),
        (200, {"access_token": "", "token_type": "bearer"}, r"access_token"),
        (200, ["not", "an", "object"], r"access_token"),
    ],
)
def test_a_token_endpoint_answering_no_token_fails_naming_it(
    workspace, api, monkeypatch, status, answer, said
) -> None:
    monkeypatch.setenv("SHOP_CLIENT_SECRET", SECRETS["client_secret"])
    workspace.source(
        f'[auth]\ntype = "oauth2"\ntoken_url = "{api.url}/token"\nclient_id = "etl-client"\n'
        'client_secret = "env:SHOP_CLIENT_SECRET"\n' + PAGED,
        endpoints=("items",),
    )
    api.faults.append(Fault("/token", status, body=json.dumps(answer).encode()))

    with pytest.raises((ApiAuthError, ApiResponseError), match=said) as caught:
        workspace.ingest("items")

    assert "shop" in str(caught.value)
    assert "/token" in str(caught.value)
    assert SECRETS["client_secret"] not in str(caught.value)
    assert api.requests == []


def test_a_token_without_expires_in_is_used_and_fetched_again_on_a_401(
    workspace, api, monkeypatch
) -> None:
    monkeypatch.setenv("SHOP_CLIENT_SECRET", SECRETS["client_secret"])
    workspace.source(
        f'[auth]\ntype = "oauth2"\ntoken_url = "{api.url}/token"\nclient_id = "etl-client"\n'
        'client_secret = "env:SHOP_CLIENT_SECRET"\n' + PAGED,
        endpoints=("items",),
    )
    answer = {"access_token": "tok-no-expiry", "token_type": "bearer"}
    api.faults.append(Fault("/token", body=json.dumps(answer).encode()))

    workspace.ingest("items")  # "tok-no-expiry" is refused (401): a new token, once

    assert workspace.landed("items") == api.records


def _gzip(chunks) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([*(compressor.compress(chunk) for chunk in chunks), compressor.flush()])


def test_a_gzip_bomb_in_two_layers_is_refused_without_decompressing_it(workspace, api) -> None:
    """657 bytes of gzip of gzip are 300 MB of JSON: httpx decodes the second layer of one
    network read in one piece, past any size limit; two compressing layers are refused."""
    workspace.source('max_page_bytes = "1MiB"\n' + PAGED, endpoints=("items",))
    inner = _gzip([b'{"data": [], "pad": "'] + [b"0" * (1 << 20)] * 300 + [b'"}'])
    bomb = _gzip([inner])
    api.faults.append(Fault("/page", headers={"Content-Encoding": "gzip, gzip"}, body=bomb))
    tracemalloc.start()
    try:
        with pytest.raises(
            ApiResponseError,
            match=r"shop/items: GET .*/page\?page=1&per_page=5: the body is sent compressed "
            r"twice \(Content-Encoding 'gzip, gzip'\)",
        ):
            workspace.ingest("items")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 64 * 1024 * 1024
    assert workspace.sleeps == []  # not retried
    workspace.ingest("items", run_id="20260301T010000Z-bbbbbb")
    assert workspace.landed("items") == api.records


def test_a_cursor_megabytes_long_fails_naming_the_page_and_keeps_the_checkpoint(
    workspace, api
) -> None:
    workspace.source(CURSOR, endpoints=("items",))
    api.faults.append(Fault("/cursor", body=_page(api.records[:3], "x" * 2_000_000)))

    with pytest.raises(
        ApiResponseError,
        match=r"shop/items: cursor_path 'meta\.next' of .*/cursor is 2,000,000 characters long",
    ):
        workspace.ingest("items")

    assert len(api.requests) == 1  # never sent
    workspace.ingest("items", run_id="20260301T010000Z-bbbbbb")
    landed = workspace.landed("items")
    assert len(landed) == len({item["id"] for item in landed})
    assert {item["id"] for item in landed} == {item["id"] for item in api.records}


@pytest.mark.parametrize("body", [b"not gzip at all", b"\x1f\x8b\x07\x00bad method"])
def test_a_body_its_content_encoding_cannot_decode_fails_naming_the_page(
    workspace, api, body
) -> None:
    """Was a raw httpx.DecodingError, naming neither the source nor the page; retried (a
    proxy may have mangled it), then the endpoint fails, its checkpoint unmoved."""
    workspace.source("max_attempts = 2\n" + PAGED, endpoints=("items",))
    coded = {"Content-Encoding": "gzip"}
    api.faults += [
        Fault("/page", headers=coded, body=body, after=1),
        Fault("/page", headers=coded, body=body),
    ]

    with pytest.raises(
        ApiUnavailableError,
        match=r"shop/items: GET .*/page\?page=2&per_page=5: .*Content-Encoding 'gzip'",
    ):
        workspace.ingest("items")

    state = ObjectStateStore(workspace.store).load("shop", "items")
    assert state.cursor is None


def test_a_gzip_body_cut_short_is_set_aside_as_not_json_naming_the_page(workspace, api) -> None:
    """httpx takes a gzip stream without its end as what it decoded: the JSON is cut."""
    workspace.source(PAGED, endpoints=("items",))
    body = gzip.compress(json.dumps({"data": api.records[5:10]}).encode())[:-40]
    api.faults.append(Fault("/page", headers={"Content-Encoding": "gzip"}, body=body, after=1))

    [outcome] = workspace.ingest("items")

    assert outcome.dead_letters == 1
    [letter] = dead_letters(workspace)
    assert letter["reason"] == "not_json"
    assert "page=2" in letter["url"]
    assert workspace.landed("items") == api.records[:5] + api.records[10:]
