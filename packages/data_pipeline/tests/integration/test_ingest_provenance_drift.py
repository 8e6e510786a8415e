"""Provenance fields on landed records (and ``contracts check`` of the datasets they feed),
the drift report of a run, and exit code 3 when a run set items aside."""

from __future__ import annotations

import json

from data_pipeline.ingest import ObjectStateStore
from etl_core.contracts import load_contracts, load_sources
from etl_core.testing.scripts import run_script

PAGED = """
[[endpoints]]
name = "items"
path = "/page"
dataset = "shop_items"
records_path = "data"
primary_key = ["id"]
chunk_records = 10
{extra}
[endpoints.pagination]
type = "page_number"
size_param = "per_page"
page_size = 5
"""


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


def contract(workspace, text: str) -> None:
    (workspace.config / "datasets" / "shop_items.toml").write_text(text)


def manifest(workspace) -> dict:
    [key] = [k for k in workspace.keys("raw/") if k.endswith("_manifest.json")]
    return json.loads(workspace.store.read_bytes(key))


def drift(workspace) -> dict:
    [key] = [k for k in workspace.keys("raw/") if k.endswith("_drift.json")]
    return json.loads(workspace.store.read_bytes(key))


def test_every_landed_record_carries_its_provenance(workspace, api) -> None:
    workspace.source(PAGED.format(extra="provenance = true"), endpoints=("items",))

    [outcome] = workspace.ingest("items")

    landed = workspace.landed("items")
    pages = {p["page"]: p for p in manifest(workspace)["pages"]}
    assert len(landed) == len(api.records)
    for index, record in enumerate(landed):
        page = pages[index // 5]
        assert record == {
            **api.records[index],
            "_http_url": page["url"],
            "_http_fetched_at": page["fetched_at"],
            "_http_page": index // 5,
            "_run_id": outcome.run,
        }
    assert "page=" in landed[0]["_http_url"]
    assert drift(workspace)["new_fields"] == []  # the platform's fields are not drift


def test_without_provenance_records_land_as_received(workspace, api) -> None:
    workspace.source(PAGED.format(extra=""), endpoints=("items",))

    workspace.ingest("items")

    assert workspace.landed("items") == api.records


def test_contracts_check_refuses_a_dataset_that_cannot_take_the_provenance_fields(
    workspace, api
) -> None:
    workspace.source(PAGED.format(extra="provenance = true"), endpoints=("items",))
    text = (workspace.config / "datasets" / "shop_items.toml").read_text()
    contract(workspace, text + '\n[schema]\nextra_columns = "refuse"\n')

    refused = cli(workspace, "contracts", "check")

    assert refused.returncode == 2, refused.stdout
    assert "endpoints[0].provenance" in refused.stdout
    assert "'_http_url'" in refused.stdout
    assert "shop.toml:" in refused.stdout

    declared = text.replace(
        "]\n",
        '  { name = "_http_url" },\n  { name = "_http_fetched_at", type = "timestamp" },\n'
        '  { name = "_http_page", type = "int" },\n  { name = "_run_id" },\n]\n',
        1,
    )
    contract(workspace, declared + '\n[schema]\nextra_columns = "refuse"\n')
    assert cli(workspace, "contracts", "check").returncode == 0

    contract(
        workspace, declared.replace('"_http_page", type = "int"', '"_http_page", type = "bool"')
    )
    wrong = cli(workspace, "contracts", "check")
    assert wrong.returncode == 2
    assert "declares '_http_page' as 'bool'" in wrong.stdout


def test_a_dataset_keeping_extra_keys_takes_the_provenance_fields(workspace, api) -> None:
    workspace.source(PAGED.format(extra="provenance = true"), endpoints=("items",))

    contracts = load_contracts(workspace.config)
    assert load_sources(workspace.config, contracts=contracts).names == ("shop",)


def test_the_drift_report_names_new_missing_and_retyped_fields(workspace, api) -> None:
    workspace.source(PAGED.format(extra=""), endpoints=("items",))
    contract(
        workspace,
        'dataset = "shop_items"\nsource = "api/shop/items"\n'
        'pattern = "items_{date:%Y%m%d}_*.jsonl.gz"\nformat = "jsonl"\npacking = "gzip"\n'
        'columns = [\n  { name = "id", type = "int" },\n  { name = "name", type = "int" },\n'
        '  { name = "sku" },\n]\n',
    )
    api.records[3]["colour"] = "red"

    [outcome] = workspace.ingest("items")

    report = drift(workspace)
    assert report["dataset"] == "shop_items"
    assert report["records"] == len(api.records)
    assert [(f["field"], f["records"]) for f in report["new_fields"]] == [
        ("updated_at", 47),
        ("colour", 1),
    ]
    assert report["new_fields"][0]["types"] == {"timestamp": 47}
    assert report["missing_fields"] == ["sku"]
    [change] = report["type_changes"]
    assert (change["field"], change["declared"], change["seen"]) == ("name", "int", {"string": 47})
    assert outcome.drift == {
        "new_fields": ["updated_at", "colour"],
        "missing_fields": ["sku"],
        "type_changes": ["name: int <- string"],
    }
    last = ObjectStateStore(workspace.store).load("shop", "items").last_run
    assert last["drift"] == outcome.drift
    assert last["run"] == outcome.run

    status = cli(workspace, "ingest", "status", "--json")
    assert json.loads(status.stdout)[0]["last_run"]["drift"]["missing_fields"] == ["sku"]
    table = cli(workspace, "ingest", "status")
    assert "missing: sku" in table.stdout


def test_ingest_exits_3_when_items_were_set_aside(workspace, api) -> None:
    workspace.source(PAGED.format(extra=""), endpoints=("items",))
    api.records[5] = "oops"  # type: ignore[call-overload]

    result = cli(workspace, "ingest", "--json")

    assert result.returncode == 3, result.stderr
    [window] = json.loads(result.stdout)["windows"]
    assert window["dead_letters"] == 1
    assert window["records"] == len(api.records) - 1
    human = cli(workspace, "ingest", "--full-refresh")
    assert human.returncode == 3
    assert "1 dead letter(s) set aside" in human.stdout
