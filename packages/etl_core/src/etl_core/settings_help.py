"""What ``config show`` says about each setting: value, meaning, variable, source.

A setting's meaning is the docstring written under its field in the settings
dataclass (or ``field(metadata={"help": ...})``), so the explanation an operator
reads is the one a developer maintains beside the field. Standard library only.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import json
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from etl_core.config import redacted_dict
from etl_core.runtime import ENV_ALIASES, find_settings_file

if TYPE_CHECKING:
    from etl_core.runtime import Session

__all__ = ["field_docs", "settings_file", "settings_file_read", "settings_table"]


def settings_table(session: Session[Any]) -> list[tuple[str, str, str, str, str]]:
    """``(setting, value, environment variable, source, meaning)`` for every setting,
    secrets redacted, nested settings flattened (``s3.part_size``)."""
    docs = _flat_docs(type(session.settings))
    rows = []
    for name, value in _flattened(redacted_dict(session.settings)):
        variable = "ETL_" + name.replace(".", "__").upper()
        if name in ENV_ALIASES:
            variable += f" (or {ENV_ALIASES[name]})"
        source = session.sources.get(name, "default")
        shown = json.dumps(value, default=str)
        rows.append((name, shown, variable, source, docs.get(name, "")))
    return rows


def settings_file(session: Session[Any]) -> Path | None:
    """The settings file this session read (``None``: there was none)."""
    environ = os.environ if session.env is None else session.env
    return find_settings_file(session.flags, environ)


def settings_file_read(session: Session[Any]) -> str:
    """Which settings file was read, and which of its tables apply to this lane."""
    path = settings_file(session)
    if path is None:
        config_dir = session.settings.config_dir
        return f"settings file: none ({config_dir / 'etl.toml'} does not exist)"
    return (
        f"settings file: {path} (its top-level keys, then its [{session.lane}] table; "
        "other lanes' tables are theirs)"
    )


def field_docs(cls: type[Any]) -> dict[str, str]:
    """Each field's explanation: its ``help`` metadata, else the docstring under it
    (searched through the base classes), first paragraph on one line."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update(_docstrings(klass))
    for f in dataclasses.fields(cls):
        help_text = f.metadata.get("help")
        if isinstance(help_text, str):
            docs[f.name] = help_text
    return docs


@functools.cache
def _docstrings(cls: type[Any]) -> dict[str, str]:
    """Attribute docstrings of ``cls``'s own body, read from its source."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source shipped: meanings stay empty, values still show
        return {}
    body = next((n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)), None)
    if body is None:
        return {}
    docs: dict[str, str] = {}
    statements = body.body
    for statement, following in itertools.pairwise(statements):
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            text = following.value.value
            if isinstance(text, str):
                paragraph = text.strip().split("\n\n")[0].replace("``", "")
                docs[statement.target.id] = " ".join(paragraph.split())
    return docs


def _flat_docs(cls: type[Any], prefix: str = "") -> dict[str, str]:
    """:func:`field_docs` of ``cls`` and of its nested settings, by dotted name."""
    docs = {f"{prefix}{name}": text for name, text in field_docs(cls).items()}
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        nested = _nested_class(hints.get(f.name))
        if nested is not None:
            docs.update(_flat_docs(nested, f"{prefix}{f.name}."))
    return docs


def _nested_class(annotation: Any) -> type[Any] | None:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _flattened(values: Mapping[str, object], prefix: str = "") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for name, value in values.items():
        if isinstance(value, Mapping):
            rows += _flattened(value, f"{prefix}{name}.")
        else:
            rows.append((f"{prefix}{name}", value))
    return rows
