"""A zip's first entry inflated from its bytes as they arrive, before the zip can be opened.

A zip's directory sits at its end, so an encrypted zip was unpacked only once gpg had
decrypted all of it, one step after the other. A :class:`ZipHeadInflater` is fed the
plaintext as gpg produces it (:meth:`~file_processing.decrypt.Decryptor.decrypt`'s
``observe``) and inflates the first entry from its local header on the way (deflated
entries only, with ISA-L), into a staged file of the delivery's scratch, within the
delivery's byte and ratio limits. It decides nothing: it never raises, and what it
made is taken (:class:`InflatedAhead`, by :func:`~file_processing.unpack.unpack`) only
once gpg vouched for the plaintext and the zip's directory, checked as ever, describes
that very entry (offset 0, size, CRC-32, compressed length); anything else, and it is
thrown away and the entry unpacked as before.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl_core.storage import StagedFile
from file_processing.limits import UnpackLimits

__all__ = ["InflatedAhead", "ZipHeadInflater"]

logger = logging.getLogger(__name__)

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_DEFLATED = 8
_ENCRYPTED_FLAG = 0x1


@dataclass(frozen=True)
class InflatedAhead:
    """The first entry of a zip, inflated as the zip arrived.

    Attributes:
        file: The staged entry (its MD5 recorded, as :class:`~etl_core.storage.StagedFile`).
        data_start: Offset of the entry's deflated data, after its local header.
        consumed: Compressed bytes the deflate stream took, to its end.
        size: Bytes inflated.
        crc: Their CRC-32.
    """

    file: Path
    data_start: int
    consumed: int
    size: int
    crc: int


class ZipHeadInflater:
    """Inflates the first entry of the zip whose bytes :meth:`feed` receives, in order.

    Args:
        inflater: ISA-L's zlib-compatible module (``decompressobj``, ``crc32``).
        target: The staged file to create.
        limits: The delivery's limits: past a member's or the delivery's size, or the
            ratio limit, it stops and keeps nothing.
        chunk: Most bytes inflated from one call at once (bounds memory).
    """

    def __init__(self, inflater: Any, target: Path, limits: UnpackLimits, *, chunk: int) -> None:
        self._inflater = inflater
        self._target = target
        self._limits = limits
        self._chunk = chunk
        self._head = b""
        self._skip = -1  # name and extra bytes still to pass, once the header is read
        self._data_start = 0
        self._stream: Any = None
        self._out: StagedFile | None = None
        self._fed = 0  # compressed bytes given to the deflate stream
        self._size = 0
        self._crc = 0
        self._done = False  # the stream ended, or it gave up

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the zip; never raises (a failure gives it up)."""
        if self._done:
            return
        try:
            self._feed(memoryview(data))
        except Exception as exc:
            logger.debug("first zip entry not inflated ahead: %s", exc)
            self.discard()

    def finish(self) -> InflatedAhead | None:
        """What was inflated, if the deflate stream ended whole; else nothing (discarded)."""
        if self._out is None or self._stream is None or not self._stream.eof:
            self.discard()
            return None
        out, self._out = self._out, None
        try:
            out.close()
        except OSError:
            self._target.unlink(missing_ok=True)
            return None
        consumed = self._fed - len(self._stream.unused_data)
        return InflatedAhead(self._target, self._data_start, consumed, self._size, self._crc)

    def discard(self) -> None:
        """Give up: stop and remove the staged file."""
        self._done = True
        out, self._out = self._out, None
        if out is not None:
            out.discard()
            self._target.unlink(missing_ok=True)

    def _feed(self, data: memoryview) -> None:
        if self._stream is None:
            data = self._read_header(data)
            if self._stream is None:
                return
        if not data:
            return
        self._fed += len(data)
        pending = bytes(data)
        while pending and not self._stream.eof:
            out = self._stream.decompress(pending, self._chunk)
            pending = self._stream.unconsumed_tail
            self._write(out)
        if self._stream.eof:
            self._done = True

    def _read_header(self, data: memoryview) -> memoryview:
        """Pass the local header (its name and extra field too); start the stream."""
        if self._skip < 0:
            wanted = _LOCAL_HEADER.size - len(self._head)
            self._head += bytes(data[:wanted])
            data = data[wanted:]
            if len(self._head) < _LOCAL_HEADER.size:
                return data
            fields = _LOCAL_HEADER.unpack(self._head)
            if fields[0] != b"PK\x03\x04" or fields[3] & _ENCRYPTED_FLAG or fields[4] != _DEFLATED:
                raise ValueError("not a deflated, unencrypted first entry")
            self._skip = fields[10] + fields[11]
            self._data_start = _LOCAL_HEADER.size + self._skip
        passed = min(self._skip, len(data))
        self._skip -= passed
        data = data[passed:]
        if self._skip == 0:
            self._stream = self._inflater.decompressobj(-15)
            self._out = StagedFile(self._target)
        return data

    def _write(self, out: bytes) -> None:
        if not out:
            return
        self._size += len(out)
        limits = self._limits
        if self._size > min(limits.max_member_bytes, limits.max_total_bytes) or (
            self._size > limits.ratio_floor_bytes
            and self._size > limits.max_ratio * max(self._fed, 1)
        ):
            raise ValueError("past the delivery's limits")
        self._crc = self._inflater.crc32(out, self._crc)
        assert self._out is not None
        self._out.write(out)
