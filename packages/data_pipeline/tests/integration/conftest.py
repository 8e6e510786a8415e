"""A real HTTP API on 127.0.0.1 for the ingestion tests, and helpers to configure and read runs.

:class:`RecordsApi` serves one set of records through every pagination style, checks
every kind of credentials, issues OAuth2 tokens with a short life, and plays scripted
faults (429 with ``Retry-After``, 5xx, slow answers, malformed bodies) in order.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from data_pipeline.ingest import IngestContext, ObjectStateStore, WindowOutcome, ingest_unit
from data_pipeline.ingest import plan_units as plan
from etl_core.contracts import load_contracts, load_sources
from etl_core.layout import landing_api_prefix
from etl_core.storage import LocalObjectStore, ObjectStore

BASE_TIME = datetime(2026, 3, 1, tzinfo=UTC)
SECRETS = {
    "token": "bearer-Secret-7f3a9c",
    "api_key": "key-Secret-51be02",
    "password": "pass-Secret-c0ffee",
    "client_secret": "client-Secret-9d8e7f",
}


@dataclass
class Fault:
    """A scripted answer for the next request whose path starts with ``path``."""

    path: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    delay: float = 0.0
    after: int = 0
    """Matching requests answered normally before this fault plays."""
    trickle: float = 0.0
    """Seconds between the bytes of the body (a server that never stops sending)."""
    head: bool = False
    """Whether the status line and headers trickle in too (``trickle`` seconds a byte)."""
    stall: float = 0.0
    """Seconds the server waits between its headers and the body (a body that never comes)."""


def stamp(index: int) -> str:
    """The ``updated_at`` of record ``index``."""
    return (BASE_TIME + timedelta(minutes=index)).isoformat().replace("+00:00", "Z")


def customers_and_orders(
    child: str = "orders", dataset: str = "shop_orders", extra: str = ""
) -> str:
    """Source TOML: the ``customers`` endpoint and its child ``child`` (landing in
    ``dataset``) walking each customer's orders by page number; ``extra`` is more lines of
    the child's table (``chunk_records``, ``primary_key``)."""
    return f"""
[[endpoints]]
name = "customers"
path = "/customers"
dataset = "shop_customers"
records_path = "data"

[[endpoints]]
name = "{child}"
path = "/customers/{{parent.id}}/orders"
parent = "customers"
dataset = "{dataset}"
records_path = "data"
{extra}
[endpoints.pagination]
type = "page_number"
"""


def cursor_items(endpoint: str = "", incremental: str = "") -> str:
    """Source TOML: the ``items`` endpoint (dataset ``shop_items``) paged by ``/cursor``'s
    ``meta.next``, incremental on ``updated_at`` sent as ``since``; ``endpoint`` and
    ``incremental`` are more lines of those two tables."""
    return f"""
[[endpoints]]
name = "items"
path = "/cursor"
dataset = "shop_items"
records_path = "data"
{endpoint}
[endpoints.pagination]
type = "cursor"
cursor_path = "meta.next"
[endpoints.incremental]
cursor_field = "updated_at"
param = "since"
{incremental}
"""


def listings(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The prefix of every ``store.list`` call from now on, in a list that grows as they
    come: how a test counts the listings a plan makes."""
    listed: list[str] = []
    every = store.list

    def counted(prefix: str = "") -> Any:
        listed.append(prefix)
        return every(prefix)

    monkeypatch.setattr(store, "list", counted)
    return listed


def _stamp(item: Any) -> str | None:
    return item.get("updated_at") if isinstance(item, dict) else None


class RecordsApi:
    """The API: ``records`` (ids 1..n), customers with orders, and an OAuth2 token endpoint."""

    def __init__(self, count: int = 47) -> None:
        self.records = [self.record(i) for i in range(1, count + 1)]
        self.customers = [{"id": f"c{c}", "name": f"customer {c}"} for c in range(1, 6)]
        self.orders = {
            c["id"]: [{"order": f"{c['id']}-{o}", "total": o * 10} for o in range(1, 2 + n)]
            for n, c in enumerate(self.customers)
        }
        self.auth = "none"
        self.token_lifetime = 3600.0
        self.issued: list[tuple[str, float]] = []  # token, expiry (monotonic)
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        """The most records requests the server was answering at once."""
        self.max_page = 1000  # a server may give fewer records a page than asked for
        self.echo_key = False
        """Whether ``/next`` and ``/link`` echo the request's ``api_key`` in their next links
        and in a ``self`` link (as some APIs do)."""
        self.past_end = "empty"
        """What ``/flag_when_more`` answers past its last page: ``empty`` (no records),
        ``404``, or ``repeat`` (its last page again)."""
        self.maintenance: set[tuple[str, str, str]] = set()
        """Requests answered with an HTML 200 (``down for maintenance``) while listed: path,
        query parameter and its value (``("/page", "page", "6")``)."""
        self.same_pages = 0
        """How many pages ``/same`` answers with the same first records, each with a new
        cursor (an API walked for ever but for a refusal), before an empty last page."""
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @staticmethod
    def record(index: int) -> dict[str, Any]:
        return {"id": index, "name": f"item {index} é", "updated_at": stamp(index)}

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------ behaviour

    def authorised(self, headers: Any, query: dict[str, str]) -> bool:
        given = headers.get("Authorization", "")
        if self.auth == "bearer":
            return bool(given == f"Bearer {SECRETS['token']}")
        if self.auth == "api_key_header":
            return bool(headers.get("X-Api-Key") == SECRETS["api_key"])
        if self.auth == "api_key_query":
            return query.get("api_key") == SECRETS["api_key"]
        if self.auth == "basic":
            pair = base64.b64encode(f"etl:{SECRETS['password']}".encode()).decode()
            return bool(given == f"Basic {pair}")
        if self.auth == "oauth2":
            now = time.monotonic()
            with self._lock:
                return any(given == f"Bearer {t}" and now < exp for t, exp in self.issued)
        return True

    def token(self, headers: Any) -> tuple[int, dict[str, Any]]:
        pair = base64.b64encode(f"etl-client:{SECRETS['client_secret']}".encode()).decode()
        if headers.get("Authorization") != f"Basic {pair}":
            return 401, {"error": "invalid_client"}
        token = secrets.token_hex(8)
        with self._lock:
            self.issued.append((token, time.monotonic() + self.token_lifetime))
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.token_lifetime,
        }

    def fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self.faults):
                if path.startswith(fault.path):
                    if fault.after:
                        fault.after -= 1
                        return None
                    return self.faults.pop(index)
        return None

    def window(self, query: dict[str, str]) -> list[dict[str, Any]]:
        rows = self.records
        # an item that is not a record, or has no updated_at, is never inside a window
        if "since" in query:
            rows = [r for r in rows if _stamp(r) is not None and _stamp(r) >= query["since"]]
        if "until" in query:
            rows = [r for r in rows if _stamp(r) is not None and _stamp(r) < query["until"]]
        return rows

    def route(self, path: str, query: dict[str, str]) -> tuple[dict[str, str], Any]:
        """Headers and JSON body of a records request in each pagination style."""
        rows = self.window(query)
        size = min(int(query.get("per_page") or query.get("limit") or 10), self.max_page)
        if path == "/page":
            page = int(query.get("page", 1))
            chunk = rows[(page - 1) * size : page * size]
            return {}, {"data": chunk, "meta": {"total": len(rows)}}
        if path == "/hasmore":
            page = int(query.get("page", 1))
            chunk = rows[(page - 1) * size : page * size]
            return {}, {"data": chunk, "has_more": page * size < len(rows)}
        if path == "/cursor_flag":  # has_more on every page but the last; a cursor on all
            start = int(query.get("cursor", 0))
            document = {"data": rows[start : start + size], "next": str(start + size)}
            if start + size < len(rows):
                document["has_more"] = True
            return {}, document
        if path == "/flag_when_more":  # has_more only when true; by page number or offset
            size = min(int(query.get("per_page") or 10), self.max_page)
            last = max(1, -(-len(rows) // size))  # pages, one at least
            if "offset" in query:
                start = int(query["offset"])
            else:
                start = (int(query.get("page", 1)) - 1) * size
            if start >= len(rows) and start > 0 and self.past_end == "404":
                raise KeyError(path)
            if start >= len(rows) and start > 0 and self.past_end == "repeat":
                start = (last - 1) * size
            document = {"data": rows[start : start + size]}
            if start + size < len(rows):
                document["has_more"] = True
            return {}, document
        if path == "/offset":
            offset = int(query.get("offset", 0))
            return {}, {"items": rows[offset : offset + size], "total": len(rows)}
        if path == "/same":
            turn = int(query.get("cursor", 0))
            if turn >= self.same_pages:
                return {}, {"data": [], "meta": {"next": None}}
            return {}, {"data": rows[:size], "meta": {"next": str(turn + 1)}}
        if path == "/cursor":
            start = int(query.get("cursor", 0))
            nxt = start + size if start + size < len(rows) else None
            return {}, {"data": rows[start : start + size], "meta": {"next": nxt and str(nxt)}}
        echo = f"&api_key={query['api_key']}" if self.echo_key and "api_key" in query else ""
        if path == "/next":
            start = int(query.get("after", 0))
            nxt = f"/next?after={start + size}{echo}" if start + size < len(rows) else None
            links = {"next": nxt, **({"self": f"/next?after={start}{echo}"} if echo else {})}
            return {}, {"results": rows[start : start + size], "links": links}
        if path == "/link":
            page = int(query.get("page", 1))
            headers = {}
            if page * size < len(rows):
                headers["Link"] = f'<{self.url}/link?page={page + 1}{echo}>; rel="next"'
            return headers, rows[(page - 1) * size : page * size]
        if path == "/customers":
            return {}, {"data": self.customers}
        if path.startswith("/customers/") and path.endswith("/orders"):
            orders = self.orders.get(path.split("/")[2])
            if orders is None:
                raise KeyError(path)
            page = int(query.get("page", 1))
            return {}, {"data": orders[(page - 1) * 2 : page * 2]}
        raise KeyError(path)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                fault = api.fault_for(urlsplit(self.path).path)  # the token endpoint's too
                if fault is not None:
                    time.sleep(fault.delay)
                    if fault.head:
                        self._trickle_head(fault)
                        return
                    sent = fault.body if fault.body is not None else b"{}"
                    self._send(fault.status, fault.headers, sent, fault.trickle)
                    return
                status, body = api.token(self.headers)
                self._send(status, {}, json.dumps(body).encode())

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with api._lock:
                    api.requests.append(
                        {"path": url.path, "query": query, "headers": dict(self.headers)}
                    )
                    api.in_flight += 1
                    api.max_in_flight = max(api.max_in_flight, api.in_flight)
                try:
                    self._answer(url.path, query)
                finally:
                    with api._lock:
                        api.in_flight -= 1

            def _answer(self, path: str, query: dict[str, str]) -> None:
                if api.delay:
                    time.sleep(api.delay)
                fault = api.fault_for(path)
                if fault is not None:
                    time.sleep(fault.delay)
                    if fault.status != 200 or fault.body is not None:
                        if fault.head:
                            self._trickle_head(fault)
                            return
                        self._send(
                            fault.status,
                            fault.headers,
                            fault.body if fault.body is not None else b"{}",
                            fault.trickle,
                            fault.stall,
                        )
                        return
                if any(path == p and query.get(k) == v for p, k, v in api.maintenance):
                    self._send(200, {}, b"<html>down for maintenance</html>")
                    return
                if not api.authorised(self.headers, query):
                    self._send(401, {}, b'{"error": "unauthorised"}')
                    return
                try:
                    headers, document = api.route(path, query)
                except KeyError:
                    self._send(404, {}, b'{"error": "not found"}')
                    return
                self._send(200, headers, json.dumps(document).encode())

            def _trickle_head(self, fault: Fault) -> None:
                body = fault.body if fault.body is not None else b"{}"
                lines = [f"HTTP/1.1 {fault.status} OK", f"Content-Length: {len(body)}"]
                lines += [f"{name}: {value}" for name, value in fault.headers.items()]
                head = ("\r\n".join(lines) + "\r\n\r\n").encode()
                try:
                    for index in range(len(head)):
                        self.wfile.write(head[index : index + 1])
                        self.wfile.flush()
                        time.sleep(fault.trickle)
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def _send(
                self,
                status: int,
                headers: dict[str, str],
                body: bytes,
                trickle: float = 0.0,
                stall: float = 0.0,
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("ETag", f'"{hash(body) & 0xFFFFFF:x}"')
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if stall:
                        self.wfile.flush()
                        time.sleep(stall)
                    if not trickle:
                        self.wfile.write(body)
                        return
                    for index in range(len(body)):
                        self.wfile.write(body[index : index + 1])
                        self.wfile.flush()
                        time.sleep(trickle)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        return Handler


@pytest.fixture
def api() -> Iterator[RecordsApi]:
    """A running :class:`RecordsApi`."""
    server = RecordsApi()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------ configuration


DATASET = """
dataset = "{dataset}"
source = "api/{source}/{endpoint}"
pattern = "{endpoint}_{{date:%Y%m%d}}_*.jsonl.gz"
format = "jsonl"
packing = "gzip"
columns = [
  {{ name = "id", type = "int" }},
  {{ name = "name" }},
  {{ name = "updated_at", type = "timestamp" }},
]
"""


class Workspace:
    """A config directory and a local store for one test."""

    def __init__(self, root: Path, api: RecordsApi) -> None:
        self.root = root
        self.api = api
        self.config = root / "config"
        self.store_dir = root / "store"
        (self.config / "sources").mkdir(parents=True)
        (self.config / "datasets").mkdir(parents=True)
        self.store_dir.mkdir()
        self.store: ObjectStore = LocalObjectStore(self.store_dir)
        self.sleeps: list[float] = []
        self.read_aside = True

    def source(self, body: str, *, name: str = "shop", endpoints: tuple[str, ...] = ()) -> None:
        """Write ``sources/<name>.toml`` (``{url}`` is the API's) and a contract per endpoint."""
        text = f'base_url = "{self.api.url}"\n' + body
        (self.config / "sources" / f"{name}.toml").write_text(text)
        for endpoint in endpoints:
            contract = DATASET.format(dataset=f"{name}_{endpoint}", source=name, endpoint=endpoint)
            (self.config / "datasets" / f"{name}_{endpoint}.toml").write_text(contract)

    def context(self, run_id: str = "20260301T000000Z-aaaaaa") -> IngestContext:
        contracts = load_contracts(self.config)
        sources = load_sources(self.config, contracts=contracts)
        return IngestContext(
            self.store,
            sources,
            ObjectStateStore(self.store),
            run_id,
            lease_seconds=60,
            sleep=self.sleeps.append,
            contracts=contracts,
            read_aside=self.read_aside,
        )

    def ingest(
        self,
        endpoint: str,
        *,
        source: str = "shop",
        run_id: str = "20260301T000000Z-aaaaaa",
        **options: Any,
    ) -> list[WindowOutcome]:
        context = self.context(run_id)
        try:
            src = context.sources.get(source)
            outcomes: list[WindowOutcome] = []
            for unit in plan(src, src.endpoint(endpoint), **options):
                outcomes.extend(ingest_unit(context, unit))
            return outcomes
        finally:
            context.close()

    def landed(self, endpoint: str, source: str = "shop") -> list[dict[str, Any]]:
        """Every landed record of an endpoint, in key order."""
        records = []
        for info in self.store.list(landing_api_prefix(source, endpoint)):
            for line in gzip.decompress(self.store.read_bytes(info.key)).splitlines():
                records.append(json.loads(line))
        return records

    def keys(self, prefix: str) -> list[str]:
        return [info.key for info in self.store.list(prefix)]


@pytest.fixture
def workspace(tmp_path: Path, api: RecordsApi) -> Workspace:
    """A config directory and local store wired to the running API."""
    return Workspace(tmp_path, api)


@pytest.fixture
def readings_taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The record counts of the page readings the walk takes whole, in order (each page
    the walk reads itself is absent)."""
    from data_pipeline.ingest import flow

    taken: list[int] = []
    take = flow._Walk._take_reading

    def spy(walk: flow._Walk, reading: Any, *args: Any) -> None:
        taken.append(reading.count)
        take(walk, reading, *args)

    monkeypatch.setattr(flow._Walk, "_take_reading", spy)
    return taken


def everything_written(workspace) -> bytes:
    """Every object of the store, archives decompressed."""
    blobs = []
    for info in workspace.store.list(""):
        data = workspace.store.read_bytes(info.key)
        blobs.append(gzip.decompress(data) if info.key.endswith(".gz") else data)
    return b"\n".join(blobs)
