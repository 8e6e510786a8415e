"""A real small disk for tests of full-disk behaviour: a tmpfs of a given size."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def small_disk(parent: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount``'s spelling: ``256k``, ``1m``) mounted at
    ``parent/small`` and unmounted afterwards. Mounting needs root: the current test is
    skipped, naming why, when the mount fails."""
    mount = parent / "small"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        import pytest

        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
