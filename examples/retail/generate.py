"""Deterministic retail data for the example and the benchmarks.

Writes point-of-sale transaction CSVs (12 columns, about 130 bytes a row) and the
reference tables the pipeline enriches them with. The same seed gives the same
bytes, so example runs and benchmarks are repeatable.

    python examples/retail/generate.py transactions --date 2026-11-02 --rows 1000000 -o out.csv
    python examples/retail/generate.py reference -o examples/retail/reference
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

COLUMNS = [
    "transaction_id",
    "store_id",
    "register_id",
    "sold_at",
    "product_sku",
    "quantity",
    "unit_price",
    "discount",
    "currency",
    "payment_type",
    "customer_id",
    "loyalty_member",
]
STORES = [
    ("S001", "Lisbon Baixa", "PT", "Lisbon"),
    ("S002", "Porto Ribeira", "PT", "Porto"),
    ("S003", "Madrid Sol", "ES", "Madrid"),
    ("S004", "Barcelona Born", "ES", "Barcelona"),
    ("S005", "Lyon Presqu'ile", "FR", "Lyon"),
    ("S006", "Paris Marais", "FR", "Paris"),
    ("S007", "Milan Brera", "IT", "Milan"),
    ("S008", "Turin Centro", "IT", "Turin"),
]
CATEGORIES = ["grocery", "bakery", "dairy", "produce", "household", "beverages", "frozen"]
PAYMENT_TYPES = ["card", "cash", "mobile", "voucher"]
PRODUCT_COUNT = 500


def products(seed: int = 7) -> list[tuple[str, str, str, str]]:
    """(sku, name, category, list_price) for every product in the catalogue."""
    rng = random.Random(seed)
    return [
        (
            f"P{n:05d}",
            f"{rng.choice(CATEGORIES).title()} item {n}",
            rng.choice(CATEGORIES),
            f"{rng.uniform(0.5, 80):.2f}",
        )
        for n in range(1, PRODUCT_COUNT + 1)
    ]


def transactions(day: date, rows: int, *, seed: int = 11) -> Iterator[list[str]]:
    """``rows`` transactions sold on ``day``, in time order."""
    rng = random.Random(f"{seed}-{day.isoformat()}")
    catalogue = products()
    start = datetime.combine(day, datetime.min.time()).replace(hour=7)
    step = (14 * 3600) / max(rows, 1)
    for n in range(rows):
        sku, _, _, list_price = catalogue[rng.randrange(len(catalogue))]
        store = STORES[rng.randrange(len(STORES))][0]
        member = rng.random() < 0.4
        yield [
            f"{day:%Y%m%d}-{n:09d}",
            store,
            f"{store}-R{rng.randint(1, 6)}",
            (start + timedelta(seconds=int(n * step))).isoformat(),
            sku,
            str(rng.choice((1, 1, 1, 2, 2, 3, 4, 6))),
            list_price,
            f"{rng.choice((0, 0, 0, 0.05, 0.1, 0.2)):.2f}",
            "EUR",
            rng.choice(PAYMENT_TYPES),
            f"C{rng.randint(1, 250_000):07d}" if member else "",
            "true" if member else "false",
        ]


def write_transactions(out: TextIO, day: date, rows: int) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(transactions(day, rows))


def write_reference(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "stores.csv").open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["store_id", "name", "country", "city"])
        writer.writerows(STORES)
    with (directory / "products.csv").open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["product_sku", "name", "category", "list_price"])
        writer.writerows(products())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    tx = sub.add_parser("transactions", help="one day of point-of-sale transactions as CSV")
    tx.add_argument("--date", type=date.fromisoformat, required=True)
    tx.add_argument("--rows", type=int, default=1000)
    tx.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    ref = sub.add_parser("reference", help="stores.csv and products.csv")
    ref.add_argument("-o", "--output", type=Path, required=True, help="directory")
    args = parser.parse_args(argv)
    if args.what == "reference":
        write_reference(args.output)
    elif args.output is None:
        write_transactions(sys.stdout, args.date, args.rows)
    else:
        with args.output.open("w", newline="") as out:
            write_transactions(out, args.date, args.rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
