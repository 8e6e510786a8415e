"""Where a `load` of the data_pipeline benchmark spends its time: client and server CPU,
WAL written, and what the server's connections wait on.

Run after `bench/run.py data_pipeline --rows N --workdir DIR` (which leaves the curated
partition in DIR): each round empties the table, runs the platform's `load` command as a
child and, meanwhile, samples `pg_stat_activity` and each backend's CPU (`/proc`, so it
needs to run on the database's machine, as a user that may read the server's processes).
PostgreSQL's CPU is every server process's, live or reaped by the postmaster, so other
clients of the same server add to it: read it on a quiet server.

    .venv/bin/python bench/load_profile.py --workdir DIR --rows 1000000 --rounds 3
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
TABLE = "retail_sales_transaction"


def cpu_of(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process; (0, 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    own = (int(fields[11]) + int(fields[12])) / TICK
    reaped = (int(fields[13]) + int(fields[14])) / TICK
    return own, reaped


def server_cpu(postmaster: int) -> float:
    """CPU seconds of every server process, live or reaped."""
    total = sum(cpu_of(postmaster))
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == postmaster:
                total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def wal(con: psycopg.Connection[Any]) -> dict[str, float]:
    row = con.execute(
        "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, wal_records, wal_fpi, wal_bytes, "
        "wal_write, wal_sync FROM pg_stat_wal"
    ).fetchone()
    assert row is not None
    keys = ("lsn", "records", "fpi", "bytes", "writes", "syncs")
    return {k: float(v) for k, v in zip(keys, row, strict=True)}


class Sampler(threading.Thread):
    """Samples the database's connections every ``interval`` seconds: what each waits on
    and its CPU so far."""

    def __init__(self, url: str, database: str, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.url, self.database, self.interval = url, database, interval
        self.stop = threading.Event()
        self.waits: collections.Counter[tuple[str, str]] = collections.Counter()
        self.cpu: dict[int, float] = {}
        self.kind: dict[int, str] = {}

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as con:
            own = con.info.backend_pid
            while not self.stop.is_set():
                rows = con.execute(
                    "SELECT pid, backend_type, state, coalesce(wait_event_type, ''), "
                    "coalesce(wait_event, ''), left(query, 40) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> %s",
                    [self.database, own],
                ).fetchall()
                for pid, backend, state, kind, event, query in rows:
                    if state == "idle":
                        continue
                    label = f"{backend}: {query.split(' ')[0] if query else ''}"
                    self.kind.setdefault(pid, f"{backend} {query}")
                    self.waits[(label, f"{kind}:{event}" if kind else "CPU")] += 1
                    self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu_of(pid)[0])
                time.sleep(self.interval)


def one_round(args: argparse.Namespace, url: str, database: str, postmaster: int) -> None:
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"TRUNCATE {TABLE}")
        if args.checkpoint:
            con.execute("CHECKPOINT")
        before_wal, before_cpu = wal(con), server_cpu(postmaster)
        sampler = Sampler(url, database)
        sampler.start()
        store = Path(args.workdir) / f"rows-{args.rows}" / "store"
        command = [
            str(BIN / "etl-data-pipeline"), "--storage", store.as_uri(), "--config-dir",
            str(ROOT / "examples/retail/config"), "--log-format", "json", "--log-level",
            "info", "load", "--dataset", "pos_transactions", "--date", "2026-11-02",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["DATABASE_URL"] = url
        started, children = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = child.communicate()
        status = child.returncode
        wall = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = (usage.ru_utime - children.ru_utime) + (usage.ru_stime - children.ru_stime)
        sampler.stop.set()
        sampler.join()
        after_cpu, after_wal = server_cpu(postmaster), wal(con)
    if status:
        print(err.decode()[-2000:])
        raise SystemExit(f"load failed ({status})")
    events = {}
    for line in (out + err).decode().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        events[event.get("message") or event.get("event")] = event
    swapped = events.get("partition swapped", {})
    loaded = events.get("partition loaded", {})
    print(
        f"wall {wall:.2f} s, inside the load {loaded.get('seconds')} s "
        f"(copy {swapped.get('copy_seconds')}, indexes {swapped.get('index_seconds')}, "
        f"swap {swapped.get('swap_seconds')})"
    )
    print(f"client CPU {client:.2f} s, server CPU {after_cpu - before_cpu:.2f} s")
    delta = {k: after_wal[k] - before_wal[k] for k in after_wal}
    print(
        f"WAL {delta['lsn'] / 2**20:.1f} MiB by LSN, {delta['records']:.0f} records, "
        f"{delta['fpi']:.0f} full pages, {delta['writes']:.0f} writes, {delta['syncs']:.0f} syncs"
    )
    for pid, seconds in sorted(sampler.cpu.items(), key=lambda kv: -kv[1]):
        print(f"  backend {pid}: {seconds:.2f} CPU s  {sampler.kind[pid][:90]}")
    total = sum(sampler.waits.values())
    for (label, wait), n in sampler.waits.most_common(14):
        print(f"  {n / total:6.1%}  {label[:50]:50}  {wait}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default="postgresql://root@127.0.0.1:5432/")
    parser.add_argument("--checkpoint", action="store_true", help="CHECKPOINT before a round")
    parser.add_argument("--keep", help="an existing migrated database to use")
    parser.add_argument(
        "--pid-file",
        default="/var/lib/postgresql/15/main/postmaster.pid",
        help="the server's postmaster.pid (its first line is the postmaster's pid)",
    )
    args = parser.parse_args()
    postmaster = int(Path(args.pid_file).read_text().split()[0])
    database = args.keep or f"loadprof_{os.getpid()}"
    url = args.url + database
    if not args.keep:
        with psycopg.connect(args.url + "postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{database}"')
        env = dict(os.environ, DATABASE_URL=url)
        subprocess.run([str(BIN / "etl-schema"), "migrate"], env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        for number in range(args.rounds):
            print(f"--- round {number + 1}")
            one_round(args, url, database, postmaster)
    finally:
        if not args.keep:
            with psycopg.connect(args.url + "postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
