"""Streaming, bounded unpacking of vendor deliveries (zip, gzip, bzip2, xz, tar, nested).

:func:`unpack` decides what a delivery is from its magic bytes, never from its
name, and yields its regular-file members one at a time, each spooled to a
temporary file. Memory stays bounded whatever the file size (chunked copies of
:data:`CHUNK_SIZE`), and the :class:`~file_processing.limits.UnpackLimits` are
checked against bytes actually decompressed. Anything hostile or broken (path
traversal, links, devices, encrypted or overlapping zip entries, bad CRCs,
truncation, bombs) raises :class:`~file_processing.errors.RefusedError` with a
reason code, and the temporary files are removed.

Each format is a module of :mod:`file_processing.archives`, registered in
:data:`~file_processing.archives.ARCHIVE_FORMATS`; the walk and the limits they share
are :class:`~file_processing.archives.session.Session`'s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from etl_core.errors import ConfigError, FieldError, UnknownKindError
from file_processing.archives import ARCHIVE_FORMATS
from file_processing.archives.base import CHUNK_SIZE, Member, Packing
from file_processing.archives.session import Session
from file_processing.archives.zip import zip_head_inflater
from file_processing.inflate_ahead import InflatedAhead
from file_processing.limits import UnpackLimits

__all__ = ["CHUNK_SIZE", "DEFAULT_LIMITS", "Member", "Packing", "unpack", "zip_head_inflater"]

DEFAULT_LIMITS = UnpackLimits()


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
        UnknownKindError: ``packing`` names none of :class:`Packing` (a
            :class:`~etl_core.errors.ConfigError` naming the field, the value and the
            packings that exist).
        ConfigError: ``name`` is invalid.
    """
    mode = _parse_packing(packing)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            "invalid unpack call", [FieldError("name", "must be a non-empty file name")]
        )
    return _unpack(source, name, mode, limits, workdir, ahead)


def _parse_packing(packing: Packing | str) -> Packing:
    try:
        return Packing(packing)
    except ValueError:
        known = [p.value for p in Packing]
        raise UnknownKindError("packing", str(packing), known, where="the unpack call") from None


def _unpack(
    source: BinaryIO | str | os.PathLike[str],
    name: str,
    mode: Packing,
    limits: UnpackLimits,
    workdir: str | os.PathLike[str] | None,
    ahead: InflatedAhead | None = None,
) -> Generator[Member, None, None]:
    scratch = Path(tempfile.mkdtemp(prefix="unpack-", dir=workdir))
    session = Session(limits, scratch, ahead, ARCHIVE_FORMATS)
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
