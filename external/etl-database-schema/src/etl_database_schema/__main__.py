"""``python -m etl_database_schema`` runs the ``etl-schema`` command."""

from __future__ import annotations

import sys

from etl_database_schema.cli import main

if __name__ == "__main__":
    sys.exit(main())
