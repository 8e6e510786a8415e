"""What the types alone cannot say of a contract: names, vocabularies, references between fields.

These rules hold in every lane. Rules that need an engine (DuckDB parsing a
regular expression or a SQL expression) live in the lane that owns the engine
and are handed to the loader as :data:`ContractValidator` functions.
"""

from __future__ import annotations

import codecs
import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from etl_core.contracts.model import (
    COLUMN_TYPES,
    COLUMNLESS_CHECK_KINDS,
    Check,
    Column,
    Contract,
)
from etl_core.contracts.patterns import FilePattern, PatternError, time_zone
from etl_core.errors import FieldError

if TYPE_CHECKING:
    from etl_core.contracts.memo import PassMemo

__all__ = ["ContractValidator", "literal_problem", "validate_contract"]

ContractValidator = Callable[[Contract], Iterable[tuple[str, str]]]
"""A lane's extra rule: yields ``(field, message)`` for each problem it finds."""

DATASET_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}", re.ASCII)
_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*", re.ASCII)
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ORDERED_TYPES = frozenset({"int", "float", "decimal", "date", "timestamp", "string"})
_TYPE_ALIASES = {
    "str": "string",
    "text": "string",
    "varchar": "string",
    "integer": "int",
    "bigint": "int",
    "long": "int",
    "double": "float",
    "number": "float",
    "real": "float",
    "numeric": "decimal",
    "boolean": "bool",
    "datetime": "timestamp",
    "timestamptz": "timestamp",
}
_CHECK_PARAMETERS = {
    "range": {"min", "max"},
    "row_count": {"min", "max"},
    "allowed": {"values"},
    "regex": {"pattern"},
    "sql": {"expression"},
}


def validate_contract(
    contract: Contract,
    sources: Mapping[str, str],
    origin: str,
    validators: Iterable[ContractValidator] = (),
    memo: PassMemo | None = None,
) -> list[FieldError]:
    """Every problem of ``contract``, located with ``sources`` (field -> file:line); a
    validator ``memo`` remembers as passed on this very contract is not run again."""
    problems = _Rules(contract, origin).problems()
    if not problems:  # a lane's rules may rely on the platform's (known column types)
        for validator in validators:
            problems.extend(_run(validator, contract, memo))
    return [FieldError(name, message, _locate(name, sources, origin)) for name, message in problems]


def _run(
    validator: ContractValidator, contract: Contract, memo: PassMemo | None
) -> list[tuple[str, str]]:
    """The validator's problems; a pass is remembered (unless it read state beyond the
    contract and its code), a remembered pass skips it."""
    key = memo.key(validator, contract) if memo is not None else None
    if key is None or memo is None:
        return list(validator(contract))
    if memo.passed(key):
        return []
    from etl_core.contracts.memo import outside_reads

    with outside_reads() as outside:
        found = list(validator(contract))
    if not found and not outside:
        memo.remember(key)
    return found


def _locate(name: str, sources: Mapping[str, str], origin: str) -> str:
    """The source of ``name``, else of the item or section it belongs to, else the file."""
    item = name.rsplit(".", 1)[0] if "[" in name else name
    candidates = [name, f"{name}.kind", f"{item}.kind", f"{item}.name"]
    candidates += sorted(key for key in sources if key.startswith(name + "."))
    section = name.rsplit(".", 1)[0] if "." in name else ""
    if section:  # a default field judged against a sibling: the sibling's line
        candidates += sorted(key for key in sources if key.startswith(section + "."))
    for candidate in candidates:
        source = sources.get(candidate, "default")
        if source != "default":
            return source
    return origin


class _Rules:
    """The platform-wide rules, each adding ``(field, message)`` to :attr:`found`."""

    def __init__(self, contract: Contract, origin: str = "") -> None:
        self.contract = contract
        self.origin = origin
        self.found: list[tuple[str, str]] = []

    def problems(self) -> list[tuple[str, str]]:
        self._identity()
        self._security()
        self._parse()
        self._schema()
        self._columns()
        for index, check in enumerate(self.contract.checks):
            self._check(index, check)
        self._check_names()
        self._control()
        self._transform()
        self._enrich()
        self._output()
        self._load()
        self._freshness()
        return self.found

    def fail(self, name: str, message: str) -> None:
        self.found.append((name, message))

    # ---------------------------------------------------------------- files

    def _identity(self) -> None:
        contract = self.contract
        if not DATASET_NAME.fullmatch(contract.dataset):
            self.fail(
                "dataset",
                "expected a lower-case name of letters, digits and '_', starting with a letter, "
                "at most 63 characters (it names storage prefixes, tables and metric labels), "
                f"got {contract.dataset!r}",
            )
        source = contract.source.strip("/")
        if not _SOURCE.fullmatch(source) or ".." in source.split("/"):
            self.fail(
                "source",
                "expected the landing prefix under landing/, e.g. 'pos' or 'vendor/eu', "
                f"got {contract.source!r}",
            )
        if contract.timezone is not None:
            try:
                time_zone(contract.timezone)
            except PatternError as exc:
                self.fail("timezone", str(exc))
            zones = {contract.timezone, contract.freshness.timezone}
            if contract.freshness.timezone != "UTC" and len(zones) > 1:
                self.fail(
                    "timezone",
                    f"differs from freshness.timezone = {contract.freshness.timezone!r}: a "
                    "contract has one time zone; set it in [freshness] alone (arrival dates "
                    "use it too) or make both the same",
                )
        try:
            FilePattern(contract.pattern, contract.date_from)  # compiling is the validation
        except PatternError as exc:
            self.fail("pattern", f"{exc} (date_from = {contract.date_from!r})")

    def _security(self) -> None:
        if self.contract.encryption == "pgp" and self.contract.key is None:
            self.fail("key", "encryption = 'pgp' needs key = 'env:NAME' or 'file:/path'")
        signature = self.contract.signature
        if signature in ("required", "if_present") and not self.contract.signer_keys:
            self.fail(
                "signature",
                f"signature = {signature!r} needs the vendor's public key: "
                "signer = 'env:NAME' or signers = ['file:/a.asc', 'file:/b.asc']",
            )

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
        for name in ("max_field_bytes", "max_record_bytes"):
            if getattr(options, name) == 0:
                self.fail(f"parse.{name}", "expected a positive size such as '10MiB'")

    def _schema(self) -> None:
        contract, policy = self.contract, self.contract.schema
        if policy.open:
            if contract.columns:
                self.fail(
                    "columns[0]",
                    "schema.mode = 'open' accepts any well-formed file and declares no "
                    "[[columns]]; to accept columns beyond declared ones, keep mode = "
                    "'declared' and set schema.extra_columns = 'keep'",
                )
            for name, default in (("extra_columns", None), ("missing_columns", "refuse")):
                if getattr(policy, name) != default:
                    self.fail(f"schema.{name}", "does not apply with schema.mode = 'open'")
            for index, check in enumerate(contract.checks):
                if check.kind != "row_count":
                    self.fail(
                        f"checks[{index}].kind",
                        f"a {check.kind} check needs declared columns; with schema.mode = "
                        "'open' only row_count checks apply",
                    )
        if contract.format in ("csv", "auto") and not contract.parse.header:
            loose = [
                name
                for name, defaults in (
                    ("mode", ("declared",)),
                    ("extra_columns", (None, "refuse")),
                    ("missing_columns", ("refuse",)),
                )
                if getattr(policy, name) not in defaults
            ]
            for name in loose:
                self.fail(
                    f"schema.{name}",
                    "columns are told apart by their header: this policy needs parse.header = true",
                )

    def _columns(self) -> None:
        if not self.contract.columns and not self.contract.schema.open:
            self.fail(
                "columns",
                "declare at least one column ([[columns]] with name and type), "
                "or set schema.mode = 'open'",
            )
        seen: set[str] = set()
        for index, column in enumerate(self.contract.columns):
            where = f"columns[{index}]"
            if not _is_column_name(column.name):
                self.fail(
                    f"{where}.name",
                    "a column name cannot be empty, start or end with spaces, "
                    f"or hold control characters, got {column.name!r}",
                )
            if column.name in seen:
                self.fail(f"{where}.name", f"column {column.name!r} is declared twice")
            seen.add(column.name)
            self._column_type(where, column)

    def _column_type(self, where: str, column: Column) -> None:
        if column.type not in COLUMN_TYPES:
            self.fail(f"{where}.type", _type_message(column.type))
            return
        if column.format is not None:
            if column.type not in ("date", "timestamp"):
                self.fail(f"{where}.format", "a format applies to date and timestamp columns only")
            elif "%" not in column.format:
                self.fail(
                    f"{where}.format",
                    f"expected a strptime format like '%d/%m/%Y', got {column.format!r}",
                )
        if column.type == "decimal" and not (0 <= column.scale <= column.precision <= 38):
            self.fail(
                f"{where}.scale",
                "a decimal needs 1 <= precision <= 38 and 0 <= scale <= precision "
                f"(got precision {column.precision}, scale {column.scale}; "
                "precision defaults to 18 and scale to 4)",
            )

    # --------------------------------------------------------------- checks

    def _check(self, index: int, check: Check) -> None:
        where = f"checks[{index}]"
        needs_column = check.kind not in COLUMNLESS_CHECK_KINDS
        if needs_column and check.column is None:
            self.fail(f"{where}.column", f"a {check.kind} check needs column = '<name>'")
        if not needs_column and check.column is not None:
            self.fail(f"{where}.column", f"a {check.kind} check takes no column")
        column = None
        if check.column is not None:
            try:
                column = self.contract.column(check.column)
            except KeyError:
                known = ", ".join(self.contract.column_names)
                self.fail(
                    f"{where}.column", f"no column {check.column!r} in the schema; known: {known}"
                )
        self._unused_parameters(where, check)
        if check.kind in ("range", "row_count"):
            self._bounds(where, check, column)
        elif check.kind == "allowed":
            self._allowed(where, check, column)
        elif check.kind == "regex" and not check.pattern:
            self.fail(f"{where}.pattern", "a regex check needs pattern = '<regular expression>'")
        elif check.kind == "sql" and not (check.expression or "").strip():
            self.fail(f"{where}.expression", "a sql check needs expression = '<boolean SQL>'")
        elif check.kind == "formula_injection" and column is not None and column.type != "string":
            self.fail(
                f"{where}.column",
                f"a formula_injection check applies to string columns; {column.name!r} is "
                f"{column.type} (its values are numbers or dates, never formulas)",
            )

    def _unused_parameters(self, where: str, check: Check) -> None:
        used = _CHECK_PARAMETERS.get(check.kind, set())
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

    # ------------------------------------------------------------- pipeline

    def _transform(self) -> None:
        spec = self.contract.transform
        if not spec.sql:
            self.fail("transform.sql", "expected a SELECT statement over `input`")
        for name in spec.dedupe_on:
            if not _is_column_name(name):
                self.fail("transform.dedupe_on", f"expected column names, got {name!r}")
        if not _is_column_name(spec.partition_by):
            self.fail(
                "transform.partition_by", f"expected a column name, got {spec.partition_by!r}"
            )

    def _enrich(self) -> None:
        added: dict[str, str] = {}
        names: set[str] = set()
        for index, join in enumerate(self.contract.enrich):
            where = f"enrich.{join.name}" if _is_column_name(join.name) else f"enrich[{index}]"
            if join.name in names:
                self.fail(f"{where}.name", f"two joins are called {join.name!r}")
            names.add(join.name)
            sources = [key for key in ("dataset", "file", "table") if getattr(join, key)]
            if len(sources) != 1:
                self.fail(where, "expected exactly one source: dataset, file or table")
            if join.file and not join.file.endswith((".csv", ".parquet")):
                self.fail(f"{where}.file", "expected a .csv or .parquet key in the store")
            if join.dataset and not DATASET_NAME.fullmatch(join.dataset):
                self.fail(f"{where}.dataset", f"expected a dataset name, got {join.dataset!r}")
            if not join.on:
                self.fail(f"{where}.on", "expected at least one key column")
            if not join.columns:
                self.fail(f"{where}.columns", "expected at least one column to add")
            for name, _ in join.columns:
                if name in added:
                    self.fail(
                        f"{where}.columns",
                        f"column {name!r} is already added by join {added[name]!r}",
                    )
                added[name] = join.name

    def _output(self) -> None:
        rows = self.contract.output.row_group_size
        if not 1000 <= rows <= 10_000_000:
            self.fail(
                "output.row_group_size", f"expected an integer from 1000 to 10000000, got {rows}"
            )
        if self.contract.output.max_file_size < 1024 * 1024:
            self.fail("output.max_file_size", "expected at least 1MiB")

    def _load(self) -> None:
        load = self.contract.load
        if load is not None and not _TABLE.fullmatch(load.table):
            self.fail(
                "load.table",
                f"expected a table name (letters, digits and '_'), got {load.table!r}",
            )

    def _freshness(self) -> None:
        folder = Path(self.origin).parent if self.origin else None
        for name, message in self.contract.freshness.problems(folder):
            self.fail(f"freshness.{name}", message)


def _is_column_name(name: str) -> bool:
    return bool(name) and name.strip() == name and not _CONTROL.search(name)


def _type_message(kind: str) -> str:
    expected = ", ".join(repr(name) for name in COLUMN_TYPES)
    wanted = kind.strip().lower()
    close = _TYPE_ALIASES.get(wanted) or next(
        iter(difflib.get_close_matches(wanted, COLUMN_TYPES, n=1, cutoff=0.6)), None
    )
    hint = f"; did you mean {close!r}?" if close else ""
    if wanted == "timestamptz":
        hint += " (offsets in the text are converted to UTC)"
    return f"expected one of {expected} (or 'decimal(p,s)'), got {kind!r}{hint}"


def literal_problem(column: Column, value: object, *, ordered: bool = True) -> str | None:
    """Why ``value`` (from TOML) cannot be compared with ``column``'s values, or ``None``."""
    kind = column.type
    if kind not in COLUMN_TYPES:
        return None  # the column's own error says it
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
