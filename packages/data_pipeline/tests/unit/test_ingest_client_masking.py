"""What masking an echoed credential does to a body that arrives: the key the API echoes is
``***``, and nothing else changes: a record's URL quoting another key keeps it, and the body
stays JSON (a masked form never leaves a JSON escape's backslash behind)."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from data_pipeline.ingest.client import ApiClient, Response
from etl_core.contracts import Auth, Endpoint, Source
from etl_core.secrets import Secret

ENDPOINT = Endpoint(name="items", path="/items", dataset="shop_items")


def fetched(body: bytes, key: str, **auth: str) -> Response:
    """``body`` as the client hands it on, the source's key being ``key``."""
    secret = Secret("env:KEY", environ={"KEY": key})
    config = Auth(type="api_key", key=secret, **auth)  # type: ignore[arg-type]
    source = Source("https://api.test", (ENDPOINT,), source="shop", auth=config)
    client = ApiClient(
        source,
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body)),
        sleep=lambda _: None,
    )
    try:
        return client.get("items", "/items", {})
    finally:
        client.close()


def test_a_record_quoting_another_value_of_the_key_parameter_lands_as_it_came() -> None:
    records = [
        {"sku": "https://shop.example/p?key=red-shirt-42"},
        {"map": "https://maps.example/embed?z=3&key=PUBLIC-DEMO"},
    ]
    body = json.dumps({"data": records, "next": "/items?after=2&key=Zq7x"}).encode()

    response = fetched(body, "Zq7x", location="query", name="key")

    assert json.loads(response.body) == {"data": records, "next": "/items?after=2&key=***"}
    assert response.masked == 1  # the echoed key, alone


def test_a_short_key_echoed_after_an_escaped_ampersand_is_masked() -> None:
    # Go's encoding/json writes & as \u0026 in every string
    body = b'{"data": [], "next": "/items?after=2\\u0026api_key=Zq7x"}'

    response = fetched(body, "Zq7x", location="query")

    assert json.loads(response.body)["next"] == "/items?after=2&api_key=***"


def test_a_key_echoed_with_its_slashes_escaped_is_masked() -> None:
    # PHP's json_encode writes / as \/
    key = "ab/cd+ef/gh=="
    body = json.dumps({"data": [], "echo": key}).replace("/", "\\/").encode()

    response = fetched(body, key)

    assert json.loads(response.body) == {"data": [], "echo": "***"}
    assert response.masked == 1


def test_a_masked_credential_right_after_an_escaping_backslash_leaves_the_body_json() -> None:
    key = "u00e9abcdef"  # a key reading as the tail of a JSON unicode escape
    body = json.dumps({"data": [{"name": "Ren\u00e9abcdef"}]}, ensure_ascii=True).encode()
    assert b"\\u00e9abcdef" in body

    response = fetched(body, key)

    assert json.loads(response.body) == {"data": [{"name": "Ren***"}]}


def test_a_credential_masked_outside_a_link_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "welcome-2024-key"
    body = json.dumps({"data": [{"note": f"code {key}"}], "next": f"/i?api_key={key}"}).encode()

    with caplog.at_level(logging.WARNING, logger="data_pipeline.ingest.client"):
        response = fetched(body, key, location="query")

    assert json.loads(response.body) == {
        "data": [{"note": "code ***"}],
        "next": "/i?api_key=***",
    }
    assert response.masked == 2
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1
    assert "shop/items" in said[0]
    assert "1 time(s)" in said[0]
    assert key not in said[0]


def test_a_key_echoed_in_a_next_link_alone_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = json.dumps({"data": [], "next": "/i?api_key=welcome-2024-key"}).encode()

    with caplog.at_level(logging.WARNING, logger="data_pipeline.ingest.client"):
        assert fetched(body, "welcome-2024-key", location="query").masked == 1

    assert not caplog.records
