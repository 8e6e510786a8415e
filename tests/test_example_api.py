"""The retail example's footfall API (examples/retail/api.py), served on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from repo_layout import REPO

EXAMPLE = REPO / "examples/retail"
TOKEN = "api-test-token"


@pytest.fixture(scope="module")
def api() -> Iterator[ModuleType]:
    """examples/retail/api.py, imported from its path (it imports generate.py beside it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(EXAMPLE))
        spec = importlib.util.spec_from_file_location("retail_api", EXAMPLE / "api.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        patch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up there
        spec.loader.exec_module(module)
        yield module


@pytest.fixture(scope="module")
def base_url(api: ModuleType) -> Iterator[str]:
    with api.start_api(TOKEN) as server:
        yield server.url


def get(url: str, token: str | None = TOKEN, **params: str) -> tuple[int, dict[str, Any]]:
    """GET ``url`` with the query ``params``: the status and the JSON body."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    request = urllib.request.Request(url + query)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def walk(base_url: str, **params: str) -> tuple[list[dict[str, Any]], int]:
    """Every record of a query, page by page through the cursors; and the pages."""
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    for pages in range(1, 1000):  # bounded: 1,120 records need far fewer pages
        status, body = get(
            f"{base_url}/v1/footfall", **params, **({"cursor": cursor} if cursor else {})
        )
        assert status == 200, body
        records += body["data"]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return records, pages
    raise AssertionError("the cursors never ended")


def test_pages_walk_every_record_once_in_update_order(base_url: str) -> None:
    records, pages = walk(base_url, limit="100")
    assert len(records) == len({r["id"] for r in records}) == 10 * 8 * 14
    assert pages == 12
    order = [(r["updated_at"], r["id"]) for r in records]
    assert order == sorted(order)


def test_updated_since_and_before_bound_the_window(base_url: str) -> None:
    records, pages = walk(
        base_url,
        updated_since="2026-11-06T00:00:00Z",
        updated_before="2026-11-07T00:00:00+00:00",
        limit="50",
    )
    assert (len(records), pages) == (112, 3)
    assert {r["hour_start"][:10] for r in records} == {"2026-11-06"}
    glitch = next(r for r in records if r["id"] == "S003-20261106T15")
    assert glitch["entries"] == -1  # the counter reset the contract splits off
    mark = max(r["updated_at"] for r in records)
    since_mark, _ = walk(base_url, updated_since=mark, updated_before="2026-11-07T00:00:00Z")
    assert [r["updated_at"] for r in since_mark] == [mark]  # inclusive


def test_the_data_is_the_same_on_every_start(api: ModuleType, base_url: str) -> None:
    records, _ = walk(base_url, limit="500")
    with api.start_api(TOKEN) as other:  # a second server, started afresh
        again, _ = walk(other.url, limit="500")
    assert records == again
    assert records == api.FootfallData.generated().records


def test_a_missing_or_wrong_token_is_refused(base_url: str) -> None:
    assert get(f"{base_url}/v1/footfall", token=None)[0] == 401
    status, body = get(f"{base_url}/v1/footfall", token="wrong")
    assert (status, body) == (401, {"error": "missing or wrong bearer token"})
    assert get(f"{base_url}/healthz", token=None) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"limit": "0"}, "limit='0': expected an integer from 1 to 500"),
        ({"updated_since": "yesterday"}, "updated_since='yesterday': expected an ISO 8601 time"),
        ({"cursor": "not-a-cursor"}, "cursor 'not-a-cursor' is not a cursor this API gave"),
        ({"page": "2"}, "unknown query parameter 'page'"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(
    base_url: str, params: dict[str, str], error: str
) -> None:
    status, body = get(f"{base_url}/v1/footfall", **params)
    assert status == 400
    assert body["error"].startswith(error)


def test_the_command_serves_until_sigterm_and_needs_its_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "RETAIL_FOOTFALL_API_TOKEN"}
    command = [sys.executable, str(EXAMPLE / "api.py"), "--host", "127.0.0.1", "--port", "0"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "set RETAIL_FOOTFALL_API_TOKEN" in refused.stderr
    env["RETAIL_FOOTFALL_API_TOKEN"] = TOKEN
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as server:
        assert server.stdout is not None
        banner = server.stdout.readline()  # footfall API on http://127.0.0.1:<port>/v1/footfall (…)
        url = banner.split()[3].removesuffix("/v1/footfall")
        assert get(f"{url}/v1/footfall", limit="1")[1]["meta"]["count"] == 1
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
