"""The retail example end to end, on the embedded defaults (what `make run` runs).

1. Vendor drops under ``examples/retail/landing/<source>/`` are delivered into
   ``landing/<source>/`` of the store (``ETL_STORAGE_URL``, default ``.etl/store``),
   skipping files already there with the same content.
2. The platform database is migrated (``DATABASE_URL``, default a SQLite file
   under ``.etl/``).
3. The store inventory is printed: objects, bytes and newest object per zone.
4. The ledger's health signals are read from the database.

Every step runs the same console scripts an operator would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from etl_core.errors import ObjectNotFoundError
from etl_core.runtime import RuntimeSettings, open_session
from etl_core.storage import ObjectStore

EXAMPLE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def deliver(store: ObjectStore, drops: Path) -> tuple[int, int]:
    """Copy each vendor drop into landing/, unless the same content is already there."""
    delivered = unchanged = 0
    for path in sorted(p for p in drops.rglob("*") if p.is_file()):
        key = f"landing/{path.relative_to(drops).as_posix()}"
        try:
            if store.head(key).etag == md5_of(path):
                unchanged += 1
                continue
        except ObjectNotFoundError:
            pass
        with path.open("rb") as source, store.open_write(key) as target:
            shutil.copyfileobj(source, target, 1 << 20)
        delivered += 1
    return delivered, unchanged


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(*command: str, env: dict[str, str]) -> None:
    subprocess.run([str(BIN / command[0]), *command[1:]], check=True, env=env)


def main() -> int:
    session = open_session("example", RuntimeSettings)
    settings = session.settings
    env = dict(os.environ)
    env.setdefault("ETL_STORAGE_URL", settings.storage_url)
    if "DATABASE_URL" not in env:
        Path(".etl").mkdir(exist_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{Path('.etl/etl.sqlite3').resolve()}"
    env.setdefault("ETL_LOG_FORMAT", "console")

    store = session.open_store()
    step(f"1. vendor drops -> {store.url}/landing/")
    delivered, unchanged = deliver(store, EXAMPLE / "landing")
    print(f"delivered {delivered} file(s), {unchanged} already there unchanged")

    step("2. database migrations")
    run("etl-schema", "migrate", env=env)

    step("3. store inventory")
    run("etl-observability", "inventory", env=env)

    step("4. ledger health")
    run("etl-observability", "database", env=env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
