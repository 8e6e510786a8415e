"""What every archive format shares: the :class:`ArchiveFormat` interface, the members it
yields, the declared :class:`Packing`, and the checks every member walk makes (path
traversal, duplicates, the ratio limit, library errors as reason-coded refusals).

A format's walk gets one :class:`Layer`: the archive being opened (its bytes, name, depth
and declared packing) and the :class:`~file_processing.archives.session.Session`, which
holds the delivery's byte and entry budgets and spools each member under them, so no
format counts bytes or entries of its own.
"""

from __future__ import annotations

import lzma
import re
import struct
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from file_processing.errors import RefusedError
from file_processing.limits import MIB, UnpackLimits
from file_processing.reasons import Reason
from file_processing.sniff import SNIFF_SIZE, Kind

if TYPE_CHECKING:
    from file_processing.archives.session import Session

__all__ = [
    "CHUNK_SIZE",
    "STREAM_ERRORS",
    "ArchiveFormat",
    "Layer",
    "Member",
    "Packing",
    "Peeked",
    "Readable",
    "check_ratio",
    "check_unique",
    "hand_over",
    "member_name",
    "refusal",
    "seekable",
]

CHUNK_SIZE = MIB
"""Bytes copied per read: the most of any member held in memory at once."""

STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
    struct.error,
)
"""What the standard library's decompressing readers raise on broken input."""

_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


class Packing(StrEnum):
    """How a dataset contract says its deliveries are packed."""

    AUTO = "auto"
    NONE = "none"
    ZIP = "zip"
    GZIP = "gzip"
    TAR = "tar"


@dataclass(frozen=True)
class Member:
    """One regular file taken out of a delivery.

    Attributes:
        path: Member name under the delivery's name, e.g. ``pos_20240101.zip/data/a.csv``.
        size: Bytes actually extracted.
        file: Temporary file holding the bytes. It belongs to the iterator and is
            removed when the iterator advances or closes: move or copy it to keep it.
    """

    path: str
    size: int
    file: Path

    def open(self) -> BinaryIO:
        """Open the member's bytes for reading."""
        return self.file.open("rb")


class Readable(Protocol):
    """Anything read from front to back: a file, a decompressor, a :class:`Peeked`."""

    def read(self, size: int = -1, /) -> bytes: ...


class Peeked:
    """A stream whose head was read for sniffing, readable again from its start."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.head = _read_up_to(stream, SNIFF_SIZE)
        self._pending = self.head

    def read(self, size: int = -1, /) -> bytes:
        if self._pending:
            if size < 0 or size >= len(self._pending):
                data, self._pending = self._pending, b""
            else:
                data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self._stream.read(size)


def _read_up_to(stream: Readable, size: int) -> bytes:
    parts: list[bytes] = []
    wanted = size
    while wanted > 0:
        data = stream.read(wanted)
        if not data:
            break
        parts.append(data)
        wanted -= len(data)
    return b"".join(parts)


class ArchiveFormat(ABC):
    """One format the unpacker opens: a container (zip, tar) or a single-stream compressor
    (gzip, bzip2, xz), registered in :data:`file_processing.archives.ARCHIVE_FORMATS`.

    Attributes:
        kind: The content that picks it: what :func:`~file_processing.sniff.sniff` finds
            in the magic bytes (never the name; only a tar of no entries, which has no
            magic, is told by its name or packing: ``Session.kind_of``). The registry's
            key is ``kind.value``.
        packings: The packings a contract may declare (``Contract.packing``) that this
            content satisfies: a gzip stream is ``gzip``, and ``tar`` when it wraps one.
        suffixes: Lower-case name endings that promise this format: plain content under
            such a name is refused as a corrupt archive.
    """

    kind: Kind
    packings: frozenset[str]
    suffixes: tuple[str, ...]

    @property
    def name(self) -> str:
        """The format's name, its key in the registry: the :class:`Kind`'s value."""
        return self.kind.value

    @abstractmethod
    def members(self, layer: Layer) -> Iterator[Member]:
        """Yield the members of the archive ``layer`` holds, nested archives opened.

        Each entry is counted (``layer.session.count_entry``), its name checked
        (:func:`member_name`, :func:`check_unique`), its bytes copied by
        ``layer.session.spool`` (which enforces the size and ratio limits) and handed on by
        :meth:`Layer.settle` (which opens it when it is itself an archive). Links, special
        files and anything broken raise :class:`~file_processing.errors.RefusedError`
        naming the member.
        """


@dataclass(frozen=True)
class Layer:
    """One archive layer being opened: all a format's :meth:`ArchiveFormat.members` reads.

    Attributes:
        session: The delivery's walk: limits, budgets and scratch files, every layer's.
        source: The archive's bytes from their start (the sniffed head included), read
            front to back; a read may return fewer bytes than asked before the end
            (:meth:`read_exactly` loops).
        name: The archive's path in the delivery; member paths start with it.
        depth: How deeply this archive is nested (the delivery itself is 1).
        packing: The packing the contract declares (``AUTO`` below the first layer).
        file: The same bytes as a file that can seek, positioned anywhere, when there is
            one (a delivery read from its start, a member spooled to scratch); ``None``
            for a stream that cannot seek, or bytes decompressed on the way
            (:meth:`seekable_file` copies those to scratch).
    """

    session: Session
    source: Readable
    name: str
    depth: int
    packing: Packing = Packing.AUTO
    file: BinaryIO | None = None

    def read_exactly(self, size: int, member: str | None = None) -> bytes:
        """The next ``size`` bytes of ``source``, held in memory (a header, a chunk).

        ``source.read(n)`` may return fewer than ``n`` bytes before the end, as any
        stream's: the sniffed head is handed back first, a pipe or a decompressor hands
        over what it has. This reads until it has them, and refuses bytes ending first as
        :attr:`~file_processing.reasons.Reason.ARCHIVE_TRUNCATED`, naming ``member`` (the
        layer when ``None``).
        """
        data = _read_up_to(self.source, size)
        if len(data) < size:
            raise RefusedError(
                Reason.ARCHIVE_TRUNCATED,
                f"the archive ends after {len(data)} of the {size} bytes expected",
                member=self.name if member is None else member,
            )
        return data

    @contextmanager
    def seekable_file(self, fmt: str) -> Iterator[BinaryIO]:
        """The layer's bytes as a file that can seek, for a format that must (a directory
        at the end, as zip's): ``file`` when there is one, else ``source`` copied to a
        scratch file, refused past the delivery's total limit naming the layer (``fmt``
        names the format in the message) and removed on leaving."""
        if self.file is not None:
            yield self.file
            return
        limit = self.session.limits.max_total_bytes
        path = self.session.new_file()
        size = 0
        try:
            with path.open("xb") as out:
                while chunk := self.source.read(CHUNK_SIZE):
                    size += len(chunk)
                    if size > limit:
                        raise RefusedError(
                            Reason.ARCHIVE_TOO_LARGE,
                            f"{fmt} archive larger than {limit} bytes",
                            member=self.name,
                        )
                    out.write(chunk)
            with path.open("rb") as fh:
                yield fh
        finally:
            path.unlink(missing_ok=True)

    def settle(self, file: Path, size: int, path: str) -> Iterator[Member]:
        """Hand over a member of this layer spooled to ``file`` (``size`` bytes, named
        ``path``), or open it as the next layer when it is itself an archive."""
        return self.session.settle(file, size, path, self.depth)


def member_name(raw: str, archive: str) -> str:
    """Normalise an archive member name, refusing anything that could escape a directory."""
    text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    problem = None
    if "\\" in text:
        problem = "contains a backslash"
    elif "\x00" in text:
        problem = "contains a NUL byte"
    elif text.startswith("/"):
        problem = "is absolute"
    elif _DRIVE_LETTER.match(text):
        problem = "starts with a drive letter"
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if problem is None and ".." in parts:
        problem = "has a '..' component"
    if problem is not None:
        raise RefusedError(
            Reason.ARCHIVE_PATH_TRAVERSAL,
            f"member name {raw!r} {problem}",
            member=f"{archive}/{text}",
        )
    return "/".join(parts)


def check_unique(path: str, seen: set[str], member_path: str) -> None:
    """Refuse a file member with an empty name or a path an earlier entry had."""
    if not path:
        raise RefusedError(
            Reason.ARCHIVE_CORRUPT, "a file member has an empty name", member=member_path
        )
    if path in seen:
        raise RefusedError(
            Reason.ARCHIVE_DUPLICATE_ENTRY, "two entries have this path", member=member_path
        )
    seen.add(path)


def refusal(exc: BaseException, fmt: str, member: str) -> RefusedError:
    """Translate a library exception about broken input into a reason-coded refusal."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, EOFError) or any(
        marker in lowered for marker in ("unexpected end", "ended before", "truncated")
    ):
        reason = Reason.ARCHIVE_TRUNCATED
    elif "crc" in lowered:
        reason = Reason.ARCHIVE_CRC
    elif "overlap" in lowered:
        reason = Reason.ARCHIVE_OVERLAPPING_ENTRIES
    elif "encrypted" in lowered or "password" in lowered:
        reason = Reason.ARCHIVE_ENCRYPTED
    elif "compression" in lowered and (
        isinstance(exc, NotImplementedError) or "not supported" in lowered
    ):
        reason = Reason.ARCHIVE_UNSUPPORTED_COMPRESSION
    elif isinstance(exc, NotImplementedError) or "not supported" in lowered or "disks" in lowered:
        reason = Reason.ARCHIVE_UNSUPPORTED_FORMAT
    else:
        reason = Reason.ARCHIVE_CORRUPT
    return RefusedError(reason, f"{fmt}: {text}", member=member)


def check_ratio(produced: int, consumed: int, limits: UnpackLimits, path: str) -> None:
    """Refuse ``produced`` bytes out of ``consumed`` compressed ones beyond the ratio limit."""
    if produced > limits.ratio_floor_bytes and produced > limits.max_ratio * max(consumed, 1):
        raise RefusedError(
            Reason.ARCHIVE_RATIO,
            f"{produced} bytes out of {consumed} compressed exceeds the ratio limit "
            f"of {limits.max_ratio:g}:1",
            member=path,
        )


def hand_over(member: Member) -> Iterator[Member]:
    """Yield ``member``, then remove its file (the caller had its turn)."""
    yield member
    member.file.unlink(missing_ok=True)


def seekable(stream: BinaryIO) -> bool:
    """Whether ``stream`` can seek (a pipe or socket cannot; some wrappers lack the method)."""
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False
