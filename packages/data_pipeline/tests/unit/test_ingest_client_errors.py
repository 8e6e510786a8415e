"""What a failed request's error says: a refusal quotes what the API said, with every form
of the source's credentials masked (an API may echo the request: its URL, its
``Authorization`` header); a body cut by the timeout is said to have been still arriving."""

from __future__ import annotations

import base64
import gzip
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TypeVar
from urllib.parse import quote

import httpx
import pytest

from data_pipeline.errors import (
    ApiAuthError,
    ApiRequestError,
    ApiResponseError,
    ApiUnavailableError,
)
from data_pipeline.ingest.auth import OAuth2ClientCredentials
from data_pipeline.ingest.client import ApiClient
from etl_core.contracts import Auth, Endpoint, Source
from etl_core.secrets import Secret

Failure = TypeVar("Failure", bound=Exception)

SECRET = "s3cret/Key+with=signs"
ENV = {"SECRET": SECRET}
ENDPOINT = Endpoint(name="items", path="/items", dataset="shop_items")


def secret() -> Secret:
    return Secret("env:SECRET", environ=ENV)


def echoing(request: httpx.Request) -> httpx.Response:
    """An API refusing every request with its URL and credential headers echoed."""
    headers = request.headers
    said = (
        f"bad request {request.url} authorization={headers.get('authorization')} "
        f"key={headers.get('x-api-key')}"
    )
    return httpx.Response(400, text=said)


def failed_get(
    source: Source,
    api: Callable[[httpx.Request], httpx.Response],
    kind: type[Failure],
    match: str | None = None,
    *,
    authenticator: OAuth2ClientCredentials | None = None,
) -> Failure:
    """The error a client of ``source`` raises getting ``/items`` of the ``api`` (a mock
    transport's handler; no waits between attempts): a ``kind`` whose text matches ``match``."""
    client = ApiClient(
        source,
        authenticator=authenticator,
        transport=httpx.MockTransport(api),
        sleep=lambda _: None,
    )
    try:
        with pytest.raises(kind, match=match) as caught:
            client.get("items", "/items", {})
    finally:
        client.close()
    return caught.value


def refusal(auth: Auth, *, authenticator: OAuth2ClientCredentials | None = None) -> str:
    """What the error of an :func:`echoing` API's refusal says, the source's ``auth`` sent."""
    source = Source("https://api.test", (ENDPOINT,), source="shop", auth=auth)
    refused = failed_get(
        source, echoing, ApiRequestError, r"HTTP 400.*bad request", authenticator=authenticator
    )
    return str(refused)


@pytest.mark.parametrize(
    "auth",
    [
        Auth(type="bearer", token=secret()),
        Auth(type="api_key", key=secret()),
        Auth(type="api_key", key=secret(), location="query"),
        Auth(type="basic", username="etl", password=secret()),
    ],
    ids=["bearer", "api_key_header", "api_key_query", "basic"],
)
def test_no_form_of_the_secret_is_quoted(auth: Auth) -> None:
    said = refusal(auth)

    encoded = base64.b64encode(f"etl:{SECRET}".encode()).decode()
    for form in (SECRET, quote(SECRET, safe=""), encoded):
        assert form not in said
    assert "***" in said


def test_the_fetched_oauth2_access_token_is_not_quoted() -> None:
    def token_endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "at-9f8e7d6c5b", "expires_in": 60})

    auth = Auth(
        type="oauth2", token_url="https://auth.test/token", client_id="c", client_secret=secret()
    )
    oauth = OAuth2ClientCredentials(
        "shop", auth, timeout=5, transport=httpx.MockTransport(token_endpoint)
    )

    said = refusal(auth, authenticator=oauth)

    assert "at-9f8e7d6c5b" not in said
    assert "authorization=Bearer ***" in said


def test_a_secret_cut_off_at_the_end_of_the_quoted_part_is_masked() -> None:
    """Only the body's start is read; collapsing a long indent may bring its cut end, the
    first characters of a secret, into the quoted part."""

    def padded(request: httpx.Request) -> httpx.Response:
        key = request.headers["X-API-Key"]
        return httpx.Response(400, text="bad key" + " " * (2048 - 7 - 6) + key)

    source = Source(
        "https://api.test", (ENDPOINT,), source="shop", auth=Auth(type="api_key", key=secret())
    )
    refused = failed_get(source, padded, ApiRequestError)

    assert SECRET[:6] not in str(refused)


def test_a_body_still_arriving_at_the_timeout_is_said_so_not_as_no_answer() -> None:
    """A large page arriving steadily is cut by the whole-request timeout: the error tells
    to raise ``timeout``, not that the API did not answer."""

    def chunks() -> Iterator[bytes]:
        yield b'{"data": ['
        for _ in range(50):
            time.sleep(0.01)
            yield b"{}, "
        yield b"{}]}"

    def slow(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_Stream(chunks()))

    source = Source(
        "https://api.test",
        (ENDPOINT,),
        source="shop",
        timeout=timedelta(seconds=0.1),
        max_attempts=1,
    )
    failed = failed_get(source, slow, ApiUnavailableError, r"still arriving after 0\.1s")

    assert "no answer" not in str(failed)


class _Stream(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks


@pytest.mark.parametrize(
    ("header", "said"),
    [
        ("inf", "HTTP 503"),
        ("1e999", "HTTP 503"),
        ("7200", "HTTP 503, Retry-After 7200s (waited 300s at most: max_retry_wait)"),
        ("2.5", "HTTP 503, Retry-After 2.5s"),
    ],
)
def test_a_retry_after_is_said_as_a_number_of_seconds_never_infs(header: str, said: str) -> None:
    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": header})

    source = Source(
        "https://api.test", (ENDPOINT,), source="shop", max_attempts=1,
        max_retry_wait=timedelta(minutes=5),
    )  # fmt: skip
    failed = failed_get(source, busy, ApiUnavailableError)

    assert str(failed).endswith(said)


@pytest.mark.parametrize(
    "location",
    ["http://api.test/v2/items", "https://api.test:8443/v2/items", "https://evil.test/v2/items"],
    ids=["https_to_http", "another_port", "another_host"],
)
def test_a_query_key_never_follows_a_redirect_off_the_origin(location: str) -> None:
    """The key is re-added to a followed redirect on the base URL's scheme, host and port
    only: a downgrade to http, another port or host is refused before it is asked."""
    asked: list[httpx.URL] = []

    def moved(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(301, headers={"Location": location})

    auth = Auth(type="api_key", key=secret(), location="query")
    source = Source("https://api.test", (ENDPOINT,), source="shop", auth=auth, max_attempts=1)
    refused = failed_get(source, moved, ApiRequestError, r"redirects to .*refused")

    assert [url.host for url in asked] == ["api.test"]  # the redirect was never followed
    assert SECRET not in str(refused)
    assert quote(SECRET, safe="") not in str(refused)


@pytest.mark.parametrize("status", [200, 302, 500])
def test_a_body_compressed_twice_is_refused_before_a_layer_is_decoded(status: int) -> None:
    """httpx decodes the inner layer of each read whole: 50 kB of gzip of gzip are 50 MB
    before max_page_bytes (1 KiB here) is checked; a followed redirect's and a refusal's
    bodies are decoded alike."""
    bomb = gzip.compress(gzip.compress(b"0" * 50_000_000))

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Encoding": "gzip, gzip"}
        if status == 302:
            headers["Location"] = "/v2/items"
        if request.url.path == "/v2/items":
            return httpx.Response(200, json=[])
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(bomb))

    source = Source(
        "https://api.test", (ENDPOINT,), source="shop", max_attempts=1, max_page_bytes=1024
    )
    tracemalloc.start()
    try:
        failed_get(
            source,
            answer,
            ApiResponseError,
            r"GET https://api.test/items: the body is sent compressed twice "
            r"\(Content-Encoding 'gzip, gzip'\)",
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 10_000_000


def test_a_redirect_whose_body_goes_on_is_refused_before_it_is_read_whole() -> None:
    """httpx reads a followed redirect's body whole, with no bound: a server on the
    source's own host sending on and on would exhaust the memory."""
    sent: list[int] = []

    def endless() -> Iterator[bytes]:
        for _ in range(64):  # 64 MiB, as a server sending without end
            sent.append(1)
            yield b"x" * (1024 * 1024)

    def moved(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/items":
            return httpx.Response(302, headers={"Location": "/v2/items"}, content=endless())
        return httpx.Response(200, json=[])

    source = Source("https://api.test", (ENDPOINT,), source="shop", max_attempts=1)
    failed_get(source, moved, ApiResponseError, r"GET https://api.test/items: its redirect")

    assert len(sent) == 1


def test_a_url_too_long_to_send_fails_naming_the_endpoint_not_an_httpx_error() -> None:
    """A cursor the API hands out megabytes long makes a URL httpx refuses to build."""
    source = Source("https://api.test", (ENDPOINT,), source="shop", max_attempts=1)
    client = ApiClient(source, transport=httpx.MockTransport(echoing), sleep=lambda _: None)
    try:
        with pytest.raises(
            ApiResponseError,
            match=r"shop/items: GET https://api\.test/items\?cursor=x+\.\.\. "
            r"\(2,000,0\d\d characters\): not a URL that can be sent",
        ) as caught:
            client.get("items", "/items", {"cursor": "x" * 2_000_000})
    finally:
        client.close()

    assert len(str(caught.value)) < 1000


@pytest.mark.parametrize(
    ("status", "kind"), [(401, ApiAuthError), (403, ApiAuthError), (404, ApiRequestError)]
)
def test_a_refusal_whose_body_does_not_decode_is_the_refusal_not_an_outage_retried(
    status: int, kind: type[Exception]
) -> None:
    """A gateway labelling its plain error page ``gzip``: the 404 (a mistyped path) or the
    401 (credentials to mend) is said with its status, once, not retried as an outage."""
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        plain = httpx.ByteStream(b"<html><h1>Not here</h1></html>")
        return httpx.Response(status, headers={"Content-Encoding": "gzip"}, stream=plain)

    source = Source(
        "https://api.test",
        (ENDPOINT,),
        source="shop",
        auth=Auth(type="bearer", token=secret()),
        max_attempts=3,
    )
    refused = failed_get(
        source, answer, kind, rf"GET https://api\.test/items answered HTTP {status}"
    )

    assert not isinstance(refused, ApiUnavailableError)
    assert len(asked) == (2 if status == 401 else 1)  # a 401: once more, the token read again


def test_a_401_body_before_the_renewed_attempt_is_never_decoded() -> None:
    """httpx reads a response its auth flow answers with another request whole, unbounded:
    a 401 compressed twice would be gigabytes before the renewed attempt."""
    bomb = gzip.compress(gzip.compress(b"0" * 50_000_000))
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if len(asked) == 1:
            headers = {"Content-Encoding": "gzip, gzip"}
            return httpx.Response(401, headers=headers, stream=httpx.ByteStream(bomb))
        return httpx.Response(200, json=[{"id": 1}])

    source = Source(
        "https://api.test",
        (ENDPOINT,),
        source="shop",
        auth=Auth(type="bearer", token=secret()),
        max_attempts=1,
        max_page_bytes=1024,
    )
    client = ApiClient(source, transport=httpx.MockTransport(answer), sleep=lambda _: None)
    tracemalloc.start()
    try:
        response = client.get("items", "/items", {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()

    assert response.body == b'[{"id":1}]'
    assert len(asked) == 2
    assert peak < 10_000_000
