"""Landing keys judged as names: hostile or unaddressable keys, and the safe names they get.

A vendor's tool can store an object under any string: ``a//b``, ``x/../y``, a
newline, a right-to-left override that makes ``report<U+202E>vsc.exe`` display as
``reportexe.csv``. Such an object still gets an outcome: it is quarantined with a
``name.*`` reason under a name derived from its key (the readable characters and
a hash of the whole key), and its record keeps the key exactly as stored. A key
is never published under a name that displays as something else.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass

from etl_core.errors import InvalidKeyError
from etl_core.storage.keys import validate_key
from file_processing.reasons import Reason

__all__ = ["NameProblem", "escaped", "is_addressable", "key_problem", "safe_name"]

_BIDI_AND_FORMAT = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_HASH_CHARS = 16


@dataclass(frozen=True)
class NameProblem:
    """Why a landing key cannot be processed under its own name."""

    reason: Reason
    detail: str


def key_problem(key: str) -> NameProblem | None:
    """What is wrong with the landing key ``key`` as a name, or ``None`` when nothing is.

    Checked in order of danger: ``.``/``..`` segments (``name.path_traversal``),
    control characters (``name.control_character``), bidirectional and other
    invisible format characters (``name.spoofing``), then anything else the store
    cannot address: empty segments, a leading or trailing ``/``, a backslash, more
    than 1,024 bytes (``name.invalid_key``).
    """
    segments = key.split("/")
    if any(s in {".", ".."} for s in segments):
        return NameProblem(
            Reason.NAME_PATH_TRAVERSAL, "it has a '.' or '..' segment, which could name a parent"
        )
    controls = sorted({c for c in key if unicodedata.category(c) in {"Cc", "Zl", "Zp"}})
    if controls:
        return NameProblem(
            Reason.NAME_CONTROL_CHARACTER,
            f"it contains control character(s) {_codepoints(controls)}",
        )
    formats = sorted({c for c in key if c in _BIDI_AND_FORMAT or unicodedata.category(c) == "Cf"})
    if formats:
        return NameProblem(
            Reason.NAME_SPOOFING,
            f"it contains invisible bidirectional or format character(s) {_codepoints(formats)}, "
            "which make a name display as another",
        )
    try:
        validate_key(key)
    except InvalidKeyError as exc:
        detail = str(exc).split(": ", 1)[-1]
        return NameProblem(Reason.NAME_INVALID_KEY, detail)
    return None


def is_addressable(key: str) -> bool:
    """Whether the store's ordinary methods accept ``key`` (else only its ``*_unaddressable``
    methods reach the object)."""
    try:
        validate_key(key)
    except InvalidKeyError:
        return False
    return True


def safe_name(key: str, max_bytes: int) -> str:
    """A one-segment name for ``key``: its readable characters, ``~`` and a hash of the whole key.

    Unsafe characters (control, format, ``\\``) become ``_`` and folders are joined
    with ``_``, so the name is a valid, printable key segment of at most
    ``max_bytes`` bytes; the hash keeps names of distinct keys distinct.
    """
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    parts = [_readable(s) for s in key.split("/") if s not in {"", ".", ".."}]
    head = "_".join(p for p in parts if p).lstrip(".") or "object"
    room = max_bytes - _HASH_CHARS - 1
    head = head.encode()[:room].decode(errors="ignore")
    return f"{head}~{digest}"


def escaped(key: str) -> str:
    """``key`` with every control, format and non-printable character written as an escape
    (``\\u202e``), for messages, logs and terminals."""
    return "".join(c if c.isprintable() and c not in _BIDI_AND_FORMAT else _escape(c) for c in key)


def _readable(segment: str) -> str:
    return "".join(
        "_" if c == "\\" or c in _BIDI_AND_FORMAT or not c.isprintable() else c for c in segment
    )


def _escape(char: str) -> str:
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def _codepoints(chars: list[str]) -> str:
    return ", ".join(f"U+{ord(c):04X}" for c in chars)
