"""The retail example end to end, on the embedded defaults (what `make run` runs).

Every lane runs once, with the console scripts an operator would use:

1. Vendor drops under ``examples/retail/landing/<source>/`` are delivered into
   ``landing/<source>/`` of the store (``ETL_STORAGE_URL``, default ``.etl/store``),
   skipping files already there with the same content; the reference tables go
   to ``reference/``.
2. The platform database is migrated (``DATABASE_URL``, default a SQLite file
   under ``.etl/``).
3. file_processing scans ``landing/``: good days are validated, bad drops (failed
   checks, a stranger's key, a zip-slip archive, an unknown file) quarantined.
4. data_pipeline transforms and enriches every new validated point-of-sale day into
   ``curated/`` Parquet and loads it into the database.
5. The example's footfall API (``api.py``) is started on an ephemeral port and
   ``etl-data-pipeline ingest`` pulls it, one window a day up to the example's last
   complete day: response bodies to ``raw/api/``, records as chunks to
   ``landing/api/``. The ingestion reads a working copy of ``config/`` under
   ``.etl/config`` whose API source points at that port.
   Steps 4 and 5 do not depend on each other and run side by side.
6. file_processing validates the landed chunks against ``retail_store_footfall``.
7. data_pipeline sums them per store and day and loads them.
8. The store inventory is printed.
9. So are the ledger's health signals and the last successful run of each lane.
10. ``etl-observability check`` judges every dataset's freshness and each day's
    arrival as of the example's last day (:data:`AS_OF`), including the day the
    vendor missed, and writes the status page to ``.etl/status.html``. Its exit
    code 1 (something late or missing) is the example's expected verdict.

It ends with one short summary: what this run validated, quarantined, curated,
loaded and ingested (read from the store's manifests and records before and after),
each dataset's freshness, and where to look next. A second run finds everything
done and says so; the API has no new records for it.

The drops are stored now, but a vendor sent them over eleven days: on a local
store, each landing file is given the time its vendor sent it
(:data:`VENDOR_CLOCK`), so the arrival states are the ones the example tells; and
what the lanes wrote from them (and the footfall the API gave) is given the time it
would have been written then (:data:`INGEST_DELAY`, :data:`PROCESSING_DELAY`), so
the check as of :data:`AS_OF` sees it (a replay leaves out what was stored after).
The OpenPGP key in ``keys/`` and the API token made up for each run exist for this
example only.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any

from api import TOKEN_ENV, start_api
from summary import RunFacts, changed, read_changes, snapshot, summary

from etl_core.contracts import Contract, load_contracts
from etl_core.errors import ObjectNotFoundError
from etl_core.layout import API, CURATED, RAW, VALIDATED, landing_prefix, partition_of
from etl_core.redaction import redact_text
from etl_core.runtime import ExitCode, RuntimeSettings, open_session
from etl_core.storage import LocalObjectStore, ObjectStore

EXAMPLE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
AS_OF = "2026-11-11T12:00:00+00:00"
"""The example's "now" for the freshness check: noon after its last delivery."""
API_SOURCE = "retail_footfall"
"""The example's API source (``config/sources/retail_footfall.toml``)."""
API_WINDOWS = ("2026-11-01T00:00:00Z", "2026-11-11T00:00:00Z")
"""What ``ingest`` asks the API for: ``--since``/``--until``, the complete days before
:data:`AS_OF`, one window (and partition) a day. Finished windows are not fetched again."""
WORK = Path(".etl")
"""The example's working directory (store, database, config copy, status page)."""
LOCK = WORK / "run.lock"
"""Held (``flock``) for a whole run: one run at a time uses :data:`WORK`."""
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
VENDOR_SOURCE = "pos"
"""Where the vendor's drops land: ``landing/pos/``."""
INGEST_DELAY = timedelta(minutes=10)
"""A day's footfall is ingested this long after the day ends (UTC): a nightly ingest."""
PROCESSING_DELAY = {
    RAW: timedelta(0),
    VALIDATED: timedelta(minutes=2),
    CURATED: timedelta(minutes=5),
}
"""How long after a day's delivery reached ``landing/`` each zone got it (the ingest's raw
pages with its chunks, the scan, the pipeline), in the times :func:`date_the_outputs` gives."""


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
        path = store.root / landing_prefix(VENDOR_SOURCE) / name
        if path.is_file():
            stamp = datetime.fromisoformat(sent).timestamp()
            os.utime(path, (stamp, stamp))
    return True


def delivered_at(contracts: list[Contract]) -> dict[tuple[str, date], datetime]:
    """When each dataset's delivery of a day reached ``landing/`` as the example tells it,
    for the vendor's drops (:data:`VENDOR_CLOCK`; the API's days: :func:`_ingested`)."""
    arrived: dict[tuple[str, date], datetime] = {}
    for name, sent in VENDOR_CLOCK.items():
        key, stamp = f"{landing_prefix(VENDOR_SOURCE)}{name}", datetime.fromisoformat(sent)
        for contract in contracts:
            day = contract.partition_date(key, stamp)
            if day is not None:
                arrived[(contract.dataset, day)] = stamp
    return arrived


def date_the_outputs(store: ObjectStore, contracts: list[Contract]) -> bool:
    """Give what the lanes wrote (validated deliveries, curated partitions) and what the API
    ingestion landed (its chunks and raw pages) the time it would have been written as the
    example tells it: a day's delivery (:func:`delivered_at`) plus :data:`PROCESSING_DELAY`
    for the zone. A replay (``check --at``) leaves out objects stored after its instant, so
    without this the zones would be empty as of :data:`AS_OF`. Only a local store's objects
    can be dated: ``False`` otherwise."""
    if not isinstance(store, LocalObjectStore):
        return False
    arrived = delivered_at(contracts)
    fed = [c for c in contracts if c.source.strip("/").startswith(f"{API}/")]
    for contract in fed:  # the API's chunks: their day is in their name
        for info in store.list(landing_prefix(contract.source.strip("/"))):
            day = contract.partition_date(info.key, info.last_modified)
            if day is not None:
                arrived[(contract.dataset, day)] = _ingested(day)
                _set_time(store, info.key, _ingested(day))
    by_raw = {c.source.strip("/"): c.dataset for c in fed}
    for zone in (RAW, VALIDATED, CURATED):
        for info in store.list(f"{zone}/"):
            partition = partition_of(info.key)
            if partition is None:
                continue
            dataset = by_raw.get(partition.dataset) if zone == RAW else partition.dataset
            when = arrived.get((dataset or "", partition.dt))
            if when is not None:
                _set_time(store, info.key, when + PROCESSING_DELAY[zone])
    return True


def _ingested(day: date) -> datetime:
    """When the nightly ingest landed ``day``'s footfall."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC) + INGEST_DELAY


def _set_time(store: LocalObjectStore, key: str, when: datetime) -> None:
    stamp = when.timestamp()
    os.utime(store.root / key, (stamp, stamp))


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(*command: str, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> None:
    """Run a console script; exit codes in ``ok`` are expected outcomes, others fail the example."""
    returncode = wait_for(subprocess.Popen([str(BIN / command[0]), *command[1:]], env=env))
    if returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited with {returncode}")


def wait_for(process: subprocess.Popen[Any]) -> int:
    """Its exit code. A terminal's Ctrl-C reaches the console script too (the whole
    foreground process group has it): on ``KeyboardInterrupt`` the script is left to stop
    its own way (:meth:`Interruption.stop`), instead of being killed a quarter second
    later as ``subprocess.run`` would, and the interruption re-raised."""
    try:
        return process.wait()
    except KeyboardInterrupt:
        INTERRUPTION.stop(process)
        raise


@dataclass
class Interruption:
    """Ctrl-C or SIGTERM (:func:`stop_on_sigterm`) while console scripts run.

    After the first one each script still running is waited for: it had the signal too
    (a terminal's Ctrl-C reaches its whole foreground process group, as a supervisor's
    SIGTERM to the group does) and stops its own way, units in flight finished, claims
    and scratch released. A second one stops waiting: every script still running is
    killed and reaped, since none may outlive the run and its lock on :data:`WORK` (a
    script that ignores the signal, or never got it, would go on beside the next run).
    """

    hurried: bool = False
    terminated: bool = False
    said: bool = False
    GRACE = 2.0
    """Seconds a script may take to stop before the wait is said (once)."""

    def stop(self, process: subprocess.Popen[Any]) -> None:
        """After an interruption: wait for ``process`` to end, or kill it once a second one
        came (before or during this wait). The log lines of a script started in the
        background (:func:`start`) are passed on: its own account of what it finished
        and what remains; its output is not."""
        if not self.hurried:
            try:
                try:
                    _, err = process.communicate(timeout=self.GRACE)
                except subprocess.TimeoutExpired:
                    self.say_the_wait(process)
                    _, err = process.communicate()
            except KeyboardInterrupt:
                self.hurried = True
                process.kill()
                process.communicate()
                raise
        else:
            process.kill()
            _, err = process.communicate()
        if err:
            sys.stderr.write(err)
            sys.stderr.flush()

    def say_the_wait(self, process: subprocess.Popen[Any]) -> None:
        """Say once that the example waits, and how to stop waiting."""
        if not self.said:
            self.said = True
            name = Path(str(process.args[0] if isinstance(process.args, list) else process.args))
            again = "SIGTERM" if self.terminated else "Ctrl-C"
            print(
                f"waiting for {name.name} (pid {process.pid}) to stop its own way; "
                f"{again} again kills it",
                file=sys.stderr,
                flush=True,
            )

    def exit_code(self) -> int:
        """130 after Ctrl-C, 143 after SIGTERM, as every runtime exits."""
        return 143 if self.terminated else 130


INTERRUPTION = Interruption()
"""This run's interruptions (one run a process)."""


def stop_on_sigterm() -> None:
    """SIGTERM (a supervisor's stop) takes Ctrl-C's way: the example waits for the script
    running, then exits 143 (it ended at once, leaving the script running unwatched and
    :data:`WORK` unlocked); a second SIGTERM kills the scripts still running."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        INTERRUPTION.terminated = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)


@dataclass(frozen=True)
class Started:
    """A console script running in the background, its output captured; leaving its
    ``with`` block stops it if it is still running (the example failed elsewhere)."""

    command: tuple[str, ...]
    process: subprocess.Popen[str]

    def __enter__(self) -> Started:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if self.process.poll() is None:
            if exc_type is KeyboardInterrupt:  # Ctrl-C: it stops its own way, or is killed
                INTERRUPTION.stop(self.process)
                return
            self.process.terminate()
            self.process.communicate()


def start(*command: str, env: dict[str, str]) -> Started:
    """Start a console script whose output is shown (or parsed) when it is finished: the
    read-only steps at the end run side by side and still print in order."""
    columns = str(shutil.get_terminal_size().columns)  # rich lays tables out for the terminal
    process = subprocess.Popen(
        [str(BIN / command[0]), *command[1:]],
        env={"COLUMNS": columns, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Started(command, process)


def finish(started: Started, *, ok: tuple[int, ...] = (0,)) -> str:
    """Wait for a started script, pass its log lines on; its output. An exit code not in
    ``ok`` fails the example (after showing the output)."""
    out, err = started.process.communicate()
    sys.stderr.write(err)
    sys.stderr.flush()
    if started.process.returncode not in ok:
        print(out, flush=True)
        raise SystemExit(f"{' '.join(started.command)} exited with {started.process.returncode}")
    return out


def parse_json(command: tuple[str, ...], out: str) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{' '.join(command)} --json printed no JSON document: {exc}") from None
    return document


def working_config(template: Path, target: Path) -> Path:
    """A fresh copy of the example's config directory (the API's address is filled in later)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(template, target)
    return target


def point_source_at(config: Path, source: str, base_url: str) -> None:
    """Set ``base_url`` of ``<config>/sources/<source>.toml`` (the copy's, never the template's)."""
    path = config / "sources" / f"{source}.toml"
    text, count = re.subn(
        r"^base_url\s*=.*$",
        f'base_url = "{base_url}"  # the API run.py started for this run',
        path.read_text(),
        count=1,
        flags=re.MULTILINE,
    )
    if count != 1:
        raise SystemExit(f"{path}: no top-level base_url line to point at {base_url}")
    path.write_text(text)


def environment(settings: RuntimeSettings, config: Path) -> dict[str, str]:
    """The console scripts' environment: the embedded defaults unless already set, and
    the local executor always (the config copy and the store are this run's)."""
    env = dict(os.environ)
    env.setdefault("ETL_STORAGE_URL", settings.storage_url)
    env.setdefault("ETL_CREATE_STORE", "true")  # the example makes its store on first run
    env["ETL_CONFIG_DIR"] = str(config)
    env.setdefault("RETAIL_POS_PGP_KEY", (EXAMPLE / "keys/retail-example-secret.asc").read_text())
    if not env.get(TOKEN_ENV):
        env[TOKEN_ENV] = secrets.token_urlsafe(24)  # this run's API token
    if "DATABASE_URL" not in env:
        env["DATABASE_URL"] = f"sqlite:///{(WORK / 'etl.sqlite3').resolve()}"
    env.setdefault("ETL_LOG_FORMAT", "console")
    env["ETL_EXECUTOR"] = "local"  # workers elsewhere read their own store and config, not ours
    return env


def hold_the_work_directory() -> IO[str]:
    """Wait until no other run of the example uses :data:`WORK`, then hold it (the lock
    is the open file returned; the kernel releases it when this process ends, however).

    Two runs at once would share the config copy: the second one's ``working_config``
    would replace the first one's, its API address and all, mid-run (the first run's
    ingestion would then call the second run's API with the wrong token).
    """
    try:
        WORK.mkdir(exist_ok=True)
        lock = LOCK.open("a+")
    except OSError as exc:  # another user's .etl/, a read-only directory
        raise SystemExit(
            f"cannot hold {LOCK.resolve()} (one run at a time uses {WORK.resolve()}/): "
            f"{exc.strerror or exc}"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        print(
            f"another run of the example (pid {holder}) is using {WORK.resolve()}/: "
            "waiting for it to finish (Ctrl-C stops waiting)",
            flush=True,
        )
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except KeyboardInterrupt:
            print("stopped waiting: nothing was done", flush=True)
            raise SystemExit(INTERRUPTION.exit_code()) from None  # as every runtime exits
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def main() -> int:
    session = open_session("example", RuntimeSettings, {"create_store": True})
    lock = hold_the_work_directory()  # kept open: the lock lasts the run
    config = working_config(EXAMPLE / "config", (WORK / "config").resolve())
    env = environment(session.settings, config)
    if session.settings.executor != "local":
        print(
            f"ETL_EXECUTOR={session.settings.executor} is set: the example runs its units in "
            "its own processes all the same (workers read their own store and config, not "
            f"{config})",
            flush=True,
        )
    store = session.open_store()
    before = snapshot(store)
    delivered, unchanged = deliver_the_drops(store)
    step("2. database migrations")
    run("etl-schema", "migrate", env=env)
    ingested = every_lane(config, env)
    date_the_outputs(store, list(load_contracts(config)))
    freshness = read_only_steps(env)
    facts = RunFacts(
        delivered=delivered,
        unchanged=unchanged,
        changes=read_changes(store, changed(before, snapshot(store))),
        ingested=ingested,
        freshness=freshness,
        tables={c.dataset: c.load.table for c in load_contracts(config) if c.load is not None},
    )
    step("Summary")
    print("\n".join(summary(facts, look_next(store, env))), flush=True)
    lock.close()  # the next run may start (an early exit releases it with the process)
    return 0


def deliver_the_drops(store: ObjectStore) -> tuple[int, int]:
    """Step 1: the vendor drops and reference tables into the store; (delivered, unchanged)."""
    step(f"1. vendor drops -> {store.url}/landing/")
    has_gpg = shutil.which("gpg") is not None
    delivered, unchanged = deliver(
        store, EXAMPLE / "landing", "landing", skip="" if has_gpg else ".pgp"
    )
    print(f"delivered {delivered} file(s), {unchanged} already there unchanged")
    if not has_gpg:
        print("gpg is not installed: the OpenPGP-encrypted drops were left out (install gnupg)")
    deliver(store, EXAMPLE / "reference", "reference")
    if not date_the_drops(store):
        print(f"{store.url} is not a local store: the drops keep their upload times")
    return delivered, unchanged


def every_lane(config: Path, env: dict[str, str]) -> dict[str, Any]:
    """Steps 3 to 7: the drops, then the API, through every lane; the ingestion's account.

    The point-of-sale partitions (step 4) and the API ingestion (step 5) do not depend on
    each other: they run side by side, and each is shown in its place.
    """
    step("3. file processing: vendor drops in landing/ -> validated/ or quarantine/")
    run("etl-file-processing", "scan", env=env, ok=(0, ExitCode.PARTIAL))
    with start_api(env[TOKEN_ENV]) as server, ExitStack() as started:
        point_source_at(config, API_SOURCE, server.url)
        quarantine = started.enter_context(
            start("etl-file-processing", "quarantine", "list", env=env)
        )
        pos = started.enter_context(
            start("etl-data-pipeline", "run", "--dataset", "pos_transactions", env=env)
        )
        since, until = API_WINDOWS
        ingest = ("etl-data-pipeline", "ingest", "--source", API_SOURCE, "--since", since)
        ingesting = started.enter_context(start(*ingest, "--until", until, "--json", env=env))
        print(finish(quarantine), end="", flush=True)
        step("4. data pipeline: pos_transactions validated/ -> curated/ Parquet -> database")
        print(finish(pos), end="", flush=True)
        step(f"5. API ingestion: {server.url} -> raw/api/ + landing/api/")
        ingested = parse_json(ingest, finish(ingesting))
    for window in ingested["windows"]:
        print(f"{window['unit']}: {_window_outcome(window)}")

    step("6. file processing: the API's chunks in landing/api/ -> validated/")
    run("etl-file-processing", "scan", "--dataset", "retail_store_footfall", env=env)

    step("7. data pipeline: retail_store_footfall -> curated/ (per store and day) -> database")
    run("etl-data-pipeline", "run", "--dataset", "retail_store_footfall", env=env)
    return ingested


def read_only_steps(env: dict[str, str]) -> dict[str, Any]:
    """Steps 8 to 10, which only read: the ledger's health first, alone (no run of this
    example is in progress then), then the inventory and the check side by side; each is
    shown in its place. The check's document."""
    page = (WORK / "status.html").resolve()
    with start("etl-observability", "database", env=env) as database:
        health = finish(database)
    check = ("etl-observability", "check", "--at", AS_OF, "--html", str(page), "--json")
    with (
        start("etl-observability", "inventory", env=env) as inventory,
        start(*check, env=env) as checking,
    ):
        step("8. store inventory")
        print(finish(inventory), end="", flush=True)
        step("9. ledger health")
        print(health, end="", flush=True)
        step(f"10. freshness and arrivals as of {AS_OF} -> {page}")
        return freshness_check(checking, page)


def _window_outcome(window: dict[str, Any]) -> str:
    if window["skipped"]:
        return f"skipped ({window['skipped']})"
    return f"{window['records']} records, {window['chunks']} chunk(s), {window['pages']} page(s)"


def freshness_check(check: Started, page: Path) -> dict[str, Any]:
    """The last step: freshness and arrivals as of :data:`AS_OF`, and the status page.

    ``etl-observability check`` exits 1 when something is late or missing: the example's
    expected verdict (2026-11-10 is missing).
    """
    document = parse_json(check.command, finish(check, ok=(ExitCode.OK, ExitCode.FAILED)))
    for dataset in document["datasets"]:
        print(f"{dataset['dataset']}: {dataset['level']}")
        for result in dataset["results"]:
            if result["level"] != "ok" or result["state"] in ("late", "early"):
                print(
                    f"  {result['monitor']} {result['subject']}: {result['level']}, "
                    f"{result['state']} ({result['observed']})"
                )
    print(f"status page: {page}")
    return document


def look_next(store: ObjectStore, env: dict[str, str]) -> list[tuple[str, str]]:
    """Where to look after the run, and commands to try (relative to the working directory)."""
    bin_dir = os.path.relpath(BIN) if not os.path.relpath(BIN).startswith("..") else str(BIN)
    config = os.path.relpath(env["ETL_CONFIG_DIR"])
    exports = f"export ETL_CONFIG_DIR={shlex.quote(config)}"
    if "ETL_STORAGE_URL" in os.environ:  # a store of yours (else the default, .etl/store)
        exports += f" ETL_STORAGE_URL={shlex.quote(env['ETL_STORAGE_URL'])}"
    # The database the run used: ETL_DATABASE_URL wins over DATABASE_URL, as in every lane
    # (a DATABASE_URL named beside it would point the commands at another database).
    variable = "ETL_DATABASE_URL" if env.get("ETL_DATABASE_URL") else "DATABASE_URL"
    database = env[variable]
    if redact_text(database) != database:  # a password in it: yours, never printed
        exports += f"   # with your {variable} ({redact_text(database)})"
    else:
        exports += f" {variable}={shlex.quote(database)}"
    return [
        ("status page", str((WORK / "status.html").resolve())),
        ("store", f"{store.url}  (landing/ raw/ validated/ quarantine/ curated/)"),
        (
            "quarantine",
            f"{bin_dir}/etl-file-processing quarantine list  (then: quarantine show KEY)",
        ),
        ("commands", exports),
        ("", f"{bin_dir}/etl-data-pipeline ingest status   # the API's high-water mark"),
        ("", f"{bin_dir}/etl-observability serve   # the live status page, http://127.0.0.1:9108/"),
        ("", "make run   # again: nothing changes, and it says so"),
    ]


if __name__ == "__main__":
    from etl_core.runtime import run_entry_point

    stop_on_sigterm()
    try:  # a bad exported setting (ETL_LOG_LEVEL=loud) said as the runtimes say it, exit 2
        run_entry_point(lambda: sys.exit(main()), name="make run")
    except KeyboardInterrupt:
        how = "terminated (SIGTERM)" if INTERRUPTION.terminated else "interrupted (Ctrl-C)"
        print(
            f"\n{how}: what finished is kept; `make run` again carries on",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(INTERRUPTION.exit_code()) from None  # as every runtime exits
