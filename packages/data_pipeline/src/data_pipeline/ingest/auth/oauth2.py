"""``type = "oauth2"``: OAuth2 client credentials (RFC 6749 section 4.4).

The token is fetched on first use and again ``refresh_margin`` before it expires
(``expires_in``; at half its life when that comes first); a 401 fetches a new one
once. A refusal is said with the endpoint's RFC 6749 ``error`` code and
``error_description`` (``invalid_scope``: fix the scope). The client authenticates to
the token endpoint with HTTP Basic (the method every server must support). Threads of
one source share the token; only one of them fetches it. The token request is bounded as
a page request is: its answer must arrive whole within the source's ``timeout`` (a token
endpoint sending a byte now and then would hold the run for ever) and be no larger than
:data:`MAX_TOKEN_BYTES`.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Callable

import httpx

from data_pipeline.errors import ApiAuthError, ApiUnavailableError
from data_pipeline.ingest.auth.base import Authenticator
from data_pipeline.ingest.bodies import compressed_twice, read_bounded
from data_pipeline.ingest.deadline import client_keeping_deadline, request_deadline
from etl_core.contracts import Auth
from etl_core.redaction import mask_values, remember_secret

__all__ = ["OAuth2ClientCredentials"]

_DEFAULT_LIFETIME = 3600.0  # seconds, when the token response has no expires_in

MAX_TOKEN_BYTES = 1024 * 1024
"""The largest token response read: a token is a few kilobytes at most (a JWT included)."""


_ERROR_CHARS = 200
"""The most of a token endpoint's ``error`` or ``error_description`` quoted in an error."""


def _cut(text: str) -> str:
    """``text`` on one line, without control characters, cut to :data:`_ERROR_CHARS`."""
    shown = "".join(c if c.isprintable() else " " for c in text.strip())
    return shown if len(shown) <= _ERROR_CHARS else shown[:_ERROR_CHARS] + "..."


def _refusal(status: int) -> bool:
    """Whether a token endpoint's ``status`` refuses for good (a 4xx but 429): its body,
    quoted at most, never turns it into an outage retried."""
    return 400 <= status < 500 and status != 429


class OAuth2ClientCredentials(Authenticator):
    """A bearer token from ``token_url`` for ``client_id`` / ``client_secret`` (and ``scope``)."""

    def __init__(
        self,
        source: str,
        config: Auth,
        *,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(source, config, timeout=timeout)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._http = client_keeping_deadline(transport, timeout=timeout)

    def apply(self, request: httpx.Request) -> None:
        """Set ``Authorization: Bearer`` to a token valid for at least ``refresh_margin``."""
        request.headers["Authorization"] = f"Bearer {self._current()}"

    def refresh(self) -> bool:
        """Drop the token the API refused, so the retry fetches a new one."""
        with self._lock:
            self._token = None
        return True

    def sent_secrets(self) -> list[str]:
        """The client secret, and the access token fetched with it (what the API is sent)."""
        with self._lock:
            token = self._token
        return [*super().sent_secrets(), *([token] if token else [])]

    def close(self) -> None:
        """Close the token endpoint's connection."""
        self._http.close()

    def _current(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token, lifetime = self._fetch()
                remember_secret(self._token, fleeting=True)  # masked in every log line now
                # a token living less than twice the margin is renewed at half its life, not
                # at once: else every request would fetch a new one
                margin = min(self.config.refresh_margin.total_seconds(), lifetime / 2)
                self._renew_at = self._clock() + lifetime - margin
            return self._token

    def _fetch(self) -> tuple[str, float]:
        config = self.config
        assert config.token_url  # the source's validation requires all three
        assert config.client_id
        assert config.client_secret
        form = {"grant_type": "client_credentials"}
        if config.scope:
            form["scope"] = config.scope
        url = config.token_url
        started = time.monotonic()
        credentials = (config.client_id, config.client_secret.reveal())
        try:
            with (
                request_deadline(self.timeout),
                self._http.stream("POST", url, data=form, auth=credentials) as response,
            ):
                codings = compressed_twice(response)
                if codings is not None:  # its inner layer would be decoded whole
                    raise self._refused(
                        f"the token endpoint {url} sent its answer compressed twice "
                        f"(Content-Encoding {codings!r}); refused unread, as a layer inside a "
                        "layer is decompressed whole, past any size limit: expected one "
                        "compression at most",
                        response.status_code,
                    )
                body = read_bounded(
                    response, started=started, seconds=self.timeout, most=MAX_TOKEN_BYTES
                )
        except httpx.TimeoutException:
            raise self._unavailable(
                f"the token endpoint {url} did not answer whole within {self.timeout:g}s", None
            ) from None
        except httpx.DecodingError as exc:
            if not _refusal(response.status_code):  # retried: a proxy may have mangled it
                codings = response.headers.get("content-encoding", "")[:200]
                raise self._unavailable(
                    f"the token endpoint {url} sent a body its Content-Encoding {codings!r} "
                    f"does not decode ({exc})",
                    response.status_code,
                ) from None
            body = b""  # a refusal stands (a gateway's error page labelled gzip): not quoted
        except httpx.TransportError as exc:
            raise self._unavailable(
                f"the token endpoint {url} is unreachable: {exc}", None
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise self._unavailable(
                f"the token endpoint {url} answered {response.status_code}", response.status_code
            )
        if response.has_redirect_location:
            raise self._redirected(response)
        if response.status_code != 200:
            raise self._refused(
                f"the token endpoint {url} refused the client credentials of client "
                f"{config.client_id!r} with HTTP {response.status_code}{self._error_said(body)}",
                response.status_code,
            )
        if len(body) > MAX_TOKEN_BYTES:
            raise self._refused(
                f"the token endpoint {url} answered more than {MAX_TOKEN_BYTES:,} bytes: not a "
                "token response (check token_url)",
                response.status_code,
            )
        return self._token_of(response, body)

    def _error_said(self, body: bytes) -> str:
        """The RFC 6749 (section 5.2) ``error`` code of a refusal, and its
        ``error_description``, as `` (error invalid_scope: ...)``: ``invalid_scope`` or
        ``unauthorized_client`` is mended elsewhere than the credentials. Each is cut to
        :data:`_ERROR_CHARS` characters, control characters dropped and the client secret
        masked (a server may echo it); empty when the body says no such code."""
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than json reads
            return ""
        code = document.get("error") if isinstance(document, dict) else None
        if not isinstance(code, str) or not code.strip():
            return ""
        said = f"error {_cut(self._masked(code))}"
        description = document.get("error_description")
        if isinstance(description, str) and description.strip():
            said += f": {_cut(self._masked(description))}"
        return f" ({said})"

    def _masked(self, text: str) -> str:
        """``text`` with the client secret, and the HTTP Basic pair that carried it (a server
        may echo its ``Authorization`` header), masked; masked whole before any cut, so no
        start of a secret is left at the end of a quote."""
        assert self.config.client_id  # the source's validation requires both
        assert self.config.client_secret
        revealed = self.config.client_secret.reveal()
        pair = f"{self.config.client_id}:{revealed}".encode()
        sent = [revealed, base64.b64encode(pair).decode("ascii")]
        return mask_values(text, sent)

    def _redirected(self, response: httpx.Response) -> ApiAuthError:
        """The error of a token endpoint answering with a redirect: not followed (the client
        secret would go with it, wherever it leads), and not a refusal of the credentials."""
        target = response.request.url.join(response.headers["location"])
        shown = f"{target.scheme}://{target.netloc.decode('ascii', 'replace')}{target.path}"
        return self._refused(
            f"the token endpoint {self.config.token_url} redirects (HTTP "
            f"{response.status_code}) to {shown}; not followed, as the client secret would go "
            "with it: set token_url to where the tokens are issued",
            response.status_code,
        )

    def _token_of(self, response: httpx.Response, body: bytes) -> tuple[str, float]:
        try:
            document = json.loads(body)
            token = document["access_token"]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            token = None
        if not isinstance(token, str) or not token:
            raise self._refused(
                f"the token endpoint {self.config.token_url} answered without an access_token",
                response.status_code,
            )
        return token, self._lifetime_of(document.get("expires_in"), response.status_code)

    def _lifetime_of(self, expires_in: object, status: int) -> float:
        """The token's lifetime in seconds: ``expires_in`` as a positive number (a numeric
        string too), the default when absent or null.

        Raises:
            ApiAuthError: ``expires_in`` is anything else, naming the field and its value.
        """
        if expires_in is None:
            return _DEFAULT_LIFETIME
        lifetime = None
        if isinstance(expires_in, int | float | str) and not isinstance(expires_in, bool):
            try:
                lifetime = float(expires_in)
            except ValueError:
                lifetime = None
        if lifetime is None or not math.isfinite(lifetime) or lifetime <= 0:
            raise self._refused(
                f"the token endpoint {self.config.token_url} answered expires_in = "
                f"{json.dumps(expires_in)[:100]}: expected a positive number of seconds "
                "(the token's lifetime), or no expires_in at all",
                status,
            )
        return lifetime

    def _refused(self, message: str, status: int) -> ApiAuthError:
        """An error of the token endpoint's answer that retrying will not mend (credentials,
        a redirect, a body that is no token): about the source and its ``token_url``."""
        return ApiAuthError(
            message, source=self.source, url=str(self.config.token_url), status=status
        )

    def _unavailable(self, message: str, status: int | None) -> ApiUnavailableError:
        return ApiUnavailableError(
            message, source=self.source, url=str(self.config.token_url), status=status
        )
