"""Dataset contracts as the data pipeline reads them (``<config dir>/datasets/*.toml``).

One TOML file per dataset, shared with the file_processing runtime (which reads the
landing, parsing and quality sections). This module reads the dataset name, the column
schema and the sections the pipeline owns: ``[transform]``, ``[enrich.<name>]``,
``[output]``, ``[load]`` and ``[freshness]``. Keys of other sections are ignored; an
unknown key inside one of these sections is refused. Every error names the file, the
line and the field (``datasets/pos.toml:14: enrich.stores.unmatched``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from data_pipeline.errors import ContractError
from etl_core.errors import FieldError
from etl_core.units import parse_byte_size, parse_duration

__all__ = [
    "COLUMN_TYPES",
    "Column",
    "DatasetContract",
    "Enrichment",
    "Freshness",
    "LoadSpec",
    "OutputSpec",
    "ParseOptions",
    "TransformSpec",
    "contract_path",
    "list_datasets",
    "load_contract",
]

# Contract column type → DuckDB type.
COLUMN_TYPES = {
    "string": "VARCHAR",
    "str": "VARCHAR",
    "text": "VARCHAR",
    "integer": "BIGINT",
    "int": "BIGINT",
    "float": "DOUBLE",
    "double": "DOUBLE",
    "number": "DOUBLE",
    "decimal": "DECIMAL(18,4)",  # file_processing's default precision and scale
    "boolean": "BOOLEAN",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "datetime": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
}
_DECIMAL = re.compile(r"decimal\(\s*(\d{1,2})\s*,\s*(\d{1,2})\s*\)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
UNMATCHED_POLICIES = ("keep", "drop", "fail")
COMPRESSIONS = ("zstd", "snappy", "gzip", "uncompressed")


@dataclass(frozen=True)
class Column:
    """One column of the input schema, with its DuckDB type.

    ``format`` is the strptime format of a ``date`` / ``timestamp`` column whose text
    is not ISO 8601, as file_processing reads it.
    """

    name: str
    type: str
    format: str | None = None


@dataclass(frozen=True)
class ParseOptions:
    """``[parse]``: how the validated CSV files are written, as file_processing reads them.

    Validated files are UTF-8 and carry no trailer record (file_processing removes
    both), so only the dialect matters here.
    """

    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    """``None``: the quote character doubled."""
    header: bool = True
    null_values: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class TransformSpec:
    """``[transform]``: SQL over the relation ``input``, de-duplication, partition column."""

    sql: str = "SELECT * FROM input"
    dedupe_on: tuple[str, ...] = ()
    partition_by: str = "dt"


@dataclass(frozen=True)
class Enrichment:
    """One ``[[enrich]]`` join: where the reference comes from, keys, columns, policy.

    Exactly one of ``dataset`` (another dataset's curated partition), ``file`` (a key
    in the object store, CSV or Parquet) or ``table`` (a reference table of the
    database) is set. ``on`` maps input key columns to reference key columns;
    ``columns`` maps the added output column names to reference column names.
    """

    name: str
    on: tuple[tuple[str, str], ...]
    columns: tuple[tuple[str, str], ...]
    unmatched: Literal["keep", "drop", "fail"] = "keep"
    dataset: str | None = None
    partition: Literal["same", "latest"] = "same"
    file: str | None = None
    table: str | None = None

    @property
    def source(self) -> str:
        """A human description of the reference source."""
        if self.dataset:
            return f"dataset {self.dataset} ({self.partition} partition)"
        if self.file:
            return f"file {self.file}"
        return f"table {self.table}"


@dataclass(frozen=True)
class OutputSpec:
    """``[output]``: Parquet layout of the curated partition."""

    row_group_size: int = 122_880
    compression: str = "zstd"
    max_file_size: int = 256 * 1024 * 1024


@dataclass(frozen=True)
class LoadSpec:
    """``[load]``: the curated table and which output column feeds each table column.

    An empty ``columns`` loads every output column the table has.
    """

    table: str
    columns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Freshness:
    """``[freshness]``: how old the newest partition may grow before a warning / alert."""

    warn_after: timedelta | None = None
    critical_after: timedelta | None = None


@dataclass(frozen=True)
class DatasetContract:
    """What the data pipeline needs to know about one dataset."""

    name: str
    path: Path
    columns: tuple[Column, ...]
    transform: TransformSpec = field(default_factory=TransformSpec)
    enrich: tuple[Enrichment, ...] = ()
    output: OutputSpec = field(default_factory=OutputSpec)
    load: LoadSpec | None = None
    freshness: Freshness = field(default_factory=Freshness)
    parse: ParseOptions = field(default_factory=ParseOptions)

    @property
    def column_names(self) -> tuple[str, ...]:
        """The contract's input column names, in order."""
        return tuple(column.name for column in self.columns)


def contract_path(config_dir: Path, dataset: str) -> Path:
    """Where the contract of ``dataset`` lives."""
    return Path(config_dir) / "datasets" / f"{dataset}.toml"


def list_datasets(config_dir: Path) -> list[str]:
    """The datasets that have a contract in ``config_dir``, sorted."""
    return sorted(path.stem for path in (Path(config_dir) / "datasets").glob("*.toml"))


def load_contract(config_dir: Path, dataset: str) -> DatasetContract:
    """Read and validate the contract of ``dataset``.

    Raises:
        ContractError: the file is missing, does not parse, or a field is invalid;
            every invalid field is listed with its file and line.
    """
    path = contract_path(config_dir, dataset)
    if not _NAME.fullmatch(dataset):
        raise ContractError(
            f"dataset name {dataset!r} is invalid",
            [FieldError("dataset", "expected letters, digits and underscores", "command line")],
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        known = ", ".join(list_datasets(config_dir)) or "none"
        raise ContractError(
            f"no contract for dataset {dataset!r} at {path} (contracts found: {known})",
            [FieldError("dataset", str(exc.strerror or exc), str(path))],
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContractError(
            f"contract {path} is not valid TOML", [FieldError("toml", str(exc), str(path))]
        ) from exc
    parser = _Parser(path, text)
    contract = parser.contract(data, dataset)
    if parser.errors:
        raise ContractError(f"contract {path} is invalid", parser.errors)
    assert contract is not None
    return contract


# --------------------------------------------------------------------------- parsing


class _Parser:
    """Builds a contract, collecting every field error instead of stopping at the first."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.errors: list[FieldError] = []

    def fail(self, dotted: str, message: str) -> None:
        self.errors.append(FieldError(dotted, message, self.where(dotted)))

    def where(self, dotted: str) -> str:
        line = _line_of(self.lines, dotted)
        return f"{self.path}:{line}" if line else str(self.path)

    def contract(self, data: dict[str, Any], dataset: str) -> DatasetContract | None:
        name = self.dataset_name(data, dataset)
        columns = self.columns(data.get("columns"))
        transform = self.transform(self.table(data, "transform"))
        enrich = self.enrichments(data.get("enrich", []))
        output = self.output(self.table(data, "output"))
        load = self.load(data["load"]) if "load" in data else None
        freshness = self.freshness(self.table(data, "freshness"))
        parse = self.parse(data.get("parse", {}))
        self.check_outputs(columns, enrich)
        if self.errors:
            return None
        return DatasetContract(
            name=name,
            path=self.path,
            columns=columns,
            transform=transform,
            enrich=enrich,
            output=output,
            load=load,
            freshness=freshness,
            parse=parse,
        )

    def parse(self, data: Any) -> ParseOptions:
        """``[parse]``; keys only file_processing reads (``encoding``) are accepted."""
        if not isinstance(data, dict):
            self.fail("parse", "expected a table [parse]")
            return ParseOptions()
        defaults = ParseOptions()
        delimiter = self.character(data, "delimiter", defaults.delimiter)
        quote = self.character(data, "quote", defaults.quote)
        escape = self.character(data, "escape", None)
        header = data.get("header", defaults.header)
        if not isinstance(header, bool):
            self.fail("parse.header", "expected true or false")
            header = defaults.header
        nulls = data.get("null_values", list(defaults.null_values))
        if not isinstance(nulls, list) or not all(isinstance(v, str) for v in nulls):
            self.fail("parse.null_values", "expected a list of strings")
            nulls = list(defaults.null_values)
        if quote == delimiter:
            self.fail("parse.quote", f"must differ from the delimiter {delimiter!r}")
        return ParseOptions(delimiter, quote, escape, header, tuple(nulls))

    def character(self, data: dict[str, Any], key: str, default: str | None) -> Any:
        value = data.get(key, default)
        if value is not None and (not isinstance(value, str) or len(value) != 1):
            self.fail(f"parse.{key}", f"expected one character, got {value!r}")
            return default
        return value

    def table(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, f"expected a table [{name}]")
            return {}
        return value

    def dataset_name(self, data: dict[str, Any], expected: str) -> str:
        value = data.get("dataset", expected)
        if isinstance(value, dict):
            value = value.get("name", expected)
        if value != expected:
            self.fail("dataset", f"is {value!r} but the file is named for {expected!r}")
        return expected

    def columns(self, value: Any) -> tuple[Column, ...]:
        if value is None:
            self.fail("columns", "missing: declare [[columns]] with name and type")
            return ()
        items: list[tuple[Any, Any, Any, str]] = []
        if isinstance(value, dict):
            for name, spec in value.items():
                table = spec if isinstance(spec, dict) else {"type": spec}
                items.append((name, _type_text(table), table.get("format"), f"columns.{name}"))
        elif isinstance(value, list):
            for index, spec in enumerate(value):
                spec = spec if isinstance(spec, dict) else {}
                dotted = f"columns[{index}]"
                items.append((spec.get("name"), _type_text(spec), spec.get("format"), dotted))
        else:
            self.fail("columns", "expected [[columns]] tables or a [columns] table")
        columns = []
        for name, kind, fmt, dotted in items:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                self.fail(f"{dotted}.name", f"expected a column name, got {name!r}")
                continue
            duckdb_type = self.column_type(kind, f"{dotted}.type")
            columns.append(Column(name, duckdb_type, self.column_format(fmt, duckdb_type, dotted)))
        if not columns and not self.errors:
            self.fail("columns", "declares no column")
        return tuple(columns)

    def column_format(self, fmt: Any, duckdb_type: str, dotted: str) -> str | None:
        if fmt is None:
            return None
        if duckdb_type not in {"DATE", "TIMESTAMP", "TIMESTAMPTZ"}:
            self.fail(f"{dotted}.format", "a format applies to date and timestamp columns only")
            return None
        if not isinstance(fmt, str) or "%" not in fmt:
            self.fail(
                f"{dotted}.format", f"expected a strptime format like '%d/%m/%Y', not {fmt!r}"
            )
            return None
        return fmt

    def column_type(self, kind: Any, dotted: str) -> str:
        text = str(kind).strip().lower() if kind is not None else ""
        if text in COLUMN_TYPES:
            return COLUMN_TYPES[text]
        if match := _DECIMAL.fullmatch(text):
            precision, scale = int(match[1]), int(match[2])
            if 1 <= precision <= 38 and scale <= precision:
                return f"DECIMAL({precision},{scale})"
            self.fail(
                dotted,
                f"decimal with precision {precision} and scale {scale}: needs "
                "1 <= precision <= 38 and scale <= precision (scale defaults to 4)",
            )
            return "VARCHAR"
        self.fail(dotted, f"unknown type {kind!r}; expected one of {', '.join(COLUMN_TYPES)}")
        return "VARCHAR"

    def transform(self, data: dict[str, Any]) -> TransformSpec:
        self.unknown_keys("transform", data, {"sql", "dedupe_on", "partition_by"})
        sql = data.get("sql", TransformSpec.sql)
        if not isinstance(sql, str) or not sql.strip():
            self.fail("transform.sql", "expected a SELECT statement over `input`")
            sql = TransformSpec.sql
        elif not re.match(r"\s*(WITH|SELECT|FROM)\b", sql, re.IGNORECASE):
            self.fail("transform.sql", "must be one SELECT (or WITH ... SELECT) over `input`")
        dedupe = self.names(data.get("dedupe_on", []), "transform.dedupe_on")
        partition_by = data.get("partition_by", "dt")
        if not isinstance(partition_by, str) or not _NAME.fullmatch(partition_by):
            self.fail("transform.partition_by", "expected a column name")
            partition_by = "dt"
        return TransformSpec(
            sql=sql.strip().rstrip(";"), dedupe_on=dedupe, partition_by=partition_by
        )

    def enrichments(self, value: Any) -> tuple[Enrichment, ...]:
        if isinstance(value, dict):  # [enrich.<name>] tables
            items = [
                (f"enrich.{name}", {"name": name, **data} if isinstance(data, dict) else data)
                for name, data in value.items()
            ]
        elif isinstance(value, list):  # [[enrich]] tables with a name key
            items = [(f"enrich[{index}]", data) for index, data in enumerate(value)]
        else:
            self.fail("enrich", "expected [enrich.<name>] tables")
            return ()
        joins = []
        names: set[str] = set()
        for dotted, data in items:
            if not isinstance(data, dict):
                self.fail(dotted, "expected a table")
                continue
            join = self.enrichment(data, dotted)
            if join is None:
                continue
            if join.name in names:
                self.fail(f"{dotted}.name", f"duplicate join name {join.name!r}")
            names.add(join.name)
            joins.append(join)
        return tuple(joins)

    def enrichment(self, data: dict[str, Any], dotted: str) -> Enrichment | None:
        known = {"name", "dataset", "partition", "file", "table", "on", "columns", "unmatched"}
        self.unknown_keys(dotted, data, known)
        name = data.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            self.fail(f"{dotted}.name", f"expected a join name, got {name!r}")
            return None
        sources = [key for key in ("dataset", "file", "table") if key in data]
        if len(sources) != 1:
            self.fail(dotted, "expected exactly one source: dataset, file or table")
            return None
        for key in sources:
            if not isinstance(data[key], str) or not data[key]:
                self.fail(f"{dotted}.{key}", "expected a non-empty string")
        file = data.get("file")
        if isinstance(file, str) and not file.endswith((".csv", ".parquet")):
            self.fail(f"{dotted}.file", "expected a .csv or .parquet key in the store")
        unmatched = data.get("unmatched", "keep")
        if unmatched not in UNMATCHED_POLICIES:
            self.fail(f"{dotted}.unmatched", f"expected one of {', '.join(UNMATCHED_POLICIES)}")
            unmatched = "keep"
        partition = data.get("partition", "same")
        if partition not in ("same", "latest"):
            self.fail(f"{dotted}.partition", "expected 'same' or 'latest'")
            partition = "same"
        on = self.mapping(data.get("on"), f"{dotted}.on")
        columns = self.mapping(data.get("columns"), f"{dotted}.columns")
        if not on:
            self.fail(f"{dotted}.on", "expected at least one key column")
        if not columns:
            self.fail(f"{dotted}.columns", "expected at least one column to add")
        return Enrichment(
            name=name,
            on=on,
            columns=columns,
            unmatched=unmatched,
            dataset=data.get("dataset"),
            partition=partition,
            file=file,
            table=data.get("table"),
        )

    def output(self, data: dict[str, Any]) -> OutputSpec:
        self.unknown_keys("output", data, {"row_group_size", "compression", "max_file_size"})
        rows = data.get("row_group_size", OutputSpec.row_group_size)
        if not isinstance(rows, int) or isinstance(rows, bool) or not 1000 <= rows <= 10_000_000:
            self.fail("output.row_group_size", "expected an integer from 1000 to 10000000")
            rows = OutputSpec.row_group_size
        compression = data.get("compression", "zstd")
        if compression not in COMPRESSIONS:
            self.fail("output.compression", f"expected one of {', '.join(COMPRESSIONS)}")
            compression = "zstd"
        size = OutputSpec.max_file_size
        if "max_file_size" in data:
            try:
                size = int(parse_byte_size(str(data["max_file_size"])))
            except ValueError as exc:
                self.fail("output.max_file_size", str(exc))
        return OutputSpec(row_group_size=rows, compression=compression, max_file_size=size)

    def load(self, data: Any) -> LoadSpec | None:
        if not isinstance(data, dict):
            self.fail("load", "expected a table [load]")
            return None
        self.unknown_keys("load", data, {"table", "columns"})
        table = data.get("table")
        if not isinstance(table, str) or not _NAME.fullmatch(table):
            self.fail("load.table", "expected a curated table name")
            return None
        columns = self.mapping(data.get("columns", []), "load.columns")
        return LoadSpec(table=table, columns=columns)

    def freshness(self, data: dict[str, Any]) -> Freshness:
        self.unknown_keys("freshness", data, {"warn_after", "critical_after"})
        values: dict[str, timedelta | None] = {}
        for key in ("warn_after", "critical_after"):
            raw = data.get(key)
            values[key] = None
            if raw is not None:
                try:
                    values[key] = parse_duration(str(raw))
                except ValueError as exc:
                    self.fail(f"freshness.{key}", str(exc))
        return Freshness(**values)

    def names(self, value: Any, dotted: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(
            isinstance(v, str) and _NAME.fullmatch(v) for v in value
        ):
            self.fail(dotted, "expected a list of column names")
            return ()
        return tuple(value)

    def mapping(self, value: Any, dotted: str) -> tuple[tuple[str, str], ...]:
        """``["a", "b"]`` (same name both sides) or ``{ new = "source" }``."""
        if isinstance(value, list):
            return tuple((name, name) for name in self.names(value, dotted))
        if isinstance(value, dict):
            pairs = tuple(value.items())
            if all(
                isinstance(v, str) and _NAME.fullmatch(v) and _NAME.fullmatch(k) for k, v in pairs
            ):
                return pairs
        self.fail(dotted, 'expected a list of column names or a table { name = "column" }')
        return ()

    def unknown_keys(self, dotted: str, data: Mapping[str, Any], known: set[str]) -> None:
        for key in sorted(set(data) - known):
            self.fail(f"{dotted}.{key}", f"unknown key; expected one of {', '.join(sorted(known))}")

    def check_outputs(self, columns: tuple[Column, ...], joins: tuple[Enrichment, ...]) -> None:
        added: dict[str, str] = {}
        for join in joins:
            for name, _ in join.columns:
                if name in added:
                    self.fail(
                        f"enrich.{join.name}.columns",
                        f"column {name!r} is already added by join {added[name]!r}",
                    )
                added[name] = join.name


def _type_text(spec: dict[str, Any]) -> Any:
    """A column's type text; ``string`` when absent, ``decimal(p,s)`` from precision/scale."""
    kind = spec.get("type", "string")
    if kind == "decimal" and ("precision" in spec or "scale" in spec):
        # file_processing's defaults: precision 18, scale 4
        return f"decimal({spec.get('precision', 18)},{spec.get('scale', 4)})"
    return kind


def _line_of(lines: list[str], dotted: str) -> int | None:
    """The 1-based line defining ``dotted`` (``enrich.stores.on``, ``columns[2].type``)."""
    parts = re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?", dotted)
    for cut in range(len(parts), 0, -1):
        start = _header_line(lines, parts[:cut])
        if start is None:
            continue
        if cut == len(parts):
            return start + 1
        key = parts[cut].split("[")[0]
        for number in range(start + 1, len(lines)):
            stripped = lines[number].strip()
            if stripped.startswith("["):
                break
            if re.match(rf"{key}\s*=", stripped):
                return number + 1
        return start + 1
    for number, line in enumerate(lines):
        if re.match(rf"\s*{re.escape(parts[0]) if parts else '$'}\s*=", line):
            return number + 1
    return None


def _header_line(lines: list[str], parts: list[str]) -> int | None:
    """The index of the ``[a.b]`` header, or of the n-th ``[[a]]`` for ``a[n]``."""
    *head, last = parts
    match = re.fullmatch(r"(\w+)\[(\d+)\]", last)
    name = ".".join([*head, match[1] if match else last])
    seen = -1
    for number, line in enumerate(lines):
        stripped = line.strip()
        if match and stripped.startswith(f"[[{name}]]"):
            seen += 1
            if seen == int(match[2]):
                return number
        elif not match and stripped.startswith(f"[{name}]"):
            return number
    return None
