"""A failed load of a contract or source file as errors naming the file and line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from etl_core.errors import ConfigError, FieldError

_TOML_ERROR_LINE = re.compile(r"at line (\d+)")


_NOWHERE = frozenset({"no source", "default", "validation"})
"""Sources the settings loader gives a value no file set: said as the contract's file."""


def load_errors(exc: ConfigError, path: Path) -> list[FieldError]:
    """The errors of a failed load of ``path``, a TOML syntax error turned into one with
    its line."""
    if exc.errors:  # a key no file set (required, missing) is located in the one lacking it
        return [
            FieldError(e.field, e.message, str(path)) if e.source in _NOWHERE else e
            for e in exc.errors
        ]
    cause = exc.__cause__
    if isinstance(cause, tomllib.TOMLDecodeError):
        line = _TOML_ERROR_LINE.search(str(cause))
        source = f"{path}:{line.group(1)}" if line else str(path)
        return [FieldError("(syntax)", f"not valid TOML: {cause}", source)]
    return [FieldError("(file)", str(exc), str(path))]


def misnamed_files(directory: Path) -> list[FieldError]:
    """Files of ``directory`` named ``.TOML`` or ``.Toml``: the loaders read ``*.toml`` only,
    so such a file would be skipped in silence (a dataset never checked)."""
    return [
        FieldError(
            "(file)",
            f"only *.toml files are read: rename it to {path.stem}.toml",
            str(path),
        )
        for path in sorted(directory.iterdir())
        if path.suffix.lower() == ".toml" and path.suffix != ".toml"
    ]
