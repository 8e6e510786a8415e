"""Single-stream compressors (gzip, bzip2, xz): one member, named after the delivery
without the suffix of any registered compressor (``a.csv.gz`` -> ``a.csv``, ``a.tgz`` ->
``a.tar``), or the members of the tar it wraps (``.tgz``, ``.tar.xz``...). The output is
metered as it is decompressed, so a bomb is refused on the bytes it produces, before any
reaches a file."""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import BinaryIO, cast

from file_processing.archives.base import (
    CHUNK_SIZE,
    STREAM_ERRORS,
    ArchiveFormat,
    Layer,
    Member,
    Packing,
    Peeked,
    Readable,
    check_ratio,
    refusal,
)
from file_processing.errors import RefusedError
from file_processing.limits import UnpackLimits
from file_processing.reasons import Reason
from file_processing.sniff import Kind

__all__ = ["BZIP2", "GZIP", "XZ", "Compressed"]


class Compressed(ArchiveFormat):
    """A single-stream compressor: its ``kind``, its reader (``decompressor``, which reads
    every member or stream of the file), what that reader raises on broken input, and what
    it may be declared and named as.

    A contract declaring ``tar`` admits one wrapping a tar, refused when it holds none.

    Attributes:
        suffixes: Every name ending that promises it: ``plain_suffixes`` then ``tar_suffixes``.
        tar_suffixes: The endings that stand for a compressed tar (``.tgz``).
        errors: What the reader raises on broken input: the standard library's readers'
            (:data:`~file_processing.archives.base.STREAM_ERRORS`) and the format's own.
    """

    def __init__(
        self,
        kind: Kind,
        decompressor: Callable[[BinaryIO], Readable],
        *,
        packings: frozenset[str],
        plain_suffixes: tuple[str, ...],
        tar_suffixes: tuple[str, ...] = (),
        errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Describe one compressor (one more is one more of these in ``ARCHIVE_FORMATS``).

        Args:
        kind: The content that picks it (its magic bytes, :func:`~file_processing.sniff.sniff`).
        decompressor: Opens the decompressed stream over the compressed bytes (read only
            through ``read()``).
        packings: The packings a contract may declare that it satisfies.
        plain_suffixes: The endings of a compressed file, which its member is named without
            (``a.csv.gz`` -> ``a.csv``).
        tar_suffixes: The endings of a compressed tar, which its member is named ``.tar``
            for (``a.tgz`` -> ``a.tar``).
        errors: What ``decompressor``'s reader raises on broken input beyond
            :data:`~file_processing.archives.base.STREAM_ERRORS` (a third-party library's
            own error): refused with a reason code naming the member, like those.
        """
        self.kind = kind
        self.decompressor = decompressor
        self.packings = packings
        self.suffixes = (*plain_suffixes, *tar_suffixes)
        self.tar_suffixes = tar_suffixes
        self.errors = (*STREAM_ERRORS, *errors)

    def members(self, layer: Layer) -> Iterator[Member]:
        """Yield the stream's one member, or the members of the tar it wraps."""
        session, name = layer.session, layer.name
        stream = _Decompressed(self, layer.source, session.limits, name)
        inner = Peeked(stream)
        path = f"{name}/{_inner_name(name, session.formats)}"
        if session.kind_of(inner.head, path, layer.packing) is Kind.TAR:
            # the registry's tar, looked up now: a tar format replaced there reads these too
            yield from session.open(Kind.TAR, replace(layer, source=inner, file=None))
            stream.drain()
            return
        if layer.packing is Packing.TAR:
            raise RefusedError(
                Reason.FORMAT_MISMATCH,
                f"contract declares packing 'tar' but the {self.name} stream holds no tar archive",
                member=name,
            )
        session.count_entry(path)
        file, size = session.spool(inner.read, path)
        yield from layer.settle(file, size, path)


# gzip.GzipFile reads every member of a multi-member file (a bare zlib
# decompressobj would stop after the first); bz2 and lzma read all streams.
GZIP = Compressed(
    Kind.GZIP,
    lambda fileobj: gzip.GzipFile(fileobj=fileobj, mode="rb"),
    packings=frozenset({"gzip", "tar"}),
    plain_suffixes=(".gz", ".gzip"),
    tar_suffixes=(".tgz",),
)
BZIP2 = Compressed(
    Kind.BZIP2,
    bz2.BZ2File,
    packings=frozenset({"tar"}),
    plain_suffixes=(".bz2",),
    tar_suffixes=(".tbz", ".tbz2"),
)
XZ = Compressed(
    Kind.XZ,
    lzma.LZMAFile,
    packings=frozenset({"tar"}),
    plain_suffixes=(".xz",),
    tar_suffixes=(".txz",),
)


class _Counting:
    """Counts the compressed bytes a decompressor consumes, for the ratio check."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


class _Decompressed:
    """The metered output of a gzip (all members), bzip2 or xz stream."""

    def __init__(self, fmt: Compressed, stream: Readable, limits: UnpackLimits, name: str) -> None:
        self._input = _Counting(stream)
        self._kind = fmt.kind
        self._errors = fmt.errors
        self._limits = limits
        self._name = name
        self.produced = 0
        # the stdlib readers only call read()
        self._file = fmt.decompressor(cast(BinaryIO, self._input))

    def read(self, size: int = -1, /) -> bytes:
        wanted = CHUNK_SIZE if size < 0 else min(size, CHUNK_SIZE)
        try:
            data = self._file.read(wanted)
        except self._errors as exc:
            raise refusal(exc, self._kind.value, self._name) from exc
        self.produced += len(data)
        if self.produced > self._limits.max_total_bytes:
            raise RefusedError(
                Reason.ARCHIVE_TOO_LARGE,
                f"{self._kind.value} stream decompresses to more than "
                f"{self._limits.max_total_bytes} bytes",
                member=self._name,
            )
        check_ratio(self.produced, self._input.count, self._limits, self._name)
        return data

    def drain(self) -> None:
        """Read to the end, so the stream's own checksums and length are verified."""
        while self.read(CHUNK_SIZE):
            pass


def _inner_name(name: str, formats: Mapping[str, ArchiveFormat]) -> str:
    """Name inside a single-stream compressor: ``a.csv.gz`` -> ``a.csv``, ``a.tgz`` -> ``a.tar``.

    Any registered compressor's suffix counts, whatever the content (a gzip named
    ``a.csv.bz2`` holds ``a.csv``), the longest first."""
    base = name.rsplit("/", 1)[-1]
    lowered = base.lower()
    replacements = sorted(
        (
            (suffix, ".tar" if suffix in fmt.tar_suffixes else "")
            for fmt in formats.values()
            if isinstance(fmt, Compressed)
            for suffix in fmt.suffixes
        ),
        key=lambda pair: -len(pair[0]),
    )
    for suffix, replacement in replacements:
        if lowered.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)] + replacement
    return base
