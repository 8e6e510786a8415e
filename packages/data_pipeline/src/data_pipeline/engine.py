"""DuckDB set-up and the typed ``input`` relation over a partition's staged files.

DuckDB runs with a memory limit and a spill directory inside the partition's work
directory, against an on-disk database file there, so a partition larger than memory
spills instead of failing; nothing is fetched into Python beyond counts and samples.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from data_pipeline.errors import MissingColumnError, PartitionError
from etl_core.contracts import Column, Contract, ParseOptions
from etl_core.errors import first_line

if TYPE_CHECKING:
    import duckdb

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
    import duckdb  # imported when used: the ingest path never needs it

    spill = work_dir / "spill"
    spill.mkdir(exist_ok=True)
    con = duckdb.connect(str(work_dir / "work.duckdb"))
    con.execute(f"SET memory_limit = {literal(memory_limit)}")
    con.execute(f"SET temp_directory = {literal(str(spill))}")
    con.execute("SET preserve_insertion_order = false")
    # Offsets in the data (a ``%z`` format) become UTC, whatever the host's zone.
    con.execute("SET TimeZone = 'UTC'")
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


def reader_sql(paths: Sequence[Path], fmt: str) -> str:
    """A DuckDB table function reading ``paths`` untyped, columns by name: Parquet, JSON
    (one array of objects or JSON lines, told apart by content; every record sampled, so
    a key or a type first seen late is not missed), or comma-separated text with a header
    (reference files, whose dialect no contract states)."""
    files = "[" + ", ".join(literal(str(p)) for p in paths) + "]"
    if fmt == "parquet":
        return f"read_parquet({files}, union_by_name = true)"
    if fmt == "json":
        return f"read_json({files}, format = 'auto', union_by_name = true, sample_size = -1)"
    return (
        f"read_csv({files}, header = true, all_varchar = true, union_by_name = true, delim = ',')"
    )


def relation_columns(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, str]:
    """Column name → DuckDB type of a query or relation, without running it."""
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {sql}").fetchall()}


def create_input_view(
    con: duckdb.DuckDBPyConnection, contract: Contract, dt: date, paths: Sequence[Path]
) -> None:
    """Create the view ``input``: every staged file, cast to the contract's column types.

    CSV files are read the way file_processing validated them (the contract's
    ``[parse]`` dialect, null values and column formats), columns by name from
    each file's header (or the contract's order without one). Each file is checked
    first, so a file lacking a contract column is named; in JSON records an absent
    key is a null value, as the file lane reads it. Columns the contract does not
    declare are part of ``input``, as written, when its schema keeps them
    (``extra_columns = "keep"``) or is open (every column then, as written).

    Raises:
        MissingColumnError: a file lacks a column of the contract.
        PartitionError: a file cannot be read.
    """
    by_format: dict[str, list[Path]] = {}
    for path in paths:
        by_format.setdefault(file_format(path), []).append(path)
    selects = []
    for fmt, group in sorted(by_format.items()):
        if fmt == "csv":
            reader = _csv_reader(contract, dt, group)
        else:
            if fmt != "json":
                for path in group:
                    _check_columns(con, contract, dt, path, fmt)
            reader = reader_sql(group, fmt)
        selects.append(_input_select(con, contract, dt, reader, fmt))
    con.execute("CREATE VIEW input AS " + " UNION ALL BY NAME ".join(selects))
    con.execute(f"CREATE MACRO partition_date() AS DATE {literal(dt.isoformat())}")


def _input_select(
    con: duckdb.DuckDBPyConnection, contract: Contract, dt: date, reader: str, fmt: str
) -> str:
    """``SELECT`` of one format's files: declared columns typed (a JSON key no record has
    is null), then the extra columns the schema keeps."""
    import duckdb  # imported when used: the ingest path never needs it

    try:
        found = relation_columns(con, f"SELECT * FROM {reader}")
    except duckdb.Error as exc:
        raise PartitionError(
            contract.dataset, dt, f"input files cannot be read as {fmt}: {first_line(exc)}"
        ) from exc
    declared = set(contract.column_names)
    items = [
        _typed(column)
        if column.name in found
        else f"CAST(NULL AS {column.sql_type}) AS {quote(column.name)}"
        for column in contract.columns
    ]
    if contract.schema.open or contract.schema.extra_columns == "keep":
        items += [quote(name) for name in found if name not in declared]
    return f"SELECT {', '.join(items)} FROM {reader}"


def _typed(column: Column) -> str:
    value = quote(column.name)
    if column.format is not None:
        value = f"strptime(CAST({value} AS VARCHAR), {literal(column.format)})"
    return f"CAST({value} AS {column.sql_type}) AS {quote(column.name)}"


def _first_record(path: Path, parse: ParseOptions) -> list[str]:
    """The fields of the first record of a CSV file (``.gz`` too; none for an empty file)."""
    escape = parse.escape if parse.escape not in (None, parse.quote) else None
    opened = gzip.open if path.suffix.lower() == ".gz" else open
    with opened(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(
            handle, delimiter=parse.delimiter, quotechar=parse.quote, escapechar=escape
        )
        return next(reader, [])


def _csv_reader(contract: Contract, dt: date, paths: Sequence[Path]) -> str:
    """``read_csv`` over ``paths`` in the contract's dialect, every column as text.

    Only the header and the row estimate are left to DuckDB's sniffer (the dialect is
    stated): the estimate is what makes it build its join hash tables on the small
    references, not on the partition.
    """
    for path in paths:
        _check_header(contract, dt, path)
    parse = contract.parse
    escape = parse.escape if parse.escape is not None else parse.quote
    nulls = ", ".join(literal(value) for value in parse.null_values) or "''"
    files = "[" + ", ".join(literal(str(p)) for p in paths) + "]"
    names = ""
    if not parse.header:
        names = ", names = [" + ", ".join(literal(n) for n in contract.column_names) + "]"
    return (
        f"read_csv({files}, header = {str(parse.header).lower()}, all_varchar = true, "
        f"union_by_name = true, delim = {literal(parse.delimiter)}, "
        f"quote = {literal(parse.quote)}, escape = {literal(escape)}, nullstr = [{nulls}], "
        f"skip = 0, comment = '', strict_mode = true{names})"
    )


def _check_header(contract: Contract, dt: date, path: Path) -> None:
    """The file's header names every contract column once (as file_processing reads it,
    names stripped); without a header, its first line has the contract's field count."""
    try:
        first = _first_record(path, contract.parse)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
        raise PartitionError(
            contract.dataset, dt, f"input file {path.name} cannot be read as CSV: {exc}"
        ) from exc
    if not contract.parse.header:
        expected = len(contract.columns)
        if first and len(first) != expected:
            raise PartitionError(
                contract.dataset,
                dt,
                f"input file {path.name} has {len(first)} fields on its first line, but the "
                f"contract {contract.origin} (header = false) names {expected} columns",
                field="parse.header",
            )
        return
    names = [name.strip() for name in first]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PartitionError(
            contract.dataset,
            dt,
            f"input file {path.name} names column {repeated[0]!r} more than once in its header",
            field=repeated[0],
        )
    _require_columns(contract, dt, path, names)


def _check_columns(
    con: duckdb.DuckDBPyConnection, contract: Contract, dt: date, path: Path, fmt: str
) -> None:
    import duckdb  # imported when used: the ingest path never needs it

    try:
        found = relation_columns(con, f"SELECT * FROM {reader_sql([path], fmt)}")
    except duckdb.Error as exc:
        raise PartitionError(
            contract.dataset, dt, f"input file {path.name} cannot be read as {fmt}: {exc}"
        ) from exc
    _require_columns(contract, dt, path, list(found))


def _require_columns(contract: Contract, dt: date, path: Path, found: Sequence[str]) -> None:
    missing = [name for name in contract.column_names if name not in found]
    if missing:
        raise MissingColumnError(
            contract.dataset,
            dt,
            f"input file {path.name} lacks column(s) {', '.join(missing)} named by the contract "
            f"{contract.origin} (file has: {', '.join(found) or 'no columns'})",
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
