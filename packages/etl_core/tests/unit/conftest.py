"""Fixtures shared by etl_core's unit tests."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from etl_core.logging import clear_context, configure_logging
from etl_core.redaction import forget_secrets


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """JSON logging at DEBUG into a buffer; the root logger, the bound context and the
    remembered secrets restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging(fmt="json", stream=buffer, level="DEBUG")
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    clear_context()
    forget_secrets()
