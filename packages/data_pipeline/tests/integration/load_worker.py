"""Curated loads in their own process (Django is set up per process), for the load tests.

Usage: ``python load_worker.py DATABASE_URL RUN_ID:ROWS[:ANNOUNCED[:analyze]] ...``. Each
one replaces partition 2024-05-01 of ``retail_sales_transaction`` with ``ROWS`` rows whose
``run_id`` is ``RUN_ID``, through :func:`data_pipeline.db.load_batches` with Arrow
batches of 1,000 rows and ``rows=ANNOUNCED`` (default ``ROWS``, as
:mod:`data_pipeline.load` passes; ``none`` passes none), ``analyze=True`` when the load ends
in ``:analyze``; like it, the fault point ``load`` is
reached before each batch, so ``ETL_FAULT_AT`` can cut a load short at any step. Prints
``loaded RUN_ID ROWS`` after each load.

A load ending in ``@TOKEN`` is fenced by the day's lease (key :data:`LEASE`) as a holder
of token ``TOKEN`` (of the store ``LOAD_WORKER_STORE`` names) whose store-side lease
check passed (:class:`CheckedLease`: the check
returns the token it had), as a holder that stalled after its check would see it; a load
the database fence refuses prints ``refused RUN_ID <message>`` and the next goes on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from data_pipeline import db
from data_pipeline.errors import LoadFencedError
from etl_core.faults import Step, fault_point

DAY = date(2024, 5, 1)
TABLE = "retail_sales_transaction"
_BATCH = 1000
LEASE = "_state/data_pipeline/leases/sales/dt=2024-05-01.json"
NAMES = [
    "transaction_id", "line_number", "sold_at", "store_code", "sku", "quantity", "unit_price",
    "amount", "currency", "run_id",
]  # fmt: skip


def batches(run_id: str, rows: int) -> Iterator[Any]:
    sold = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    for start in range(0, rows, _BATCH):
        n = min(_BATCH, rows - start)
        fault_point(Step.LOAD)
        yield pa.RecordBatch.from_pydict(
            {
                "transaction_id": [f"T{i}" for i in range(start, start + n)],
                "line_number": [1] * n,
                "sold_at": pa.array([sold] * n, type=pa.timestamp("us", tz="UTC")),
                "store_code": [f"S{i % 7:03d}" for i in range(start, start + n)],
                "sku": [f"SKU-{i % 101}" for i in range(start, start + n)],
                "quantity": pa.array([Decimal("2.000")] * n, type=pa.decimal128(12, 3)),
                "unit_price": pa.array([Decimal("1.25")] * n, type=pa.decimal128(12, 2)),
                "amount": pa.array([Decimal("2.50")] * n, type=pa.decimal128(14, 2)),
                "currency": ["EUR"] * n,
                "run_id": [run_id] * n,
            }
        )


STORE = os.environ.get("LOAD_WORKER_STORE", "file:///srv/load-worker-store")
"""The store the leases of ``@TOKEN`` loads are of (``LOAD_WORKER_STORE``: a test's real
store, whose leases' loads these are then fenced against)."""


class CheckedLease:
    """The day's lease as a holder of ``token`` sees it once its store-side check passed."""

    key = LEASE
    store_url = STORE

    def __init__(self, token: int) -> None:
        self.token = token

    def check(self) -> int:
        return self.token


def main(url: str, loads: list[str]) -> int:
    db.connect(url, migrate=True)
    for spec in loads:
        load, _, token = spec.partition("@")
        fence = CheckedLease(int(token)) if token else None
        run_id, rows, *announced = load.split(":")
        said = (announced or [rows])[0]
        expected = None if said == "none" else int(said)
        analyze = announced[1:] == ["analyze"]
        try:
            loaded = db.load_batches(
                TABLE,
                DAY,
                NAMES,
                batches(run_id, int(rows)),
                rows=expected,
                analyze=analyze,
                fence=fence,
            )
        except LoadFencedError as refused:
            print("refused", run_id, refused, flush=True)
            continue
        print("loaded", run_id, loaded, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], sys.argv[2:]))
