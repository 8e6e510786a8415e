"""Scratch directories that say who owns them, so what a killed process left can be swept.

A unit of work stages downloads, decrypted members and spill files in a private
directory under ``work_dir``. A clean exit removes it; ``kill -9`` cannot. Each
directory therefore holds an ``.owner`` file naming its process run
(:class:`~etl_core.storage.Holder`), and every new scratch directory first sweeps
its siblings whose runs are known to be gone (:func:`sweep_scratch`), so the next
run cleans up after a crash without anyone asking.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from etl_core.storage.leases import Holder, this_holder

__all__ = ["OWNER_FILE", "make_scratch", "mark_owner", "scratch_dir", "sweep_scratch"]

logger = logging.getLogger(__name__)

OWNER_FILE = ".owner"
_PREFIX = "etl-"


@contextmanager
def scratch_dir(work_dir: str | Path | None, purpose: str) -> Iterator[Path]:
    """A new private directory ``etl-<purpose>-…`` under ``work_dir`` (system temp when
    ``None``), tagged with this process run and removed when the block ends."""
    directory = make_scratch(work_dir, purpose)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def make_scratch(work_dir: str | os.PathLike[str] | None, purpose: str) -> Path:
    """A new private directory ``etl-<purpose>-…`` tagged with this process run, for an
    object that outlives one block (a keyring, an analysis); the caller removes it, and
    the next run sweeps it if this process is killed first."""
    sweep_scratch(work_dir)
    directory = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{purpose}-", dir=work_dir))
    try:
        mark_owner(directory)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory


def mark_owner(directory: Path) -> None:
    """Tag ``directory`` (made by the caller) as this process run's, for :func:`sweep_scratch`.

    Its name must start with ``etl-`` for a sweep to consider it.
    """
    (directory / OWNER_FILE).write_text(json.dumps(this_holder().to_dict()))


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
        candidates = sorted(root.glob(f"{_PREFIX}*/{OWNER_FILE}"))
    except OSError:
        return 0
    for owner_file in candidates:
        try:
            holder = Holder.from_dict(json.loads(owner_file.read_text()))
        except (OSError, ValueError):
            continue
        if holder.is_gone():
            shutil.rmtree(owner_file.parent, ignore_errors=True)
            logger.info(
                "removed the scratch of a process that is gone",
                extra={"path": str(owner_file.parent), "holder": holder.describe()},
            )
            removed += 1
    return removed
