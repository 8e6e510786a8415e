"""Lazy re-exports for a package's ``__init__`` (PEP 562): a name's module is imported on first use.

Importing one submodule then no longer imports every module the package re-exports (issue 16,
start-up). A name that is also a submodule's name (``etl_core.retry``, the function) must stay an
eager import: importing the submodule would otherwise bind the module over it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], on_demand: Mapping[str, Callable[[], Any]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a name to its module.

    A name whose module is ``package.name`` is that module itself. Each value found is kept in
    the package's namespace, so the next lookup is a plain attribute; ``on_demand`` values
    (``__version__``) are computed at every lookup, never kept.
    """

    def attribute(name: str) -> Any:
        if name in on_demand:
            return on_demand[name]()
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = import_module(module_name)
        value = module if module_name == f"{package}.{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def names() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports, *on_demand})

    return attribute, names
