"""The authenticator contract: each kind signs a request, keeps its secret out of every URL and
repr, and answers a 401 with at most one renewed attempt."""

from __future__ import annotations

import base64
import gzip
import pickle
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from data_pipeline.errors import ApiAuthError, ApiError, ApiUnavailableError
from data_pipeline.ingest.auth import AUTHENTICATORS, Authenticator, OAuth2ClientCredentials
from etl_core.contracts import Auth
from etl_core.secrets import Secret

SECRET = "sup3r-Secret-value"
ENV = {"SECRET": SECRET}


def token_endpoint(lifetime: object = 60, status: int = 200) -> httpx.MockTransport:
    issued: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        expected = base64.b64encode(f"client:{SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return httpx.Response(401, json={"error": "invalid_client"})
        if status != 200:
            return httpx.Response(status)
        issued.append(f"token-{len(issued)}")
        return httpx.Response(200, json={"access_token": issued[-1], "expires_in": lifetime})

    transport = httpx.MockTransport(answer)
    transport.issued = issued  # type: ignore[attr-defined]
    return transport


def secret() -> Secret:
    return Secret("env:SECRET", environ=ENV)


def configured(kind: str) -> Callable[[], Authenticator]:
    """An authenticator of ``kind`` whose ``[auth]`` sets every credential a kind may read
    (each secret the test's): a kind in ``AUTHENTICATORS`` is held to the contract below
    without an entry of its own."""
    fields: dict[str, Any] = {"type": kind, "username": "etl"}
    return lambda: AUTHENTICATORS[kind](
        "s", Auth(**fields, token=secret(), key=secret(), password=secret()), timeout=5
    )


SPECIAL: dict[str, Callable[[], Authenticator]] = {
    "api_key_query": lambda: AUTHENTICATORS["api_key"](
        "s", Auth(type="api_key", key=secret(), location="query"), timeout=5
    ),
    "oauth2": lambda: OAuth2ClientCredentials(
        "s",
        Auth(
            type="oauth2",
            token_url="https://auth.test/token",
            client_id="client",
            client_secret=Secret("env:SECRET", environ=ENV),
        ),
        timeout=5,
        transport=token_endpoint(),
    ),
}
"""The kinds (and variants) a generic ``[auth]`` cannot exercise: the query form of
``api_key``, ``oauth2`` with its token endpoint."""

CASES: dict[str, Callable[[], Authenticator]] = {
    **{kind: configured(kind) for kind in AUTHENTICATORS if kind not in SPECIAL},
    **SPECIAL,
}


def signed(auth: Authenticator) -> httpx.Request:
    request = httpx.Request("GET", "https://api.test/v1/items?page=2")
    flow = auth.auth_flow(request)
    return next(flow)


def test_every_kind_has_a_contract_case() -> None:
    assert {name.removesuffix("_query") for name in CASES} == set(AUTHENTICATORS)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_signing_keeps_the_request_and_adds_only_credentials(kind: str) -> None:
    request = signed(CASES[kind]())

    assert request.url.path == "/v1/items"
    assert request.url.params["page"] == "2"
    plain = httpx.Request("GET", "https://api.test/v1/items?page=2")
    changed = request.url != plain.url or dict(request.headers) != dict(plain.headers)
    assert changed == (kind != "none")


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_secret_is_absent_from_the_recorded_url_and_repr(kind: str) -> None:
    auth = CASES[kind]()
    request = signed(auth)

    url = request.url
    for name in auth.hidden_params:
        url = url.copy_remove_param(name)
    assert SECRET not in str(url)
    assert SECRET not in repr(auth) + str(vars(auth))


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_401_gets_at_most_one_more_attempt(kind: str) -> None:
    auth = CASES[kind]()
    request = httpx.Request("GET", "https://api.test/v1/items")
    flow = auth.auth_flow(request)
    next(flow)

    attempts = 1
    try:
        flow.send(httpx.Response(401, request=request))
        attempts += 1
        flow.send(httpx.Response(401, request=request))
    except StopIteration:
        pass
    assert attempts <= 2


def test_oauth2_fetches_again_once_the_token_nears_expiry() -> None:
    now = [0.0]
    transport = token_endpoint(lifetime=100)
    auth = OAuth2ClientCredentials(
        "s",
        Auth(
            type="oauth2",
            token_url="https://auth.test/token",
            client_id="client",
            client_secret=Secret("env:SECRET", environ=ENV),
            refresh_margin=timedelta(seconds=10),
        ),
        timeout=5,
        clock=lambda: now[0],
        transport=transport,
    )

    first = signed(auth).headers["authorization"]
    now[0] = 89.0
    same = signed(auth).headers["authorization"]
    now[0] = 90.0
    renewed = signed(auth).headers["authorization"]

    assert first == same == "Bearer token-0"
    assert renewed == "Bearer token-1"


def test_oauth2_a_token_shorter_lived_than_the_margin_is_renewed_at_half_its_life() -> None:
    now = [0.0]
    transport = token_endpoint(lifetime=20)  # the default margin is 30 s
    auth = OAuth2ClientCredentials(
        "s",
        CASES["oauth2"]().config,
        timeout=5,
        clock=lambda: now[0],
        transport=transport,
    )

    first = signed(auth).headers["authorization"]
    now[0] = 9.0
    same = signed(auth).headers["authorization"]
    now[0] = 10.0
    renewed = signed(auth).headers["authorization"]

    assert first == same == "Bearer token-0"
    assert renewed == "Bearer token-1"
    assert transport.issued == ["token-0", "token-1"]  # type: ignore[attr-defined]


def test_oauth2_refused_credentials_fail_naming_the_token_url() -> None:
    auth = OAuth2ClientCredentials(
        "s",
        Auth(
            type="oauth2",
            token_url="https://auth.test/token",
            client_id="client",
            client_secret=Secret("env:OTHER", environ={"OTHER": "wrong"}),
        ),
        timeout=5,
        transport=token_endpoint(),
    )

    with pytest.raises(ApiAuthError, match=r"https://auth\.test/token refused .* HTTP 401"):
        signed(auth)


def test_oauth2_a_token_endpoint_redirecting_fails_naming_where_not_as_refused_credentials() -> (
    None
):
    posted: list[httpx.Request] = []

    def moved(request: httpx.Request) -> httpx.Response:
        posted.append(request)
        return httpx.Response(307, headers={"Location": "http://169.254.169.254/token?x=1"})

    config = CASES["oauth2"]().config
    auth = OAuth2ClientCredentials("s", config, timeout=5, transport=httpx.MockTransport(moved))

    with pytest.raises(
        ApiAuthError,
        match=r"token endpoint \S+ redirects \(HTTP 307\) to http://169\.254\.169\.254/token; "
        "not followed",
    ):
        signed(auth)
    assert len(posted) == 1


def test_oauth2_a_token_answer_larger_than_any_token_fails_without_being_read_whole() -> None:
    endless = httpx.ByteStream(b'{"access_token": "' + b"t" * 5_000_000 + b'"}')
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=endless))
    config = CASES["oauth2"]().config
    auth = OAuth2ClientCredentials("s", config, timeout=5, transport=transport)

    with pytest.raises(ApiAuthError, match=r"/token answered more than 1,048,576 bytes"):
        signed(auth)


def test_oauth2_token_endpoint_outage_is_retryable() -> None:
    config = CASES["oauth2"]().config
    auth = OAuth2ClientCredentials("s", config, timeout=5, transport=token_endpoint(status=503))

    with pytest.raises(ApiUnavailableError, match="503"):
        signed(auth)


@pytest.mark.parametrize(
    ("transport", "error", "status"),
    [
        (token_endpoint(status=503), ApiUnavailableError, 503),
        (token_endpoint(lifetime="soon"), ApiAuthError, 200),
        (httpx.MockTransport(lambda request: httpx.Response(200, json={})), ApiAuthError, 200),
    ],
    ids=["outage", "garbage-expires_in", "no-access_token"],
)
def test_oauth2_token_endpoint_errors_carry_the_source_and_the_token_url(
    transport: httpx.MockTransport, error: type[Exception], status: int
) -> None:
    config = CASES["oauth2"]().config
    auth = OAuth2ClientCredentials("s", config, timeout=5, transport=transport)

    with pytest.raises(error) as raised:
        signed(auth)

    again = pickle.loads(pickle.dumps(raised.value))
    for failure in (raised.value, again):
        assert isinstance(failure, ApiError)
        assert (failure.source, failure.url, failure.status) == (
            "s",
            "https://auth.test/token",
            status,
        )
    assert str(again) == str(raised.value)


@pytest.mark.parametrize("garbage", ["soon", -5, 0, {"seconds": 60}, [60], True, "NaN"])
def test_oauth2_a_garbage_expires_in_fails_naming_the_field_and_what_was_expected(
    garbage: object,
) -> None:
    config = CASES["oauth2"]().config
    auth = OAuth2ClientCredentials("s", config, timeout=5, transport=token_endpoint(garbage))

    with pytest.raises(ApiAuthError) as raised:
        signed(auth)

    message = str(raised.value)
    assert "without an access_token" not in message
    assert "expires_in" in message
    assert "expected a positive number of seconds" in message
    assert "https://auth.test/token" in message


@pytest.mark.parametrize(("given", "renewed_at"), [("100", 70.0), (None, 3570.0), (100.0, 70.0)])
def test_oauth2_a_numeric_string_or_absent_expires_in_is_a_lifetime(
    given: object, renewed_at: float
) -> None:
    now = [0.0]
    config = CASES["oauth2"]().config  # the default margin is 30 s
    transport = token_endpoint(given)
    auth = OAuth2ClientCredentials(
        "s", config, timeout=5, clock=lambda: now[0], transport=transport
    )

    signed(auth)
    now[0] = renewed_at - 1
    signed(auth)
    now[0] = renewed_at
    signed(auth)

    assert transport.issued == ["token-0", "token-1"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            {"error": "invalid_scope", "error_description": "scope 'orders' is not granted"},
            r"HTTP 400 \(error invalid_scope: scope 'orders' is not granted\)",
        ),
        ({"error": "invalid_grant"}, r"HTTP 400 \(error invalid_grant\)$"),
        ({"error": {"code": 7}}, r"HTTP 400$"),  # not an RFC 6749 error: nothing quoted
        ({"error": "x" * 5000}, r"HTTP 400 \(error x{200}\.\.\.\)$"),
    ],
)
def test_oauth2_a_token_endpoint_error_is_named_by_its_rfc_6749_code(
    answer: dict[str, Any], said: str
) -> None:
    """An operator told ``invalid_scope`` fixes the scope, not the credentials."""
    auth = _token_endpoint(lambda request: httpx.Response(400, json=answer))

    with pytest.raises(ApiAuthError, match=said):
        signed(auth)


def test_oauth2_a_token_endpoint_error_echoing_the_secret_is_masked() -> None:
    answer = {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}
    auth = _token_endpoint(lambda request: httpx.Response(401, json=answer))

    with pytest.raises(ApiAuthError, match=r"error invalid_client: bad secret \*\*\*") as caught:
        signed(auth)

    assert SECRET not in str(caught.value)
    assert SECRET not in repr(pickle.loads(pickle.dumps(caught.value)))


def test_oauth2_a_token_answer_compressed_twice_is_refused_unread() -> None:
    """Gzip of gzip: httpx would decode the inner layer whole, past ``MAX_TOKEN_BYTES``."""
    inner = gzip.compress(b"0" * 50_000_000)
    bomb = gzip.compress(inner)
    auth = _token_endpoint(
        lambda request: httpx.Response(
            200, headers={"Content-Encoding": "gzip, gzip"}, stream=httpx.ByteStream(bomb)
        )
    )
    tracemalloc.start()
    try:
        with pytest.raises(
            ApiAuthError,
            match=r"token endpoint https://auth\.test/token .*compressed twice "
            r"\(Content-Encoding 'gzip, gzip'\)",
        ):
            signed(auth)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 10_000_000


def test_oauth2_a_token_answer_its_content_encoding_cannot_decode_is_retryable() -> None:
    auth = _token_endpoint(
        lambda request: httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip")
        )
    )

    with pytest.raises(
        ApiUnavailableError,
        match=r"token endpoint https://auth\.test/token sent a body its Content-Encoding "
        r"'gzip' does not decode",
    ):
        signed(auth)


def _token_endpoint(answer: Callable[[httpx.Request], httpx.Response]) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        "s",
        Auth(
            type="oauth2",
            token_url="https://auth.test/token",
            client_id="client",
            client_secret=secret(),
        ),
        timeout=5,
        transport=httpx.MockTransport(answer),
    )


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>400 Bad Request</h1></body></html>",  # a proxy's error page
        b"Bad Request",
        b"[" * 200_000,  # nested deeper than json reads: a RecursionError, not a ValueError
        b'{"error": ' * 100_000,
    ],
    ids=["html", "text", "deep-array", "deep-object"],
)
def test_oauth2_a_token_endpoint_refusal_of_any_body_is_said_with_its_status(body: bytes) -> None:
    auth = _token_endpoint(lambda request: httpx.Response(400, content=body))

    with pytest.raises(ApiAuthError, match=r"refused the client credentials .* with HTTP 400$"):
        signed(auth)


def test_oauth2_a_token_answer_nested_too_deep_is_said_without_an_access_token() -> None:
    auth = _token_endpoint(lambda request: httpx.Response(200, content=b"[" * 200_000))

    with pytest.raises(ApiAuthError, match="answered without an access_token"):
        signed(auth)


@pytest.mark.parametrize("status", [400, 401])
def test_oauth2_a_refusal_whose_body_does_not_decode_is_a_refusal_not_retried(
    status: int,
) -> None:
    """A gateway labelling its plain error page ``gzip``: the refusal stands (an operator
    mends the credentials), it is not taken for an outage and asked again."""
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        headers = {"Content-Encoding": "gzip"}
        plain = httpx.ByteStream(b'{"error": "invalid_client"}')
        return httpx.Response(status, headers=headers, stream=plain)

    auth = _token_endpoint(answer)

    with pytest.raises(ApiAuthError, match=rf"with HTTP {status}$") as caught:
        signed(auth)

    assert not isinstance(caught.value, ApiUnavailableError)
    assert len(asked) == 1


@pytest.mark.parametrize("before", [150, 190, 199])
def test_oauth2_a_secret_echoed_across_the_quoted_length_is_not_shown_in_part(
    before: int,
) -> None:
    basic = base64.b64encode(f"client:{SECRET}".encode()).decode()
    answers = [
        {"error": "invalid_client", "error_description": "x" * before + SECRET + " y"},
        {"error": "invalid_client", "error_description": "x" * before + "Basic " + basic},
    ]
    for document in answers:
        auth = _token_endpoint(lambda request, d=document: httpx.Response(401, json=d))

        with pytest.raises(ApiAuthError, match="error invalid_client") as caught:
            signed(auth)

        said = str(caught.value)
        assert SECRET[:8] not in said
        assert basic[:12] not in said
