"""A file's columns against the contract's ``[schema]`` policy: which are read, kept, filled.

The engine reads a file through a :class:`ColumnLayout`: the columns it checks
(declared ones, then the file's extra ones, or, in an open schema, the file's own
columns as text), where each sits in the file, and what the published file holds
(extra columns dropped, missing optional ones written empty). Whatever the policy,
a header must name each column once and never with an empty name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from etl_core.contracts import Column, Contract

__all__ = ["ColumnLayout", "layout_columns"]

_JSON_FORMATS = ("json", "jsonl")


@dataclass(frozen=True)
class ColumnLayout:
    """How the engine reads one file's columns.

    Attributes:
        columns: The columns checked: the declared ones (in contract order), then
            the file's extra ones as text; in an open schema the file's own.
        order: For a header format, the column of each file position (the file's
            order); for JSON, every column (keys are read by name).
        extra: Columns (indexes into ``columns``) the contract does not declare.
        dropped: Extra columns left out of the published file.
        filled: Declared columns the file lacks, published as empty (null) values.
        problems: Why the file's columns are refused (the file fails when any).
        notes: What the policy did, for the report.
    """

    columns: tuple[Column, ...]
    order: tuple[int, ...]
    extra: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    filled: tuple[int, ...] = ()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def rewrite(self) -> bool:
        """Whether the published file differs from the input in its columns."""
        return bool(self.dropped or self.filled)

    @property
    def published(self) -> tuple[int, ...]:
        """The columns of the published file: the file's own in its order (dropped ones
        left out), then the filled ones."""
        return tuple(i for i in self.order if i not in self.dropped) + self.filled


def layout_columns(contract: Contract, names: Sequence[str], file_format: str) -> ColumnLayout:
    """Lay out a file whose columns (header names, JSON keys, Parquet fields) are ``names``."""
    if contract.schema.open:
        columns = tuple(Column(name=name) for name in names)
        found = (f"open schema: {len(names)} column(s) found",)
        order = tuple(range(len(names)))
        return ColumnLayout(columns, order, problems=_name_problems(names), notes=found)
    declared = list(contract.columns)
    declared_names = [c.name for c in declared]
    extras = [n for n in dict.fromkeys(names) if n not in declared_names]
    columns = (*declared, *(Column(name=n) for n in extras))
    index = {column.name: i for i, column in enumerate(columns)}
    extra = tuple(index[n] for n in extras)
    policy = contract.schema.extras(file_format)
    notes: list[str] = []
    unexpected = _extra_problems(extras, policy, notes)
    dropped = extra if policy == "drop" else ()
    json_records = file_format in _JSON_FORMATS
    if json_records:  # keys are read by name; an absent key is a null value
        return ColumnLayout(
            columns,
            tuple(range(len(columns))),
            extra,
            dropped,
            problems=unexpected + _name_problems(names),
            notes=tuple(notes),
        )
    missing = [c for c in declared if c.name not in names]
    problems = _missing_problems(missing, contract.schema.missing_columns, notes)
    problems += unexpected + _name_problems(names)
    filled = tuple(index[c.name] for c in missing) if not problems else ()
    order = tuple(index[n] for n in names if n in index)
    return ColumnLayout(columns, order, extra, dropped, filled, problems, tuple(notes))


def _name_problems(names: Sequence[str]) -> tuple[str, ...]:
    problems = []
    empty = [str(position) for position, name in enumerate(names, start=1) if not name]
    if empty:
        problems.append(f"empty column name at position(s) {', '.join(empty)}")
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        problems.append(f"a column name is repeated: {', '.join(map(repr, repeated))}")
    folded: dict[str, set[str]] = {}
    for name in names:
        folded.setdefault(name.casefold(), set()).add(name)
    clashes = sorted(
        ", ".join(map(repr, sorted(group))) for group in folded.values() if len(group) > 1
    )
    if clashes:
        problems.append(
            f"column names differ only in case ({'; '.join(clashes)}): SQL cannot tell them apart"
        )
    return tuple(problems)


def _extra_problems(extras: list[str], policy: str, notes: list[str]) -> tuple[str, ...]:
    shown = ", ".join(map(repr, [n for n in extras if n]))
    if not shown:
        return ()
    if policy == "refuse":
        return (f"unexpected {shown}",)
    notes.append(f"extra column(s) {'kept' if policy == 'keep' else 'dropped'}: {shown}")
    return ()


def _missing_problems(missing: list[Column], policy: str, notes: list[str]) -> tuple[str, ...]:
    if missing and policy == "refuse":
        return (f"missing {', '.join(repr(c.name) for c in missing)}",)
    required = [c.name for c in missing if c.required]
    optional = [c.name for c in missing if not c.required]
    problems = []
    if required:
        problems.append(f"missing required {', '.join(map(repr, required))}")
    if optional:
        notes.append(
            f"missing optional column(s) published empty: {', '.join(map(repr, optional))}"
        )
    return tuple(problems)
