"""A settings class's own checks: every value that cannot be kept is refused at once.

A runtime's settings (``RuntimeSettings`` and each lane's) refuse values their types
allow but no run can keep (a lease of 0 seconds, a port past 65535). The checks run when
the settings are built and collect every refusal, so one start names each bad value with
where it came from (file and key, or variable), not the first one alone.
"""

from __future__ import annotations

from datetime import timedelta

from etl_core.errors import InvalidSettingError

__all__ = ["SettingChecks"]


class SettingChecks:
    """Collects what a settings object's checks refuse; ``done`` raises them together."""

    def __init__(self, settings: object) -> None:
        self._settings = settings
        self.refused: dict[str, str] = {}

    def require(self, ok: bool, setting: str, expected: str) -> None:
        """Refuse ``setting`` unless ``ok``: "<setting> must be <expected>, got <value>"."""
        if not ok and setting not in self.refused:
            value = _said(getattr(self._settings, setting))
            self.refused[setting] = f"must be {expected}, got {value}"

    def refuses(self, *settings: str) -> bool:
        """Whether any of ``settings`` is refused already: a check that compares with it
        is then left out (its refusal would follow from the first, not add to it)."""
        return any(setting in self.refused for setting in settings)

    def positive_interval(self, setting: str) -> None:
        """Refuse an interval, timeout or deadline that is not longer than 0s."""
        interval: timedelta = getattr(self._settings, setting)
        self.require(interval > timedelta(0), setting, "longer than 0s")

    def done(self) -> None:
        """Raise every refusal at once (InvalidSettingError), if there is one."""
        if self.refused:
            raise InvalidSettingError(self.refused)


def _said(value: object) -> str:
    """A refused value as a user wrote it: seconds for a duration, quotes for text."""
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value)
    return str(value)
