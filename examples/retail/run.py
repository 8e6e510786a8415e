"""The retail example end to end, on the embedded defaults (what `make run` runs).

1. Vendor drops under ``examples/retail/landing/<source>/`` are delivered into
   ``landing/<source>/`` of the store (``ETL_STORAGE_URL``, default ``.etl/store``),
   skipping files already there with the same content; the reference tables go
   to ``reference/``.
2. The platform database is migrated (``DATABASE_URL``, default a SQLite file
   under ``.etl/``).
3. file_processing scans ``landing/``: good days are validated, bad drops (failed
   checks, a stranger's key, a zip-slip archive, an unknown file) quarantined.
4. data_pipeline transforms and enriches every new validated day into
   ``curated/`` Parquet and loads it into the database.
5. The store inventory, the ledger's health signals and the last successful run
   of each lane (the runs above are recorded in the run ledger) are printed.

Every step runs the same console scripts an operator would. The OpenPGP key in
``keys/`` exists for this example only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from etl_core.errors import ObjectNotFoundError
from etl_core.runtime import ExitCode, RuntimeSettings, open_session
from etl_core.storage import ObjectStore

EXAMPLE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def deliver(store: ObjectStore, drops: Path, zone: str, *, skip: str = "") -> tuple[int, int]:
    """Copy each file under ``drops`` into ``zone``, unless the same content is already there."""
    delivered = unchanged = 0
    for path in sorted(p for p in drops.rglob("*") if p.is_file()):
        if skip and path.name.endswith(skip):
            continue
        key = f"{zone}/{path.relative_to(drops).as_posix()}"
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


def run(*command: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> None:
    """Run a console script; exit codes in ``ok`` are expected outcomes, others fail the example."""
    done = subprocess.run([str(BIN / command[0]), *command[1:]], check=False, env=env)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}")


def main() -> int:
    session = open_session("example", RuntimeSettings, {"create_store": True})
    settings = session.settings
    env = dict(os.environ)
    env.setdefault("ETL_STORAGE_URL", settings.storage_url)
    env.setdefault("ETL_CREATE_STORE", "true")  # the example makes its store on first run
    env.setdefault("ETL_CONFIG_DIR", str(EXAMPLE / "config"))
    env.setdefault("RETAIL_POS_PGP_KEY", (EXAMPLE / "keys/retail-example-secret.asc").read_text())
    if "DATABASE_URL" not in env:
        Path(".etl").mkdir(exist_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{Path('.etl/etl.sqlite3').resolve()}"
    env.setdefault("ETL_LOG_FORMAT", "console")
    has_gpg = shutil.which("gpg") is not None

    store = session.open_store()
    step(f"1. vendor drops -> {store.url}/landing/")
    delivered, unchanged = deliver(
        store, EXAMPLE / "landing", "landing", skip="" if has_gpg else ".pgp"
    )
    print(f"delivered {delivered} file(s), {unchanged} already there unchanged")
    if not has_gpg:
        print("gpg is not installed: the OpenPGP-encrypted drops were left out (install gnupg)")
    deliver(store, EXAMPLE / "reference", "reference")

    step("2. database migrations")
    run("etl-schema", "migrate", env=env)

    step("3. file processing: landing/ -> validated/ or quarantine/")
    run("etl-file-processing", "scan", env=env, ok=(0, ExitCode.PARTIAL))
    run("etl-file-processing", "quarantine", "list", env=env)

    step("4. data pipeline: validated/ -> curated/ Parquet -> database")
    run("etl-data-pipeline", "run", env=env)

    step("5. store inventory")
    run("etl-observability", "inventory", env=env)

    step("6. ledger health")
    run("etl-observability", "database", env=env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
