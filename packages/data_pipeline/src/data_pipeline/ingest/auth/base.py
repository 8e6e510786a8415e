"""The authenticator interface: an ``httpx.Auth`` that signs each request of one source.

Each kind of ``[auth]`` is one module with one :class:`Authenticator` subclass;
:func:`data_pipeline.ingest.auth.authenticator_for` picks it by ``type``. Secrets
are revealed on every request (a rotated file or variable is picked up) and never
kept in a URL that is logged or archived: query parameters that carry one are named
in :attr:`Authenticator.hidden_params`, which the client strips from every URL it
records.
"""

from __future__ import annotations

import abc
from collections.abc import Generator

import httpx

from etl_core.contracts import Auth
from etl_core.errors import EtlError

__all__ = ["Authenticator"]


class Authenticator(httpx.Auth, abc.ABC):
    """Signs requests; a 401 is answered once by :meth:`refresh` and a second attempt.

    Args:
        source: The source's name, for errors.
        config: Its ``[auth]`` section.
        timeout: Seconds for a request of the authenticator's own (a token endpoint).
    """

    hidden_params: tuple[str, ...] = ()
    """Query parameters holding a secret: removed from every URL that is recorded."""

    def __init__(self, source: str, config: Auth, *, timeout: float) -> None:
        self.source = source
        self.config = config
        self.timeout = timeout

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign ``request``; after a 401, refresh the credentials once and send it again."""
        self.apply(request)
        response = yield request
        if response.status_code == httpx.codes.UNAUTHORIZED and self.refresh():
            _set_aside(response)
            self.apply(request)
            yield request

    @abc.abstractmethod
    def apply(self, request: httpx.Request) -> None:
        """Put the credentials on ``request`` (a header or a query parameter)."""

    def sent_secrets(self) -> list[str]:
        """Every credential value as it goes to the API (a secret, its encoded forms), so an
        error quoting an API that echoes the request can mask them; unresolvable ones left
        out (they were never sent)."""
        values = []
        for name in ("token", "key", "password", "client_secret"):
            secret = getattr(self.config, name)
            try:
                value = secret.reveal() if secret is not None else ""
            except EtlError:
                continue
            if value:
                values.append(value)
        return values

    def refresh(self) -> bool:
        """Renew the credentials after a 401; ``True`` when a second attempt makes sense."""
        return False

    def close(self) -> None:
        """Release what the authenticator holds."""


def _set_aside(response: httpx.Response) -> None:
    """Close the body of a ``response`` answered with a renewed attempt, unread: httpx reads
    such a response whole, with no size limit and decoding every ``Content-Encoding`` layer
    (a 401 of a few hundred bytes compressed twice would be gigabytes, one that does not
    decode a raw ``DecodingError``); nothing quotes it, as the renewed attempt's answer is
    the one said."""
    unread = response.stream
    response.stream = httpx.ByteStream(b"")
    response.headers.pop("content-encoding", None)  # the empty body is not compressed
    if isinstance(unread, httpx.SyncByteStream):
        unread.close()  # the connection goes back to the pool (or is dropped)
