"""Benchmark: incremental storage metrics on moto's S3 server, and ``serve``'s scrape latency.

A child process runs moto's S3 server on 127.0.0.1 and fills a bucket straight through
moto's backend (fast): ``--objects`` objects over ``--days`` daily partitions of
``--datasets`` datasets in ``validated/``, up to today. Then, over HTTP with boto3:

* ``full listing``: a ``list_objects_v2`` paginator over the whole bucket, counting objects
  and bytes (what s3_exporter does on each scrape);
* ``first collection``: the platform's :class:`~observability.storage_index.StorageIndex`,
  a reconcile (every zone listed, in parallel);
* ``incremental``: the same index after ``--new`` new objects in today's partitions
  (the recent partitions and ``landing/`` listed), checked equal to a fresh reconcile.

Then ``etl-observability serve`` over a prefix of the bucket holding ``--scrape-objects``
objects laid out alike (its first cycle, a reconcile, then takes seconds, not minutes),
with contracts for the datasets, and
``--clients`` concurrent clients (threads in ``--client-processes`` processes) requesting
``/metrics`` and ``/api/status`` back to back for ``--seconds``:

* ``idle``: one cycle finished, the next an hour away;
* ``during cycles``: a cycle every second, each reconciling the whole bucket, so cycles
  run the whole time (the report says how many finished during the load);
* ``during cycles, local store``: the same objects and cycles on a local directory store,
  whose cycles finish within the window: scrapes across finished cycles.

A phase with cycles is valid only when at least 2 finished during the load (each cycle's
evaluation timestamp, read from the ``/metrics`` bodies, counts once); an invalid phase's
p99 is shown, not judged.

moto runs at ``nice`` 10, as ``serve``'s cycle process does: it stands in for S3, which
does not share the server's machine in production; ``serve`` runs in a session of its own
(its own scheduling group, as in a container). ``--compare-in-process`` adds the design
before the cycle process: the cycles in a thread of the server's process.

Targets (issue 14): the incremental collection at least 10x faster than the full listing;
p99 scrape latency under 50 ms.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any


def _load_harness() -> ModuleType:
    """bench/harness.py, loaded once by path as ``bench_harness`` (bench/ is off sys.path)."""
    if "bench_harness" not in sys.modules:
        path = Path(__file__).with_name("harness.py")
        spec = importlib.util.spec_from_file_location("bench_harness", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules["bench_harness"]


if TYPE_CHECKING:
    import harness
else:
    harness = _load_harness()

BUCKET = "etl-bench-observability"
SCRAPE_BASE = "scrape/"
"""The store ``serve`` watches: a prefix of the bucket with ``--scrape-objects`` objects."""
REGION = "us-east-1"
PATHS = ("/metrics", "/api/status")
MOTO_NICENESS = 10
STAMP = b"\netl_observability_evaluation_timestamp_seconds "
IN_PROCESS = "during cycles, in-process (before)"
LOCAL_CYCLES = "during cycles, local store"
IDLE_INTERVAL = "3600s"
CONTRACT = """
dataset = "{dataset}"
source = "{dataset}"
pattern = "{dataset}_{{date:%Y%m%d}}.csv"
[[columns]]
name = "id"
[freshness]
warn_after = "26h"
critical_after = "50h"
"""


def dataset_names(count: int) -> list[str]:
    return [f"sales{n}" for n in range(count)]


# ------------------------------------------------------------------ moto child


def moto_worker(argv: list[str]) -> int:
    """The S3 server child: serve, then fill the bucket on each JSON line of stdin."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    # moto stands in for S3, which runs on other machines: its CPU must not be the server's
    os.nice(MOTO_NICENESS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(BUCKET, REGION)
    print(json.dumps({"endpoint": f"http://{host}:{port}"}), flush=True)
    for line in sys.stdin:
        order = json.loads(line)
        base = order.pop("base", "")
        for key, data in layout_objects(**order):
            backend.put_object(BUCKET, base + key, data)
        print(json.dumps({"made": order["objects"]}), flush=True)
    server.stop()
    return 0


def layout_objects(
    *, objects: int, days: int, datasets: int, today: str, tag: str
) -> Iterator[tuple[str, bytes]]:
    """The bench's objects as keys and bytes: ``objects`` validated objects over ``days``
    daily partitions of ``datasets`` datasets up to ``today``, one landing file per dataset."""
    from etl_core.layout import landing_key, validated_key

    names = dataset_names(datasets)
    last = date.fromisoformat(today)
    dates = [last - timedelta(days=n) for n in range(days)]
    for n in range(objects):
        day = dates[(n // len(names)) % len(dates)]
        yield (
            validated_key(names[n % len(names)], day, f"{tag}-{n:07d}.csv"),
            b"x" * (100 + n % 900),
        )
    for name in names:
        yield landing_key(name, f"{name}_{last:%Y%m%d}.csv"), b"i"


class Moto:
    """The moto child: its endpoint, and orders to fill the bucket."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", "moto"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=harness.child_env(),
        )
        assert self.process.stdout is not None
        self.endpoint: str = json.loads(self.process.stdout.readline())["endpoint"]

    def fill(self, **order: Any) -> int:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(order) + "\n")
        self.process.stdin.flush()
        made: int = json.loads(self.process.stdout.readline())["made"]
        return made

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------- storage part


def aws_env() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def full_listing(endpoint: str) -> tuple[float, int]:
    """s3_exporter's way: every object of the bucket, paginated; seconds and objects."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    paginator = client.get_paginator("list_objects_v2")
    client.head_bucket(Bucket=BUCKET)  # connected, models loaded: only the listing is timed
    started = time.perf_counter()
    objects = size = 0
    for page in paginator.paginate(Bucket=BUCKET):
        for item in page.get("Contents", ()):
            objects += 1
            size += item["Size"]
    seconds = time.perf_counter() - started
    client.close()
    return seconds, objects


def storage_part(args: argparse.Namespace, moto: Moto, today: date) -> tuple[list[str], float]:
    """The listing table's rows, and the incremental speed-up over the full listing."""
    from etl_core.contracts import Column, Contract, Freshness
    from etl_core.storage import open_store
    from observability.storage_index import StorageIndex

    contracts = [
        Contract(
            dataset=name,
            source=name,
            pattern=name + "_{date:%Y%m%d}.csv",
            columns=(Column("id"),),
            freshness=Freshness(warn_after=timedelta(hours=26)),
        )
        for name in dataset_names(args.datasets)
    ]
    store = open_store(f"s3://{BUCKET}", endpoint_url=moto.endpoint, region=REGION)
    rows = []
    full_seconds, listed = min(full_listing(moto.endpoint) for _ in range(args.repeat))
    rows.append(f"| full listing (boto3 paginator) | {listed:,} | {full_seconds:.3f} |")
    index = StorageIndex(store, contracts, workers=args.list_workers)
    now = datetime.now(UTC)
    first = index.collect(now)
    rows.append(f"| first collection (reconcile) | {first.listed:,} | {first.seconds:.3f} |")
    moto.fill(objects=args.new, days=1, datasets=args.datasets, today=today.isoformat(), tag="new")
    incremental = min(
        (index.collect(now + timedelta(seconds=n + 1)) for n in range(args.repeat)),
        key=lambda s: s.seconds,
    )
    rows.append(
        f"| incremental after {args.new:,} new | {incremental.listed:,} | "
        f"{incremental.seconds:.3f} |"
    )
    full_after, listed_after = min(full_listing(moto.endpoint) for _ in range(args.repeat))
    rows.append(f"| full listing again | {listed_after:,} | {full_after:.3f} |")
    fresh = StorageIndex(store, contracts).collect(incremental.collected_at)
    same = dict(fresh.areas) == dict(incremental.areas)
    rows.append(f"| incremental equals a fresh reconcile | {'yes' if same else 'NO'} | |")
    store.close()
    return rows, full_after / incremental.seconds if same else 0.0


# ------------------------------------------------------------------ scrape part


def client_worker(argv: list[str]) -> int:
    """A load child: ``threads`` clients on ``port`` until ``seconds`` pass; latencies out."""
    port, threads, seconds = int(argv[0]), int(argv[1]), float(argv[2])
    latencies: dict[str, list[float]] = {path: [] for path in PATHS}
    stamps: set[str] = set()
    errors = [0]
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = offset
        mine: dict[str, list[float]] = {path: [] for path in PATHS}
        while time.monotonic() < deadline:
            path = PATHS[n % len(PATHS)]
            n += 1
            started = time.perf_counter()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            mine[path].append((time.perf_counter() - started) * 1000)
            if path == "/metrics" and response.status == 200:  # which cycle served it
                at = body.find(STAMP)
                if at >= 0:
                    with lock:
                        stamps.add(body[at + 1 : body.find(b"\n", at + 1)].decode())
        connection.close()
        with lock:
            for path in PATHS:
                latencies[path].extend(mine[path])

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps({"latencies": latencies, "cycles": sorted(stamps), "errors": errors[0]}))
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(port: int, process: subprocess.Popen[bytes], seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"serve was not ready within {seconds:.0f}s")


def load(args: argparse.Namespace, port: int) -> dict[str, Any]:
    """Run the clients; every latency per path, the cycles seen, the errors."""
    processes = max(1, min(args.client_processes, args.clients))
    shares = [args.clients // processes + (n < args.clients % processes) for n in range(processes)]
    worker = [sys.executable, __file__, "--worker", "client", str(port)]
    children = [
        subprocess.Popen(
            [*worker, str(share), str(args.seconds)],
            stdout=subprocess.PIPE,
            env=harness.child_env(),
        )
        for share in shares
    ]
    merged: dict[str, Any] = {
        "latencies": {path: [] for path in PATHS},
        "cycles": set(),
        "errors": 0,
    }
    for child in children:
        out, _ = child.communicate(timeout=args.seconds + 120)
        answer = json.loads(out)
        for path in PATHS:
            merged["latencies"][path].extend(answer["latencies"][path])
        merged["cycles"].update(answer["cycles"])
        merged["errors"] += answer["errors"]
    return merged


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Phase:
    """One scrape phase: ``serve``'s cycle interval, reconcile interval and store."""

    name: str
    interval: str
    reconcile: str
    local: bool = False
    """On a local directory store (its cycles finish within the window), not on moto."""

    @property
    def cycling(self) -> bool:
        """Whether cycles run during the load (the phase is valid once 2 have finished)."""
        return self.interval != IDLE_INTERVAL

    @property
    def judged(self) -> bool:
        """Whether its p99 counts against the target (the old design is shown only)."""
        return self.name != IN_PROCESS


PHASES = (
    Phase("idle", IDLE_INTERVAL, "1h"),
    Phase("during cycles", "1s", "1s"),
    Phase(LOCAL_CYCLES, "1s", "1s", local=True),
)


def scrape_part(
    args: argparse.Namespace, moto: Moto, workdir: Path, today: date
) -> tuple[list[str], float, int]:
    """The latency table's rows, the worst judged p99 (ms) and the fewest cycles finished
    during a local store's phase."""
    order = {
        "objects": args.scrape_objects, "days": args.days, "datasets": args.datasets,
        "today": today.isoformat(), "tag": "scrape",
    }  # fmt: skip
    moto.fill(**order, base=SCRAPE_BASE)
    local = fill_local(workdir / "store", order)
    config = workdir / "config"
    (config / "datasets").mkdir(parents=True, exist_ok=True)
    for name in dataset_names(args.datasets):
        (config / "datasets" / f"{name}.toml").write_text(CONTRACT.format(dataset=name))
    rows = []
    worst = 0.0
    finished = 0
    phases = list(PHASES)
    if args.compare_in_process:
        phases.append(Phase(IN_PROCESS, "1s", "1s"))
    for round_, phase in ((r, p) for r in range(args.rounds) for p in phases):  # interleaved
        result = scrape(args, phase, moto, config, local, workdir)
        cycles = max(0, len(result["cycles"]) - 1)
        valid = not phase.cycling or cycles >= 2
        if phase.local:
            finished = cycles if round_ == 0 else min(finished, cycles)
        name = phase.name if args.rounds == 1 else f"{phase.name} #{round_ + 1}"
        for path in PATHS:
            values = result["latencies"][path]
            p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
            if phase.judged and valid:
                worst = max(worst, p99)
            rows.append(
                f"| {name} | {path} | {len(values):,} | {p50:.1f} | {p99:.1f} | "
                f"{statistics.fmean(values) if values else float('nan'):.1f} |"
            )
        verdict = "" if valid else " (fewer than 2: the phase is not valid)"
        rows.append(
            f"| {name} | cycles finished during the load: {cycles}{verdict}, "
            f"errors: {result['errors']} | | | | |"
        )
    return rows, worst, finished


def fill_local(root: Path, order: dict[str, Any]) -> Path:
    """A local directory store holding the objects of ``order``, as moto's prefix does."""
    from etl_core.storage import open_store

    store = open_store(root, fsync=False)
    for key, data in layout_objects(**order):
        store.write_bytes(key, data)
    store.close()
    return root


def scrape(
    args: argparse.Namespace, phase: Phase, moto: Moto, config: Path, local: Path, workdir: Path
) -> dict[str, Any]:
    """Start ``serve`` as ``phase`` says, load it, stop it; what :func:`load` measured."""
    port = free_port()
    store = {"ETL_STORAGE_URL": str(local)}
    if not phase.local:
        store = {
            "ETL_STORAGE_URL": f"s3://{BUCKET}/{SCRAPE_BASE.rstrip('/')}",
            "ETL_S3_ENDPOINT_URL": moto.endpoint,
            "ETL_S3_REGION": REGION,
        }
    env = {
        **harness.child_env(),
        **aws_env(),
        **store,
        "ETL_CONFIG_DIR": str(config),
        "ETL_LOG_FORMAT": "json",
        "ETL_LOG_LEVEL": "WARNING",
        "ETL_STORAGE_RECONCILE_INTERVAL": phase.reconcile,
        "ETL_EVALUATION_INTERVAL": phase.interval,
    }
    log = (workdir / f"serve-{phase.name.replace(' ', '-').replace(',', '')}.log").open("wb")
    command = [str(harness.BIN / "etl-observability"), "serve", "--port", str(port)]
    if phase.name == IN_PROCESS:
        command = [sys.executable, __file__, "--worker", "inprocess", str(port)]
    serve = subprocess.Popen(  # its own session: its own scheduling group, as a container
        command,
        start_new_session=True,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        wait_ready(port, serve)
        return load(args, port)
    finally:
        serve.terminate()
        serve.wait(timeout=60)
        log.close()


def inprocess_worker(argv: list[str]) -> int:
    """``serve`` as it was before the cycle process: the cycles in a thread of the server's
    process (for comparison only); settings from the environment, port from ``argv``."""
    import uvicorn

    from etl_core.runtime import open_session
    from observability.cli import _status_service
    from observability.service import build_app
    from observability.settings import ObservabilitySettings

    session = open_session("observability", ObservabilitySettings)
    service = _status_service(session)  # its start() runs the cycles in a thread
    uvicorn.run(build_app(service), host="127.0.0.1", port=int(argv[0]), log_config=None)
    return 0


# ------------------------------------------------------------------------- main


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py observability", description=__doc__)
    parser.add_argument(
        "--objects", type=int, default=100_000, help="objects (default: %(default)s)"
    )
    parser.add_argument(
        "--days", type=int, default=30, help="daily partitions (default: %(default)s)"
    )
    parser.add_argument("--datasets", type=int, default=5, help="datasets (default: %(default)s)")
    parser.add_argument(
        "--scrape-objects",
        type=int,
        default=10_000,
        help="objects of the store serve watches while scraped (default: %(default)s)",
    )
    parser.add_argument("--new", type=int, default=1_000, help="new objects (default: %(default)s)")
    parser.add_argument("--list-workers", type=int, default=8, help="listings at once (default: 8)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default: 50)")
    parser.add_argument(
        "--client-processes", type=int, default=5, help="processes the clients run in (default: 5)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="load per phase (default: 20)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="listing runs, fastest kept (default: 3)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="scrape phases run N times, interleaved (default: 1)"
    )
    parser.add_argument("--no-scrape", action="store_true", help="measure the listings only")
    parser.add_argument("--no-listing", action="store_true", help="measure the scrapes only")
    parser.add_argument(
        "--compare-in-process",
        action="store_true",
        help="also scrape serve as it was: cycles in a thread of the server's process",
    )
    parser.add_argument("--workdir", type=Path, help="scratch directory (kept)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    counts = (args.objects, args.days, args.datasets, args.new, args.clients, args.repeat)
    if min(*counts, args.rounds) < 1:
        parser.error("every count must be positive")
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        workers = {"moto": moto_worker, "client": client_worker, "inprocess": inprocess_worker}
        return workers[argv[1]](argv[2:])
    args = parse(argv)
    if harness.missing_entry_point("etl-observability"):
        return 1
    os.environ.update(aws_env())
    today = datetime.now(UTC).date()
    print(
        f"observability benchmark: {args.objects:,} objects in {args.days} daily partitions of "
        f"{args.datasets} datasets on moto's S3 server, {os.cpu_count()} CPUs",
        flush=True,
    )
    verdicts = harness.Verdicts()
    load_before = os.getloadavg()
    with harness.workdir(args.workdir) as workdir:
        moto = Moto()
        try:
            if not args.no_listing:
                print("  filling the bucket ...", end=" ", flush=True)
                started = time.perf_counter()
                moto.fill(
                    objects=args.objects, days=args.days, datasets=args.datasets,
                    today=today.isoformat(), tag="old",
                )  # fmt: skip
                print(f"{time.perf_counter() - started:.1f} s", flush=True)
            table: list[str] = []
            if not args.no_listing:
                listing, speedup = storage_part(args, moto, today)
                table += ["| storage metrics | objects listed | seconds |", "|---|---:|---:|"]
                table += listing
                verdicts.lines.append(
                    f"  {verdicts(speedup >= 10)} incremental at least 10x faster than the full "
                    f"listing: {speedup:.1f}x"
                )
            if not args.no_scrape:
                latency, worst, finished = scrape_part(args, moto, workdir, today)
                table += [
                    "",
                    f"{args.clients} clients, {args.seconds:g} s per phase",
                    "| phase | path | requests | p50 ms | p99 ms | mean ms |",
                    "|---|---|---:|---:|---:|---:|",
                    *latency,
                ]
                verdicts.lines.append(
                    f"  {verdicts(finished >= 2)} cycles finished while scraped (local store): "
                    f"{finished}, at least 2"
                )
                verdicts.lines.append(
                    f"  {verdicts(worst < 50)} p99 scrape latency under 50 ms: worst {worst:.1f} ms"
                )
                loads = (load_before, os.getloadavg())
                said = [" ".join(f"{n:.1f}" for n in load) for load in loads]
                table.append(f"load average (1, 5, 15 min) before: {said[0]}, after: {said[1]}")
        finally:
            moto.close()
    harness.print_report(table, [], verdicts.lines)
    return 1 if args.strict and not verdicts.all_met else 0


if __name__ == "__main__":
    # run directly (the workers): bench/ must not shadow the observability package
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    sys.exit(main(sys.argv[1:]))
