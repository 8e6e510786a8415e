"""The retail example's footfall API: hourly door counts per store, as a counter vendor serves them.

A small REST API on the standard library's HTTP server, serving the deterministic counts
of ``generate.footfall`` for the days of ``generate.FOOTFALL_DAYS``:

    RETAIL_FOOTFALL_API_TOKEN=... python examples/retail/api.py --host 127.0.0.1 --port 8000

``GET /v1/footfall`` (``Authorization: Bearer <token>``) answers

    {"data": [{"id": "S001-20261101T07", "store_id": "S001", "hour_start": "2026-11-01T07:00:00Z",
               "entries": 31, "exits": 27, "updated_at": "2026-11-01T08:04:14Z"}, ...],
     "meta": {"count": 50, "limit": 50, "next_cursor": "WyIyMDI2..."}}

with the records ordered by ``updated_at`` then ``id`` and these query parameters:

- ``updated_since`` (ISO 8601, inclusive) and ``updated_before`` (exclusive): the
  incremental window; a time without an offset is UTC.
- ``limit``: records a page, 1 to 500 (default 100).
- ``cursor``: the previous page's ``meta.next_cursor`` (opaque; the page after that
  record), ``null`` on the last page.

A bad parameter is a 400, a missing or wrong token a 401, both with ``{"error": ...}``.
``GET /healthz`` answers ``{"status": "ok"}`` without a token. The token is read from an
environment variable (``--token-env``, default ``RETAIL_FOOTFALL_API_TOKEN``), never from
the command line; SIGTERM stops the server. ``run.py`` and the tests start it on an
ephemeral port in a thread (:func:`start_api`).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import hmac
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from generate import FOOTFALL_DAYS, footfall

TOKEN_ENV = "RETAIL_FOOTFALL_API_TOKEN"
"""The environment variable holding the token clients must send (the source's ``env:``)."""
PATH = "/v1/footfall"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500

SortKey = tuple[datetime, str]


class BadRequestError(ValueError):
    """A query parameter the API cannot use; its message names the parameter."""


@dataclass(frozen=True)
class Page:
    """One page of records and the cursor of the next one (``None`` after the last)."""

    records: list[dict[str, Any]]
    limit: int
    next_cursor: str | None


class FootfallData:
    """Every record the API serves, ordered by ``(updated_at, id)``: windows and pages
    are found by bisection."""

    def __init__(self, records: Sequence[dict[str, Any]]) -> None:
        ordered = sorted(records, key=_sort_key)
        self.records = ordered
        self.keys = [_sort_key(record) for record in ordered]

    @classmethod
    def generated(cls, *, seed: int = 11) -> FootfallData:
        """The example's counts: ``generate.footfall`` for every day of ``FOOTFALL_DAYS``."""
        return cls([record for day in FOOTFALL_DAYS for record in footfall(day, seed=seed)])

    def page(self, query: dict[str, list[str]]) -> Page:
        """The page a query asks for.

        Raises:
            BadRequestError: a parameter is malformed, repeated or unknown.
        """
        unknown = sorted(set(query) - {"updated_since", "updated_before", "limit", "cursor"})
        if unknown:
            raise BadRequestError(f"unknown query parameter {unknown[0]!r}")
        since = _time(query, "updated_since")
        before = _time(query, "updated_before")
        limit = _limit(query)
        cursor = _one(query, "cursor")
        start = 0 if since is None else bisect.bisect_left(self.keys, (since, ""))
        if cursor is not None:
            start = max(start, bisect.bisect_right(self.keys, decode_cursor(cursor)))
        end = len(self.keys) if before is None else bisect.bisect_left(self.keys, (before, ""))
        stop = min(start + limit, end)
        records = self.records[start:stop] if start < end else []
        more = stop < end and bool(records)
        return Page(records, limit, encode_cursor(self.keys[stop - 1]) if more else None)


def encode_cursor(key: SortKey) -> str:
    """The opaque cursor after the record with sort key ``key``."""
    text = json.dumps([key[0].isoformat(), key[1]], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> SortKey:
    """The sort key a cursor stands for.

    Raises:
        BadRequestError: the cursor was not made by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, record_id = json.loads(raw)
        return _aware(datetime.fromisoformat(moment)), str(record_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadRequestError(f"cursor {cursor[:40]!r} is not a cursor this API gave") from exc


def _sort_key(record: dict[str, Any]) -> SortKey:
    return _aware(datetime.fromisoformat(str(record["updated_at"]))), str(record["id"])


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequestError(f"query parameter {name!r} is given {len(values)} times")
    return values[0]


def _time(query: dict[str, list[str]], name: str) -> datetime | None:
    text = _one(query, name)
    if text is None:
        return None
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        raise BadRequestError(
            f"{name}={text!r}: expected an ISO 8601 time (2026-11-01T00:00:00Z)"
        ) from None


def _limit(query: dict[str, list[str]]) -> int:
    text = _one(query, "limit")
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequestError(f"limit={text!r}: expected an integer from 1 to {MAX_LIMIT}")
    return int(text)


class FootfallHandler(BaseHTTPRequestHandler):
    """Answers ``GET /v1/footfall`` and ``GET /healthz``; the server carries the data,
    the token and whether to log requests."""

    server: FootfallServer
    server_version = "retail-footfall-api/1"
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(HTTPStatus.OK, {"status": "ok"})
            return
        if url.path != PATH:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path!r}; try {PATH}"})
            return
        if not self._authorised():
            self._send(
                HTTPStatus.UNAUTHORIZED,
                {"error": "missing or wrong bearer token"},
                {"WWW-Authenticate": 'Bearer realm="footfall"'},
            )
            return
        try:
            page = self.server.data.page(parse_qs(url.query, keep_blank_values=True))
        except BadRequestError as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        meta = {"count": len(page.records), "limit": page.limit, "next_cursor": page.next_cursor}
        self._send(HTTPStatus.OK, {"data": page.records, "meta": meta})

    def _authorised(self) -> bool:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        expected = self.server.token.encode()
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)

    def _send(
        self, status: HTTPStatus, document: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:  # the request line only: the token is in a header
            super().log_message(format, *args)


class FootfallServer(ThreadingHTTPServer):
    """The HTTP server with the API's data and token."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], token: str, *, data: FootfallData, log_requests: bool
    ) -> None:
        if not token:
            raise ValueError("the API token is empty")
        super().__init__(address, FootfallHandler)
        self.token = token
        self.data = data
        self.log_requests = log_requests

    @property
    def url(self) -> str:
        """The base URL clients use (``http://host:port``)."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


@contextmanager
def start_api(
    token: str, *, host: str = "127.0.0.1", port: int = 0, log_requests: bool = False
) -> Iterator[FootfallServer]:
    """The API serving in a background thread (port 0: an ephemeral one) until the block ends."""
    server = FootfallServer(
        (host, port), token, data=FootfallData.generated(), log_requests=log_requests
    )
    thread = threading.Thread(target=server.serve_forever, name="footfall-api", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: an ephemeral one)")
    parser.add_argument(
        "--token-env", default=TOKEN_ENV, help="environment variable holding the bearer token"
    )
    args = parser.parse_args(argv)
    token = os.environ.get(args.token_env, "")
    if not token:
        print(
            f"api.py: set {args.token_env} to the bearer token clients must send", file=sys.stderr
        )
        return 2
    server = FootfallServer(
        (args.host, args.port), token, data=FootfallData.generated(), log_requests=True
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"footfall API on {server.url}{PATH} ({len(server.data.records)} records)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
