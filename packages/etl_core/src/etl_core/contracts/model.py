"""The dataset contract: one typed model of every section the platform defines.

One TOML file per dataset (``<config dir>/datasets/*.toml``) says which landing
files belong to the dataset and how they are packed, encrypted and parsed, their
columns, the quality checks, the transform and enrichment joins, the curated
output, the database load and the freshness thresholds. Every lane reads the
same model; ``docs/contracts.md`` is the reference of the format.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, get_args

from etl_core.contracts.freshness import Freshness
from etl_core.contracts.patterns import DateFrom, FilePattern
from etl_core.errors import ConfigError
from etl_core.layout import LANDING, landing_prefix
from etl_core.secrets import Secret
from etl_core.units import ByteSize

__all__ = [
    "CHECK_KINDS",
    "COLUMNLESS_CHECK_KINDS",
    "COLUMN_TYPES",
    "Check",
    "Column",
    "ColumnMap",
    "Contract",
    "ContractError",
    "ContractSet",
    "Control",
    "Enrichment",
    "Freshness",
    "Load",
    "Output",
    "ParseOptions",
    "RejectLimit",
    "SchemaPolicy",
    "Transform",
]

COLUMN_TYPES = ("string", "int", "float", "decimal", "bool", "date", "timestamp")
"""The column types, the one vocabulary of every lane."""

CheckKind = Literal[
    "not_null", "unique", "range", "allowed", "regex", "row_count", "sql", "formula_injection"
]
CHECK_KINDS: tuple[str, ...] = get_args(CheckKind)
"""The check kinds a contract may name (``[[checks]] kind``): the registry every lane's
quality engine implements in full (``docs/extending.md``)."""
COLUMNLESS_CHECK_KINDS = frozenset({"row_count", "sql"})
"""The check kinds that take no ``column`` (every other kind needs one)."""
Severity = Literal["warn", "error"]

_DECIMAL_SUGAR = re.compile(r"\s*decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*", re.IGNORECASE)
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")


class ContractError(ConfigError):
    """One or more dataset contracts are invalid; ``errors`` names file, line and field of each."""


# --------------------------------------------------------------- value types


class ColumnMap(tuple[tuple[str, str], ...]):
    """Pairs ``(name, source column)``: ``["a", "b"]`` (same name both sides) or ``{ a = "x" }``."""

    __slots__ = ()

    @classmethod
    def from_config(cls, value: object) -> ColumnMap:
        """Read a list of column names or a table ``{ new = "source" }``.

        Raises:
            ValueError: anything else, or a name that is not non-empty text.
        """
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple) and all(_is_name(v) for v in value):
            return cls((v, v) for v in value)
        if isinstance(value, dict) and all(_is_name(k) and _is_name(v) for k, v in value.items()):
            return cls(value.items())
        raise ValueError('expected a list of column names or a table { name = "column" }')


def _is_name(value: object) -> bool:
    return isinstance(value, str) and value.strip() == value and bool(value)


@dataclass(frozen=True)
class RejectLimit:
    """How many rejected rows still let the rest of a file through.

    Exactly one of ``rows`` (an absolute count) and ``percent`` is set.
    """

    rows: int | None = None
    percent: float | None = None

    @classmethod
    def from_config(cls, value: object) -> RejectLimit:
        """From the contract value: ``10`` (rows) or ``"0.5%"`` (of the data rows).

        Raises:
            ValueError: anything else, or a negative count, or a percent above 100.
        """
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls(rows=value)
        if isinstance(value, str):
            percent = _PERCENT.fullmatch(value)
            if percent and float(percent.group(1)) <= 100:
                return cls(percent=float(percent.group(1)))
            if value.strip().isdigit():
                return cls(rows=int(value))
        raise ValueError(
            "expected a row count (0 or more, e.g. 10) or a percent of the data rows "
            f"as text (e.g. '0.5%'), got {value!r}"
        )

    def allows(self, rejected: int, total: int) -> bool:
        """Whether ``rejected`` bad rows out of ``total`` data rows are within the limit."""
        if self.rows is not None:
            return rejected <= self.rows
        return rejected * 100 <= (self.percent or 0.0) * total

    def __str__(self) -> str:
        return f"{self.rows} rows" if self.rows is not None else f"{self.percent:g}%"


# ------------------------------------------------------------ file sections


@dataclass(frozen=True)
class Column:
    """One column of the schema.

    Attributes:
        name: The column name (the CSV header, the JSON key).
        type: One of :data:`COLUMN_TYPES`; ``decimal(12,2)`` is read as a
            ``decimal`` with that precision and scale.
        required: Every row must have a value (an implicit ``not_null`` check, severity error).
        format: strptime format of ``date``/``timestamp`` text when it is not ISO 8601.
        precision: Total digits of a ``decimal``.
        scale: Digits after the point of a ``decimal``.
    """

    name: str
    type: str = "string"
    required: bool = False
    format: str | None = None
    precision: int = 18
    scale: int = 4

    def __post_init__(self) -> None:
        sugar = _DECIMAL_SUGAR.fullmatch(self.type)
        if sugar is None:
            object.__setattr__(self, "type", self.type.strip())
            return
        if (self.precision, self.scale) != (18, 4):
            raise ValueError(
                f"type {self.type!r} already gives precision and scale; "
                "write type = 'decimal' with precision and scale, or the short form alone"
            )
        object.__setattr__(self, "type", "decimal")
        object.__setattr__(self, "precision", int(sugar.group(1)))
        object.__setattr__(self, "scale", int(sugar.group(2)))

    @property
    def sql_type(self) -> str:
        """The SQL type of the column's values (DuckDB and PostgreSQL spelling)."""
        return {
            "string": "VARCHAR",
            "int": "BIGINT",
            "float": "DOUBLE",
            "decimal": f"DECIMAL({self.precision},{self.scale})",
            "bool": "BOOLEAN",
            "date": "DATE",
            "timestamp": "TIMESTAMP",
        }[self.type]


@dataclass(frozen=True)
class Check:
    """One quality check (``[[checks]]``); which fields apply depends on ``kind``.

    Attributes:
        kind: ``not_null``, ``unique``, ``range`` (``min``/``max``), ``allowed``
            (``values``), ``regex`` (``pattern``, matched on the whole value),
            ``row_count`` (``min``/``max`` rows), ``sql`` (``expression``, a boolean
            SQL expression over the row's columns; a row fails when it is false) or
            ``formula_injection`` (a text value starting with ``=``, ``+``, ``-``,
            ``@``, tab or CR that is not a plain number: a spreadsheet would run it).
        column: The column checked (not for ``row_count`` and ``sql``).
        severity: ``error`` fails the file (or rejects the row); ``warn`` is reported only.
        name: Name in reports; defaults to ``<kind>:<column>`` (or the kind).
    """

    kind: CheckKind
    column: str | None = None
    severity: Severity = "error"
    name: str | None = None
    min: Any = None
    max: Any = None
    values: list[Any] = field(default_factory=list)
    pattern: str | None = None
    expression: str | None = None

    @property
    def label(self) -> str:
        """The check's name in reports."""
        if self.name:
            return self.name
        return f"{self.kind}:{self.column}" if self.column else self.kind


@dataclass(frozen=True)
class ParseOptions:
    """How to read the text of a delivery (``[parse]``); validated files keep this dialect."""

    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    """``None``: the quote character doubled."""
    header: bool = True
    encoding: str = "utf-8"
    null_values: tuple[str, ...] = ("",)
    nul_bytes: Literal["refuse", "flag"] = "refuse"
    """A NUL character in a text value: ``refuse`` fails the row, ``flag`` reports it."""
    max_field_bytes: ByteSize | None = None
    """Longest field (UTF-8 bytes) for this dataset; the lane's setting when ``None``.
    The smaller of the two applies."""
    max_record_bytes: ByteSize | None = None
    """Longest record (UTF-8 bytes, line break excluded); as :attr:`max_field_bytes`."""


@dataclass(frozen=True)
class SchemaPolicy:
    """``[schema]``: how a file's columns may differ from ``[[columns]]``.

    Attributes:
        mode: ``declared`` checks the file against ``[[columns]]``; ``open`` checks
            well-formedness only (a unique, non-empty header, a constant field count,
            valid encoding) and records the columns it found, with inferred types,
            in the quality report.
        extra_columns: Columns the contract does not declare are refused (the file
            fails), kept (published with the file, read as text downstream) or
            dropped (left out of the published file); unset, see :meth:`extras`.
        missing_columns: A declared optional column a CSV or Parquet file lacks is
            refused, or published as an empty (null) column. A missing required
            column is always refused; in JSON records an absent key is a null value.
    """

    mode: Literal["declared", "open"] = "declared"
    extra_columns: Literal["refuse", "keep", "drop"] | None = None
    missing_columns: Literal["refuse", "null"] = "refuse"

    @property
    def open(self) -> bool:
        """Whether any well-formed file is accepted, whatever its columns."""
        return self.mode == "open"

    def extras(self, file_format: str) -> Literal["refuse", "keep", "drop"]:
        """The extra-column policy for a file of ``file_format`` (``csv``, ``json``...):
        as declared, else ``refuse`` for header formats and ``keep`` for JSON records
        (which commonly carry more keys than a contract names)."""
        if self.extra_columns is not None:
            return self.extra_columns
        return "keep" if file_format in ("json", "jsonl") else "refuse"


@dataclass(frozen=True)
class Control:
    """Control files that vouch for a delivery (``[control]``).

    Attributes:
        checksum: Require a sidecar ``<file>.sha256`` or ``<file>.md5`` and verify it.
        trailer_pattern: A regular expression the last line must match, with a
            named group ``rows`` holding the expected data row count; that line is
            not data.
    """

    checksum: Literal["sha256", "md5"] | None = None
    trailer_pattern: str | None = None

    @cached_property
    def trailer(self) -> re.Pattern[str] | None:
        """The compiled trailer pattern, when there is one."""
        return re.compile(self.trailer_pattern) if self.trailer_pattern else None


# ------------------------------------------------------- pipeline sections


@dataclass(frozen=True)
class Transform:
    """``[transform]``: SQL over the relation ``input``, de-duplication, partition column."""

    sql: str = "SELECT * FROM input"
    dedupe_on: tuple[str, ...] = ()
    partition_by: str = "dt"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sql", self.sql.strip().rstrip(";").strip())


@dataclass(frozen=True)
class Enrichment:
    """One ``[enrich.<name>]`` join: where the reference comes from, keys, columns, policy.

    Exactly one of ``dataset`` (another dataset's curated partition), ``file`` (a key
    in the object store, CSV or Parquet) or ``table`` (a reference table of the
    database) is set. ``on`` pairs input key columns with reference key columns;
    ``columns`` pairs the added output column names with reference column names.
    """

    name: str
    on: ColumnMap = ColumnMap()
    columns: ColumnMap = ColumnMap()
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
class Output:
    """``[output]``: Parquet layout of the curated partition."""

    row_group_size: int = 122_880
    compression: Literal["zstd", "snappy", "gzip", "uncompressed"] = "zstd"
    max_file_size: ByteSize = ByteSize("256MiB")


@dataclass(frozen=True)
class Load:
    """``[load]``: the curated table and which output column feeds each table column.

    An empty ``columns`` loads every output column the table has.
    """

    table: str
    columns: ColumnMap = ColumnMap()


# --------------------------------------------------------------- the contract


@dataclass(frozen=True)
class Contract:
    """A dataset contract as declared in its TOML file.

    Attributes:
        dataset: The dataset name (``validated/<dataset>/...``, curated tables, metrics).
        source: The landing prefix: files arrive as ``landing/<source>/<name>``.
        pattern: The file pattern, below ``landing/<source>/`` (see :class:`FilePattern`).
        date_from: Where the partition date comes from: the file ``name``, a folder of
            the ``path``, or the ``arrival`` time (last modified) in :attr:`zone_name`.
        timezone: The IANA time zone arrival times are dated in; unset, the
            ``[freshness]`` one (``UTC`` by default): one contract, one time zone.
        columns: The column schema, in the order of the file when it has no header.
        schema: How a file's columns may differ from :attr:`columns` (``[schema]``).
        format: ``csv``, ``jsonl``, ``json`` (one array of objects), ``parquet`` or
            ``auto`` (by content).
        packing: ``none``, ``zip``, ``gzip``, ``tar`` or ``auto`` (by magic bytes).
        encryption: ``none``, ``pgp`` or ``auto`` (by magic bytes).
        key: Secret reference to the OpenPGP secret key (``env:``/``file:``).
        passphrase: Secret reference to the key's passphrase, if it has one.
        signer: Secret reference to the vendor's public key.
        signers: Secret references to more vendor public keys (any of them may sign).
        signature: ``required`` (every message signed by a signer key),
            ``if_present`` (unsigned messages pass, a present signature must be good
            and from a signer key) or ``ignore``; unset: ``required`` when signer
            keys are given, else ``ignore`` (see :attr:`signature_policy`).
        max_rejected_fraction: Rows failing ``error`` checks that may be split off
            into ``<file>.rejected.csv`` while the rest passes: a row count or a percent.
        transform: The SQL that turns validated rows into the curated partition.
        enrich: The enrichment joins, in declaration order.
        output: The curated Parquet layout.
        load: The database table the curated partition is loaded into, if any.
        freshness: How old each zone may grow, when deliveries are due, the volume baseline.
        origin: The file the contract was loaded from.
    """

    dataset: str
    source: str
    pattern: str
    columns: tuple[Column, ...] = ()
    description: str = ""
    date_from: DateFrom = "name"
    timezone: str | None = None
    schema: SchemaPolicy = field(default_factory=SchemaPolicy)
    format: Literal["csv", "jsonl", "json", "parquet", "auto"] = "csv"
    packing: Literal["none", "zip", "gzip", "tar", "auto"] = "auto"
    encryption: Literal["none", "pgp", "auto"] = "none"
    key: Secret | None = None
    passphrase: Secret | None = None
    signer: Secret | None = None
    signers: tuple[Secret, ...] = ()
    signature: Literal["required", "if_present", "ignore"] | None = None
    parse: ParseOptions = field(default_factory=ParseOptions)
    checks: tuple[Check, ...] = ()
    max_rejected_fraction: RejectLimit = RejectLimit(rows=0)
    control: Control = field(default_factory=Control)
    transform: Transform = field(default_factory=Transform)
    enrich: tuple[Enrichment, ...] = ()
    output: Output = field(default_factory=Output)
    load: Load | None = None
    freshness: Freshness = field(default_factory=Freshness)
    origin: str = field(default="", init=False, compare=False)

    @cached_property
    def file_pattern(self) -> FilePattern:
        """The compiled :attr:`pattern`."""
        return FilePattern(self.pattern, self.date_from, self.zone_name)

    @property
    def zone_name(self) -> str:
        """The contract's time zone: :attr:`timezone`, else ``[freshness] timezone``."""
        return self.timezone or self.freshness.timezone

    @property
    def builds_curated(self) -> bool:
        """Whether the contract asks data_pipeline for curated partitions: it declares a
        ``[transform]`` other than the default copy, an ``[enrich.*]`` join, an ``[output]``
        other than the default (the curated Parquet's layout) or a ``[load]``.

        A contract with none of them is still copied to ``curated/`` by ``etl-data-pipeline
        run`` where that lane runs, but nothing in it says the lane does: a monitor expecting
        curated partitions of it would cry wolf in a deployment without data_pipeline.
        """
        return (
            self.transform != Transform()
            or bool(self.enrich)
            or self.output != Output()
            or self.load is not None
        )

    @property
    def signer_keys(self) -> tuple[Secret, ...]:
        """Every vendor public key whose signature is accepted (``signer`` then ``signers``)."""
        return (self.signer, *self.signers) if self.signer is not None else self.signers

    @property
    def signature_policy(self) -> Literal["required", "if_present", "ignore"]:
        """:attr:`signature`, or its default: ``required`` with signer keys, else ``ignore``."""
        if self.signature is not None:
            return self.signature
        return "required" if self.signer_keys else "ignore"

    @property
    def column_names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name``.

        Raises:
            KeyError: the schema has no such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def all_checks(self) -> list[Check]:
        """The declared checks plus an ``error`` ``not_null`` check per required column."""
        declared = {(c.kind, c.column) for c in self.checks}
        implicit = [
            Check(kind="not_null", column=c.name)
            for c in self.columns
            if c.required and ("not_null", c.name) not in declared
        ]
        return [*implicit, *self.checks]

    @cached_property
    def landing_root(self) -> str | None:
        """``landing/<source>/``, where this contract's deliveries arrive (``None`` for a
        source that names no valid prefix; the contract's validation says why)."""
        try:
            return landing_prefix(self.source)
        except ValueError:
            return None

    def relative_path(self, key: str) -> str | None:
        """``key`` below this contract's ``landing/<source>/``, or ``None`` outside it."""
        prefix = self.landing_root
        if prefix is None:
            return None
        stripped = key.lstrip("/")
        if not stripped.startswith(prefix) or len(stripped) == len(prefix):
            return None
        return stripped[len(prefix) :]

    def matches(self, key: str) -> bool:
        """Whether the landing ``key`` is a delivery of this contract (shape and date)."""
        path = self.relative_path(key)
        return path is not None and self.file_pattern.matches(path)

    def partition_date(self, key: str, arrived: dt.datetime | None = None) -> dt.date | None:
        """The partition date of the landing ``key``, ``None`` when it is not this
        contract's; ``arrived`` (the object's last-modified time) dates an
        ``arrival`` contract's deliveries.

        Raises:
            ValueError: an ``arrival`` contract's key without ``arrived``.
        """
        path = self.relative_path(key)
        return None if path is None else self.file_pattern.match(path, arrived)


@dataclass(frozen=True)
class ContractSet:
    """All contracts of a config directory, looked up by dataset or landing key."""

    contracts: tuple[Contract, ...] = ()

    def __iter__(self) -> Iterator[Contract]:
        return iter(self.contracts)

    def __len__(self) -> int:
        return len(self.contracts)

    @property
    def datasets(self) -> tuple[str, ...]:
        """The dataset names, in file order."""
        return tuple(contract.dataset for contract in self.contracts)

    def get(self, dataset: str) -> Contract:
        """The contract of ``dataset``.

        Raises:
            ContractError: no contract declares that dataset (the known ones are named).
        """
        for contract in self.contracts:
            if contract.dataset == dataset:
                return contract
        known = ", ".join(self.datasets) or "none"
        raise ContractError(f"no contract for dataset {dataset!r} (contracts: {known})")

    def find(self, key: str) -> Contract | None:
        """The contract whose source and pattern the landing ``key`` matches, if any
        (contracts never overlap, so at most one does)."""
        for contract in self.contracts:
            if contract.matches(key):
                return contract
        return None

    def match(
        self, key: str, arrived: dt.datetime | None = None
    ) -> tuple[Contract, dt.date] | None:
        """The contract and partition date for a landing key ``landing/<source>/<path>``.

        Args:
            key: The landing key.
            arrived: The object's last-modified time (timezone-aware): the partition
                date of contracts with ``date_from = "arrival"``.

        Returns:
            ``None`` for a key outside ``landing/`` or matching no contract.

        Raises:
            ValueError: ``key`` belongs to an ``arrival`` contract and ``arrived`` is missing.
        """
        contract = self.find(key)
        if contract is None:
            return None
        day = contract.partition_date(key, arrived)
        return None if day is None else (contract, day)

    def why_unmatched(self, key: str) -> str:
        """Why ``key`` matches no contract, in words an operator can act on."""
        zone, _, rest = key.lstrip("/").partition("/")
        if zone != LANDING or "/" not in rest or rest.endswith("/"):
            return f"{key} is not a landing key (landing/<source>/<file name>)"
        candidates = [(c, c.relative_path(key)) for c in self.contracts]
        under = [(c, path) for c, path in candidates if path is not None]
        for contract, path in under:
            problem = contract.file_pattern.date_problem(path)
            if problem:
                return (
                    f"{key} has the shape of dataset {contract.dataset!r} "
                    f"({contract.pattern!r}), but {problem}"
                )
        source = rest.rpartition("/")[0]
        if under:
            patterns = ", ".join(f"{c.source.strip('/')}: {c.pattern!r}" for c, _ in under)
            return f"{key}: no contract of source {source!r} has a pattern matching it ({patterns})"
        known = ", ".join(sorted({c.source.strip("/") for c in self.contracts})) or "none"
        return f"{key}: no dataset contract has the source {source!r} (sources: {known})"

    def sidecar_of(self, key: str) -> tuple[Contract, str] | None:
        """For a checksum sidecar key (``<data key>.sha256``), its contract and data key.

        Sidecars are control files, not deliveries: callers skip them when scanning
        and read them when verifying the data file they name.
        """
        for contract in self.contracts:
            algorithm = contract.control.checksum
            if algorithm and key.endswith(f".{algorithm}"):
                data_key = key[: -len(algorithm) - 1]
                if self.find(data_key) is contract:
                    return contract, data_key
        return None
