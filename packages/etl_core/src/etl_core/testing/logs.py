"""``capture_logs()``: assert on structured log records in tests."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from etl_core.logging import record_to_dict

__all__ = ["capture_logs"]


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
