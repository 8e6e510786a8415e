"""A runtime's click group whose commands are built when they are looked up.

``typer.main.get_command`` builds every command of an app before one runs: for each, its
signature, its type hints (an ``eval`` of every string annotation) and its click
parameters, about a quarter of a millisecond a command, 6-8 ms of a run that uses one
(issue 16, start-up). :func:`lazy_group` builds the same group (options, subgroups, names
and their order) with each top-level command built by Typer's ``get_command_from_info``
the first time the group looks it up: the one invoked, or every one for ``--help``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

Command = Any
"""A click command (Typer 0.29 vendors click: ``typer._click``, not a public module)."""

__all__ = ["lazy_group"]


def lazy_group(app: typer.Typer) -> Command:
    """``typer.main.get_command(app)``, each top-level command built on first lookup.

    An app without a callback (no global options) may be a single command: Typer's own
    build, unchanged.
    """
    import typer.main

    if not (app.registered_callback or app.info.callback):
        return typer.main.get_command(app)
    shell = copy.copy(app)
    shell.registered_commands = []  # the group, its options and subgroups only
    group = typer.main.get_command(shell)
    builders: dict[str, Callable[[], Command]] = {}
    for info in app.registered_commands:
        name = info.name or typer.main.get_command_name(info.callback.__name__)  # type: ignore[union-attr]
        builders[name] = _builder(app, info)
    group.commands = _Commands(builders, group.commands)  # type: ignore[attr-defined]
    return group


def _builder(app: typer.Typer, info: typer.models.CommandInfo) -> Callable[[], Command]:
    def build() -> Command:
        import typer.main

        return typer.main.get_command_from_info(
            info,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )

    return build


class _Commands(MutableMapping[str, Command]):
    """A group's commands by name, in Typer's order (commands, then subgroups; a subgroup
    replaces a command of its name), each command built on first access."""

    def __init__(
        self,
        builders: dict[str, Callable[[], Command]],
        built: MutableMapping[str, Command],
    ) -> None:
        self._builders = builders
        self._built = dict(built)
        self._order = {**dict.fromkeys(builders), **dict.fromkeys(built)}

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            if name not in self._builders:
                raise KeyError(name)
            self._built[name] = self._builders[name]()
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._built[name] = command
        self._order[name] = None

    def __delitem__(self, name: str) -> None:
        del self._order[name]
        self._built.pop(name, None)
        self._builders.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._order
