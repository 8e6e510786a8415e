"""Dead letters: what a run received but could not land, kept beside its manifest.

A page whose body is not JSON (``not_json``) or has no records array where
``records_path`` points (``not_an_array``), and an item of the records array that is not
an object (``not_an_object``) or lacks a primary key field (``missing_primary_key``), and a
body or item nested deeper than JSON is read or written here (``too_deep``), is
listed in ``raw/api/<source>/<endpoint>/dt=<date>/<run>/_dead_letters.jsonl``, one JSON
object a line: ``reason``, ``error``, ``page`` (its number in the raw archive), ``position``
(its index in the records array; ``null`` for a whole page), ``url`` (secrets removed) and
``raw_text``, the text as received (the first :data:`MAX_RAW_CHARS` characters; the raw
archive keeps every byte). The run goes on and says how many it set aside; ``ingest``
exits 3 when a run has any. A whole page set aside is also counted apart (``pages``): its
records never landed, and the window completed past them.

The file is rewritten whole at every checkpoint, like the manifest, and a resumed run
keeps the entries before its position (later ones are found again), so each is listed
once. At most :data:`MAX_LISTED` are listed; beyond, they are counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any

from etl_core.errors import ObjectNotFoundError
from etl_core.layout import raw_api_dead_letters_key
from etl_core.storage import ObjectStore

__all__ = ["MAX_LISTED", "MAX_RAW_CHARS", "DeadLetters"]

MAX_RAW_CHARS = 4096
"""Characters of the raw text kept in an entry."""
MAX_LISTED = 10_000
"""Entries listed in a run's file at most (the count goes on)."""


class DeadLetters:
    """The dead letters of one run.

    Args:
        store: Where the file is written; ``source``, ``endpoint``, ``dt``, ``run`` name it.
        resume_at: ``(page, position)`` the run resumes at: stored entries before it stay.
        count: Dead letters already counted before ``resume_at`` (from the checkpoint).
    """

    def __init__(
        self,
        store: ObjectStore,
        source: str,
        endpoint: str,
        dt: date,
        run: str,
        *,
        resume_at: tuple[int, int] = (0, 0),
        count: int = 0,
    ) -> None:
        self.store = store
        self.key = raw_api_dead_letters_key(source, endpoint, dt, run)
        self.entries = [e for e in self._stored() if _place(e) < resume_at]
        self.count = max(count, len(self.entries))
        self.pages = sum(1 for entry in self.entries if entry.get("position") is None)
        """Whole pages set aside (``position`` null): pages whose records never landed
        (those before ``resume_at`` counted from the listed entries)."""
        self._dirty = bool(self.entries) or self._exists

    def add(
        self, *, reason: str, error: str, page: int, position: int | None, url: str, raw: Any
    ) -> None:
        """Set one item (``position``) or a whole page (``position=None``) aside."""
        self.count += 1
        if position is None:
            self.pages += 1
        self._dirty = True
        if len(self.entries) >= MAX_LISTED:
            return
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else _text(raw)
        self.entries.append(
            {
                "reason": reason,
                "error": error,
                "page": page,
                "position": position,
                "url": url,
                "raw_text": text[:MAX_RAW_CHARS],
                "truncated": len(text) > MAX_RAW_CHARS,
            }
        )

    def write(self) -> None:
        """Write the file (nothing when the run never had a dead letter)."""
        lines = self.encoded()
        if lines is not None:
            self.store.write_bytes(self.key, lines)

    def encoded(self) -> bytes | None:
        """The file's bytes as they stand (``None`` when the run never had a dead letter)."""
        if not self._dirty:
            return None
        return b"".join(json.dumps(e, ensure_ascii=False).encode() + b"\n" for e in self.entries)

    def _stored(self) -> list[dict[str, Any]]:
        self._exists = False
        try:
            data = self.store.read_bytes(self.key)
        except ObjectNotFoundError:
            return []
        self._exists = True
        entries = []
        for line in data.splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:  # writes are whole; a line that does not read is not ours
                continue
        return entries


def _place(entry: dict[str, Any]) -> tuple[int, int]:
    position = entry.get("position")
    return int(entry.get("page", 0)), 0 if position is None else int(position)


def _text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except RecursionError:  # nested too deep for the encoder: the start, written level by level
        return _leading_text(value, MAX_RAW_CHARS + 1)
    except (TypeError, ValueError):
        return repr(value)


def _leading_text(value: Any, limit: int) -> str:
    """The start of ``value`` as :func:`json.dumps` writes it, ``limit`` characters at least
    when there are as many, written without recursion (so at any depth)."""
    out: list[str] = []
    size = 0
    levels: list[tuple[Iterator[tuple[str, Any]], str]] = [(iter([("", value)]), "")]
    while levels and size < limit:
        items, closing = levels[-1]
        item = next(items, None)
        if item is None:
            levels.pop()
            text = closing
        else:
            prefix, inner = item
            if isinstance(inner, dict):
                text = prefix + "{"
                levels.append((_members(inner), "}"))
            elif isinstance(inner, list):
                text = prefix + "["
                levels.append((_elements(inner), "]"))
            else:
                text = prefix + json.dumps(inner, ensure_ascii=False)
        out.append(text)
        size += len(text)
    return "".join(out)


def _members(value: dict[Any, Any]) -> Iterator[tuple[str, Any]]:
    for number, (key, inner) in enumerate(value.items()):
        yield (", " if number else "") + json.dumps(str(key), ensure_ascii=False) + ": ", inner


def _elements(value: list[Any]) -> Iterator[tuple[str, Any]]:
    for number, inner in enumerate(value):
        yield (", " if number else ""), inner
