"""``ingest replay`` (records landed again from the raw archive, no API call) and ``ingest
infer`` (a dataset contract proposed from a sample of the API or of an archived run)."""

from __future__ import annotations

import gzip
import json
import tomllib

import pytest

from data_pipeline.ingest import ObjectStateStore
from etl_core.contracts import load_contracts
from etl_core.testing.scripts import run_script

from .conftest import stamp

PAGED = """
[[endpoints]]
name = "items"
path = "/page"
dataset = "shop_items"
records_path = "data"
primary_key = {key}
chunk_records = {chunk}
provenance = true
[endpoints.pagination]
type = "page_number"
size_param = "per_page"
page_size = 5
"""
RUN = "20260301T000000Z-aaaaaa"


def cli(workspace, *args: str):
    return run_script(
        "etl-data-pipeline",
        "--storage",
        f"file://{workspace.store_dir}",
        "--config-dir",
        str(workspace.config),
        *args,
        cwd=workspace.root,
    )


def chunks(workspace) -> dict[str, bytes]:
    """Each landed chunk's JSON Lines, decompressed: the lines are what a run promises
    byte for byte (ISA-L's gzip of the same lines is not always the same bytes)."""
    return {k: gzip.decompress(workspace.store.read_bytes(k)) for k in workspace.keys("landing/")}


def replay(workspace, *extra: str):
    return cli(
        workspace,
        "ingest",
        "replay",
        "--source",
        "shop",
        "--endpoint",
        "items",
        "--run",
        RUN,
        "--json",
        *extra,
    )


def test_replay_rebuilds_lost_chunks_byte_for_byte_without_calling_the_api(workspace, api) -> None:
    workspace.source(PAGED.format(key='["id"]', chunk=10), endpoints=("items",))
    workspace.ingest("items", run_id=RUN)
    landed = chunks(workspace)
    for key in landed:
        workspace.store.delete(key)
    requests = len(api.requests)

    first = replay(workspace)
    again = replay(workspace)

    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert len(api.requests) == requests
    assert chunks(workspace) == landed  # same keys, same lines (provenance included)
    outcome = json.loads(first.stdout)
    assert (outcome["records"], outcome["chunks"], outcome["pages"]) == (
        47,
        5,
        11,
    )  # the last page is empty
    assert outcome["removed"] == 0


def test_replay_with_a_fixed_configuration_lands_what_the_run_set_aside(workspace, api) -> None:
    workspace.source(PAGED.format(key='["sku"]', chunk=10), endpoints=("items",))
    [outcome] = workspace.ingest("items", run_id=RUN)
    assert (outcome.records, outcome.dead_letters) == (0, 47)
    workspace.source(PAGED.format(key='["id"]', chunk=100), endpoints=("items",))

    result = replay(workspace)

    assert result.returncode == 0, result.stderr
    assert [
        {k: v for k, v in r.items() if not k.startswith("_")} for r in workspace.landed("items")
    ] == api.records
    [key] = workspace.keys("landing/")
    assert key.endswith(f"_{RUN}_000000.jsonl.gz")
    [dead] = [k for k in workspace.keys("raw/") if k.endswith("_dead_letters.jsonl")]
    assert workspace.store.read_bytes(dead) == b""  # rewritten: nothing set aside now
    manifest = next(k for k in workspace.keys("raw/") if k.endswith("_manifest.json"))
    [entry] = json.loads(workspace.store.read_bytes(manifest))["replays"]
    assert (entry["records"], entry["chunks"], entry["dead_letters"]) == (47, 1, 0)


def test_replay_removes_the_runs_chunks_beyond_its_new_last_one(workspace, api) -> None:
    workspace.source(PAGED.format(key='["id"]', chunk=10), endpoints=("items",))
    workspace.ingest("items", run_id=RUN)
    workspace.source(PAGED.format(key='["id"]', chunk=20), endpoints=("items",))

    result = replay(workspace)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["removed"] == 2
    assert len(workspace.keys("landing/")) == 3
    assert [r["id"] for r in workspace.landed("items")] == [r["id"] for r in api.records]


def test_replay_exits_3_when_items_are_set_aside(workspace, api) -> None:
    workspace.source(PAGED.format(key='["id"]', chunk=10), endpoints=("items",))
    workspace.ingest("items", run_id=RUN)
    workspace.source(PAGED.format(key='["sku"]', chunk=10), endpoints=("items",))

    result = replay(workspace)

    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout)["dead_letters"] == 47


def test_a_page_that_does_not_match_the_manifest_stops_the_replay_before_any_write(
    workspace, api
) -> None:
    workspace.source(PAGED.format(key='["id"]', chunk=10), endpoints=("items",))
    workspace.ingest("items", run_id=RUN)
    before = chunks(workspace)
    page = sorted(k for k in workspace.keys("raw/") if k.endswith(".json.gz"))[7]
    body = gzip.decompress(workspace.store.read_bytes(page)).replace(b"item", b"ITEM")
    workspace.store.write_bytes(page, gzip.compress(body))
    for key in before:
        workspace.store.delete(key)

    result = replay(workspace)

    assert result.returncode == 1
    assert page in result.stderr
    assert "does not match the run manifest" in result.stderr
    assert workspace.keys("landing/") == []


def test_replay_refuses_an_unknown_or_unfinished_run(workspace, api) -> None:
    workspace.source(PAGED.format(key='["id"]', chunk=10), endpoints=("items",))

    unknown = replay(workspace)

    assert unknown.returncode == 2
    assert f"no archived run '{RUN}' of shop/items" in unknown.stderr
    workspace.ingest("items", run_id=RUN)
    manifest = next(k for k in workspace.keys("raw/") if k.endswith("_manifest.json"))
    document = json.loads(workspace.store.read_bytes(manifest))
    workspace.store.write_bytes(manifest, json.dumps({**document, "status": "running"}).encode())
    unfinished = replay(workspace, "--date", document["dt"])
    assert unfinished.returncode == 2
    assert "is not complete" in unfinished.stderr


def test_replay_of_an_incremental_run_skips_the_records_it_skipped(workspace, api) -> None:
    source = PAGED.format(key='["id"]', chunk=10).replace(
        "[endpoints.pagination]",
        '[endpoints.incremental]\ncursor_field = "updated_at"\nparam = "since"\n'
        "[endpoints.pagination]",
    )
    workspace.source(source, endpoints=("items",))
    workspace.ingest("items")
    api.records += [api.record(i) for i in range(48, 51)]
    [second] = workspace.ingest("items", run_id=RUN)
    assert second.records == 3
    landed = chunks(workspace)

    result = replay(workspace)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["records"] == 3  # record 47 came again; skipped again
    assert chunks(workspace) == landed
    assert ObjectStateStore(workspace.store).load("shop", "items").cursor == stamp(50)


def test_infer_from_the_api_proposes_a_contract_the_loader_accepts(workspace, api) -> None:
    workspace.source(PAGED.format(key='["id"]', chunk=10), endpoints=("items",))
    api.records[0]["tags"] = ["a"]
    api.records[1]["score"] = 1.5
    api.records[2]["score"] = 2
    requests = len(api.requests)

    result = cli(
        workspace, "ingest", "infer", "--source", "shop", "--endpoint", "items", "--pages", "2"
    )

    assert result.returncode == 0, result.stderr
    assert len(api.requests) - requests == 2
    assert workspace.keys("") == []  # nothing archived, landed or committed
    document = tomllib.loads(result.stdout)
    found = {c["name"]: (c["type"], c.get("required", False)) for c in document["columns"]}
    assert found == {
        "id": ("int", True),
        "name": ("string", True),
        "updated_at": ("timestamp", True),
        "tags": ("string", False),
        "score": ("float", False),
        "_http_url": ("string", False),
        "_http_fetched_at": ("timestamp", False),
        "_http_page": ("int", False),
        "_run_id": ("string", False),
    }
    assert "from 10 record(s)" in result.stdout
    assert "# tags: nested array" in result.stdout
    (workspace.config / "datasets" / "shop_items.toml").write_text(result.stdout)
    contracts = load_contracts(workspace.config)
    assert [c.name for c in contracts.get("shop_items").columns][:3] == ["id", "name", "updated_at"]
    assert cli(workspace, "contracts", "check").returncode == 0


def test_infer_from_an_archived_run_reads_the_archive_not_the_api(workspace, api) -> None:
    workspace.source(PAGED.format(key='["id"]', chunk=10), endpoints=("items",))
    workspace.ingest("items", run_id=RUN)
    requests = len(api.requests)

    result = cli(
        workspace,
        "ingest",
        "infer",
        "--source",
        "shop",
        "--endpoint",
        "items",
        "--run",
        RUN,
        "--json",
    )

    assert result.returncode == 0, result.stderr
    assert len(api.requests) == requests
    document = json.loads(result.stdout)
    assert document["records"] == 47
    assert [(c["name"], c["type"]) for c in document["columns"]] == [
        ("id", "int"),
        ("name", "string"),
        ("updated_at", "timestamp"),
    ]


def test_infer_samples_a_child_endpoint_under_its_first_parent(workspace, api) -> None:
    workspace.source(
        '[[endpoints]]\nname = "customers"\npath = "/customers"\ndataset = "shop_customers"\n'
        'records_path = "data"\n\n[[endpoints]]\nname = "orders"\n'
        'path = "/customers/{parent.id}/orders"\nparent = "customers"\n'
        'dataset = "shop_orders"\nrecords_path = "data"\n',
        endpoints=("customers", "orders"),
    )

    result = cli(workspace, "ingest", "infer", "--source", "shop", "--endpoint", "orders", "--json")

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [(c["name"], c["type"]) for c in document["columns"]] == [
        ("order", "string"),
        ("total", "int"),
    ]
    assert [r["path"] for r in api.requests] == ["/customers", "/customers/c1/orders"]
    assert "/customers/c1/orders" in document["origin"]


FLAG_WHEN_MORE = """
[[endpoints]]
name = "items"
path = "/flag_when_more"
dataset = "shop_items"
records_path = "data"
[endpoints.pagination]
type = "page_number"
has_more_path = "has_more"
"""


@pytest.mark.parametrize("past_end", ["404", "repeat"])
def test_infer_of_an_api_leaving_has_more_out_of_its_only_page_samples_it_once(
    workspace, api, past_end
) -> None:
    api.records, api.past_end = api.records[:5], past_end
    workspace.source(FLAG_WHEN_MORE, endpoints=("items",))

    result = cli(
        workspace, "ingest", "infer", "--source", "shop", "--endpoint", "items", "--pages", "3"
    )

    assert result.returncode == 0, result.stderr
    assert "from 5 record(s)" in result.stdout  # not a failure, nor the page twice
    assert len(api.requests) == 2
