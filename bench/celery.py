"""Benchmark: the work units on Celery -- the file lane, a backfill, and a task's round trip.

* File lane: ``--drops`` small vendor drops (the retail example's ``pos`` files, one per
  day) processed by ``etl-file-processing scan``: with the local executor (threads of
  one process), then with ``--executor celery`` and one ``worker`` of 1, 2 and 4
  processes on Redis. Drops per second, and the speed-up over one worker process.
* Backfill: ``--partitions`` validated partitions rebuilt by ``etl-data-pipeline
  backfill --no-load`` with 1, 2 and 4 partitions at once, on the local executor (the
  pipeline's Celery path is another branch's work; this bench runs it when there).
* Round trip: an empty unit (``bench.run_unit``, registered by this script's own worker
  exactly as a lane registers its task) sent and awaited one at a time through
  :class:`~etl_core.work.celery.CeleryExecutor`, per broker: milliseconds per unit; and
  a window of 64 at once: units per second.

Every child is a real process (the platform's console scripts, a real worker); the
machine's Redis and RabbitMQ are used (``ETL_TEST_REDIS_URL``, ``ETL_TEST_RABBITMQ_URL``),
each run with a queue prefix of its own, deleted afterwards. A broker that does not
answer is reported and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit


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

# This file is named like the package it measures: never let bench/ shadow `celery`.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != harness.HERE]

BROKERS = {
    "redis": os.environ.get("ETL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "rabbitmq": os.environ.get("ETL_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
FIRST_DAY = date(2026, 1, 1)
NOOP_LANE = "bench"
TARGET_SPEEDUP, TARGET_WITHIN, TARGET_ROUND_TRIP_MS = 1.7, 0.10, 10.0
READY_TIMEOUT = 120.0


# --------------------------------------------------------------------------- brokers


def broker_up(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 2):
            return True
    except OSError:
        return False


def prefix() -> str:
    return f"bench{uuid.uuid4().hex[:8]}."


def delete_queues(url: str, queue_prefix: str, lanes: tuple[str, ...]) -> None:
    from kombu import Connection

    with Connection(url) as connection:
        for lane in lanes:
            for name in (f"{queue_prefix}{lane}", f"{queue_prefix}{lane}.dead"):
                try:
                    connection.default_channel.queue_delete(name)
                except Exception:  # already gone, or never made
                    continue


@contextmanager
def worker(command: list[str], env: dict[str, str], log: Path) -> Iterator[Any]:
    """A worker process, ready, stopped warm (SIGTERM) afterwards."""
    from etl_core.testing.processes import BackgroundProcess

    with BackgroundProcess(command, env=env, log=log) as started:
        started.wait_for(" ready.", timeout=READY_TIMEOUT)
        try:
            yield started
        finally:
            started.signal(signal.SIGTERM)
            with contextlib.suppress(Exception):  # a stuck one is killed with its group
                started.wait(timeout=60)


# --------------------------------------------------------------------------- file lane


def lay_out_drops(store: Path, drops: int, rows: int) -> None:
    """A fresh store with ``drops`` pos files, one a day from FIRST_DAY, and the reference."""
    from etl_core.layout import landing_key

    shutil.rmtree(store, ignore_errors=True)
    make = harness.generator()
    for n in range(drops):
        day = FIRST_DAY + timedelta(days=n)
        path = store / landing_key("pos", f"pos_{day:%Y%m%d}.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make.day_csv(day, rows))
    make.write_reference(store / "reference")


def lane_env(base: Path, **extra: str) -> dict[str, str]:
    (base / "scratch").mkdir(parents=True, exist_ok=True)
    return harness.child_env(
        without=("DATABASE_URL",),
        ETL_STORAGE_URL=(base / "store").as_uri(),
        ETL_CONFIG_DIR=str(harness.CONFIG_DIR),
        ETL_WORK_DIR=str(base / "scratch"),
        ETL_LOG_FORMAT="json",
        ETL_LOG_LEVEL="WARNING",
        **extra,
    )


def scan(base: Path, name: str, env: dict[str, str], *options: str) -> tuple[float | None, str]:
    """One timed ``scan --json``: seconds (None when it failed) and what it did."""
    command = [str(harness.BIN / "etl-file-processing"), "scan", "--json", *options]
    run = harness.run_child(command, name=name, logs=base / "logs", cwd=base, env=env)
    answer = run.json_answer()
    if run.returncode not in (0, 3) or answer is None:
        return None, f"failed (exit {run.returncode}): {run.tail(3)}"
    counts = answer["counts"]
    return run.seconds, ", ".join(f"{n} {k}" for k, n in counts.items() if n)


def file_lane(args: argparse.Namespace, work: Path) -> tuple[list[str], dict[str, float]]:
    rates: dict[str, float] = {}
    table = [
        f"{'file lane: ' + str(args.drops) + ' drops':<38} {'seconds':>8} {'drops/s':>8}  done"
    ]

    def row(label: str, seconds: float | None, done: str) -> None:
        if seconds is not None:
            rates[label] = args.drops / seconds
        rate = f"{args.drops / seconds:>8.1f}" if seconds else f"{'-':>8}"
        table.append(f"{label:<38} {seconds or 0:>8.2f} {rate}  {done}")

    for threads in sorted({1, max(args.workers)}):
        base = work / f"local-{threads}"
        lay_out_drops(base / "store", args.drops, args.rows)
        label = f"local executor, {threads} thread(s)"
        row(label, *scan(base, "scan", lane_env(base), "--concurrency", str(threads)))
    url = BROKERS["redis"]
    if not broker_up(url):
        table.append(f"celery: Redis at {url} does not answer; skipped")
        return table, rates
    for processes in args.workers:
        base = work / f"celery-{processes}"
        lay_out_drops(base / "store", args.drops, args.rows)
        queue_prefix = prefix()
        env = lane_env(base, ETL_BROKER_URL=url, ETL_QUEUE_PREFIX=queue_prefix)
        command = [str(harness.BIN / "etl-file-processing"), "worker",
                   "--concurrency", str(processes)]  # fmt: skip
        try:
            with worker(command, {**env, "ETL_LOG_LEVEL": "INFO"}, base / "worker.log"):
                found = scan(base, "scan", env, "--executor", "celery")
        finally:
            delete_queues(url, queue_prefix, ("file_processing",))
        row(f"celery (Redis), {processes} worker process(es)", *found)
    return table, rates


# --------------------------------------------------------------------------- backfill


def lay_out_partitions(store: Path, partitions: int, rows: int) -> None:
    """A fresh store with ``partitions`` validated days of pos_transactions, manifests and all."""
    from etl_core.layout import validated_key
    from etl_core.storage import open_store
    from etl_core.testing.deliveries import record_delivery

    shutil.rmtree(store, ignore_errors=True)
    make = harness.generator()
    store.mkdir(parents=True)
    make.write_reference(store / "reference")
    with open_store(store) as opened:
        for n in range(partitions):
            day = FIRST_DAY + timedelta(days=n)
            name = f"pos_{day:%Y%m%d}.csv"
            (store / validated_key(harness.DATASET, day, name)).parent.mkdir(parents=True)
            (store / validated_key(harness.DATASET, day, name)).write_bytes(make.day_csv(day, rows))
            record_delivery(opened, harness.DATASET, day, [name], rows=rows)


def backfill(args: argparse.Namespace, work: Path) -> tuple[list[str], dict[int, float]]:
    seconds_by: dict[int, float] = {}
    header = f"backfill: {args.partitions} partitions x {args.partition_rows:,} rows"
    table = [f"{header:<38} {'seconds':>8} {'parts/s':>8}  done"]
    last = FIRST_DAY + timedelta(days=args.partitions - 1)
    for concurrency in sorted({1, *args.workers}):
        base = work / f"backfill-{concurrency}"
        lay_out_partitions(base / "store", args.partitions, args.partition_rows)
        command = [str(harness.BIN / "etl-data-pipeline"), "backfill", "--dataset",
                   harness.DATASET, "--from", FIRST_DAY.isoformat(), "--to", last.isoformat(),
                   "--concurrency", str(concurrency), "--no-load"]  # fmt: skip
        env = lane_env(base)
        run = harness.run_child(command, name="backfill", logs=base / "logs", cwd=base, env=env)
        label = f"local executor, {concurrency} at once"
        if run.returncode:
            table.append(f"{label:<38} {'-':>8} {'-':>8}  failed: {run.tail(2)}")
            continue
        seconds_by[concurrency] = run.seconds
        done = run.stdout.read_text().strip().splitlines()[-1:]
        table.append(f"{label:<38} {run.seconds:>8.2f} {args.partitions / run.seconds:>8.1f}  "
                     f"{done[0] if done else ''}")  # fmt: skip
    return table, seconds_by


# --------------------------------------------------------------------------- round trip


def noop_worker(url: str, queue_prefix: str) -> int:
    """This script's ``--noop-worker`` child: a worker whose units do nothing."""
    from etl_core.config import URL
    from etl_core.runtime import RuntimeSettings
    from etl_core.work.celery import (
        celery_app,
        lane_queues,
        register_lane_task,
        run_worker,
        task_policy,
    )

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("celery.apps.worker").setLevel(logging.INFO)  # its " ready." line only
    settings = RuntimeSettings(broker_url=URL(url), queue_prefix=queue_prefix)
    app = celery_app(settings, NOOP_LANE)
    register_lane_task(
        app, NOOP_LANE, lambda opened: (lambda unit: None), encode=lambda value: value,
        policy=task_policy(settings), dead_queue=lane_queues(settings, NOOP_LANE).dead,
    )  # fmt: skip
    return run_worker(app, settings, NOOP_LANE, concurrency=1)


def round_trips(args: argparse.Namespace, work: Path) -> tuple[list[str], dict[str, float]]:
    from etl_core.config import URL
    from etl_core.runtime import RuntimeSettings
    from etl_core.work import WorkUnit
    from etl_core.work.celery import CeleryExecutor, celery_app

    per_task: dict[str, float] = {}
    table = [f"{'empty unit, ' + str(args.round_trips) + ' sent':<38} {'ms/unit':>8} "
             f"{'units/s':>8}  how"]  # fmt: skip
    for kind in args.brokers:
        url = BROKERS[kind]
        if not broker_up(url):
            table.append(f"{kind}: nothing answers at {urlsplit(url).netloc}; skipped")
            continue
        queue_prefix = prefix()
        command = [sys.executable, __file__, "--noop-worker", url, queue_prefix]
        settings = RuntimeSettings(broker_url=URL(url), queue_prefix=queue_prefix)
        app = celery_app(settings, NOOP_LANE)
        try:
            with worker(command, harness.child_env(), work / f"noop-{kind}.log"):
                for window, how in ((1, "one at a time: the round trip"), (64, "64 in flight")):
                    executor = CeleryExecutor(app, window=window)
                    units = [WorkUnit(NOOP_LANE, "noop", f"{window}-{n}")
                             for n in range(args.round_trips)]  # fmt: skip
                    list(executor.run(lambda unit: None, units[:10]))  # warm: connections made
                    start = time.perf_counter()
                    results = list(executor.run(lambda unit: None, units))
                    seconds = time.perf_counter() - start
                    failed = sum(1 for r in results if not r.ok)
                    ms = seconds / len(units) * 1000
                    if window == 1:
                        per_task[kind] = ms
                    table.append(f"{kind + ', window ' + str(window):<38} {ms:>8.2f} "
                                 f"{len(units) / seconds:>8.0f}  {how}"
                                 + (f"; {failed} FAILED" if failed else ""))  # fmt: skip
        finally:
            app.close()
            delete_queues(url, queue_prefix, (NOOP_LANE,))
    return table, per_task


# --------------------------------------------------------------------------- main


def targets(lane: dict[str, float], round_trip: dict[str, float]) -> tuple[list[str], bool]:
    lines, missed = [], False
    one = lane.get("celery (Redis), 1 worker process(es)")
    two = lane.get("celery (Redis), 2 worker process(es)")
    local = lane.get("local executor, 1 thread(s)")
    verdict = harness.Verdicts()
    if one and two:
        met = two / one >= TARGET_SPEEDUP
        missed |= not met
        lines.append(f"2 workers >= {TARGET_SPEEDUP}x the throughput of 1: "
                     f"{two / one:.2f}x {verdict(met)}")  # fmt: skip
    if one and local:
        met = one >= local * (1 - TARGET_WITHIN)
        missed |= not met
        lines.append(f"celery with 1 worker within {TARGET_WITHIN:.0%} of the local executor: "
                     f"{one / local:.2f}x {verdict(met)}")  # fmt: skip
    if "redis" in round_trip:
        met = round_trip["redis"] < TARGET_ROUND_TRIP_MS
        missed |= not met
        lines.append(f"empty-unit round trip on Redis < {TARGET_ROUND_TRIP_MS:.0f} ms: "
                     f"{round_trip['redis']:.2f} ms {verdict(met)}")  # fmt: skip
    return lines, missed


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py celery",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--drops", type=int, default=200, help="file lane drops (%(default)s)")
    parser.add_argument("--rows", type=int, default=50, help="rows per drop (%(default)s)")
    parser.add_argument("--partitions", type=int, default=30, help="backfill (%(default)s)")
    parser.add_argument("--partition-rows", type=int, default=20_000, help="(%(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], metavar="N",
                        help="worker processes (%(default)s)")  # fmt: skip
    parser.add_argument("--round-trips", type=int, default=300, help="empty units (%(default)s)")
    parser.add_argument("--brokers", nargs="+", choices=sorted(BROKERS), default=sorted(BROKERS))
    parts = ["files", "backfill", "round-trip"]
    parser.add_argument("--only", nargs="+", choices=parts, default=parts, help="parts to run")
    parser.add_argument("--workdir", type=Path, help="scratch directory, kept afterwards")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if min(args.drops, args.rows, args.partitions, args.round_trips, *args.workers) < 1:
        parser.error("sizes and worker counts must be positive")
    args.workers = sorted(set(args.workers))
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["--noop-worker"]:
        return noop_worker(argv[1], argv[2])
    args = parse_args(argv)
    if harness.missing_entry_point("etl-file-processing"):
        return 1
    print(f"celery benchmark: {os.cpu_count()} CPUs, workers {args.workers}, "
          f"brokers {args.brokers}, workdir {args.workdir}")  # fmt: skip
    harness.print_settings()
    table: list[str] = []
    lane: dict[str, float] = {}
    round_trip: dict[str, float] = {}
    with harness.workdir(args.workdir) as work:
        if "files" in args.only:
            rows, lane = file_lane(args, work)
            table += [*rows, ""]
        if "backfill" in args.only:
            rows, _ = backfill(args, work)
            table += [*rows, ""]
        if "round-trip" in args.only:
            rows, round_trip = round_trips(args, work)
            table += rows
    lines, missed = targets(lane, round_trip)
    harness.print_report(table, [], lines)
    failed = any(" failed (exit" in line or "failed: " in line or "FAILED" in line
                 for line in table)  # fmt: skip
    print(json.dumps({"drops_per_second": lane, "round_trip_ms": round_trip}))
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
