"""The platform's runtimes (lanes), named once: each is a package with its own settings
table in ``etl.toml``, its own queue and its own console script."""

from __future__ import annotations

__all__ = ["LANES"]

LANES = ("file_processing", "data_pipeline", "observability")
"""The runtimes; each has its own table in a shared ``etl.toml``."""
