"""DuckDB set-up and the typed ``input`` relation over a partition's staged files.

DuckDB runs with a memory limit and a spill directory inside the partition's work
directory, against an on-disk database file there, so a partition larger than memory
spills instead of failing; nothing is fetched into Python beyond counts and samples.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from data_pipeline.errors import MissingColumnError, PartitionError
from data_pipeline.input_errors import StagedKeys, unreadable_input
from etl_core.contracts import Column, Contract, ParseOptions
from etl_core.work.cores import unit_threads

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
    "view_columns",
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
    """A DuckDB connection on a database file in ``work_dir``, bounded in memory, with
    ``threads`` threads (0: the unit's share of the cores, ``etl_core.work.cores``)."""
    import duckdb  # imported when used: the ingest path never needs it

    spill = work_dir / "spill"
    spill.mkdir(exist_ok=True)
    # threads set as the database opens: none started to be stopped again
    con = duckdb.connect(str(work_dir / "work.duckdb"), config={"threads": unit_threads(threads)})
    con.execute(f"SET memory_limit = {literal(memory_limit)}")
    con.execute(f"SET temp_directory = {literal(str(spill))}")
    con.execute("SET preserve_insertion_order = false")
    # Offsets in the data (a ``%z`` format) become UTC, whatever the host's zone.
    con.execute("SET TimeZone = 'UTC'")
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


def view_columns(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    """Column name → DuckDB type of a view of the current schema, as its ``CREATE VIEW``
    bound it: read from the catalog, so the view's sources are not bound again (a
    ``DESCRIBE`` of a view over a CSV sniffs the file once more, ~20 ms of CPU at 1M
    rows; issue 16)."""
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = "
        "current_database() AND schema_name = current_schema() AND table_name = ? "
        "ORDER BY column_index",
        [view],
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def create_input_view(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    dt: date,
    keys: StagedKeys,
    *,
    before_files: Callable[[], None] | None = None,
) -> bool:
    """Create the view ``input``: every staged file, cast to the contract's column types.

    ``keys`` maps each staged file to the store key it was copied from, so an error
    names the object in the store, never the scratch copy DuckDB read.

    CSV files are read the way file_processing validated them (the contract's
    ``[parse]`` dialect, null values and column formats), columns by name from
    each file's header (or the contract's order without one). Each file is checked
    first, so a file lacking a contract column is named; in JSON records an absent
    key is a null value, as the file lane reads it. Columns the contract does not
    declare are part of ``input``, as written, when its schema keeps them
    (``extra_columns = "keep"``) or is open (every column then, as written).

    When the files' columns are known from their headers alone (a headed CSV of a closed
    schema), ``before_files`` is called first, with ``input`` its typed columns and no
    rows, so that what it binds over ``input`` (the transform's view) does not make
    DuckDB sniff the files once more (~20 ms of CPU at 1M rows; issue 16); then the
    files' rows replace them, and the answer is True. Otherwise it is not called.

    Raises:
        MissingColumnError: a file lacks a column of the contract.
        InputFileError: a file cannot be read as its name and the contract say.
        PartitionError: a header names a column twice, or has another field count.
    """
    import duckdb  # imported when used: the ingest path never needs it

    by_format: dict[str, list[Path]] = {}
    for path in keys:
        by_format.setdefault(file_format(path), []).append(path)
    headed = list(by_format) == ["csv"] and _header_names_columns(contract)
    selects = []
    for fmt, group in sorted(by_format.items()):
        if fmt == "csv":
            reader, plain = _csv_reader(contract, dt, group, keys)
            headed = headed and plain
        else:
            if fmt != "json":
                for path in group:
                    _check_columns(con, contract, dt, path, fmt, keys)
            reader = reader_sql(group, fmt)
        if headed:  # every contract column is in the checked headers: no DESCRIBE needed
            selects.append(f"SELECT {', '.join(map(_typed, contract.columns))} FROM {reader}")
        else:
            selects.append(_input_select(con, contract, dt, reader, fmt, keys, tuple(group)))
    macro = f"CREATE MACRO partition_date() AS DATE {literal(dt.isoformat())}"
    first = before_files if headed else None
    if first is not None:
        empty = ", ".join(
            f"CAST(NULL AS {c.sql_type}) AS {quote(c.name)}" for c in contract.columns
        )
        con.execute(f"CREATE VIEW input AS SELECT {empty} LIMIT 0")
        con.execute(macro)
        try:
            first()
        except Exception:  # the files' own error first, as when they were described first
            _input_select(con, contract, dt, reader, "csv", keys, tuple(keys))
            raise
    try:
        replace = "OR REPLACE " if first is not None else ""
        con.execute(f"CREATE {replace}VIEW input AS " + " UNION ALL BY NAME ".join(selects))
    except duckdb.Error:
        if not headed:
            raise
        # Described after all: their error as the DESCRIBE says it (InputFileError), or
        # their columns as DuckDB names them (a contract column it names otherwise null).
        select = _input_select(con, contract, dt, reader, "csv", keys, tuple(keys))
        con.execute(f"CREATE OR REPLACE VIEW input AS {select}")
    if first is None:
        con.execute(macro)
    return first is not None


def _header_names_columns(contract: Contract) -> bool:
    """Whether the columns of ``input`` are exactly the contract's when every CSV header
    passed :func:`_check_header` (and its names are as DuckDB reads them: no two differ
    in case only, no white space but blanks around them, none a null value): a header
    is read and no column beyond the contract's is kept. Then the files need not be
    described (DuckDB sniffs a file to describe it, ~20 ms of CPU at 1M rows; issue 16)."""
    schema = contract.schema
    return contract.parse.header and not schema.open and schema.extra_columns != "keep"


def _input_select(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    dt: date,
    reader: str,
    fmt: str,
    keys: StagedKeys,
    group: tuple[Path, ...],
) -> str:
    """``SELECT`` of one format's files (``group``): declared columns typed (a JSON key no
    record has is null), then the extra columns the schema keeps.

    Raises:
        InputFileError: DuckDB cannot read them: the file it names, else every one.
        PartitionError: DuckDB ran out of memory reading them.
    """
    import duckdb  # imported when used: the ingest path never needs it

    try:
        found = relation_columns(con, f"SELECT * FROM {reader}")
    except duckdb.Error as exc:
        raise unreadable_input(contract, dt, keys, exc, fmt=fmt, paths=group) from exc
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


def _csv_reader(
    contract: Contract, dt: date, paths: Sequence[Path], keys: StagedKeys
) -> tuple[str, bool]:
    """``read_csv`` over ``paths`` in the contract's dialect, every column as text.

    Only the header and the row estimate are left to DuckDB's sniffer (the dialect is
    stated): the estimate is what makes it build its join hash tables on the small
    references, not on the partition. Returns the reader and whether the headers' names
    are the ones DuckDB reads (only blanks around them, none twice but for case, none a
    null value).
    """
    headers = [_check_header(contract, dt, path, keys) for path in paths]
    parse = contract.parse
    names = {name.strip() for header in headers for name in header}
    plain = all(n.strip(" ") == n.strip() for header in headers for n in header)
    plain = plain and len(names) == len({name.lower() for name in names})
    # DuckDB names a header cell that is a null value "column<n>", as it names an empty one
    renamed = {n.strip() for h in headers for n in h if {n, n.strip()} & set(parse.null_values)}
    plain = plain and not renamed & set(contract.column_names)
    escape = parse.escape if parse.escape is not None else parse.quote
    nulls = ", ".join(literal(value) for value in parse.null_values) or "''"
    files = "[" + ", ".join(literal(str(p)) for p in paths) + "]"
    given = ""
    if not parse.header:
        given = ", names = [" + ", ".join(literal(n) for n in contract.column_names) + "]"
    reader = (
        f"read_csv({files}, header = {str(parse.header).lower()}, all_varchar = true, "
        f"union_by_name = true, delim = {literal(parse.delimiter)}, "
        f"quote = {literal(parse.quote)}, escape = {literal(escape)}, nullstr = [{nulls}], "
        f"skip = 0, comment = '', strict_mode = true{given})"
    )
    return reader, plain


def _check_header(contract: Contract, dt: date, path: Path, keys: StagedKeys) -> list[str]:
    """The file's header names every contract column once (as file_processing reads it,
    names stripped); without a header, its first line has the contract's field count.
    The header's fields as read (none without a header)."""
    key = keys[path]
    try:
        first = _first_record(path, contract.parse)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError, zlib.error) as exc:
        raise unreadable_input(contract, dt, keys, exc, fmt="csv", paths=(path,)) from exc
    if not contract.parse.header:
        expected = len(contract.columns)
        if first and len(first) != expected:
            raise PartitionError(
                contract.dataset,
                dt,
                f"input file {key} has {len(first)} fields on its first line, but the "
                f"contract {contract.origin} (header = false) names {expected} columns",
                field="parse.header",
            )
        return []
    names = [name.strip() for name in first]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PartitionError(
            contract.dataset,
            dt,
            f"input file {key} names column {repeated[0]!r} more than once in its header",
            field=repeated[0],
        )
    _require_columns(contract, dt, key, names)
    return first


def _check_columns(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    dt: date,
    path: Path,
    fmt: str,
    keys: StagedKeys,
) -> None:
    import duckdb  # imported when used: the ingest path never needs it

    try:
        found = relation_columns(con, f"SELECT * FROM {reader_sql([path], fmt)}")
    except duckdb.Error as exc:
        raise unreadable_input(contract, dt, keys, exc, fmt=fmt, paths=(path,)) from exc
    _require_columns(contract, dt, keys[path], list(found))


def _require_columns(contract: Contract, dt: date, key: str, found: Sequence[str]) -> None:
    missing = [name for name in contract.column_names if name not in found]
    if missing:
        raise MissingColumnError(
            contract.dataset,
            dt,
            f"input file {key} lacks column(s) {', '.join(missing)} named by the contract "
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
