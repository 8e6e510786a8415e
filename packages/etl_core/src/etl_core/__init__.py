"""etl_core: the platform's shared, standard-library-only core."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("etl-core")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
