"""``capture_logs()``: assert on structured log records in tests; ``refused_start()``: the
errors a command printed as JSON log lines when it refused to start."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from etl_core.logging import record_to_dict

__all__ = ["capture_logs", "refused_start", "start_refused"]


class _CapturingHandler(logging.Handler):
    def __init__(self, sink: list[dict[str, Any]]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record_to_dict(record))


@contextlib.contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """Collect every record (as the dict the JSON formatter would print) in a list.

    The root logger's level is lowered to ``level`` for the duration, so DEBUG
    records are captured even when logging was never configured.
    """
    records: list[dict[str, Any]] = []
    handler = _CapturingHandler(records)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def refused_start(done: subprocess.CompletedProcess[str]) -> str:
    """The error events of a command (``ETL_LOG_FORMAT=json``) that refused to start: it
    exited 2 (a settings error) and a worker among them never said it was ready."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert " ready." not in done.stderr
    said = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    return " ".join(line["event"] for line in said if line["level"] == "error")


def start_refused(
    argv: Sequence[str], env: Mapping[str, str], *, timeout: float = 90
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run ``argv`` (a worker starting, a command) with ``env``, expecting it to refuse to
    start (:func:`refused_start`): what it printed, and its error events."""
    done = subprocess.run(
        list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    return done, refused_start(done)
