"""The status service's HTTP server: uvicorn's, announcing the address it really listens on.

``serve --port 0`` (``serve_port = 0``: any free port) used to log ``serving … on
http://127.0.0.1:0``, the port asked for, so the one line an operator reads named no
address they could open; the port is known only once the socket is bound.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn


class AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls ``announce(port)`` once it listens (never when it could
    not start), with the port bound: the system's choice when 0 was asked for."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[int], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._announce(bound_port(self))


def bound_port(server: uvicorn.Server) -> int:
    """The port ``server`` listens on: its first socket's, else the configured one."""
    for listening in server.servers:
        for bound in listening.sockets:
            return int(bound.getsockname()[1])
    return int(server.config.port)


def served_url(host: str, port: int) -> str:
    """The URL a browser opens for ``host:port``: an IPv6 address in brackets
    (``http://[::1]:9108``), as uvicorn writes it; ``http://:::9108`` opens nothing."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
