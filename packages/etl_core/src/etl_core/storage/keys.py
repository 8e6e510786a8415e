"""Object keys: validation and joining.

A key is a relative, ``/``-separated path inside a store (``landing/acme/a.csv``).
Every backend validates keys the same way, so a key that works locally works on
S3 and a key that could escape the store's prefix (``..``, an absolute path, a
backslash) is refused everywhere with :class:`~etl_core.errors.InvalidKeyError`.
"""

from __future__ import annotations

import re

from etl_core.errors import InvalidKeyError

__all__ = ["MAX_KEY_BYTES", "join_key", "validate_key", "validate_prefix"]

MAX_KEY_BYTES = 1024
"""S3's limit on the UTF-8 length of a key (store prefix included)."""

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it names an object, else raise ``InvalidKeyError``.

    A valid key is a non-empty relative path of non-empty ``/``-separated
    segments, none of them ``.`` or ``..``, with no backslash, no control
    character (NUL included) and at most :data:`MAX_KEY_BYTES` bytes of UTF-8.
    """
    _check_text(key, "key")
    if key.endswith("/"):
        raise InvalidKeyError(
            f"invalid key {key!r}: it ends with '/'; a key names an object, not a folder",
            key=key,
        )
    _check_segments(key, key.split("/"), "key")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` unchanged if it is a valid listing prefix, else raise.

    A prefix follows the key rules, except that it may be empty (everything)
    and may end with ``/``. As on S3, it is matched as a string prefix of keys,
    so ``"data/fi"`` matches ``"data/file.csv"``.
    """
    if prefix == "":
        return prefix
    _check_text(prefix, "prefix")
    segments = prefix.split("/")
    if segments[-1] == "":
        segments.pop()
    _check_segments(prefix, segments, "prefix")
    return prefix


def join_key(*parts: str) -> str:
    """Join key parts with ``/`` and validate the result.

    Empty parts are skipped and one trailing ``/`` on a part is tolerated, so
    ``join_key("validated/", dataset, "dt=2024-05-01", name)`` reads naturally.
    A part that starts with ``/`` is refused rather than silently made relative.

    Raises:
        InvalidKeyError: the joined key is not valid (see :func:`validate_key`).
    """
    pieces: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise InvalidKeyError(
                f"invalid key part {part!r}: expected a string, got {type(part).__name__}"
            )
        if part.startswith("/"):
            raise InvalidKeyError(
                f"invalid key part {part!r}: it starts with '/'; keys are relative", key=part
            )
        trimmed = part[:-1] if part.endswith("/") else part
        if trimmed:
            pieces.append(trimmed)
    return validate_key("/".join(pieces))


def _check_text(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise InvalidKeyError(
            f"invalid {what} {value!r}: expected a string, got {type(value).__name__}"
        )
    if value == "":
        raise InvalidKeyError(f"invalid {what} '': it is empty", key=value)
    if value.startswith("/"):
        raise InvalidKeyError(
            f"invalid {what} {value!r}: it starts with '/'; keys are relative to the store",
            key=value,
        )
    if "\\" in value:
        raise InvalidKeyError(
            f"invalid {what} {value!r}: it contains a backslash; use '/' to separate segments",
            key=value,
        )
    if _CONTROL_CHARS.search(value):
        raise InvalidKeyError(
            f"invalid {what} {value!r}: it contains a control character (NUL, newline...)",
            key=value,
        )
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKeyError(
            f"invalid {what} {value!r}: it is not encodable as UTF-8 (lone surrogate)",
            key=value,
        ) from None
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"invalid {what} {value[:60]!r}...: it is longer than {MAX_KEY_BYTES} bytes",
            key=value,
        )


def _check_segments(value: str, segments: list[str], what: str) -> None:
    for segment in segments:
        if segment == "":
            raise InvalidKeyError(
                f"invalid {what} {value!r}: it has an empty segment ('//')", key=value
            )
        if segment in {".", ".."}:
            raise InvalidKeyError(
                f"invalid {what} {value!r}: segment {segment!r} could escape the store's prefix",
                key=value,
            )
