"""One delivery's walk through its archive layers, whatever their formats: the shared
byte and entry budgets, the depth limit, the scratch files every member is spooled to,
and the refusals that do not depend on a format (declared packing, empty archives,
plain data named like an archive).

The :class:`Session` picks each layer's :class:`~file_processing.archives.base.ArchiveFormat`
from the registry it is given, by the kind the magic bytes say.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from etl_core.storage import StagedFile
from file_processing.archives.base import (
    CHUNK_SIZE,
    ArchiveFormat,
    Layer,
    Member,
    Packing,
    Peeked,
    check_ratio,
    hand_over,
    seekable,
)
from file_processing.errors import RefusedError
from file_processing.inflate_ahead import InflatedAhead
from file_processing.limits import UnpackLimits
from file_processing.reasons import Reason
from file_processing.sniff import Kind, is_tar_end_marker, sniff

__all__ = ["Session", "check_declared"]

logger = logging.getLogger(__name__)


class Session:
    """One delivery's walk: shared byte and entry budgets, and its scratch files.

    Attributes:
        limits: The size, ratio, entry and depth limits of the whole delivery.
        scratch: The directory member files are spooled to (removed by the caller).
        ahead: The delivery's first zip entry inflated as it arrived, until taken.
        formats: The formats opened, by name (:data:`~file_processing.archives.ARCHIVE_FORMATS`).
        total_bytes: Bytes extracted so far, every layer counted.
        entries: Entries seen so far, every layer counted.
        empty_archives: The nested archives that held no data file (left out like a
            folder), in the order met: an empty delivery's refusal names them.
    """

    def __init__(
        self,
        limits: UnpackLimits,
        scratch: Path,
        ahead: InflatedAhead | None,
        formats: Mapping[str, ArchiveFormat],
    ) -> None:
        self.limits = limits
        self.scratch = scratch
        self.ahead = ahead
        self.formats = formats
        self.total_bytes = 0
        self.entries = 0
        self.empty_archives: list[str] = []
        self._serial = itertools.count()
        self._suffixes = tuple(s for f in formats.values() for s in f.suffixes)

    # ------------------------------------------------------------------ layers

    def run(self, stream: BinaryIO, name: str, mode: Packing) -> Iterator[Member]:
        """Yield the delivery's members: ``stream`` itself when it is no archive."""
        at_start = seekable(stream) and stream.tell() == 0
        source = Peeked(stream)
        kind = self.kind_of(source.head, name, mode)
        check_declared(mode, kind, name, self.formats)
        if mode is Packing.NONE or not kind.is_archive:
            if mode is not Packing.NONE:
                self._check_claim(name, kind)
            file, size = self.spool(source.read, name)
            yield from hand_over(Member(name, size, file))
            return
        found = 0
        layer = Layer(self, source, name, 1, mode, stream if at_start else None)
        for member in self.open(kind, layer):
            found += 1
            yield member
        if found and self.empty_archives:
            logger.warning(
                "%s: %d nested archive(s) holding no data file left out, the first %s "
                "(a vendor's archive cut short is written as zeros: ask them if unexpected)",
                name,
                len(self.empty_archives),
                self.empty_archives[0],
                extra={"empty_archives": self.empty_archives[:20]},
            )
        if not found:
            raise RefusedError(
                Reason.ARCHIVE_EMPTY,
                f"the {kind.value} archive holds no data file ({self._held()})"
                if self.entries
                else f"the {kind.value} archive holds no entries at all",
                member=name,
            )

    def _held(self) -> str:
        """What an archive of entries but no data file holds: folders, and the nested
        archives of no data file, the first named (an operator told "folders only" would
        look for folders)."""
        if not self.empty_archives:
            return f"{self.entries} entries, folders only"
        empty = self.empty_archives
        return (
            f"{self.entries} entries: folders, and {len(empty)} archive(s) holding none, "
            f"the first {empty[0]}"
        )

    def open(self, kind: Kind, layer: Layer) -> Iterator[Member]:
        """Yield the members of one archive layer, read by its kind's format."""
        if layer.depth > self.limits.max_depth:
            raise RefusedError(
                Reason.ARCHIVE_TOO_DEEP,
                f"archives nested deeper than {self.limits.max_depth} levels",
                member=layer.name,
            )
        logger.debug("opening %s layer %d of %s", kind.value, layer.depth, layer.name)
        yield from self.formats[kind.value].members(layer)

    def settle(self, file: Path, size: int, path: str, depth: int) -> Iterator[Member]:
        """Hand a spooled member over, or open it when it is itself an archive."""
        with file.open("rb") as fh:
            source = Peeked(fh)
            kind = self.kind_of(source.head, path)
            if kind.is_archive:
                found = 0
                for member in self.open(kind, Layer(self, source, path, depth + 1, file=fh)):
                    found += 1
                    yield member
                if not found:
                    self.empty_archives.append(path)
        if kind.is_archive:
            file.unlink()
            return
        self._check_claim(path, kind)
        yield from hand_over(Member(path, size, file))

    def kind_of(self, head: bytes, path: str, mode: Packing = Packing.AUTO) -> Kind:
        """What the layer ``path`` whose bytes start with ``head`` is, by its magic bytes;
        a tar of no entries (its end marker alone, no magic) where ``path``'s name or the
        packing declared (``mode``) promises a tar, so it is refused as empty, not as
        plain data named like an archive."""
        kind = sniff(head)
        if kind is Kind.PLAIN and is_tar_end_marker(head) and self._promises_tar(path, mode):
            return Kind.TAR
        return kind

    def _promises_tar(self, path: str, mode: Packing) -> bool:
        """Whether the packing declared, or else the name, promises a tar (a contract
        declaring ``none`` overrides the name: zeros are no magic to contradict it)."""
        if mode is not Packing.AUTO:
            return mode is Packing.TAR
        lowered = path.lower()
        return any(
            lowered.endswith(s)
            for f in self.formats.values()
            if f.kind is Kind.TAR
            for s in f.suffixes
        )

    def drop_ahead(self) -> None:
        """Remove an entry inflated ahead that was never taken."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            ahead.file.unlink(missing_ok=True)

    def _check_claim(self, path: str, kind: Kind) -> None:
        """Refuse an archive format the lane does not open, and plain content under a name
        that promises an archive (a ``.gz`` that is no gzip)."""
        if kind.is_unsupported_archive:
            *most, last = self.formats
            raise RefusedError(
                Reason.ARCHIVE_UNSUPPORTED_FORMAT,
                f"the content is {kind.description}, which this lane does not open; "
                f"ask the vendor for {', '.join(most)} or {last}",
                member=path,
            )
        suffix = next((s for s in self._suffixes if path.lower().endswith(s)), None)
        if suffix is not None:
            raise RefusedError(
                Reason.ARCHIVE_CORRUPT,
                f"named like an archive ({suffix}) but the content is not one "
                f"(it is {kind.description})",
                member=path,
            )

    # --------------------------------------------------------------- accounting

    def spool(
        self, read: Callable[[int], bytes], path: str, *, compressed: int | None = None
    ) -> tuple[Path, int]:
        """Copy a member to a scratch file in chunks, enforcing every byte limit (its MD5
        computed on the way, on a thread of its own, and recorded on the file)."""
        dest = self.new_file()
        size = 0
        try:
            # Its ETag is computed as it is written: publishing it needs no second read.
            with StagedFile(dest) as out:
                while chunk := read(CHUNK_SIZE):
                    size += len(chunk)
                    self.total_bytes += len(chunk)
                    self.check_member(size, path, compressed=compressed)
                    out.write(chunk)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return dest, size

    def new_file(self) -> Path:
        """A fresh scratch file name (not created)."""
        return self.scratch / f"{next(self._serial):06d}.part"

    def check_member(
        self, size: int, path: str, *, compressed: int | None = None, uncounted: int = 0
    ) -> None:
        """Refuse a member of ``size`` bytes (out of ``compressed`` ones, when known) past
        the total limit (``total_bytes`` and the ``uncounted`` bytes not in it yet), the
        member limit or the ratio limit: :meth:`spool`'s checks, made on every chunk."""
        if self.total_bytes + uncounted > self.limits.max_total_bytes:
            raise RefusedError(
                Reason.ARCHIVE_TOO_LARGE,
                f"delivery unpacks to more than {self.limits.max_total_bytes} bytes",
                member=path,
            )
        if size > self.limits.max_member_bytes:
            raise RefusedError(
                Reason.ARCHIVE_TOO_LARGE,
                f"member larger than {self.limits.max_member_bytes} bytes",
                member=path,
            )
        if compressed is not None:
            check_ratio(size, compressed, self.limits, path)

    def count_entry(self, path: str) -> None:
        """Count one more entry (folders too), refusing past the entry limit."""
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise RefusedError(
                Reason.ARCHIVE_TOO_MANY_ENTRIES,
                f"delivery holds more than {self.limits.max_entries} entries",
                member=path,
            )

    def check_entry_budget(self, count: int, name: str) -> None:
        """Refuse an archive declaring more entries than the budget has left."""
        if self.entries + count > self.limits.max_entries:
            raise RefusedError(
                Reason.ARCHIVE_TOO_MANY_ENTRIES,
                f"archive declares {count} entries; the limit is {self.limits.max_entries}",
                member=name,
            )


def check_declared(
    mode: Packing, kind: Kind, name: str, formats: Mapping[str, ArchiveFormat]
) -> None:
    """Refuse content whose magic bytes contradict the packing the contract declares: a
    declared packing admits the formats listing it in their ``packings``."""
    if mode is Packing.AUTO:
        return
    if mode is Packing.NONE:
        ok = not (kind.is_archive or kind.is_unsupported_archive)
    else:
        ok = any(f.kind is kind and mode.value in f.packings for f in formats.values())
    if not ok:
        raise RefusedError(
            Reason.FORMAT_MISMATCH,
            f"contract declares packing {mode.value!r} but the content is {kind.value}",
            member=name,
        )
