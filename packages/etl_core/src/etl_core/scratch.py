"""Scratch directories that say who owns them, so what a killed process left can be swept.

A unit of work stages downloads, decrypted members and spill files in a private
directory under ``work_dir``. A clean exit removes it; ``kill -9`` cannot. Each
directory therefore holds an ``.owner`` file naming its process run
(:class:`~etl_core.storage.Holder`), and every new scratch directory first sweeps
its siblings whose runs are known to be gone (:func:`sweep_scratch`), so the next
run cleans up after a crash without anyone asking. A process killed between making
the directory and writing ``.owner`` is named by the directory itself: its name
carries the pid and a tag of the host, boot and pid namespace.

A full disk under ``work_dir`` ends the block with :class:`~etl_core.errors.ScratchSpaceError`
naming the work directory (the ``OSError`` of a write names no path), not a bare
``[Errno 28]``, and the scratch is removed all the same.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from etl_core.errors import EtlError, ScratchSpaceError, WorkDirError, first_line
from etl_core.runtime import loaded_source, process_alive
from etl_core.storage.leases import Holder, this_holder

__all__ = [
    "OWNER_FILE",
    "check_work_dir",
    "is_disk_full",
    "make_scratch",
    "mark_owner",
    "scratch_dir",
    "sweep_scratch",
]

logger = logging.getLogger(__name__)

OWNER_FILE = ".owner"
_PREFIX = "etl-"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_FULL_WORDS = ("no space left on device", "disk quota exceeded")
"""How an engine that does not raise ``OSError`` (DuckDB spilling, Arrow) says a full disk."""
_NAMED_OWNER = re.compile(r"^etl-.+-(\d+)\.([0-9a-f]{8})-[^/]+$")
"""``etl-<purpose>-<pid>.<place tag>-<random>``: what :func:`make_scratch` names."""


@contextmanager
def scratch_dir(work_dir: str | Path | None, purpose: str) -> Iterator[Path]:
    """A new private directory ``etl-<purpose>-…`` under ``work_dir`` (system temp when
    ``None``), tagged with this process run and removed when the block ends."""
    directory = make_scratch(work_dir, purpose)
    try:
        yield directory
    except Exception as exc:
        full = _full_scratch(exc, directory.parent, purpose)
        if full is None:
            raise
        raise full from exc
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says a disk is full or over quota (``ENOSPC``, ``EDQUOT``, or an
    engine's error saying so in words)."""
    if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
        return True
    text = str(error).lower()
    return any(words in text for words in _FULL_WORDS)


def _full_scratch(error: BaseException, work_dir: Path, purpose: str) -> EtlError | None:
    """The :class:`ScratchSpaceError` that ``error`` means, when it is a full disk met while
    writing under ``work_dir``; ``None`` for anything else (a platform error, such as a
    full local store's, already names its path)."""
    if isinstance(error, EtlError) or not is_disk_full(error):
        return None
    named = error.filename if isinstance(error, OSError) else None
    if named is not None and not Path(os.fsdecode(named)).is_relative_to(work_dir):
        return None  # another disk's file, named by the error itself
    return ScratchSpaceError(str(work_dir), purpose=purpose, detail=first_line(error))


def make_scratch(work_dir: str | os.PathLike[str] | None, purpose: str) -> Path:
    """A new private directory ``etl-<purpose>-…`` tagged with this process run, for an
    object that outlives one block (a keyring, an analysis); the caller removes it, and
    the next run sweeps it if this process is killed first."""
    sweep_scratch(work_dir)
    me = this_holder()
    owner = f"{me.pid}.{_place(me)}-" if me.namespace else ""
    try:
        made = tempfile.mkdtemp(prefix=f"{_PREFIX}{purpose}-{owner}", dir=work_dir)
    except OSError as exc:
        root = os.fspath(work_dir) if work_dir is not None else tempfile.gettempdir()
        full = _full_scratch(exc, Path(root), purpose)
        if full is not None:
            raise full from exc
        raise WorkDirError(
            root, exc.strerror or str(exc), source=loaded_source("work_dir")
        ) from exc
    directory = Path(made)
    try:
        mark_owner(directory)
    except BaseException as exc:
        shutil.rmtree(directory, ignore_errors=True)
        full = _full_scratch(exc, directory.parent, purpose)
        if full is None:
            raise
        raise full from exc
    return directory


def mark_owner(directory: Path) -> None:
    """Tag ``directory`` (made by the caller) as this process run's, for :func:`sweep_scratch`.

    Its name must start with ``etl-`` for a sweep to consider it.
    """
    (directory / OWNER_FILE).write_text(json.dumps(this_holder().to_dict()))


def check_work_dir(work_dir: str | os.PathLike[str] | None) -> None:
    """Make and remove one scratch directory in ``work_dir``, before a command runs units
    that need one: a ``work_dir`` where none can be made is then one error at start
    (exit 2), not the same failure in every unit and a run that exits 1.

    Raises:
        WorkDirError: ``work_dir`` is missing, not a directory or not writable.
        ScratchSpaceError: its disk has no room for a directory.
    """
    shutil.rmtree(make_scratch(work_dir, "check"), ignore_errors=True)


def sweep_scratch(work_dir: str | os.PathLike[str] | None) -> int:
    """Remove the scratch directories under ``work_dir`` whose process run is gone.

    Only directories this module made (an ``.owner`` file naming a run of this
    host, boot and pid namespace that no longer runs) are touched.

    Returns:
        How many directories were removed.
    """
    root = Path(work_dir) if work_dir is not None else Path(tempfile.gettempdir())
    removed = 0
    try:
        candidates = sorted(path for path in root.glob(f"{_PREFIX}*") if path.is_dir())
    except OSError:
        return 0
    for directory in candidates:
        owner = _owner(directory)
        if owner is not None:
            shutil.rmtree(directory, ignore_errors=True)
            logger.info(
                "removed the scratch of a process that is gone",
                extra={"path": str(directory), "holder": owner},
            )
            removed += 1
    return removed


def _owner(directory: Path) -> str | None:
    """Who made ``directory``, when that process run is known to be gone; else ``None``."""
    try:
        holder = Holder.from_dict(json.loads((directory / OWNER_FILE).read_text()))
    except (OSError, ValueError):  # killed before or while it was written: the name says who
        return _owner_by_name(directory.name)
    return holder.describe() if holder.is_gone() else None


def _owner_by_name(name: str) -> str | None:
    """The gone process a directory's name carries (one killed before its ``.owner``)."""
    named = _NAMED_OWNER.match(name)
    me = this_holder()
    if named is None or not me.namespace or named[2] != _place(me):
        return None
    pid = int(named[1])
    if pid == me.pid or process_alive(pid):  # this run's own, or a live process's
        return None
    return f"{me.host}:{pid}"


def _place(holder: Holder) -> str:
    """A short tag of the holder's host, boot and pid namespace."""
    return hashlib.sha256(f"{holder.host}\0{holder.namespace}".encode()).hexdigest()[:8]
