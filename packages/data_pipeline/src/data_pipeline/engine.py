"""DuckDB set-up and the typed ``input`` relation over a partition's staged files.

DuckDB runs with a memory limit and a spill directory inside the partition's work
directory, against an on-disk database file there, so a partition larger than memory
spills instead of failing; nothing is fetched into Python beyond counts and samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb

from data_pipeline.contracts import DatasetContract
from data_pipeline.errors import MissingColumnError, PartitionError

__all__ = [
    "connect_engine",
    "create_input_view",
    "literal",
    "quote",
    "reader_sql",
    "relation_columns",
    "type_family",
]

_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".gz": "csv",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
    ".parquet": "parquet",
}


def quote(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def connect_engine(work_dir: Path, *, memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on a database file in ``work_dir``, bounded in memory."""
    spill = work_dir / "spill"
    spill.mkdir(exist_ok=True)
    con = duckdb.connect(str(work_dir / "work.duckdb"))
    con.execute(f"SET memory_limit = {literal(memory_limit)}")
    con.execute(f"SET temp_directory = {literal(str(spill))}")
    con.execute("SET preserve_insertion_order = false")
    if threads > 0:
        con.execute(f"SET threads = {int(threads)}")
    return con


def file_format(path: Path) -> str:
    """``csv``, ``json`` or ``parquet`` from the file name (``.csv.gz`` is CSV)."""
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in _FORMATS and suffix != ".gz":
            return _FORMATS[suffix]
    return "csv"


def reader_sql(paths: Sequence[Path], fmt: str, *, delimiter: str = ",") -> str:
    """A DuckDB table function reading ``paths`` untyped (CSV as text), columns by name."""
    files = "[" + ", ".join(literal(str(p)) for p in paths) + "]"
    if fmt == "parquet":
        return f"read_parquet({files}, union_by_name = true)"
    if fmt == "json":
        return f"read_json({files}, format = 'newline_delimited', union_by_name = true)"
    return (
        f"read_csv({files}, header = true, all_varchar = true, union_by_name = true, "
        f"delim = {literal(delimiter)})"
    )


def relation_columns(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, str]:
    """Column name → DuckDB type of a query or relation, without running it."""
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {sql}").fetchall()}


def create_input_view(
    con: duckdb.DuckDBPyConnection, contract: DatasetContract, dt: date, paths: Sequence[Path]
) -> None:
    """Create the view ``input``: every staged file, cast to the contract's column types.

    Each file is checked first, so a file lacking a contract column is named.

    Raises:
        MissingColumnError: a file lacks a column of the contract.
        PartitionError: a file cannot be read.
    """
    by_format: dict[str, list[Path]] = {}
    for path in paths:
        fmt = file_format(path)
        by_format.setdefault(fmt, []).append(path)
        _check_columns(con, contract, dt, path, fmt)
    selects = []
    for fmt, group in sorted(by_format.items()):
        casts = ", ".join(
            f"CAST({quote(c.name)} AS {c.type}) AS {quote(c.name)}" for c in contract.columns
        )
        selects.append(
            f"SELECT {casts} FROM {reader_sql(group, fmt, delimiter=contract.csv_delimiter)}"
        )
    con.execute("CREATE VIEW input AS " + " UNION ALL ".join(selects))
    con.execute(f"CREATE MACRO partition_date() AS DATE {literal(dt.isoformat())}")


def _check_columns(
    con: duckdb.DuckDBPyConnection, contract: DatasetContract, dt: date, path: Path, fmt: str
) -> None:
    try:
        found = relation_columns(
            con, f"SELECT * FROM {reader_sql([path], fmt, delimiter=contract.csv_delimiter)}"
        )
    except duckdb.Error as exc:
        raise PartitionError(
            contract.name, dt, f"input file {path.name} cannot be read as {fmt}: {exc}"
        ) from exc
    missing = [name for name in contract.column_names if name not in found]
    if missing:
        raise MissingColumnError(
            contract.name,
            dt,
            f"input file {path.name} lacks column(s) {', '.join(missing)} named by the contract "
            f"{contract.path.name} (file has: {', '.join(found) or 'no columns'})",
            field=missing[0],
        )


def type_family(duckdb_type: str) -> str:
    """The comparable family of a DuckDB type: ``text``, ``number``, ``date``, ``timestamp``..."""
    base = duckdb_type.upper().split("(")[0].strip()
    if base in {"VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR", "UUID"}:
        return "text"
    if base in {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "UHUGEINT", "DECIMAL", "DOUBLE", "FLOAT", "REAL",
    }:  # fmt: skip
        return "number"
    if base.startswith("TIMESTAMP"):
        return "timestamp"
    return base.lower()
