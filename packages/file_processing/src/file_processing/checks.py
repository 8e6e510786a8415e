"""Quality checks as SQL: each row-level check becomes a condition true on a failing row.

The engine reads every column as text (so failing rows are reported and split
off exactly as written) and derives a typed value per column; checks run on the
typed values, the type check itself compares the two. Everything here renders
SQL text for DuckDB; identifiers and literals are always quoted, and a
contract's custom SQL predicate is validated (one boolean expression over the
row, no file access) before it is ever run.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from etl_core.contracts import COLUMNLESS_CHECK_KINDS, Check, Column, Contract
from etl_core.contracts.memo import remembered
from etl_core.errors import UnknownKindError

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "FILE_CHECKS",
    "NUL_RULE",
    "ROW_CHECKS",
    "CheckSql",
    "Rule",
    "expression_problems",
    "ident",
    "key_hash",
    "predicate_problem",
    "raw_name",
    "row_rules",
    "sql_literal",
    "typed_expr",
    "unique_table",
]

_INTEGER_TEXT = r"\s*[+-]?[0-9]+\s*"
_DECIMAL_TEXT = r"\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*"
_NUMBER_TEXT = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
# OWASP CSV injection: a cell starting with one of these is run by spreadsheets as a formula.
_FORMULA_START = r"^[=+\-@\t\r]"
NUL_RULE = "nul_bytes"
"""The name (and kind) of the rule that screens text values for NUL characters."""


@dataclass(frozen=True)
class Rule:
    """A row-level check rendered as SQL.

    Attributes:
        name: The check's name in reports.
        kind: The check kind, or ``type`` for a column's type check.
        severity: ``error`` rejects the row; ``warn`` only reports it.
        column: The column checked, when there is one.
        fails: SQL condition over the typed relation, true when the row fails
            (never NULL).
    """

    name: str
    kind: str
    severity: Literal["warn", "error"]
    column: str | None
    fails: str


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_text(value: str) -> str:
    """``value`` as a quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def raw_name(index: int) -> str:
    """The relation's name for the text of the ``index``-th column as written."""
    return f"__raw_{index}"


def unique_table(index: int) -> str:
    """The temporary table holding the duplicated values of the ``index``-th check."""
    return f"__dup_{index}"


KEY_HASH_MODULUS: int | None = None
"""Test seam: key hashes reduced modulo this (a tiny hash forces collisions); ``None``
in production, where :func:`key_hash` is DuckDB's 64-bit ``hash``."""


def key_hash(value: str) -> str:
    """SQL hashing the value ``value`` for the unique check's first, hash-only count."""
    if KEY_HASH_MODULUS is None:
        return f"hash({value})"
    return f"(hash({value}) % {int(KEY_HASH_MODULUS)})"


def typed_expr(column: Column, raw: str) -> str:
    """SQL for the typed value of ``raw`` (a text column): NULL when it does not parse."""
    if column.type == "string":
        return raw
    if column.type == "int":
        return _int_expr(raw)
    if column.type == "bool":
        return _bool_expr(raw)
    if column.format is not None:
        parsed = f"try_strptime({raw}, {sql_text(column.format)})"
        return f"CAST({parsed} AS DATE)" if column.type == "date" else parsed
    return f"TRY_CAST({raw} AS {column.sql_type})"


def _int_expr(raw: str) -> str:
    """An integer: text of ``_INTEGER_TEXT`` that fits a BIGINT (TRY_CAST alone would round
    '1.5' and accept '1e3').

    Text that is the number's own rendering is one already, so the regular expression
    (the dearest part, per row) runs only on the rest ('+5', ' 5', '05' and bad values).
    """
    value = f"TRY_CAST({raw} AS BIGINT)"
    return (
        f"CASE WHEN CAST({value} AS VARCHAR) = {raw} THEN {value} "
        f"WHEN regexp_full_match({raw}, {sql_text(_INTEGER_TEXT)}) THEN {value} END"
    )


def _bool_expr(raw: str) -> str:
    """A boolean: TRY_CAST's value, found by comparison for the usual spellings (a third
    of the cast's cost per row); any other text is cast."""
    return (
        f"CASE {raw} WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE "
        f"ELSE TRY_CAST({raw} AS BOOLEAN) END"
    )


def sql_literal(column: Column, value: object) -> str:
    """A contract value (min, max, allowed) as a SQL literal of the column's type."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    text = value.isoformat() if isinstance(value, dt.date | dt.time) else str(value)
    return f"CAST({sql_text(text)} AS {column.sql_type})"


def row_rules(contract: Contract) -> list[Rule]:
    """Every row-level rule of ``contract``: type checks, the NUL screen, then its checks.

    A number column has two type rules: ``type:<column>`` (the text is not a
    number) and ``number_range:<column>`` (a number its type cannot hold).
    ``unique`` rules refer to :func:`unique_table` tables the engine fills
    first; ``row_count`` is a file-level check and has no rule.
    """
    positions = {column.name: index for index, column in enumerate(contract.columns)}
    rules: list[Rule] = []
    for index, column in enumerate(contract.columns):
        rules += _type_rules(column, raw_name(index))
    nul = _nul_rule(contract)
    if nul is not None:
        rules.append(nul)
    for index, check in enumerate(contract.all_checks()):
        fails = _fails(contract, check, positions, index)
        if fails is not None:
            rules.append(Rule(check.label, check.kind, check.severity, check.column, fails))
    return rules


def _type_rules(column: Column, raw: str) -> list[Rule]:
    """A non-string column's type rule; a number column also gets its range rule."""
    if column.type == "string":
        return []
    unparsed = f"({raw} IS NOT NULL AND {ident(column.name)} IS NULL)"
    number = {"int": _INTEGER_TEXT, "decimal": _DECIMAL_TEXT}.get(column.type)
    if number is None:
        return [Rule(f"type:{column.name}", "type", "error", column.name, unparsed)]
    numeric = f"coalesce(regexp_full_match({raw}, {sql_text(number)}), FALSE)"
    # CASE, not AND: the engine then runs the regular expression on unparsed values only.
    return [
        Rule(
            f"type:{column.name}",
            "type",
            "error",
            column.name,
            f"(CASE WHEN {unparsed} THEN NOT {numeric} ELSE FALSE END)",
        ),
        Rule(
            f"number_range:{column.name}",
            "number_range",
            "error",
            column.name,
            f"(CASE WHEN {unparsed} THEN {numeric} ELSE FALSE END)",
        ),
    ]


def _nul_rule(contract: Contract) -> Rule | None:
    """NUL characters in text values: an ``error`` under ``nul_bytes = "refuse"``, else ``warn``."""
    texts = [raw_name(i) for i, c in enumerate(contract.columns) if c.type == "string"]
    if not texts:
        return None
    fails = " OR ".join(f"coalesce(contains({raw}, chr(0)), FALSE)" for raw in texts)
    severity: Literal["warn", "error"] = "error" if contract.parse.nul_bytes == "refuse" else "warn"
    return Rule(NUL_RULE, NUL_RULE, severity, None, f"({fails})")


@dataclass(frozen=True)
class CheckSql:
    """What a row-level check kind renders its failing-row condition from.

    Attributes:
        check: The check, as the contract declares it.
        column: Its column (``None`` for a kind without one, such as ``sql``).
        value: The column's typed value as a quoted identifier (``None`` without a column).
        raw: The column's text as read, a quoted identifier (``None`` without a column).
        index: The check's position in :meth:`Contract.all_checks` (names its
            :func:`unique_table`).
    """

    check: Check
    column: Column | None
    value: str | None
    raw: str | None
    index: int


RowCheck = Callable[[CheckSql], str]
"""A row-level check kind: the SQL condition, true (never NULL) on a failing row."""


def _sql(c: CheckSql) -> str:
    return f"(({c.check.expression}) IS NOT DISTINCT FROM FALSE)"


def _not_null(c: CheckSql) -> str:
    return f"({c.raw} IS NULL)"


def _unique(c: CheckSql) -> str:
    return f"({c.value} IN (SELECT v FROM {unique_table(c.index)}))"


def _range(c: CheckSql) -> str:
    assert c.column is not None  # the contract loader guarantees it
    bounds = []
    if c.check.min is not None:
        bounds.append(f"{c.value} < {sql_literal(c.column, c.check.min)}")
    if c.check.max is not None:
        bounds.append(f"{c.value} > {sql_literal(c.column, c.check.max)}")
    return f"coalesce({' OR '.join(bounds)}, FALSE)"


def _allowed(c: CheckSql) -> str:
    assert c.column is not None  # the contract loader guarantees it
    values = ", ".join(sql_literal(c.column, v) for v in c.check.values)
    return f"coalesce({c.value} NOT IN ({values}), FALSE)"


def _regex(c: CheckSql) -> str:
    assert c.check.pattern is not None  # the contract loader guarantees it
    return f"coalesce(NOT regexp_full_match({c.raw}, {sql_text(c.check.pattern)}), FALSE)"


def _formula_injection(c: CheckSql) -> str:
    return (
        f"coalesce(regexp_matches({c.raw}, {sql_text(_FORMULA_START)}) "
        f"AND NOT regexp_full_match({c.raw}, {sql_text(_NUMBER_TEXT)}), FALSE)"
    )


ROW_CHECKS: dict[str, RowCheck] = {
    "not_null": _not_null,
    "unique": _unique,
    "range": _range,
    "allowed": _allowed,
    "regex": _regex,
    "sql": _sql,
    "formula_injection": _formula_injection,
}
"""The row-level check kinds and their SQL; a new kind of ``etl_core``'s ``CHECK_KINDS``
is one function here (docs/extending.md)."""

FILE_CHECKS = frozenset({"row_count"})
"""The file-level check kinds: judged on the whole file by the quality engine, no row rule."""


def _fails(contract: Contract, check: Check, positions: dict[str, int], index: int) -> str | None:
    if check.kind in FILE_CHECKS:
        return None
    render = ROW_CHECKS.get(check.kind)
    if render is None:
        declared = next((i for i, c in enumerate(contract.checks) if c is check), index)
        raise UnknownKindError(
            f"checks[{declared}].kind",
            check.kind,
            sorted({*ROW_CHECKS, *FILE_CHECKS}),
            where=f"dataset {contract.dataset!r}",
        )
    if check.kind in COLUMNLESS_CHECK_KINDS:
        return render(CheckSql(check, None, None, None, index))
    assert check.column is not None  # the contract loader guarantees it
    column = contract.column(check.column)
    raw = raw_name(positions[column.name])
    return render(CheckSql(check, column, ident(column.name), raw, index))


def unique_index(contract: Contract) -> list[tuple[int, Check]]:
    """The ``unique`` checks of :meth:`Contract.all_checks` with their positions."""
    return [(i, c) for i, c in enumerate(contract.all_checks()) if c.kind == "unique"]


@remembered("duckdb")
def expression_problems(contract: Contract) -> Iterator[tuple[str, str]]:
    """The contract's regular expressions and SQL checks DuckDB would refuse.

    A contract validator (:data:`etl_core.contracts.ContractValidator`): the
    loader runs it at start-up, so a bad check is refused before any file is read.
    """
    for index, check in enumerate(contract.checks):
        if check.kind == "regex" and check.pattern:
            problem = _regex_problem(check.pattern)
            if problem:
                yield f"checks[{index}].pattern", problem
        elif check.kind == "sql" and check.expression and check.expression.strip():
            problem = predicate_problem(check.expression, contract.columns)
            if problem:
                yield f"checks[{index}].expression", problem


def _regex_problem(pattern: str) -> str | None:
    import duckdb  # only needed when a contract declares a regex check

    with _PROBE_LOCK:
        try:
            _probe().execute("SELECT regexp_full_match('', $1)", [pattern]).fetchall()
        except duckdb.Error as exc:
            return f"not a valid regular expression (RE2): {_first_line(str(exc))}"
    return None


_PROBE_LOCK = threading.Lock()
_PROBES: dict[int, duckdb.DuckDBPyConnection] = {}


def _probe() -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB without file access, for checking expressions:
    one for every check of every contract (a connection takes tens of milliseconds).
    Per process id: a connection is not carried across a worker's fork."""
    import duckdb

    pid = os.getpid()
    if pid not in _PROBES:
        _PROBES.clear()
        _PROBES[pid] = duckdb.connect(config={"enable_external_access": False})
    return _PROBES[pid]


def predicate_problem(expression: str, columns: Sequence[Column]) -> str | None:
    """Why ``expression`` is not a usable row predicate over ``columns``, or ``None``.

    It must be one boolean SQL expression that refers only to the columns (no
    aggregate, no statement separator, no file access).
    """
    import duckdb  # only needed when a contract declares a sql check

    try:
        with _PROBE_LOCK:  # the probe's parser: duckdb's module functions open a database more
            statements = _probe().extract_statements(f"SELECT ({expression})")
    except duckdb.Error as exc:
        return f"not a valid row predicate: {_first_line(str(exc))}"
    if len(statements) != 1:
        return "expected one boolean SQL expression, found several statements"
    row = ", ".join(f"CAST(NULL AS {c.sql_type}) AS {ident(c.name)}" for c in columns)
    probe = f"SELECT typeof(({expression})) FROM (SELECT {row}) AS t WHERE ({expression}) OR TRUE"
    with _PROBE_LOCK:
        try:
            ((kind,),) = _probe().execute(probe).fetchall()
        except duckdb.Error as exc:
            return f"not a valid row predicate: {_first_line(str(exc))}"
        except ValueError:
            return "not a valid row predicate: it does not give one value per row"
    if kind not in ("BOOLEAN", '"NULL"', "NULL"):
        return f"expected a boolean SQL expression, got one of type {kind}"
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
