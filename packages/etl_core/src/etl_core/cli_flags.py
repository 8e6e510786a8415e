"""The command-line flag that set a setting, so a refused value names what the user typed.

A runtime's CLI hands its flags to the settings as overrides by setting name
(``{"serve_port": port}``): a value refused was then said to come from
``override serve_port``, a name the operator never typed. The command says once which of
its options sets which setting (``{"port": "serve_port"}``, the option's parameter name to
the setting's); :func:`option_values` reads those options' values from the parser's context
and :func:`typed_flags` the flag of each one typed on the command line (``--port``): the
source of its value is then ``flag --port``. The link is declared, never guessed from
values: two options given the same value (``--port 80 --interval 80``), or a value the
program set that a flag happens to hold, are never confused.

Standard library only: the context is read through the attributes Click's contexts have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["flag_source", "option_values", "typed_flags"]


def flag_source(flag: str) -> str:
    """The source a setting set by ``flag`` is said to come from (``flag --port``)."""
    return f"flag {flag}"


def option_values(ctx: Any, options: Mapping[str, str]) -> dict[str, object]:
    """The value of each option of ``ctx``'s command by the setting it sets
    (``options``: parameter name to setting name); ``None`` for one not given.

    Raises:
        ValueError: ``options`` names a parameter the command does not have (a typo
            in the program, said at its first run rather than silently ignored).
    """
    declared = _options(ctx)
    unknown = sorted(set(options) - set(declared))
    if unknown:
        name = getattr(getattr(ctx, "command", None), "name", "?")
        raise ValueError(f"command {name!r} has no option {', '.join(map(repr, unknown))}")
    params: Mapping[str, object] = getattr(ctx, "params", {})
    return {setting: params.get(param) for param, setting in options.items()}


def typed_flags(ctx: Any, options: Mapping[str, str]) -> dict[str, str]:
    """The flag (``--port``) of each option in ``options`` (parameter name to setting
    name) typed on ``ctx``'s command line, by setting name.

    Only options typed by the user count: a default, or an environment variable the
    parser read (``envvar=``), is not a flag the operator can be sent to.
    """
    declared = _options(ctx)
    named: dict[str, str] = {}
    for param, setting in options.items():
        flag = _long_flag(getattr(declared.get(param), "opts", ()))
        if flag and _typed(ctx, param):
            named[setting] = flag
    return named


def _options(ctx: Any) -> dict[str, Any]:
    """The parameters of ``ctx``'s own command (not its groups'), by name."""
    command = getattr(ctx, "command", None)
    return {str(getattr(p, "name", "")): p for p in getattr(command, "params", ())}


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
