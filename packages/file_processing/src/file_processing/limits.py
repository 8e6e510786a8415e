"""Limits that bound what unpacking and decryption may produce from one delivery.

Every limit is checked against bytes *actually* produced while streaming, never
against sizes an archive declares about itself, so a lying header cannot get
past them. The defaults suit a worker with a few tens of GiB of scratch disk.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from etl_core.errors import ConfigError, FieldError

__all__ = ["GIB", "MIB", "UnpackLimits"]

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class UnpackLimits:
    """Safety limits for one delivery; all configurable, all positive.

    Attributes:
        max_total_bytes: Bytes written out across all members and nesting levels
            (default 10 GiB). Also caps any single decompressed or decrypted stream.
        max_member_bytes: Bytes of any one member (default 5 GiB).
        max_ratio: Largest uncompressed/compressed ratio of one stream (default 200).
        ratio_floor_bytes: Output below this many bytes is never refused for its
            ratio (default 1 MiB): tiny files of repeated bytes compress very well.
        max_entries: Archive entries, directories included, across all levels
            (default 10,000).
        max_depth: Archive layers that may be opened, the outermost included
            (default 3); a compressed tar (``.tar.gz``) counts as one layer.
    """

    max_total_bytes: int = 10 * GIB
    max_member_bytes: int = 5 * GIB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = MIB
    max_entries: int = 10_000
    max_depth: int = 3

    def __post_init__(self) -> None:
        errors = [
            FieldError(f.name, f"must be a positive number, got {getattr(self, f.name)!r}")
            for f in fields(self)
            if not _is_positive(getattr(self, f.name))
        ]
        if errors:
            raise ConfigError("invalid unpack limits", errors)


def _is_positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0
