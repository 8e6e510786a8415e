"""API sources (``sources/<source>.toml``): loading, and every refusal with file, line, field."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from etl_core.contracts import (
    ContractError,
    CursorValueError,
    check_contracts,
    format_cursor,
    load_contracts,
    load_source,
    load_sources,
    parse_cursor,
    shift_cursor,
)
from etl_core.layout import landing_api_chunk_key, landing_api_chunk_name, raw_api_manifest_key

SOURCE = """\
base_url = "https://api.example.com/v1"
timeout = "10s"

[auth]
type = "bearer"
token = "env:SHOP_TOKEN"

[rate_limit]
requests_per_second = 5
burst = 2

[[endpoints]]
name = "orders"
path = "/orders"
dataset = "shop_orders"
records_path = "data.items"
primary_key = ["id"]
params = {{ status = "all", per_page = 100 }}
{extra}
[endpoints.pagination]
type = "cursor"
cursor_path = "meta.next"

[endpoints.incremental]
cursor_field = "updated_at"
param = "updated_since"
initial_value = "2026-01-01T00:00:00Z"
lookback = "1h"

[[endpoints]]
name = "items"
path = "/orders/{{parent.id}}/items"
parent = "orders"
dataset = "shop_items"
"""

DATASET = """\
dataset = "{dataset}"
source = "api/shop/{endpoint}"
pattern = "{endpoint}_{{date:%Y%m%d}}_*.jsonl.gz"
format = "jsonl"
packing = "gzip"
columns = [{{ name = "id", type = "int" }}]
"""


def write_source(config: Path, text: str, name: str = "shop") -> Path:
    path = config / "sources" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_datasets(config: Path, **patterns: str) -> None:
    (config / "datasets").mkdir(parents=True, exist_ok=True)
    for endpoint in ("orders", "items"):
        text = DATASET.format(dataset=f"shop_{endpoint}", endpoint=endpoint)
        if endpoint in patterns:
            text = text.replace(f"{endpoint}_{{date:%Y%m%d}}_*.jsonl.gz", patterns[endpoint])
        (config / "datasets" / f"shop_{endpoint}.toml").write_text(text)


def refusal(tmp_path: Path, text: str) -> tuple[Path, list[tuple[str, str, str]]]:
    path = write_source(tmp_path, text)
    with pytest.raises(ContractError) as caught:
        load_source(path, environ={})
    return path, [(e.field, e.message, e.source) for e in caught.value.errors]


def test_max_page_bytes_is_read_as_a_byte_size(tmp_path: Path) -> None:
    text = 'max_page_bytes = "1.5MiB"\n' + SOURCE.format(extra="")

    assert load_source(write_source(tmp_path, text)).max_page_bytes == 1536 * 1024


def test_a_source_loads_with_its_endpoints_and_defaults(tmp_path: Path) -> None:
    source = load_source(write_source(tmp_path, SOURCE.format(extra="")))

    assert source.source == "shop"
    assert source.timeout == timedelta(seconds=10)
    assert source.max_page_bytes == 64 * 1024**2
    assert source.auth.token is not None
    assert source.auth.token.reference == "env:SHOP_TOKEN"
    orders, items = source.endpoints
    assert orders.query({"format": "json"}) == {
        "format": "json",
        "status": "all",
        "per_page": "100",
    }
    assert orders.incremental is not None
    assert orders.incremental.lookback == timedelta(hours=1)
    assert items.parent_fields == ("id",)
    assert [e.name for e in source.ordered()] == ["orders", "items"]


def test_sources_are_checked_against_the_contracts_they_feed(tmp_path: Path) -> None:
    write_source(tmp_path, SOURCE.format(extra=""))
    write_datasets(tmp_path)

    sources = load_sources(tmp_path, contracts=load_contracts(tmp_path))

    assert sources.names == ("shop",)


def test_a_dataset_pattern_not_matching_the_chunks_is_refused(tmp_path: Path) -> None:
    path = write_source(tmp_path, SOURCE.format(extra=""))
    write_datasets(tmp_path, items="items_{date:%Y-%m-%d}.jsonl.gz")

    with pytest.raises(ContractError) as caught:
        load_sources(tmp_path, contracts=load_contracts(tmp_path))

    [error] = caught.value.errors
    assert error.field == "endpoints[1].dataset"
    assert "does not match the chunk names" in error.message
    assert error.source.startswith(f"{path}:")


def test_an_unknown_dataset_is_refused(tmp_path: Path) -> None:
    write_source(tmp_path, SOURCE.format(extra="").replace("shop_items", "shop_itemz"))
    write_datasets(tmp_path)

    with pytest.raises(ContractError, match="no dataset contract 'shop_itemz'"):
        load_sources(tmp_path, contracts=load_contracts(tmp_path))


@pytest.mark.parametrize(
    ("schema", "columns", "refused"),
    [
        ("", "", []),  # JSON Lines keep undeclared keys by default
        ('extra_columns = "drop"', "", []),
        ('mode = "open"', "", []),
        (
            'extra_columns = "refuse"',
            "",
            ["_http_url", "_http_fetched_at", "_http_page", "_run_id"],
        ),
        (
            'extra_columns = "refuse"',
            '{ name = "_http_url" }, { name = "_http_fetched_at", type = "string" }, '
            '{ name = "_http_page", type = "string" }, { name = "_run_id" }',
            [],
        ),
        ("", '{ name = "_http_page", type = "date" }', ["'_http_page' as 'date'"]),
    ],
)
def test_a_dataset_fed_with_provenance_must_declare_or_keep_its_fields(
    tmp_path: Path, schema: str, columns: str, refused: list[str]
) -> None:
    path = write_source(tmp_path, SOURCE.format(extra="provenance = true"))
    write_datasets(tmp_path)
    dataset = tmp_path / "datasets" / "shop_orders.toml"
    text = dataset.read_text()
    if columns:
        text = text.replace('type = "int" }]', f'type = "int" }}, {columns}]')
    if schema:
        text += "\n[schema]\n" + schema + "\n"
    if 'mode = "open"' in schema:
        text = text.replace('columns = [{ name = "id", type = "int" }]\n', "")
    dataset.write_text(text)

    report = check_contracts(tmp_path)

    messages = [e.message for e in report.errors]
    assert [e.field for e in report.errors] == ["endpoints[0].provenance"] * len(refused), messages
    for words, message in zip(refused, messages, strict=True):
        assert words in message
    assert all(e.source.startswith(f"{path}:") for e in report.errors)
    if not refused:
        assert report.valid, report.render()


def test_contracts_check_reports_sources_and_their_errors(tmp_path: Path) -> None:
    write_source(tmp_path, SOURCE.format(extra="chunk_records = 0"))
    write_datasets(tmp_path)

    report = check_contracts(tmp_path)

    assert not report.valid
    assert [e.field for e in report.errors] == ["endpoints[0].chunk_records"]
    assert "chunk_records" in report.render()


def test_a_misspelt_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path, errors = refusal(tmp_path, SOURCE.format(extra="chunk_record = 5"))

    [(name, message, where)] = errors
    assert name == "endpoints[0].chunk_record"
    assert "did you mean 'chunk_records'" in message
    assert where.startswith(f"{path}:19:")


def test_an_inline_secret_is_refused_without_repeating_it(tmp_path: Path) -> None:
    text = SOURCE.format(extra="").replace('"env:SHOP_TOKEN"', '"tok-3xyz-secret"')

    _, errors = refusal(tmp_path, text)

    [(name, message, _)] = errors
    assert name == "auth.token"
    assert "tok-3xyz-secret" not in message
    assert "env:NAME" in message


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ('headers = { Authorization = "x" }', "headers.Authorization", "credential"),
        ('headers = { X-Client = "a\\nb" }', "headers.X-Client", "no line break"),
        ('headers = { X-Client = "caf\\u00e9" }', "headers.X-Client", "printable ASCII"),
        ('headers = { X-Client = "v " }', "headers.X-Client", "no space at its start or end"),
        ('headers = { "X Client" = "v" }', "headers.X Client", "not an HTTP header name"),
        ("params = { api_key = 1 }", "params.api_key", "credential"),
        ('base_url = "ftp://x"', "base_url", "http://"),
        ('base_url = "https://h/v1?api_key=abc"', "base_url", "no query"),
        ('base_url = "https://h/v1#top"', "base_url", "no query"),
        ('base_url = "https://h:port/v1"', "base_url", "http://"),
        ("max_attempts = 0", "max_attempts", "1 or more"),
        ('max_retry_wait = "0s"', "max_retry_wait", "expected a duration of 1s or more"),
        ("max_retry_wait = 0", "max_retry_wait", "got '0s'"),
        ('max_retry_wait = "250ms"', "max_retry_wait", "got '250ms'"),
        ("max_page_bytes = 64", "max_page_bytes", "expected 1KiB or more, e.g. '64MiB', got '64B'"),
        ('schedule = "70 * * * *"', "schedule", "minute 70 is not in 0-59"),
        ('schedule = "0 24 * * *"', "schedule", "hour 24 is not in 0-23"),
        ('schedule = "*/0 * * * *"', "schedule", "minute step 0"),
        ('schedule = "0 0 0 * *"', "schedule", "day-of-month 0 is not in 1-31"),
        ('schedule = "0 0 * 1-13 *"', "schedule", "month 13 is not in 1-12"),
        ('schedule = "0 0 * * 9"', "schedule", "day-of-week 9 is not in 0-7"),
        ('schedule = "0 9-5 * * *"', "schedule", "hour range 9-5 runs backwards"),
    ],
)
def test_source_level_refusals(tmp_path: Path, extra: str, field: str, words: str) -> None:
    text = SOURCE.format(extra="").replace('base_url = "https://api.example.com/v1"\n', "")
    text = (extra if "base_url" in extra else 'base_url = "https://h/v1"\n' + extra) + "\n" + text

    _, errors = refusal(tmp_path, text)

    assert any(name == field and words in message for name, message, _ in errors), errors


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ('type = "cursor"', 'type = "offset"', "endpoints[0].pagination.page_size", "needs"),
        ('type = "bearer"\ntoken = "env:SHOP_TOKEN"', 'type = "oauth2"', "auth.token_url", "needs"),
        (
            'type = "bearer"\ntoken = "env:SHOP_TOKEN"',
            'type = "oauth2"\ntoken_url = "https://[::1/token"',
            "auth.token_url",
            "expected an http(s) URL",
        ),
        (
            'type = "bearer"\ntoken = "env:SHOP_TOKEN"',
            'type = "api_key"\nkey = "env:SHOP_KEY"\nname = "X Api Key"',
            "auth.name",
            "not an HTTP header name",
        ),
        ('parent = "orders"\n', "", "endpoints[1].parent", "placeholders"),
        ('parent = "orders"', 'parent = "nope"', "endpoints[1].parent", "no endpoint"),
        ("{parent.id}", "{id}", "endpoints[1].path", "not {parent.<field>}"),
        ('name = "items"', 'name = "orders"', "endpoints[1].name", "declared twice"),
        (
            'lookback = "1h"',
            'lookback = "1h"\ntype = "int"',
            "endpoints[0].incremental.lookback",
            "",
        ),
        ('"2026-01-01T00:00:00Z"', '"yesterday"', "endpoints[0].incremental.initial_value", "ISO"),
        (
            'lookback = "1h"',
            'lookback = "1h"\nwindow = 1',
            "endpoints[0].incremental.window",
            "a bare number is seconds: got 1s",
        ),
        ('path = "/orders"\n', 'path = "orders"\n', "endpoints[0].path", "starting with '/'"),
        (
            'cursor_path = "meta.next"',
            'cursor_path = "meta.next"\nnext_url_path = "links.next"',
            "endpoints[0].pagination.next_url_path",
            "a key of pagination type 'next_url', not used by type 'cursor'",
        ),
        (
            'cursor_path = "meta.next"',
            'cursor_path = "meta.next"\npage_param = "p"',
            "endpoints[0].pagination.page_param",
            "a key of pagination type 'page_number'",
        ),
        (
            'cursor_path = "meta.next"',
            'cursor_path = "meta.next"\npage_size = 50',
            "endpoints[0].pagination.size_param",
            "page_size is sent as size_param",
        ),
        (
            'type = "cursor"\ncursor_path = "meta.next"',
            'type = "offset"\npage_size = 50\nsize_param = "per_page"',
            "endpoints[0].pagination.size_param",
            "sends page_size as limit_param",
        ),
        ('timeout = "10s"', 'timeout = "0s"', "timeout", "expected a duration above zero"),
        (
            'lookback = "1h"',
            'lookback = "-1h"',
            "endpoints[0].incremental.lookback",
            "invalid duration",
        ),
        (
            'type = "bearer"\ntoken = "env:SHOP_TOKEN"',
            'type = "oauth2"\ntoken_url = "https://h/t"\nclient_id = "c"\n'
            'client_secret = "env:S"\nrefresh_margin = "-5s"',
            "auth.refresh_margin",
            "invalid duration",
        ),
        (
            'lookback = "1h"',
            'lookback = "1h"\nwindow = "1d"',
            "endpoints[0].incremental.end_param",
            "a window needs end_param",
        ),
    ],
)
def test_endpoint_refusals_name_the_field(
    tmp_path: Path, old: str, new: str, field: str, words: str
) -> None:
    text = SOURCE.format(extra="")
    assert old in text
    _, errors = refusal(tmp_path, text.replace(old, new, 1))

    assert any(name == field and words in message for name, message, _ in errors), errors


def test_a_child_of_a_child_is_refused(tmp_path: Path) -> None:
    grandchild = '\n[[endpoints]]\nname = "notes"\npath = "/items/{parent.id}"\nparent = "items"\n'
    _, errors = refusal(tmp_path, SOURCE.format(extra="") + grandchild + 'dataset = "shop_x"\n')

    assert any("itself a child" in message for _, message, _ in errors)


def test_the_source_name_must_be_the_file_name(tmp_path: Path) -> None:
    _, errors = refusal(tmp_path, 'source = "other"\n' + SOURCE.format(extra=""))

    assert [name for name, _, _ in errors] == ["source"]


def test_no_sources_directory_is_an_empty_set(tmp_path: Path) -> None:
    assert len(load_sources(tmp_path)) == 0


def test_cursor_values_parse_compare_shift_and_format() -> None:
    stamp = parse_cursor("timestamp", "2026-01-31T12:00:00+01:00")
    assert format_cursor(stamp) == "2026-01-31T11:00:00Z"
    assert format_cursor(shift_cursor(stamp, timedelta(hours=2))) == "2026-01-31T09:00:00Z"
    assert parse_cursor("date", "2026-01-31T10:00:00Z") == date(2026, 1, 31)
    assert parse_cursor("int", 7.0) == 7
    assert shift_cursor(7, timedelta(hours=1)) == 7
    with pytest.raises(CursorValueError, match="an integer"):
        parse_cursor("int", "seven")


def test_chunk_and_manifest_keys() -> None:
    name = landing_api_chunk_name("orders", date(2026, 1, 31), "r1", 3)
    assert name == "orders_20260131_r1_000003.jsonl.gz"
    key = landing_api_chunk_key("shop", "orders", date(2026, 1, 31), "r1", 3)
    assert key == f"landing/api/shop/orders/{name}"
    assert raw_api_manifest_key("shop", "orders", date(2026, 1, 31), "r1") == (
        "raw/api/shop/orders/dt=2026-01-31/r1/_manifest.json"
    )
    with pytest.raises(ValueError, match="chunk"):
        landing_api_chunk_name("orders", date(2026, 1, 31), "r1", -1)


def test_a_max_retry_wait_of_zero_is_refused_naming_the_file_line_and_key(tmp_path: Path) -> None:
    text = 'base_url = "https://h/v1"\nmax_retry_wait = "0s"\n' + SOURCE.format(extra="").replace(
        'base_url = "https://api.example.com/v1"\n', ""
    )

    path, errors = refusal(tmp_path, text)

    [(_, message, where)] = [e for e in errors if e[0] == "max_retry_wait"]
    assert where.startswith(f"{path}:2")
    assert "1s or more" in message
    assert "'0s'" in message


def test_a_max_retry_wait_of_a_second_or_more_loads(tmp_path: Path) -> None:
    text = 'max_retry_wait = "1s"\n' + SOURCE.format(extra="")

    assert load_source(write_source(tmp_path, text)).max_retry_wait == timedelta(seconds=1)
