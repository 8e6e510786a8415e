"""The paginator interface: from one page to the request of the next, or the end.

A :class:`PageRequest` is plain data (query parameters, or an absolute URL the API
gave), so the position inside an endpoint is checkpointed as JSON and a resumed run
asks for exactly the page it stopped at. Every style stops on a page without
records, when ``total_path`` says every record was seen, and when ``has_more_path``
says there is no more (false or ``null``); each style adds its own end (no cursor, no
next link).

A ``has_more_path`` absent from a page means the end only once the walk saw the field
on an earlier page (many APIs leave the flag out of their last page). Absent from the
first page, it says nothing either way: the walk goes on to the style's own next page
(one request more at most), which settles it: a page without records (or no cursor,
no next link) is the end; a second page with records and still no field is a mistyped
path, which fails the endpoint naming the path and the keys the body has (stopping
there would drop every later page in silence). A walk that ends without ever seeing
the field logs one warning naming it (nothing was missed, but the path may be wrong).

That next page of a ``page_number`` or ``offset`` walk is one the walk made up, past
what may be the API's end, and many APIs answer such a request with a 4xx (``404``
``Invalid page``) or their last page again: both are the end too (see
:meth:`Paginator.probes`), not a failure or a mistyped path. Once a page of the
endpoint had the field, its absence from another walk's first page (a child endpoint
walks once per parent) is the end at once, with no request more.

A cursor or link leading back to a page the walk already asked for (``a -> b -> a``) is
refused, as a walk following it would never end and land the same records again and
again: each request remembers the walk's last :data:`RECENT_REQUESTS` requests (a loop
that short is refused before any page is asked twice) and one request at a page number
that is a power of two (Brent's mark: a longer loop is refused within a few turns). New
cursors with the same records every time are no loop of requests: the walk refuses them
by the records (``MAX_SAME_PAGES_IN_A_ROW`` in :mod:`..flow`).
"""

from __future__ import annotations

import abc
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

from data_pipeline.errors import ApiRequestError, ApiResponseError
from data_pipeline.ingest.documents import MISSING, lookup
from etl_core.contracts import Pagination
from etl_core.redaction import mask_url_password

__all__ = [
    "MAX_POINTER_CHARS",
    "RECENT_REQUESTS",
    "Page",
    "PageRequest",
    "Paginator",
    "records_digest",
]

logger = logging.getLogger(__name__)

MAX_POINTER_CHARS = 32_768
"""The longest next-page cursor or link followed: half of the longest URL httpx sends, so
its percent-encoded form fits too (most servers refuse a URL past 8 KiB)."""

RECENT_REQUESTS = 16
"""How many of a walk's latest requests a next page is checked against (kept in the
checkpoint, so a resumed walk knows them too)."""


@dataclass(frozen=True)
class PageRequest:
    """The request of one page.

    Attributes:
        params: Pagination query parameters (over the endpoint's).
        url: An absolute URL given by the API (next link), replacing path and parameters.
        number: The page's index in this walk, from 0.
        seen: Records on the pages before this one.
        flagged: Whether a page before this one had the ``has_more_path`` field (its
            absence from a later page is then the end, not a mistyped path).
        prior: On a request asked only to settle ``has_more_path`` (:meth:`Paginator.probes`),
            the digest of the records of the page before: an answer with the same records
            is the API repeating its last page, the end.
        recent: Digests of the walk's requests before this one, the latest last
            (:data:`RECENT_REQUESTS` at most): a next page among them is a loop.
        mark: The digest of the walk's request at the last page number that is a power of
            two: a next page equal to it is a loop longer than ``recent`` holds.
        same: The walk's pages in a row with the same records up to this request, kept for
            a resumed walk (``flow.MAX_SAME_PAGES_IN_A_ROW``): the digest of the last one's
            count, first and last record, of all its records (``None``: not computed, the
            page before it differed) and how many in a row; ``None`` after no records page.

    ``recent``, ``mark`` and ``same`` are the walk's history, not the request: two requests
    differing only there are equal.
    """

    params: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    number: int = 0
    seen: int = 0
    flagged: bool = False
    prior: str | None = None
    recent: tuple[str, ...] = field(default=(), compare=False)
    mark: str | None = field(default=None, compare=False)
    same: tuple[str, str | None, int] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON-ready data (for the checkpoint)."""
        return {
            "params": dict(self.params),
            "url": self.url,
            "number": self.number,
            "seen": self.seen,
            "flagged": self.flagged,
            "prior": self.prior,
            "recent": list(self.recent),
            "mark": self.mark,
            "same": list(self.same) if self.same is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PageRequest:
        """A request read back from a checkpoint (one written before ``flagged`` was kept
        is past a first page only if that page had the field, as a walk then required)."""
        seen = int(data.get("seen", 0))
        return cls(
            params={str(k): str(v) for k, v in dict(data.get("params") or {}).items()},
            url=data.get("url"),
            number=int(data.get("number", 0)),
            seen=seen,
            flagged=bool(data.get("flagged", seen > 0)),
            prior=data.get("prior"),
            recent=tuple(str(key) for key in data.get("recent") or ()),
            mark=data.get("mark"),
            same=_same(data.get("same")),
        )


@dataclass(frozen=True)
class Page:
    """A fetched page as a paginator sees it.

    Attributes:
        url: The request URL (secrets removed), the base of relative next links.
        headers: The response headers.
        document: The parsed body (``None`` when it could not be read).
        records: The items of its records array (objects, unless set aside as dead letters).
        fetched_at: When it arrived (ISO 8601, UTC).
        readable: Whether the body was JSON with a records array (else a dead letter).
    """

    url: str
    headers: Mapping[str, str]
    document: Any
    records: list[Any]
    fetched_at: str = ""
    readable: bool = True


class Paginator(abc.ABC):
    """Walks the pages of one endpoint request (one per parent record for a child endpoint).

    Args:
        config: The endpoint's ``[pagination]``.
        source: The source's name, and ``endpoint`` the endpoint's, for errors.
        base_url: The source's base URL: a next link must stay on its scheme and host,
            as the credentials are sent with it.
    """

    parallel: bool = False
    """Whether later pages can be requested before earlier ones arrived (page number, offset)."""

    def __init__(self, config: Pagination, *, source: str, endpoint: str, base_url: str) -> None:
        self.config = config
        self.source = source
        self.endpoint = endpoint
        self.base_url = base_url
        self._warned_unseen = False
        self._field_seen = False
        """Whether a page of this paginator's walks had ``has_more_path``: the path is then
        right, and its absence from a first page the end (no page more asked to settle it)."""

    @abc.abstractmethod
    def first(self) -> PageRequest:
        """The request of the first page."""

    def next(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The request after ``current``, whose answer was ``page``; ``None`` at the end.

        Raises:
            ApiResponseError: ``has_more_path`` is absent from a second page with records
                (a mistyped path), or the next page is this one again (a loop).
        """
        path = self.config.has_more_path
        more = lookup(page.document, path) if path else MISSING
        self._field_seen = self._field_seen or more is not MISSING
        flagged = current.flagged or more is not MISSING or self._field_seen
        following = self._following(current, page, more, flagged)
        if following is None and path and not flagged and (current.seen or page.records):
            self._say_has_more_unseen(page, current.number + 1)
        return following

    def probes(self, request: PageRequest) -> bool:
        """Whether ``request`` was made up by the walk (the next page number or offset) only
        to settle a ``has_more_path`` absent from the page before: it may be past the API's
        end, so an answer refusing it (a 4xx) or repeating that page is the end
        (:meth:`past_the_end`, :meth:`repeats`). A cursor or link the API gave is followed
        as any other."""
        return (
            self.parallel
            and bool(self.config.has_more_path)
            and not request.flagged
            and request.seen > 0
        )

    def with_prior(self, request: PageRequest, lines: bytes | None) -> PageRequest:
        """``request`` carrying the digest of ``lines`` (the landing lines of the records of
        the page before) when it :meth:`probes`; as it is otherwise, or without lines."""
        if lines is None or not self.probes(request):
            return request
        return replace(request, prior=records_digest(lines))

    def repeats(self, request: PageRequest, lines: bytes | None) -> bool:
        """Whether the answer to ``request``, whose records are ``lines``, is the page before
        again: a ``page_number`` or ``offset`` API answering past its end with its last page.
        Its records are then not landed twice, and the walk ends there."""
        if lines is None or request.prior is None or not self.probes(request):
            return False
        if records_digest(lines) != request.prior:
            return False
        logger.info(
            "%s/%s: page %d, asked to settle has_more_path %r, repeats the records of the page "
            "before (the API answers past its end with its last page): the end of the walk",
            self.source,
            self.endpoint,
            request.number + 1,
            self.config.has_more_path,
            extra={"source": self.source, "endpoint": self.endpoint},
        )
        return True

    def past_the_end(self, request: PageRequest, error: Exception) -> bool:
        """Whether ``error``, failing ``request``, is an API refusing a page past its end: a
        4xx (``404``, ``400``, ``422``...; not 401/403, said by another error) to a request
        that :meth:`probes`. The walk then ends there, with one warning."""
        status = getattr(error, "status", None)
        if not isinstance(error, ApiRequestError) or status is None or not 400 <= status < 500:
            return False
        if not self.probes(request):
            return False
        if not self._warned_unseen:
            self._warned_unseen = True
            logger.warning(
                "%s/%s: has_more_path %r was in none of the %d page(s) of this walk, and the "
                "next page, asked to settle it, was refused (HTTP %d: an API answering a page "
                "past its end so): the end of the walk; nothing was missed, but if the path is "
                "mistyped the first walk of two pages with records will fail: check "
                "has_more_path",
                self.source,
                self.endpoint,
                self.config.has_more_path,
                request.number,
                status,
                extra={"source": self.source, "endpoint": self.endpoint},
            )
        return True

    def _following(
        self, current: PageRequest, page: Page, more: Any, flagged: bool
    ) -> PageRequest | None:
        """:meth:`next` once the ``has_more_path`` value of ``page`` was looked up."""
        if not page.records:
            return None
        seen = current.seen + len(page.records)
        if self.config.total_path:
            total = lookup(page.document, self.config.total_path)
            if isinstance(total, int | float) and not isinstance(total, bool) and seen >= total:
                return None
        if self.config.has_more_path:
            if more is False or more is None:
                return None
            if more is MISSING:
                if flagged:  # said on the pages before, left out of the last one
                    return None
                if current.seen:  # an earlier page with records had no field either
                    raise self._has_more_missing(page, current.number + 1)
                # The first page with records: whether a next one follows is the style's
                # to say (one request more at most); its answer settles the path.
        following = self.advance(current, page)
        if following is None:
            return None
        return self.step(current, following, page, seen=seen, flagged=flagged)

    def step(
        self, current: PageRequest, following: PageRequest, page: Page, *, seen: int, flagged: bool
    ) -> PageRequest:
        """``following``, the request after ``current`` (whose answer is ``page``), numbered
        and carrying the walk's history, once it is known not to lead back to a page the
        walk asked for (a page read or not: a walk past an unreadable page keeps it too).

        Raises:
            ApiResponseError: ``following`` is ``current`` again, or a page asked before.
        """
        self._refuse_a_loop(current, following, page)
        self._refuse_a_return(current, following, page)
        number = current.number + 1
        key = _request_key(following)
        recent = (*current.recent, _request_key(current))[-RECENT_REQUESTS:]
        mark = key if number & (number - 1) == 0 else current.mark  # a power of two
        return replace(
            following, number=number, seen=seen, flagged=flagged, recent=recent, mark=mark
        )

    def _keys_near_has_more(self, page: Page) -> str:
        """What ``page`` has where ``has_more_path`` was looked for: the keys of the deepest
        object on its way (``the body has the keys ...``)."""
        path = self.config.has_more_path or ""
        parts = path.split(".")
        depth = 0
        holder = page.document
        while depth < len(parts) - 1 and isinstance(holder, dict) and parts[depth] in holder:
            holder, depth = holder[parts[depth]], depth + 1
        where = "the body" if depth == 0 else repr(".".join(parts[:depth]))
        if isinstance(holder, dict):
            names = sorted(str(key) for key in holder)
            shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
            return f"{where} has the keys {shown or '(none)'}"
        return f"{where} is not an object"

    def _has_more_missing(self, page: Page, pages: int) -> ApiResponseError:
        """The error of a ``has_more_path`` absent from a second page with records, never
        seen on the ``pages - 1`` before: a mistyped path would otherwise stop the walk
        after one page in silence."""
        path = self.config.has_more_path or ""
        return ApiResponseError(
            f"has_more_path {path!r} is absent from every one of the {pages} pages of this "
            f"walk, and page {pages} ({page.url}) holds {len(page.records)} records: an API "
            f"sending such a field leaves it out of its last page at most; "
            f"{self._keys_near_has_more(page)}. Check has_more_path (the records landed "
            "so far stay landed; the next run resumes after them)",
            source=self.source,
            endpoint=self.endpoint,
            url=page.url,
        )

    def _say_has_more_unseen(self, page: Page, pages: int) -> None:
        """Warn (once per paginator) of a walk that ended without ever seeing
        ``has_more_path``: it ended by an empty page, the total or the style's own end, so
        nothing was missed, but a mistyped path would fail the first walk of two pages."""
        if self._warned_unseen:
            return
        self._warned_unseen = True
        logger.warning(
            "%s/%s: has_more_path %r was in none of the %d page(s) of this walk, which ended "
            "without it (last page %s: %s); nothing was missed, but if the path is mistyped "
            "the first walk of two pages with records will fail: check has_more_path",
            self.source,
            self.endpoint,
            self.config.has_more_path,
            pages,
            page.url,
            self._keys_near_has_more(page),
            extra={"source": self.source, "endpoint": self.endpoint},
        )

    def _refuse_a_loop(self, current: PageRequest, following: PageRequest, page: Page) -> None:
        """Refuse a next page that is the page just fetched: the API handed back the cursor
        or link it was asked with, and the walk would land the same records forever.

        Raises:
            ApiResponseError: naming the page and the repeated cursor or link.
        """
        if following.url is not None:
            if following.url not in (current.url, page.url):
                return
            repeated = "its next link is the same page"  # the page's URL is the safe spelling
        elif following.params == current.params and current.url is None:
            repeated = ", ".join(f"{k}={v}" for k, v in following.params.items())
        else:
            return
        raise ApiResponseError(
            f"the page of {page.url} gives the same next page again ({repeated}); a walk "
            "following it would never end and land the same records again and again: "
            "refused (check the pagination keys of the endpoint, or the API)",
            source=self.source,
            endpoint=self.endpoint,
            url=page.url,
        )

    def _refuse_a_return(self, current: PageRequest, following: PageRequest, page: Page) -> None:
        """Refuse a next page the walk asked for before (``a -> b -> a``): among its last
        :data:`RECENT_REQUESTS` requests (refused before any page is asked twice), or its
        request at the last power-of-two page number (a longer loop, refused within a few
        turns of it).

        Raises:
            ApiResponseError: naming the page, the repeated cursor or link, and how far back.
        """
        key = _request_key(following)
        history = (*current.recent, _request_key(current))
        if key in history:
            back = f"{len(history) - history.index(key)} pages back"
        elif key == current.mark:
            back = "earlier"
        else:
            return
        raise ApiResponseError(
            f"the page of {page.url} gives as next page one this walk asked for {back} "
            f"({_shown(following)}): the pages go round in a loop, and a walk following it "
            "would never end and land the same records again and again: refused (check the "
            "pagination keys of the endpoint, or the API)",
            source=self.source,
            endpoint=self.endpoint,
            url=page.url,
        )

    def predict(self, current: PageRequest, depth: int) -> list[PageRequest]:
        """Up to ``depth - 1`` requests likely to follow ``current`` (full pages assumed), for
        styles that can tell them before the answer arrives; none for the others."""
        return []

    def past_unreadable(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The request after ``current`` when its page could not be read (a dead letter): the
        predicted next page (a full page assumed) for styles that can tell it without the
        body; ``None`` (the walk ends) for those that need the body."""
        predicted = self.predict(current, 2)
        if not predicted:
            return None
        return self.step(current, predicted[0], page, seen=current.seen, flagged=current.flagged)

    def last_without_body(self, current: PageRequest, page: Page) -> bool:
        """Whether ``page`` (answering ``current``), whose body could not be read, is known
        to be the walk's last without it: no page follows, so ending the walk there misses
        none (the window completes, the page a dead letter). ``False`` (not known) for the
        styles whose next request is in the body."""
        return False

    @abc.abstractmethod
    def advance(self, current: PageRequest, page: Page) -> PageRequest | None:
        """The style's own step (number and seen are filled in by :meth:`next`)."""

    def size_params(self) -> dict[str, str]:
        """``size_param = page_size`` when both are configured."""
        if self.config.size_param and self.config.page_size:
            return {self.config.size_param: str(self.config.page_size)}
        return {}

    def pointer(self, page: Page, key: str, *, numbers: bool) -> str | None:
        """The text of the next-page cursor or link at the pagination setting ``key`` (a
        dotted path) of ``page``; ``None`` at the end (absent, ``null``, empty, ``false``).

        Raises:
            ApiResponseError: it is another kind of value (an object, an array, a number
                where a link belongs: the path is probably one level short), which would
                otherwise end the walk after this page in silence.
        """
        path = getattr(self.config, key)
        value = lookup(page.document, path)
        if value is MISSING or value is None or value is False or value == "":
            return None
        if isinstance(value, str):
            if len(value) > MAX_POINTER_CHARS:  # a URL httpx cannot build, a checkpoint bloated
                raise ApiResponseError(
                    f"{key} {path!r} of {page.url} is {len(value):,} characters long, longer "
                    f"than a URL may be ({MAX_POINTER_CHARS:,}); it starts {value[:80]!r}: "
                    "expected a cursor or link a request can carry (check the path, or the API)",
                    source=self.source,
                    endpoint=self.endpoint,
                    url=page.url,
                )
            return value
        if numbers and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        kind = {dict: "an object", list: "an array", bool: "true"}.get(type(value), "a number")
        expected = "a text or an integer" if numbers else "a URL"
        raise ApiResponseError(
            f"{key} {path!r} of {page.url} is {kind} ({str(value)[:100]}), expected {expected} "
            "or nothing at the last page; if the path stops short, extend it",
            source=self.source,
            endpoint=self.endpoint,
            url=page.url,
        )

    def follow(self, link: str, page: Page) -> PageRequest:
        """A request of the absolute form of ``link`` (relative to the page's URL).

        Raises:
            ApiResponseError: the link is not a URL, or leaves the source's scheme and host.
        """
        try:
            absolute = urljoin(page.url, link)
            target, home = urlsplit(absolute), urlsplit(self.base_url)
            target.port  # noqa: B018  (a port that is not a number is found here)
        except ValueError as exc:  # "http://[::1", "http://host:port"
            raise ApiResponseError(
                f"the next-page link of {page.url} is not a URL ({exc}): "
                f"{mask_url_password(link[:200])!r}",
                source=self.source,
                endpoint=self.endpoint,
                url=page.url,
            ) from None
        if _origin(target) != _origin(home):
            raise ApiResponseError(
                f"the next-page link of {page.url} leads to "
                f"{mask_url_password(f'{target.scheme}://{target.netloc}')}, not to the "
                f"source's {mask_url_password(f'{home.scheme}://{home.netloc}')}; refused "
                "(credentials would go with it)",
                source=self.source,
                endpoint=self.endpoint,
                url=page.url,
            )
        # the source's own spelling of its host: the one its TLS certificate, its Host
        # header and the redirect check of the client were set up with
        return PageRequest(url=urlunsplit(target._replace(scheme=home.scheme, netloc=home.netloc)))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: SplitResult) -> tuple[str, str | None, str | None, str, int | None]:
    """``url``'s origin as a browser compares it (scheme and host in any letter case, the
    default port said or not, a host name's one trailing dot or not), with its user and
    password, which must match too (a link may not bring credentials of its own)."""
    scheme = url.scheme.lower()
    host = url.hostname or ""  # in lower case
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(scheme)
    return scheme, url.username, url.password, host, port


def _request_key(request: PageRequest) -> str:
    """A short digest of what ``request`` asks for (its link, or its parameters), for the
    walk's loop check (a cursor is the API's data: kept out of the checkpoint as such)."""
    if request.url is not None:
        what = "url\0" + request.url
    else:
        what = "params\0" + "\0".join(f"{k}={v}" for k, v in sorted(request.params.items()))
    return hashlib.sha256(what.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _shown(request: PageRequest) -> str:
    """What ``request`` asks for, for an error (a link's query may be long: cut)."""
    if request.url is not None:
        return request.url if len(request.url) <= 200 else request.url[:199] + "…"
    text = ", ".join(f"{k}={v}" for k, v in request.params.items())
    return text if len(text) <= 200 else text[:199] + "…"


def records_digest(lines: bytes) -> str:
    """A short digest of a page's records (their landing lines), kept in a checkpoint."""
    return hashlib.sha256(lines).hexdigest()[:32]


def _same(data: Any) -> tuple[str, str | None, int] | None:
    """:attr:`PageRequest.same` read back from a checkpoint (``None``: not kept, as by a
    release before it, or not of that shape)."""
    if not isinstance(data, list) or len(data) != 3:
        return None
    key, whole, count = data
    if not isinstance(key, str) or not isinstance(count, int) or isinstance(count, bool):
        return None
    return key, whole if isinstance(whole, str) else None, count
