"""Auth, retries, rate limits and refusals against the real HTTP API."""

from __future__ import annotations

import email.utils
import gzip
import json
import time

import pytest

from data_pipeline.errors import (
    ApiAuthError,
    ApiRequestError,
    ApiResponseError,
    ApiUnavailableError,
)
from data_pipeline.ingest import ObjectStateStore
from etl_core.testing import capture_metrics

from .conftest import SECRETS, Fault, RecordsApi, Workspace, everything_written

PAGED = """
[[endpoints]]
name = "items"
path = "/page"
dataset = "shop_items"
records_path = "data"
chunk_records = 10
[endpoints.pagination]
type = "page_number"
size_param = "per_page"
page_size = 5
"""

AUTH = {
    "bearer": '[auth]\ntype = "bearer"\ntoken = "env:SHOP_TOKEN"\n',
    "api_key_header": '[auth]\ntype = "api_key"\nkey = "env:SHOP_KEY"\n',
    "api_key_query": '[auth]\ntype = "api_key"\nkey = "env:SHOP_KEY"\nlocation = "query"\n',
    "basic": '[auth]\ntype = "basic"\nusername = "etl"\npassword = "file:{secret_file}"\n',
    "oauth2": (
        '[auth]\ntype = "oauth2"\ntoken_url = "{url}/token"\nclient_id = "etl-client"\n'
        'client_secret = "env:SHOP_CLIENT_SECRET"\nrefresh_margin = "0s"\n'
    ),
}


@pytest.fixture
def secret_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOP_TOKEN", SECRETS["token"])
    monkeypatch.setenv("SHOP_KEY", SECRETS["api_key"])
    monkeypatch.setenv("SHOP_CLIENT_SECRET", SECRETS["client_secret"])
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRETS["password"] + "\n")
    return secret_file


@pytest.mark.parametrize("kind", sorted(AUTH))
def test_every_auth_kind_is_accepted_and_no_secret_is_written(
    workspace, api, secret_env, kind
) -> None:
    api.auth = kind
    workspace.source(
        AUTH[kind].format(url=api.url, secret_file=secret_env) + PAGED, endpoints=("items",)
    )

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    written = everything_written(workspace)
    for secret in SECRETS.values():
        assert secret.encode() not in written


def test_without_credentials_the_api_refuses_and_the_error_names_url_and_status(
    workspace, api
) -> None:
    api.auth = "bearer"
    workspace.source(PAGED, endpoints=("items",))

    with pytest.raises(ApiAuthError, match=r"/page\?.*HTTP 401") as caught:
        workspace.ingest("items")

    assert caught.value.status == 401
    state = ObjectStateStore(workspace.store).load("shop", "items")
    assert state.consecutive_failures == 1
    assert "401" in state.last_error


@pytest.mark.parametrize(
    ("kind", "variable", "value"),
    [
        ("bearer", "SHOP_TOKEN", SECRETS["token"] + " "),
        ("api_key_header", "SHOP_KEY", SECRETS["api_key"] + "\nX-Injected: 1"),
    ],
    ids=["trailing_space", "line_break"],
)
def test_a_secret_no_http_header_can_carry_fails_at_once_and_is_said_nowhere(
    workspace, api, monkeypatch, kind, variable, value
) -> None:
    monkeypatch.setenv(variable, value)  # a stray space or line break in the variable
    api.auth = kind
    workspace.source(AUTH[kind] + PAGED, endpoints=("items",))

    with pytest.raises(ApiRequestError, match=r"could not be sent.*\[auth\]") as caught:
        workspace.ingest("items")

    assert workspace.sleeps == []  # not taken for a connection failure and retried
    state = ObjectStateStore(workspace.store).load("shop", "items")
    assert state.consecutive_failures == 1
    secret = value.split()[0]
    for said in (str(caught.value), state.last_error):
        assert "could not be sent" in said
        assert secret not in said


def test_an_oauth2_token_expiring_mid_run_is_refreshed(workspace, api, secret_env) -> None:
    api.auth = "oauth2"
    api.token_lifetime = 0.3
    api.delay = 0.06
    workspace.source(AUTH["oauth2"].format(url=api.url) + PAGED, endpoints=("items",))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert len(api.issued) >= 2


def test_a_401_mid_run_fetches_a_new_oauth2_token_once(workspace, api, secret_env) -> None:
    api.auth = "oauth2"
    workspace.source(AUTH["oauth2"].format(url=api.url) + PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 401))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert len(api.issued) == 2


def test_wrong_client_credentials_fail_naming_the_token_endpoint(
    workspace, api, monkeypatch
) -> None:
    monkeypatch.setenv("SHOP_CLIENT_SECRET", "wrong")
    api.auth = "oauth2"
    workspace.source(AUTH["oauth2"].format(url=api.url) + PAGED, endpoints=("items",))

    with pytest.raises(ApiAuthError, match=r"token endpoint .*/token refused .*HTTP 401"):
        workspace.ingest("items")


@pytest.mark.parametrize("head", [False, True], ids=["body", "head"])
def test_a_token_endpoint_dripping_its_answer_fails_within_the_timeout(
    workspace, api, secret_env, head
) -> None:
    """httpx's timeout bounds each read: a token answer arriving a byte at a time held the
    run as long as the server kept sending."""
    api.auth = "oauth2"
    source = 'timeout = "1s"\nmax_attempts = 1\n' + AUTH["oauth2"].format(url=api.url)
    workspace.source(source + PAGED, endpoints=("items",))
    slow = Fault("/token", headers={"X-Slow": "a" * 60}, body=b" " * 60, trickle=0.1, head=head)
    api.faults.append(slow)  # 6s at least
    started = time.monotonic()

    with pytest.raises(
        ApiUnavailableError, match=r"shop: the token endpoint .*/token did not answer whole within"
    ):
        workspace.ingest("items")

    assert time.monotonic() - started < 4
    assert api.requests == []


def test_429_with_retry_after_in_seconds_is_honoured(workspace, api) -> None:
    workspace.source(PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 429, {"Retry-After": "7"}))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert workspace.sleeps == [7.0]


def test_429_with_retry_after_as_an_http_date_is_honoured(workspace, api) -> None:
    workspace.source(PAGED, endpoints=("items",))
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    api.faults.append(Fault("/page", 429, {"Retry-After": when}))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    [waited] = workspace.sleeps
    assert 25 <= waited <= 31


def test_a_retry_after_beyond_the_cap_is_capped(workspace, api) -> None:
    workspace.source('max_retry_wait = "2s"\n' + PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 503, {"Retry-After": "3600"}))

    workspace.ingest("items")

    assert workspace.sleeps == [2.0]


def test_5xx_flaps_are_retried_with_backoff(workspace, api) -> None:
    workspace.source(PAGED, endpoints=("items",))
    api.faults += [Fault("/page", 500), Fault("/page", 502), Fault("/page", 503)]

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert len(workspace.sleeps) == 3


def test_a_server_that_keeps_failing_fails_the_endpoint_after_max_attempts(workspace, api) -> None:
    workspace.source("max_attempts = 3\n" + PAGED, endpoints=("items",))
    api.faults += [Fault("/page", 500) for _ in range(3)]

    with pytest.raises(ApiUnavailableError, match="HTTP 500"):
        workspace.ingest("items")

    assert workspace.landed("items") == []


def test_a_response_slower_than_the_timeout_is_retried(workspace, api) -> None:
    workspace.source('timeout = "0.3s"\n' + PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", delay=1.0))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert len(workspace.sleeps) == 1


def test_a_body_trickling_in_beyond_the_timeout_is_retried(workspace, api) -> None:
    """``timeout`` bounds the whole request: a server sending a byte now and then, each
    within the read timeout, held the run for as long as it kept sending."""
    workspace.source('timeout = "0.5s"\n' + PAGED, endpoints=("items",))
    page = json.dumps({"data": api.records[:5], "meta": {"total": len(api.records)}})
    api.faults.append(Fault("/page", body=page.encode(), trickle=0.02))  # 4 s or more

    started = time.monotonic()
    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert len(workspace.sleeps) == 1
    assert time.monotonic() - started < 3


def test_headers_trickling_in_beyond_the_timeout_are_cut_at_it(workspace, api) -> None:
    """httpx's timeouts bound each read: a status line and headers arriving a byte at a time
    held the run as long as the server kept sending (64 kB of head: weeks)."""
    workspace.source('timeout = "1s"\nmax_attempts = 1\n' + PAGED, endpoints=("items",))

    _a_trickling_head_is_cut(workspace, api, r"shop/items: GET .*/page\?.*within 1s")


def _a_trickling_head_is_cut(workspace: Workspace, api: RecordsApi, error: str) -> None:
    """Check that ``/page`` answering its status line and 60-byte headers a byte each 0.1s
    (6s and more) fails the run with an error matching ``error``, well before the head
    is in: the source's ``timeout = "1s"`` bounds the whole request."""
    slow = Fault("/page", headers={"X-Slow": "a" * 60}, body=b"{}", trickle=0.1, head=True)
    api.faults.append(slow)
    started = time.monotonic()

    with pytest.raises(ApiUnavailableError, match=error):
        workspace.ingest("items")

    assert time.monotonic() - started < 4


def test_a_404_fails_at_once_naming_the_url_and_status(workspace, api) -> None:
    workspace.source(PAGED.replace('"/page"', '"/missing"'), endpoints=("items",))

    with pytest.raises(ApiRequestError, match=r"GET .*/missing\?.* HTTP 404") as caught:
        workspace.ingest("items")

    assert caught.value.status == 404
    assert workspace.sleeps == []


def test_a_400_names_what_the_api_said_without_a_secret_it_echoes(
    workspace, api, secret_env
) -> None:
    api.auth = "api_key_query"
    workspace.source(AUTH["api_key_query"] + PAGED, endpoints=("items",))
    said = f'{{"error": "per_page must be 100 or less", "echo": "api_key={SECRETS["api_key"]}"}}'
    api.faults.append(Fault("/page", 400, body=said.encode()))

    with pytest.raises(ApiRequestError, match=r"HTTP 400 .*per_page must be 100 or less") as caught:
        workspace.ingest("items")

    assert SECRETS["api_key"] not in str(caught.value)
    state = ObjectStateStore(workspace.store).load("shop", "items")
    assert "per_page must be 100 or less" in state.last_error
    assert SECRETS["api_key"] not in state.last_error


def test_api_key_in_the_query_is_not_in_the_manifest_urls(workspace, api, secret_env) -> None:
    api.auth = "api_key_query"
    workspace.source(AUTH["api_key_query"] + PAGED, endpoints=("items",))

    workspace.ingest("items")

    manifest = next(k for k in workspace.keys("raw/") if k.endswith("_manifest.json"))
    document = json.loads(workspace.store.read_bytes(manifest))
    assert all("api_key" not in page["url"] for page in document["pages"])
    assert all(r["query"].get("api_key") == SECRETS["api_key"] for r in api.requests)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_rate_limit_spaces_requests(workspace, api, concurrency) -> None:
    limit = f"concurrency = {concurrency}\n[rate_limit]\nrequests_per_second = 20\nburst = 1\n"
    workspace.source(limit + PAGED, endpoints=("items",))  # pages ahead share the bucket
    started = time.monotonic()

    workspace.ingest("items")

    pages = len(api.requests)
    assert pages >= 10
    assert time.monotonic() - started >= (pages - 1) / 20 * 0.9


def test_requests_retries_pages_records_and_bytes_are_counted(workspace, api) -> None:
    workspace.source(PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 503, {"Retry-After": "1"}))

    with capture_metrics() as metrics:
        [outcome] = workspace.ingest("items")

    labels = {"source": "shop", "endpoint": "items"}
    assert metrics.value("etl_data_pipeline_api_requests_total", **labels, status="503") == 1
    pages = 11  # 47 records, 5 a page, then the empty page that ends the walk
    assert metrics.value("etl_data_pipeline_api_requests_total", **labels, status="200") == pages
    assert metrics.value("etl_data_pipeline_api_retries_total", **labels) == 1
    assert metrics.value("etl_data_pipeline_api_rate_limit_wait_seconds_total", source="shop") == 1
    assert metrics.value("etl_data_pipeline_api_pages_total", **labels) == outcome.pages == pages
    assert metrics.value("etl_data_pipeline_api_records_total", **labels) == len(api.records)
    assert metrics.value("etl_data_pipeline_api_bytes_total", **labels) > 0
    assert metrics.count("etl_data_pipeline_api_request_seconds", **labels) == pages + 1


def test_a_redirect_on_the_source_s_host_is_followed(workspace, api) -> None:
    workspace.source(PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 302, {"Location": "/page?page=1&per_page=5"}))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records


@pytest.mark.parametrize("kind", sorted(AUTH))
def test_a_redirect_on_the_source_s_host_keeps_every_kind_of_credentials(
    workspace, api, secret_env, kind
) -> None:
    """A query key is in the URL the Location replaces: the redirected page answered 401."""
    api.auth = kind
    auth = AUTH[kind].format(url=api.url, secret_file=secret_env)
    workspace.source(auth + PAGED, endpoints=("items",))
    api.faults.append(Fault("/page", 302, {"Location": "/page?page=1&per_page=5"}))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records
    assert SECRETS["api_key"] not in everything_written(workspace).decode()


def test_a_redirect_to_another_host_is_refused_naming_both(workspace, api, secret_env) -> None:
    """The api_key header would go with it: a redirect is held to the rule of next links."""
    api.auth = "api_key_header"
    workspace.source(AUTH["api_key_header"] + PAGED, endpoints=("items",))
    elsewhere = api.url.replace("127.0.0.1", "127.0.0.2") + "/collect"
    api.faults.append(Fault("/page", 302, {"Location": elsewhere}))

    with pytest.raises(
        ApiRequestError, match=r"shop/items: GET .*/page\?.* redirects to http://127\.0\.0\.2:"
    ):
        workspace.ingest("items")

    assert [r["path"] for r in api.requests] == ["/page"]  # asked once, never retried
    assert workspace.sleeps == []


def test_a_redirect_loop_fails_at_once_naming_the_url(workspace, api) -> None:
    workspace.source(PAGED, endpoints=("items",))
    api.faults.extend(Fault("/page", 302, {"Location": "/page?again=1"}) for _ in range(30))

    with pytest.raises(ApiRequestError, match=r"GET .*/page\?.*too many redirects"):
        workspace.ingest("items")

    assert workspace.sleeps == []


def test_a_gzip_bomb_is_refused_at_max_page_bytes_and_the_rerun_lands_all(workspace, api) -> None:
    """20 MB of JSON sent as 20 kB of gzip: read whole, a larger one would exhaust the
    memory; the read stops past max_page_bytes, and the page is not retried."""
    workspace.source('max_page_bytes = "1MiB"\n' + PAGED, endpoints=("items",))
    bomb = gzip.compress(b'{"data": [], "pad": "' + b"0" * 20_000_000 + b'"}')
    api.faults.append(Fault("/page", headers={"Content-Encoding": "gzip"}, body=bomb, after=2))

    with pytest.raises(
        ApiResponseError,
        match=r"shop/items: GET .*/page\?page=3&per_page=5: the body is larger than the "
        r"source's max_page_bytes \(1MiB, 1,048,576 bytes; decompressed\)",
    ):
        workspace.ingest("items")
    assert len(api.requests) == 3  # not retried
    assert workspace.sleeps == []

    workspace.ingest("items", run_id="20260301T010000Z-bbbbbb")

    assert workspace.landed("items") == api.records


def test_a_body_declared_larger_than_max_page_bytes_is_refused_before_it_is_read(
    workspace, api
) -> None:
    workspace.source('max_page_bytes = "1KiB"\n' + PAGED, endpoints=("items",))
    page = json.dumps({"data": api.records[:5], "pad": "x" * 2000}).encode()
    api.faults.append(Fault("/page", body=page))

    with pytest.raises(ApiResponseError, match=r"max_page_bytes .*: its Content-Length is 2,"):
        workspace.ingest("items")


@pytest.fixture
def through_proxy(workspace, api, monkeypatch):
    """The source's API behind an HTTP proxy of the environment (the test API answers the
    proxy's absolute-URL requests): the source's host itself resolves nowhere."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", api.url)
    path = workspace.config / "sources" / "shop.toml"

    def source(body: str) -> None:
        workspace.source(body, endpoints=("items",))
        path.write_text(path.read_text().replace(api.url, "http://shop.invalid", 1))

    return source


def test_the_environments_http_proxy_is_used(workspace, api, through_proxy) -> None:
    through_proxy("max_attempts = 1\n" + PAGED)

    [outcome] = workspace.ingest("items")

    assert outcome.records == len(api.records)


def test_headers_trickling_in_through_a_proxy_are_cut_at_the_timeout(
    workspace, api, through_proxy
) -> None:
    through_proxy('timeout = "1s"\nmax_attempts = 1\n' + PAGED)

    _a_trickling_head_is_cut(workspace, api, r"GET http://shop.invalid/page\?.*within 1s")
