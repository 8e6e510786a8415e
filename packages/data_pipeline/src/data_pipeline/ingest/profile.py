"""What the records of a run hold: each top-level field, how often, with which JSON types.

A :class:`FieldProfile` counts, per field, the kinds of value seen (``null``,
``bool``, ``int``, ``float``, ``date`` and ``timestamp`` text in ISO 8601, other
``string``, ``object``, ``array``). It is small (bounded by :data:`MAX_FIELDS`),
plain JSON, and kept in the window's checkpoint, so a resumed run counts every
landed record once. The drift report compares it with the dataset contract, and
``ingest infer`` proposes column types from it.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from typing import Any, cast

__all__ = ["MAX_FIELDS", "FieldProfile", "compatible", "kind_of"]

MAX_FIELDS = 500
"""Fields profiled at most per run (a record with more is counted, its extra keys not)."""
FEW = 8
"""Records :meth:`FieldProfile.add_many` profiles one by one rather than by column."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_STAMP_SHAPE = re.compile(r"[0-9]{4}-..-..[T ].{5}", re.DOTALL)
"""What a text must start with to be read as a timestamp by :func:`_text_kind` (16 characters
at least; the calendar reads ASCII digits only, so the year's digits are ASCII too)."""
_DATED_LINE = re.compile(r"\n\d{4}-")
"""A line starting as a date or timestamp does, in texts joined by newlines."""
_KIND_OF_TYPE: Mapping[type, str] = {
    type(None): "null",
    bool: "bool",
    int: "int",
    float: "float",
    dict: "object",
    list: "array",
}
_ACCEPTS: Mapping[str, frozenset[str]] = {
    "string": frozenset({"string", "date", "timestamp", "int", "float", "bool"}),
    "int": frozenset({"int"}),
    "float": frozenset({"int", "float"}),
    "decimal": frozenset({"int", "float"}),
    "bool": frozenset({"bool"}),
    "date": frozenset({"date"}),
    "timestamp": frozenset({"date", "timestamp"}),
}


def kind_of(value: object) -> str:
    """The kind of a JSON value, telling ISO dates and timestamps from other text."""
    kind = _KIND_OF_TYPE.get(type(value))
    if kind is not None:
        return kind
    if isinstance(value, str):
        return _text_kind(value)
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "string"


def _text_kind(text: str) -> str:
    """``date``, ``timestamp`` or ``string``: the cheap shape test first (most text is not a
    date), the pattern and calendar only for what looks like one."""
    if len(text) < 10 or text[4] != "-" or text[7] != "-" or not text[:4].isdigit():
        return "string"
    if len(text) == 10:
        return "date" if _DATE.fullmatch(text) and _is_date(text) else "string"
    if text[10] not in "T " or len(text) < 16:
        return "string"
    try:
        datetime.fromisoformat(text)  # ISO 8601 as Python 3.11 reads it ("Z" included)
    except ValueError:
        return "string"
    return "timestamp"


def _text_kinds(texts: Sequence[str], joined: str) -> dict[str, int] | None:
    """The count of each :func:`_text_kind` of ``texts`` (``joined`` by newlines) when they
    are all of one kind, found by C-level scans (shapes by pattern, calendars by
    ``fromisoformat``); ``None`` when they are not (then each is judged in turn, to keep the
    kinds' order)."""
    if _STAMP_SHAPE.match(texts[0]):
        if all(map(_STAMP_SHAPE.match, texts)) and _all_read(datetime.fromisoformat, texts):
            return {"timestamp": len(texts)}
        return None
    if _DATE.fullmatch(texts[0]):
        if all(map(_DATE.fullmatch, texts)) and _all_read(date.fromisoformat, texts):
            return {"date": len(texts)}
        return None
    if not _DATED_LINE.search("\n" + joined):
        return {"string": len(texts)}  # no text starts as a date
    return None


def _all_read(parse: Callable[[str], object], texts: Iterable[str]) -> bool:
    """Whether ``parse`` reads every text (consumed at C speed)."""
    try:
        deque(map(parse, texts), maxlen=0)
    except ValueError:
        return False
    return True


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _columns(
    records: Sequence[Mapping[str, Any]], names: tuple[str, ...]
) -> list[Sequence[Any]] | None:
    """The values of each of ``names`` in ``records``, or ``None`` unless every record has
    exactly those keys (as many keys, none missing; their order does not matter: every
    field then appears first in the first record, so the counts are the same as one by
    one). Taken a record at a time and turned into columns by ``zip``, both in C."""
    if set(map(len, records)) != {len(names)}:
        return None
    try:
        if len(names) == 1:
            return [list(map(itemgetter(names[0]), records))]
        return list(zip(*map(itemgetter(*names), records), strict=True)) if names else []
    except KeyError:
        return None


def compatible(column_type: str, kind: str) -> bool:
    """Whether a value of ``kind`` reads as a column of ``column_type`` (null always does)."""
    return kind == "null" or kind in _ACCEPTS.get(column_type, frozenset())


@dataclass
class FieldProfile:
    """Counts of the kinds of value of each top-level field of the records added.

    Attributes:
        records: Records added.
        fields: Per field, the count of each kind seen (absent keys are not counted).
        truncated: More than :data:`MAX_FIELDS` fields were met; later ones are not listed.
    """

    records: int = 0
    fields: dict[str, dict[str, int]] = field(default_factory=dict)
    truncated: bool = False

    def add(self, record: Mapping[str, Any], *, skip: Container[str] = ()) -> None:
        """Count ``record``'s fields, except those named in ``skip``."""
        self.records += 1
        for name, value in record.items():
            if name in skip:
                continue
            kinds = self.fields.get(name)
            if kinds is None:
                if len(self.fields) >= MAX_FIELDS:
                    self.truncated = True
                    continue
                kinds = self.fields[name] = {}
            kind = kind_of(value)
            kinds[kind] = kinds.get(kind, 0) + 1

    def add_many(self, records: Sequence[Mapping[str, Any]], *, skip: Container[str] = ()) -> None:
        """:meth:`add` each of ``records`` (the same counts, in the same order); a column at a
        time when they all have the same keys, as an API's records do."""
        names = tuple(records[0]) if records else ()
        columns = None
        if len(records) >= FEW and len(self.fields) + len(names) <= MAX_FIELDS:
            columns = _columns(records, names)
        if columns is None:
            for record in records:  # few records, mixed shapes or truncation: one by one
                self.add(record, skip=skip)
            return
        self.records += len(records)
        for name, column in zip(names, columns, strict=True):
            if name not in skip:
                self._count_column(self.fields.setdefault(name, {}), column)

    def _count_column(self, kinds: dict[str, int], column: Sequence[object]) -> None:
        """Count the kinds of one field's values, at C speed when they are all of one kind
        (text: when joining them succeeds, as it does only when each is text; the others:
        by the set of their types)."""
        counted: dict[str, int] | None = None
        if type(column[0]) is str:
            try:
                joined = "\n".join(cast(Sequence[str], column))
            except TypeError:  # not all text
                pass
            else:
                counted = _text_kinds(cast(Sequence[str], column), joined)
        else:
            types = set(map(type, column))
            if len(types) == 1:
                [kind_type] = types
                if kind_type in _KIND_OF_TYPE:
                    counted = {_KIND_OF_TYPE[kind_type]: len(column)}
        if counted is None:
            counted = Counter(map(kind_of, column))  # mixed: each value, in order
        for kind, count in counted.items():
            kinds[kind] = kinds.get(kind, 0) + count

    def can_merge(self, data: Mapping[str, Any]) -> bool:
        """Whether :meth:`merge` of ``data`` (:meth:`to_dict` of the profile of some records)
        counts what :meth:`add_many` of those records would: no field left out on either
        side, so no truncation."""
        if data["truncated"]:
            return False
        return len(self.fields.keys() | data["fields"].keys()) <= MAX_FIELDS

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add the counts of ``data`` (:meth:`to_dict` of the profile of records seen after
        these), fields and kinds in their order (check :meth:`can_merge` first)."""
        self.records += int(data["records"])
        for name, counts in data["fields"].items():
            kinds = self.fields.setdefault(name, {})
            for kind, count in counts.items():
                kinds[kind] = kinds.get(kind, 0) + count

    def present(self, name: str) -> int:
        """Records that carry ``name`` (null included)."""
        return sum(self.fields.get(name, {}).values())

    def proposed_type(self, name: str) -> str:
        """The narrowest column type every value of ``name`` fits (``string`` when none)."""
        kinds = set(self.fields.get(name, {})) - {"null"}
        for candidate in ("bool", "int", "float", "date", "timestamp"):
            if kinds and kinds <= _ACCEPTS[candidate]:
                return candidate
        return "string"

    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready data."""
        fields = {name: dict(kinds) for name, kinds in self.fields.items()}  # a snapshot
        return {"records": self.records, "fields": fields, "truncated": self.truncated}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> FieldProfile:
        """A profile read back from :meth:`to_dict` data (``None``: an empty one)."""
        if not data:
            return cls()
        fields = {str(k): {str(n): int(c) for n, c in v.items()} for k, v in data["fields"].items()}
        return cls(int(data["records"]), fields, bool(data.get("truncated", False)))
