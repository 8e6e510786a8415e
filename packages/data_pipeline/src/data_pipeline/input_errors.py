"""A partition input that cannot be read, said in the store's terms.

The transform copies each validated object into a scratch directory and DuckDB reads the
copies, so DuckDB's errors (and Python's, reading a header) name a path such as
``/tmp/etl-transform-…/input/00000-pos.csv``: a file gone with the run, which the operator
cannot find or fix. Here such an error becomes an :class:`InputFileError` naming the object
key in the store, what the file was read as (its format by name, the contract's CSV
dialect) and DuckDB's reason, its advice about reader options left out (the contract, not
a DuckDB option, states how a file is read).

A reference file of an enrichment join (staged beside the inputs) is said the same way,
as a :class:`ReferenceFileError` naming the join's reference as well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from data_pipeline.errors import InputFileError, PartitionError, ReferenceFileError
from etl_core.contracts import Contract, Enrichment

__all__ = [
    "REFERENCE_CSV",
    "REFERENCE_DELIMITERS",
    "StagedKeys",
    "empty_reference",
    "engine_reason",
    "expected_reading",
    "in_store_terms",
    "reference_error",
    "staged_file_named",
    "unreadable_input",
]

StagedKeys = Mapping[Path, str]
"""Each staged (scratch) copy → the store key it was copied from."""

_ADVICE = re.compile(
    r"(Possible (fixes|solutions)|The search space used was|LINE \d+:|Column .* is being "
    r"converted as type|This type was auto-detected|\*)",
)
"""Where DuckDB's reason ends and its advice (or the query it was running) begins."""

_MAX_REASON_LINES = 4

REFERENCE_CSV = {"delimiter": ",", "quote": '"', "escape": '"'}
"""The dialect a reference CSV is read in (no contract states it): comma-separated,
double quotes, a quote doubled inside a quoted field, a header first. A header line with
no comma outside quotes and one of :data:`REFERENCE_DELIMITERS` is read with that one."""

REFERENCE_DELIMITERS = (";", "\t", "|")
"""The delimiters other than a comma a reference CSV's header line may use (references
were read with their delimiter sniffed before, so these kept working)."""


def in_store_terms(text: str, keys: StagedKeys) -> str:
    """``text`` with every staged path replaced by its store key."""
    # longest first: one staged path is never the prefix of another's replacement
    for path in sorted(keys, key=lambda p: len(str(p)), reverse=True):
        text = text.replace(str(path), keys[path])
    return text


def engine_reason(error: BaseException, keys: StagedKeys) -> str:
    """What DuckDB (or Python) said was wrong, on one line, in the store's terms: its
    message up to its advice or a blank line, at most a few lines."""
    lines: list[str] = []
    for line in in_store_terms(str(error), keys).strip().splitlines():
        line = line.strip()
        if not line or _ADVICE.match(line) or len(lines) == _MAX_REASON_LINES:
            break
        lines.append(line.rstrip("."))
    return "; ".join(lines) or type(error).__name__


def expected_reading(
    contract: Contract,
    path: Path,
    fmt: str,
    *,
    reference: bool = False,
    delimiter: str = REFERENCE_CSV["delimiter"],
) -> str:
    """What a file was read as: its format (from its name) and, for CSV, the contract's
    dialect (a reference file's: :data:`REFERENCE_CSV`, with the ``delimiter`` its header
    line uses)."""
    packed = "gzip-compressed " if path.suffix.lower() == ".gz" else ""
    if fmt == "parquet":
        return "Parquet (by its name)"
    if fmt == "json":
        return f"{packed}JSON (by its name): an array of objects or JSON lines"
    if reference:
        return (
            f"{packed}CSV (by its name) with a header, delimiter "
            f"{delimiter!r}, quote {REFERENCE_CSV['quote']!r}, escape the "
            "quote doubled (a reference file's dialect; its column types detected)"
        )
    parse = contract.parse
    header = "a header" if parse.header else "no header"
    escape = "the quote doubled" if parse.escape is None else repr(parse.escape)
    return (
        f"{packed}CSV (by its name) with {header}, delimiter {parse.delimiter!r}, quote "
        f"{parse.quote!r}, escape {escape} (the [parse] of {contract.origin})"
    )


def staged_file_named(keys: StagedKeys, error: BaseException) -> Path | None:
    """The staged file ``error``'s message names, if any (DuckDB names the file it fails
    to read; an error about the SQL names none)."""
    return next((path for path in keys if str(path) in str(error)), None)


def unreadable_input(
    contract: Contract,
    dt: date,
    keys: StagedKeys,
    error: BaseException,
    *,
    fmt: str,
    paths: tuple[Path, ...],
    join: Enrichment | None = None,
    delimiter: str = REFERENCE_CSV["delimiter"],
) -> PartitionError:
    """The :class:`InputFileError` for ``error``, met reading ``paths`` as ``fmt``: it
    names the one file ``error`` names, else every one of ``paths``. Reading the reference
    of ``join``, a :class:`ReferenceFileError` naming that reference too (a CSV one read
    with ``delimiter``).

    DuckDB out of memory is no fault of the files (they read with more): that is a
    :class:`PartitionError` naming ``duckdb_memory_limit``, never an ``InputFileError``.
    """
    named = staged_file_named(keys, error)
    files = (named,) if named is not None else paths
    stored = tuple(keys.get(path, path.name) for path in files)
    reason = engine_reason(error, keys)
    if _out_of_memory(error):
        what = "input file(s)" if join is None else f"the reference of enrich.{join.name}, file(s)"
        return PartitionError(
            contract.dataset,
            dt,
            f"DuckDB ran out of memory reading {what} {', '.join(stored)} (not a "
            f"fault of the files): {reason}; raise duckdb_memory_limit "
            "(ETL_DUCKDB_MEMORY_LIMIT) or lower duckdb_threads, then run again",
        )
    if join is not None:
        return reference_error(
            contract, dt, join, stored, files[0], fmt, reason, delimiter=delimiter
        )
    return InputFileError(
        contract.dataset,
        dt,
        stored,
        expected=expected_reading(contract, files[0], fmt),
        reason=reason,
    )


def empty_reference(
    contract: Contract, dt: date, path: Path, key: str, join: Enrichment
) -> ReferenceFileError:
    """The :class:`ReferenceFileError` for join ``join``'s reference CSV ``path`` (``key``
    in the store) having no header line naming its columns: empty (zero bytes), or only
    blank lines (a newline, a byte-order mark, spaces).

    DuckDB reads such a file as one column ``column0`` and the reference would be said to
    lack the join's columns, which blames the wrong thing."""
    if path.stat().st_size == 0:
        reason = "the file is empty (0 bytes): no header line names its columns"
    else:
        reason = "the file holds only blank lines: no header line names its columns"
    return reference_error(contract, dt, join, (key,), path, "csv", reason)


def reference_error(
    contract: Contract,
    dt: date,
    join: Enrichment,
    stored: tuple[str, ...],
    path: Path,
    fmt: str,
    reason: str,
    *,
    delimiter: str = REFERENCE_CSV["delimiter"],
) -> ReferenceFileError:
    """The :class:`ReferenceFileError` for join ``join``'s reference files ``stored``
    (their keys in the store; ``path`` the first, staged, read as ``fmt``) and why
    they could not be read."""
    return ReferenceFileError(
        contract.dataset,
        dt,
        stored,
        join=join.name,
        source=join.source,
        expected=expected_reading(contract, path, fmt, reference=True, delimiter=delimiter),
        reason=reason,
    )


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is DuckDB out of memory (the engine's limit, not the data)."""
    import duckdb  # imported when used: the ingest path never needs it

    return isinstance(error, duckdb.OutOfMemoryException)
