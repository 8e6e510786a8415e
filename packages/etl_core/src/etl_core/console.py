"""The CLIs' Rich consoles, made on first use: a run that prints only JSON or log lines
never imports Rich's console (~15 ms of every start-up, issue 16)."""

from __future__ import annotations

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
    def file(self) -> IO[str]:
        """The stream the console writes to: the plain stream while Rich would give that too."""
        stream = sys.stderr if self._stderr else sys.stdout
        if (
            self._console is None
            and stream is not None
            and not hasattr(stream, "rich_proxied_file")
        ):
            return stream
        return self.console.file

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)
