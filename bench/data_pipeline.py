"""Benchmark of data_pipeline: the platform's transform and load against direct DuckDB / Polars.

    .venv/bin/python bench/run.py data_pipeline [--rows 1000000 5000000] [--workdir DIR]

For each size, generated retail transactions (examples/retail/generate.py) are laid out
as a local store, then, each in its own child process so that wall time and peak RSS
(``os.wait4``) are its own:

* ``platform transform``: ``etl-data-pipeline transform`` (the CLI, contract of
  examples/retail/config: transform SQL, de-duplication, two enrichment joins);
* ``duckdb direct``: the contract's SQL plus the two joins as LEFT JOINs against the
  reference CSVs, one ``COPY ... TO (FORMAT parquet, PARTITION_BY (dt), COMPRESSION zstd)``;
* ``duckdb direct + dedupe``: the same with the platform's de-duplication (``QUALIFY
  row_number() ...``), to show what that step costs;
* ``polars lazy``: ``scan_csv`` / ``join`` / ``sink_parquet`` (skipped without polars);
* ``platform load``: ``etl-data-pipeline load`` of the smallest size into a throwaway
  PostgreSQL database (skipped when PostgreSQL is unreachable), against its floor: the
  same rows as ready-made CSV sent by ``COPY`` into an indexed plain table shaped like
  ``retail_sales_transaction`` was before it was partitioned (``bench_floor``: the same
  columns, defaults, primary key, unique key and secondary indexes), in the same run.

Standard library at import time: the child processes import this file too (``--worker``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any


def _load_harness() -> ModuleType:
    """bench/harness.py, loaded once by path as ``bench_harness`` (bench/ is off sys.path)."""
    if "bench_harness" not in sys.modules:
        path = Path(__file__).with_name("harness.py")
        spec = importlib.util.spec_from_file_location("bench_harness", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules["bench_harness"]


if TYPE_CHECKING:
    import harness
else:
    harness = _load_harness()

HERE = Path(__file__).resolve().parent
CONFIG_DIR, DATASET, DAY, ROOT = harness.CONFIG_DIR, harness.DATASET, harness.DAY, harness.ROOT
BIN, MIB, TOOLS_ENV = harness.BIN, harness.MIB, harness.TOOLS_PYTHON_ENV
Result = harness.Result

# Targets (see bench/README.md).
MAX_RATIO_VS_DUCKDB = 1.3
MAX_RSS_MIB = 1024  # "1 GB" read as 1 GiB; the report also gives the decimal figure
RSS_TARGET_ROWS = 5_000_000
MIN_LOAD_ROWS_PER_SECOND = 100_000
MIN_LOAD_VS_FLOOR = 2.5  # the load's rows/s over a bare COPY into the indexed table's
FLOOR_TABLE = "bench_floor"

PLATFORM = "platform transform"
DUCKDB = "duckdb direct"
DUCKDB_DEDUPE = "duckdb direct + dedupe"
POLARS = "polars lazy"
LOAD = "platform load (PostgreSQL)"
LOAD_FLOOR = "COPY into indexed table"
LOADED = (
    "dt", "transaction_id", "line_number", "sold_at", "store_code", "sku", "quantity",
    "unit_price", "amount", "currency", "region", "category",
)  # fmt: skip

# This file is named like the package it measures: never let bench/ shadow `data_pipeline`.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Layout(harness.Layout):
    """The scratch files of one size."""

    @property
    def csv(self) -> Path:
        return (
            self.store / "validated" / DATASET / f"dt={DAY.isoformat()}" / f"pos_{DAY:%Y%m%d}.csv"
        )

    @property
    def reference(self) -> Path:
        return self.store / "reference"

    def out(self, tool: str) -> Path:
        """The output directory of a direct engine (its parent exists)."""
        (self.base / "out").mkdir(exist_ok=True)
        return self.base / "out" / tool.replace(" ", "-").replace("+", "plus")


def prepare(layout: Layout, rows: int) -> float:
    """Lay out the store (reusing a complete CSV from an earlier run); returns seconds spent."""
    from etl_core.storage import open_store
    from etl_core.testing.deliveries import record_delivery

    clock = time.perf_counter()
    harness.generator().write_reference(layout.reference)
    for stale in ("curated", "_state"):
        shutil.rmtree(layout.store / stale, ignore_errors=True)
    shutil.rmtree(layout.base / "out", ignore_errors=True)
    harness.write_csv(layout.csv, rows)
    with open_store(layout.store) as store:  # the manifest file_processing would have written
        record_delivery(store, DATASET, DAY, [layout.csv.name], rows=rows)
    os.sync()  # write the CSV back now, not while the first tool is being timed
    return time.perf_counter() - clock


def parquet_stats(directory: Path) -> tuple[int, int]:
    """(rows, bytes) of every Parquet file under ``directory``."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    rows = size = 0
    for path in sorted(directory.rglob("*.parquet")):
        rows += pq.ParquetFile(path).metadata.num_rows
        size += path.stat().st_size
    return rows, size


def tools_python() -> Path:
    """The reference tools' interpreter: ``$ETL_BENCH_TOOLS_PYTHON``, else this one."""
    return harness.tools_python(Path(sys.executable))


# --------------------------------------------------------------------------- platform


def child_env(**extra: str) -> dict[str, str]:
    """The environment of the platform's children: ours, without DATABASE_URL unless given,
    bytecode caching allowed (as ``bench/startup.py`` and ``bench/ingest.py`` do): the
    editable packages are not compiled at install, as an image's wheels are, and a shell
    with ``PYTHONDONTWRITEBYTECODE`` would have every run compile them again (about 0.2 s
    a run, not a cost of the platform). :func:`compile_platform` fills the cache first."""
    return harness.child_env(without=("DATABASE_URL", "PYTHONDONTWRITEBYTECODE"), **extra)


def platform_cmd(layout: Layout, *command: str) -> list[str]:
    return [
        str(BIN / "etl-data-pipeline"),
        "--storage",
        layout.store.as_uri(),
        "--config-dir",
        str(CONFIG_DIR),
        "--log-format",
        "json",
        "--log-level",
        "info",
        *command,
        "--dataset",
        DATASET,
        "--date",
        DAY.isoformat(),
    ]


def bench_platform_transform(layout: Layout, size: int) -> Result:
    run = harness.run_child(
        platform_cmd(layout, "transform"), name="platform-transform", logs=layout.logs,
        cwd=layout.base, env=child_env(),
    )  # fmt: skip
    result = Result(size, PLATFORM).timed(run)
    if not result.ok:
        return result
    manifest = curated_manifest(layout)
    result.rows, result.output_bytes = manifest["rows"], manifest["bytes"]
    inner = [e["seconds"] for e in run.log_events("partition transformed")]
    if inner:
        result.startup_seconds = run.seconds - inner[0]
        result.notes.append(
            f"{PLATFORM}: {inner[0]:.2f} s inside transform_partition (its log), "
            f"{run.seconds - inner[0]:.2f} s process start-up, contract, lease and exit"
        )
    return result


def curated_manifest(layout: Layout) -> dict[str, Any]:
    """The manifest of the partition the platform transform published."""
    path = layout.store / "curated" / DATASET / f"dt={DAY}" / "_manifest.json"
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


# --------------------------------------------------------------------------- direct engines


def direct_sql(layout: Layout, out: Path, *, dedupe: bool) -> str:
    """The contract's SQL, typed like the platform's ``input`` view, with the joins inlined."""
    from etl_core.contracts import load_contracts

    contract = load_contracts(CONFIG_DIR).get(DATASET)
    q, lit = harness.sql_name, harness.sql_string
    casts = ", ".join(f"CAST({q(c.name)} AS {c.sql_type}) AS {q(c.name)}" for c in contract.columns)
    reader = (
        f"read_csv({lit(str(layout.csv))}, header = true, all_varchar = true, "
        f"delim = {lit(contract.parse.delimiter)})"
    )
    spec = contract.transform
    ctes = f"WITH input AS (SELECT {casts} FROM {reader}), transformed AS ({spec.sql.strip()})"
    transformed = "transformed"
    if dedupe and spec.dedupe_on:
        import duckdb

        # Ordered by every column, as the platform does (data_pipeline.transform._build).
        columns = [
            row[0]
            for row in duckdb.connect().execute(f"DESCRIBE {ctes} FROM transformed").fetchall()
        ]
        transformed = (
            "(SELECT * FROM transformed QUALIFY row_number() OVER "
            f"(PARTITION BY {', '.join(q(k) for k in spec.dedupe_on)} "
            f"ORDER BY {', '.join(q(c) for c in columns)}) = 1)"
        )
    selects, joins = ["t.*"], []
    for index, join in enumerate(contract.enrich):
        assert join.file, "the benchmark contract joins reference files"
        alias = f"r{index}"
        path = layout.store / join.file
        joins.append(
            f"LEFT JOIN read_csv({lit(str(path))}, header = true) AS {alias} ON "
            + " AND ".join(f"t.{q(left)} = {alias}.{q(right)}" for left, right in join.on)
        )
        selects.extend(f"{alias}.{q(src)} AS {q(name)}" for name, src in join.columns)
    selects.append(f"DATE {lit(DAY.isoformat())} AS {q(spec.partition_by)}")
    query = f"{ctes} SELECT {', '.join(selects)} FROM {transformed} AS t {' '.join(joins)}"
    return (
        f"COPY ({query}) TO {lit(str(out))} "
        f"(FORMAT parquet, PARTITION_BY ({q(spec.partition_by)}), COMPRESSION zstd)"
    )


def bench_duckdb(layout: Layout, size: int, *, dedupe: bool) -> Result:
    tool = DUCKDB_DEDUPE if dedupe else DUCKDB
    out = layout.out(tool)
    sql_file = layout.base / f"{out.name}.sql"
    sql_file.write_text(direct_sql(layout, out, dedupe=dedupe))
    return run_tool(layout, Result(size, tool), "duckdb", str(sql_file), out)


def run_tool(layout: Layout, result: Result, kind: str, arg: str, out: Path) -> Result:
    """One run of a reference tool's worker writing Parquet to ``out`` (emptied first)."""
    shutil.rmtree(out, ignore_errors=True)
    run = harness.run_child(
        harness.worker_cmd(tools_python(), __file__, kind, arg), name=out.name,
        logs=layout.logs, cwd=layout.base, env=child_env(),
    )  # fmt: skip
    if result.timed(run).ok:
        result.rows, result.output_bytes = parquet_stats(out)
    return result


def tool_version(module: str) -> str | None:
    """``module.__version__`` as the reference tools' interpreter sees it; None if absent."""
    probe = subprocess.run(
        [str(tools_python()), "-c", f"import {module}; print({module}.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def bench_polars(layout: Layout, size: int) -> Result:
    out = layout.out(POLARS)
    spec = {
        "csv": str(layout.csv),
        "stores": str(layout.reference / "stores.csv"),
        "products": str(layout.reference / "products.csv"),
        "out": str(out),
        "day": DAY.isoformat(),
    }
    return run_tool(layout, Result(size, POLARS), "polars", json.dumps(spec), out)


def worker_copy(spec_json: str) -> int:
    """Child: delete the day from the indexed plain table and ``COPY`` the ready CSV into
    it in 8 MiB chunks, one transaction (what a load did before tables were partitioned)."""
    import psycopg

    spec = json.loads(spec_json)
    statement = f"COPY {FLOOR_TABLE} ({', '.join(LOADED)}) FROM STDIN (FORMAT csv)"
    with psycopg.connect(spec["url"]) as con, con.cursor() as cursor:
        cursor.execute(f"DELETE FROM {FLOOR_TABLE} WHERE dt = %s", [spec["day"]])
        with cursor.copy(statement) as copy, open(spec["csv"], "rb") as rows:
            while chunk := rows.read(8 * MIB):
                copy.write(chunk)
    return 0


def worker_duckdb(sql_file: str) -> int:
    """Child: run one COPY statement on an in-memory DuckDB with its default settings."""
    import duckdb

    row = duckdb.connect().execute(Path(sql_file).read_text()).fetchone()
    print(f"rows={row[0] if row else 0}")
    return 0


def worker_polars(spec_json: str) -> int:
    """Child: the example contract's transform and joins, translated by hand to Polars lazy."""
    import polars as pl  # type: ignore[import-not-found, unused-ignore]  # .venv-bench only

    spec = json.loads(spec_json)
    names = harness.generator().COLUMNS
    lf = pl.scan_csv(spec["csv"], schema=dict.fromkeys(names, pl.String))
    quantity = pl.col("quantity").cast(pl.Int64)
    unit_price = pl.col("unit_price").cast(pl.Decimal(12, 2))
    discount = pl.col("discount").cast(pl.Decimal(4, 2)).fill_null(0)
    transformed = lf.select(
        pl.col("transaction_id"),
        pl.lit(1, pl.Int32).alias("line_number"),
        pl.col("sold_at").str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us"),
        pl.col("store_id").alias("store_code"),
        pl.col("product_sku").alias("sku"),
        quantity.cast(pl.Decimal(12, 3)).alias("quantity"),
        unit_price.alias("unit_price"),
        (quantity * unit_price * (1 - discount)).round(2).cast(pl.Decimal(14, 2)).alias("amount"),
        pl.col("currency"),
        pl.col("payment_type"),
    )
    stores = pl.scan_csv(spec["stores"]).select(
        pl.col("store_id"), pl.col("country").alias("region"), pl.col("name").alias("store_name")
    )
    products = pl.scan_csv(spec["products"]).select("product_sku", "category")
    enriched = (
        transformed.join(stores, left_on="store_code", right_on="store_id", how="left")
        .join(products, left_on="sku", right_on="product_sku", how="left")
        .with_columns(pl.lit(spec["day"]).str.to_date().alias("dt"))
    )
    if hasattr(pl, "PartitionBy"):  # polars >= 1.35
        target: Any = pl.PartitionBy(spec["out"], key="dt")
    elif hasattr(pl, "PartitionByKey"):
        target = pl.PartitionByKey(spec["out"], by="dt")
    else:
        target = Path(spec["out"]) / f"dt={spec['day']}" / "part-0.parquet"
        target.parent.mkdir(parents=True)
    enriched.sink_parquet(target, compression="zstd", mkdir=True)
    return 0


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Postgres:
    """A reachable PostgreSQL server: an admin URL (database ``postgres``) and its user."""

    user: str
    host: str = "127.0.0.1"
    port: int = 5432

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"


def find_postgres(host: str, port: int) -> tuple[Postgres | None, str]:
    """The first of users root / postgres that can connect (trust auth), or why none can."""
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed (the `schema` extra of data_pipeline)"
    errors = []
    for user in ("root", "postgres"):
        server = Postgres(user, host, port)
        try:
            with psycopg.connect(server.url("postgres"), connect_timeout=3):
                return server, ""
        except psycopg.Error as exc:
            errors.append(f"{user}: {str(exc).strip().splitlines()[0]}")
    return None, f"PostgreSQL at {host}:{port} is unreachable ({errors[-1]})"


@contextmanager
def throwaway_database(server: Postgres) -> Iterator[str]:
    """A new empty database ``bench_<random>``, dropped afterwards; yields its URL."""
    import psycopg

    name = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_loads(layout: Layout, size: int, repeat: int, server: Postgres) -> list[Result]:
    """The platform load and its floor, the same rows as ready-made CSV sent to ``COPY``,
    in interleaved rounds on one throwaway database. Each run starts from an emptied
    table (``TRUNCATE``, not timed): a run replacing the rows of the one before would
    pay for its dead tuples and bloated indexes, and the order of the tools would decide."""
    platform, floor = Result(size, LOAD), Result(size, LOAD_FLOOR)
    with throwaway_database(server) as url:
        env = child_env(DATABASE_URL=url)
        migrate = harness.run_child(
            [str(BIN / "etl-schema"), "migrate"],
            name="etl-schema-migrate",
            logs=layout.logs,
            cwd=layout.base,
            env=env,
        )
        if migrate.returncode:
            platform.note = f"etl-schema migrate failed (exit {migrate.returncode})"
            platform.detail = migrate.tail()
            floor.note = "skipped: etl-schema migrate failed"
            return [platform, floor]
        create_floor_table(url)
        spec = json.dumps({"url": url, "csv": str(floor_csv(layout)), "day": DAY.isoformat()})
        return harness.interleaved(
            repeat,
            [
                (LOAD, load_once, (layout, size, env, migrate, url), {}),
                (LOAD_FLOOR, copy_once, (layout, size, spec, url), {}),
            ],
        )


def load_once(
    layout: Layout, size: int, env: dict[str, str], migrate: harness.ChildRun, url: str
) -> Result:
    empty_table(url)
    run = harness.run_child(
        platform_cmd(layout, "load"), name="platform-load", logs=layout.logs,
        cwd=layout.base, env=env,
    )  # fmt: skip
    result = Result(size, LOAD).timed(run)
    if not result.ok:
        return result
    result.rows = loaded_rows(url)
    inner = [e["seconds"] for e in run.log_events("partition loaded") if "seconds" in e]
    result.notes.append(
        f"{LOAD}: etl-schema migrate {migrate.seconds:.2f} s (not counted); "
        + (
            f"{inner[0]:.2f} s inside load_curated_partition (its log), "
            f"{size / inner[0]:,.0f} rows/s there"
            if inner
            else "no 'partition loaded' log line found"
        )
    )
    return result


def floor_csv(layout: Layout) -> Path:
    """The curated rows as the CSV the load sends (written here, not timed)."""
    import duckdb

    manifest = curated_manifest(layout)
    files = ", ".join(harness.sql_string(str(layout.store / key)) for key in manifest["files"])
    q = harness.sql_name
    columns = ", ".join(
        f"coalesce({q(c)}, '') AS {q(c)}" if c in ("region", "category") else q(c) for c in LOADED
    )
    rows = layout.base / "floor.csv"
    duckdb.connect().execute(
        f"COPY (SELECT {columns} FROM read_parquet([{files}])) TO "
        f"{harness.sql_string(str(rows))} (FORMAT csv, HEADER false)"
    )
    return rows


def copy_once(layout: Layout, size: int, spec: str, url: str) -> Result:
    empty_table(url)
    run = harness.run_child(
        harness.worker_cmd(Path(sys.executable), __file__, "copy", spec),
        name="copy-floor", logs=layout.logs, cwd=layout.base, env=child_env(),
    )  # fmt: skip
    result = Result(size, LOAD_FLOOR).timed(run)
    if result.ok:
        result.rows = loaded_rows(url, FLOOR_TABLE)
    return result


FLOOR_INDEXES = (
    "PRIMARY KEY (id, dt)",
    "UNIQUE (dt, transaction_id, line_number)",
)
FLOOR_SECONDARY = ("(store_code, dt)", "(sku, dt)")


def create_floor_table(url: str) -> None:
    """The floor's target: a plain table with the curated table's columns and its indexes
    as they were before partitioning (database collation; ``(code, dt)`` secondary
    indexes), whatever later migrations changed, so that every run compares to one floor."""
    import psycopg

    with psycopg.connect(url) as con:
        con.execute(
            f"CREATE TABLE {FLOOR_TABLE} (LIKE retail_sales_transaction INCLUDING DEFAULTS "
            f"INCLUDING CONSTRAINTS, {', '.join(FLOOR_INDEXES)})"
        )
        for column, length in (("transaction_id", 64), ("store_code", 32), ("sku", 64)):
            con.execute(
                f"ALTER TABLE {FLOOR_TABLE} ALTER COLUMN {column} "
                f'TYPE varchar({length}) COLLATE "default"'
            )
        for key in FLOOR_SECONDARY:
            con.execute(f"CREATE INDEX ON {FLOOR_TABLE} {key}")


def empty_table(url: str) -> None:
    import psycopg

    with psycopg.connect(url) as con:
        con.execute(f"TRUNCATE retail_sales_transaction, {FLOOR_TABLE}")


def loaded_rows(url: str, table: str = "retail_sales_transaction") -> int:
    import psycopg

    with psycopg.connect(url) as con:
        row = con.execute(f"SELECT count(*) FROM {table} WHERE dt = %s", [DAY]).fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- profile


PROFILED = (
    ("lease.py", "_acquire"),
    ("transform.py", "_stage_inputs"),
    ("engine.py", "connect_engine"),
    ("engine.py", "create_input_view"),
    ("enrich.py", "stage_reference"),
    ("transform.py", "_build"),
    ("transform.py", "_write"),
    ("transform.py", "_count_repeats"),
    ("transform.py", "_check_result"),
    ("transform.py", "_one_pass"),
    ("layout.py", "publish_partition"),
    ("lease.py", "_release"),
    ("transform.py", "transform_partition"),
)


def profile_platform(layout: Layout, size: int) -> list[str]:
    """Run the platform transform once more under cProfile; seconds per step of the code."""
    lines, _ = harness.profile_child(
        platform_cmd(layout, "transform"),
        PROFILED,
        title=f"profile of {PLATFORM}, {size:,} rows",
        width=34,
        under="data_pipeline/",
        prof=layout.base / "platform-transform.prof",
        name="platform-transform-profile",
        logs=layout.logs,
        cwd=layout.base,
        env=child_env(),
    )
    return lines


# --------------------------------------------------------------------------- report


def report(results: list[Result], csv_bytes: dict[int, int]) -> list[str]:
    """The table: tool, rows, seconds, rows/s, MiB/s (input CSV), peak RSS, vs DuckDB."""
    _fmt = harness.fmt
    header = (
        f"{'tool':<28} {'rows':>11} {'seconds':>8} {'rows/s':>11} {'MiB/s':>7} "
        f"{'peak RSS MiB':>12} {'out MiB':>8} {'vs duckdb':>9}"
    )
    lines = [header, "-" * len(header)]
    for size in sorted({r.size for r in results}):
        baseline = next((r for r in results if r.size == size and r.tool == DUCKDB and r.ok), None)
        for r in (r for r in results if r.size == size):
            if not r.ok:
                lines.append(f"{r.tool:<28} {size:>11,} {r.note or 'skipped'}")
                continue
            assert r.seconds is not None
            rows = r.rows if r.rows is not None else size
            ratio = (
                r.seconds / baseline.seconds
                if baseline and baseline.seconds and r.tool not in (LOAD, LOAD_FLOOR)
                else None
            )
            mark = "" if rows == size else f"  (! expected {size:,} rows)"
            lines.append(
                f"{r.tool:<28} {rows:>11,} {r.seconds:>8.2f} {rows / r.seconds:>11,.0f} "
                f"{csv_bytes[size] / MIB / r.seconds:>7.1f} {_fmt(r.peak_rss_mib, '.0f'):>12} "
                f"{_fmt(r.output_bytes and r.output_bytes / MIB, '.1f'):>8} "
                f"{_fmt(ratio, '.2f') + 'x' if ratio else '-':>9}{mark}"
            )
        lines.append("")
    return lines


def targets(results: list[Result]) -> tuple[list[str], bool]:
    """Whether the targets are met; returns the lines and whether all measured ones are."""
    verdict = harness.Verdicts()
    lines = verdict.lines
    for size in sorted({r.size for r in results}):
        by_tool = {r.tool: r for r in results if r.size == size and r.ok}
        platform, duck = by_tool.get(PLATFORM), by_tool.get(DUCKDB)
        if platform and duck and platform.seconds and duck.seconds:
            ratio = platform.seconds / duck.seconds
            lines.append(
                f"  {verdict(ratio <= MAX_RATIO_VS_DUCKDB)} platform transform within "
                f"{MAX_RATIO_VS_DUCKDB}x of direct DuckDB at {size:,} rows: {ratio:.2f}x "
                f"({platform.seconds:.2f} s vs {duck.seconds:.2f} s)"
            )
        else:
            lines.append(f"  n/a    transform ratio at {size:,} rows: not measured")
        if platform:
            verdict.startup(platform, "`transform`")
    big = [r for r in results if r.tool == PLATFORM and r.ok and r.size >= RSS_TARGET_ROWS]
    if big:
        for r in big:
            assert r.peak_rss_mib is not None
            decimal_gb = r.peak_rss_mib * MIB / 1e9
            lines.append(
                f"  {verdict(r.peak_rss_mib < MAX_RSS_MIB)} platform transform peak RSS under "
                f"1 GiB ({MAX_RSS_MIB} MiB) at {r.size:,} rows: {r.peak_rss_mib:.0f} MiB "
                f"(= {decimal_gb:.3f} GB decimal: "
                + ("also under" if decimal_gb < 1 else "NOT under")
                + " a 10^9-byte GB, which is what DuckDB's '1GB' means)"
            )
    else:
        verdict.rss_not_measured(f"{MAX_RSS_MIB} MiB", RSS_TARGET_ROWS)
    loads = [r for r in results if r.tool == LOAD and r.ok]
    floors = {r.size: r for r in results if r.tool == LOAD_FLOOR and r.ok}
    for r in loads:
        assert r.seconds is not None
        speed = (r.rows or 0) / r.seconds
        floor = floors.get(r.size)
        lines.append(
            f"  {verdict(speed >= MIN_LOAD_ROWS_PER_SECOND)} load at least "
            f"{MIN_LOAD_ROWS_PER_SECOND:,} rows/s ({r.size:,} rows): {speed:,.0f} rows/s"
        )
        if floor and floor.seconds and floor.rows:
            ratio = speed / (floor.rows / floor.seconds)
            lines.append(
                f"  {verdict(ratio >= MIN_LOAD_VS_FLOOR)} load at least {MIN_LOAD_VS_FLOOR}x a "
                f"bare COPY of the same rows into the indexed table ({r.size:,} rows): "
                f"{ratio:.2f}x ({r.seconds:.2f} s vs {floor.seconds:.2f} s, same run)"
            )
        else:
            lines.append(
                f"  n/a    load vs bare COPY ({r.size:,} rows): the floor was not measured"
            )
    if not loads:
        reason = next((r.note for r in results if r.tool == LOAD), "not run")
        lines.append(f"  n/a    load rows/s: {reason}")
    return lines, verdict.all_met


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = harness.arg_parser(
        "bench/run.py data_pipeline",
        "Benchmark the data_pipeline transform and load on generated retail data.",
        rows="partition sizes to generate and transform",
        workdir="CSVs",
    )
    parser.add_argument(
        "--load-rows",
        type=int,
        metavar="N",
        help="which size to load into PostgreSQL (default: the smallest of --rows)",
    )
    parser.add_argument("--no-load", action="store_true", help="skip the PostgreSQL load")
    parser.add_argument("--no-polars", action="store_true", help="skip the Polars line")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run the platform transform under cProfile and print seconds per step",
    )
    parser.add_argument("--pg-host", default="127.0.0.1", help="PostgreSQL host (127.0.0.1)")
    parser.add_argument("--pg-port", type=int, default=5432, help="PostgreSQL port (5432)")
    args = harness.parse_args(parser, argv)
    if args.load_rows is None:
        args.load_rows = args.rows[0]
    elif args.load_rows not in args.rows:
        parser.error(f"--load-rows {args.load_rows} is not one of --rows {args.rows}")
    return args


def main(argv: list[str]) -> int:
    """Generate, run every tool for every size, print the report; 0 unless a run failed."""
    args = parse_args(argv)
    if harness.missing_entry_point("etl-data-pipeline"):
        return 2
    with harness.workdir(args.workdir) as workdir:
        return _run(args, workdir)


def _run(args: argparse.Namespace, workdir: Path) -> int:
    harness.print_header("data_pipeline", args, workdir)
    harness.print_settings()
    import duckdb

    duckdb_version, polars_version = tool_version("duckdb"), tool_version("polars")
    print(
        f"  platform: {sys.executable} (DuckDB {duckdb.__version__}); reference tools: "
        f"{tools_python()} (DuckDB {duckdb_version or 'missing'}, "
        f"polars {polars_version or 'missing'})"
    )
    if duckdb_version is None:
        print(f"{tools_python()} cannot import duckdb: set {TOOLS_ENV}", file=sys.stderr)
        return 2
    use_polars = not args.no_polars and polars_version is not None
    if not args.no_polars and not use_polars:
        print(
            f"  polars is not installed for {tools_python()}: the Polars line is skipped "
            f"(`make bench` installs it into .venv-bench; or point {TOOLS_ENV} at a Python "
            "that has it)"
        )
    server, pg_reason = (
        (None, "--no-load") if args.no_load else find_postgres(args.pg_host, args.pg_port)
    )
    if server is None and not args.no_load:
        print(f"  load skipped: {pg_reason}")

    harness.compile_platform(child_env())
    print("  bytecode: the packages compiled first and cached (PYTHONDONTWRITEBYTECODE dropped)")
    results: list[Result] = []
    csv_bytes: dict[int, int] = {}
    notes: list[str] = []
    failed = False
    for size in args.rows:
        layout = Layout(workdir / f"rows-{size}")
        print(f"\n{size:,} rows: generating ...", end=" ", flush=True)
        seconds = prepare(layout, size)
        csv_bytes[size] = layout.csv.stat().st_size
        print(f"{csv_bytes[size] / MIB:,.1f} MiB CSV ({seconds:.1f} s)", flush=True)
        steps: list[harness.Step] = [
            (PLATFORM, bench_platform_transform, (layout, size), {}),
            (DUCKDB, bench_duckdb, (layout, size), {"dedupe": False}),
            (DUCKDB_DEDUPE, bench_duckdb, (layout, size), {"dedupe": True}),
        ]
        if use_polars:
            steps.append((POLARS, bench_polars, (layout, size), {}))
        measured = harness.interleaved(args.repeat, steps)
        platform = measured[0]
        results.extend(measured)
        if not use_polars:
            why = "--no-polars" if args.no_polars else "polars is not installed (see above)"
            results.append(Result(size, POLARS, note=f"skipped: {why}"))
        if size == args.load_rows:
            if server is None:
                results.append(Result(size, LOAD, note=f"skipped: {pg_reason}"))
            elif not platform.ok:
                results.append(Result(size, LOAD, note="skipped: the transform failed"))
            else:
                results.extend(bench_loads(layout, size, args.repeat, server))
        failed |= any(not r.ok and not r.note.startswith("skipped") for r in results)
        if args.profile and platform.ok:
            print("  profiling the platform transform ...", flush=True)
            notes.extend(profile_platform(layout, size))
        notes.extend(note for r in results if r.size == size for note in r.notes)

    lines, all_met = targets(results)
    harness.print_report(report(results, csv_bytes), notes, lines)
    if failed:
        return 1
    return 1 if args.strict and not all_met else 0


def worker(argv: list[str]) -> int:
    """Entry of the child processes: ``--worker duckdb SQL_FILE``, ``--worker polars JSON``
    or ``--worker copy JSON``."""
    kind, arg = argv
    workers = {"duckdb": worker_duckdb, "polars": worker_polars, "copy": worker_copy}
    return workers[kind](arg)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        raise SystemExit(worker(sys.argv[2:]))
    raise SystemExit(main(sys.argv[1:]))
