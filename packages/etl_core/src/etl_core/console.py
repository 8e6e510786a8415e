"""The CLIs' Rich consoles, made on first use: a run that prints only JSON or log lines
never imports Rich's console (~15 ms of every start-up, issue 16)."""

from __future__ import annotations

import os
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class DeferredConsole:
    """A ``rich.console.Console(stderr=..., soft_wrap=...)`` made at its first use; every
    attribute but :attr:`file` is the console's own."""

    def __init__(self, *, stderr: bool = False, soft_wrap: bool = False) -> None:
        self._stderr = stderr
        self._soft_wrap = soft_wrap
        self._console: Console | None = None
        self._piped_width = 0

    @property
    def console(self) -> Console:
        """The console itself, made now if it was not yet."""
        if self._console is None:
            from rich.console import Console

            console = Console(stderr=self._stderr, soft_wrap=self._soft_wrap)
            if self._piped_width and not console.is_terminal:
                console.width = max(console.width, self._piped_width)
            self._console = console
        return self._console

    def widen_when_piped(self, width: int) -> None:
        """At least ``width`` columns when the console is not a terminal (piped, captured)."""
        if self._console is None:
            self._piped_width = max(self._piped_width, width)
        elif not self._console.is_terminal:
            self._console.width = max(self._console.width, width)

    @property
    def is_terminal(self) -> bool:
        """Whether the console writes to a terminal; answered without Rich when the stream
        is plainly not one and nothing in the environment says otherwise (what Rich would say)."""
        if self._console is None and not _terminal_forced() and not _isatty(self._stream):
            return False
        return bool(self.console.is_terminal)

    @property
    def _stream(self) -> IO[str] | None:
        return sys.stderr if self._stderr else sys.stdout

    @property
    def file(self) -> IO[str]:
        """The stream the console writes to: the plain stream while Rich would give that too."""
        stream = self._stream
        if (
            self._console is None
            and stream is not None
            and not hasattr(stream, "rich_proxied_file")
        ):
            return stream
        return self.console.file

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


_TERMINAL_ENVIRONMENT = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS")


def _terminal_forced() -> bool:
    """Whether a variable Rich reads could make it call a non-terminal stream a terminal."""
    return any(name in os.environ for name in _TERMINAL_ENVIRONMENT)


def _isatty(stream: IO[str] | None) -> bool:
    """Whether ``stream`` is a terminal (one that cannot say is taken for one: Rich decides)."""
    if stream is None or hasattr(stream, "rich_proxied_file"):
        return stream is not None
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return True
