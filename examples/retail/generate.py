"""Deterministic retail data for the example and the benchmarks.

Writes point-of-sale transaction CSVs (12 columns, about 130 bytes a row) and the
reference tables the pipeline enriches them with, and makes the hourly door counts
the example's footfall API serves (``api.py``). The same seed gives the same bytes,
so example runs and benchmarks are repeatable.

    python examples/retail/generate.py transactions --date 2026-11-02 --rows 1000000 -o out.csv
    python examples/retail/generate.py reference -o examples/retail/reference
    python examples/retail/generate.py drops -o examples/retail/landing   # needs gpg
    python examples/retail/generate.py footfall --date 2026-11-06       # JSON Lines

``drops`` writes the example's vendor drops, good and bad, as a vendor would
send them: plain, zipped, zipped then OpenPGP-encrypted to the example key
(``keys/``), encrypted to a stranger's key, with rows failing the contract's
checks, an archive with a path-traversal member, a file no contract expects, and one day
(2026-11-10) with no file at all.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
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


FOOTFALL_DAYS = tuple(date(2026, 11, 1) + timedelta(days=n) for n in range(10))
"""The days the footfall API has counts for: 2026-11-01 to 2026-11-10, the complete days
before the example's "now" (noon on 2026-11-11). The counters kept counting on 11-10,
the day the point-of-sale vendor sent nothing."""
FOOTFALL_HOURS = range(7, 21)
"""Opening hours (UTC): one count per store per hour, 07:00 to 21:00."""
FOOTFALL_GLITCH = ("S003", datetime(2026, 11, 6, 15, tzinfo=UTC))
"""A counter reset: that store's hour is reported with ``entries = -1``, which the
dataset contract's range check splits off (as the 2026-11-06 point-of-sale file's bad row)."""


def footfall(day: date, *, seed: int = 11) -> list[dict[str, object]]:
    """The hourly door counts of every store on ``day``, as the footfall API serves them.

    Each count is final a few minutes after its hour ends (``updated_at``), so a day's
    counts are all updated on that day.
    """
    rng = random.Random(f"{seed}-footfall-{day.isoformat()}")
    weekend = 1.3 if day.weekday() >= 5 else 1.0
    records: list[dict[str, object]] = []
    for number, (store, *_) in enumerate(STORES):
        base = 60 + (number * 37) % 120  # visitors an hour in a quiet hour, by store
        for hour in FOOTFALL_HOURS:
            start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
            rush = 0.9 * math.exp(-((hour - 12.5) ** 2) / 3) + 0.7 * math.exp(
                -((hour - 17.5) ** 2) / 2
            )
            entries = round(base * weekend * (0.6 + rush) * rng.uniform(0.85, 1.15))
            exits = max(0, entries + rng.randint(-6, 6))
            if (store, start) == FOOTFALL_GLITCH:
                entries = -1
            updated = start + timedelta(
                hours=1, minutes=rng.randint(2, 14), seconds=rng.randint(0, 59)
            )
            records.append(
                {
                    "id": f"{store}-{start:%Y%m%dT%H}",
                    "store_id": store,
                    "hour_start": _utc(start),
                    "entries": entries,
                    "exits": exits,
                    "updated_at": _utc(updated),
                }
            )
    return records


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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


KEYS = Path(__file__).resolve().parent / "keys"
EXAMPLE_KEY = KEYS / "retail-example-secret.asc"  # example only: never use it for real data
STRANGER_KEY = KEYS / "stranger-public.asc"
DROP_ROWS = 300


def day_csv(day: date, rows: int = DROP_ROWS, *, bad_every: int = 0) -> bytes:
    """One day as CSV bytes; every ``bad_every``-th row gets quantity 0 (fails ``range``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for n, row in enumerate(transactions(day, rows), 1):
        if bad_every and n % bad_every == 0:
            row[5] = "0"
        writer.writerow(row)
    return out.getvalue().encode()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            member = zipfile.ZipInfo(name, date_time=(2026, 11, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, data)
    return buffer.getvalue()


def encrypted(data: bytes, key_file: Path) -> bytes:
    """``data`` encrypted (with integrity protection) to the key in ``key_file``."""
    gpg = shutil.which("gpg")
    if gpg is None:
        raise SystemExit("generate.py drops: gpg is needed to encrypt the example drops")
    with tempfile.TemporaryDirectory(prefix="gpg-") as home:
        base = [gpg, "--homedir", home, "--batch", "--yes", "--quiet"]
        subprocess.run([*base, "--import", str(key_file)], check=True, capture_output=True)
        listing = subprocess.run(
            [*base, "--with-colons", "--show-keys", str(key_file)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        fingerprint = next(
            line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")
        )
        return subprocess.run(
            [*base, "--trust-model", "always", "-r", fingerprint, "--encrypt"],
            input=data,
            check=True,
            capture_output=True,
        ).stdout


def write_drops(directory: Path) -> None:
    """The example's vendor drops under ``directory/<source>/``."""
    pos = directory / "pos"
    pos.mkdir(parents=True, exist_ok=True)
    drops = {
        "pos_20261101.csv": day_csv(date(2026, 11, 1)),
        "pos_20261102.csv": day_csv(date(2026, 11, 2)),
        "pos_20261103.csv": day_csv(date(2026, 11, 3)),
        "pos_20261104.csv.zip": zipped({"pos_20261104.csv": day_csv(date(2026, 11, 4))}),
        "pos_20261105.csv.zip.pgp": encrypted(
            zipped({"pos_20261105.csv": day_csv(date(2026, 11, 5))}), EXAMPLE_KEY
        ),
        # one bad row in 300 (0.3%): within max_rejected_fraction, split off
        "pos_20261106.csv": day_csv(date(2026, 11, 6), bad_every=300),
        # one bad row in 10: the whole file is quarantined (data.quality)
        "pos_20261107.csv": day_csv(date(2026, 11, 7), bad_every=10),
        # encrypted to someone else's key (pgp.no_key)
        "pos_20261108.csv.pgp": encrypted(day_csv(date(2026, 11, 8)), STRANGER_KEY),
        # a member escaping the extraction directory (archive.path_traversal)
        "pos_20261109.csv.zip": zipped({"../../etc/pos_20261109.csv": day_csv(date(2026, 11, 9))}),
        # no file for 2026-11-10: the day the vendor missed (`etl-observability check` says
        # "missing"); the next day's file came as usual
        "pos_20261111.csv": day_csv(date(2026, 11, 11)),
        # matches no contract (contract.unmatched)
        "store_manager_notes.txt": b"Till 3 in S002 was replaced on 2026-11-04.\n",
    }
    for name, data in drops.items():
        (pos / name).write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    tx = sub.add_parser("transactions", help="one day of point-of-sale transactions as CSV")
    tx.add_argument("--date", type=date.fromisoformat, required=True)
    tx.add_argument("--rows", type=int, default=1000)
    tx.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    ref = sub.add_parser("reference", help="stores.csv and products.csv")
    ref.add_argument("-o", "--output", type=Path, required=True, help="directory")
    drops = sub.add_parser("drops", help="the example's vendor drops, good and bad (needs gpg)")
    drops.add_argument("-o", "--output", type=Path, required=True, help="landing directory")
    foot = sub.add_parser("footfall", help="one day of the footfall API's hourly counts (JSONL)")
    foot.add_argument("--date", type=date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    if args.what == "footfall":
        for record in footfall(args.date):
            sys.stdout.write(json.dumps(record) + "\n")
    elif args.what == "reference":
        write_reference(args.output)
    elif args.what == "drops":
        write_drops(args.output)
    elif args.output is None:
        write_transactions(sys.stdout, args.date, args.rows)
    else:
        with args.output.open("w", newline="") as out:
            write_transactions(out, args.date, args.rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
