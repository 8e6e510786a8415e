"""The package's lazy re-exports: every public name resolves, functions stay functions."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import file_processing


@pytest.mark.parametrize("name", file_processing.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    value = getattr(file_processing, name)
    assert not isinstance(value, ModuleType)  # not a submodule shadowing the name
    lazy = file_processing._EXPORTS.get(name)
    if lazy is not None:
        assert value is getattr(importlib.import_module(lazy), name)


def test_names_of_submodules_stay_the_functions() -> None:
    import file_processing.scan
    import file_processing.sniff
    import file_processing.unpack  # loading the submodules must not shadow the names

    for name in ("scan", "sniff", "unpack"):
        assert callable(getattr(file_processing, name))
        assert not isinstance(getattr(file_processing, name), ModuleType)
