"""The pipeline's contract rules, run at start-up: a transform that cannot run is refused
before any partition is read, not once per partition."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from data_pipeline.engine import literal, quote, relation_columns
from etl_core.contracts import Contract
from etl_core.contracts.memo import read_outside_state, remembered
from etl_core.errors import first_line

if TYPE_CHECKING:
    import duckdb

__all__ = ["transform_problems"]

_SELECT = re.compile(r"\s*(WITH|SELECT|FROM)\b", re.IGNORECASE)


@remembered("duckdb", "data_pipeline.engine")
def transform_problems(contract: Contract) -> Iterator[tuple[str, str]]:
    """Why ``[transform]`` or the join keys cannot work over the contract's columns.

    A contract validator (:data:`etl_core.contracts.ContractValidator`): the SQL
    is bound, not run, against an empty ``input`` typed by ``[[columns]]``, so an
    unknown column, a type error or a syntax error is named with the field. When
    the schema is open or keeps extra columns, ``input`` has columns only the files
    name, so only the syntax is checked here.
    """
    import duckdb  # imported when used: the ingest path never needs it

    spec = contract.transform
    if not _SELECT.match(spec.sql):
        yield "transform.sql", "must be one SELECT (or WITH ... SELECT) over `input`"
        return
    try:
        with _PROBE_LOCK:  # the probe's parser: duckdb's module functions open a database more
            statements = _probe().extract_statements(spec.sql)
    except duckdb.Error as exc:
        yield "transform.sql", f"not valid SQL: {first_line(exc)}"
        return
    if len(statements) != 1:
        yield "transform.sql", f"expected one SELECT statement, found {len(statements)}"
        return
    if contract.schema.open or contract.schema.extra_columns == "keep":
        return  # the SQL may name columns only the files will tell: bound per partition
    try:
        columns = _output_columns(contract)
    except duckdb.Error as exc:
        yield "transform.sql", f"does not run over the contract's columns: {first_line(exc)}"
        return
    known = ", ".join(columns)
    for key in spec.dedupe_on:
        if key not in columns:
            yield "transform.dedupe_on", f"{key!r} is not a transform output column ({known})"
    for join in contract.enrich:
        for left, _ in join.on:
            if left not in columns:
                yield (
                    f"enrich.{join.name}.on",
                    f"{left!r} is not a transform output column ({known})",
                )


def _output_columns(contract: Contract) -> dict[str, str]:
    """The transform's output columns, bound over an empty typed ``input``: first where
    nothing outside the contract can be read; a transform that reads files or loads an
    extension is bound as it will run, and its pass is not remembered (those may change)."""
    import duckdb

    try:
        return _bind(contract, sealed=True)
    except duckdb.Error:
        columns = _bind(contract, sealed=False)
        read_outside_state("the transform reads files or extensions")
        return columns


def _bind(contract: Contract, *, sealed: bool) -> dict[str, str]:
    typed = ", ".join(f"CAST(NULL AS {c.sql_type}) AS {quote(c.name)}" for c in contract.columns)
    with _PROBE_LOCK:
        con = _probe(sealed=sealed)
        con.execute(f"CREATE OR REPLACE TEMP TABLE input AS SELECT {typed} LIMIT 0")
        day = literal("2000-01-01")
        con.execute(f"CREATE OR REPLACE TEMP MACRO partition_date() AS DATE {day}")
        return relation_columns(con, f"({contract.transform.sql})")


_PROBE_LOCK = threading.Lock()
_PROBES: dict[tuple[int, bool], duckdb.DuckDBPyConnection] = {}


def _probe(*, sealed: bool = True) -> duckdb.DuckDBPyConnection:
    """This process's in-memory DuckDB for binding transforms: one for every contract
    (a connection takes tens of milliseconds); ``sealed``: without file or extension
    access. Per process id: a connection is not carried across a worker's fork."""
    import duckdb  # imported when used: the ingest path never needs it

    pid = os.getpid()
    if (pid, sealed) not in _PROBES:
        for stale in [key for key in _PROBES if key[0] != pid]:
            del _PROBES[stale]
        config: dict[str, str | bool | int | float | list[str]] = {}
        if sealed:
            config["enable_external_access"] = False
        _PROBES[pid, sealed] = duckdb.connect(config=config)
    return _PROBES[pid, sealed]
