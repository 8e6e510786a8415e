"""The HTTP client of one API source: auth, rate limit, retries, metrics, safe URLs.

Every request waits for the source's token bucket, is signed by its authenticator
and retried through :mod:`etl_core.retry` on timeouts, connection errors, 408, 429
and 5xx with exponential backoff and full jitter, honouring ``Retry-After`` (seconds
or an HTTP date); ``max_retry_wait`` is the policy's ``max_delay``, the longest wait
between two attempts, backoff or ``Retry-After`` alike. Any other 4xx fails at once with the
URL (secret query parameters removed) and the status. A body is read within the source's
``timeout`` from the request's start, and up to its ``max_page_bytes`` (decompressed: a
gzip bomb stops there too); a larger one fails the endpoint, not retried, naming the URL
and the limit. A refusal's body is read only as far as its error quotes. Bodies are
returned as bytes, exactly as received, for the raw archive, but for the source's
credentials: an API echoing them (a next link carrying ``api_key=…``) has them masked as
``***`` in the body and the headers before anything reads them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import httpx

from data_pipeline.errors import (
    ApiAuthError,
    ApiError,
    ApiRequestError,
    ApiResponseError,
    ApiUnavailableError,
    IngestStoppedError,
)
from data_pipeline.ingest import metrics
from data_pipeline.ingest.auth import Authenticator, authenticator_for
from data_pipeline.ingest.bodies import StillArriving, compressed_twice, read_bounded
from data_pipeline.ingest.deadline import client_keeping_deadline, request_deadline
from data_pipeline.ingest.ratelimit import TokenBucket
from etl_core.contracts import Source
from etl_core.redaction import REDACTED, mask_query_params, mask_values, secret_forms
from etl_core.retry import RetryPolicy, RetryState, parse_retry_after
from etl_core.threads import SIGNAL_CHECK
from etl_core.units import format_byte_size

__all__ = ["MIN_MASKED_CHARS", "RECORDED_HEADERS", "ApiClient", "Response"]

logger = logging.getLogger(__name__)

MIN_MASKED_CHARS = 8
"""A credential this long or longer is masked wherever a response body or header quotes
it; a shorter one only as the value of its query parameter."""

_Refusal = TypeVar("_Refusal", bound=ApiError)
"""The kind of error a redirect is refused with."""

_MASK = REDACTED.encode()
_PARAM_VALUE = re.compile(rb"[^&#;\s\"'<>\\]*")
"""A query parameter's value in a URL quoted by a body or a header."""
_JSON_AMPERSAND = b"\\u0026"
"""``&`` as Go's encoding/json writes it in every string."""

RECORDED_HEADERS = (
    "content-type",
    "content-length",
    "date",
    "etag",
    "last-modified",
    "link",
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)
"""Response headers kept in the raw archive's manifest (never request headers: they carry
the credentials)."""

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

_SAID_CHARS = 300
"""How much of a refusing response's body its error quotes."""

_TWICE_REFUSED = (
    "refused unread, as a layer inside a layer is decompressed whole, past any size limit "
    "(a few hundred bytes can be gigabytes): expected one compression at most"
)

_READ_OF_A_REFUSAL = 2048
"""How many bytes of a refusing response's body are read for the quote."""
MAX_REDIRECT_BODY = 16 * 1024
"""The most bytes (as sent) of a followed redirect's body, which httpx reads whole before
following it: a redirect page is a few hundred bytes; one sending on is refused."""


@dataclass(frozen=True)
class Response:
    """A successful response.

    Attributes:
        url: The request URL without secret query parameters.
        status: The HTTP status.
        headers: The response headers (names in lower case).
        body: The body, byte for byte but for the credentials masked in it (``masked``).
        fetched_at: When the response arrived (UTC).
        seconds: How long the request took.
        masked: How many of the source's credentials were masked in the body and headers
            (an API echoing its request: ``ApiClient._scrubbed``); they are ``***`` there,
            so nothing downstream (the raw archive, the state's next link, the records,
            the dead letters) holds one.
    """

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    fetched_at: datetime
    seconds: float
    masked: int = 0

    @property
    def recorded_headers(self) -> dict[str, str]:
        """The headers the manifest keeps (:data:`RECORDED_HEADERS`)."""
        return {name: self.headers[name] for name in RECORDED_HEADERS if name in self.headers}


class ApiClient:
    """Requests of one source, shared by its endpoints and threads; close it when done.

    Args:
        source: The source configuration.
        bucket: Its rate limit (one per source, shared).
        transport: An httpx transport (tests); the network when ``None``.
        sleep: How retries wait (tests).
        observe: Told ``retries=1`` and ``wait_seconds=…`` as they happen (progress).
    """

    def __init__(
        self,
        source: Source,
        *,
        bucket: TokenBucket | None = None,
        authenticator: Authenticator | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        observe: Callable[..., None] | None = None,
    ) -> None:
        self.source = source
        self.auth = authenticator or authenticator_for(source)
        limit = source.rate_limit
        self.bucket = bucket or TokenBucket(limit.requests_per_second, limit.burst)
        self._http = client_keeping_deadline(  # the timeout bounds the whole request
            transport,  # none: httpx's, with the environment's proxies
            base_url=source.base_url.rstrip("/"),
            headers=dict(source.headers),
            timeout=source.timeout.total_seconds(),
            follow_redirects=True,
            auth=self.auth,
            event_hooks={
                "request": [self._sign_a_redirect],
                "response": [self._refuse_a_redirect_elsewhere],
            },
        )
        self._sleep = sleep
        self._observe = observe
        self._said_masked: set[str] = set()  # endpoints told of a credential in a body

    def policy(self, endpoint: str, stopped: Callable[[], bool] | None = None) -> RetryPolicy:
        """The retry policy of ``endpoint``'s requests (counts retries and their waits); with
        ``stopped``, its back-off ends as soon as that says so (:meth:`get`)."""
        labels = {"source": self.source.source, "endpoint": endpoint}

        def count(state: RetryState) -> None:
            metrics.retries.labels(**labels).inc()
            waits = getattr(state.error, "retry_after", None) is not None  # the server said wait
            if waits:
                metrics.rate_limit_wait.labels(source=self.source.source).inc(state.delay)
            if self._observe is not None:
                self._observe(retries=1, wait_seconds=state.delay if waits else 0.0)

        return RetryPolicy(
            attempts=self.source.max_attempts,
            initial_delay=0.5,
            max_delay=self.source.max_retry_wait.total_seconds(),  # caps Retry-After too
            retry_on=(ApiUnavailableError,),
            before_sleep=count,
            sleep=self._sleep if stopped is None else partial(self._back_off, stopped, endpoint),
        )

    def get(
        self,
        endpoint: str,
        url: str,
        params: Mapping[str, str],
        *,
        stopped: Callable[[], bool] | None = None,
    ) -> Response:
        """GET ``url`` (a path under the base URL, or absolute) with ``params``, retried.

        ``stopped`` says whether the request is still wanted (the run interrupted, the page
        requested ahead dropped): a retry's back-off then ends within
        :data:`~etl_core.threads.SIGNAL_CHECK`, and no attempt follows.

        Raises:
            IngestStoppedError: ``stopped`` said so during a retry's back-off.
            ApiUnavailableError: still failing (timeout, connection, 429, 5xx) after
                ``max_attempts``.
            ApiRequestError: another 4xx status, or a request HTTP cannot carry (a
                secret with a line break or a space at its edge).
            ApiAuthError: a 401 or 403 after the credentials were renewed.
        """
        return self.policy(endpoint, stopped).call(self._once, endpoint, url, params)

    def _back_off(self, stopped: Callable[[], bool], endpoint: str, delay: float) -> None:
        """A retry's wait, ended early once ``stopped()``: then the request gives up.

        Raises:
            IngestStoppedError: ``stopped()`` was true during the wait, or at its end.
        """
        if self._sleep is time.sleep:  # in slices: another thread may say stop
            end = time.monotonic() + delay
            while not stopped() and (left := end - time.monotonic()) > 0:
                time.sleep(min(left, SIGNAL_CHECK))
        else:  # the caller's own sleep (tests): as is
            self._sleep(delay)
        if stopped():
            raise IngestStoppedError(
                f"{self.source.source}/{endpoint}: a request's retry back-off was stopped "
                "(the run was interrupted); the next run resumes after the last landed chunk"
            )

    def _unsendable(
        self, endpoint: str, url: str, params: Mapping[str, str], exc: Exception
    ) -> ApiResponseError:
        """The error of a request httpx cannot build (not retried: it never could be): its
        URL, secrets removed, cut to its start and said with its length."""
        whole = url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        if "://" not in whole:
            whole = self.source.base_url.rstrip("/") + "/" + whole.lstrip("/")
        shown = self._masked(mask_query_params(whole[:200], self.auth.hidden_params))
        return ApiResponseError(
            f"GET {shown}... ({len(whole):,} characters): not a URL that can be sent ({exc}); "
            "expected a next-page cursor or link a request can carry (check the pagination "
            "keys of the endpoint, or the API)",
            source=self.source.source,
            endpoint=endpoint,
            url=shown,
        )

    def safe_url(self, url: httpx.URL | str) -> str:
        """``url`` without the query parameters that carry secrets."""
        clean = httpx.URL(str(url))
        for name in self.auth.hidden_params:
            clean = clean.copy_remove_param(name)
        return str(clean)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()
        self.auth.close()

    def _once(self, endpoint: str, url: str, params: Mapping[str, str]) -> Response:
        waited = self.bucket.acquire()
        if waited:
            metrics.rate_limit_wait.labels(source=self.source.source).inc(waited)
            if self._observe is not None:
                self._observe(wait_seconds=waited)
        # params=None keeps a next link's own query; an empty mapping would erase it
        try:
            request = self._http.build_request(
                "GET", url, params=dict(params) or None, extensions={"endpoint": endpoint}
            )
        except httpx.InvalidURL as exc:  # a cursor megabytes long, a link of bad characters
            raise self._unsendable(endpoint, url, params, exc) from None
        shown = self.safe_url(request.url)
        labels = {"source": self.source.source, "endpoint": endpoint}
        started = time.monotonic()
        try:
            with request_deadline(self.source.timeout.total_seconds()):
                response = self._http.send(request, stream=True)
                try:
                    body = self._read_within(response, started, endpoint)
                finally:
                    response.close()
        except httpx.TimeoutException as exc:
            metrics.requests.labels(**labels, status="error").inc()
            timeout = self.source.timeout.total_seconds()
            reason = (
                f"the body was still arriving after {timeout:g}s (the source's timeout "
                "bounds the whole request: raise it for pages this large or this slow)"
                if isinstance(exc, StillArriving)
                else f"no answer within {timeout:g}s"
            )
            raise self._unavailable(endpoint, shown, reason) from None
        except httpx.LocalProtocolError:
            # h11 refuses a header value with a line break or a space at its edge, quoting
            # the value: a secret's, most likely. Said without it, and not retried.
            metrics.requests.labels(**labels, status="error").inc()
            raise ApiRequestError(
                f"GET {shown}: the request could not be sent: a header holds a line break, or "
                "a space at its start or end, which HTTP does not allow (check the secrets of "
                "the source's [auth] and its headers)",
                source=self.source.source,
                endpoint=endpoint,
                url=shown,
            ) from None
        except httpx.TransportError as exc:
            metrics.requests.labels(**labels, status="error").inc()
            reason = self._masked(f"{type(exc).__name__}: {exc}")
            raise self._unavailable(endpoint, shown, f"connection failed ({reason})") from None
        except httpx.TooManyRedirects:
            metrics.requests.labels(**labels, status="error").inc()
            raise ApiRequestError(
                f"GET {shown}: too many redirects (more than {self._http.max_redirects}); "
                "the API sends it round in a loop",
                source=self.source.source,
                endpoint=endpoint,
                url=shown,
            ) from None
        seconds = time.monotonic() - started
        metrics.request_seconds.labels(**labels).observe(seconds)
        metrics.requests.labels(**labels, status=str(response.status_code)).inc()
        shown = self.safe_url(response.request.url)
        self._check(endpoint, shown, response, body)
        metrics.bytes_received.labels(**labels).inc(len(body))
        forms = self._echoed_forms()
        body, in_links, elsewhere = self._scrubbed(body, forms)
        masked = in_links + elsewhere
        if elsewhere:
            self._say_masked(endpoint, shown, elsewhere)
        headers = {}
        for name, value in response.headers.items():
            clean, *counts = self._scrubbed(value.encode("utf-8", "surrogateescape"), forms)
            count = sum(counts)
            headers[name.lower()] = clean.decode("utf-8", "surrogateescape") if count else value
            masked += count
        return Response(
            url=shown,
            status=response.status_code,
            headers=headers,
            body=body,
            fetched_at=datetime.now(UTC),
            seconds=seconds,
            masked=masked,
        )

    def _read_within(self, response: httpx.Response, started: float, endpoint: str) -> bytes:
        """The body of ``response``, read before the source's ``timeout`` runs out since the
        request started (httpx's timeouts bound each read, so a server sending a byte now
        and then would hold the run for as long as it kept sending), and no larger than its
        ``max_page_bytes`` once decompressed (a runaway page or a gzip bomb would exhaust the
        memory). A refusal's body (not 2xx) is read only as far as its error quotes.

        Raises:
            StillArriving: the body was still arriving when the time ran out.
            ApiResponseError: the body is larger than ``max_page_bytes``.
        """
        self._refuse_compressed_twice(response, endpoint)
        refused = not 200 <= response.status_code < 300
        most = _READ_OF_A_REFUSAL if refused else self.source.max_page_bytes
        if not refused:
            self._refuse_a_declared_size(response, endpoint)
        seconds = self.source.timeout.total_seconds()
        try:
            body = read_bounded(response, started=started, seconds=seconds, most=most)
        except httpx.TimeoutException:  # the deadline passed (or the server went silent)
            raise StillArriving("the body was still arriving", request=response.request) from None
        except httpx.DecodingError as exc:  # a corrupt or cut gzip, a body not gzip at all
            if refused:  # a gateway's error page labelled gzip: its status says it, unquoted
                return b""
            metrics.requests.labels(
                source=self.source.source, endpoint=endpoint, status="error"
            ).inc()
            codings = response.headers.get("content-encoding", "")[:200]
            raise self._unavailable(
                endpoint,
                self.safe_url(response.request.url),
                f"the body is not what its Content-Encoding {codings!r} says ({exc}); expected "
                "a body encoded as its headers say (retried: a proxy may have cut it)",
                status=response.status_code,
            ) from None
        if len(body) > most and not refused:
            raise self._too_large(response, endpoint, f"more than {len(body):,} bytes arrived")
        return body

    def _refuse_a_declared_size(self, response: httpx.Response, endpoint: str) -> None:
        """Refuse a body whose ``Content-Length`` is above ``max_page_bytes`` before reading it.

        Raises:
            ApiResponseError: naming the URL, the declared size and the limit.
        """
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.source.max_page_bytes:
            raise self._too_large(response, endpoint, f"its Content-Length is {int(declared):,}")

    def _refuse_compressed_twice(self, response: httpx.Response, endpoint: str) -> None:
        """Refuse, unread, a body compressed in more than one layer (:func:`compressed_twice`):
        httpx decodes the inner layer of each network read whole, so a few hundred bytes
        would be gigabytes in memory before ``max_page_bytes`` is checked.

        Raises:
            ApiResponseError: naming the URL and the ``Content-Encoding`` (not retried).
        """
        codings = compressed_twice(response)
        if codings is None:
            return
        shown = self.safe_url(response.request.url)
        raise ApiResponseError(
            f"GET {shown}: the body is sent compressed twice (Content-Encoding {codings!r}); "
            f"{_TWICE_REFUSED}",
            source=self.source.source,
            endpoint=endpoint,
            url=shown,
            status=response.status_code,
        )

    def _too_large(self, response: httpx.Response, endpoint: str, said: str) -> ApiResponseError:
        """The error of a body above ``max_page_bytes`` (not retried: it would be again)."""
        shown = self.safe_url(response.request.url)
        limit = self.source.max_page_bytes
        return ApiResponseError(
            f"GET {shown}: the body is larger than the source's max_page_bytes "
            f"({format_byte_size(limit)}, {limit:,} bytes; decompressed): {said}. Refused, "
            "so a runaway page cannot exhaust the memory: ask for smaller pages (page_size) or "
            "raise max_page_bytes",
            source=self.source.source,
            endpoint=endpoint,
            url=shown,
            status=response.status_code,
        )

    def _sign_a_redirect(self, request: httpx.Request) -> None:
        """Give a followed redirect the query key its first request had: httpx keeps the
        headers (an ``Authorization``, an API key header) on the same origin, but a key in
        the query is in the URL the server's ``Location`` replaces, so the redirected page
        would answer 401. Only redirects on the base URL's scheme and host are followed
        (:meth:`_refuse_a_redirect_elsewhere`), so the key stays where it was sent."""
        if any(name not in request.url.params for name in self.auth.hidden_params):
            self.auth.apply(request)

    def _refuse_a_redirect_elsewhere(self, response: httpx.Response) -> None:
        """Refuse a redirect off the base URL's scheme and host before it is followed: the
        credentials (an API key header, a query key) would go with it, as with next links.

        Raises:
            ApiRequestError: naming the redirected URL and where it leads.
        """
        if not response.has_redirect_location:
            return
        target = response.request.url.join(response.headers["location"])
        home = httpx.URL(self.source.base_url)
        if (target.scheme, target.host, target.port) == (home.scheme, home.host, home.port):
            codings = compressed_twice(response)
            if codings is not None:  # httpx reads it whole, the inner layer in one piece
                raise self._redirect_error(
                    ApiResponseError,
                    response,
                    f": the body is sent compressed twice (Content-Encoding {codings!r}); "
                    f"{_TWICE_REFUSED}",
                )
            too_large = partial(self._redirect_too_large, response)
            response.stream = _Capped(response.stream, MAX_REDIRECT_BODY, too_large)
            return
        elsewhere = f"{target.scheme}://{target.netloc.decode('ascii', 'replace')}"
        raise self._redirect_error(
            ApiRequestError,
            response,
            f" redirects to {elsewhere}, not to the source's "
            f"{home.scheme}://{home.netloc.decode('ascii', 'replace')}; refused (credentials "
            "would go with it: point base_url at where the API now answers)",
        )

    def _redirect_too_large(self, response: httpx.Response) -> ApiResponseError:
        """The error of a followed redirect whose body goes on past :data:`MAX_REDIRECT_BODY`
        (httpx reads it whole: a server sending without end would exhaust the memory)."""
        return self._redirect_error(
            ApiResponseError,
            response,
            f": its redirect (HTTP {response.status_code}) came with a body of more "
            f"than {MAX_REDIRECT_BODY:,} bytes; refused, as it is read whole before the "
            "redirect is followed",
        )

    def _redirect_error(
        self, kind: type[_Refusal], response: httpx.Response, said: str
    ) -> _Refusal:
        """A ``kind`` error of the redirect ``response``: "GET <its request's URL, secrets
        removed>" then ``said``, naming the source, the endpoint and the status."""
        shown = self.safe_url(response.request.url)
        return kind(
            f"GET {shown}{said}",
            source=self.source.source,
            endpoint=str(response.request.extensions.get("endpoint", "")),
            url=shown,
            status=response.status_code,
        )

    def _retry_after_said(self, hint: float | None) -> str:
        """The server's ``Retry-After`` for an error (a number of seconds only: one not
        finite is no hint), and that the wait is capped when it is above ``max_retry_wait``."""
        if hint is None:
            return ""
        cap = self.source.max_retry_wait.total_seconds()
        capped = f" (waited {cap:g}s at most: max_retry_wait)" if hint > cap else ""
        return f", Retry-After {hint:g}s{capped}"

    def _check(self, endpoint: str, url: str, response: httpx.Response, body: bytes) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status in _RETRYABLE_STATUS or status >= 500:
            hint = parse_retry_after(response.headers.get("retry-after", ""))
            raise self._unavailable(
                endpoint,
                url,
                f"HTTP {status}{self._retry_after_said(hint)}",
                status=status,
                retry_after=hint,  # the policy caps it at max_retry_wait
            )
        kind = ApiAuthError if status in (401, 403) else ApiRequestError
        said = self._said(body)
        raise kind(
            f"GET {url} answered HTTP {status} {response.reason_phrase}".rstrip()
            + (f"; the API said: {said}" if said else ""),
            source=self.source.source,
            endpoint=endpoint,
            url=url,
            status=status,
        )

    def _said(self, body: bytes) -> str:
        """The start of an error body (what the API says is wrong), on one line, with every
        form of the source's credentials masked: an API may echo the request (its URL, its
        ``Authorization`` header), the key, the base64 pair or the fetched token included."""
        text = self._masked(body[:_READ_OF_A_REFUSAL].decode("utf-8", "replace"))
        forms = self._secret_forms()
        if len(body) > _READ_OF_A_REFUSAL:  # a secret cut off by the read: its start
            for form in forms:
                cut = next((n for n in range(len(form) - 1, 0, -1) if text.endswith(form[:n])), 0)
                text = text[: len(text) - cut] + ("***" if cut else "")
        text = " ".join(text.split())
        return text if len(text) <= _SAID_CHARS else text[: _SAID_CHARS - 1] + "…"

    def _secret_forms(self) -> set[str]:
        """Every form of the source's credentials a message may quote
        (:func:`etl_core.redaction.secret_forms`)."""
        return {form for value in self.auth.sent_secrets() for form in secret_forms(value)}

    def _masked(self, text: str) -> str:
        """``text`` with every form of the source's credentials replaced by ``***``."""
        return mask_values(text, self.auth.sent_secrets())

    def _echoed_forms(self) -> _Echo:
        """The forms an echoed credential takes in a body or a header (resolved once per
        response: a ``file:`` secret is a file read)."""
        secrets = self.auth.sent_secrets()
        forms = {form.encode() for value in secrets for form in secret_forms(value)}
        forms |= {form.replace(b"/", b"\\/") for form in forms}  # JSON written with \/
        long = {form for form in forms if len(form) >= MIN_MASKED_CHARS}
        return _Echo(values=frozenset(forms), anywhere=sorted(long, key=len, reverse=True))

    def _scrubbed(self, data: bytes, forms: _Echo) -> tuple[bytes, int, int]:
        """``data`` (a body, a header) with the source's credentials masked, and how many
        were as the value of a URL's key parameter, and elsewhere: the value of each query
        parameter carrying one when it is one of them (``api_key=***``: an API that echoes
        its request in next links or a ``self`` link; any other value is data and stays),
        then each form of :data:`MIN_MASKED_CHARS` or more anywhere. What a shorter secret
        would match is too likely to be data to be masked blind."""
        in_links = elsewhere = 0
        for name in self.auth.hidden_params:
            data, masked = _mask_param(data, name.encode() + b"=", forms.values)
            in_links += masked
        for form in forms.anywhere:
            data, masked = _mask_form(data, form)
            elsewhere += masked
        return data, in_links, elsewhere

    def _say_masked(self, endpoint: str, shown: str, count: int) -> None:
        """Warn, once an endpoint, that a body held a credential outside a URL's key
        parameter: a record quoting it lands with ``***`` in its place, which its owner
        should know (the manifest's ``masked`` counts it page by page)."""
        if endpoint in self._said_masked:
            return
        self._said_masked.add(endpoint)
        logger.warning(
            "%s/%s: the body of %s holds a credential of the source's [auth] %d time(s), "
            "outside a URL's key parameter; masked as *** there, in the raw page and in any "
            "record quoting it (said once an endpoint; the manifest's 'masked' counts each "
            "page's): if a record holds it as data, rotate the credential",
            self.source.source,
            endpoint,
            shown,
            count,
            extra={"source": self.source.source, "endpoint": endpoint, "url": shown},
        )

    def _unavailable(
        self,
        endpoint: str,
        url: str,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> ApiUnavailableError:
        return ApiUnavailableError(
            f"GET {url}: {reason}",
            source=self.source.source,
            endpoint=endpoint,
            url=url,
            status=status,
            retry_after=retry_after,
        )


class _Capped(httpx.SyncByteStream):
    """A response's stream (bytes as sent) failing with ``error()`` past ``most`` bytes,
    before the chunk that goes past is decoded (a gzip bomb included)."""

    def __init__(
        self,
        stream: httpx.SyncByteStream | httpx.AsyncByteStream,
        most: int,
        error: Callable[[], Exception],
    ) -> None:
        assert isinstance(stream, httpx.SyncByteStream)  # a sync client's
        self._stream = stream
        self._most = most
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._stream:
            size += len(chunk)
            if size > self._most:
                raise self._error()
            yield chunk

    def close(self) -> None:
        self._stream.close()


@dataclass(frozen=True)
class _Echo:
    """The forms of the source's credentials, as :meth:`ApiClient._scrubbed` looks for them.

    Attributes:
        values: Every form of every credential: a query parameter's value masked when it is
            one of them.
        anywhere: The forms of :data:`MIN_MASKED_CHARS` or more, longest first (a credential
            holding another), masked wherever they appear.
    """

    values: frozenset[bytes]
    anywhere: list[bytes]


def _mask_param(data: bytes, needle: bytes, values: frozenset[bytes]) -> tuple[bytes, int]:
    """``data`` with the value of each query parameter ``needle`` (``api_key=``) in a URL
    masked when it is one of ``values`` (found with ``bytes.find``: a regular expression
    scanning every byte of a large page cost as much as parsing it), and how many were."""
    parts: list[bytes] = []
    count = last = 0
    at = data.find(needle)
    while at != -1:
        start = at + len(needle)
        end = _PARAM_VALUE.match(data, start).end()  # type: ignore[union-attr]  # matches ""
        leads = data[at - 1 : at] in (b"?", b"&", b";") or data[at - 6 : at] == _JSON_AMPERSAND
        if leads and data[start:end] in values:
            parts += [data[last:start], _MASK]
            last = end
            count += 1
        at = data.find(needle, start)
    if not count:
        return data, 0
    parts.append(data[last:])
    return b"".join(parts), count


def _mask_form(data: bytes, form: bytes) -> tuple[bytes, int]:
    """``data`` with each ``form`` masked, and how many were; one right after a backslash
    escaping its first character (``\\/`` of JSON written so) takes the backslash with it,
    else ``\\***`` would be a JSON escape that does not exist and the page would not parse."""
    if form not in data:
        return data, 0
    parts: list[bytes] = []
    count = last = 0
    at = data.find(form)
    while at != -1:
        start = at
        slashes = 0
        while start - slashes > last and data[start - slashes - 1] == 0x5C:  # a backslash
            slashes += 1
        if slashes % 2:
            start -= 1
        parts += [data[last:start], _MASK]
        last = at + len(form)
        count += 1
        at = data.find(form, last)
    parts.append(data[last:])
    return b"".join(parts), count
