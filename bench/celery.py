"""Benchmark: the work units on Celery -- the file lane, a backfill, and a task's round trip.

* File lane: ``--drops`` small vendor drops (the retail example's ``pos`` files, one per
  day) processed by ``etl-file-processing scan``: with the local executor (threads of
  one process), then with ``--executor celery`` and one ``worker`` of 1, 2 and 4
  processes on Redis. Drops per second, and the speed-up over one worker process.
* Backfill: ``--partitions`` validated partitions rebuilt by ``etl-data-pipeline
  backfill --no-load``: on the local executor with 1, 2 and 4 partitions at once, and
  with ``--executor celery`` and a data_pipeline ``worker`` of 1, 2 and 4 processes.
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
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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
BROKER_NAMES = {"redis": "Redis", "rabbitmq": "RabbitMQ"}
WARM_LINE = "warm: the lane's context built"  # a worker process's, once it can take units
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
def worker(command: list[str], env: dict[str, str], log: Path, *, warm: int = 0) -> Iterator[Any]:
    """A worker process, ready (and its ``warm`` processes' lane context built), stopped
    warm (SIGTERM) afterwards."""
    from etl_core.testing.processes import BackgroundProcess

    with BackgroundProcess(command, env=env, log=log) as started:
        started.wait_for(" ready.", timeout=READY_TIMEOUT)
        if warm:
            started.wait_for(WARM_LINE, timeout=READY_TIMEOUT, count=warm)
        try:
            yield started
        finally:
            started.signal(signal.SIGTERM)
            with contextlib.suppress(Exception):  # a stuck one is killed with its group
                started.wait(timeout=60)


# --------------------------------------------------------------------------- timing


def child_env(*, without: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """A child's environment, bytecode caching allowed (as the ingest and startup
    benchmarks do): the editable packages are not compiled at install, and a shell with
    ``PYTHONDONTWRITEBYTECODE`` would have every command and worker compile them again
    (about 0.15 CPU s a start, on every line's serial part; not a cost of the platform,
    whose wheels pip compiles at install)."""
    return harness.child_env(without=("PYTHONDONTWRITEBYTECODE", *without), **extra)


Timed = tuple[float | None, float, str, dict[str, float]]
"""One timed run: wall seconds (None when it failed), CPU seconds of every process of the
platform it took (the command, and the worker's processes while it ran), what it did, and
those CPU seconds by process (:data:`SPLIT`), the broker's server's beside them."""

SPLIT = ("command", "worker parent", "worker children", "redis-server")
"""Where a run's CPU went: the timed command (its threads and waited children), the
worker's prefork parent (messages in, hand-over, acks), its processes that run the units,
and the Redis server (broker and result backend; not in the run's CPU total)."""


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) so far of process ``pid`` and of its children (a
    worker's prefork processes), from /proc; 0 where /proc cannot tell."""
    tick = os.sysconf("SC_CLK_TCK")
    parent = children = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if stat.parent.name == str(pid):
            parent += int(fields[11]) + int(fields[12])
        elif fields[1] == str(pid):
            children += int(fields[11]) + int(fields[12])
    return parent / tick, children / tick


def server_cpu(name: str = "redis-server") -> float:
    """CPU seconds so far of the processes named ``name`` (the machine's Redis), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.find("(") + 1 : text.rfind(")")] == name:
            fields = text.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


@dataclass
class Line:
    """One line of a table: how to run it once, and every run's outcome."""

    label: str
    run: Callable[[int], Timed]  # the round's number -> one run
    seconds: list[float] = field(default_factory=list)
    by_round: dict[int, float] = field(default_factory=dict)  # the round's number -> seconds
    cpu: list[float] = field(default_factory=list)
    splits: list[dict[str, float]] = field(default_factory=list)
    done: str = ""
    failed: str = ""

    def best(self) -> float | None:
        return None if self.failed or not self.seconds else min(self.seconds)


def interleave(lines: list[Line], repeat: int) -> None:
    """Run every line once per round, round after round (a busy minute hits them alike),
    the lines in their order in even rounds and in the reverse order in odd ones: no line
    always runs first, or always right after the same other line."""
    for round_ in range(repeat):
        for line in round_order(lines, round_):
            if line.failed:
                continue
            print(f"  round {round_ + 1}/{repeat}: {line.label} ...", end=" ", flush=True)
            seconds, cpu, done, split = line.run(round_)
            if seconds is None:
                line.failed = done
                print("FAILED", flush=True)
                continue
            line.seconds.append(seconds)
            line.by_round[round_] = seconds
            line.cpu.append(cpu)
            line.splits.append(split)
            line.done = done
            parts = ", ".join(f"{name} {split[name]:.2f}" for name in (*SPLIT, *MARKS)
                              if name in split)  # fmt: skip
            print(f"{seconds:.2f} s, {cpu:.2f} s CPU ({parts}; {os.getloadavg()[0]:.1f} load)",
                  flush=True)  # fmt: skip


def round_order(lines: list[Line], round_: int) -> list[Line]:
    """The order of ``lines`` in round ``round_`` (from 0): as given, reversed in odd rounds."""
    return list(lines) if round_ % 2 == 0 else list(reversed(lines))


def same_rounds(base: dict[int, float], other: dict[int, float]) -> list[float]:
    """``other``'s throughput over ``base``'s (``base``'s seconds over ``other``'s) in each
    round both ran, in round order. The two runs of a round are minutes apart, so a busy
    minute of the shared machine hits both; the ratio of each line's fastest run compares
    runs of whichever rounds were quietest for each."""
    return [base[n] / other[n] for n in sorted(base.keys() & other.keys())]


def render_table(header: str, unit: str, count: int, lines: list[Line]) -> list[str]:
    """``lines`` as rows: the fastest run, its rate, the spread of every run, the least CPU
    of a run per item, what it did."""
    rows = [f"{header:<40} {'seconds':>8} {unit:>8} {'spread (s)':>13} {'CPU ms/item':>11}  done"]
    for line in lines:
        best = line.best()
        if best is None:
            rows.append(f"{line.label:<40} {'-':>8} {'-':>8} {'':>13} {'':>11}  "
                        f"failed: {line.failed}")  # fmt: skip
            continue
        spread = f"{min(line.seconds):.2f}-{max(line.seconds):.2f}"
        cpu = min(line.cpu) / count * 1000
        rows.append(f"{line.label:<40} {best:>8.2f} {count / best:>8.2f} {spread:>13} "
                    f"{cpu:>11.1f}  {line.done}")  # fmt: skip
    return [*rows, "", *render_split(count, lines)]


def render_split(count: int, lines: list[Line]) -> list[str]:
    """CPU ms per item by process (:data:`SPLIT`), the mean of every run of each line."""
    rows = [f"{'CPU ms/item by process (mean of runs)':<40} "
            + " ".join(f"{name:>15}" for name in SPLIT)
            + "".join(f" {name + UNITS.get(name, ' (s)'):>19}" for name in MARKS)]  # fmt: skip
    for line in lines:
        if line.failed or not line.splits:
            continue
        means = [
            sum(split.get(name, 0.0) for split in line.splits) / len(line.splits) / count * 1000
            for name in SPLIT
        ]
        marked = [[split[name] for split in line.splits if name in split] for name in MARKS]
        rows.append(f"{line.label:<40} " + " ".join(f"{mean:>15.1f}" for mean in means)
                    + "".join(f" {sum(m) / len(m):>19.2f}" if m else f" {'-':>19}"
                              for m in marked))  # fmt: skip
    return rows


def rates(count: int, lines: list[Line]) -> dict[str, float]:
    return {line.label: count / best for line in lines if (best := line.best())}


Measured = tuple[list[str], dict[str, float], dict[str, dict[int, float]]]
"""A part's table, every line's rate (of its fastest run) and its seconds by round."""


def rounds(lines: list[Line]) -> dict[str, dict[int, float]]:
    """Every line's seconds by round, of the lines that did not fail."""
    return {line.label: line.by_round for line in lines if line.best()}


def with_worker_cpu(started: Any, timed: Callable[..., Timed], *args: Any) -> Timed:
    """``timed(*args)``, its CPU seconds with those the worker (``started``) spent meanwhile;
    in its split, also when the worker received the run's first unit and how long the run
    went on after its last unit ended (:data:`MARKS`)."""
    parent, children = tree_cpu(started.pid)
    server = server_cpu()
    start = time.time()
    seconds, cpu, done, split = timed(*args)
    end = time.time()
    parent_after, children_after = tree_cpu(started.pid)
    split = {**split, "worker parent": parent_after - parent,
             "worker children": children_after - children,
             "redis-server": server_cpu() - server}  # fmt: skip
    split.update(unit_marks(started.log_path, start, end))
    return seconds, cpu + parent_after - parent + children_after - children, done, split


MARKS = ("first unit in", "after last unit", "units running")
"""Seconds from the command's start to the worker's first ``received`` line of the run
(the command's serial part: start-up, contracts, plan, broker), and from the worker's last
``succeeded`` line to the command's exit (the last result taken, the summary, the exit);
and how many units ran at once on average from the first ``received`` to the last
``succeeded`` (their run times, Celery's ``succeeded in``, summed over that span: a worker
of N processes that never waits between units nor on anything else in them reaches N)."""
UNITS = {"units running": ""}


def unit_marks(log: Path, start: float, end: float) -> dict[str, float]:
    """:data:`MARKS` of one run, from the worker's JSON log lines (Celery's own, per unit:
    ``received`` by the prefork parent, ``succeeded`` by the process that ran it)."""
    received: list[float] = []
    ended: list[float] = []
    running = 0.0
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
            at = datetime.fromisoformat(record["ts"]).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        if not start <= at <= end:
            continue
        if record.get("logger") == "celery.worker.strategy":
            received.append(at)
        elif record.get("logger") == "celery.app.trace" and " succeeded in " in record["event"]:
            ended.append(at)
            running += float((record.get("data") or {}).get("runtime") or 0.0)
    if not received or not ended:
        return {}
    span = max(ended) - min(received)
    return {"first unit in": min(received) - start, "after last unit": end - max(ended),
            "units running": running / span if span > 0 else 0.0}  # fmt: skip


def with_server_cpu(timed: Callable[..., Timed], *args: Any) -> Timed:
    """``timed(*args)``, with what the Redis server spent meanwhile in its split."""
    server = server_cpu()
    seconds, cpu, done, split = timed(*args)
    return seconds, cpu, done, {**split, "redis-server": server_cpu() - server}


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
    """Every process of one line: its store and scratch, JSON logs at INFO (as a worker
    logs, so the local executor and the workers write the same lines), bytecode cached
    (:func:`child_env`)."""
    (base / "scratch").mkdir(parents=True, exist_ok=True)
    return child_env(
        without=("DATABASE_URL",),
        ETL_STORAGE_URL=(base / "store").as_uri(),
        ETL_CONFIG_DIR=str(harness.CONFIG_DIR),
        ETL_WORK_DIR=str(base / "scratch"),
        ETL_LOG_FORMAT="json",
        ETL_LOG_LEVEL="INFO",
        **extra,
    )


def scan(base: Path, env: dict[str, str], *options: str) -> Timed:
    """One timed ``scan --json``: seconds (None when it failed) and what it did."""
    command = [str(harness.BIN / "etl-file-processing"), "scan", "--json", *options]
    run = harness.run_child(command, name="scan", logs=base / "logs", cwd=base, env=env)
    answer = run.json_answer()
    if run.returncode not in (0, 3) or answer is None:
        return None, 0.0, f"failed (exit {run.returncode}): {run.tail(3)}", {}
    counts = answer["counts"]
    done = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    return run.seconds, run.cpu_seconds, done, {"command": run.cpu_seconds}


def local_scan(args: argparse.Namespace, base: Path, threads: int) -> Callable[[int], Timed]:
    def once(round_: int) -> Timed:
        lay_out_drops(base / "store", args.drops, args.rows)
        return with_server_cpu(scan, base, lane_env(base), "--concurrency", str(threads))

    return once


def celery_scan(args: argparse.Namespace, base: Path, processes: int) -> Callable[[int], Timed]:
    """A fresh store, a worker of ``processes`` started and warm, then the timed scan."""

    def once(round_: int) -> Timed:
        lay_out_drops(base / "store", args.drops, args.rows)
        url, queue_prefix = BROKERS["redis"], prefix()
        env = lane_env(base, ETL_BROKER_URL=url, ETL_QUEUE_PREFIX=queue_prefix)
        command = [str(harness.BIN / "etl-file-processing"), "worker",
                   "--concurrency", str(processes)]  # fmt: skip
        log = base / f"worker-{round_}.log"
        try:
            with worker(command, env, log, warm=processes) as started:
                return with_worker_cpu(started, scan, base, env, "--executor", "celery")
        finally:  # the file lane's queue, and the transforms it chained
            delete_queues(url, queue_prefix, ("file_processing", "data_pipeline"))

    return once


def file_lane(args: argparse.Namespace, work: Path) -> Measured:
    lines = [
        Line(f"local executor, {threads} thread(s)", local_scan(args, work / f"local-{threads}",
                                                                 threads))
        for threads in sorted({1, max(args.workers)})
    ]  # fmt: skip
    url = BROKERS["redis"]
    skipped = [] if broker_up(url) else [f"celery: Redis at {url} does not answer; skipped"]
    if not skipped:
        lines += [
            Line(f"celery (Redis), {n} worker process(es)", celery_scan(args, work / f"celery-{n}",
                                                                        n))
            for n in args.workers
        ]  # fmt: skip
    interleave(lines, args.repeat)
    header = f"file lane: {args.drops} drops"
    table = render_table(header, "drops/s", args.drops, lines) + skipped
    return table, rates(args.drops, lines), rounds(lines)


# --------------------------------------------------------------------------- backfill


def lay_out_partitions(store: Path, partitions: int, rows: int) -> None:
    """A fresh store with ``partitions`` validated days of pos_transactions, manifests and all.

    The files are written through the store, as the file lane publishes them, so each
    carries its recorded MD5: a file dropped in beside the store would have the first
    listing (the backfill's plan, in the command, before any unit is sent) hash them all.
    """
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
            opened.write_bytes(validated_key(harness.DATASET, day, name), make.day_csv(day, rows))
            record_delivery(opened, harness.DATASET, day, [name], rows=rows)


def run_backfill(args: argparse.Namespace, base: Path, env: dict[str, str], *options: str) -> Timed:
    """One timed ``backfill --no-load`` of every partition: seconds and its last line."""
    last = FIRST_DAY + timedelta(days=args.partitions - 1)
    command = [str(harness.BIN / "etl-data-pipeline"), "backfill", "--dataset", harness.DATASET,
               "--from", FIRST_DAY.isoformat(), "--to", last.isoformat(), "--no-load",
               *options]  # fmt: skip
    run = harness.run_child(command, name="backfill", logs=base / "logs", cwd=base, env=env)
    said = run.stdout.read_text().strip().splitlines()[-1:]
    if run.returncode or not said or f"{args.partitions} succeeded" not in said[0]:
        return None, 0.0, f"exit {run.returncode}: {run.tail(2)}", {}
    return run.seconds, run.cpu_seconds, said[0].split(": ", 1)[-1], {"command": run.cpu_seconds}


def local_backfill(args: argparse.Namespace, base: Path, at_once: int) -> Callable[[int], Timed]:
    def once(round_: int) -> Timed:
        lay_out_partitions(base / "store", args.partitions, args.partition_rows)
        return with_server_cpu(
            run_backfill, args, base, lane_env(base), "--concurrency", str(at_once)
        )

    return once


def celery_backfill(
    args: argparse.Namespace, base: Path, kind: str, processes: int
) -> Callable[[int], Timed]:
    """A fresh store, a pipeline worker of ``processes`` started and warm, the timed backfill."""

    def once(round_: int) -> Timed:
        lay_out_partitions(base / "store", args.partitions, args.partition_rows)
        url, queue_prefix = BROKERS[kind], prefix()
        env = lane_env(base, ETL_BROKER_URL=url, ETL_QUEUE_PREFIX=queue_prefix)
        command = [str(harness.BIN / "etl-data-pipeline"), "worker",
                   "--concurrency", str(processes)]  # fmt: skip
        try:
            with worker(command, env, base / f"worker-{round_}.log", warm=processes) as started:
                return with_worker_cpu(started, run_backfill, args, base, env, "--executor",
                                       "celery")  # fmt: skip
        finally:
            delete_queues(url, queue_prefix, ("data_pipeline",))

    return once


def backfill(args: argparse.Namespace, work: Path) -> Measured:
    counts = sorted({1, *args.workers})
    lines = [
        Line(f"local executor, {n} at once", local_backfill(args, work / f"backfill-{n}", n))
        for n in counts
    ]
    skipped = []
    for kind in args.brokers:
        if not broker_up(BROKERS[kind]):
            skipped.append(f"celery: {kind} at {urlsplit(BROKERS[kind]).netloc} does not answer; "
                           "skipped")  # fmt: skip
            continue
        name = BROKER_NAMES[kind]
        lines += [
            Line(f"celery ({name}), {n} worker process(es)",
                 celery_backfill(args, work / f"backfill-{kind}-{n}", kind, n))
            for n in args.workers
        ]  # fmt: skip
    interleave(lines, args.repeat)
    header = f"backfill: {args.partitions} partitions x {args.partition_rows:,} rows"
    table = render_table(header, "parts/s", args.partitions, lines) + skipped
    return table, rates(args.partitions, lines), rounds(lines)


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
            with worker(command, child_env(), work / f"noop-{kind}.log"):
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


def paired(timed: dict[str, dict[int, float]], base: str, other: str) -> str:
    """What the same rounds say of ``other``'s throughput over ``base``'s, for a target's
    line: their median and each round's ratio; nothing with fewer than two such rounds."""
    ratios = same_rounds(timed.get(base, {}), timed.get(other, {}))
    if len(ratios) < 2:
        return ""
    each = ", ".join(f"{ratio:.2f}x" for ratio in ratios)
    return f" (same rounds: median {statistics.median(ratios):.2f}x of {each})"


def targets(
    lane: dict[str, float],
    backfilled: dict[str, float],
    round_trip: dict[str, float],
    timed: dict[str, dict[str, dict[int, float]]] | None = None,
) -> tuple[list[str], bool]:
    """The target lines, verdicts by each line's fastest run; with ``timed`` (a part's lines'
    seconds by round), each ratio's same-round figures beside it."""
    lines: list[str] = []
    verdict = harness.Verdicts()
    timed = timed or {}
    parts = (("file lane", lane, "local executor, 1 thread(s)", "Redis"),
             ("backfill", backfilled, "local executor, 1 at once", "Redis"),
             ("backfill", backfilled, "local executor, 1 at once", "RabbitMQ"))  # fmt: skip
    for part, measured, local_label, broker in parts:
        one_label = f"celery ({broker}), 1 worker process(es)"
        two_label = f"celery ({broker}), 2 worker process(es)"
        one, two, local = (measured.get(one_label), measured.get(two_label),
                           measured.get(local_label))  # fmt: skip
        by_round = timed.get(part, {})
        if one and two:
            lines.append(f"{part} ({broker}): 2 workers >= {TARGET_SPEEDUP}x the throughput of "
                         f"1: {two / one:.2f}x {verdict(two / one >= TARGET_SPEEDUP)}"
                         + paired(by_round, one_label, two_label))  # fmt: skip
        if one and local:
            met = one >= local * (1 - TARGET_WITHIN)
            lines.append(f"{part} ({broker}): celery with 1 worker within {TARGET_WITHIN:.0%} of "
                         f"the local executor: {one / local:.2f}x {verdict(met)}"
                         + paired(by_round, local_label, one_label))  # fmt: skip
    if "redis" in round_trip:
        met = round_trip["redis"] < TARGET_ROUND_TRIP_MS
        lines.append(f"empty-unit round trip on Redis < {TARGET_ROUND_TRIP_MS:.0f} ms: "
                     f"{round_trip['redis']:.2f} ms {verdict(met)}")  # fmt: skip
    return lines, not verdict.all_met


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
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="rounds of every line, interleaved (reversed in odd rounds); "
                        "the fastest is kept, the same rounds' ratios shown beside the "
                        "targets (%(default)s)")  # fmt: skip
    parser.add_argument("--round-trips", type=int, default=300, help="empty units (%(default)s)")
    parser.add_argument("--brokers", nargs="+", choices=sorted(BROKERS), default=sorted(BROKERS))
    parts = ["files", "backfill", "round-trip"]
    parser.add_argument("--only", nargs="+", choices=parts, default=parts, help="parts to run")
    parser.add_argument("--workdir", type=Path, help="scratch directory, kept afterwards")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if (
        min(args.drops, args.rows, args.partitions, args.round_trips, args.repeat, *args.workers)
        < 1
    ):
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
          f"brokers {args.brokers}, repeat {args.repeat}, workdir {args.workdir}, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    harness.print_settings()
    table: list[str] = []
    lane: dict[str, float] = {}
    backfilled: dict[str, float] = {}
    round_trip: dict[str, float] = {}
    timed: dict[str, dict[str, dict[int, float]]] = {}
    with harness.workdir(args.workdir) as work:
        if "files" in args.only:
            rows, lane, timed["file lane"] = file_lane(args, work)
            table += [*rows, ""]
        if "backfill" in args.only:
            rows, backfilled, timed["backfill"] = backfill(args, work)
            table += [*rows, ""]
        if "round-trip" in args.only:
            rows, round_trip = round_trips(args, work)
            table += rows
    lines, missed = targets(lane, backfilled, round_trip, timed)
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    harness.print_report(table, [f"load average at the end: {load}"], lines)
    failed = any("failed: " in line or "FAILED" in line for line in table)
    print(json.dumps({"drops_per_second": lane, "partitions_per_second": backfilled,
                      "round_trip_ms": round_trip}))  # fmt: skip
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
