"""The package's public surface: exports, version, and an import without side effects."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from importlib.metadata import version

import pytest

import etl_database_schema
from etl_database_schema import SchemaError, pending_migrations

RunPython = Callable[..., subprocess.CompletedProcess[str]]


def _isort_style(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then everything else."""
    category = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return (category, name)


def test_all_is_sorted_and_every_name_exists() -> None:
    names = etl_database_schema.__all__

    assert list(names) == sorted(names, key=_isort_style)
    assert all(hasattr(etl_database_schema, name) for name in names)


def test_version_comes_from_the_installed_metadata() -> None:
    assert etl_database_schema.__version__ == version("etl-database-schema")


def test_import_neither_sets_up_django_nor_reads_database_url(run_python: RunPython) -> None:
    result = run_python(
        """
        import sys
        import etl_database_schema
        assert not etl_database_schema.is_configured()
        assert "django" not in sys.modules, "importing the package imported Django"
        print("clean")
        """,
        env={"DATABASE_URL": "mysql://not-even-supported"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_migration_helpers_refuse_to_run_before_setup() -> None:
    if etl_database_schema.is_configured():
        pytest.skip("another test in this process set Django up")
    with pytest.raises(SchemaError, match=r"setup\(\) has not been called"):
        pending_migrations()
