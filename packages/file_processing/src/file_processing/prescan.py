"""One streaming pass over a data file before the engine reads it.

In fixed-size chunks, whatever the file size, it validates the text encoding
(recording the byte offset and line of each bad sequence), hashes the bytes for
a checksum sidecar, reads the header line, finds a trailer record and, for a
delimited file, counts its records (:mod:`.records`) independently of the
engine and holds them to the size limits. When the
engine cannot read the file as it is (a trailer record to leave out, an
encoding other than UTF-8) it writes a UTF-8 copy without the trailer in the
same pass.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

from file_processing.records import LineFeeds, RecordCount
from file_processing.report import EncodingIssue

__all__ = ["CHUNK_SIZE", "Prescan", "RecordCounter", "Trailer", "prescan", "utf8_compatible"]

CHUNK_SIZE = 1 << 20
_TAIL_SIZE = 64 * 1024
_UTF8_NAMES = frozenset({"utf-8", "ascii"})
_LINE_BREAK = re.compile("[\r\n]")

RecordCounter = Callable[[Iterable[str], LineFeeds], RecordCount]
"""Counts the records of the decoded text, told the LF characters of each piece when the
pass knows them (see :func:`file_processing.records.count_records`)."""


@dataclass(frozen=True)
class Trailer:
    """The last non-empty line of the file and where it starts."""

    text: str
    byte_offset: int
    line: int


@dataclass
class Prescan:
    """What the pass found.

    Attributes:
        size: Bytes in the file.
        lines: Line breaks in the file (a last line without one counts too).
        digest: Hex digest of the whole file, when a hash algorithm was asked for.
        header: The first line (up to CR or LF), decoded, a byte-order mark removed.
        trailer: The trailer record, when one was asked for and the file has lines.
        encoding_errors: The first bad sequences (up to the sample limit).
        encoding_error_count: All bad sequences.
        data_path: The file the engine should read: the input itself, or the copy.
        records: The independent record count, when a counter was given.
        nul: Whether the decoded data holds a NUL character; ``None`` when it was not
            decoded (binary formats). A CSV without one needs no NUL screen.
    """

    size: int = 0
    lines: int = 0
    digest: str | None = None
    header: str | None = None
    trailer: Trailer | None = None
    encoding_errors: list[EncodingIssue] = field(default_factory=list)
    encoding_error_count: int = 0
    data_path: Path = Path()
    records: RecordCount | None = None
    nul: bool | None = None


def utf8_compatible(encoding: str) -> bool:
    """Whether text in ``encoding`` is already valid UTF-8 (so it needs no transcoding)."""
    return codecs.lookup(encoding).name in _UTF8_NAMES


def prescan(
    path: Path,
    *,
    encoding: str | None,
    hash_algorithm: str | None = None,
    find_trailer: bool = False,
    copy_to: Path | None = None,
    max_samples: int = 20,
    count_records: RecordCounter | None = None,
) -> Prescan:
    """Scan ``path`` once; see the module docstring.

    Args:
        path: The data file.
        encoding: The declared text encoding, or ``None`` for binary formats
            (no decoding, no header, no trailer).
        hash_algorithm: ``sha256``/``md5`` to compute the file's digest.
        find_trailer: Locate the last non-empty line as a trailer record.
        copy_to: Write the data (without the trailer, as UTF-8) here; the result's
            ``data_path`` then names it. Needed for a trailer or a non-UTF-8 encoding.
        max_samples: Encoding errors kept with their offsets (all are counted).
        count_records: Counts the records of the text (read as the engine reads it:
            decoded, without the trailer); the result's ``records``. Text only. The
            line breaks of each chunk are counted once, on its bytes: for UTF-8 text
            the counter is told how many LF each piece holds.
    """
    result = Prescan(data_path=path)
    result.size = path.stat().st_size
    if find_trailer and encoding is not None:
        result.trailer = _find_trailer(path, encoding, result.size)
    end = result.trailer.byte_offset if result.trailer else result.size
    digest = hashlib.new(hash_algorithm) if hash_algorithm else None
    scanner = _TextScanner(encoding, max_samples) if encoding is not None else None
    if scanner is not None:
        result.nul = False
    feeds = _Feeds()
    with path.open("rb") as source:
        target = copy_to.open("wb") if copy_to is not None else None
        try:
            texts = _scan(source, end, result, digest, scanner, target, feeds)
            if count_records is not None and scanner is not None:
                result.records = count_records(texts, feeds)
            for _ in texts:  # what the counter left (nothing), or everything
                pass
        finally:
            if target is not None:
                target.close()
    if digest is not None:
        result.digest = digest.hexdigest()
    if scanner is not None:
        result.header = scanner.header
        result.encoding_errors = scanner.issues
        result.encoding_error_count = scanner.count
    if copy_to is not None:
        result.data_path = copy_to
    return result


def _scan(
    source: BinaryIO,
    end: int,
    result: Prescan,
    digest: Any,
    scanner: _TextScanner | None,
    target: BinaryIO | None,
    feeds: _Feeds,
) -> Iterator[str]:
    """Read, hash and copy the file; yield the decoded text of its data part, with the LF
    characters of each piece in ``feeds`` when the text is UTF-8 (a byte 0x0A is then the
    character LF, and a bad sequence never takes one in)."""
    same_feeds = scanner is not None and scanner.encoding in _UTF8_NAMES
    position = 0
    data_newlines = 0
    last = b""
    while chunk := source.read(CHUNK_SIZE):
        if digest is not None:
            digest.update(chunk)
        newlines = chunk.count(b"\n")  # once per chunk: most chunks are all data
        result.lines += newlines
        last = chunk[-1:]
        data = chunk[: max(0, end - position)]
        if len(data) != len(chunk):
            newlines = data.count(b"\n")
        data_newlines += newlines
        if data and scanner is not None:
            text = scanner.feed(data, final=False, newlines=newlines)
            _write(target, scanner, text)
            result.nul = result.nul or "\x00" in text  # memchr: a fraction of the decoding
            feeds.last = newlines if same_feeds else None
            yield text
        elif data and target is not None:
            target.write(data)
        position += len(chunk)
    if scanner is not None:
        text = scanner.feed(b"", final=True)
        _write(target, scanner, text)
        result.nul = result.nul or "\x00" in text
        feeds.last = None
        yield text
    if last and last != b"\n":
        result.lines += 1
    if result.trailer is not None:
        result.trailer = replace(result.trailer, line=data_newlines + 1)


class _Feeds:
    """The LF characters in the piece of text :func:`_scan` yielded last, when known."""

    def __init__(self) -> None:
        self.last: int | None = None

    def __call__(self) -> int | None:
        return self.last


def _write(target: BinaryIO | None, scanner: _TextScanner, text: str) -> None:
    if target is not None and not scanner.count:  # a file with bad bytes is not read further
        target.write(text.encode("utf-8"))


class _TextScanner:
    """Incremental strict decoding that records bad bytes and keeps going."""

    def __init__(self, encoding: str, max_samples: int) -> None:
        self.encoding = codecs.lookup(encoding).name
        self.decoder = codecs.getincrementaldecoder(encoding)("strict")
        self.max_samples = max_samples
        self.offset = 0  # bytes fed so far
        self.line = 1  # line of the next byte fed
        self.issues: list[EncodingIssue] = []
        self.count = 0
        self.header: str | None = None
        self._head: list[str] = []

    def feed(self, data: bytes, *, final: bool, newlines: int | None = None) -> str:
        """Decode ``data`` (holding ``newlines`` LF bytes, counted when ``None``)."""
        # An incomplete multi-byte sequence held back from the last chunk (never a newline).
        pending = self.decoder.getstate()[0]
        buffer = pending + data
        base = self.offset - len(pending)
        self.decoder.reset()
        pieces: list[str] = []
        start = 0
        while True:
            try:
                pieces.append(self.decoder.decode(buffer[start:], final))
                break
            except UnicodeDecodeError as exc:
                bad, after = start + exc.start, start + exc.end
                self._record(buffer, bad, after, base)
                pieces.append(buffer[start:bad].decode(self.encoding))
                start = after
                self.decoder.reset()
        self.offset += len(data)
        self.line += data.count(b"\n") if newlines is None else newlines
        text = "".join(pieces)
        self._keep_header(text)
        return text

    def _record(self, buffer: bytes, bad: int, after: int, base: int) -> None:
        self.count += 1
        if len(self.issues) >= self.max_samples:
            return
        self.issues.append(
            EncodingIssue(
                byte_offset=base + bad,
                line=self.line + buffer[:bad].count(b"\n"),
                bytes_hex=buffer[bad:after].hex(),
                message=f"not valid {self.encoding}",
            )
        )

    def _keep_header(self, text: str) -> None:
        if self.header is not None:
            return
        self._head.append(text)
        joined = "".join(self._head)
        newline = _LINE_BREAK.search(joined)  # a CR-only file breaks its lines with CR alone
        if newline is not None or len(joined) > CHUNK_SIZE:
            end = newline.start() if newline is not None else None
            self.header = joined[:end].lstrip("\ufeff")
            self._head = []


def _find_trailer(path: Path, encoding: str, size: int) -> Trailer | None:
    """The last non-empty line, read from the file's tail; its line is set by the scan."""
    with path.open("rb") as source:
        start = max(0, size - _TAIL_SIZE)
        source.seek(start)
        tail = source.read()
    stripped = tail.rstrip(b"\r\n")
    if not stripped:
        return None
    cut = stripped.rfind(b"\n") + 1
    if cut == 0 and start > 0:
        return None  # one line longer than the tail window: not a trailer record
    text = stripped[cut:].decode(encoding, errors="replace").rstrip("\r")
    return Trailer(text=text, byte_offset=start + cut, line=0)
