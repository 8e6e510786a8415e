"""A long-running process under test (a worker): started in its own session, its log in a
file, waited on with bounds, and never left running after the test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["BackgroundProcess"]


class BackgroundProcess:
    """``command`` running with ``env``, its stderr (and stdout) written to ``log``.

    Use it as a context manager: leaving it kills whatever is still running of it
    (the whole process group: a worker's children included).
    """

    def __init__(self, command: Sequence[str], *, env: Mapping[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            list(command),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The process id (also its process group's)."""
        return self.process.pid

    def log(self) -> str:
        """What it has written so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, *, timeout: float, count: int = 1) -> None:
        """Wait until ``text`` appears ``count`` times in its log.

        Raises:
            AssertionError: not within ``timeout`` seconds, or the process ended first.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log().count(text) >= count:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"{text!r} not seen {count} time(s) in {timeout:.0f} s "
            f"(exit code {self.process.poll()}); log:\n{self.log()[-4000:]}"
        )

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process itself (not its children)."""
        os.kill(self.pid, signum)

    def kill_group(self) -> None:
        """SIGKILL the process and every child: what a crashed host leaves."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def wait(self, timeout: float) -> int:
        """Its exit code, waiting at most ``timeout`` seconds."""
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> BackgroundProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.kill_group()
        else:  # its children may outlive it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self._log.close()
