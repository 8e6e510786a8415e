"""Streaming, bounded unpacking of vendor deliveries (zip, gzip, bzip2, xz, tar, nested).

:func:`unpack` decides what a delivery is from its magic bytes, never from its
name, and yields its regular-file members one at a time, each spooled to a
temporary file. Memory stays bounded whatever the file size (chunked copies of
:data:`CHUNK_SIZE`), and the :class:`~file_processing.limits.UnpackLimits` are
checked against bytes actually decompressed. Anything hostile or broken (path
traversal, links, devices, encrypted or overlapping zip entries, bad CRCs,
truncation, bombs) raises :class:`~file_processing.errors.RefusedError` with a
reason code, and the temporary files are removed.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import importlib
import itertools
import logging
import lzma
import os
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, Self, cast

from etl_core.errors import ConfigError, FieldError
from etl_core.storage import StagedFile
from file_processing.errors import RefusedError
from file_processing.inflate_ahead import InflatedAhead, ZipHeadInflater
from file_processing.limits import MIB, UnpackLimits
from file_processing.reasons import Reason
from file_processing.sniff import SNIFF_SIZE, Kind, sniff

__all__ = ["CHUNK_SIZE", "DEFAULT_LIMITS", "Member", "Packing", "unpack", "zip_head_inflater"]

logger = logging.getLogger(__name__)

CHUNK_SIZE = MIB
"""Bytes copied per read: the most of any member held in memory at once."""

DEFAULT_LIMITS = UnpackLimits()

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
_STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
    struct.error,
)
_TAR_ERRORS: tuple[type[BaseException], ...] = (tarfile.TarError, *_STREAM_ERRORS)
_SUPPORTED_ZIP_METHODS = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_ZIP_AES_METHOD = 99
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_MAX_CENTRAL_RECORD = 4096  # generous bytes per central-directory record when bounding its size
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")
_ARCHIVE_SUFFIXES = (".zip", ".gz", ".gzip", ".tgz", ".tar", ".bz2", ".tbz", ".tbz2", ".xz", ".txz")
_COMPRESSED_SUFFIXES = (
    (".tgz", ".tar"),
    (".tbz2", ".tar"),
    (".tbz", ".tar"),
    (".txz", ".tar"),
    (".gzip", ""),
    (".gz", ""),
    (".bz2", ""),
    (".xz", ""),
)

# tarfile keeps these header errors out of its public names; they tell a proper
# end-of-archive block from a truncated or broken header.
_EOF_HEADER: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_TRUNCATED_HEADER: tuple[type[Exception], ...] = (
    tarfile.EmptyHeaderError,  # type: ignore[attr-defined]
    tarfile.TruncatedHeaderError,  # type: ignore[attr-defined]
)
_TAR_META_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)
_MAX_TAR_META_BYTES = MIB


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


def unpack(
    source: BinaryIO | str | os.PathLike[str],
    *,
    name: str,
    packing: Packing | str = Packing.AUTO,
    limits: UnpackLimits = DEFAULT_LIMITS,
    workdir: str | os.PathLike[str] | None = None,
    ahead: InflatedAhead | None = None,
) -> Generator[Member, None, None]:
    """Yield the regular-file members of a delivery, unpacking nested archives.

    A delivery is valid only once the iterator is exhausted: some faults (a bad
    CRC at the end of a ``.tar.gz``, a truncated tar) show only after earlier
    members were yielded, so stage what you make of members and publish it after
    the loop. Close the iterator early with ``contextlib.closing`` to remove the
    temporary files at once.

    Args:
        source: The delivery: a path, or a binary stream (not closed; read from its
            current position; a zip from a non-seekable stream is spooled to disk).
        name: The delivery's file name; member paths start with it.
        packing: What the contract declares: ``auto`` trusts the magic bytes;
            ``none``, ``zip``, ``gzip`` or ``tar`` (also compressed tar) must match them.
        limits: Size, ratio, entry and depth limits.
        workdir: Directory for temporary files (default: the system's).
        ahead: The first entry of ``source`` (a zip file), inflated as it arrived
            (:func:`zip_head_inflater`): taken, on the same filesystem, instead of
            inflating the entry again when the zip's directory describes exactly it
            (otherwise removed); every check of the zip and its entries runs as ever.

    Raises:
        RefusedError: The delivery is unsafe or broken; ``reason`` says why.
        ConfigError: ``packing`` or ``name`` is invalid.
    """
    mode = _parse_packing(packing)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            "invalid unpack call", [FieldError("name", "must be a non-empty file name")]
        )
    return _unpack(source, name, mode, limits, workdir, ahead)


def zip_head_inflater(target: Path, limits: UnpackLimits) -> ZipHeadInflater | None:
    """A :class:`~file_processing.inflate_ahead.ZipHeadInflater` staging to ``target``,
    for :func:`unpack`'s ``ahead``; ``None`` where ISA-L is not installed (the entry would
    be inflated by ``zipfile``, which nothing ahead stands for)."""
    inflater = _fast_inflater()
    if inflater is None:
        return None
    return ZipHeadInflater(inflater, target, limits, chunk=CHUNK_SIZE)


def _parse_packing(packing: Packing | str) -> Packing:
    try:
        return Packing(packing)
    except ValueError:
        expected = ", ".join(p.value for p in Packing)
        raise ConfigError(
            "invalid unpack call",
            [FieldError("packing", f"expected one of {expected}, got {packing!r}")],
        ) from None


def _unpack(
    source: BinaryIO | str | os.PathLike[str],
    name: str,
    mode: Packing,
    limits: UnpackLimits,
    workdir: str | os.PathLike[str] | None,
    ahead: InflatedAhead | None = None,
) -> Generator[Member, None, None]:
    scratch = Path(tempfile.mkdtemp(prefix="unpack-", dir=workdir))
    session = _Session(limits, scratch, ahead)
    try:
        with _opened(source) as stream:
            yield from session.run(stream, name, mode)
    finally:
        session.drop_ahead()
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def _opened(source: BinaryIO | str | os.PathLike[str]) -> Iterator[BinaryIO]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            yield stream
    else:
        yield source


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Peeked:
    """A stream whose head was read for sniffing, readable again from its start."""

    def __init__(self, stream: _Readable) -> None:
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


def _read_up_to(stream: _Readable, size: int) -> bytes:
    parts: list[bytes] = []
    wanted = size
    while wanted > 0:
        data = stream.read(wanted)
        if not data:
            break
        parts.append(data)
        wanted -= len(data)
    return b"".join(parts)


class _Counting:
    """Counts the compressed bytes a decompressor consumes, for the ratio check."""

    def __init__(self, stream: _Readable) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


class _Decompressed:
    """The metered output of a gzip (all members), bzip2 or xz stream."""

    def __init__(self, kind: Kind, stream: _Readable, limits: UnpackLimits, name: str) -> None:
        self._input = _Counting(stream)
        self._kind = kind
        self._limits = limits
        self._name = name
        self.produced = 0
        self._file = _decompressor(kind, self._input)

    def read(self, size: int = -1, /) -> bytes:
        wanted = CHUNK_SIZE if size < 0 else min(size, CHUNK_SIZE)
        try:
            data = self._file.read(wanted)
        except _STREAM_ERRORS as exc:
            raise _refusal(exc, self._kind.value, self._name) from exc
        self.produced += len(data)
        if self.produced > self._limits.max_total_bytes:
            raise RefusedError(
                Reason.ARCHIVE_TOO_LARGE,
                f"{self._kind.value} stream decompresses to more than "
                f"{self._limits.max_total_bytes} bytes",
                member=self._name,
            )
        _check_ratio(self.produced, self._input.count, self._limits, self._name)
        return data

    def drain(self) -> None:
        """Read to the end, so the stream's own checksums and length are verified."""
        while self.read(CHUNK_SIZE):
            pass


def _decompressor(kind: Kind, stream: _Readable) -> _Readable:
    # gzip.GzipFile reads every member of a multi-member file (a bare zlib
    # decompressobj would stop after the first); bz2 and lzma read all streams.
    fileobj = cast(BinaryIO, stream)  # the stdlib readers only call read()
    if kind is Kind.GZIP:
        return gzip.GzipFile(fileobj=fileobj, mode="rb")
    if kind is Kind.BZIP2:
        return bz2.BZ2File(fileobj)
    return lzma.LZMAFile(fileobj)


class _StrictTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses a truncated or broken header instead of ending quietly.

    tarfile treats a header it cannot read (past the first) as the end of the
    archive, which would turn a truncated delivery into silently lost members.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except _EOF_HEADER:
            raise  # a zero block: the archive's proper end marker
        except _TRUNCATED_HEADER as exc:
            raise RefusedError(
                Reason.ARCHIVE_TRUNCATED, f"tar: archive ends without its end marker ({exc})"
            ) from exc
        except tarfile.HeaderError as exc:
            raise RefusedError(Reason.ARCHIVE_CORRUPT, f"tar: invalid header ({exc})") from exc

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        # Extended headers are read into memory whole; bound them before tarfile does.
        if self.type in _TAR_META_TYPES and self.size > _MAX_TAR_META_BYTES:
            raise RefusedError(
                Reason.ARCHIVE_CORRUPT,
                f"tar: extended header of {self.size} bytes exceeds {_MAX_TAR_META_BYTES}",
            )
        return cast(tarfile.TarInfo, super()._proc_member(tarfile_))  # type: ignore[misc]


class _Session:
    """One delivery's walk: shared byte and entry budgets, and its scratch files."""

    def __init__(
        self, limits: UnpackLimits, scratch: Path, ahead: InflatedAhead | None = None
    ) -> None:
        self.limits = limits
        self.scratch = scratch
        self.ahead = ahead
        self.total_bytes = 0
        self.entries = 0
        self._serial = itertools.count()

    # ------------------------------------------------------------------ layers

    def run(self, stream: BinaryIO, name: str, mode: Packing) -> Iterator[Member]:
        at_start = _seekable(stream) and stream.tell() == 0
        source = _Peeked(stream)
        kind = sniff(source.head)
        _check_declared(mode, kind, name)
        if mode is Packing.NONE or not kind.is_archive:
            if mode is not Packing.NONE:
                _check_claim(name, kind)
            file, size = self._spool(source.read, name)
            yield from _hand_over(Member(name, size, file))
            return
        found = 0
        for member in self._open(kind, source, name, 1, mode, stream if at_start else None):
            found += 1
            yield member
        if not found:
            raise RefusedError(
                Reason.ARCHIVE_EMPTY,
                f"the {kind.value} archive holds no data file ({self.entries} entries, "
                "folders only)"
                if self.entries
                else f"the {kind.value} archive holds no entries at all",
                member=name,
            )

    def _open(
        self,
        kind: Kind,
        source: _Peeked,
        name: str,
        depth: int,
        mode: Packing,
        seekable: BinaryIO | None,
    ) -> Iterator[Member]:
        if depth > self.limits.max_depth:
            raise RefusedError(
                Reason.ARCHIVE_TOO_DEEP,
                f"archives nested deeper than {self.limits.max_depth} levels",
                member=name,
            )
        logger.debug("opening %s layer %d of %s", kind.value, depth, name)
        if kind is Kind.ZIP:
            yield from self._zip(source, name, depth, seekable)
        elif kind is Kind.TAR:
            yield from self._tar(source, name, depth)
        else:
            yield from self._compressed(kind, source, name, depth, mode)

    def _compressed(
        self, kind: Kind, source: _Peeked, name: str, depth: int, mode: Packing
    ) -> Iterator[Member]:
        stream = _Decompressed(kind, source, self.limits, name)
        inner = _Peeked(stream)
        if sniff(inner.head) is Kind.TAR:
            yield from self._tar(inner, name, depth)
            stream.drain()
            return
        if mode is Packing.TAR:
            raise RefusedError(
                Reason.FORMAT_MISMATCH,
                f"contract declares packing 'tar' but the {kind.value} stream holds no tar archive",
                member=name,
            )
        path = f"{name}/{_inner_name(name)}"
        self._count_entry(path)
        file, size = self._spool(inner.read, path)
        yield from self._settle(file, size, path, depth)

    def _tar(self, source: _Readable, name: str, depth: int) -> Iterator[Member]:
        with _open_tar(source, name) as archive:
            seen: set[str] = set()
            while (info := _next_tar_entry(archive, name)) is not None:
                path = _member_name(info.name, name)
                member_path = f"{name}/{path}"
                self._count_entry(member_path)
                if info.isdir():
                    continue
                _check_tar_type(info, member_path)
                _check_unique(path, seen, member_path)
                file, size = self._spool(_tar_reader(archive, info, member_path), member_path)
                yield from self._settle(file, size, member_path, depth)

    def _zip(
        self, source: _Peeked, name: str, depth: int, seekable: BinaryIO | None
    ) -> Iterator[Member]:
        with ExitStack() as stack:
            fp = (
                seekable
                if seekable is not None
                else stack.enter_context(self._spooled(source, name))
            )
            self._precheck_zip(fp, name)
            archive = stack.enter_context(_open_zip(fp, name))
            infos = archive.infolist()
            self._check_entry_budget(len(infos), name)
            _check_zip_layout(fp, infos, archive.start_dir, name)
            seen: set[str] = set()
            for info in infos:
                path = _member_name(info.filename, name)
                member_path = f"{name}/{path}"
                self._count_entry(member_path)
                mode = info.external_attr >> 16
                if info.is_dir() or stat.S_ISDIR(mode):
                    continue
                _check_zip_entry(info, mode, member_path, self.limits)
                _check_unique(path, seen, member_path)
                first = depth == 1 and seekable is not None  # the delivery's own zip
                file, size = self._extract_zip(archive, fp, info, member_path, first=first)
                yield from self._settle(file, size, member_path, depth)

    def _settle(self, file: Path, size: int, path: str, depth: int) -> Iterator[Member]:
        """Hand a spooled member over, or open it when it is itself an archive."""
        with file.open("rb") as fh:
            source = _Peeked(fh)
            kind = sniff(source.head)
            if kind.is_archive:
                yield from self._open(kind, source, path, depth + 1, Packing.AUTO, fh)
        if kind.is_archive:
            file.unlink()
            return
        _check_claim(path, kind)
        yield from _hand_over(Member(path, size, file))

    # ----------------------------------------------------------------- zip parts

    def _precheck_zip(self, fp: BinaryIO, name: str) -> None:
        """Refuse an oversized central directory before zipfile reads it into memory."""
        declared = _declared_zip_entries(fp)
        if declared is None:
            return  # zipfile reports the damage itself
        count, directory_size = declared
        self._check_entry_budget(count, name)
        budget = (self.limits.max_entries - self.entries) * _MAX_CENTRAL_RECORD
        if directory_size > budget:
            raise RefusedError(
                Reason.ARCHIVE_TOO_MANY_ENTRIES,
                f"zip central directory of {directory_size} bytes is too large "
                f"for {self.limits.max_entries} entries",
                member=name,
            )

    def _extract_zip(
        self,
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
            raise _refusal(exc, "zip", member_path) from exc
        with handle:
            fast = (self._take_ahead(fp, info) if first else None) or self._inflate_fast(
                fp, info, member_path
            )
            if fast is not None:
                return fast

            def read(size: int) -> bytes:
                try:
                    return handle.read(size)
                except _ZIP_ERRORS as exc:
                    raise _refusal(exc, "zip", member_path) from exc

            return self._spool(read, member_path, compressed=max(info.compress_size, 1))

    def _take_ahead(self, fp: BinaryIO, info: zipfile.ZipInfo) -> tuple[Path, int] | None:
        """The entry inflated as the zip arrived, when it is exactly this one and within the
        limits, as :meth:`_inflate_fast` would have accepted it; anything else is left to
        that path (whose verdict stands) and the file inflated ahead is removed."""
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return None
        taken = None
        try:
            if _is_entry(fp, info, ahead) and self._fits(ahead.size, info):
                taken = self._new_file()
                os.replace(ahead.file, taken)
                self.total_bytes += ahead.size
        except OSError as exc:
            logger.debug("entry inflated ahead not taken: %s", exc)
            taken = None
        finally:
            if taken is None:
                ahead.file.unlink(missing_ok=True)
        return None if taken is None else (taken, ahead.size)

    def _fits(self, size: int, info: zipfile.ZipInfo) -> bool:
        """Whether an entry of ``size`` bytes passes the limits :meth:`_spool` enforces."""
        limits = self.limits
        ratio = size > limits.ratio_floor_bytes and size > limits.max_ratio * max(
            info.compress_size, 1
        )
        return (
            size <= limits.max_member_bytes
            and self.total_bytes + size <= limits.max_total_bytes
            and not ratio
        )

    def drop_ahead(self) -> None:
        """Remove an entry inflated ahead that was never taken."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            ahead.file.unlink(missing_ok=True)

    def _inflate_fast(
        self, fp: BinaryIO, info: zipfile.ZipInfo, member_path: str
    ) -> tuple[Path, int] | None:
        """A deflated entry inflated by ISA-L (when installed), accepted only when it ends
        exactly as its directory record says (size, CRC); anything else, a refusal
        included, is undone and left to ``zipfile``, whose verdict stands as before."""
        inflater = _fast_inflater()
        if inflater is None or info.compress_type != zipfile.ZIP_DEFLATED:
            return None
        total = self.total_bytes
        undone: tuple[type[BaseException], ...] = (
            _NotAsDeclaredError,
            RefusedError,
            inflater.error,
            *_ZIP_ERRORS,
        )
        try:
            reader = _FastDeflate(inflater, fp, info)
            return self._spool(reader.read, member_path, compressed=max(info.compress_size, 1))
        except undone as exc:
            logger.debug("%s: inflated again by zipfile (%s)", member_path, exc)
        self.total_bytes = total
        return None

    @contextmanager
    def _spooled(self, source: _Readable, name: str) -> Iterator[BinaryIO]:
        """Copy a non-seekable zip to disk, since its directory sits at the end."""
        path = self._new_file()
        size = 0
        try:
            with path.open("xb") as out:
                while chunk := source.read(CHUNK_SIZE):
                    size += len(chunk)
                    if size > self.limits.max_total_bytes:
                        raise RefusedError(
                            Reason.ARCHIVE_TOO_LARGE,
                            f"zip archive larger than {self.limits.max_total_bytes} bytes",
                            member=name,
                        )
                    out.write(chunk)
            with path.open("rb") as fh:
                yield fh
        finally:
            path.unlink(missing_ok=True)

    # --------------------------------------------------------------- accounting

    def _spool(
        self, read: Callable[[int], bytes], path: str, *, compressed: int | None = None
    ) -> tuple[Path, int]:
        """Copy a member to a scratch file in chunks, enforcing every byte limit (its MD5
        computed on the way, on a thread of its own, and recorded on the file)."""
        dest = self._new_file()
        size = 0
        try:
            # Its ETag is computed as it is written: publishing it needs no second read.
            with StagedFile(dest) as out:
                while chunk := read(CHUNK_SIZE):
                    size += len(chunk)
                    self._add_bytes(len(chunk), path)
                    if size > self.limits.max_member_bytes:
                        raise RefusedError(
                            Reason.ARCHIVE_TOO_LARGE,
                            f"member larger than {self.limits.max_member_bytes} bytes",
                            member=path,
                        )
                    if compressed is not None:
                        _check_ratio(size, compressed, self.limits, path)
                    out.write(chunk)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest, size

    def _new_file(self) -> Path:
        return self.scratch / f"{next(self._serial):06d}.part"

    def _add_bytes(self, count: int, path: str) -> None:
        self.total_bytes += count
        if self.total_bytes > self.limits.max_total_bytes:
            raise RefusedError(
                Reason.ARCHIVE_TOO_LARGE,
                f"delivery unpacks to more than {self.limits.max_total_bytes} bytes",
                member=path,
            )

    def _count_entry(self, path: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise RefusedError(
                Reason.ARCHIVE_TOO_MANY_ENTRIES,
                f"delivery holds more than {self.limits.max_entries} entries",
                member=path,
            )

    def _check_entry_budget(self, count: int, name: str) -> None:
        if self.entries + count > self.limits.max_entries:
            raise RefusedError(
                Reason.ARCHIVE_TOO_MANY_ENTRIES,
                f"archive declares {count} entries; the limit is {self.limits.max_entries}",
                member=name,
            )


# ---------------------------------------------------------------- checks


def _hand_over(member: Member) -> Iterator[Member]:
    yield member
    member.file.unlink(missing_ok=True)


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def _check_ratio(produced: int, consumed: int, limits: UnpackLimits, path: str) -> None:
    if produced > limits.ratio_floor_bytes and produced > limits.max_ratio * max(consumed, 1):
        raise RefusedError(
            Reason.ARCHIVE_RATIO,
            f"{produced} bytes out of {consumed} compressed exceeds the ratio limit "
            f"of {limits.max_ratio:g}:1",
            member=path,
        )


def _check_declared(mode: Packing, kind: Kind, name: str) -> None:
    allowed = {
        Packing.ZIP: {Kind.ZIP},
        Packing.GZIP: {Kind.GZIP},
        Packing.TAR: {Kind.TAR, Kind.GZIP, Kind.BZIP2, Kind.XZ},
    }
    if mode is Packing.AUTO:
        return
    if mode is Packing.NONE:
        ok = not (kind.is_archive or kind.is_unsupported_archive)
    else:
        ok = kind in allowed[mode]
    if not ok:
        raise RefusedError(
            Reason.FORMAT_MISMATCH,
            f"contract declares packing {mode.value!r} but the content is {kind.value}",
            member=name,
        )


def _check_claim(path: str, kind: Kind) -> None:
    """Refuse an archive format the lane does not open, and plain content under a name
    that promises an archive (a ``.gz`` that is no gzip)."""
    if kind.is_unsupported_archive:
        raise RefusedError(
            Reason.ARCHIVE_UNSUPPORTED_FORMAT,
            f"the content is {kind.description}, which this lane does not open; "
            "ask the vendor for zip, gzip, bzip2, xz or tar",
            member=path,
        )
    suffix = next((s for s in _ARCHIVE_SUFFIXES if path.lower().endswith(s)), None)
    if suffix is not None:
        raise RefusedError(
            Reason.ARCHIVE_CORRUPT,
            f"named like an archive ({suffix}) but the content is not one "
            f"(it is {kind.description})",
            member=path,
        )


def _inner_name(name: str) -> str:
    """Name inside a single-stream compressor: ``a.csv.gz`` -> ``a.csv``, ``a.tgz`` -> ``a.tar``."""
    base = name.rsplit("/", 1)[-1]
    lowered = base.lower()
    for suffix, replacement in _COMPRESSED_SUFFIXES:
        if lowered.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)] + replacement
    return base


def _member_name(raw: str, archive: str) -> str:
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


def _check_unique(path: str, seen: set[str], member_path: str) -> None:
    if not path:
        raise RefusedError(
            Reason.ARCHIVE_CORRUPT, "a file member has an empty name", member=member_path
        )
    if path in seen:
        raise RefusedError(
            Reason.ARCHIVE_DUPLICATE_ENTRY, "two entries have this path", member=member_path
        )
    seen.add(path)


def _refusal(exc: BaseException, fmt: str, member: str) -> RefusedError:
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


# ----------------------------------------------------------------------- tar


@contextmanager
def _open_tar(source: _Readable, name: str) -> Iterator[tarfile.TarFile]:
    # Stream mode ("r|") reads strictly forward: no seeking, bounded buffers.
    try:
        archive = tarfile.open(fileobj=cast(IO[bytes], source), mode="r|", tarinfo=_StrictTarInfo)  # noqa: SIM115
    except _TAR_ERRORS as exc:
        raise _refusal(exc, "tar", name) from exc
    with archive:
        yield archive


def _next_tar_entry(archive: tarfile.TarFile, name: str) -> tarfile.TarInfo | None:
    try:
        return archive.next()
    except _TAR_ERRORS as exc:
        raise _refusal(exc, "tar", name) from exc


def _check_tar_type(info: tarfile.TarInfo, member_path: str) -> None:
    if info.issym() or info.islnk():
        kind = "symbolic" if info.issym() else "hard"
        raise RefusedError(
            Reason.ARCHIVE_LINK, f"{kind} link to {info.linkname!r}", member=member_path
        )
    if not info.isreg():
        what = "FIFO" if info.isfifo() else "device" if info.isdev() else "non-regular file"
        raise RefusedError(
            Reason.ARCHIVE_SPECIAL_FILE,
            f"{what} (tar type {info.type!r})",
            member=member_path,
        )


def _tar_reader(
    archive: tarfile.TarFile, info: tarfile.TarInfo, member_path: str
) -> Callable[[int], bytes]:
    try:
        handle = archive.extractfile(info)
    except _TAR_ERRORS as exc:
        raise _refusal(exc, "tar", member_path) from exc
    if handle is None:
        raise RefusedError(Reason.ARCHIVE_SPECIAL_FILE, "member has no data", member=member_path)

    def read(size: int) -> bytes:
        try:
            return handle.read(size)
        except _TAR_ERRORS as exc:
            raise _refusal(exc, "tar", member_path) from exc

    return read


# ----------------------------------------------------------------------- zip


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
        raise _refusal(exc, "zip", name) from exc
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
        raise _refusal(exc, "zip", name) from exc
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
