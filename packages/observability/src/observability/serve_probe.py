"""Whether the status service answers: ``serve-ping``, the image's health check.

The check used to be a Python one-liner reading ``ETL_SERVE_PORT`` alone, so a port or
host set in ``etl.toml`` (or by ``ETL_SETTINGS_FILE``) moved ``serve`` and left the check
asking 9108: a container always "unhealthy". The probe takes the address from the same
settings ``serve`` reads (flag > ``ETL_*`` > settings file > default) and asks it with the
standard library alone, so a check every few seconds starts no HTTP stack.
"""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass

from observability.errors import ServeProbeError
from observability.settings import ObservabilitySettings

__all__ = ["ServeAnswer", "probe_address", "probe_serve"]

LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}
"""A wildcard bind host is asked on the loopback address of its family: ``serve`` on
every interface answers there (``0.0.0.0`` is no address to connect to)."""


@dataclass(frozen=True)
class ServeAnswer:
    """What ``serve`` answered: the URL asked, its status and the first line of its body."""

    url: str
    status: int
    said: str


def probe_address(settings: ObservabilitySettings) -> tuple[str, int]:
    """The host and port to ask for the ``serve`` these settings start.

    Raises:
        ServeProbeError: ``serve_port`` is 0: ``serve`` takes any free port, the probe
            cannot know which.
    """
    if settings.serve_port == 0:
        raise ServeProbeError(
            "serve_port is 0 (serve listens on any free port): no port to ask; "
            "set serve_port to the port serve listens on"
        )
    host = settings.serve_host.removeprefix("[").removesuffix("]")
    return LOOPBACK.get(host, host), settings.serve_port


def probe_serve(host: str, port: int, path: str, *, timeout: float) -> ServeAnswer:
    """GET ``path`` of ``serve`` at ``host:port``: its answer when it is ``200``.

    ``timeout`` bounds connecting, and what is left of it each send and read after (the
    answer is one short body): an address that takes no connection (a firewall dropping
    it) or a server that never answers fails in ``timeout``, within the health check's
    own limit, not in the system's minutes.

    Raises:
        ServeProbeError: nothing answered (the reason: refused, timed out, unresolvable
            host), or the answer was not ``200`` (its status and first line).
    """
    url = f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"
    deadline = time.monotonic() + timeout
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.connect()
        assert connection.sock is not None  # connected, or raised
        connection.sock.settimeout(max(deadline - time.monotonic(), 0.001))  # what is left
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        said = _first_line(response.read(4096))
    except TimeoutError:
        raise ServeProbeError(f"{url}: no answer within {timeout:g}s") from None
    except ConnectionRefusedError:
        raise ServeProbeError(f"{url}: connection refused (nothing listens there)") from None
    except socket.gaierror as exc:
        raise ServeProbeError(f"{url}: unknown host {host!r} ({exc.strerror})") from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise ServeProbeError(f"{url}: {reason}") from None
    finally:
        connection.close()
    if response.status != 200:
        raise ServeProbeError(f"{url}: answered {response.status} {said}".rstrip())
    return ServeAnswer(url, response.status, said)


def _first_line(body: bytes) -> str:
    """The first line of a body, as text (what ``/readyz`` says is wrong)."""
    text = body.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0][:200] if text else ""
