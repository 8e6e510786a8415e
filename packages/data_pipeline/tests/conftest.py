"""Fixtures for the data_pipeline tests."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from data_pipeline.settings import PipelineSettings
from etl_core.storage import ObjectStore, open_store
from etl_core.testing.brokers import celery_broker
from etl_core.testing.deliveries import publish_delivery
from etl_core.testing.fixtures import (
    postgres_server_url,
    postgres_url,
    refused_login_urls,
    s3_bucket,
    s3_endpoint,
)
from etl_core.testing.scripts import run_script

# shared fixtures, re-exported for pytest
__all__ = [
    "celery_broker",
    "postgres_server_url",
    "postgres_url",
    "refused_login_urls",
    "s3_bucket",
    "s3_endpoint",
]

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Run ``etl-data-pipeline`` in a clean working directory with JSON logs."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_script("etl-data-pipeline", *args, cwd=tmp_path, env=env)

    return run


@pytest.fixture
def cli_on(cli: Cli, config_dir: Path) -> Callable[[Path], Cli]:
    """``cli`` on the test's config directory and the store at a given root: the two
    options every pipeline command of a test repeats."""

    def bind(storage: Path) -> Cli:
        def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
            return cli("--config-dir", str(config_dir), "--storage", str(storage), *args, env=env)

        return run

    return bind


@pytest.fixture
def migrated_sqlite(tmp_path: Path) -> str:
    """The URL of a SQLite database migrated with ``etl-schema migrate``."""
    url = f"sqlite:///{tmp_path / 'etl.sqlite3'}"
    result = run_script("etl-schema", "migrate", cwd=tmp_path, env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    return url


# --------------------------------------------------------------------------- pipeline data

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "retail"
POS_COLUMNS = [
    ("transaction_id", "string"),
    ("store_id", "string"),
    ("register_id", "string"),
    ("sold_at", "timestamp"),
    ("product_sku", "string"),
    ("quantity", "decimal(12,3)"),
    ("unit_price", "decimal(12,2)"),
    ("discount", "decimal(5,2)"),
    ("currency", "string"),
    ("payment_type", "string"),
    ("customer_id", "string"),
    ("loyalty_member", "bool"),
]
POS_TRANSFORM = '''
[transform]
sql = """
SELECT transaction_id, 1 AS line_number, sold_at, store_id AS store_code,
       product_sku AS sku, quantity, unit_price,
       CAST(round(quantity * unit_price * (1 - discount), 2) AS DECIMAL(14,2)) AS amount,
       currency, payment_type
FROM input
"""
dedupe_on = ["transaction_id", "line_number"]
'''
STORES_JOIN = """
[enrich.stores]
file = "reference/stores.csv"
on = { store_code = "store_id" }
columns = { region = "country", store_name = "name" }
unmatched = "%s"
"""
PRODUCTS_JOIN = """
[enrich.products]
file = "reference/products.csv"
on = { sku = "product_sku" }
columns = ["category"]
unmatched = "%s"
"""
LOAD = """
[load]
table = "retail_sales_transaction"
"""


def columns_toml(columns: list[tuple[str, str]] = POS_COLUMNS) -> str:
    """``[[columns]]`` tables for a contract."""
    return "".join(f'\n[[columns]]\nname = "{n}"\ntype = "{t}"\n' for n, t in columns)


def pos_contract(
    *,
    stores: str = "keep",
    products: str = "fail",
    transform: str = POS_TRANSFORM,
    load: bool = True,
) -> str:
    """The retail point-of-sale contract used across the tests."""
    return (
        'dataset = "pos"\n'
        + columns_toml()
        + transform
        + STORES_JOIN % stores
        + PRODUCTS_JOIN % products
        + "\n[output]\nrow_group_size = 1000\n"
        + (LOAD if load else "")
    )


def write_contract(config_dir: Path, dataset: str, text: str) -> Path:
    """Write ``<config_dir>/datasets/<dataset>.toml``; a text without ``source`` gets the
    landing source and pattern every contract needs (``<dataset>_{date:%Y%m%d}.csv``)."""
    if not re.search(r"^source\s*=", text, re.MULTILINE):
        landing = f'source = "{dataset}"\npattern = "{dataset}_{{date:%Y%m%d}}.csv"\n'
        text = re.sub(r"^(dataset\s*=.*\n)", lambda m: m.group(1) + landing, text, count=1)
    path = config_dir / "datasets" / f"{dataset}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def pos_rows(day: str, rows: int) -> str:
    """A generated point-of-sale CSV for ``day`` (the example's generator)."""
    import importlib.util
    import io
    from datetime import date

    spec = importlib.util.spec_from_file_location("retail_generate", EXAMPLE / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = io.StringIO()
    module.write_transactions(buffer, date.fromisoformat(day), rows)
    return buffer.getvalue()


def seed_store(store: ObjectStore, days: list[str], rows: int = 200) -> None:
    """Reference CSVs plus one published POS delivery per day."""
    for name in ("stores", "products"):
        store.write_bytes(
            f"reference/{name}.csv", (EXAMPLE / "reference" / f"{name}.csv").read_bytes()
        )
    for day in days:
        files = {f"pos_{day}.csv": pos_rows(day, rows).encode()}
        publish_delivery(store, "pos", date.fromisoformat(day), files, rows=rows)


def seeded_store_at(root: Path, days: list[str], rows: int) -> Path:
    """A local store at ``root`` seeded as :func:`seed_store` does; ``root``."""
    with open_store(str(root)) as store:
        seed_store(store, days, rows)
    return root


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A config directory holding the POS contract."""
    directory = tmp_path / "config"
    write_contract(directory, "pos", pos_contract())
    return directory


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    """An empty store, once per backend: a local directory, then a fresh S3 prefix (moto)."""
    if request.param == "local":
        with open_store(tmp_path / "lake") as local:
            yield local
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    with open_store(f"s3://{bucket}/{tmp_path.name}", endpoint_url=endpoint) as remote:
        yield remote


@pytest.fixture
def local_store(tmp_path: Path) -> Iterator[ObjectStore]:
    """A local object store seeded with reference data and two validated POS days."""
    with open_store(str(tmp_path / "store")) as store:
        seed_store(store, ["2026-11-01", "2026-11-02"])
        yield store


@pytest.fixture
def settings(tmp_path: Path, config_dir: Path) -> PipelineSettings:
    """Pipeline settings on the test's config directory, small DuckDB memory."""
    return PipelineSettings(
        storage_url=str(tmp_path / "store"), config_dir=config_dir, duckdb_memory_limit="256MB"
    )


class Retail:
    """The helpers above, for tests (conftest modules are not importable by tests)."""

    contract = staticmethod(pos_contract)
    columns_toml = staticmethod(columns_toml)
    write_contract = staticmethod(write_contract)
    seed = staticmethod(seed_store)
    seeded_at = staticmethod(seeded_store_at)
    rows = staticmethod(pos_rows)
    TRANSFORM = POS_TRANSFORM


@pytest.fixture
def retail() -> type[Retail]:
    """Contract text and data helpers of the retail example."""
    return Retail
