"""Dataset contracts: one TOML file per dataset under ``<config dir>/datasets/``.

A contract says which landing files belong to a dataset (``source`` prefix and
file-name ``pattern`` with the partition date), how they are packed, encrypted
and parsed, their column schema, the quality checks with their severities, how
many bad rows may be split off, and which control files (checksum sidecar,
trailer record) vouch for them. Sections that belong to later stages
(``transform``, ``enrich``, ``output``, ``freshness``, ``load``) are kept as raw
tables for the lanes that read them; any other unknown key is a typo and refused.

Contracts are loaded with :func:`etl_core.config.load_settings`, so an invalid
one is refused naming its file, line and field, and :func:`load_contracts`
reports every bad file of the directory at once.
"""

from __future__ import annotations

import codecs
import datetime as dt
import logging
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from etl_core.config import load_settings_with_sources
from etl_core.errors import ConfigError, FieldError
from etl_core.secrets import Secret
from file_processing.patterns import FilePattern, PatternError

__all__ = [
    "Check",
    "Column",
    "ColumnType",
    "Contract",
    "ContractError",
    "ContractSet",
    "Control",
    "ParseOptions",
    "RejectLimit",
    "load_contract",
    "load_contracts",
]

logger = logging.getLogger(__name__)

ColumnType = Literal["string", "int", "float", "decimal", "bool", "date", "timestamp"]
CheckKind = Literal["not_null", "unique", "range", "allowed", "regex", "row_count", "sql"]
Severity = Literal["warn", "error"]

DATASETS_DIR = "datasets"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*", re.ASCII)
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*", re.ASCII)
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")
_TOML_ERROR_LINE = re.compile(r"at line (\d+)")
_ORDERED_TYPES = frozenset({"int", "float", "decimal", "date", "timestamp", "string"})


class ContractError(ConfigError):
    """One or more dataset contracts are invalid; ``errors`` names file, line and field of each."""


@dataclass(frozen=True)
class Column:
    """One column of the schema.

    Attributes:
        name: The column name (the CSV header, the JSON key).
        type: ``string``, ``int``, ``float``, ``decimal``, ``bool``, ``date`` or ``timestamp``.
        required: Every row must have a value (an implicit ``not_null`` check, severity error).
        format: strptime format of ``date``/``timestamp`` text when it is not ISO 8601.
        precision: Total digits of a ``decimal``.
        scale: Digits after the point of a ``decimal``.
    """

    name: str
    type: ColumnType = "string"
    required: bool = False
    format: str | None = None
    precision: int = 18
    scale: int = 4


@dataclass(frozen=True)
class Check:
    """One quality check (``[[checks]]``); which fields apply depends on ``kind``.

    Attributes:
        kind: ``not_null``, ``unique``, ``range`` (``min``/``max``), ``allowed``
            (``values``), ``regex`` (``pattern``, matched on the whole value),
            ``row_count`` (``min``/``max`` rows) or ``sql`` (``expression``, a boolean
            SQL expression over the row's columns; a row fails when it is false).
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
    """How to read the text of a delivery (``[parse]``)."""

    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    header: bool = True
    encoding: str = "utf-8"
    null_values: list[str] = field(default_factory=lambda: [""])


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


@dataclass(frozen=True)
class RejectLimit:
    """How many rejected rows still let the rest of a file through.

    Exactly one of ``rows`` (an absolute count) and ``percent`` is set.
    """

    rows: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, value: object) -> RejectLimit:
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


@dataclass(frozen=True)
class Contract:
    """A dataset contract as declared in its TOML file.

    Attributes:
        dataset: The dataset name (``validated/<dataset>/...``).
        source: The landing prefix: files arrive as ``landing/<source>/<name>``.
        pattern: The file-name pattern with the partition date (see :mod:`.patterns`).
        columns: The column schema, in the order of the file when it has no header.
        format: ``csv``, ``jsonl``, ``parquet`` or ``auto`` (by content).
        packing: ``none``, ``zip``, ``gzip``, ``tar`` or ``auto`` (by magic bytes).
        encryption: ``none``, ``pgp`` or ``auto`` (by magic bytes).
        key: Secret reference to the OpenPGP secret key (``env:``/``file:``).
        passphrase: Secret reference to the key's passphrase, if it has one.
        signer: Secret reference to the vendor's public key; when set, a valid
            signature from it is required.
        max_rejected_fraction: Rows failing ``error`` checks that may be split off
            into ``<file>.rejected.csv`` while the rest passes: a row count or a percent.
        origin: The file the contract was loaded from.
    """

    dataset: str
    source: str
    pattern: str
    columns: list[Column]
    description: str = ""
    format: Literal["csv", "jsonl", "parquet", "auto"] = "csv"
    packing: Literal["none", "zip", "gzip", "tar", "auto"] = "auto"
    encryption: Literal["none", "pgp", "auto"] = "none"
    key: Secret | None = None
    passphrase: Secret | None = None
    signer: Secret | None = None
    parse: ParseOptions = field(default_factory=ParseOptions)
    checks: list[Check] = field(default_factory=list)
    max_rejected_fraction: Any = 0
    control: Control = field(default_factory=Control)
    # Sections of later stages, kept as written (a table or an array of tables) for their lanes.
    transform: Any = None
    enrich: Any = None
    output: Any = None
    freshness: Any = None
    load: Any = None
    origin: str = field(default="", init=False, compare=False)

    @cached_property
    def file_pattern(self) -> FilePattern:
        """The compiled :attr:`pattern`."""
        return FilePattern(self.pattern)

    @cached_property
    def reject_limit(self) -> RejectLimit:
        """The parsed :attr:`max_rejected_fraction`."""
        return RejectLimit.parse(self.max_rejected_fraction)

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

    def match_name(self, name: str) -> dt.date | None:
        """The partition date when the file name ``name`` matches :attr:`pattern`."""
        return self.file_pattern.match(name)


@dataclass(frozen=True)
class ContractSet:
    """All contracts of a config directory, matched against landing keys."""

    contracts: tuple[Contract, ...] = ()

    def __iter__(self) -> Iterator[Contract]:
        return iter(self.contracts)

    def __len__(self) -> int:
        return len(self.contracts)

    def get(self, dataset: str) -> Contract:
        """The contract of ``dataset``.

        Raises:
            KeyError: no contract declares that dataset.
        """
        for contract in self.contracts:
            if contract.dataset == dataset:
                return contract
        raise KeyError(dataset)

    def match(self, key: str) -> tuple[Contract, dt.date] | None:
        """The contract and partition date for a landing key ``landing/<source>/<name>``.

        Returns ``None`` for a key outside ``landing/`` or matching no contract
        (contracts never overlap, so at most one matches).
        """
        split = _split_landing_key(key)
        if split is None:
            return None
        source, name = split
        for contract in self.contracts:
            if contract.source.strip("/") == source:
                day = contract.match_name(name)
                if day is not None:
                    return contract, day
        return None

    def sidecar_of(self, key: str) -> tuple[Contract, str] | None:
        """For a checksum sidecar key (``<data key>.sha256``), its contract and data key.

        Sidecars are control files, not deliveries: callers skip them when scanning
        and read them when verifying the data file they name.
        """
        for contract in self.contracts:
            algorithm = contract.control.checksum
            if algorithm and key.endswith(f".{algorithm}"):
                data_key = key[: -len(algorithm) - 1]
                matched = self.match(data_key)
                if matched is not None and matched[0] is contract:
                    return contract, data_key
        return None


# ----------------------------------------------------------------- loading


def load_contracts(
    config_dir: str | Path, *, environ: Mapping[str, str] | None = None
) -> ContractSet:
    """Load and validate every ``<config_dir>/datasets/*.toml``.

    Args:
        config_dir: The configuration directory (``ETL_CONFIG_DIR``).
        environ: Where ``env:`` secret references resolve; the process
            environment (at use time) when ``None``. No contract field is ever
            read from the environment.

    Returns:
        The contracts, sorted by file name.

    Raises:
        ContractError: listing every invalid field of every bad file, duplicate
            dataset names and overlapping source/pattern pairs, all at once.
    """
    directory = Path(config_dir) / DATASETS_DIR
    if not directory.is_dir():
        raise ContractError(f"no dataset contracts: {directory} is not a directory")
    contracts: list[Contract] = []
    errors: list[FieldError] = []
    files = sorted(directory.glob("*.toml"))
    for path in files:
        try:
            contracts.append(load_contract(path, environ=environ))
        except ContractError as exc:
            errors.extend(exc.errors)
    errors.extend(_clashes(contracts))
    if errors:
        bad = len({e.source.split(":", 1)[0] for e in errors})
        raise ContractError(
            f"invalid dataset contracts in {directory}: {len(errors)} error"
            f"{'s' if len(errors) > 1 else ''} in {bad} file{'s' if bad > 1 else ''}",
            errors,
        )
    if not files:
        logger.warning(
            "no dataset contracts in %s: every landing file will be unmatched", directory
        )
    return ContractSet(tuple(contracts))


def load_contract(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Contract:
    """Load and validate one contract file.

    Raises:
        ContractError: the file cannot be read or parsed, or a field is invalid;
            each error names the file, line and field.
    """
    path = Path(path)
    try:
        contract, sources = load_settings_with_sources(
            Contract, toml_path=path, env=environ, env_prefix=None
        )
    except ConfigError as exc:
        raise ContractError(f"invalid dataset contract {path}", _located(exc, path)) from None
    errors = _Validator(contract, sources, path).errors()
    if errors:
        raise ContractError(f"invalid dataset contract {path}", errors)
    object.__setattr__(contract, "origin", str(path))
    return contract


def _located(exc: ConfigError, path: Path) -> list[FieldError]:
    """The errors of a failed load, a parse error turned into one with its line."""
    if exc.errors:
        return list(exc.errors)
    cause = exc.__cause__
    message = str(exc)
    if isinstance(cause, tomllib.TOMLDecodeError):
        line = _TOML_ERROR_LINE.search(str(cause))
        source = f"{path}:{line.group(1)}" if line else str(path)
        return [FieldError("(syntax)", f"not valid TOML: {cause}", source)]
    return [FieldError("(file)", message, str(path))]


def _split_landing_key(key: str) -> tuple[str, str] | None:
    zone, _, rest = key.lstrip("/").partition("/")
    source, _, name = rest.rpartition("/")
    if zone != "landing" or not source or not name:
        return None
    return source, name


def _clashes(contracts: Sequence[Contract]) -> list[FieldError]:
    """Duplicate dataset names and overlapping source + pattern pairs between files."""
    errors: list[FieldError] = []
    for index, first in enumerate(contracts):
        for second in contracts[index + 1 :]:
            if first.dataset == second.dataset:
                errors.append(
                    FieldError(
                        "dataset",
                        f"dataset {second.dataset!r} is already declared by {first.origin}",
                        second.origin,
                    )
                )
            same_source = first.source.strip("/") == second.source.strip("/")
            if same_source and first.file_pattern.overlaps(second.file_pattern):
                errors.append(
                    FieldError(
                        "pattern",
                        f"source {second.source!r} pattern {second.pattern!r} overlaps "
                        f"{first.pattern!r} of {first.origin}: a file name could match both",
                        second.origin,
                    )
                )
    return errors


class _Validator:
    """Checks what the types alone cannot: names, patterns, references between fields."""

    def __init__(self, contract: Contract, sources: Mapping[str, str], path: Path) -> None:
        self.contract = contract
        self.sources = sources
        self.path = path
        self.found: list[FieldError] = []

    def errors(self) -> list[FieldError]:
        self._identity()
        self._security()
        self._parse()
        self._columns()
        for index, check in enumerate(self.contract.checks):
            self._check(index, check)
        self._check_names()
        self._control()
        return self.found

    def fail(self, name: str, message: str) -> None:
        item = name.rsplit(".", 1)[0] if "[" in name else name
        candidates = (name, f"{name}.kind", f"{item}.kind", f"{item}.name")
        located = [
            self.sources[c] for c in candidates if self.sources.get(c, "default") != "default"
        ]
        self.found.append(FieldError(name, message, located[0] if located else str(self.path)))

    def _identity(self) -> None:
        contract = self.contract
        if not _NAME.fullmatch(contract.dataset):
            self.fail(
                "dataset",
                "expected a lower-case name of letters, digits, '_', '.' or '-' "
                f"(it names storage prefixes), got {contract.dataset!r}",
            )
        source = contract.source.strip("/")
        if not _SOURCE.fullmatch(source) or ".." in source.split("/"):
            self.fail(
                "source",
                "expected the landing prefix under landing/, e.g. 'pos' or 'vendor/eu', "
                f"got {contract.source!r}",
            )
        try:
            contract.file_pattern  # noqa: B018 - compiling is the validation
        except PatternError as exc:
            self.fail("pattern", str(exc))
        try:
            contract.reject_limit  # noqa: B018
        except ValueError as exc:
            self.fail("max_rejected_fraction", str(exc))

    def _security(self) -> None:
        if self.contract.encryption == "pgp" and self.contract.key is None:
            self.fail("key", "encryption = 'pgp' needs key = 'env:NAME' or 'file:/path'")

    def _parse(self) -> None:
        options = self.contract.parse
        for name in ("delimiter", "quote"):
            value = getattr(options, name)
            if len(value) != 1 or value in "\r\n":
                self.fail(f"parse.{name}", f"expected one character, got {value!r}")
        if options.escape is not None and len(options.escape) != 1:
            self.fail("parse.escape", f"expected one character, got {options.escape!r}")
        if options.delimiter == options.quote:
            self.fail("parse.quote", "the quote character must differ from the delimiter")
        try:
            codecs.lookup(options.encoding)
        except LookupError:
            self.fail("parse.encoding", f"unknown text encoding {options.encoding!r}")

    def _columns(self) -> None:
        if not self.contract.columns:
            self.fail("columns", "declare at least one column ([[columns]] with name and type)")
        seen: set[str] = set()
        for index, column in enumerate(self.contract.columns):
            where = f"columns[{index}]"
            if not column.name.strip():
                self.fail(f"{where}.name", "a column name cannot be empty")
            if column.name in seen:
                self.fail(f"{where}.name", f"column {column.name!r} is declared twice")
            seen.add(column.name)
            if column.format is not None and column.type not in ("date", "timestamp"):
                self.fail(f"{where}.format", "a format applies to date and timestamp columns only")
            if column.type == "decimal" and not 0 <= column.scale <= column.precision <= 38:
                self.fail(
                    f"{where}.scale",
                    "a decimal needs 1 <= precision <= 38 and 0 <= scale <= precision",
                )

    def _check(self, index: int, check: Check) -> None:
        where = f"checks[{index}]"
        needs_column = check.kind not in ("row_count", "sql")
        if needs_column and check.column is None:
            self.fail(f"{where}.column", f"a {check.kind} check needs column = '<name>'")
        if not needs_column and check.column is not None:
            self.fail(f"{where}.column", f"a {check.kind} check takes no column")
        column = None
        if check.column is not None:
            try:
                column = self.contract.column(check.column)
            except KeyError:
                known = ", ".join(c.name for c in self.contract.columns)
                self.fail(
                    f"{where}.column", f"no column {check.column!r} in the schema; known: {known}"
                )
        self._unused_parameters(where, check)
        if check.kind in ("range", "row_count"):
            self._bounds(where, check, column)
        elif check.kind == "allowed":
            self._allowed(where, check, column)
        elif check.kind == "regex":
            self._regex(where, check)
        elif check.kind == "sql":
            self._sql(where, check)

    def _unused_parameters(self, where: str, check: Check) -> None:
        used = {
            "range": {"min", "max"},
            "row_count": {"min", "max"},
            "allowed": {"values"},
            "regex": {"pattern"},
            "sql": {"expression"},
        }.get(check.kind, set())
        defaults = Check(kind=check.kind)
        for name in ("min", "max", "values", "pattern", "expression"):
            if name not in used and getattr(check, name) != getattr(defaults, name):
                self.fail(f"{where}.{name}", f"{name} does not apply to a {check.kind} check")

    def _bounds(self, where: str, check: Check, column: Column | None) -> None:
        if check.min is None and check.max is None:
            self.fail(where, f"a {check.kind} check needs min, max or both")
            return
        for name in ("min", "max"):
            value = getattr(check, name)
            if value is None:
                continue
            if check.kind == "row_count":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    self.fail(f"{where}.{name}", f"expected a row count (0 or more), got {value!r}")
            elif column is not None:
                problem = literal_problem(column, value)
                if problem:
                    self.fail(f"{where}.{name}", problem)

    def _allowed(self, where: str, check: Check, column: Column | None) -> None:
        if not check.values:
            self.fail(f"{where}.values", "an allowed check needs values = [...]")
            return
        if column is None:
            return
        for position, value in enumerate(check.values):
            problem = literal_problem(column, value, ordered=False)
            if problem:
                self.fail(f"{where}.values", f"item {position}: {problem}")

    def _regex(self, where: str, check: Check) -> None:
        if not check.pattern:
            self.fail(f"{where}.pattern", "a regex check needs pattern = '<regular expression>'")
            return
        problem = _engine_problem(
            "SELECT regexp_full_match('', $1)", [check.pattern], "regular expression (RE2)"
        )
        if problem:
            self.fail(f"{where}.pattern", problem)

    def _sql(self, where: str, check: Check) -> None:
        if not check.expression or not check.expression.strip():
            self.fail(f"{where}.expression", "a sql check needs expression = '<boolean SQL>'")
            return
        from file_processing.checks import predicate_problem  # imports duckdb

        problem = predicate_problem(check.expression, self.contract.columns)
        if problem:
            self.fail(f"{where}.expression", problem)

    def _check_names(self) -> None:
        seen: set[str] = set()
        for index, check in enumerate(self.contract.checks):
            if check.label in seen:
                self.fail(
                    f"checks[{index}].name",
                    f"two checks are called {check.label!r}; give one a distinct name = '...'",
                )
            seen.add(check.label)

    def _control(self) -> None:
        text = self.contract.control.trailer_pattern
        if text is None:
            return
        try:
            compiled = re.compile(text)
        except re.error as exc:
            self.fail("control.trailer_pattern", f"not a valid regular expression: {exc}")
            return
        if "rows" not in compiled.groupindex:
            self.fail(
                "control.trailer_pattern",
                "the trailer pattern needs a named group (?P<rows>\\d+) holding the row count",
            )


def literal_problem(column: Column, value: object, *, ordered: bool = True) -> str | None:
    """Why ``value`` (from TOML) cannot be compared with ``column``'s values, or ``None``."""
    kind = column.type
    if ordered and kind not in _ORDERED_TYPES:
        return f"a {kind} column has no order; use an allowed check"
    expected = {
        "int": "an integer",
        "float": "a number",
        "decimal": "a number",
        "date": "a date (2024-01-31)",
        "timestamp": "a timestamp (2024-01-31T08:00:00)",
        "string": "text",
        "bool": "true or false",
    }[kind]
    if _literal_fits(kind, value):
        return None
    return f"expected {expected} for the {kind} column {column.name!r}, got {value!r}"


def _literal_fits(kind: str, value: object) -> bool:
    if isinstance(value, bool):
        return kind == "bool"
    if kind == "int":
        return isinstance(value, int)
    if kind in ("float", "decimal"):
        if isinstance(value, int | float):
            return True
        if isinstance(value, str):
            try:
                Decimal(value)
            except InvalidOperation:
                return False
            return True
        return False
    if kind == "date":
        return _is_date(value)
    if kind == "timestamp":
        return _is_timestamp(value)
    return isinstance(value, str)


def _is_date(value: object) -> bool:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return True
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


def _is_timestamp(value: object) -> bool:
    if isinstance(value, dt.datetime | dt.date):
        return True
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


def _engine_problem(sql: str, parameters: list[object], what: str) -> str | None:
    """Run a tiny statement in DuckDB to see whether it accepts ``parameters``."""
    import duckdb  # only when a contract has regex checks

    with duckdb.connect() as connection:
        try:
            connection.execute(sql, parameters).fetchall()
        except duckdb.Error as exc:
            return f"not a valid {what}: {_first_line(str(exc))}"
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
