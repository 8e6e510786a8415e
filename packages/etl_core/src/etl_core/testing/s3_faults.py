"""An S3 that fails on cue: an HTTP proxy on 127.0.0.1 in front of moto's server.

Real S3 answers 503 SlowDown under load and 500 InternalError now and then, drops
connections mid-body, answers a CompleteMultipartUpload with 200 and an error in
the body, and is sometimes very slow. moto never does; this proxy makes it, on the
Nth request matching a method and key pattern, so a test can point
``ETL_S3_ENDPOINT_URL`` (or ``endpoint_url``) at :attr:`FaultyS3Proxy.url` and run
the real commands through a chosen fault::

    with s3_server() as moto_url, faulty_s3_proxy(moto_url) as proxy:
        proxy.inject(Fault("truncate", method="GET", key=r"landing/pos/"))
        ... run the command against proxy.url ...
        assert proxy.applied  # the fault did happen

Fault kinds (``kind``):

``error``
    answer ``status`` with an S3 error document carrying ``code``, without
    forwarding (503 SlowDown, 500 InternalError, 403 AccessDenied...).
``reset``
    close the connection with a TCP reset instead of answering; with
    ``forward=True`` the request reaches moto first (the work is done, the answer lost).
``truncate``
    forward, then send the headers (the full ``Content-Length``) and only half of
    the body, then reset: a GET that returns fewer bytes than it announced.
``error_in_200``
    answer 200 with an ``InternalError`` document in the body, as S3 may answer a
    CompleteMultipartUpload (or a copy) that failed after it began to answer.
``slow``
    wait ``delay`` seconds, then forward.

Each fault fires on the ``nth`` matching request and the ``times - 1`` matching
requests after it, then is spent. Every wait is bounded by ``delay``; the server
threads are daemons and the proxy stops with its block.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import unquote, urlsplit

__all__ = ["Fault", "FaultKind", "FaultyS3Proxy", "faulty_s3_proxy"]

FaultKind = Literal["error", "reset", "truncate", "error_in_200", "slow"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    }
)
_UPSTREAM_TIMEOUT = 30.0
IDLE_TIMEOUT = 60.0
"""Seconds a client connection may stay silent before the proxy closes it and its thread ends."""


@dataclass
class Fault:
    """One fault: which requests it hits and what it does to them.

    Args:
        kind: what happens (see the module docstring).
        method: the HTTP method to match (``GET``, ``PUT``, ``POST``, ``HEAD``...).
        key: a regular expression searched in the request's decoded path.
        query: a regular expression searched in the raw query string (``uploadId=``
            tells a part upload or a completion from a plain PUT/POST); ``None`` matches any.
        nth: the first matching request hit (1 = the first one).
        times: how many matching requests in a row are hit.
        status: the HTTP status of an ``error`` fault.
        code: the S3 error code of an ``error`` / ``error_in_200`` fault.
        delay: the seconds a ``slow`` fault waits.
        forward: a ``reset`` reaches moto before the connection is dropped.
    """

    kind: FaultKind
    method: str
    key: str = ""
    query: str | None = None
    nth: int = 1
    times: int = 1
    status: int = 503
    code: str = "SlowDown"
    delay: float = 0.0
    forward: bool = False
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def matches(self, method: str, path: str, query: str) -> bool:
        """Whether a request is one this fault counts."""
        if method != self.method.upper() or not re.search(self.key, path):
            return False
        return self.query is None or re.search(self.query, query) is not None

    def take(self) -> bool:
        """Count a matching request; True when this one is to be hit."""
        self.seen += 1
        if self.seen >= self.nth and self.fired < self.times:
            self.fired += 1
            return True
        return False


@dataclass(frozen=True)
class Applied:
    """A fault that fired: its kind and the request it hit."""

    kind: FaultKind
    method: str
    path: str


class FaultyS3Proxy:
    """The proxy's controls: inject faults, see which fired and every request that passed."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port
        self.url = ""
        self.applied: list[Applied] = []
        self.requests: list[tuple[str, str]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def inject(self, *faults: Fault) -> None:
        """Arm ``faults`` (in addition to any still armed)."""
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        """Disarm every fault and forget what fired and passed."""
        with self._lock:
            self._faults.clear()
            self.applied.clear()
            self.requests.clear()

    def pending(self) -> list[Fault]:
        """The armed faults that have not fired as often as asked."""
        with self._lock:
            return [fault for fault in self._faults if fault.fired < fault.times]

    def choose(self, method: str, path: str, query: str) -> Fault | None:
        """The fault hitting this request, if any (each armed fault counts it)."""
        with self._lock:
            self.requests.append((method, path))
            hit = None
            for fault in self._faults:
                if fault.matches(method, path, query) and fault.take() and hit is None:
                    hit = fault
            if hit is not None:
                self.applied.append(Applied(hit.kind, method, path))
            return hit


@contextmanager
def faulty_s3_proxy(
    upstream: str, *, idle_timeout: float = IDLE_TIMEOUT
) -> Iterator[FaultyS3Proxy]:
    """Run a fault-injecting proxy to ``upstream`` (moto's URL) on 127.0.0.1, a free port.

    A client connection silent for ``idle_timeout`` seconds (a pooled keep-alive one
    never closed) is closed, so no handler thread waits for a request forever.
    """
    proxy = FaultyS3Proxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(proxy, idle_timeout))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="faulty-s3-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)


def _handler_for(proxy: FaultyS3Proxy, idle_timeout: float) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        controls = proxy
        timeout = idle_timeout  # StreamRequestHandler: the socket's timeout

    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    """Forwards one request to moto, or fails it as the chosen fault says."""

    protocol_version = "HTTP/1.1"
    controls: FaultyS3Proxy

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: one line per request would drown a test's output."""

    def do_GET(self) -> None:
        self._serve()

    def finish(self) -> None:
        """Close quietly: after a reset the socket is already gone."""
        with contextlib.suppress(OSError):
            super().finish()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            self._serve_one()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a slow answer): as S3 sees it

    def _serve_one(self) -> None:
        body = self._read_body()
        split = urlsplit(self.path)
        fault = self.controls.choose(self.command, unquote(split.path), split.query)
        if fault is None:
            self._relay(*self._forward(body))
        elif fault.kind == "slow":
            time.sleep(fault.delay)
            self._relay(*self._forward(body))
        elif fault.kind == "error":
            self._answer(fault.status, _error_document(fault.code, split.path))
        elif fault.kind == "error_in_200":
            self._answer(200, _error_document(fault.code, split.path))
        elif fault.kind == "reset":
            if fault.forward:
                self._forward(body)
            self._reset()
        else:  # truncate
            status, headers, data = self._forward(body)
            self._relay(status, headers, data[: len(data) // 2], length=len(data))
            self._reset()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = bytearray()
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            self.controls.upstream_host, self.controls.upstream_port, timeout=_UPSTREAM_TIMEOUT
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if body or self.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            connection.close()

    def _relay(
        self,
        status: int,
        headers: list[tuple[str, str]],
        data: bytes,
        *,
        length: int | None = None,
    ) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        if self.command == "HEAD":  # no body: the length is the object's, as moto said
            length = int({k.lower(): v for k, v in headers}.get("content-length", 0))
        self.send_header("Content-Length", str(len(data) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def _answer(self, status: int, document: bytes) -> None:
        self._relay(status, [("Content-Type", "application/xml")], document)

    def _reset(self) -> None:
        """Drop the connection with a TCP reset (SO_LINGER 0), as a failing peer does."""
        try:
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()


def _error_document(code: str, resource: str) -> bytes:
    """An S3 error body, as S3 sends it."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>injected {code}</Message>"
        f"<Resource>{resource}</Resource><RequestId>FAULTY0000000000</RequestId></Error>"
    ).encode()
