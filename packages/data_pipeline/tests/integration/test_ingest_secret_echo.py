"""An API that echoes its request's credentials (an ``api_key`` in its next links, its
``self`` links, its ``Link`` header, its error bodies): nothing the platform writes or logs
holds the key, an interrupted walk resumes from its masked next link, and ``ingest
replay`` lands the run again from the masked archive without the secret."""

from __future__ import annotations

import json
import logging

import pytest

from data_pipeline.errors import ApiRequestError
from data_pipeline.ingest import ObjectStateStore
from etl_core.testing import capture_logs
from etl_core.testing.scripts import run_script

from .conftest import SECRETS, Fault, everything_written

AUTH = '[auth]\ntype = "api_key"\nkey = "env:SHOP_KEY"\nlocation = "query"\n'
NEXT = """
[[endpoints]]
name = "items"
path = "/next"
dataset = "shop_items"
records_path = "results"
chunk_records = 5
provenance = true
[endpoints.pagination]
type = "next_url"
next_url_path = "links.next"
size_param = "per_page"
page_size = 5
"""
LINK = """
[[endpoints]]
name = "items"
path = "/link"
dataset = "shop_items"
chunk_records = 5
[endpoints.pagination]
type = "link_header"
"""
KEY = SECRETS["api_key"]


def without_provenance(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_")}


@pytest.fixture
def http_logs_at_debug():
    """httpx's and httpcore's own lines, at DEBUG (another test may have quietened them)."""
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture
def echoing_api(api, monkeypatch):
    api.auth = "api_key_query"
    api.echo_key = True
    monkeypatch.setenv("SHOP_KEY", KEY)
    return api


def test_a_key_echoed_in_next_links_is_nowhere_and_the_walk_resumes_from_the_masked_link(
    workspace, echoing_api, http_logs_at_debug
) -> None:
    workspace.source(AUTH + NEXT, endpoints=("items",))
    echoing_api.faults.append(Fault("/next", 400, body=b'{"error": "try later"}', after=2))

    with capture_logs(level=logging.DEBUG) as logs, pytest.raises(ApiRequestError):
        workspace.ingest("items")  # pages 0 and 1 landed and checkpointed, page 2 refused

    written = everything_written(workspace)  # the endpoint's state and checkpoint included
    assert KEY.encode() not in written
    state = ObjectStateStore(workspace.store).load("shop", "items")
    assert state.window is not None  # the window in progress, with its next link
    assert KEY not in state.to_json().decode()
    assert "api_key=***" in state.to_json().decode()  # the link is kept, its value masked
    assert any(record["logger"] == "httpx" for record in logs)  # its request lines
    assert all(KEY not in json.dumps(record, default=str) for record in logs)

    workspace.ingest("items")  # resumes at the masked next link: the key is set again

    assert [without_provenance(r) for r in workspace.landed("items")] == echoing_api.records
    assert all(r["query"].get("api_key") == KEY for r in echoing_api.requests)
    written = everything_written(workspace)
    assert KEY.encode() not in written
    manifest = next(k for k in workspace.keys("raw/") if k.endswith("_manifest.json"))
    pages = json.loads(workspace.store.read_bytes(manifest))["pages"]
    assert all(page.get("masked", 0) >= 1 for page in pages)  # the audit says so


def test_a_key_echoed_in_the_link_header_is_not_in_the_manifest(workspace, echoing_api) -> None:
    workspace.source(AUTH + LINK, endpoints=("items",))

    workspace.ingest("items")

    assert workspace.landed("items") == echoing_api.records
    manifest = next(k for k in workspace.keys("raw/") if k.endswith("_manifest.json"))
    pages = json.loads(workspace.store.read_bytes(manifest))["pages"]
    links = [page["headers"]["link"] for page in pages if "link" in page["headers"]]
    assert links
    assert all("api_key=***" in link for link in links)
    assert KEY.encode() not in everything_written(workspace)


def test_replay_of_a_masked_archive_needs_no_secret(workspace, echoing_api, monkeypatch) -> None:
    workspace.source(AUTH + NEXT, endpoints=("items",))
    workspace.ingest("items", run_id="20260301T000000Z-aaaaaa")
    landed = workspace.landed("items")
    for key in workspace.keys("landing/"):
        workspace.store.delete(key)
    monkeypatch.delenv("SHOP_KEY")

    result = run_script(
        "etl-data-pipeline",
        "--storage",
        f"file://{workspace.store_dir}",
        "--config-dir",
        str(workspace.config),
        "--log-level",
        "DEBUG",
        "ingest",
        "replay",
        "--source",
        "shop",
        "--endpoint",
        "items",
        "--run",
        "20260301T000000Z-aaaaaa",
        "--json",
        cwd=workspace.root,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["records"] == len(echoing_api.records)
    assert workspace.landed("items") == landed
    assert all(KEY not in record["_http_url"] for record in landed)
    assert KEY not in result.stdout + result.stderr


def test_a_record_quoting_the_key_after_a_json_escape_lands_masked(
    workspace, api, monkeypatch
) -> None:
    # the server writes é as \u00e9: the key's form starts inside that escape
    key = "u00e9-Secret-51"
    monkeypatch.setitem(SECRETS, "api_key", key)
    monkeypatch.setenv("SHOP_KEY", key)
    api.auth = "api_key_query"
    api.records[3] = {**api.records[3], "name": "Ren\u00e9-Secret-51"}
    workspace.source(AUTH + NEXT, endpoints=("items",))

    workspace.ingest("items")  # the page stayed JSON: no dead letter, nothing lost

    landed = [without_provenance(r) for r in workspace.landed("items")]
    assert len(landed) == len(api.records)
    assert landed[3]["name"] == "Ren***"
    assert not [k for k in workspace.keys("raw/") if k.endswith("_dead_letters.jsonl")]
