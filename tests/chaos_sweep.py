"""Chaos sweep (a script, not collected): kill a lane's real command at sampled moments,
run it again, compare with an undisturbed run.

For one command (``scan``, ``run``, ``ingest``, ``backfill``, ``check``) on the retail
example, a clean workspace runs it once (the reference); then for each sampled delay a
fresh workspace starts it, sends the signal after the delay (SIGKILL, SIGTERM, SIGINT),
runs the same command again with nothing killed, and compares the store's keys (run ids
masked; the lanes' ``_state/`` and invisible ``.etl-partial-*`` files left out), the
database's rows (curated tables per day, ledger tables, runs left ``running``), the
re-run's exit code, tracebacks, scratch left in ``work_dir`` and processes left behind.
Prints one line a case and a tally; exit 1 when any case differs. The bugs it found are
held by ``test_kill_and_rerun.py`` at the points where they lived.

    .venv/bin/python tests/chaos_sweep.py scan --points 20 --signal KILL
    CHAOS_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python tests/chaos_sweep.py run --points 16   # a database per workspace

A backfill re-run starts a new job (resume the killed one with ``--resume JOB``), so its
``etl_backfill_partition`` count doubles by design.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples/retail"
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("CHAOS_POSTGRES_URL", "")
"""Set (postgresql://127.0.0.1:5432/postgres): each workspace gets its own database there."""
CREATED: list[str] = []
sys.path.insert(0, str(EXAMPLE))


@dataclass
class Space:
    root: Path
    env: dict[str, str]

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith("ETL_") and k != "DATABASE_URL"
        }
        environ.update({"ETL_LOG_FORMAT": "json", **self.env})
        return subprocess.Popen(
            [str(BIN / argv[0]), *argv[1:]],
            cwd=self.root,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def run(self, *argv: str, timeout: float = 300) -> tuple[int, str, str, float]:
        began = time.monotonic()
        proc = self.popen(*argv)
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err, time.monotonic() - began


def make_space(root: Path, extra: dict[str, str]) -> Space:
    shutil.copytree(EXAMPLE / "landing", root / "store/landing")
    shutil.copytree(EXAMPLE / "reference", root / "store/reference")
    shutil.copytree(EXAMPLE / "config", root / "config")
    (root / "work").mkdir()
    db = f"sqlite:///{root / 'etl.sqlite3'}"
    if PG_ADMIN:
        import psycopg

        name = f"chaos_{root.name}_{os.getpid()}".lower()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        db = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        CREATED.append(name)
    env = {
        "ETL_STORAGE_URL": str(root / "store"),
        "ETL_CONFIG_DIR": str(root / "config"),
        "ETL_WORK_DIR": str(root / "work"),
        "DATABASE_URL": db,
        "RETAIL_POS_PGP_KEY": (EXAMPLE / "keys/retail-example-secret.asc").read_text(),
        **extra,
    }
    space = Space(root, env)
    rc, _, err, _ = space.run("etl-schema", "migrate")
    assert rc == 0, err
    return space


RUN_ID = re.compile(r"\d{8}T\d{6,12}Z?-[0-9a-f]{6}")


def store_state(space: Space) -> list[str]:
    """Every key of the store outside ``_state/`` (names only, run ids masked)."""
    base = space.root / "store"
    return sorted(
        RUN_ID.sub("RUN", str(p.relative_to(base)))
        for p in base.rglob("*")
        if p.is_file()
        and not str(p.relative_to(base)).startswith("_state")
        and not p.name.startswith(".etl-partial-")  # invisible to readers, collected later
    )


def db_state(space: Space) -> dict[str, object]:
    if PG_ADMIN:
        return pg_state(space.env["DATABASE_URL"])
    path = space.root / "etl.sqlite3"
    with sqlite3.connect(path) as db:
        tables = [
            r[0]
            for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if r[0].startswith("retail_")
        ]
        out: dict[str, object] = {}
        for t in tables:
            out[t] = db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            cols = [r[1] for r in db.execute(f"PRAGMA table_info({t})")]
            if "dt" in cols:
                out[t + ".dt"] = dict(db.execute(f"SELECT dt, count(*) FROM {t} GROUP BY dt"))
        out["processed"] = (
            db.execute("SELECT count(*) FROM etl_processed_object").fetchone()[0]
            if _has(db, "etl_processed_object")
            else None
        )
        for t in (
            "etl_alert",
            "etl_freshness_status",
            "etl_quarantine_record",
            "etl_api_ingestion_state",
            "etl_backfill_partition",
        ):
            out[t] = db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        out["running_runs"] = db.execute(
            "SELECT count(*) FROM etl_pipeline_run WHERE status='running'"
        ).fetchone()[0]
    return out


def pg_state(url: str) -> dict[str, object]:
    import psycopg

    out: dict[str, object] = {}
    with psycopg.connect(url) as db:
        for (t,) in db.execute(
            "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND NOT relispartition"
            " AND relname LIKE 'retail\\_%'"
        ).fetchall():
            out[t] = db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
        for t in ("retail_sales_transaction", "retail_store_footfall"):
            rows = db.execute(f"SELECT dt, count(*) FROM {t} GROUP BY dt").fetchall()
            out[t + ".dt"] = {str(k): v for k, v in rows}
        for t in (
            "etl_processed_object",
            "etl_alert",
            "etl_freshness_status",
            "etl_quarantine_record",
            "etl_api_ingestion_state",
            "etl_backfill_partition",
        ):
            out[t] = db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
        out["running_runs"] = db.execute(
            "SELECT count(*) FROM etl_pipeline_run WHERE status='running'"
        ).fetchone()[0]  # type: ignore[index]
    return out


def _has(db: sqlite3.Connection, table: str) -> bool:
    return bool(db.execute("SELECT 1 FROM sqlite_master WHERE name=?", (table,)).fetchone())


def scratch_left(space: Space) -> list[str]:
    return [str(p.relative_to(space.root)) for p in (space.root / "work").rglob("*")]


# --- the commands: (prepare the workspace, argv) ---------------------------------------


def prep_none(space: Space) -> None:
    return None


def prep_scanned(space: Space) -> None:
    rc, _, err, _ = space.run("etl-file-processing", "scan")
    assert rc in (0, 3), err


COMMANDS: dict[str, tuple[Callable[[Space], None], tuple[str, ...]]] = {
    "scan": (prep_none, ("etl-file-processing", "scan")),
    "run": (prep_scanned, ("etl-data-pipeline", "run", "--dataset", "pos_transactions")),
    "backfill": (
        prep_scanned,
        (
            "etl-data-pipeline",
            "backfill",
            "--dataset",
            "pos_transactions",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-11",
        ),
    ),
    "check": (
        prep_scanned,
        ("etl-observability", "check"),
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=[*COMMANDS, "ingest"])
    parser.add_argument("--points", type=int, default=10)
    parser.add_argument("--signal", default="KILL")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--env", action="append", default=[])
    args = parser.parse_args()
    extra = dict(e.split("=", 1) for e in args.env)
    sig = getattr(signal, f"SIG{args.signal}")
    tmp = Path(tempfile.mkdtemp(prefix=f"chaos-{args.command}-"))
    with ExitStack() as stack:
        if args.command == "ingest":
            from api import TOKEN_ENV, start_api

            server = stack.enter_context(start_api("tok-chaos"))
            extra[TOKEN_ENV] = "tok-chaos"
            prep = prep_none
            argv: tuple[str, ...] = (
                "etl-data-pipeline", "ingest", "--source", "retail_footfall",
                "--since", "2026-11-01T00:00:00Z", "--until", "2026-11-11T00:00:00Z",
            )  # fmt: skip

            def point(space: Space) -> None:
                path = space.root / "config/sources/retail_footfall.toml"
                text = path.read_text().replace('"http://127.0.0.1:8000"', f'"{server.url}"')
                path.write_text(text)
        else:
            prep, argv = COMMANDS[args.command]

            def point(space: Space) -> None:
                return None

        ref = make_space(tmp / "ref", extra)
        point(ref)
        prep(ref)
        rc, _out, err, took = ref.run(*argv)
        print(f"reference: rc={rc} took={took:.1f}s", flush=True)
        if rc not in (0, 1, 3):
            print(err[-3000:])
            return 2
        want_store, want_db = store_state(ref), db_state(ref)
        bad = 0
        for i in range(args.points):
            delay = 0.3 + (took * 1.1) * i / max(1, args.points - 1)
            space = make_space(tmp / f"case{i}", extra)
            point(space)
            prep(space)
            proc = space.popen(*argv)
            time.sleep(delay)
            finished_before = proc.poll() is not None
            if not finished_before:
                proc.send_signal(sig)
            _out1, err1 = proc.communicate(timeout=300)
            rc1 = proc.returncode
            # orphans of the killed command (its pool's processes), still in its session
            orphans = subprocess.run(
                ["pgrep", "-s", str(proc.pid)], capture_output=True, text=True
            ).stdout.split()
            for pid in orphans:
                with suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            rc2, _out2, err2, took2 = space.run(*argv)
            got_store, got_db = store_state(space), db_state(space)
            problems = []
            if got_store != want_store:
                miss = sorted(set(want_store) - set(got_store))
                extra_keys = sorted(set(got_store) - set(want_store))
                problems.append(f"store missing={miss[:5]} extra={extra_keys[:5]}")
            if got_db != want_db:
                diff = {k: (want_db.get(k), got_db.get(k)) for k in set(want_db) | set(got_db)
                        if want_db.get(k) != got_db.get(k)}  # fmt: skip
                problems.append(f"db {diff}")
            stopped = {signal.SIGTERM: (143, -signal.SIGTERM), signal.SIGINT: (130,)}.get(sig)
            if stopped and not finished_before and rc1 not in stopped:  # -15: still starting
                problems.append(f"stopped with exit {rc1}, not {stopped[0]}")
            if rc2 not in (rc, 0):
                problems.append(f"rerun rc={rc2} (reference {rc})")
            if "Traceback" in err2 or "Traceback" in err1:
                problems.append("traceback")
            if scratch_left(space):
                problems.append(f"scratch left {scratch_left(space)[:3]}")
            if orphans:
                problems.append(f"orphans {orphans}")
            last1 = err1.strip().splitlines()[-1][:300] if err1.strip() else ""
            status = "OK " if not problems else "BAD"
            bad += bool(problems)
            done = " (done)" if finished_before else ""
            print(
                f"{status} case{i} delay={delay:.2f}s rc1={rc1}{done}"
                f" rerun rc={rc2} took={took2:.1f}s {'; '.join(problems)}",
                flush=True,
            )
            if problems or sig != signal.SIGKILL:
                print(f"    first run last line: {last1}")
            if problems:
                tail = err2.strip().splitlines()[-3:]
                for line in tail:
                    print(f"    rerun: {line[:400]}")
            if not args.keep and not problems:
                shutil.rmtree(space.root, ignore_errors=True)
        print(f"tally: {args.points} points, {bad} inconsistent; kept in {tmp}")
        if PG_ADMIN and not args.keep and not bad:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                for name in CREATED:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
