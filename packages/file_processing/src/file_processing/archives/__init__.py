"""Archive formats the unpacker opens, one module per format, chosen by the magic bytes
through :data:`ARCHIVE_FORMATS`: ``zip``, ``gzip``, ``bzip2``, ``xz``, ``tar``. Every one
passes the same contract test (``tests/integration/test_archive_formats.py``)."""

from __future__ import annotations

from file_processing.archives.base import ArchiveFormat, Layer, Member, Packing
from file_processing.archives.compressed import BZIP2, GZIP, XZ, Compressed
from file_processing.archives.session import Session
from file_processing.archives.tar import TarFormat
from file_processing.archives.zip import ZipFormat

__all__ = [
    "ARCHIVE_FORMATS",
    "ArchiveFormat",
    "Compressed",
    "Layer",
    "Member",
    "Packing",
    "Session",
    "TarFormat",
    "ZipFormat",
]

ARCHIVE_FORMATS: dict[str, ArchiveFormat] = {
    "zip": ZipFormat(),
    "gzip": GZIP,
    "bzip2": BZIP2,
    "xz": XZ,
    "tar": TarFormat(),
}
"""The format of each archive :class:`~file_processing.sniff.Kind`, by its value; refusal
messages list them in this order."""
