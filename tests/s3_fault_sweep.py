"""S3 fault sweep (a script, not collected): each lane's real command on the retail example,
its store on S3 (moto) behind a fault-injecting proxy, one fault at a time; then a re-run
without faults; both compared with an undisturbed run.

For each case it prints the faulted run's exit code, whether the fault fired, what a
reader could see after it (delivery or curated manifests naming objects absent or of
another size), the landing drops lost, the re-run's exit code and whether the store's keys
and the database's rows equal the undisturbed run's. Exit 1 when a case differs. The bugs
it found are held by ``test_s3_faults_lanes.py`` and
``packages/etl_core/tests/integration/test_storage_s3_faults.py``.

    .venv/bin/python tests/s3_fault_sweep.py scan
    .venv/bin/python tests/s3_fault_sweep.py run --only truncate
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples/retail"
sys.path.insert(0, str(EXAMPLE))
sys.path.insert(0, str(Path(__file__).parent))

from etl_core.layout import is_delivery_manifest  # noqa: E402
from etl_core.storage import S3ObjectStore  # noqa: E402
from etl_core.testing.s3 import create_bucket, s3_server  # noqa: E402
from etl_core.testing.s3_faults import Fault, FaultyS3Proxy, faulty_s3_proxy  # noqa: E402
from etl_core.testing.scripts import run_script  # noqa: E402

RUN_ID = re.compile(r"\d{8}T\d{6,12}Z?-[0-9a-f]{6}")
ARGV = {
    "scan": ("etl-file-processing", "scan"),
    "run": ("etl-data-pipeline", "run", "--dataset", "pos_transactions"),
    "check": ("etl-observability", "check"),
    "ingest": (
        "etl-data-pipeline",
        "ingest",
        "--source",
        "retail_footfall",
        "--since",
        "2026-11-01T00:00:00Z",
        "--until",
        "2026-11-11T00:00:00Z",
    ),
}


@dataclass
class Space:
    """A workspace: config and SQLite locally, the store at ``s3://bucket/prefix``."""

    root: Path
    url: str
    env: dict[str, str]

    def run(self, argv: tuple[str, ...], endpoint: str) -> tuple[int, str]:
        env = {**self.env, "ETL_S3_ENDPOINT_URL": endpoint}
        if argv[0] == "etl-observability":
            del env["DATABASE_URL"]  # alerts then live in the store (compare-and-put)
        done = run_script(*argv, cwd=self.root, env=env, timeout=300)
        return done.returncode, done.stderr


def make_space(root: Path, bucket: str, moto: str, extra: dict[str, str]) -> Space:
    root.mkdir(parents=True)
    shutil.copytree(EXAMPLE / "config", root / "config")
    (root / "work").mkdir()
    prefix = f"{root.name}-{uuid.uuid4().hex[:6]}"
    with S3ObjectStore(bucket, prefix, endpoint_url=moto) as store:
        for top in ("landing", "reference"):
            for path in sorted((EXAMPLE / top).rglob("*")):
                if path.is_file():
                    store.upload(path, f"{top}/{path.relative_to(EXAMPLE / top)}")
    db = f"sqlite:///{root / 'etl.sqlite3'}"
    done = run_script("etl-schema", "migrate", cwd=root, env={"DATABASE_URL": db})
    assert done.returncode == 0, done.stderr
    env = {
        "ETL_STORAGE_URL": f"s3://{bucket}/{prefix}",
        "ETL_CONFIG_DIR": str(root / "config"),
        "ETL_WORK_DIR": str(root / "work"),
        "ETL_S3_READ_TIMEOUT": "2",
        "DATABASE_URL": db,
        "RETAIL_POS_PGP_KEY": (EXAMPLE / "keys/retail-example-secret.asc").read_text(),
        **extra,
    }
    return Space(root, f"s3://{bucket}/{prefix}", env)


def alert_state(space: Space, moto: str) -> list[tuple[str, str, str]]:
    """The alerts' document: each alert's fingerprint, state and level."""
    bucket, _, prefix = space.url[5:].partition("/")
    with S3ObjectStore(bucket, prefix, endpoint_url=moto) as store:
        if not store.exists("_state/observability/alerts.json"):
            return []
        doc = json.loads(store.read_bytes("_state/observability/alerts.json"))
    alerts = (
        [*doc.get("active", {}).values(), *doc.get("resolved", [])]
        if isinstance(doc.get("active"), dict)
        else [*doc.get("active", []), *doc.get("resolved", [])]
    )
    return sorted(
        (str(a.get("fingerprint")), str(a.get("state")), str(a.get("level"))) for a in alerts
    )


def store_keys(space: Space, moto: str) -> dict[str, int]:
    """Every key (run ids masked) outside ``_state/`` with its size (-1 for documents
    naming the workspace's prefix, whose length differs from one workspace to another);
    a masked key seen twice (a second run's orphaned pages) gets ``#2``."""
    bucket, _, prefix = space.url[5:].partition("/")
    found: dict[str, int] = {}
    with S3ObjectStore(bucket, prefix, endpoint_url=moto) as store:
        for info in store.list():
            if info.key.startswith("_state"):
                continue
            name = RUN_ID.sub("RUN", info.key)
            seen = sum(1 for key in found if key == name or key.startswith(f"{name}#"))
            found[f"{name}#{seen + 1}" if seen else name] = (
                -1 if info.key.endswith(".json") else info.size
            )
    return found


def half_published(space: Space, moto: str) -> list[str]:
    """What a reader could see half-published: a manifest (delivery, curated, raw) naming
    a key that is not there, a curated manifest whose bytes are not its files' sizes, a
    delivery manifest whose landing object has another size."""
    bucket, _, prefix = space.url[5:].partition("/")
    problems = []
    with S3ObjectStore(bucket, prefix, endpoint_url=moto) as store:
        sizes = {info.key: info.size for info in store.list()}
        for key in sizes:
            if not (is_delivery_manifest(key) or key.endswith("/_manifest.json")):
                continue
            doc = json.loads(store.read_bytes(key))
            for name in _named_keys(doc):
                if name not in sizes:
                    problems.append(f"{key} names missing {name}")
            files = doc.get("files")
            if key.startswith("curated/") and isinstance(files, list):
                total = sum(sizes.get(name, 0) for name in files)
                if total != doc.get("bytes"):
                    problems.append(f"{key} says {doc.get('bytes')} B, its files hold {total} B")
            delivery = doc.get("delivery")
            landing = delivery.get("key") if isinstance(delivery, dict) else None
            if landing in sizes and sizes[landing] != delivery.get("size"):  # type: ignore[union-attr]
                problems.append(f"{key}: landing object of another size")
    return problems


_TOPS = ("validated/", "curated/", "raw/", "quarantine/")


def _named_keys(doc: object) -> list[str]:
    """Every string in a manifest that names an object of the lanes' outputs."""
    if isinstance(doc, dict):
        return [name for value in doc.values() for name in _named_keys(value)]
    if isinstance(doc, list):
        return [name for value in doc for name in _named_keys(value)]
    if isinstance(doc, str) and doc.startswith(_TOPS) and not doc.endswith("/"):
        return [doc]
    return []


def db_state(space: Space) -> dict[str, object]:
    with sqlite3.connect(space.root / "etl.sqlite3") as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out: dict[str, object] = {}
        for t in names:
            if t.startswith("retail_") or t in (
                "etl_processed_object", "etl_alert", "etl_quarantine_record",
                "etl_api_ingestion_state", "etl_freshness_status",
            ):  # fmt: skip
                out[t] = db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        out["running_runs"] = db.execute(
            "SELECT count(*) FROM etl_pipeline_run WHERE status='running'"
        ).fetchone()[0]
    return out


def faults(command: str) -> list[Fault]:
    """The faults tried on ``command``'s requests."""
    read, written = {
        "scan": (r"/landing/", r"/validated/"),
        "run": (r"/validated/.*\.csv$", r"/curated/"),
        "check": (r"/_state/observability/", r"/_state/observability/"),
        "ingest": (r"/_state/data_pipeline/", r"/raw/"),
    }[command]
    out = [
        Fault("error", "GET", read, status=503, code="SlowDown", times=2),
        Fault("error", "GET", read, status=500, code="InternalError"),
        Fault("reset", "GET", read),
        Fault("truncate", "GET", read),
        Fault("slow", "GET", read, delay=3),
        Fault("error", "GET", read, status=503, code="SlowDown", times=20),
        Fault("error", "GET", read, status=403, code="AccessDenied"),
        Fault("error", "HEAD", read, status=500, code="InternalError"),
        Fault("error", "PUT", written, status=503, code="SlowDown"),
        Fault("reset", "PUT", written, forward=True),
        Fault("reset", "PUT", written, nth=2),
        Fault("error", "PUT", written, status=403, code="AccessDenied"),
        Fault("error", "PUT", written, status=403, code="AccessDenied", nth=2),
        Fault("slow", "PUT", written, delay=3),
        Fault("slow", "PUT", r"/_state/", delay=3, times=2),
        Fault("error", "PUT", r"/_state/", status=503, code="SlowDown"),
        Fault("reset", "PUT", r"/_state/", forward=True),
        Fault("error", "PUT", r"/_state/", status=403, code="AccessDenied"),
        Fault("error", "GET", r"", query="list-type=2", status=500, code="InternalError"),
        Fault("truncate", "GET", r"", query="list-type=2"),
    ]
    if command == "scan":
        out += [
            Fault("truncate", "GET", r"\.zip\.pgp$"),
            Fault("reset", "GET", r"\.zip\.pgp$"),
            Fault("error", "PUT", r"\.zip/pos_\d+\.csv$", status=403, code="AccessDenied", nth=2),
            Fault("error", "PUT", r"/_deliveries/", status=500, code="InternalError"),
            Fault("reset", "PUT", r"/_deliveries/", forward=True),
            Fault("error", "PUT", r"/_deliveries/", status=403, code="AccessDenied"),
            Fault("error", "PUT", r"/_deliveries/", status=403, code="AccessDenied", nth=3),
            Fault("error_in_200", "PUT", r"/quarantine/.*[^n]$", code="InternalError"),
            Fault("error", "PUT", r"/quarantine/", status=403, code="AccessDenied"),
        ]
    if command == "run":
        out += [
            Fault("error", "PUT", r"/curated/.*manifest", status=500, code="InternalError"),
            Fault("reset", "PUT", r"/curated/.*manifest", forward=True),
            Fault("error", "PUT", r"/curated/.*manifest", status=403, code="AccessDenied"),
            Fault("error", "DELETE", r"", status=503, code="SlowDown"),
            Fault("error", "DELETE", r"", status=403, code="AccessDenied"),
        ]
    return out


def label(fault: Fault) -> str:
    detail = {"error": f"{fault.status}", "slow": f"{fault.delay:g}s"}.get(fault.kind, "")
    extra = "+fwd" if fault.forward else ""
    times = f"x{fault.times}" if fault.times > 1 else ""
    nth = f"#{fault.nth}" if fault.nth > 1 else ""
    return f"{fault.kind}{detail}{extra}{times}{nth} {fault.method} {fault.key or fault.query}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=list(ARGV))
    parser.add_argument("--only", default="")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix=f"s3faults-{args.command}-"))
    argv = ARGV[args.command]
    bad = 0
    with ExitStack() as stack:
        moto = stack.enter_context(s3_server())
        proxy: FaultyS3Proxy = stack.enter_context(faulty_s3_proxy(moto))
        bucket = create_bucket(moto)
        extra: dict[str, str] = {}
        if args.command == "ingest":
            from api import TOKEN_ENV, start_api

            server = stack.enter_context(start_api("tok-faults"))
            extra[TOKEN_ENV] = "tok-faults"

        def prepared(name: str) -> Space:
            space = make_space(tmp / name, bucket, moto, extra)
            if args.command == "ingest":
                path = space.root / "config/sources/retail_footfall.toml"
                text = path.read_text().replace('"http://127.0.0.1:8000"', f'"{server.url}"')
                path.write_text(text)
            if args.command in ("run", "check"):
                rc, err = space.run(ARGV["scan"], moto)
                assert rc in (0, 3), err[-2000:]
            return space

        ref = prepared("ref")
        began = time.monotonic()
        rc_ref, _ = ref.run(argv, moto)
        print(f"reference: rc={rc_ref} {time.monotonic() - began:.1f}s", flush=True)
        want_keys, want_db = store_keys(ref, moto), db_state(ref)
        want_alerts = alert_state(ref, moto)
        for n, fault in enumerate(faults(args.command)):
            if args.only and args.only not in label(fault):
                continue
            space = prepared(f"case{n}")
            proxy.clear()
            proxy.inject(fault)
            began = time.monotonic()
            rc1, err1 = space.run(argv, proxy.url)
            took = time.monotonic() - began
            fired = bool(proxy.applied)
            proxy.clear()
            seen = half_published(space, moto)
            rc2, err2 = space.run(argv, moto)
            got_keys, got_db = store_keys(space, moto), db_state(space)
            problems = list(seen)
            if got_keys != want_keys:
                miss = sorted(set(want_keys) - set(got_keys))
                more = sorted(set(got_keys) - set(want_keys))
                sized = sorted(
                    k for k in set(got_keys) & set(want_keys) if got_keys[k] != want_keys[k]
                )
                problems.append(f"store missing={miss[:4]} extra={more[:4]} resized={sized[:4]}")
            if got_db != want_db:
                diff = {k: (want_db.get(k), got_db.get(k)) for k in set(want_db) | set(got_db)
                        if want_db.get(k) != got_db.get(k)}  # fmt: skip
                problems.append(f"db {diff}")
            if (got_alerts := alert_state(space, moto)) != want_alerts:
                problems.append(f"alerts {want_alerts} != {got_alerts}")
            if rc2 not in (0, rc_ref):
                problems.append(f"rerun rc={rc2} (reference {rc_ref}): {err2[-600:]}")
            if "Traceback" in err1:
                problems.append("traceback in the faulted run")
            errors = [
                str(json.loads(line).get("event", ""))[:300]
                for line in err1.splitlines()
                if line.startswith("{")
                and str(json.loads(line).get("level")).lower() in ("error", "critical")
            ]
            status = "OK " if not problems else "BAD"
            bad += bool(problems)
            print(
                f"{status} {label(fault):45} fired={fired!s:5} rc={rc1} {took:4.1f}s "
                f"{'; '.join(problems)}",
                flush=True,
            )
            if rc1 != rc_ref and errors:
                print(f"      error: {errors[-1]}", flush=True)
            if not args.keep:
                shutil.rmtree(space.root, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
