"""A settings class's own checks: every value that cannot be kept is refused at once.

A runtime's settings (``RuntimeSettings`` and each lane's) refuse values their types
allow but no run can keep (a lease of 0 seconds, a port past 65535). The checks run when
the settings are built and collect every refusal, so one start names each bad value with
where it came from (file and key, or variable), not the first one alone.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import timedelta

from etl_core.errors import InvalidSettingError

__all__ = ["SettingChecks", "is_host"]


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

    def listen_host(self, setting: str) -> None:
        """Refuse ``setting`` unless it is an address a server can listen on: an IP
        address or a host name. An empty one would bind every interface (said as
        ``0.0.0.0``, never by a value left empty); a space or another character no host
        name has binds nothing, a failure at start-up (exit 1) that did not name it."""
        host = getattr(self._settings, setting)
        self.require(
            is_host(host),
            setting,
            "an IP address or host name, without spaces (0.0.0.0 for every interface)",
        )

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


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def is_host(host: object) -> bool:
    """Whether ``host`` is an IP address (``::1``, ``0.0.0.0``, ``fe80::1%eth0``) or a host
    name (labels of letters, digits, ``-`` and ``_`` between dots, 253 characters at most,
    a trailing dot allowed). A name in another script (``bücher.example``) is judged in the
    IDNA form Python's sockets hand the resolver (``xn--bcher-kva.example``)."""
    if not isinstance(host, str) or not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        name = host.removesuffix(".")
        if not name.isascii():
            try:
                name = name.encode("idna").decode("ascii")
            except UnicodeError:  # a label too long, or a character no name may hold
                return False
        return len(name) <= 253 and all(_HOST_LABEL.fullmatch(p) for p in name.split("."))
    return True
