"""The command-line flag that set a setting, so a refused value names what the user typed.

A runtime's CLI hands its flags to the settings as overrides by setting name
(``{"serve_port": port}``): a value refused was then said to come from
``override serve_port``, a name the operator never typed. The flag is known to the
command-line parser where the option is declared (``typer.Option("--port")``); it is not
written a second time. :func:`given_on_command_line` reads the options given on the
command line from the parser's context, and :func:`flags_named` matches each override
to the option whose value it is: the source of its value is then ``flag --port``.

Standard library only: the context is read through the attributes Click's contexts have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["GivenFlag", "flag_source", "flags_named", "given_on_command_line"]


class GivenFlag(NamedTuple):
    """An option given on the command line: its parameter name, flag and value."""

    param: str
    flag: str
    value: object


def flag_source(flag: str) -> str:
    """The source a setting set by ``flag`` is said to come from (``flag --port``)."""
    return f"flag {flag}"


def given_on_command_line(ctx: Any) -> tuple[GivenFlag, ...]:
    """The options given on the command line in ``ctx`` (a Click context) and its parents.

    Only options typed by the user count: a default or an environment variable Click
    read is not a flag the operator can be sent to.
    """
    given: list[GivenFlag] = []
    while ctx is not None:
        command = getattr(ctx, "command", None)
        for param in getattr(command, "params", ()):
            flag = _long_flag(getattr(param, "opts", ()))
            name = getattr(param, "name", None)
            if flag and isinstance(name, str) and name in ctx.params and _typed(ctx, name):
                given.append(GivenFlag(name, flag, ctx.params[name]))
        ctx = getattr(ctx, "parent", None)
    return tuple(given)


def flags_named(overrides: Mapping[str, object], given: tuple[GivenFlag, ...]) -> dict[str, str]:
    """The flag that gave each override its value, by setting name (an override no flag
    gave, one set by the program, is left out).

    The option holding the very value, else an equal one; several alike (``--port 80
    --interval 80``) are told apart by the words their names share with the setting's
    (``port`` in ``serve_port``), and left unnamed when that does not decide.
    """
    named: dict[str, str] = {}
    for setting, value in overrides.items():
        if value is None:
            continue
        same = [g for g in given if g.value is value] or [
            g for g in given if type(g.value) is type(value) and g.value == value
        ]
        chosen = _closest(setting, same)
        if chosen is not None:
            named[setting] = chosen.flag
    return named


def _closest(setting: str, candidates: list[GivenFlag]) -> GivenFlag | None:
    """The one candidate, or the one whose name shares the most words with ``setting``."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    words = set(re.split(r"[_.]", setting))
    scored = sorted(
        ((len(words & set(g.param.split("_"))), g) for g in candidates),
        key=lambda pair: pair[0],
        reverse=True,
    )
    if scored[0][0] == 0 or scored[0][0] == scored[1][0]:
        return None
    return scored[0][1]


def _long_flag(opts: Any) -> str:
    """The option's long flag (``--port``), else its first one."""
    flags = [opt for opt in opts if isinstance(opt, str) and opt.startswith("-")]
    long = [opt for opt in flags if opt.startswith("--")]
    return (long or flags or [""])[0]


def _typed(ctx: Any, name: str) -> bool:
    """Whether ``name``'s value was typed on the command line (Click's parameter source)."""
    source = getattr(ctx, "get_parameter_source", None)
    found = source(name) if source is not None else None
    return getattr(found, "name", None) == "COMMANDLINE"
