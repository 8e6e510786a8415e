"""Landing file patterns: where the partition date of a delivery comes from, matched whole.

A pattern is matched against the landing key below ``landing/<source>/``. It is
literal text with ``*`` wildcards (any run of characters but ``/``) and, unless
the date comes from the arrival time, exactly one ``{date:<strftime>}``
placeholder. The contract's ``date_from`` says where the partition date is:

- ``name`` (the default): in the file name, ``pos_{date:%Y%m%d}.csv``; the
  pattern is a bare file name (no ``/``);
- ``path``: in a folder, ``{date:%Y-%m-%d}/report.csv`` or
  ``daily/{date:%Y%m%d}/*.csv``; the placeholder sits in a folder segment;
- ``arrival``: nowhere in the key; the date the object arrived (its last
  modification time) in the contract's time zone, ``report.csv`` or
  ``exports/*.csv``; the pattern has no placeholder.

Matching is on the whole relative path; a date must be a real calendar date.
Two patterns *overlap* when some key matches both; :meth:`FilePattern.overlaps`
decides that exactly, so two contracts can never claim the same delivery. This
module is the one implementation every lane uses (the file lane to route
deliveries, the monitors to derive the keys they expect).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from functools import cache
from typing import Literal

from etl_core.errors import ConfigError

__all__ = ["DATE_SOURCES", "DateFrom", "FilePattern", "PatternError", "time_zone"]

DateFrom = Literal["name", "path", "arrival"]
DATE_SOURCES: tuple[DateFrom, ...] = ("name", "path", "arrival")
"""Where a partition date may come from (the contract's ``date_from``)."""


class PatternError(ConfigError, ValueError):
    """The text is not a valid file pattern; the message says what is wrong."""


# strftime directives a partition date may use: regex, and the atom class for overlap checks.
_DIRECTIVES: dict[str, tuple[str, str]] = {
    "Y": (r"\d{4}", "dddd"),
    "y": (r"\d{2}", "dd"),
    "m": (r"\d{2}", "dd"),
    "d": (r"\d{2}", "dd"),
    "j": (r"\d{3}", "ddd"),
    "H": (r"\d{2}", "dd"),
    "M": (r"\d{2}", "dd"),
    "S": (r"\d{2}", "dd"),
    "b": (r"[A-Za-z]{3}", "aaa"),
}
_PLACEHOLDER = re.compile(r"\{date:([^{}]*)\}")
_DIGIT, _ALPHA, _STAR = "\x00d", "\x00a", "\x00*"


def time_zone(name: str) -> tzinfo:
    """The IANA time zone ``name`` (``UTC``, ``Europe/Berlin``).

    Raises:
        PatternError: no such time zone on this system.
    """
    if name.upper() == "UTC":
        return UTC
    # Imported on use: zoneinfo loads sysconfig's build data, which importing etl_core must not.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PatternError(
            f"unknown time zone {name!r}; expected an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None


@dataclass(frozen=True)
class FilePattern:
    """A compiled file pattern.

    Args:
        text: The pattern as written in the contract.
        date_from: Where the partition date comes from (``name``, ``path``, ``arrival``).
        timezone: The IANA time zone an arrival time is read in (``arrival`` only).

    Raises:
        PatternError: a placeholder missing, repeated, or where ``date_from`` does not
            look for it; an unsupported strftime directive; a date format that does
            not name a day; a ``/`` in a file-name pattern; an empty, ``.`` or ``..``
            folder; braces outside the placeholder; an unknown time zone.
    """

    text: str
    date_from: DateFrom = "name"
    timezone: str = "UTC"
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _date_format: str = field(init=False, repr=False, compare=False)
    _atoms: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _zone: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex, date_format, atoms = _compile(self.text, self.date_from)
        object.__setattr__(self, "_regex", regex)
        object.__setattr__(self, "_date_format", date_format)
        object.__setattr__(self, "_atoms", atoms)
        object.__setattr__(self, "_zone", time_zone(self.timezone))

    @property
    def date_format(self) -> str:
        """The strftime format of the partition date (``%Y%m%d``); empty for ``arrival``."""
        return self._date_format

    @property
    def zone(self) -> tzinfo:
        """The time zone arrival times are read in."""
        return self._zone

    def matches(self, path: str) -> bool:
        """Whether ``path`` (relative to the source) has the pattern's shape and, when the
        pattern holds a date, a real calendar date there."""
        return self._regex.fullmatch(path) is not None and self.date_problem(path) is None

    def match(self, path: str, arrived: datetime | None = None) -> date | None:
        """The partition date of ``path`` (relative to the source), or ``None`` if it does
        not match.

        Args:
            path: The key below ``landing/<source>/`` (a bare file name for ``name``).
            arrived: When the object arrived (its last modification time, aware);
                the date for ``arrival`` patterns, ignored by the others.

        Raises:
            ValueError: an ``arrival`` pattern matched but ``arrived`` is missing
                or naive (a caller's mistake, never the data's).
        """
        found = self._regex.fullmatch(path)
        if found is None:
            return None
        if self.date_from == "arrival":
            if arrived is None or arrived.tzinfo is None:
                raise ValueError(
                    f"pattern {self.text!r} takes its date from the arrival time: "
                    "pass the object's timezone-aware last-modified time"
                )
            return arrived.astimezone(self._zone).date()
        try:
            return datetime.strptime(found.group("date"), self._date_format).date()
        except ValueError:  # digits in the right places, but not a calendar date
            return None

    def date_problem(self, path: str) -> str | None:
        """Why ``path``, shaped like the pattern, has no partition date; ``None`` otherwise."""
        found = self._regex.fullmatch(path)
        if found is None or self.date_from == "arrival":
            return None
        try:
            datetime.strptime(found.group("date"), self._date_format)
        except ValueError:
            text = found.group("date")
            return f"{text!r} is not a calendar date in the format {self._date_format!r}"
        return None

    def expected(self, day: date) -> str:
        """The pattern with ``day`` written in: the path a delivery of ``day`` has
        (``*`` wildcards kept). An ``arrival`` pattern is returned as it is."""
        if self.date_from == "arrival":
            return self.text
        return _PLACEHOLDER.sub(lambda _: day.strftime(self._date_format), self.text)

    def overlaps(self, other: FilePattern, *, prefix: str = "", other_prefix: str = "") -> bool:
        """Whether some key matches both patterns (each below its own ``prefix``, e.g.
        its source, so ``vendor`` + ``eu/*.csv`` meets ``vendor/eu`` + ``x.csv``)."""
        mine = (*_literal_atoms(prefix), *self._atoms)
        theirs = (*_literal_atoms(other_prefix), *other._atoms)
        return _intersect(mine, theirs)


def _compile(text: str, date_from: str) -> tuple[re.Pattern[str], str, tuple[str, ...]]:
    if not isinstance(text, str) or not text:
        raise PatternError(
            "a pattern must be a non-empty file name such as 'pos_{date:%Y%m%d}.csv'"
        )
    if date_from not in DATE_SOURCES:
        raise PatternError(f"date_from: expected 'name', 'path' or 'arrival', got {date_from!r}")
    _check_segments(text, date_from)
    placeholders = list(_PLACEHOLDER.finditer(text))
    if date_from == "arrival":
        if placeholders or any(brace in text for brace in "{}"):
            raise PatternError(
                "with date_from = 'arrival' the date is the arrival time: the pattern "
                "holds no {date:...} placeholder (and no braces)"
            )
        return re.compile(_literal_regex(text), re.DOTALL), "", tuple(_literal_atoms(text))
    if len(placeholders) != 1:
        found = len(placeholders)
        raise PatternError(
            f"a pattern needs exactly one {{date:<strftime>}} placeholder, found {found} "
            "(date_from = 'arrival' takes the date from the arrival time instead)"
        )
    (placeholder,) = placeholders
    before, after = text[: placeholder.start()], text[placeholder.end() :]
    if any(brace in before + after for brace in "{}"):
        raise PatternError(
            "braces are only allowed in the {date:<strftime>} placeholder; "
            "'{date:...}' is the only placeholder"
        )
    if date_from == "path" and "/" not in after:
        raise PatternError(
            "with date_from = 'path' the {date:...} placeholder must be in a folder, "
            "e.g. '{date:%Y-%m-%d}/report.csv'"
        )
    date_regex, date_atoms = _date_parts(placeholder.group(1))
    regex = f"{_literal_regex(before)}(?P<date>{date_regex}){_literal_regex(after)}"
    atoms = (*_literal_atoms(before), *date_atoms, *_literal_atoms(after))
    return re.compile(regex, re.DOTALL), placeholder.group(1), atoms


def _check_segments(text: str, date_from: str) -> None:
    """A file-name pattern has no ``/``; a path pattern has no empty, ``.`` or ``..`` folder."""
    if "/" not in text:
        return
    if date_from == "name":
        raise PatternError(
            "a pattern matches a file name only and cannot contain '/' (with the date in "
            "a folder, set date_from = 'path'; folders are also allowed with 'arrival')"
        )
    if any(segment in ("", ".", "..") for segment in text.split("/")):
        raise PatternError(
            f"a path pattern cannot start or end with '/' or hold an empty, '.' or '..' "
            f"folder, got {text!r}"
        )


def _date_parts(date_format: str) -> tuple[str, tuple[str, ...]]:
    """Regex and overlap atoms of a strftime format, refusing directives we cannot match."""
    regex: list[str] = []
    atoms: list[str] = []
    seen: set[str] = set()
    index = 0
    while index < len(date_format):
        char = date_format[index]
        if char != "%":
            if char == "*":
                raise PatternError("'*' is not allowed inside the {date:...} placeholder")
            regex.append(re.escape(char))
            atoms.append(char)
            index += 1
            continue
        directive = date_format[index + 1 : index + 2]
        if directive == "%":
            regex.append("%")
            atoms.append("%")
        elif directive in _DIRECTIVES:
            part, classes = _DIRECTIVES[directive]
            regex.append(part)
            atoms.extend(_DIGIT if c == "d" else _ALPHA for c in classes)
            seen.add(directive)
        else:
            supported = ", ".join(f"%{d}" for d in _DIRECTIVES)
            raise PatternError(
                f"unsupported strftime directive '%{directive}' in the date placeholder; "
                f"use {supported}"
            )
        index += 2
    names_a_day = ({"Y", "y"} & seen) and (({"m", "b"} & seen and "d" in seen) or "j" in seen)
    if not names_a_day:
        raise PatternError(
            f"the date format {date_format!r} must name a day: a year (%Y or %y) with "
            "a month and day (%m or %b, and %d) or a day of the year (%j)"
        )
    return "".join(regex), tuple(atoms)


def _literal_regex(text: str) -> str:
    return "[^/]*".join(re.escape(piece) for piece in text.split("*"))


def _literal_atoms(text: str) -> list[str]:
    return [_STAR if char == "*" else char for char in text]


def _compatible(a: str, b: str) -> bool:
    """Whether one character can be described by both (non-star) atoms."""
    if a == b:
        return True
    classes = {a, b} & {_DIGIT, _ALPHA}
    if classes == {_DIGIT, _ALPHA}:
        return False
    if classes == {_DIGIT}:
        other = b if a == _DIGIT else a
        return other.isascii() and other.isdigit()
    if classes == {_ALPHA}:
        other = b if a == _ALPHA else a
        return other.isascii() and other.isalpha()
    return False  # two different literal characters


def _eats(atoms: tuple[str, ...], index: int) -> bool:
    """Whether a ``*`` can consume ``atoms[index]`` (anything but a folder separator)."""
    return index < len(atoms) and atoms[index] != "/"


def _intersect(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether the languages of two atom sequences intersect (stars match any non-'/' run)."""

    @cache
    def reach(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == _STAR and (reach(i + 1, j) or (_eats(b, j) and reach(i, j + 1))):
            return True
        if j < len(b) and b[j] == _STAR and (reach(i, j + 1) or (_eats(a, i) and reach(i + 1, j))):
            return True
        if i < len(a) and j < len(b) and _STAR not in (a[i], b[j]):
            return _compatible(a[i], b[j]) and reach(i + 1, j + 1)
        return False

    return reach(0, 0)
