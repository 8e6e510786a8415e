"""Runs the state store contract on the database (``test_ingest_state`` drives it).

Usage: ``python state_worker.py DATABASE_URL STORE_DIR``; prints one line per check
(``ok <name>`` or ``FAILED <name>: <error>``) and exits 1 when any failed.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from state_contract import CHECKS

from data_pipeline import db
from data_pipeline.ingest import DatabaseStateStore
from etl_core.storage import LocalObjectStore


def main(url: str, store_dir: Path) -> int:
    db.connect(url, feature="state contract")
    failed = 0
    for check in CHECKS:
        try:
            check(DatabaseStateStore(), LocalObjectStore(store_dir))
        except Exception:
            failed += 1
            print(f"FAILED {check.__name__}: {traceback.format_exc()}")
        else:
            print(f"ok {check.__name__}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
