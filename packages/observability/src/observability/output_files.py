"""Files the commands write for other programs (the status page, node_exporter's textfile
collector): written whole or not at all, so a reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

__all__ = ["replace_file"]


def replace_file(path: Path, data: bytes, *, make_folder: bool = True) -> None:
    """Write ``data`` to ``path``: beside it first (a hidden ``.partial`` file of its own,
    which no ``*.prom`` glob reads), then renamed over it, keeping the permissions of the
    file it replaces (its folder is made unless ``make_folder`` is false: a collector reads
    a folder that exists).

    Raises:
        OSError: the file could not be written; nothing half-written is left behind.
    """
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")  # one per writer
    try:
        if make_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        mode = _mode_of(path)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask
        with open(descriptor, "wb") as file:
            file.write(data)
        if mode is not None:
            os.chmod(partial, mode)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise


def _mode_of(path: Path) -> int | None:
    """The permission bits of the regular file at ``path``; ``None`` when there is none."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return stat.S_IMODE(status.st_mode) if stat.S_ISREG(status.st_mode) else None
