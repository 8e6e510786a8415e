"""Files the commands write for other programs (the status page, node_exporter's textfile
collector): written whole or not at all, so a reader never sees half of one."""

from __future__ import annotations

import contextlib
from pathlib import Path

__all__ = ["replace_file"]


def replace_file(path: Path, data: bytes, *, make_folder: bool = True) -> None:
    """Write ``data`` to ``path``: beside it first, then renamed over it (its folder is made
    unless ``make_folder`` is false: a collector reads a folder that exists).

    Raises:
        OSError: the file could not be written; nothing half-written is left behind.
    """
    partial = path.with_name(f".{path.name}.partial")
    try:
        if make_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        partial.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
