"""Counting the records of a delimited text file, independently of the quality engine.

The engine (DuckDB) splits records itself; this module counts them a second
way, so a record the engine loses (an over-long line once fell between its read
buffers) shows up as a disagreement instead of vanishing. It reads the decoded
text the pre-pass produces, honouring the contract's dialect: quoted fields
with embedded delimiters, quotes and CR, LF or CRLF line breaks, a byte-order
mark, blank lines. Records are counted as the engine counts them: a blank line
is no record, except in a one-column file, where it is an empty value.

Memory is bounded by the record limit: a record (or an unterminated line) that
grows past ``max_record_bytes`` stops the count with an :class:`Oversize`
verdict instead of being held. Chunks without a quote or escape character take
a fast path (line splitting in C); chunks with quotes are counted by a strict
:mod:`csv` reader without a Python step per row; anything irregular (text after
a closing quote, a quoted value running on into the next chunk, a long record)
is read row by row by a non-strict :mod:`csv` reader, which splits records the
way the engine does.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Literal

from etl_core.contracts import ParseOptions

__all__ = [
    "SAMPLE_PIECES",
    "LineFeeds",
    "Oversize",
    "RecordCount",
    "RecordLimits",
    "count_lines",
    "count_records",
]

_LINE_BREAK_ENDINGS = ("\n", "\r")
_BLANK_LINES = ("\n", "\r\n", "\r")
# str.splitlines also breaks at these; a CSV record does not.
_OTHER_ASCII_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e")
_OTHER_BREAKS = (*_OTHER_ASCII_BREAKS, "\x85", "\u2028", "\u2029")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_BLANK_LINE = re.compile("\n\n")
_MAX_UTF8_PER_CHAR = 4
SAMPLE_PIECES = 16
_SAMPLE_PIECE_CHARS = 2 << 20
_SAMPLE_CHARS = 16 << 20  # the whole sample, whatever its pieces (memory and scratch)
"""Most chunks of records :func:`count_records` keeps as a sample (16 Mi characters in all
at most)."""

LineFeeds = Callable[[], int | None]
"""The LF characters in the piece of text yielded last, or ``None`` when not known."""


@dataclass(frozen=True)
class RecordLimits:
    """The largest record and field accepted, in bytes of UTF-8 text, and the widest record."""

    max_field_bytes: int
    max_record_bytes: int
    max_columns: int


@dataclass(frozen=True)
class Oversize:
    """The first record that breaks a limit.

    Attributes:
        what: ``field`` or ``record`` (bytes), or ``columns`` (fields in the first record).
        line: The line the record starts on (1 is the first line of the file).
        size: Bytes of the field or record, or the number of fields.
        limit: The limit it breaks.
        column: The field's position (1-based), for ``field``, when known.
        exact: False when counting stopped early: the size is a lower bound.
    """

    what: Literal["field", "record", "columns"]
    line: int
    size: int
    limit: int
    column: int | None = None
    exact: bool = True

    def describe(self) -> str:
        """One sentence naming the record and the limit."""
        if self.what == "columns":
            return (
                f"the first record (line {self.line}) has {self.size} fields, more than the "
                f"limit of {self.limit} columns"
            )
        where = "the record"
        if self.what == "field":
            where = f"field {self.column} of the record" if self.column else "a field of the record"
        more = "" if self.exact else "more than "
        return (
            f"{where} starting on line {self.line} is {more}{self.size} bytes long, "
            f"above the limit of {self.limit} bytes per {self.what}"
        )


@dataclass
class RecordCount:
    """What the count found.

    Attributes:
        records: Data records in the text: the header line is not one, nor is a
            blank line (except in a one-column file, where it is an empty value).
        header: The fields of the first record (the header, when the dialect has
            one), a byte-order mark removed; ``None`` for an empty text.
        oversize: The first record over a limit; the count stopped there.
        line_breaks: Which line breaks the text uses (``CRLF``, ``LF``, ``CR``).
        sample: Whole records without quotes, every ``sample_every``-th chunk of them
            (see :func:`count_records`), for statistics that a sample estimates well.
    """

    records: int = 0
    header: list[str] | None = None
    oversize: Oversize | None = None
    line_breaks: set[str] = field(default_factory=set)
    sample: list[str] = field(default_factory=list)


class _LimitError(Exception):
    """A limit was broken; the verdict is in :attr:`RecordCount.oversize`."""


def count_records(
    texts: Iterable[str],
    options: ParseOptions,
    *,
    columns: int,
    limits: RecordLimits,
    sample_every: int = 0,
    line_feeds: LineFeeds | None = None,
) -> RecordCount:
    """Count the records of the text ``texts`` yields (consecutive pieces of one file).

    Args:
        texts: The decoded text, in pieces of any size; always read to the end,
            even once a limit is broken (the caller may hash or copy on the way).
        options: The contract's dialect.
        columns: Columns the contract declares (a one-column file counts blank lines).
        limits: Record, field and width limits.
        sample_every: Keep the records of every this many chunks of plain records
            (whole lines, no quote) in the result's ``sample``, at most
            :data:`SAMPLE_PIECES` of them; 0 keeps none.
        line_feeds: The LF characters in the piece ``texts`` yielded last, when the
            caller counted them already (the pre-pass counts its bytes' line breaks):
            the count of a plain chunk then needs no scan of its own.
    """
    texts = iter(texts)
    counter = _Counter(options, columns, limits)
    counter.sample_every = sample_every
    counter.line_feeds = line_feeds
    try:
        counter.run(texts)
    except _LimitError:
        for _ in texts:  # the caller's side effects (hash, copy) still see every byte
            pass
    return counter.result


def count_lines(texts: Iterable[str], *, limits: RecordLimits) -> RecordCount:
    """Count the records of JSON Lines text: its lines that are not blank.

    A JSON text holds no raw line break, so each record is one line; a line
    longer than ``limits.max_record_bytes`` stops the count (``oversize``).
    """
    texts = iter(texts)
    counter = _Counter(ParseOptions(header=False), 0, limits)
    try:
        for _, lines in counter.chunks(texts):
            counter.result.records += sum(map(bool, map(str.strip, lines)))
            if max(map(len, lines)) * _MAX_UTF8_PER_CHAR > limits.max_record_bytes:
                for offset, line in enumerate(lines):
                    size = _utf8(line.rstrip("\r\n"))
                    if size > limits.max_record_bytes:
                        counter._oversize("record", counter.line + offset, size, None)
            counter.line += len(lines)
    except _LimitError:
        for _ in texts:
            pass
    return counter.result


class _Counter:
    """The counting state: position, the record being read, the result."""

    def __init__(self, options: ParseOptions, columns: int, limits: RecordLimits) -> None:
        self.limits = limits
        self.one_column = columns == 1
        self.has_header = options.header
        escape = options.escape if options.escape not in (None, options.quote) else None
        self.specials = tuple(c for c in (options.quote, escape) if c)
        self.delimiter = options.delimiter
        self.quote = options.quote
        self.escape = escape
        # A record inside one chunk is at most this long: below every limit, unchecked.
        self.floor = min(limits.max_field_bytes, limits.max_record_bytes)
        self.result = RecordCount()
        self.line = 1  # line of the next line read
        self._pending: list[str] = []  # an unfinished last line, in pieces
        self._pending_size = 0
        self._spill = 0  # bytes pulled from later chunks into the record being read
        self._supplied = 0  # lines handed to the csv reader
        self._plain = False  # count plain chunks without splitting them (CSV records only)
        self.sample_every = 0
        self.line_feeds: LineFeeds | None = None
        self._plain_chunks = 0
        # csv refuses fields above its (process-wide) limit: allow up to the record limit.
        if csv.field_size_limit() < limits.max_record_bytes:
            csv.field_size_limit(limits.max_record_bytes)

    # ------------------------------------------------------------ splitting into lines

    def chunks(self, texts: Iterator[str]) -> Iterator[tuple[bool, list[str]]]:
        """Complete lines, a chunk at a time, with whether the chunk holds a quote or escape."""
        first = True
        for piece in texts:
            if not piece:
                continue
            feeds = self.line_feeds() if self.line_feeds is not None else None
            if first:  # a byte-order mark is no part of the first field
                piece, first = piece.removeprefix("\ufeff"), False
            if not self._line_ends(piece, feeds):
                self._hold(piece)  # no complete line yet: never re-split a growing line
                continue
            if self._plain and self._count_plain(piece, feeds):
                continue
            text = "".join([*self._pending, piece])
            self._pending, self._pending_size = [], 0
            lines = _split_lines(text)
            if _maybe_unfinished(lines[-1]):
                self._hold(lines.pop())
            if lines:
                self._note_breaks(text)
                yield any(c in text for c in self.specials), lines
        if self._pending:
            last = "".join(self._pending)
            self._note_breaks(last)
            yield any(c in last for c in self.specials), [last]

    def _line_ends(self, piece: str, feeds: int | None) -> bool:
        """Whether a line ends in ``piece`` (holding ``feeds`` LF, counted when ``None``):
        a CR that ended the held text counts, not a last CR."""
        after_cr = bool(self._pending) and self._pending[-1].endswith("\r")
        has_lf = bool(feeds) if feeds is not None else "\n" in piece
        return after_cr or has_lf or "\r" in piece[:-1]

    def _hold(self, text: str) -> None:
        self._pending.append(text)
        self._pending_size += len(text)
        if self._pending_size > self.limits.max_record_bytes:  # chars <= UTF-8 bytes
            self._oversize("record", self.line, self._pending_size, None, exact=False)

    def _note_breaks(self, text: str) -> None:
        if "\r" not in text:
            self.result.line_breaks.add("LF")
            return
        crlf = text.count("\r\n")
        if crlf:
            self.result.line_breaks.add("CRLF")
        if text.count("\n") > crlf:
            self.result.line_breaks.add("LF")
        if text.count("\r") > crlf:
            self.result.line_breaks.add("CR")

    def _count_plain(self, piece: str, feeds: int | None) -> bool:
        """Count the held start of a line and ``piece`` (holding ``feeds`` LF, counted when
        ``None``) as a chunk of whole LF lines without quotes, blank lines or long lines, in
        C and without joining or splitting them; whether it was (else the caller splits
        the chunk into lines). The held text holds no LF: it is an unfinished line."""
        head = "".join(self._pending)
        if (
            self.result.header is None
            or self.one_column
            or (len(head) + len(piece)) * _MAX_UTF8_PER_CHAR > self.floor  # a long line?
            or "\r" in piece
            or "\r" in head
            or any(c in piece or c in head for c in self.specials)
            or (not head and piece.startswith("\n"))
            or _BLANK_LINE.search(piece) is not None  # a regex finds it faster than `in`
            or _other_breaks(piece)
            or _other_breaks(head)
        ):
            return False
        cut = piece.rfind("\n") + 1
        lines = feeds if feeds is not None else piece.count("\n", 0, cut)
        self._pending, self._pending_size = [], 0
        if cut < len(piece):
            self._hold(piece[cut:])
        if self._sampled(len(head) + cut):
            self.result.sample.append(head + piece[:cut])
        self.result.line_breaks.add("LF")
        self.result.records += lines
        self.line += lines
        return True

    def _sampled(self, size: int) -> bool:
        """Whether the sample takes this chunk of whole records, ``size`` characters long
        (counted as one more); a chunk grown past two read chunks is never taken."""
        self._plain_chunks += 1
        return (
            self.sample_every > 0
            and not self.one_column
            and size <= _SAMPLE_PIECE_CHARS
            and self._plain_chunks % self.sample_every == 0
            and len(self.result.sample) < SAMPLE_PIECES
            and sum(map(len, self.result.sample)) + size <= _SAMPLE_CHARS
        )

    # ------------------------------------------------------------ counting

    def run(self, texts: Iterator[str]) -> None:
        self._plain = True
        chunks = self.chunks(texts)
        for special, lines in chunks:
            if self.result.header is None:
                self._exact(lines, chunks)
            elif not special:
                self._fast(lines)
            elif not self._quoted(lines):
                self._exact(lines, chunks)

    def _quoted(self, lines: list[str]) -> bool:
        """Count a chunk with quotes in C when it is small and every record in it is whole.

        A strict reader raises on anything irregular (text after a closing quote, a
        quoted value running past the chunk); the caller then reads it row by row.
        """
        if self.one_column or sum(map(len, lines)) * _MAX_UTF8_PER_CHAR > self.floor:
            return False
        try:  # a blank line reads as [], no record
            records = sum(map(bool, self._reader(lines, strict=True)))
        except csv.Error:
            return False
        self.result.records += records
        self.line += len(lines)
        if self._sampled(sum(map(len, lines))):
            self.result.sample.append("".join(lines))
        return True

    def _reader(self, lines: Iterable[str], *, strict: bool) -> Iterator[list[str]]:
        """A :mod:`csv` reader in the file's dialect; ``strict`` raises on irregular quoting."""
        return csv.reader(
            lines,
            delimiter=self.delimiter,
            quotechar=self.quote,
            escapechar=self.escape,
            doublequote=self.escape is None,
            strict=strict,
        )

    def _fast(self, lines: list[str]) -> None:
        """Lines without quotes or escapes: each non-blank line is one record."""
        blank = sum(lines.count(b) for b in _BLANK_LINES)
        self.result.records += len(lines) if self.one_column else len(lines) - blank
        if max(map(len, lines)) * _MAX_UTF8_PER_CHAR > self.floor:
            for offset, line in enumerate(lines):
                if len(line) * _MAX_UTF8_PER_CHAR > self.floor:
                    text = line.rstrip("\r\n")
                    self._check_record(text.split(self.delimiter), _utf8(text), self.line + offset)
        self.line += len(lines)
        if self._sampled(sum(map(len, lines))):
            self.result.sample.append("".join(lines))

    def _exact(self, lines: list[str], chunks: Iterator[tuple[bool, list[str]]]) -> None:
        """Split records with :mod:`csv` until a record ends where the supplied lines end."""
        base, self._supplied, self._spill = self.line, len(lines), 0
        small = max(map(len, lines)) * _MAX_UTF8_PER_CHAR <= self.floor
        reader = self._reader(chain(lines, self._more(chunks)), strict=False)
        self._plain = False  # chunks pulled for a record running on are its lines
        try:
            self._read(reader, base, small)
        except csv.Error as exc:  # its field limit is the record limit
            if "field larger than field limit" not in str(exc):
                raise
            limit = self.limits.max_record_bytes
            self._oversize("field", self.line, limit, None, exact=False)
        finally:
            self._plain = True

    def _read(self, reader: Any, base: int, small: bool) -> None:
        records = 0
        count_blank = self.one_column
        for row in reader:
            start = self.line
            spanned = reader.line_num - (start - base) > 1
            self.line = base + reader.line_num
            if self.result.header is None:
                self._first(row, start)
            elif row or count_blank:
                records += 1
            if spanned or not small or self._spill:
                size = sum(map(_utf8, row)) + max(0, len(row) - 1)
                self.result.records += records
                records = 0
                self._check_record(row, size, start)
                self._spill = 0
            if reader.line_num == self._supplied:
                break
        self.result.records += records

    def _more(self, chunks: Iterator[tuple[bool, list[str]]]) -> Iterator[str]:
        """Lines of the next chunks, for a record that goes on past the supplied ones.

        The reader asks for a chunk only when the record it reads needs all the
        lines before it: pulled chunks already read belong to that record whole, so
        once they pass the record limit the record is refused, holding at most one
        chunk more.
        """
        for _, lines in chunks:
            if self._spill > self.limits.max_record_bytes:  # characters <= UTF-8 bytes
                self._oversize("record", self.line, self._spill, None, exact=False)
            self._spill += sum(map(len, lines))
            self._supplied += len(lines)
            yield from lines

    def _first(self, row: list[str], line: int) -> None:
        if not (row or self.has_header or self.one_column):
            return  # a blank line before the first record of a file without a header
        self.result.header = row
        if not self.has_header:
            self.result.records += 1
        if len(row) > self.limits.max_columns:
            self._oversize("columns", line, len(row), None)

    def _check_record(self, fields: list[str], size: int, line: int) -> None:
        if size > self.limits.max_record_bytes:
            self._oversize("record", line, size, None)
        if size > self.limits.max_field_bytes:
            for position, value in enumerate(fields, start=1):
                length = _utf8(value)
                if length > self.limits.max_field_bytes:
                    self._oversize("field", line, length, position)

    def _oversize(
        self,
        what: Literal["field", "record", "columns"],
        line: int,
        size: int,
        column: int | None,
        *,
        exact: bool = True,
    ) -> None:
        limit = {
            "field": self.limits.max_field_bytes,
            "record": self.limits.max_record_bytes,
            "columns": self.limits.max_columns,
        }[what]
        self.result.oversize = Oversize(what, line, size, limit, column, exact)
        raise _LimitError


def _split_lines(text: str) -> list[str]:
    """``text`` split after each CR, LF or CRLF, line breaks kept."""
    others = _OTHER_ASCII_BREAKS if text.isascii() else _OTHER_BREAKS
    if not any(c in text for c in others):  # `in` is much faster than a regex search here
        return text.splitlines(keepends=True)
    return _LINE.findall(text)


def _other_breaks(text: str) -> bool:
    """Whether ``text`` holds a line break of :meth:`str.splitlines` that is no CSV one."""
    return any(c in text for c in (_OTHER_ASCII_BREAKS if text.isascii() else _OTHER_BREAKS))


def _maybe_unfinished(line: str) -> bool:
    """A last line without a break, or ending in CR (its LF may open the next piece)."""
    return not line.endswith(_LINE_BREAK_ENDINGS) or line.endswith("\r")


def _utf8(text: str) -> int:
    """Bytes of ``text`` in UTF-8."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
