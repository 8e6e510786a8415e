"""The package's re-exports: every public name resolves, and nothing heavy loads eagerly."""

from __future__ import annotations

import importlib
import subprocess
import sys
from types import ModuleType

import pytest

import etl_core
import etl_core.storage


@pytest.mark.parametrize("name", etl_core.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    value = getattr(etl_core, name)
    lazy = etl_core._EXPORTS.get(name)
    if lazy == f"etl_core.{name}":  # a submodule exported as such
        assert value is importlib.import_module(lazy)
    elif lazy is not None:  # the object its module defines
        assert value is getattr(importlib.import_module(lazy), name)
    else:  # an eager name, not shadowed by a submodule of its name
        assert not isinstance(value, ModuleType)


def test_star_import_gives_the_public_api() -> None:
    namespace: dict[str, object] = {}
    exec("from etl_core import *", namespace)
    assert set(etl_core.__all__) <= namespace.keys()


def test_retry_is_the_decorator_and_submodules_stay_reachable() -> None:
    import etl_core.storage.s3  # loading the submodule must not shadow the name

    assert callable(etl_core.retry)
    assert not isinstance(etl_core.retry, type(etl_core))
    assert etl_core.errors.EtlError is etl_core.EtlError
    assert etl_core.storage.s3.S3ObjectStore is etl_core.storage.S3ObjectStore


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = etl_core.no_such_name  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = etl_core.storage.no_such_name  # type: ignore[attr-defined]


def test_s3_backend_is_reachable_from_the_storage_package() -> None:
    from etl_core.storage.s3 import DEFAULT_S3_RETRY, S3ObjectStore

    assert etl_core.storage.S3ObjectStore is S3ObjectStore
    assert etl_core.storage.DEFAULT_S3_RETRY is DEFAULT_S3_RETRY


def test_a_local_store_does_not_load_the_s3_backend_or_asyncio(tmp_path: object) -> None:
    code = (
        "import sys\n"
        "from etl_core import open_store, Session, EtlError\n"
        f"open_store({str(tmp_path)!r}).write_bytes('a', b'x')\n"
        "loaded = [m for m in ('etl_core.storage.s3', 'asyncio', 'importlib.metadata') "
        "if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_importing_one_submodule_does_not_import_the_re_exported_modules() -> None:
    code = (
        "import sys\n"
        "import etl_core.errors\n"
        "heavy = ('etl_core.storage', 'etl_core.artifacts', 'etl_core.metrics',"
        " 'etl_core.runtime')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""


def test_dir_lists_the_lazy_names_before_their_first_use() -> None:
    assert set(etl_core.__all__) <= set(dir(etl_core))
