"""The fault hook really signals its own process at the named step (a child Python)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from etl_core.faults import FAULT_ENV

CHILD = """
from etl_core.faults import Step, fault_point
fault_point(Step.TRANSFORM)
print("went on")
"""


@pytest.mark.parametrize(
    ("action", "returncode"),
    [("kill", -signal.SIGKILL), ("terminate", -signal.SIGTERM), ("interrupt", -signal.SIGINT)],
)
def test_the_process_signals_itself_at_the_step(action: str, returncode: int) -> None:
    env = {**os.environ, FAULT_ENV: f"transform:{action}"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == returncode, done.stderr
    assert "went on" not in done.stdout
    if action == "interrupt":  # Python's own Ctrl-C handler: KeyboardInterrupt at the step
        assert "KeyboardInterrupt" in done.stderr
