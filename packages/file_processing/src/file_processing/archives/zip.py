"""Zip archives: the central directory bounded before ``zipfile`` reads it, overlapping
entries (the overlapping-entry bomb), encrypted entries, links and special files refused;
deflated entries inflated by ISA-L when it is installed, and the delivery's first entry
taken as it was inflated on arrival (:func:`zip_head_inflater`)."""

from __future__ import annotations

import functools
import importlib
import itertools
import logging
import lzma
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from file_processing.archives.base import (
    CHUNK_SIZE,
    ArchiveFormat,
    Layer,
    Member,
    check_unique,
    member_name,
    refusal,
)
from file_processing.archives.session import Session
from file_processing.errors import RefusedError
from file_processing.inflate_ahead import InflatedAhead, ZipHeadInflater
from file_processing.limits import UnpackLimits
from file_processing.reasons import Reason
from file_processing.sniff import Kind

__all__ = ["ZipFormat", "zip_head_inflater"]

logger = logging.getLogger(__name__)

_ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    RuntimeError,
    NotImplementedError,
    UnicodeDecodeError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    struct.error,
    ValueError,
    IndexError,
)
_SUPPORTED_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_ZIP_AES_METHOD = 99
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_MAX_CENTRAL_RECORD = 4096  # generous bytes per central-directory record when bounding its size


def zip_head_inflater(target: Path, limits: UnpackLimits) -> ZipHeadInflater | None:
    """A :class:`~file_processing.inflate_ahead.ZipHeadInflater` staging to ``target``,
    for :func:`~file_processing.unpack.unpack`'s ``ahead``; ``None`` where ISA-L is not
    installed (the entry would be inflated by ``zipfile``, which nothing ahead stands for)."""
    inflater = _fast_inflater()
    if inflater is None:
        return None
    return ZipHeadInflater(inflater, target, limits, chunk=CHUNK_SIZE)


class ZipFormat(ArchiveFormat):
    """A zip archive (``PK`` magic), read through its central directory; a zip from a
    non-seekable stream is spooled to disk first, since that directory sits at its end."""

    kind = Kind.ZIP
    packings = frozenset({"zip"})
    suffixes = (".zip",)

    def members(self, layer: Layer) -> Iterator[Member]:
        """Yield the zip's file members in directory order, after its layout is checked."""
        session, name = layer.session, layer.name
        with ExitStack() as stack:
            fp = stack.enter_context(layer.seekable_file(self.name))
            self._precheck_zip(session, fp, name)
            archive = stack.enter_context(_open_zip(fp, name))
            infos = archive.infolist()
            session.check_entry_budget(len(infos), name)
            _check_zip_layout(fp, infos, archive.start_dir, name)
            seen: set[str] = set()
            for info in infos:
                path = member_name(info.filename, name)
                member_path = f"{name}/{path}"
                session.count_entry(member_path)
                file_mode = info.external_attr >> 16
                if info.is_dir() or stat.S_ISDIR(file_mode):
                    continue
                _check_zip_entry(info, file_mode, member_path, session.limits)
                check_unique(path, seen, member_path)
                first = layer.depth == 1 and layer.file is not None  # the delivery's own zip
                file, size = self._extract_zip(session, archive, fp, info, member_path, first=first)
                yield from layer.settle(file, size, member_path)

    def _precheck_zip(self, session: Session, fp: BinaryIO, name: str) -> None:
        """Refuse an oversized central directory before zipfile reads it into memory."""
        declared = _declared_zip_entries(fp)
        if declared is None:
            return  # zipfile reports the damage itself
        count, directory_size = declared
        session.check_entry_budget(count, name)
        budget = (session.limits.max_entries - session.entries) * _MAX_CENTRAL_RECORD
        if directory_size > budget:
            raise RefusedError(
                Reason.ARCHIVE_TOO_MANY_ENTRIES,
                f"zip central directory of {directory_size} bytes is too large "
                f"for {session.limits.max_entries} entries",
                member=name,
            )

    def _extract_zip(
        self,
        session: Session,
        archive: zipfile.ZipFile,
        fp: BinaryIO,
        info: zipfile.ZipInfo,
        member_path: str,
        *,
        first: bool = False,
    ) -> tuple[Path, int]:
        try:
            handle = archive.open(info)
        except _ZIP_ERRORS as exc:
            raise refusal(exc, "zip", member_path) from exc
        with handle:
            fast = (
                self._take_ahead(session, fp, info, member_path) if first else None
            ) or self._inflate_fast(session, fp, info, member_path)
            if fast is not None:
                return fast

            def read(size: int) -> bytes:
                try:
                    return handle.read(size)
                except _ZIP_ERRORS as exc:
                    raise refusal(exc, "zip", member_path) from exc

            return session.spool(read, member_path, compressed=max(info.compress_size, 1))

    def _take_ahead(
        self, session: Session, fp: BinaryIO, info: zipfile.ZipInfo, member_path: str
    ) -> tuple[Path, int] | None:
        """The entry inflated as the zip arrived, when it is exactly this one and within the
        limits, as :meth:`_inflate_fast` would have accepted it; anything else is left to
        that path (whose verdict stands) and the file inflated ahead is removed."""
        ahead, session.ahead = session.ahead, None
        if ahead is None:
            return None
        taken = None
        try:
            if _is_entry(fp, info, ahead) and _fits(session, ahead.size, info, member_path):
                taken = session.new_file()
                os.replace(ahead.file, taken)
                session.total_bytes += ahead.size
        except OSError as exc:
            logger.debug("entry inflated ahead not taken: %s", exc)
            taken = None
        finally:
            if taken is None:
                ahead.file.unlink(missing_ok=True)
        return None if taken is None else (taken, ahead.size)

    def _inflate_fast(
        self, session: Session, fp: BinaryIO, info: zipfile.ZipInfo, member_path: str
    ) -> tuple[Path, int] | None:
        """A deflated entry inflated by ISA-L (when installed), accepted only when it ends
        exactly as its directory record says (size, CRC); anything else, a refusal
        included, is undone and left to ``zipfile``, whose verdict stands as before."""
        inflater = _fast_inflater()
        if inflater is None or info.compress_type != zipfile.ZIP_DEFLATED:
            return None
        total = session.total_bytes
        undone: tuple[type[BaseException], ...] = (
            _NotAsDeclaredError,
            RefusedError,
            inflater.error,
            *_ZIP_ERRORS,
        )
        try:
            reader = _FastDeflate(inflater, fp, info)
            return session.spool(reader.read, member_path, compressed=max(info.compress_size, 1))
        except undone as exc:
            logger.debug("%s: inflated again by zipfile (%s)", member_path, exc)
        session.total_bytes = total
        return None


# ------------------------------------------------------------------ fast inflate


class _Inflater(Protocol):
    error: type[Exception]

    def decompressobj(self, wbits: int) -> Any: ...

    def crc32(self, data: bytes, value: int = 0, /) -> int: ...


class _NotAsDeclaredError(Exception):
    """A deflated entry that does not end as its directory record says."""


@functools.cache
def _fast_inflater() -> _Inflater | None:
    """ISA-L's zlib-compatible inflate and CRC-32 (``isal``), about 2.5 times ``zlib``'s
    speed, or ``None`` where it is not installed."""
    try:
        return cast(_Inflater, importlib.import_module("isal.isal_zlib"))
    except ImportError:
        return None


class _FastDeflate:
    """The inflated bytes of one deflated zip entry, read straight from the archive
    after its local header; raises :class:`_NotAsDeclaredError` at the end unless the stream
    ended with exactly the entry's declared size and CRC."""

    def __init__(self, inflater: _Inflater, fp: BinaryIO, info: zipfile.ZipInfo) -> None:
        fp.seek(info.header_offset)
        header = fp.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size:
            raise _NotAsDeclaredError("local header cut short")
        fields = _LOCAL_HEADER.unpack(header)
        fp.seek(info.header_offset + _LOCAL_HEADER.size + fields[10] + fields[11])
        self._fp = fp
        self._info = info
        self._inflater = inflater
        self._stream = inflater.decompressobj(-15)
        self._left = info.compress_size
        self._crc = 0
        self._produced = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` inflated bytes (``size`` unless the entry ends)."""
        parts: list[bytes] = []
        wanted = size
        while wanted > 0 and not self._stream.eof:
            data = self._stream.unconsumed_tail or self._compressed()
            out = self._stream.decompress(data, wanted)
            wanted -= len(out)
            parts.append(out)
        chunk = b"".join(parts)
        self._crc = self._inflater.crc32(chunk, self._crc)
        self._produced += len(chunk)
        if not chunk:
            self._check_end()
        return chunk

    def _compressed(self) -> bytes:
        if self._left <= 0:
            raise _NotAsDeclaredError("the deflate stream runs past the entry's compressed size")
        data = self._fp.read(min(self._left, CHUNK_SIZE))
        if not data:
            raise _NotAsDeclaredError("the archive ends inside the entry")
        self._left -= len(data)
        return data

    def _check_end(self) -> None:
        info = self._info
        if self._produced != info.file_size or self._crc != info.CRC:
            raise _NotAsDeclaredError(
                f"{self._produced} bytes with CRC {self._crc:08x}, declared "
                f"{info.file_size} bytes with CRC {info.CRC:08x}"
            )


def _fits(session: Session, size: int, info: zipfile.ZipInfo, member_path: str) -> bool:
    """Whether an entry of ``size`` bytes passes the limits ``session.spool`` enforces
    (its own checks: :meth:`~file_processing.archives.session.Session.check_member`)."""
    try:
        session.check_member(
            size, member_path, compressed=max(info.compress_size, 1), uncounted=size
        )
    except RefusedError:
        return False
    return True


def _is_entry(fp: BinaryIO, info: zipfile.ZipInfo, ahead: InflatedAhead) -> bool:
    """Whether ``ahead`` is the zip entry ``info`` inflated: the deflated entry at offset 0,
    its data where its local header says, its stream ending within its compressed size,
    with its declared size and CRC-32 (what :class:`_FastDeflate` accepts)."""
    if info.header_offset != 0 or info.compress_type != zipfile.ZIP_DEFLATED:
        return False
    fp.seek(0)
    header = fp.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size:
        return False
    fields = _LOCAL_HEADER.unpack(header)
    return (
        _LOCAL_HEADER.size + fields[10] + fields[11] == ahead.data_start
        and ahead.consumed <= info.compress_size
        and ahead.size == info.file_size
        and ahead.crc == info.CRC
    )


# ----------------------------------------------------------------------- checks


@contextmanager
def _open_zip(fp: BinaryIO, name: str) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(fp)
    except _ZIP_ERRORS as exc:
        if isinstance(exc, zipfile.BadZipFile) and str(exc) == "File is not a zip file":
            raise RefusedError(
                Reason.ARCHIVE_TRUNCATED,
                "zip: no end-of-central-directory record (the archive is cut short)",
                member=name,
            ) from exc
        raise refusal(exc, "zip", name) from exc
    with archive:
        yield archive


def _check_zip_entry(
    info: zipfile.ZipInfo, mode: int, member_path: str, limits: UnpackLimits
) -> None:
    file_type = stat.S_IFMT(mode)
    if file_type == stat.S_IFLNK:
        raise RefusedError(Reason.ARCHIVE_LINK, "symbolic link", member=member_path)
    # A FIFO mode is what the zip CLI records for data it read from a pipe
    # (`... | zip - -`); a zip entry always carries its bytes, and nothing here
    # creates special files, so it is read as data. Devices and sockets are not.
    if file_type not in (0, stat.S_IFREG, stat.S_IFIFO):
        raise RefusedError(
            Reason.ARCHIVE_SPECIAL_FILE, f"special file (mode {mode:o})", member=member_path
        )
    if info.flag_bits & 0x1 or info.compress_type == _ZIP_AES_METHOD:
        raise RefusedError(
            Reason.ARCHIVE_ENCRYPTED, "entry is password-encrypted", member=member_path
        )
    if info.compress_type not in _SUPPORTED_ZIP_METHODS:
        raise RefusedError(
            Reason.ARCHIVE_UNSUPPORTED_COMPRESSION,
            f"zip compression method {info.compress_type} is not supported",
            member=member_path,
        )
    if info.file_size > limits.max_member_bytes:
        raise RefusedError(
            Reason.ARCHIVE_TOO_LARGE,
            f"entry declares {info.file_size} bytes; the limit is {limits.max_member_bytes}",
            member=member_path,
        )


def _check_zip_layout(
    fp: BinaryIO, infos: list[zipfile.ZipInfo], central_directory: int, name: str
) -> None:
    """Refuse entries whose data overlap each other or the central directory.

    Several directory records pointing into the same bytes is the overlapping-entry
    zip bomb; Python 3.11's zipfile does not notice it.
    """
    spans: list[tuple[int, int, str]] = []
    try:
        for info in infos:
            fp.seek(info.header_offset)
            raw = fp.read(_LOCAL_HEADER.size)
            if len(raw) < _LOCAL_HEADER.size:
                raise RefusedError(
                    Reason.ARCHIVE_TRUNCATED,
                    "zip: local header cut short",
                    member=f"{name}/{info.filename}",
                )
            fields = _LOCAL_HEADER.unpack(raw)
            if fields[0] != b"PK\x03\x04":
                raise RefusedError(
                    Reason.ARCHIVE_CORRUPT,
                    f"zip: no local header at offset {info.header_offset}",
                    member=f"{name}/{info.filename}",
                )
            end = (
                info.header_offset
                + _LOCAL_HEADER.size
                + fields[10]
                + fields[11]
                + info.compress_size
            )
            spans.append((info.header_offset, end, info.filename))
    except (OSError, ValueError) as exc:
        raise refusal(exc, "zip", name) from exc
    spans.sort()
    for (_, end, first), (start, _, second) in itertools.pairwise(spans):
        if start < end:
            raise RefusedError(
                Reason.ARCHIVE_OVERLAPPING_ENTRIES,
                f"zip: entry {second!r} starts inside the data of {first!r}",
                member=name,
            )
    if spans and spans[-1][1] > central_directory:
        raise RefusedError(
            Reason.ARCHIVE_OVERLAPPING_ENTRIES,
            f"zip: entry {spans[-1][2]!r} runs into the central directory",
            member=name,
        )


def _declared_zip_entries(fp: BinaryIO) -> tuple[int, int] | None:
    """Return (entries, central directory bytes) from the end records, or None if absent."""
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    tail_size = min(size, _EOCD.size + 0xFFFF)
    fp.seek(size - tail_size)
    tail = fp.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        return None
    record = _EOCD.unpack(tail[at : at + _EOCD.size])
    count, directory_size = record[4], record[5]
    locator_at = at - _ZIP64_LOCATOR.size
    if locator_at >= 0 and tail[locator_at : locator_at + 4] == b"PK\x06\x07":
        offset = _ZIP64_LOCATOR.unpack(tail[locator_at:at])[2]
        if offset < size:
            fp.seek(offset)
            raw = fp.read(_ZIP64_EOCD.size)
            if len(raw) == _ZIP64_EOCD.size and raw[:4] == b"PK\x06\x06":
                zip64 = _ZIP64_EOCD.unpack(raw)
                count, directory_size = zip64[7], zip64[8]
    return count, directory_size
