"""Command-line values converted without pydantic when they are plain text or paths.

Typer (0.29) builds a pydantic ``TypeAdapter`` for every parameter of the command it
runs, even one left unset, so every run of any command imported pydantic and built
adapters: about a tenth of a second before any work. After :func:`plain_values`,
a parameter's converter answers itself for an unset value, a ``str`` parameter and a
path parameter given as text (with typer's own path checks and messages,
``typer._param_types.coerce_cli_path``), and hands every other value (numbers with
ranges, choices, lists, custom parsers) to typer's own converter, built only then.
Values and error messages stay typer's; only the import of pydantic is saved. Typer's
internals move between releases: when they are not the expected ones this changes
nothing, and typer converts every value itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["PlainValues", "plain_values"]


def plain_values() -> None:
    """Have typer build :class:`PlainValues` converters from now on (once per process)."""
    try:
        import typer.core
        from typer._param_types import coerce_cli_path
    except ImportError:  # another typer: it converts every value itself
        return
    build = getattr(typer.core, "build_runtime_param", None)
    if build is None or isinstance(getattr(build, "__self__", None), _Builder):
        return
    typer.core.build_runtime_param = _Builder(build, coerce_cli_path).build  # type: ignore[assignment]


class _Builder:
    """Makes a :class:`PlainValues` per parameter around typer's own builder."""

    def __init__(self, typer_build: Callable[[Any], Any], coerce_path: Callable[..., Any]) -> None:
        self.typer_build = typer_build
        self.coerce_path = coerce_path

    def build(self, descriptor: Any) -> PlainValues:
        return PlainValues(descriptor, self)


class PlainValues:
    """A parameter's converter: plain text and unset values here, the rest by typer."""

    def __init__(self, descriptor: Any, builder: _Builder) -> None:
        self.descriptor = descriptor
        self._builder = builder
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """``value`` converted as typer converts it."""
        multiple = param.multiple or param.nargs == -1
        if value is None:
            return () if multiple else None
        info, annotation = self.descriptor.parameter_info, self.descriptor.annotation
        if not multiple and isinstance(value, str) and info.parser is None:
            if annotation is str:
                return value
            if self._plain_path(annotation):
                path = annotation(value)
                return self._builder.coerce_path(
                    path, info, path_type=annotation, param=param, ctx=ctx
                )
        if self._typer is None:
            self._typer = self._builder.typer_build(self.descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)

    def _plain_path(self, annotation: Any) -> bool:
        """A ``Path`` parameter that is not opened as a file by typer."""
        if not isinstance(annotation, type) or not issubclass(annotation, Path):
            return False
        path_type = self.descriptor.parameter_info.path_type
        return not self.descriptor.is_file and path_type in (None, annotation)
