"""Package boundaries of docs/architecture.md sections 1 and 7, checked by running the code."""

from __future__ import annotations

import subprocess
import sys

from repo_layout import REPO, venv_tool

# Imports every etl_core module with boto3 made unimportable, then lists the
# top-level modules that are neither standard library nor ours.
_ETL_CORE_IMPORTS = """
import importlib, pkgutil, sys
sys.modules["boto3"] = None
sys.modules["botocore"] = None
import etl_core
for info in pkgutil.walk_packages(etl_core.__path__, "etl_core."):
    if not info.name.startswith("etl_core.testing"):
        importlib.import_module(info.name)
allowed = set(sys.stdlib_module_names) | {"etl_core", "__main__", "_distutils_hack"}
loaded = {n.split(".")[0] for n, m in sys.modules.items() if m is not None}
print(sorted(loaded - allowed))
"""

_NO_SIDE_EFFECTS = """
import logging, sys
before = list(logging.getLogger().handlers)
import etl_core, file_processing, data_pipeline, observability, etl_database_schema
assert logging.getLogger().handlers == before, "importing a package configured logging"
assert "django.conf" not in sys.modules or not __import__("django.conf").conf.settings.configured
print("clean")
"""


def test_etl_core_imports_only_the_standard_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _ETL_CORE_IMPORTS], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_importing_packages_has_no_side_effects() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _NO_SIDE_EFFECTS], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_import_linter_contracts_hold() -> None:
    result = subprocess.run(
        [venv_tool("lint-imports")], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
