"""Reading response bodies: JSON parsing, dotted-path lookups, the records array.

A source names places in a body by dotted paths (``data.items``, ``meta.next``);
a path segment that is a number indexes an array. Anything that does not match the
configuration is an :class:`~data_pipeline.errors.ApiResponseError` naming the
endpoint, the URL and the path, so the configuration can be fixed.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import orjson

from data_pipeline.errors import ApiResponseError, NestedTooDeepError

__all__ = [
    "MISSING",
    "extract_records",
    "lookup",
    "nested_deeper",
    "orjson_reads_exactly",
    "parse_body",
    "path_blocked",
]


class _Missing:
    """The value of a path that is not in the document."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def lookup(document: object, path: str) -> Any:
    """The value at dotted ``path`` in ``document``, or :data:`MISSING`; ``""`` is the document."""
    value = document
    for part in path.split(".") if path else ():
        if isinstance(value, dict):
            value = value.get(part, MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def path_blocked(document: object, path: str) -> str | None:
    """Why dotted ``path`` cannot be followed in ``document`` when the way is blocked by a
    value that holds no keys (a number, a text, a boolean, an array asked for a name: a
    body that is not the kind of document the path is for), else ``None``; an absent key,
    a ``null`` or an empty array on the way is not blocked (an API may leave out an empty
    page's array, and PHP's ``json_encode`` writes an empty map as ``[]``)."""
    value = document
    parts = path.split(".") if path else []
    for depth, part in enumerate(parts):
        if value is None or value == []:
            return None
        where = "the body" if depth == 0 else f"{'.'.join(parts[:depth])!r}"
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list):
            if not part.isdigit():
                return f"{where} is an array, not an object with {part!r}"
            value = value[int(part)] if int(part) < len(value) else None
        else:
            kind = "boolean" if isinstance(value, bool) else "string"
            if isinstance(value, int | float) and not isinstance(value, bool):
                kind = "number"
            return f"{where} is a {kind}, not an object with {part!r}"
    return None


def parse_body(body: bytes, *, source: str, endpoint: str, url: str) -> Any:
    """The JSON document of a response body.

    Raises:
        ApiResponseError: the body is not JSON (the start of it is quoted).
        NestedTooDeepError: it nests deeper than orjson and the standard library read.
    """
    try:
        return _decode(body)
    except RecursionError:
        raise NestedTooDeepError(
            f"the response of {url} nests arrays or objects deeper than JSON is read here "
            "(about 1000 levels, the standard library's recursion limit); the raw archive keeps it",
            source=source,
            endpoint=endpoint,
            url=url,
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        start = body[:80].decode("utf-8", "replace")
        raise ApiResponseError(
            f"the response of {url} is not JSON ({exc}); it starts {start!r}",
            source=source,
            endpoint=endpoint,
            url=url,
        ) from None


def _decode(body: bytes) -> Any:
    """orjson, several times faster, unless the body has a number of 19 digits or more
    (orjson reads an integer beyond 64 bits as a float: precision lost) or orjson refuses
    it (NaN, another encoding than UTF-8): then the standard library, which names the
    error of a body that is not JSON at all."""
    if orjson_reads_exactly(body):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return _stdlib_loads(body)


def _stdlib_loads(body: bytes) -> Any:
    """``json.loads`` in a thread of its own: its parser goes as deep as the recursion limit
    less the caller's stack, so from a fresh stack a body is read, or is too deep
    (``RecursionError``), alike in the walk, under a worker and in replay (about 0.2 ms)."""
    outcome: list[Any] = []

    def read() -> None:
        try:
            outcome.append(json.loads(body))
        except BaseException as exc:  # handed to the caller
            outcome.append(exc)

    thread = threading.Thread(target=read, name="json-read", daemon=True)
    thread.start()
    thread.join()
    [result] = outcome
    if isinstance(result, BaseException):
        raise result
    return result


def nested_deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels (itself the
    first), found without recursion."""
    levels: list[tuple[Any, int]] = [(value, 1)]
    while levels:
        inner, depth = levels.pop()
        if depth > limit:
            return True
        values = inner.values() if isinstance(inner, dict) else inner
        levels.extend((v, depth + 1) for v in values if isinstance(v, dict | list))
    return False


def orjson_reads_exactly(body: bytes) -> bool:
    """Whether ``body`` has no number of 19 digits or more (orjson reads an integer beyond
    64 bits as a float); a fast ``translate`` + ``find`` scan, unlike a regex."""
    return body.translate(_DIGITS_AS_ZERO).find(_LONG_NUMBER) < 0


def extract_records(
    document: object, records_path: str, *, source: str, endpoint: str, url: str
) -> list[Any]:
    """The items of the records array at ``records_path``; an absent path or ``null`` is an
    empty page. Each item is judged later (:func:`~data_pipeline.ingest.records.refusal`).

    Raises:
        ApiResponseError: the value is not an array.
    """
    found = lookup(document, records_path)
    if found is MISSING or found is None:
        blocked = path_blocked(document, records_path)
        if blocked is not None:
            raise ApiResponseError(
                f"records_path {records_path!r} of {url} cannot be followed: {blocked}",
                source=source,
                endpoint=endpoint,
                url=url,
            )
        return []
    if not isinstance(found, list):
        where = f"records_path {records_path!r}" if records_path else "the body"
        raise ApiResponseError(
            f"{where} of {url} is {type(found).__name__}, expected an array of records",
            source=source,
            endpoint=endpoint,
            url=url,
        )
    return found
