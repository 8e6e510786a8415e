"""The CLIs' Rich consoles, made on first use: a run that prints only JSON or log lines
never imports Rich's console (~15 ms of every start-up, issue 16)."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

RICH_PRINTING = ("rich.console", "rich._emoji_codes")
"""What Rich imports to make a console and print to it (the emoji codes at the first print,
by a console that replaces emoji codes only)."""


class DeferredConsole:
    """A ``rich.console.Console(stderr=..., soft_wrap=..., markup=..., emoji=...)`` made at
    its first use; every attribute but :attr:`file` is the console's own.

    ``markup=False, emoji=False`` (what the runtimes' CLIs use) prints every string as it
    is: its own prints, table cells, titles and headers alike. A key, dataset name or
    message holding ``[bold]`` or ``[/x]`` (legal in keys and file names) is then never
    read as markup nor raises, and ``:smile:`` stays written; styles are given as
    ``style=`` or :class:`rich.text.Text`, never as markup in a string.
    """

    def __init__(
        self,
        *,
        stderr: bool = False,
        soft_wrap: bool = False,
        markup: bool = True,
        emoji: bool = True,
    ) -> None:
        self._stderr = stderr
        self._soft_wrap = soft_wrap
        self._markup = markup
        self._emoji = emoji
        self._console: Console | None = None
        self._piped_width = 0
        self._ahead: threading.Thread | None = None

    def import_ahead(self, *modules: str) -> None:
        """Import Rich's console, what its printing needs and ``modules`` (``rich.table``) on
        a thread, now: a command calls this before the work whose outcome it prints, so
        the imports (~15-20 ms) overlap the work (a query engine that releases the GIL)
        instead of following it (issue 16, start-up). The console is still made at its
        first use; an import that fails there raises there, as without this."""
        if self._console is None and self._ahead is None:
            printing = RICH_PRINTING if self._emoji else RICH_PRINTING[:1]
            names = (*printing, *modules)
            # not a daemon: a command exiting at once (an error before any print) waits
            # for it, where the interpreter finalising under a daemon thread still
            # importing crashed now and then (exit 139 instead of the command's code)
            self._ahead = threading.Thread(
                target=_import_quietly, args=(names,), name="rich-import", daemon=False
            )
            self._ahead.start()

    @property
    def console(self) -> Console:
        """The console itself, made now if it was not yet."""
        if self._console is None:
            if self._ahead is not None:
                self._ahead.join()  # the imports under way: no second import beside them
                self._ahead = None
            from rich.console import Console

            console = Console(
                stderr=self._stderr,
                soft_wrap=self._soft_wrap,
                markup=self._markup,
                emoji=self._emoji,
            )
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


def _import_quietly(names: tuple[str, ...]) -> None:
    """Import ``names`` in turn; stop at the first that fails (its user imports it again)."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # raised again where the module is used
            return


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
