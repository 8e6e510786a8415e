"""Landing file-name patterns: ``pos_{date:%Y%m%d}.csv.zip.pgp`` matched whole, date extracted.

A pattern is literal text with exactly one ``{date:<strftime>}`` placeholder
(the partition date) and ``*`` wildcards (any run of characters but ``/``).
Matching is on the whole file name; the date must be a real calendar date.
Two patterns *overlap* when some file name matches both; :meth:`FilePattern.overlaps`
decides that exactly, so two contracts can never claim the same delivery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache

from etl_core.errors import ConfigError

__all__ = ["FilePattern", "PatternError"]


class PatternError(ConfigError, ValueError):
    """The text is not a valid file-name pattern; the message says what is wrong."""


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


@dataclass(frozen=True)
class FilePattern:
    """A compiled file-name pattern.

    Args:
        text: The pattern as written in the contract.

    Raises:
        PatternError: no or several ``{date:...}`` placeholders, an unsupported
            strftime directive, a date format that does not name a day, a ``/``,
            or braces outside the placeholder.
    """

    text: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _date_format: str = field(init=False, repr=False, compare=False)
    _atoms: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex, date_format, atoms = _compile(self.text)
        object.__setattr__(self, "_regex", regex)
        object.__setattr__(self, "_date_format", date_format)
        object.__setattr__(self, "_atoms", atoms)

    @property
    def date_format(self) -> str:
        """The strftime format of the partition date (``%Y%m%d``)."""
        return self._date_format

    def match(self, name: str) -> date | None:
        """The partition date if ``name`` (a bare file name) matches the whole pattern."""
        found = self._regex.fullmatch(name)
        if found is None:
            return None
        try:
            return datetime.strptime(found.group("date"), self._date_format).date()
        except ValueError:  # digits in the right places, but not a calendar date
            return None

    def date_problem(self, name: str) -> str | None:
        """Why ``name``, shaped like the pattern, has no partition date; ``None`` otherwise."""
        found = self._regex.fullmatch(name)
        if found is None:
            return None
        try:
            datetime.strptime(found.group("date"), self._date_format)
        except ValueError:
            text = found.group("date")
            return f"{text!r} is not a calendar date in the format {self._date_format!r}"
        return None

    def overlaps(self, other: FilePattern) -> bool:
        """Whether some file name matches both patterns."""
        return _intersect(self._atoms, other._atoms)


def _compile(text: str) -> tuple[re.Pattern[str], str, tuple[str, ...]]:
    if not isinstance(text, str) or not text:
        raise PatternError(
            "a pattern must be a non-empty file name such as 'pos_{date:%Y%m%d}.csv'"
        )
    if "/" in text:
        raise PatternError("a pattern matches a file name only and cannot contain '/'")
    placeholders = list(_PLACEHOLDER.finditer(text))
    if len(placeholders) != 1:
        found = len(placeholders)
        raise PatternError(
            f"a pattern needs exactly one {{date:<strftime>}} placeholder, found {found}"
        )
    (placeholder,) = placeholders
    before, after = text[: placeholder.start()], text[placeholder.end() :]
    if any(brace in before + after for brace in "{}"):
        raise PatternError(
            "braces are only allowed in the {date:<strftime>} placeholder; "
            "'{date:...}' is the only placeholder"
        )
    date_regex, date_atoms = _date_parts(placeholder.group(1))
    regex = f"{_literal_regex(before)}(?P<date>{date_regex}){_literal_regex(after)}"
    atoms = (*_literal_atoms(before), *date_atoms, *_literal_atoms(after))
    return re.compile(regex, re.DOTALL), placeholder.group(1), atoms


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


def _intersect(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether the languages of two atom sequences intersect (stars match any non-'/' run)."""

    @cache
    def reach(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == _STAR and (reach(i + 1, j) or (j < len(b) and reach(i, j + 1))):
            return True
        if j < len(b) and b[j] == _STAR and (reach(i, j + 1) or (i < len(a) and reach(i + 1, j))):
            return True
        if i < len(a) and j < len(b) and _STAR not in (a[i], b[j]):
            return _compatible(a[i], b[j]) and reach(i + 1, j + 1)
        return False

    return reach(0, 0)
