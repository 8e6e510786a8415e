"""A day given on a command line or in a setting, read exactly as ``YYYY-MM-DD``.

Its own module, not the cursors': the file and pipeline commands read days too, and must
not load the API sources' model to do it (their start-up stays lean).
"""

from __future__ import annotations

import re
from datetime import date

from etl_core.errors import ConfigError, FieldError

__all__ = ["parse_day"]

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(text: str, option: str, origin: str = "command line") -> date:
    """``text`` (the value of ``option``) read as a date spelled exactly ``YYYY-MM-DD``.

    ``date.fromisoformat`` also reads ``20261101`` and ``2026-W44-1``: a week date or a
    run of digits is refused rather than read as a day the operator may not have meant.

    Raises:
        ConfigError: ``text`` is not such a date; naming ``option`` and the format.
    """
    parsed = None
    if _DAY.fullmatch(text):
        try:
            parsed = date.fromisoformat(text)
        except ValueError:  # 2026-02-30
            parsed = None
    if parsed is None:
        raise ConfigError(
            f"{option} {text!r} is not a date; expected YYYY-MM-DD",
            [FieldError(option, f"expected a date YYYY-MM-DD, got {text!r}", origin)],
        )
    return parsed
