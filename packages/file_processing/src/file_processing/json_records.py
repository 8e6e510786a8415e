"""Streaming pass over JSON data: one array of objects (``json``) or JSON Lines (``jsonl``).

Records are read one at a time from a text buffer that holds at most one record
(plus a read chunk), so memory is bounded by the record limit whatever the file
size. Each record is parsed by the standard library's C decoder with hooks that
catch what JSON parsers disagree on, each with its own reason:

- ``NaN``, ``Infinity``, ``-Infinity`` and numbers beyond every numeric type (a
  double overflows, an integer of more than 38 digits): ``data.number_range``;
- a key twice in one object (parsers keep the first, the last, or fail): ``data.schema``;
- a lone UTF-16 surrogate escape (``"\\ud800"``, not text in any encoding): ``data.encoding``;
- values nested deeper than the limit: ``data.nesting``;
- a record that is not an object: ``data.type``;
- in JSON Lines, a line that is not one JSON value: ``data.parse_error``.

Such a record is *malformed*: counted, sampled and split off like a CSV row that
does not parse. What cannot be recovered from (a syntax error inside an array,
whose next record cannot be found; a record over the size limit) is *fatal*:
the file fails with that reason. The good records are written to a JSON Lines
copy (each record's own text, on one line) that the engine reads; the top-level
keys seen are collected in order, for the schema policy and an open schema.

For a JSON array the ``line`` of a record is its number in the array (1 for the
first); its message gives the line and column of the text.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from collections.abc import Iterator, KeysView
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from file_processing.reasons import Reason

__all__ = ["JsonLimits", "JsonProblem", "JsonScan", "scan_json"]

_CHUNK = 1 << 20
_MAX_TEXT = 500  # characters of a malformed record kept
_MAX_DIGITS = 38  # the widest decimal the platform has
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Numbers that may be out of range show as a run of 39 digits or a three-digit exponent
# once text is mapped to a few classes (bytes.translate and find: C speed, no regex).
_CLASSES = bytes(
    ord("0") if chr(b).isdigit() and b < 128 else ord("e") if chr(b) in "eE" else
    ord("+") if chr(b) in "+-" else ord(" ")
    for b in range(256)
)  # fmt: skip
_SUSPECT = (b"0" * (_MAX_DIGITS + 1), b"e000", b"e+000")


@dataclass(frozen=True)
class JsonLimits:
    """Bounds of one JSON record.

    Attributes:
        max_record_bytes: Characters of one record's text (its memory).
        max_depth: Nesting of arrays and objects within a record (the record is 1).
        max_keys: Distinct top-level keys over the file (its columns).
    """

    max_record_bytes: int = 16 * 1024 * 1024
    max_depth: int = 64
    max_keys: int = 4096


@dataclass(frozen=True)
class JsonProblem:
    """A record that cannot be used, or the point where the file cannot be read on."""

    record: int
    reason: Reason
    message: str
    text: str = ""


@dataclass
class JsonScan:
    """What the pass found.

    Attributes:
        records: Records read (good and malformed).
        malformed: Records that cannot be used.
        by_reason: Malformed records per reason.
        samples: The first malformed records.
        fatal: Why the file cannot be read past some point, if it cannot.
        keys: Top-level keys of the records, in order of first appearance.
        clean_path: JSON Lines of the good records, one per line.
        rejects_path: CSV of every malformed record (record, reason, message, text).
    """

    records: int = 0
    malformed: int = 0
    by_reason: Counter[Reason] = field(default_factory=Counter)
    samples: list[JsonProblem] = field(default_factory=list)
    fatal: JsonProblem | None = None
    keys: list[str] = field(default_factory=list)
    clean_path: Path = Path()
    rejects_path: Path = Path()


class _FatalError(Exception):
    """The file cannot be read past this point."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def scan_json(
    path: Path,
    *,
    array: bool,
    encoding: str,
    work_dir: Path,
    limits: JsonLimits | None = None,
    max_samples: int = 20,
) -> JsonScan:
    """Read every record of ``path``; see the module docstring.

    Args:
        path: The data file (its encoding already validated).
        array: One JSON array of objects (``json``), else JSON Lines.
        encoding: Its text encoding (a byte-order mark is skipped).
        work_dir: Where the clean copy and the malformed records are written.
        limits: Record bounds; the defaults when ``None``.
        max_samples: Malformed records kept as samples (all are counted).
    """
    scan = JsonScan(clean_path=work_dir / "records.jsonl", rejects_path=work_dir / "rejects.csv")
    checker = _RecordChecker(limits or JsonLimits())
    keys: dict[str, None] = {}
    with (
        _open_text(path, encoding) as text,
        scan.clean_path.open("w", encoding="utf-8", newline="\n") as clean,
        scan.rejects_path.open("w", encoding="utf-8", newline="") as rejects,
    ):
        rejects.write("record,reason,message,text\n")
        records = _array_records(text, checker) if array else _line_records(text, checker)
        try:
            for number, item in enumerate(records, start=1):
                scan.records = number
                if isinstance(item, JsonProblem):
                    _record_problem(scan, item, rejects, max_samples)
                    continue
                record_text, record_keys = item
                if not record_keys <= keys.keys():  # no new key: the usual case, decided in C
                    _add_keys(keys, record_keys, number, checker.limits.max_keys)
                clean.write(record_text)
                clean.write("\n")
        except _FatalError as fatal:
            scan.fatal = JsonProblem(scan.records + 1, fatal.reason, fatal.message)
    scan.keys = list(keys)
    return scan


def _add_keys(keys: dict[str, None], new: KeysView[str], number: int, limit: int) -> None:
    """Add a record's keys to the file's, in order; refuse more than ``limit`` of them."""
    for key in new:
        if key not in keys:
            keys[key] = None
            if len(keys) > limit:
                raise _FatalError(
                    Reason.DATA_TOO_WIDE,
                    f"more than {limit} distinct keys (record {number} adds {key!r})",
                )


def _record_problem(scan: JsonScan, problem: JsonProblem, rejects: TextIO, keep: int) -> None:
    scan.malformed += 1
    scan.by_reason[problem.reason] += 1
    if len(scan.samples) < keep:
        scan.samples.append(problem)
    fields = (str(problem.record), problem.reason.value, problem.message, problem.text)
    rejects.write(",".join(_csv_field(value) for value in fields) + "\n")


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


class _open_text:  # noqa: N801 - a context manager used like open()
    """The file as text in ``encoding``, a byte-order mark skipped, line ends kept."""

    def __init__(self, path: Path, encoding: str) -> None:
        name = codecs.lookup(encoding).name
        self.encoding = "utf-8-sig" if name == "utf-8" else encoding
        self.path = path

    def __enter__(self) -> TextIO:
        self.handle = self.path.open(encoding=self.encoding, newline="")
        return self.handle

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


# ---------------------------------------------------------------- one record

_Item = tuple[str, KeysView[str]] | JsonProblem


class _RecordChecker:
    """Decodes one record's text with hooks that note what makes it unusable."""

    def __init__(self, limits: JsonLimits) -> None:
        self.limits = limits
        self.issues: list[tuple[Reason, str]] = []
        # The C decoder's own number parsing is fast; numbers that may be out of range
        # (long digit runs, three-digit exponents) are decoded again with checking hooks.
        self.fast = json.JSONDecoder(object_pairs_hook=self._object, parse_constant=self._constant)
        self.checked = json.JSONDecoder(
            object_pairs_hook=self._object,
            parse_constant=self._constant,
            parse_float=self._float,
            parse_int=self._int,
        )

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) != len(pairs):
            self.issues.append(
                (Reason.DATA_SCHEMA, f"key {_repeated(pairs)!r} appears twice in one object")
            )
        return value

    def _constant(self, name: str) -> None:
        self.issues.append(
            (Reason.DATA_NUMBER_RANGE, f"{name} is not a JSON number (only finite numbers are)")
        )

    def _float(self, text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            self.issues.append(
                (Reason.DATA_NUMBER_RANGE, f"{_short(text)} is beyond the range of a double")
            )
        return value

    def _int(self, text: str) -> int:
        digits = len(text.lstrip("-"))
        if digits > _MAX_DIGITS:
            self.issues.append(
                (
                    Reason.DATA_NUMBER_RANGE,
                    f"an integer of {digits} digits is beyond every numeric type "
                    f"({_MAX_DIGITS} digits at most)",
                )
            )
            return 0
        return int(text)

    def decode(self, text: str, start: int, *, suspect: bool) -> tuple[Any, int]:
        """Decode the value at ``text[start:]``; issues go to :attr:`issues`.

        Args:
            text: The text holding the value.
            start: Where the value starts.
            suspect: The text may hold an out-of-range number (:func:`may_overflow`):
                numbers are then checked one by one.

        Raises:
            json.JSONDecodeError: the text is not JSON there.
            RecursionError: nested too deep for the decoder.
        """
        self.issues = []
        decoder = self.checked if suspect else self.fast
        try:
            result: tuple[Any, int] = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            raise
        except ValueError:  # an integer too long for int(): decode with the checks
            self.issues = []
            result = self.checked.raw_decode(text, start)
        return result

    def judge(self, value: Any, text: str, number: int) -> _Item:
        """The record's text and keys, or the problem that makes it unusable."""
        issue = self.issues[0] if self.issues else None
        if issue is None and not isinstance(value, dict):
            issue = (Reason.DATA_TYPE, f"a record must be an object, got {_kind(value)}")
        if (
            issue is None
            and "\\u" in text
            and _SURROGATE_ESCAPE.search(text)
            and _has_lone_surrogate(value)
        ):
            issue = (Reason.DATA_ENCODING, "a string holds a lone UTF-16 surrogate escape")
        if issue is None and text.count("{") + text.count("[") > self.limits.max_depth:
            depth = _depth(value, self.limits.max_depth)
            if depth > self.limits.max_depth:
                issue = (
                    Reason.DATA_NESTING,
                    f"nested more than {self.limits.max_depth} levels deep",
                )
        if issue is not None:
            return JsonProblem(number, issue[0], f"record {number}: {issue[1]}", text[:_MAX_TEXT])
        assert isinstance(value, dict)
        return text.replace("\r", " ").replace("\n", " "), value.keys()


def may_overflow(text: str) -> bool:
    """Whether ``text`` may hold a number beyond every numeric type (a cheap, safe test)."""
    classes = text.encode("utf-8", "surrogatepass").translate(_CLASSES)
    return any(pattern in classes for pattern in _SUSPECT)


def _repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return ""


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "an array", int: "a number"}.get(
        type(value), "a number"
    )


def _has_lone_surrogate(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _depth(value: object, limit: int) -> int:
    """Nesting depth of ``value`` (an object or array is one level), stopping past ``limit``."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


# ---------------------------------------------------------------- JSON Lines


def _line_records(text: TextIO, checker: _RecordChecker) -> Iterator[_Item]:
    """Each non-blank line is one record; a bad line is malformed, the next one is read."""
    limit = checker.limits.max_record_bytes
    number = 0
    while True:
        line = text.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith("\n"):
            _skip_rest_of_line(text, limit)
            number += 1
            yield JsonProblem(
                number,
                Reason.DATA_TOO_LARGE,
                f"record {number}: longer than {limit} characters",
                line[:_MAX_TEXT],
            )
            continue
        stripped = line.strip(" \t\r\n")
        if not stripped:
            continue
        number += 1
        yield _one_line(stripped, checker, number)


def _skip_rest_of_line(text: TextIO, limit: int) -> None:
    while True:
        piece = text.readline(limit)
        if not piece or piece.endswith("\n"):
            return


def _one_line(line: str, checker: _RecordChecker, number: int) -> _Item:
    try:
        value, end = checker.decode(line, 0, suspect=may_overflow(line))
    except json.JSONDecodeError as exc:
        return JsonProblem(
            number,
            Reason.DATA_PARSE_ERROR,
            f"record {number}: not JSON: {exc.msg} at column {exc.colno}",
            line[:_MAX_TEXT],
        )
    except RecursionError:
        return JsonProblem(
            number,
            Reason.DATA_NESTING,
            f"record {number}: nested too deep to read",
            line[:_MAX_TEXT],
        )
    if end != len(line):
        return JsonProblem(
            number,
            Reason.DATA_PARSE_ERROR,
            f"record {number}: text after the JSON value at column {end + 1}",
            line[:_MAX_TEXT],
        )
    return checker.judge(value, line, number)


# ---------------------------------------------------------------- one array


class _Buffer:
    """The unread text of the file: refilled by chunks, compacted as records are consumed."""

    def __init__(self, text: TextIO, limit: int) -> None:
        self.text = text
        self.limit = limit
        self.data = ""
        self.pos = 0
        self.line = 1  # line of data[0]
        self.eof = False
        self.suspect = False  # the text held may have an out-of-range number

    def fill(self, wanted: int = _CHUNK) -> bool:
        """Read more text, dropping what was consumed; ``False`` at the end of the file."""
        if self.eof:
            return False
        self.line += self.data.count("\n", 0, self.pos)
        self.data = self.data[self.pos :]
        self.pos = 0
        chunk = self.text.read(max(wanted, _CHUNK))
        if not chunk:
            self.eof = True
            return False
        self.data += chunk
        self.suspect = may_overflow(self.data)
        return True

    def skip_space(self) -> str:
        """Skip whitespace; the next character, ``""`` at the end of the file."""
        while True:
            if self.pos < len(self.data) and self.data[self.pos] not in " \t\r\n":
                return self.data[self.pos]
            self.pos = _WHITESPACE.match(self.data, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.data):
                return self.data[self.pos]
            if not self.fill():
                return ""

    def where(self, position: int | None = None) -> str:
        """Line and column of ``position`` (the current one by default), for messages."""
        at = self.pos if position is None else position
        line = self.line + self.data.count("\n", 0, at)
        column = at - self.data.rfind("\n", 0, at)
        return f"line {line}, column {column}"

    def advance(self, end: int) -> None:
        """Consume the text up to ``end``."""
        self.pos = end


def _array_records(text: TextIO, checker: _RecordChecker) -> Iterator[_Item]:
    buffer = _Buffer(text, checker.limits.max_record_bytes)
    first = buffer.skip_space()
    if first != "[":
        found = f"{first!r}" if first else "nothing"
        raise _FatalError(
            Reason.DATA_PARSE_ERROR,
            f"a JSON document must be one array of objects ([{{...}}, ...]); found {found} "
            f"at {buffer.where()}",
        )
    buffer.advance(buffer.pos + 1)
    number = 0
    if buffer.skip_space() == "]":
        buffer.advance(buffer.pos + 1)
    else:
        while True:
            number += 1
            yield _next_element(buffer, checker, number)
            separator = buffer.skip_space()
            if separator == ",":
                buffer.advance(buffer.pos + 1)
                continue
            if separator == "]":
                buffer.advance(buffer.pos + 1)
                break
            found = f"{separator!r}" if separator else "the end of the file"
            raise _FatalError(
                Reason.DATA_PARSE_ERROR,
                f"expected ',' or ']' after record {number}, found {found} at {buffer.where()}",
            )
    trailing = buffer.skip_space()
    if trailing:
        raise _FatalError(
            Reason.DATA_PARSE_ERROR,
            f"text after the end of the array at {buffer.where()}: {trailing!r}",
        )


def _next_element(buffer: _Buffer, checker: _RecordChecker, number: int) -> _Item:
    """Decode the element at the buffer's position, reading more text while it is cut off."""
    buffer.skip_space()
    while True:
        start = buffer.pos
        try:
            value, end = checker.decode(buffer.data, start, suspect=buffer.suspect)
        except json.JSONDecodeError as exc:
            if _cut_off(exc, buffer):
                _grow(buffer, number)  # decoded again, with more text or at the end
                continue
            raise _FatalError(
                Reason.DATA_PARSE_ERROR,
                f"record {number}: not JSON: {exc.msg} at {buffer.where(exc.pos)}",
            ) from None
        except RecursionError:
            raise _FatalError(
                Reason.DATA_NESTING, f"record {number}: nested too deep to read"
            ) from None
        if end == len(buffer.data) and not buffer.eof:
            _grow(buffer, number)  # a bare number may go on in the next chunk
            continue
        if end - start > buffer.limit:
            raise _FatalError(
                Reason.DATA_TOO_LARGE, f"record {number} is longer than {buffer.limit} characters"
            )
        record = buffer.data[start:end]
        buffer.advance(end)
        return checker.judge(value, record, number)


def _cut_off(exc: json.JSONDecodeError, buffer: _Buffer) -> bool:
    """Whether the error may only mean the record goes on past the text read so far."""
    near_end = exc.pos >= len(buffer.data) - 12  # an escape or a literal cut in two
    return not buffer.eof and (near_end or exc.msg.startswith("Unterminated string"))


def _grow(buffer: _Buffer, number: int) -> bool:
    """Read more of a record that is cut off (the buffer is compacted: positions move);
    refuse one beyond the size limit."""
    pending = len(buffer.data) - buffer.pos
    if pending > buffer.limit:
        raise _FatalError(
            Reason.DATA_TOO_LARGE, f"record {number} is longer than {buffer.limit} characters"
        )
    return buffer.fill(wanted=pending)
