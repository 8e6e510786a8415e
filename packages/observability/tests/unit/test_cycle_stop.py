"""The evaluation child stops on SIGTERM while it waits for its next cycle (no deadlock)."""

from __future__ import annotations

import subprocess
import sys

WAITING_CHILD = """
import multiprocessing, os, signal, threading
from observability.cycle_process import stop_on_sigterm
stop = multiprocessing.get_context("spawn").Event()
stop_on_sigterm(stop)
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
print("stopped" if stop.wait(20) else "still waiting", flush=True)
"""


def test_a_sigterm_during_the_wait_for_the_next_cycle_stops_it() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WAITING_CHILD], capture_output=True, text=True, timeout=15
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"
