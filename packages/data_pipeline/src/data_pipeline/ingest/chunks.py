"""Landed records: gzip JSON Lines chunks under ``landing/api/<source>/<endpoint>/``.

A chunk is written whole (the store publishes it on close) under a name that depends
only on the window's run and the chunk's number, so a chunk written again after a
crash replaces itself instead of landing twice. Records are written as received
(keys in their order, text not escaped), by orjson: a float that is not JSON (NaN,
Infinity, which the standard library reads) lands as ``null`` (the raw archive keeps
the text as received); an integer beyond 64 bits is written by the standard library, and
so is a record holding a lone surrogate (``"\\ud800"``: valid JSON, not Unicode), escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import orjson

from data_pipeline.ingest.compression import gzip_bytes
from data_pipeline.ingest.documents import nested_deeper

__all__ = ["MAX_WRITE_DEPTH", "TOO_DEEP_TO_WRITE", "compress_lines", "encode_chunk", "encode_lines"]

_DUMPS_LINE = partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)


MAX_WRITE_DEPTH = 512
"""Levels of objects and arrays (the record's own the first) written at most: orjson writes
255, the standard library the rest, up to its recursion limit less the caller's stack (so
at a depth that differs between the walk, the page reader and replay); a fixed limit well
within it makes a record land, or not, the same everywhere."""

TOO_DEEP_TO_WRITE = (
    f"a record nested deeper than JSON is written here ({MAX_WRITE_DEPTH} levels of objects "
    "and arrays); the raw archive keeps it"
)
"""The dead letter's error for a record :func:`encode_lines` cannot write (``RecursionError``)."""

BATCH = 128
"""Records encoded by one C-level ``join``: orjson's outputs are over-allocated (about 2 KB
for a 250-byte line), so a whole chunk's at once would hold tens of MB."""


def encode_lines(records: Sequence[dict[str, Any]]) -> bytes:
    """``records`` as JSON Lines: by orjson, :data:`BATCH` lines per C-level call; record by
    record in a batch with a line only the standard library writes (``RecursionError`` for
    one nested too deep for it: see :data:`TOO_DEEP_TO_WRITE`)."""
    lines = bytearray()
    for start in range(0, len(records), BATCH):
        batch = records[start : start + BATCH]
        try:
            lines += b"".join(map(_DUMPS_LINE, batch))
        except orjson.JSONEncodeError:  # an integer beyond 64 bits somewhere
            lines += b"".join(map(_line, batch))
    return bytes(lines)


def compress_lines(lines: bytes) -> bytes:
    """JSON Lines as a chunk's gzip bytes (no timestamp in the header)."""
    return gzip_bytes(lines)


def encode_chunk(records: Sequence[dict[str, Any]]) -> bytes:
    """``records`` as gzip JSON Lines (the same records give the same lines)."""
    return compress_lines(encode_lines(records))


def _line(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, or nested deeper than 255
        pass
    text = _dumps(record, ensure_ascii=False)  # or RecursionError
    brackets = text.count("[") + text.count("{")  # fewer than the limit: not as deep
    if brackets > MAX_WRITE_DEPTH and nested_deeper(record, MAX_WRITE_DEPTH):
        raise RecursionError(TOO_DEEP_TO_WRITE)
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:  # a lone surrogate ("\ud800", valid JSON, not UTF-8): the
        # line keeps it escaped as the API sent it, the only way UTF-8 JSON can hold it
        return _dumps(record, ensure_ascii=True).encode() + b"\n"


def _dumps(record: dict[str, Any], *, ensure_ascii: bool) -> str:
    """``record`` as JSON by the standard library, a float that is not JSON (NaN, Infinity)
    written ``null`` as orjson writes it (the standard library would write ``NaN``)."""
    try:
        return json.dumps(record, ensure_ascii=ensure_ascii, separators=(",", ":"), allow_nan=False)
    except ValueError:  # rare: a NaN in a record orjson could not write for another reason
        return json.dumps(_finite(record), ensure_ascii=ensure_ascii, separators=(",", ":"))


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
