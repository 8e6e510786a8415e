"""Durations and byte sizes written the way people write them in config.

``parse_duration("1h30m")`` gives a :class:`datetime.timedelta`;
``parse_byte_size("64MiB")`` gives a :class:`ByteSize` (an ``int``). The
``format_*`` functions write values back in a form the parsers read, exactly,
so ``parse(format(x)) == x``.

Both parsers raise :class:`ValueError` with a message that says what was
expected; the configuration loader turns that into a :class:`~etl_core.errors.FieldError`.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal

__all__ = [
    "ByteSize",
    "format_byte_size",
    "format_duration",
    "parse_byte_size",
    "parse_duration",
]

# ----------------------------------------------------------------- durations

_MICROSECONDS = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_NUMBER = r"\d+(?:\.\d+)?"
_DURATION_PART = re.compile(rf"({_NUMBER})\s*(us|ms|s|m|h|d|w)", re.IGNORECASE | re.ASCII)
_DURATION = re.compile(rf"(?:{_NUMBER}\s*(?:us|ms|s|m|h|d|w)\s*)+", re.IGNORECASE | re.ASCII)
_PLAIN_NUMBER = re.compile(_NUMBER, re.ASCII)
_DURATION_HINT = (
    "expected seconds as a number or a number with a unit (us, ms, s, m, h, d, w), "
    "e.g. '90s', '1h30m', '250ms', '7d'"
)


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse a duration such as ``"90s"``, ``"1h30m"``, ``"250ms"`` or ``"7d"``.

    Plain numbers (``90``, ``"1.5"``) are seconds. Units are ``us``, ``ms``,
    ``s``, ``m`` (minutes), ``h``, ``d`` and ``w``, case-insensitive, and may be
    combined. Negative durations are refused.

    Raises:
        ValueError: the value is not a duration, is negative or is too large.
    """
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"invalid duration {format_duration(value)!r}: must not be negative")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid duration: {_DURATION_HINT}, got {type(value).__name__}")
    if isinstance(value, int | float):
        return _duration_from_seconds(Decimal(str(value)), repr(value))
    text = value.strip()
    if _PLAIN_NUMBER.fullmatch(text):
        return _duration_from_seconds(Decimal(text), value)
    if not _DURATION.fullmatch(text):
        raise ValueError(f"invalid duration {value!r}: {_DURATION_HINT}")
    micros = sum(
        (Decimal(number) * _MICROSECONDS[unit.lower()])
        for number, unit in _DURATION_PART.findall(text)
    )
    return _duration_from_micros(Decimal(micros), value)


def _duration_from_seconds(seconds: Decimal, shown: str) -> timedelta:
    if seconds.is_nan() or seconds.is_infinite():
        raise ValueError(f"invalid duration {shown!r}: {_DURATION_HINT}")
    if seconds < 0:
        raise ValueError(f"invalid duration {shown!r}: must not be negative")
    return _duration_from_micros(seconds * 1_000_000, shown)


def _duration_from_micros(micros: Decimal, shown: str) -> timedelta:
    try:
        return timedelta(microseconds=int(micros.to_integral_value()))
    except OverflowError:
        raise ValueError(f"invalid duration {shown!r}: too large") from None


def format_duration(value: timedelta) -> str:
    """Write a duration compactly (``"1h30m"``, ``"250ms"``, ``"0s"``); exact to the microsecond.

    Negative durations get a leading ``-`` (which :func:`parse_duration` refuses).
    """
    micros = value // timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    remaining = abs(micros)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms", "us"):
        count, remaining = divmod(remaining, _MICROSECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


# ----------------------------------------------------------------- byte sizes

_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}
# Largest first, binary before decimal, so formatting picks the shortest exact form.
_FORMAT_UNITS = (
    ("PiB", 1024**5),
    ("PB", 1000**5),
    ("TiB", 1024**4),
    ("TB", 1000**4),
    ("GiB", 1024**3),
    ("GB", 1000**3),
    ("MiB", 1024**2),
    ("MB", 1000**2),
    ("KiB", 1024),
    ("kB", 1000),
)
_BYTE_SIZE = re.compile(rf"({_NUMBER})\s*([a-zA-Z]*)", re.ASCII)
_BYTE_SIZE_HINT = (
    "expected bytes as a whole number or a number with a unit "
    "(B, KiB, MiB, GiB, TiB, PiB binary; kB, MB, GB, TB, PB decimal), e.g. '64MiB', '1.5GB'"
)


class ByteSize(int):
    """A number of bytes; an ``int`` that also accepts ``"64MiB"``-style text.

    ``ByteSize("64MiB") == 64 * 1024**2``. Arithmetic gives plain ``int``
    results. ``str()`` is the plain number; the repr shows the exact human
    form, ``ByteSize('64MiB')``.
    """

    __slots__ = ()

    def __new__(cls, value: int | str) -> ByteSize:
        """Build from a non-negative int or a size string such as ``"1.5GB"``."""
        return super().__new__(cls, _byte_count(value))

    def __repr__(self) -> str:
        return f"ByteSize({format_byte_size(self)!r})"

    def __str__(self) -> str:
        return int.__repr__(self)


def parse_byte_size(value: str | int | float) -> ByteSize:
    """Parse a byte size such as ``"64MiB"``, ``"1.5GB"`` or ``512`` (plain numbers are bytes).

    Units are case-insensitive: ``KiB``/``MiB``/``GiB``/``TiB``/``PiB`` are
    powers of 1024, ``kB``/``MB``/``GB``/``TB``/``PB`` powers of 1000. The
    result must be a whole number of bytes.

    Raises:
        ValueError: the value is not a size, is negative or is not a whole number of bytes.
    """
    return ByteSize(_byte_count(value))


def _byte_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid byte size: {_BYTE_SIZE_HINT}, got {type(value).__name__}")
    if isinstance(value, float):
        return _byte_count_from_float(value)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid byte size {value!r}: must not be negative")
        return value
    match = _BYTE_SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"invalid byte size {value!r}: {_BYTE_SIZE_HINT}")
    number, unit = match.groups()
    multiplier = _BYTE_UNITS.get(unit.lower())
    if multiplier is None:
        raise ValueError(f"invalid byte size {value!r}: unknown unit {unit!r}; {_BYTE_SIZE_HINT}")
    count = Decimal(number) * multiplier
    if count != count.to_integral_value():
        raise ValueError(f"invalid byte size {value!r}: not a whole number of bytes")
    return int(count)


def _byte_count_from_float(value: float) -> int:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"invalid byte size {value!r}: must be a finite, non-negative number")
    if not value.is_integer():
        raise ValueError(f"invalid byte size {value!r}: not a whole number of bytes")
    return int(value)


def format_byte_size(value: int) -> str:
    """Write a byte count with the largest unit that divides it exactly (``"64MiB"``, ``"1500MB"``).

    Counts that no unit divides are written in bytes (``"1001B"``).
    """
    if value < 0:
        raise ValueError(f"invalid byte size {value!r}: must not be negative")
    for suffix, size in _FORMAT_UNITS:
        if value >= size and value % size == 0:
            return f"{value // size}{suffix}"
    return f"{int(value)}B"
