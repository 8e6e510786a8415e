"""A runtime's click group whose commands are built when they are looked up.

``typer.main.get_command`` builds every command of an app before one runs: for each, its
signature, its type hints (an ``eval`` of every string annotation) and its click
parameters, about a quarter of a millisecond a command, 6-8 ms of a run that uses one
(issue 16, start-up). :func:`lazy_group` builds the same group (options, names and their
order) with each command and subgroup built by Typer's own ``get_command_from_info`` and
``get_group_from_info`` the first time the group looks it up: the one invoked, or every
one for ``--help``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, MutableMapping
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

Command = Any
"""A click command (Typer 0.29 vendors click: ``typer._click``, not a public module)."""

__all__ = ["lazy_group", "reflowed"]


def lazy_group(app: typer.Typer) -> Command:
    """``typer.main.get_command(app)``, each command and subgroup built on first lookup.

    An app without a callback (no global options) may be a single command, and a subgroup
    without a name lends its commands to the group: Typer's own build, unchanged.
    """
    import typer.main

    if not (app.registered_callback or app.info.callback):
        return reflowed(typer.main.get_command(app))
    builders: dict[str, Callable[[], Command]] = {}
    for info in app.registered_commands:
        name = info.name or typer.main.get_command_name(info.callback.__name__)  # type: ignore[union-attr]
        builders[name] = partial(
            typer.main.get_command_from_info,
            info,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )
    for group_info in app.registered_groups:
        group_name = typer.main.solve_typer_info_defaults(group_info).name
        if not group_name:
            return reflowed(typer.main.get_command(app))
        builders[group_name] = partial(  # a subgroup replaces a command of its name, in its place
            typer.main.get_group_from_info,
            group_info,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
            suggest_commands=app.suggest_commands,
        )
    shell = copy.copy(app)
    shell.registered_commands, shell.registered_groups = [], []  # the group and its options
    group = typer.main.get_command(shell)
    group.commands = _Commands(builders)  # type: ignore[attr-defined]
    return group


def reflowed(command: Command) -> Command:
    """``command`` (and every command under it) with each paragraph of its help on one
    line, for Rich to wrap at the terminal's width.

    Typer's Rich help keeps a docstring's single line breaks after its first paragraph, so
    source lines wider than the terminal broke into a long line and a stub. A paragraph
    Click marks ``\\b`` (no rewrapping) is kept as written.
    """
    import inspect

    if command.help:
        paragraphs = inspect.cleandoc(command.help).split("\n\n")
        command.help = "\n\n".join(
            para if para.startswith("\b") else " ".join(para.split("\n")) for para in paragraphs
        )
    commands = getattr(command, "commands", None)
    if isinstance(commands, dict):  # a subgroup built whole; a lazy one reflows on lookup
        for sub in commands.values():
            reflowed(sub)
    return command


class _Commands(MutableMapping[str, Command]):
    """A group's commands by name, in Typer's order (commands, then subgroups), each built
    on first access."""

    def __init__(self, builders: dict[str, Callable[[], Command]]) -> None:
        self._builders = builders
        self._built: dict[str, Command] = {}
        self._order = dict.fromkeys(builders)

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            if name not in self._builders:
                raise KeyError(name)
            self._built[name] = reflowed(self._builders[name]())
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
