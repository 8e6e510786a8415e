"""Benchmark: REST API ingestion against a local HTTP server, side by side with references.

A server child process on 127.0.0.1 serves ``--records`` deterministic records,
``--page-size`` a page, in two pagination styles (offset/limit and page number),
pre-rendered, optionally ``--latency-ms`` late per response. Every tool then runs as
its own child (wall time, peak RSS and CPU seconds from ``wait4``):

* ``platform``: ``etl-data-pipeline ingest`` on a source TOML pointing at the server
  (raw archive, landing chunks, manifest and checkpoint all written);
* ``plain loop (floor)``: a sequential ``httpx`` + ``orjson`` loop writing JSON Lines;
* ``dlt rest_api``: dlt's ``rest_api`` source to local JSON Lines (filesystem destination).

The server's own ceiling (raw ``http.client`` threads, no parsing) is measured first.
Targets (issue 13): platform at least 3x dlt and 0.7x the plain loop; with latency,
offset pagination at least 3x the sequential loop; peak RSS under 200 MB.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit


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

SOURCE = "bench"
ENDPOINT = "items"
STYLES = ("offset", "page_number")
DEFAULT_RECORDS, DEFAULT_PAGE_SIZE, DEFAULT_LATENCY_MS, DEFAULT_CONCURRENCY = 200_000, 1_000, 20, 8
CEILING_THREADS = 4
TARGET_VS_DLT, TARGET_VS_FLOOR, TARGET_VS_SEQUENTIAL, TARGET_RSS_MB = 3.0, 0.7, 3.0, 200
SERVER_START_SECONDS = 30.0

DATASET = f"""
dataset = "{SOURCE}_{ENDPOINT}"
source = "api/{SOURCE}/{ENDPOINT}"
pattern = "{ENDPOINT}_{{date:%Y%m%d}}_*.jsonl.gz"
format = "jsonl"
packing = "gzip"
columns = [
  {{ name = "id", type = "int" }},
  {{ name = "sku" }},
  {{ name = "name" }},
  {{ name = "store" }},
  {{ name = "quantity", type = "int" }},
  {{ name = "unit_price", type = "decimal", precision = 10, scale = 2 }},
  {{ name = "currency" }},
  {{ name = "updated_at", type = "timestamp" }},
]
"""

PAGINATION = {
    "offset": 'type = "offset"\npage_size = {size}\ntotal_path = "total"\n',
    "page_number": (
        'type = "page_number"\nsize_param = "per_page"\npage_size = {size}\ntotal_path = "total"\n'
    ),
}


# --------------------------------------------------------------------------- the server


def record(index: int) -> dict[str, Any]:
    """Record ``index`` (from 1): a retail-like row of about 250 bytes of JSON."""
    return {
        "id": index,
        "sku": f"SKU-{index % 9973:05d}",
        "name": f"Product {index % 9973} — size {'SMLX'[index % 4]}",
        "store": f"S{index % 97:03d}",
        "quantity": 1 + index % 7,
        "unit_price": round(1.5 + (index % 5000) / 100, 2),
        "currency": "EUR",
        "updated_at": f"2026-11-02T{index // 3600 % 24:02d}:{index // 60 % 60:02d}:"
        f"{index % 60:02d}Z",
        "tags": ["promo", "web"] if index % 3 == 0 else ["store"],
        "address": {"city": f"City {index % 211}", "postcode": f"{10000 + index % 89999}"},
    }


class Catalogue:
    """The records as pre-rendered JSON, and page bodies joined from them (cached)."""

    def __init__(self, records: int, page_size: int) -> None:
        self.count = records
        self.page_size = page_size
        self.rendered = [
            json.dumps(record(i), ensure_ascii=False, separators=(",", ":")).encode()
            for i in range(1, records + 1)
        ]
        self.pages = -(-records // page_size)
        self.body = lru_cache(maxsize=4 * self.pages + 8)(self._body)

    def _body(self, start: int, size: int) -> bytes:
        rows = b",".join(self.rendered[start : start + max(size, 0)])
        tail = b'],"total":%d,"pages":%d}' % (self.count, self.pages)
        return b'{"data":[' + rows + tail

    def total_bytes(self) -> int:
        """The bytes of every full page of the walk (what each tool downloads)."""
        return sum(len(self.body(s, self.page_size)) for s in range(0, self.count, self.page_size))


def serve(records: int, page_size: int) -> None:
    """Serve the catalogue until stdin closes; print ``{"port":…, "bytes":…}`` first."""
    catalogue = Catalogue(records, page_size)
    total = catalogue.total_bytes()  # renders (and caches) every page before the first client

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query).items()}
            prefix, _, tail = split.path.strip("/").partition("/")
            if not prefix.startswith("lat") or tail != ENDPOINT:
                self.send_error(404)
                return
            latency = int(prefix[3:] or 0) / 1000
            if "offset" in query:
                size = int(query.get("limit", page_size))
                start = int(query["offset"])
            else:
                size = int(query.get("per_page", page_size))
                start = (int(query.get("page", 1)) - 1) * size
            body = catalogue.body(start, size)
            if latency:
                time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1], "bytes": total}), flush=True)
    sys.stdin.read()  # the benchmark closes our stdin when it is done
    server.shutdown()


@dataclass
class Server:
    """The running server child: its URL and the bytes of one full walk."""

    process: subprocess.Popen[str]
    url: str
    walk_bytes: int

    def stop(self) -> None:
        """Close the server's stdin (it then shuts down) and reap it."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(records: int, page_size: int, logs: Path) -> Server:
    """Start the server child (the platform's interpreter) and wait for its port."""
    logs.mkdir(parents=True, exist_ok=True)
    cmd = worker(Path(sys.executable), "server", records, page_size)
    with (logs / "server.stderr").open("wb") as err:
        process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
        )
    assert process.stdout is not None
    deadline = time.monotonic() + SERVER_START_SECONDS + records / 20_000
    line = process.stdout.readline()  # one line, then nothing until stdin closes
    if not line or time.monotonic() > deadline:
        process.kill()
        raise RuntimeError(f"the server did not start: {(logs / 'server.stderr').read_text()}")
    hello = json.loads(line)
    return Server(process, f"http://127.0.0.1:{hello['port']}", int(hello["bytes"]))


def worker(python: Path, kind: str, *args: object) -> list[str]:
    """``python bench/ingest.py --worker kind args…``."""
    return [str(python), str(Path(__file__).resolve()), "--worker", kind, *map(str, args)]


# --------------------------------------------------------------------------- the clients


def ceiling(url: str, records: int, page_size: int) -> None:
    """Raw ``http.client`` threads fetching every page (no parsing): the server's ceiling."""
    parsed = urlsplit(url)
    starts = list(range(0, records, page_size))
    received = [0] * CEILING_THREADS

    def fetch(slot: int) -> None:
        conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=60)
        for start in starts[slot::CEILING_THREADS]:
            conn.request("GET", f"{parsed.path}/{ENDPOINT}?offset={start}&limit={page_size}")
            received[slot] += len(conn.getresponse().read())
        conn.close()

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(CEILING_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"records": records, "bytes": sum(received)}))


def plain_loop(url: str, out: Path, style: str, page_size: int) -> None:
    """The plain loop: sequential ``httpx`` GETs, ``orjson`` parse, one JSON line a record."""
    import httpx
    import orjson

    seen, number = 0, 1
    with httpx.Client(base_url=url, timeout=60) as client, out.open("wb") as sink:
        while True:
            if style == "offset":
                params = {"offset": seen, "limit": page_size}
            else:
                params = {"page": number, "per_page": page_size}
            document = orjson.loads(client.get(f"/{ENDPOINT}", params=params).content)
            rows = document["data"]
            for row in rows:
                sink.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            seen, number = seen + len(rows), number + 1
            if not rows or seen >= document["total"]:
                break
    print(json.dumps({"records": seen}))


def dlt_run(url: str, out: Path, style: str, page_size: int) -> None:
    """dlt's ``rest_api`` source into the filesystem destination as JSON Lines."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    paginator: dict[str, Any]
    params: dict[str, Any] = {}
    if style == "offset":
        paginator = {"type": "offset", "limit": page_size, "total_path": "total"}
    else:
        paginator = {"type": "page_number", "base_page": 1, "total_path": "pages"}
        params = {"per_page": page_size}
    source = rest_api_source(
        {
            "client": {"base_url": url + "/"},
            "resources": [
                {
                    "name": ENDPOINT,
                    "write_disposition": "append",
                    "endpoint": {
                        "path": ENDPOINT,
                        "params": params,
                        "data_selector": "data",
                        "paginator": paginator,
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_ingest",
        pipelines_dir=str(out / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(out / "lake").as_uri()),
        dataset_name="bench",
    )
    pipeline.run(source, loader_file_format="jsonl")
    rows = pipeline.last_trace.last_normalize_info.row_counts.get(ENDPOINT, 0)
    print(json.dumps({"records": rows}))


# --------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class Case:
    """One pass: a pagination style at a latency."""

    style: str
    latency_ms: int

    @property
    def label(self) -> str:
        """``<style>, <latency> ms``."""
        return f"{self.style}, {self.latency_ms} ms"


def lay_out_platform(base: Path, url: str, case: Case, args: argparse.Namespace) -> Path:
    """A fresh config dir (the source and its dataset contract) and store under ``base``."""
    shutil.rmtree(base, ignore_errors=True)
    config = base / "config"
    (config / "sources").mkdir(parents=True)
    (config / "datasets").mkdir(parents=True)
    (base / "store").mkdir()
    pagination = PAGINATION[case.style].format(size=args.page_size)
    (config / "sources" / f"{SOURCE}.toml").write_text(
        f'base_url = "{url}/lat{case.latency_ms}"\n'
        f"concurrency = {args.concurrency}\n\n"
        f'[[endpoints]]\nname = "{ENDPOINT}"\npath = "/{ENDPOINT}"\n'
        f'dataset = "{SOURCE}_{ENDPOINT}"\nrecords_path = "data"\nprimary_key = ["id"]\n'
        f"chunk_records = {args.chunk_records}\n"
        f"[endpoints.pagination]\n{pagination}"
    )
    (config / "datasets" / f"{SOURCE}_{ENDPOINT}.toml").write_text(DATASET)
    return config


def landed(store: Path) -> tuple[int, int, bool]:
    """Records in the landing chunks, raw pages archived, and whether a state was committed."""
    records = 0
    for chunk in (store / "landing" / "api" / SOURCE / ENDPOINT).glob("*.jsonl.gz"):
        with gzip.open(chunk, "rb") as lines:
            records += sum(1 for _ in lines)
    pages = len(list((store / "raw" / "api" / SOURCE / ENDPOINT).rglob("*.json.gz")))
    state = (store / "_state" / "data_pipeline" / "api" / SOURCE / f"{ENDPOINT}.json").is_file()
    return records, pages, state


def run_platform(
    base: Path, server: Server, case: Case, args: argparse.Namespace, logs: Path
) -> harness.Result:
    """``etl-data-pipeline ingest`` once on a fresh store; the records landed, counted back."""
    config = lay_out_platform(base, server.url, case, args)
    store = base / "store"
    cmd = [
        str(harness.BIN / "etl-data-pipeline"),
        "--storage",
        store.as_uri(),
        "--config-dir",
        str(config),
        "ingest",
        "--source",
        SOURCE,
        "--json",
    ]
    env = child_env(ETL_LOG_FORMAT="json", ETL_WORK_DIR=str(base / "scratch"))
    run = harness.run_child(cmd, name="platform", logs=logs, cwd=base, env=env)
    result = harness.Result(args.records, "platform").timed(run)
    if result.ok:
        records, pages, state = landed(store)
        result.rows = records
        expected_pages = -(-args.records // args.page_size)
        if pages < expected_pages or not state:
            result.note = f"! {pages} raw pages (expected {expected_pages}), state {state}"
        result.output_bytes = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    shutil.rmtree(store, ignore_errors=True)
    return result


def run_reference(
    kind: str,
    tool: str,
    base: Path,
    server: Server,
    case: Case,
    args: argparse.Namespace,
    logs: Path,
) -> harness.Result:
    """The plain loop (``kind`` ``floor``) or dlt once, under the tools' Python."""
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    out = base / ("out.jsonl" if kind == "floor" else "dlt")
    url = f"{server.url}/lat{case.latency_ms}"
    python = args.tools_python
    env = child_env(
        RUNTIME__DLTHUB_TELEMETRY="false",
        RUNTIME__LOG_LEVEL="WARNING",
        DLT_DATA_DIR=str(base / "dlt-data"),
        DLT_PROJECT_DIR=str(base),
    )
    cmd = worker(python, kind, url, out, case.style, args.page_size)
    run = harness.run_child(cmd, name=kind, logs=logs, cwd=base, env=env)
    result = harness.Result(args.records, tool).timed(run)
    answer = run.last_json() if result.ok else None
    if result.ok:
        result.rows = int(answer["records"]) if answer else None
        files = [out] if out.is_file() else [p for p in out.rglob("*") if p.is_file()]
        result.output_bytes = sum(p.stat().st_size for p in files)
    shutil.rmtree(base, ignore_errors=True)
    return result


def run_ceiling(server: Server, args: argparse.Namespace, logs: Path) -> harness.Result:
    """The server's own ceiling: raw threads reading every page, no parsing."""
    cmd = worker(Path(sys.executable), "ceiling", f"{server.url}/lat0", args.records)
    cmd.append(str(args.page_size))
    run = harness.run_child(cmd, name="ceiling", logs=logs, cwd=logs, env=child_env())
    result = harness.Result(args.records, "server ceiling").timed(run)
    answer = run.last_json()
    result.rows = int(answer["records"]) if answer else None
    return result


def child_env(**extra: str) -> dict[str, str]:
    """A child's environment, bytecode caching allowed: the editable packages are not
    compiled at install, and a shell with ``PYTHONDONTWRITEBYTECODE`` would have every
    platform run compile them again (about 0.5 s a run, not a cost of the platform)."""
    return harness.child_env(without=("PYTHONDONTWRITEBYTECODE",), **extra)


def warm_up(args: argparse.Namespace) -> None:
    """Import each tool once, untimed, so every timed run finds its modules compiled."""
    imports = "import httpx, orjson" + ("" if args.dlt_missing else ", dlt")
    for cmd in (
        [str(harness.BIN / "etl-data-pipeline"), "--help"],
        [str(args.tools_python), "-c", imports],
    ):
        subprocess.run(cmd, env=child_env(), capture_output=True, check=False)


def dlt_missing(python: Path) -> str:
    """Why the tools' Python cannot run dlt, or ``""``."""
    probe = subprocess.run(
        [str(python), "-c", "import dlt, orjson; print(dlt.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return "" if probe.returncode == 0 else f"no dlt in {python}"


# --------------------------------------------------------------------------- the report


def row(result: harness.Result, walk_bytes: int, floor: float | None, dlt: float | None) -> str:
    """One table row: rates, and speed against the floor and dlt (their seconds / ours)."""
    seconds = result.seconds
    rate = result.rows / seconds if seconds and result.rows else None
    mb_s = walk_bytes / seconds / harness.MB if seconds else None
    vs_floor = floor / seconds if seconds and floor else None
    vs_dlt = dlt / seconds if seconds and dlt else None
    rows = f"{result.rows:,}" if result.rows is not None else "-"
    if result.rows is not None and result.rows != result.size:
        rows += " !"
    return (
        f"| {result.tool} | {rows} | {harness.fmt(seconds, '.2f')} | "
        f"{harness.fmt(result.cpu_seconds, '.2f')} | {harness.fmt(rate, ',.0f')} | "
        f"{harness.fmt(mb_s, '.1f')} | {harness.fmt(result.peak_rss_mb, '.0f')} | "
        f"{harness.fmt(vs_floor, '.2f')}x | {harness.fmt(vs_dlt, '.2f')}x | {result.note} |"
    )


HEADER = (
    "| tool | records | seconds | CPU s | records/s | MB/s | peak RSS MB | speed vs floor "
    "| speed vs dlt | note |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def bench_case(
    case: Case, server: Server, args: argparse.Namespace, work: Path
) -> dict[str, harness.Result]:
    """Every tool on one style and latency, ``--repeat`` interleaved rounds, fastest kept."""
    base = work / f"{case.style}-{case.latency_ms}ms"
    logs = base / "logs"
    steps: list[harness.Step] = [
        ("platform", run_platform, (base / "platform", server, case, args, logs), {}),
        (
            "plain loop (floor)",
            run_reference,
            ("floor", "plain loop (floor)", base / "floor", server, case, args, logs),
            {},
        ),
    ]
    if not args.dlt_missing and (case.latency_ms == 0 or args.dlt_with_latency):
        steps.append(
            (
                "dlt rest_api",
                run_reference,
                ("dlt", "dlt rest_api", base / "dlt", server, case, args, logs),
                {},
            )
        )
    print(f"{case.label}:", flush=True)
    results = harness.interleaved(args.repeat, steps)
    return {r.tool: r for r in results}


def main(argv: list[str]) -> int:
    """Run the benchmark (or, with ``--worker``, one child's job); the exit code."""
    if argv[:1] == ["--worker"]:
        return run_worker(argv[1:])
    parser = argparse.ArgumentParser(prog="bench/run.py ingest", description=__doc__)
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, metavar="N")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE, metavar="N")
    parser.add_argument(
        "--chunk-records",
        type=int,
        default=10_000,
        metavar="N",
        help="the platform's chunk_records (a chunk and a checkpoint every N records)",
    )
    parser.add_argument("--latency-ms", type=int, default=DEFAULT_LATENCY_MS, metavar="MS")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help="the source's concurrency (page requests in flight)",
    )
    parser.add_argument("--styles", nargs="+", choices=STYLES, default=list(STYLES))
    parser.add_argument("--repeat", type=int, default=1, metavar="N")
    parser.add_argument("--workdir", type=Path, help="scratch directory, kept afterwards")
    parser.add_argument("--no-dlt", action="store_true", help="skip the dlt line")
    parser.add_argument(
        "--dlt-with-latency",
        action="store_true",
        help="run dlt with latency too (default: without only; its target is without)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if min(args.records, args.page_size, args.repeat, args.concurrency, args.chunk_records) < 1:
        parser.error("--records, --page-size, --repeat, --concurrency must be positive")
    if harness.missing_entry_point("etl-data-pipeline"):
        return 1
    args.tools_python = harness.tools_python(Path(sys.executable))
    args.dlt_missing = "skipped (--no-dlt)" if args.no_dlt else dlt_missing(args.tools_python)
    latencies = sorted({0, args.latency_ms})
    cases = [Case(style, ms) for ms in latencies for style in args.styles]
    print(
        f"ingest benchmark: {args.records:,} records, {args.page_size:,} a page, "
        f"styles {', '.join(args.styles)}, latency {latencies} ms, concurrency "
        f"{args.concurrency}, {os.cpu_count()} CPUs, repeat {args.repeat} (fastest kept)"
    )
    print(f"  platform: {sys.executable}; tools: {args.tools_python}")
    if args.dlt_missing:
        print(f"  dlt: {args.dlt_missing}")
    harness.print_settings()
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with harness.workdir(args.workdir) as work:
        server = start_server(args.records, args.page_size, work / "logs")
        try:
            warm_up(args)
            top = run_ceiling(server, args, work / "logs")
            outcomes = {case: bench_case(case, server, args, work) for case in cases}
        finally:
            server.stop()
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    return report(args, server, top, outcomes, load_before, load_after)


def report(
    args: argparse.Namespace,
    server: Server,
    top: harness.Result,
    outcomes: dict[Case, dict[str, harness.Result]],
    load_before: list[str],
    load_after: list[str],
) -> int:
    """Print the table, the notes and the targets; 1 when a run failed (or, with
    ``--strict``, a target was missed)."""
    table = [HEADER]
    mb = server.walk_bytes / harness.MB
    table.append(row(top, server.walk_bytes, None, None))
    failed = not top.ok
    for case, results in outcomes.items():
        table.append(f"| **{case.label}** | | | | | | | | | |")
        floor = results["plain loop (floor)"].seconds
        dlt = results["dlt rest_api"].seconds if "dlt rest_api" in results else None
        for result in results.values():
            failed |= not result.ok or (result.rows is not None and result.rows != result.size)
            table.append(row(result, server.walk_bytes, floor, dlt))
    notes = [
        "",
        f"one walk downloads {mb:.1f} MB of JSON ({server.walk_bytes / args.records:.0f} bytes "
        f"a record); MB/s = that / seconds; server ceiling = {CEILING_THREADS} raw http.client "
        "threads, no parsing",
        f"load average before {' '.join(load_before)}, after {' '.join(load_after)}",
    ]
    verdicts = harness.Verdicts()
    for case, results in outcomes.items():
        check_case(verdicts, case, results)
    harness.print_report(table, notes, verdicts.lines)
    return 1 if failed or (args.strict and not verdicts.all_met) else 0


def check_case(verdicts: harness.Verdicts, case: Case, results: dict[str, harness.Result]) -> None:
    """The target lines of one case: speed against the floor or dlt, and peak RSS."""
    platform, floor = results["platform"], results["plain loop (floor)"]
    dlt = results.get("dlt rest_api")
    if not (platform.ok and floor.ok):
        return
    assert platform.seconds
    assert floor.seconds
    speed = floor.seconds / platform.seconds
    if case.latency_ms == 0:
        verdicts.lines.append(
            f"  {verdicts(speed >= TARGET_VS_FLOOR)} {case.label}: platform at least "
            f"{TARGET_VS_FLOOR}x the plain loop: {speed:.2f}x"
        )
        if dlt is not None and dlt.ok and dlt.seconds:
            vs = dlt.seconds / platform.seconds
            verdicts.lines.append(
                f"  {verdicts(vs >= TARGET_VS_DLT)} {case.label}: platform at least "
                f"{TARGET_VS_DLT}x dlt: {vs:.2f}x"
            )
    elif case.style == "offset":
        verdicts.lines.append(
            f"  {verdicts(speed >= TARGET_VS_SEQUENTIAL)} {case.label}: platform at least "
            f"{TARGET_VS_SEQUENTIAL}x the sequential loop: {speed:.2f}x"
        )
    rss = platform.peak_rss_mb or 0.0
    verdicts.lines.append(
        f"  {verdicts(rss < TARGET_RSS_MB)} {case.label}: platform peak RSS under "
        f"{TARGET_RSS_MB} MB: {rss:.0f} MB"
    )


def run_worker(argv: list[str]) -> int:
    """A child's job: ``server``, ``ceiling``, ``floor`` or ``dlt``."""
    kind, rest = argv[0], argv[1:]
    if kind == "server":
        serve(int(rest[0]), int(rest[1]))
    elif kind == "ceiling":
        ceiling(rest[0], int(rest[1]), int(rest[2]))
    elif kind == "floor":
        plain_loop(rest[0], Path(rest[1]), rest[2], int(rest[3]))
    elif kind == "dlt":
        dlt_run(rest[0], Path(rest[1]), rest[2], int(rest[3]))
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
