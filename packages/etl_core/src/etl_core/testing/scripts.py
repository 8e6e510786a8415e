"""Run a package's console script as an operator would, isolated from the caller's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["run_script"]


def run_script(
    name: str,
    *args: str,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run console script ``name`` (installed beside this interpreter) and capture its output.

    The child sees the current environment minus every ``ETL_*`` variable and
    ``DATABASE_URL`` (so a developer's settings cannot leak into a test), with
    JSON logs, plus ``env``.
    """
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"
    }
    environ.update({"ETL_LOG_FORMAT": "json", **(env or {})})
    script = Path(sys.executable).parent / name
    return subprocess.run(
        [str(script), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
