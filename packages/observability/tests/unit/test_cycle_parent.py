"""The evaluation child ends when its server is killed, not an interval later."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SERVER = """
import multiprocessing, os, sys, time

def child(stop, path):
    from observability.cycle_process import stop_with_parent
    stop_with_parent(stop)
    open(path + ".ready", "w").close()
    verdict = "stopped" if stop.wait(60) else "still waiting"
    with open(path + ".part", "w") as out:
        out.write(verdict)
    os.replace(path + ".part", path)

if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    context.Process(target=child, args=(stop, sys.argv[1]), daemon=True).start()
    time.sleep(120)
"""


def wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


def test_a_server_killed_with_sigkill_stops_its_evaluation_child(tmp_path: Path) -> None:
    script, verdict = tmp_path / "server.py", tmp_path / "verdict"
    script.write_text(SERVER)
    server = subprocess.Popen([sys.executable, str(script), str(verdict)])
    try:
        assert wait_for(verdict.with_suffix(".ready"), 30), "the child did not start"
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        assert wait_for(verdict, 20), "the child still runs 20 s after its server was killed"
        assert verdict.read_text() == "stopped"
    finally:
        server.kill()
        server.wait(10)
