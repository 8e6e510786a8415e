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
6. ``etl-observability check`` judges every dataset's freshness and each day's
   arrival as of the example's last day (:data:`AS_OF`), including the day the
   vendor missed, and writes the status page to ``.etl/status.html``. Its exit
   code 1 (something late or missing) is the example's expected verdict.

The drops are stored now, but a vendor sent them over eleven days: on a local
store, each landing file is given the time its vendor sent it
(:data:`VENDOR_CLOCK`), so the arrival states are the ones the example tells.

Every step runs the same console scripts an operator would. The OpenPGP key in
``keys/`` exists for this example only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from etl_core.errors import ObjectNotFoundError
from etl_core.runtime import ExitCode, RuntimeSettings, open_session
from etl_core.storage import LocalObjectStore, ObjectStore

EXAMPLE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
AS_OF = "2026-11-11T12:00:00+00:00"
"""The example's "now" for the freshness check: noon after its last delivery."""
VENDOR_CLOCK = {
    "pos_20261101.csv": "2026-11-01T05:42:00+00:00",
    "pos_20261102.csv": "2026-11-02T05:51:00+00:00",
    "pos_20261103.csv": "2026-11-03T07:37:00+00:00",  # after 06:00, within the 2h grace
    "pos_20261104.csv.zip": "2026-11-04T10:18:00+00:00",  # late
    "pos_20261105.csv.zip.pgp": "2026-11-05T05:48:00+00:00",
    "pos_20261106.csv": "2026-11-06T03:05:00+00:00",  # early: before 04:00
    "pos_20261107.csv": "2026-11-07T05:55:00+00:00",
    "pos_20261108.csv.pgp": "2026-11-08T05:47:00+00:00",
    "pos_20261109.csv.zip": "2026-11-09T05:58:00+00:00",
    # 2026-11-10: nothing came
    "pos_20261111.csv": "2026-11-11T05:44:00+00:00",
    "store_manager_notes.txt": "2026-11-04T14:02:00+00:00",
}
"""When the vendor sent each drop (UTC); the files are due daily at 06:00 with 2h grace."""


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


def date_the_drops(store: ObjectStore) -> bool:
    """Give each landing drop the time its vendor sent it (:data:`VENDOR_CLOCK`); only a
    local store's objects can be dated (their modification time): ``False`` otherwise."""
    if not isinstance(store, LocalObjectStore):
        return False
    for name, sent in VENDOR_CLOCK.items():
        path = store.root / "landing" / "pos" / name
        if path.is_file():
            stamp = datetime.fromisoformat(sent).timestamp()
            os.utime(path, (stamp, stamp))
    return True


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
    if not date_the_drops(store):
        print(f"{store.url} is not a local store: the drops keep their upload times")

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

    freshness_check(env)
    return 0


def freshness_check(env: dict[str, str]) -> None:
    """The last step: freshness and arrivals as of :data:`AS_OF`, and the status page."""
    page = Path(".etl/status.html").resolve()
    step(f"7. freshness and arrivals as of {AS_OF} -> {page}")
    check = ("etl-observability", "check", "--at", AS_OF, "--html", str(page))
    run(*check, env=env, ok=(ExitCode.OK, ExitCode.FAILED))  # 1: something is late or missing
    print(f"status page: {page}")


if __name__ == "__main__":
    raise SystemExit(main())
