"""API source configuration: one TOML file per REST API source, ``<config dir>/sources/*.toml``.

A source says where the API is (base URL, default headers and parameters, timeout),
how to authenticate (secrets only as ``env:``/``file:`` references), how fast to
call it, and its ``[[endpoints]]``: path (a template for child endpoints,
``/orders/{parent.id}/items``), records path, primary key, pagination, incremental
cursor and the dataset the records feed. It is loaded like a dataset contract
(unknown keys refused; errors name file, line and field); ``docs/sources.md`` is
the reference of the format.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from etl_core.config import load_settings_with_sources
from etl_core.contracts.cursors import CursorValueError, parse_cursor
from etl_core.contracts.freshness import cron_shape_problem
from etl_core.contracts.located import load_errors, misnamed_files
from etl_core.contracts.model import Contract, ContractError, ContractSet
from etl_core.errors import ConfigError, FieldError
from etl_core.layout import landing_api_chunk_name, landing_api_prefix, split_landing_key
from etl_core.secrets import Secret
from etl_core.units import ByteSize, format_byte_size, format_duration

__all__ = [
    "AUTH_TYPES",
    "CURSOR_TYPES",
    "MIN_PAGE_BYTES",
    "MIN_RETRY_WAIT",
    "PAGINATION_TYPES",
    "PROVENANCE_FIELDS",
    "SOURCES_DIR",
    "Auth",
    "Endpoint",
    "Incremental",
    "Pagination",
    "RateLimit",
    "Source",
    "SourceSet",
    "load_source",
    "load_sources",
    "path_fields",
]

SOURCES_DIR = "sources"
PROVENANCE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "_http_url": ("string",),
    "_http_fetched_at": ("timestamp", "string"),
    "_http_page": ("int", "string"),
    "_run_id": ("string",),
}
"""The fields ``provenance = true`` adds to each landed record, with the column types a
dataset contract may declare them as: the request URL (secrets removed), when the page
arrived (ISO 8601, UTC), its page number in the raw archive, and the run folder."""
PAGINATION_TYPES = ("none", "page_number", "offset", "cursor", "next_url", "link_header")
AUTH_TYPES = ("none", "bearer", "api_key", "basic", "oauth2")
CURSOR_TYPES = ("timestamp", "date", "int", "string")
MIN_WINDOW = timedelta(minutes=1)
"""The shortest incremental window: below it a number was surely meant in another unit
(``window = 1`` reads as one second: 86,400 windows a day)."""
MIN_RETRY_WAIT = timedelta(seconds=1)
"""The shortest ``max_retry_wait``, the cap of every wait between two attempts of a request
(backoff and a server's ``Retry-After`` alike): below it a failing or rate-limiting API is
asked again at once (``"0s"`` is no wait at all, ``"1ms"`` hardly more)."""

MIN_PAGE_BYTES = ByteSize("1KiB")
"""The smallest ``max_page_bytes``: below it a number was surely meant in another unit
(``max_page_bytes = 64`` reads as 64 bytes, which no page fits)."""

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}", re.ASCII)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PARENT_FIELD = re.compile(r"parent\.([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
_DOTTED = re.compile(r"[^.\s]+(?:\.[^.\s]+)*")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)
_CREDENTIAL_NAME = re.compile(r"auth|token|secret|password|api[-_]?key|signature", re.I)
_SAMPLE_RUN = "20260101T000000Z-000000"
_SAMPLE_DAY = date(2026, 1, 31)  # a chunk name the dataset's pattern must date
_SAMPLE_ARRIVAL = datetime(2026, 1, 31, 12, tzinfo=UTC)  # for a contract dated by arrival


# ------------------------------------------------------------------ sections


@dataclass(frozen=True)
class Auth:
    """``[auth]``: how every request of the source authenticates.

    Attributes:
        type: ``none``, ``bearer`` (``token``), ``api_key`` (``key`` sent as header or
            query parameter ``name``), ``basic`` (``username``, ``password``) or
            ``oauth2`` client credentials (``token_url``, ``client_id``,
            ``client_secret``, ``scope``; refreshed ``refresh_margin`` before expiry).
    """

    type: Literal["none", "bearer", "api_key", "basic", "oauth2"] = "none"
    token: Secret | None = None
    key: Secret | None = None
    name: str | None = None
    location: Literal["header", "query"] = "header"
    username: str | None = None
    password: Secret | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    scope: str | None = None
    refresh_margin: timedelta = timedelta(seconds=30)

    @property
    def key_name(self) -> str:
        """The header or query parameter carrying an API key."""
        if self.name:
            return self.name
        return "X-API-Key" if self.location == "header" else "api_key"


@dataclass(frozen=True)
class RateLimit:
    """``[rate_limit]``: a token bucket shared by every request of the source.

    ``requests_per_second`` unset means no client-side limit (the server's 429s are
    still honoured); ``burst`` requests may go out at once after a quiet spell.
    """

    requests_per_second: float | None = None
    burst: int = 1


@dataclass(frozen=True)
class Pagination:
    """``[endpoints.pagination]``: how to walk the pages of an endpoint.

    Attributes:
        type: ``none`` (one request), ``page_number`` (``page_param`` from
            ``start_page``), ``offset`` (``offset_param``/``limit_param``, ``page_size``
            records), ``cursor`` (the body's ``cursor_path`` sent back as
            ``cursor_param``), ``next_url`` (the body's ``next_url_path``) or
            ``link_header`` (RFC 8288 ``Link: <...>; rel="next"``).
        page_size: Records asked per page (sent as ``size_param``; ``limit_param``
            for ``offset``).
        total_path: Where the body gives the total record count: stop once reached.
        has_more_path: Where the body says whether more pages follow.

    Every style stops on a page without records.
    """

    type: Literal["none", "page_number", "offset", "cursor", "next_url", "link_header"] = "none"
    page_size: int | None = None
    size_param: str | None = None
    page_param: str = "page"
    start_page: int = 1
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    cursor_path: str | None = None
    next_url_path: str | None = None
    total_path: str | None = None
    has_more_path: str | None = None


@dataclass(frozen=True)
class Incremental:
    """``[endpoints.incremental]``: fetch only what changed since the last run.

    Attributes:
        cursor_field: The record field (dotted path) whose largest value is the
            high-water mark.
        param: The request parameter the high-water mark is sent as.
        type: How cursor values compare: ``timestamp`` (ISO 8601), ``date``,
            ``int`` or ``string``.
        initial_value: The value of the first run (nothing sent when unset).
        lookback: Sent this much before the high-water mark (late updates);
            ``timestamp``/``date`` only.
        end_param: The request parameter of a window's end (``--until``, windows).
        window: Split ``--since``/``--until`` into windows this long, each resumable.
    """

    cursor_field: str
    param: str
    type: Literal["timestamp", "date", "int", "string"] = "timestamp"
    initial_value: str | None = None
    lookback: timedelta | None = None
    end_param: str | None = None
    window: timedelta | None = None


@dataclass(frozen=True)
class Endpoint:
    """One ``[[endpoints]]`` entry: a resource of the API and the dataset its records feed.

    Attributes:
        name: The endpoint's name (storage folders, state, metrics).
        path: Appended to the base URL; ``{parent.<field>}`` placeholders make it a
            child endpoint, requested once per record of ``parent``.
        dataset: The dataset contract its landed chunks feed.
        records_path: Dotted path of the records array in the body (``""``: the body).
        primary_key: Fields identifying a record.
        params: Query parameters of this endpoint (over the source's).
        parent: The endpoint whose records fill ``path``'s placeholders.
        chunk_records: Records per landed chunk.
        provenance: Add :data:`PROVENANCE_FIELDS` to every landed record (where it came
            from: request URL, fetch time, raw archive page, run).
    """

    name: str
    path: str
    dataset: str
    records_path: str = ""
    primary_key: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    chunk_records: int = 10_000
    provenance: bool = False
    pagination: Pagination = field(default_factory=Pagination)
    incremental: Incremental | None = None

    @property
    def parent_fields(self) -> tuple[str, ...]:
        """The parent record fields ``path`` uses, in order of appearance."""
        return path_fields(self.path)

    def query(self, base: Mapping[str, Any]) -> dict[str, str]:
        """The source's parameters with this endpoint's over them, as text."""
        return {k: _param_text(v) for k, v in {**base, **self.params}.items()}


@dataclass(frozen=True)
class Source:
    """An API source as declared in ``sources/<source>.toml``."""

    base_url: str
    endpoints: tuple[Endpoint, ...]
    source: str = ""
    description: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    timeout: timedelta = timedelta(seconds=30)
    max_attempts: int = 5
    max_retry_wait: timedelta = timedelta(minutes=5)
    max_page_bytes: ByteSize = ByteSize("64MiB")
    """The largest response body (decompressed) a request may bring: a larger one fails the
    endpoint naming the URL, so a runaway page or a gzip bomb cannot exhaust the memory."""
    concurrency: int = 1
    auth: Auth = field(default_factory=Auth)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    schedule: str | None = None
    """When ``etl-data-pipeline schedule`` ingests this source: a five-field cron in UTC
    (``"*/15 * * * *"``); unset, the scheduler leaves it to ``ingest`` runs."""
    origin: str = field(default="", init=False, compare=False)

    @property
    def endpoint_names(self) -> tuple[str, ...]:
        """The endpoint names, in file order."""
        return tuple(e.name for e in self.endpoints)

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint called ``name``.

        Raises:
            ContractError: the source has no such endpoint (the known ones are named).
        """
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        known = ", ".join(self.endpoint_names)
        raise ContractError(
            f"source {self.source!r} has no endpoint {name!r} (endpoints: {known})",
            [FieldError("endpoints", f"no endpoint named {name!r}", self.origin)],
        )

    def ordered(self) -> tuple[Endpoint, ...]:
        """The endpoints with every parent before its children."""
        done: list[Endpoint] = []
        pending = list(self.endpoints)
        while pending:
            ready = [e for e in pending if e.parent is None or e.parent in {d.name for d in done}]
            if not ready:  # validation refuses children of children: never for a loaded source
                raise ValueError(f"source {self.source!r}: endpoint parents form a cycle")
            done.extend(ready)
            pending = [e for e in pending if e not in ready]
        return tuple(done)


@dataclass(frozen=True)
class SourceSet:
    """Every API source of a config directory."""

    sources: tuple[Source, ...] = ()

    def __iter__(self) -> Any:
        return iter(self.sources)

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def names(self) -> tuple[str, ...]:
        """The source names, in file order."""
        return tuple(s.source for s in self.sources)

    def get(self, name: str) -> Source:
        """The source called ``name``.

        Raises:
            ContractError: no such source (the known ones are named).
        """
        for source in self.sources:
            if source.source == name:
                return source
        known = ", ".join(self.names) or "none"
        raise ContractError(f"no API source {name!r} (sources: {known})")


def path_fields(path: str) -> tuple[str, ...]:
    """The parent fields named by ``{parent.<field>}`` placeholders of an endpoint path."""
    found = []
    for placeholder in _PLACEHOLDER.findall(path):
        match = _PARENT_FIELD.fullmatch(placeholder.strip())
        if match:
            found.append(match.group(1))
    return tuple(found)


# -------------------------------------------------------------------- loading


def load_sources(
    config_dir: str | Path,
    *,
    contracts: ContractSet | None = None,
    environ: Mapping[str, str] | None = None,
) -> SourceSet:
    """Load and validate every ``<config_dir>/sources/*.toml`` (none: an empty set).

    Args:
        contracts: When given, each endpoint's ``dataset`` must be declared there,
            with the landing ``source`` and a ``pattern`` matching the chunks it lands.
        environ: Where ``env:`` secret references resolve (the process environment
            at use time when ``None``).

    Raises:
        ContractError: listing every invalid field of every bad file at once; or
            ``sources`` is there but is no directory (a file, a FIFO: never read as none).
    """
    directory = Path(config_dir) / SOURCES_DIR
    if not directory.is_dir():
        if not os.path.lexists(directory):
            return SourceSet()
        problem = "is not a directory; expected a directory of *.toml API source files"
        raise ContractError(
            f"no API sources: {directory} is not a directory",
            [FieldError("(file)", problem, str(directory))],
        )
    sources: list[Source] = []
    errors: list[FieldError] = misnamed_files(directory)
    for path in sorted(directory.glob("*.toml")):
        try:
            sources.append(load_source(path, contracts=contracts, environ=environ))
        except ContractError as exc:
            errors.extend(exc.errors)
    if errors:
        count = len(errors)
        raise ContractError(
            f"invalid API sources in {directory}: {count} error{'s' if count > 1 else ''}", errors
        )
    return SourceSet(tuple(sources))


def load_source(
    path: str | Path,
    *,
    contracts: ContractSet | None = None,
    environ: Mapping[str, str] | None = None,
) -> Source:
    """Load and validate one source file; its name defaults to the file's stem.

    Raises:
        ContractError: the file cannot be read or parsed, or a field is invalid;
            each error names the file, line and field.
    """
    path = Path(path)
    try:
        source, located = load_settings_with_sources(
            Source, toml_path=path, env=environ, env_prefix=None
        )
    except ConfigError as exc:
        raise ContractError(f"invalid API source {path}", load_errors(exc, path)) from None
    if not source.source:
        object.__setattr__(source, "source", path.stem)
    object.__setattr__(source, "origin", str(path))
    problems = _SourceRules(source, path.stem, contracts).problems()
    if problems:
        errors = [
            FieldError(name, message, _locate(name, located, path)) for name, message in problems
        ]
        raise ContractError(f"invalid API source {path}", errors)
    return source


def _locate(name: str, located: Mapping[str, str], path: Path) -> str:
    """Where ``name`` (or its nearest enclosing table) was set, else the file."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        for key in (candidate, *sorted(k for k in located if k.startswith(candidate + "."))):
            source = located.get(key, "default")
            if source not in ("default", "no source"):
                return source
        parts.pop()
    return str(path)


def _split_url(text: str) -> SplitResult:
    """``text`` split, or an empty URL (no scheme, no host) when it cannot be
    (``https://[::1``, a port that is not a number)."""
    try:
        url = urlsplit(text)
        url.port  # noqa: B018  (a port that is not a number is found here)
    except ValueError:
        return urlsplit("")
    return url


def _header_problem(name: str, value: str) -> str | None:
    """Why HTTP cannot send header ``name`` with ``value`` (RFC 9110), else ``None``."""
    if not _HEADER_NAME.fullmatch(name):
        return "is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~, no spaces)"
    if value != value.strip(" \t") or any(not (" " <= c <= "~" or c == "\t") for c in value):
        return (
            f"value {value!r} cannot be sent in an HTTP header: printable ASCII only, no line "
            "break and no space at its start or end"
        )
    return None


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------- rules


class _SourceRules:
    """The rules the types cannot say; each problem is ``(field, message)``."""

    def __init__(self, source: Source, stem: str, contracts: ContractSet | None) -> None:
        self.source = source
        self.stem = stem
        self.contracts = contracts
        self.found: list[tuple[str, str]] = []

    def fail(self, name: str, message: str) -> None:
        self.found.append((name, message))

    def problems(self) -> list[tuple[str, str]]:
        self._identity()
        self._transport()
        self._auth()
        names: set[str] = set()
        for index, endpoint in enumerate(self.source.endpoints):
            where = f"endpoints[{index}]"
            if endpoint.name in names:
                self.fail(f"{where}.name", f"endpoint {endpoint.name!r} is declared twice")
            names.add(endpoint.name)
            self._endpoint(where, endpoint)
        self._parents()
        return self.found

    def _identity(self) -> None:
        source = self.source
        if not _NAME.fullmatch(source.source):
            self.fail(
                "source",
                "expected a lower-case name of letters, digits and '_' starting with a letter "
                f"(it names storage folders and state), got {source.source!r}",
            )
        elif source.source != self.stem:
            self.fail(
                "source", f"is {source.source!r} but the file is {self.stem}.toml; make them equal"
            )
        if not source.endpoints:
            self.fail("endpoints", "expected at least one [[endpoints]] table")

    def _transport(self) -> None:
        source = self.source
        url = _split_url(source.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            self.fail("base_url", f"expected an http:// or https:// URL, got {source.base_url!r}")
        if url.username or url.password:
            self.fail("base_url", "must not carry credentials; use [auth] with a secret reference")
        if url.query or url.fragment:  # the endpoint paths are appended to it
            self.fail(
                "base_url",
                "expected a URL with no query (?…) or fragment (#…): endpoint paths are "
                "appended to it; put parameters in params (credentials in [auth])",
            )
        for name, value in source.headers.items():
            if _CREDENTIAL_NAME.search(name):
                self.fail(
                    f"headers.{name}",
                    "looks like a credential; put it in [auth] as an env:/file: reference",
                )
            problem = _header_problem(name, value)
            if problem is not None:
                self.fail(f"headers.{name}", problem)
        self._params("params", source.params)
        if source.timeout <= timedelta(0):
            self.fail("timeout", "expected a duration above zero, e.g. '30s'")
        if source.max_attempts < 1:
            self.fail("max_attempts", f"expected 1 or more, got {source.max_attempts}")
        if source.max_retry_wait < MIN_RETRY_WAIT:
            self.fail(
                "max_retry_wait",
                f"expected a duration of {format_duration(MIN_RETRY_WAIT)} or more, e.g. '5m', "
                f"got {format_duration(source.max_retry_wait)!r}: it caps every wait between "
                "two attempts of a request, so a shorter one asks a failing or rate-limiting "
                "API again at once (use max_attempts = 1 for no retries)",
            )
        if source.max_page_bytes < MIN_PAGE_BYTES:
            self.fail(
                "max_page_bytes",
                f"expected {format_byte_size(MIN_PAGE_BYTES)} or more, e.g. '64MiB', got "
                f"{format_byte_size(source.max_page_bytes)!r}: it bounds each response body",
            )
        if not 1 <= source.concurrency <= 32:
            self.fail("concurrency", f"expected 1 to 32 requests at once, got {source.concurrency}")
        limit = source.rate_limit
        if limit.requests_per_second is not None and limit.requests_per_second <= 0:
            self.fail("rate_limit.requests_per_second", "expected a rate above zero")
        if limit.burst < 1:
            self.fail("rate_limit.burst", f"expected 1 or more, got {limit.burst}")
        problem = None if source.schedule is None else cron_shape_problem(source.schedule)
        if problem is not None:
            self.fail(
                "schedule",
                "expected a cron expression of five fields (minute hour day-of-month month "
                f"day-of-week) in UTC, e.g. '*/15 * * * *', got {source.schedule!r}: {problem}",
            )

    def _params(self, where: str, params: Mapping[str, Any]) -> None:
        for name, value in params.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.fail(f"{where}.{name}", f"expected text or a number, got {value!r}")
            if _CREDENTIAL_NAME.search(name):
                self.fail(
                    f"{where}.{name}",
                    "looks like a credential; use [auth] type = 'api_key', location = 'query'",
                )

    def _auth(self) -> None:
        auth = self.source.auth
        needs: dict[str, tuple[str, ...]] = {
            "bearer": ("token",),
            "api_key": ("key",),
            "basic": ("username", "password"),
            "oauth2": ("token_url", "client_id", "client_secret"),
        }
        for name in needs.get(auth.type, ()):
            if getattr(auth, name) in (None, ""):
                hint = " = 'env:NAME' or 'file:/path'" if name not in _PLAIN_AUTH else " = '...'"
                self.fail(f"auth.{name}", f"auth type {auth.type!r} needs {name}{hint}")
        if auth.token_url is not None:
            url = _split_url(auth.token_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                self.fail("auth.token_url", f"expected an http(s) URL, got {auth.token_url!r}")
        if auth.type == "api_key" and auth.location == "header" and auth.name is not None:
            problem = _header_problem(auth.name, "")
            if problem is not None:
                self.fail("auth.name", problem)
        if auth.refresh_margin < timedelta(0):
            self.fail("auth.refresh_margin", "expected a duration of zero or more")

    def _endpoint(self, where: str, endpoint: Endpoint) -> None:
        if not _NAME.fullmatch(endpoint.name):
            self.fail(
                f"{where}.name",
                f"expected a lower-case name of letters, digits and '_', got {endpoint.name!r}",
            )
        if not endpoint.path.startswith("/"):
            self.fail(f"{where}.path", f"expected a path starting with '/', got {endpoint.path!r}")
        for placeholder in _PLACEHOLDER.findall(endpoint.path):
            if not _PARENT_FIELD.fullmatch(placeholder.strip()):
                self.fail(
                    f"{where}.path",
                    f"placeholder {{{placeholder}}} is not {{parent.<field>}}",
                )
        if endpoint.parent_fields and endpoint.parent is None:
            self.fail(f"{where}.parent", "the path has {parent.…} placeholders: name the parent")
        if endpoint.parent is not None and not endpoint.parent_fields:
            self.fail(
                f"{where}.path", "a child endpoint's path needs a {parent.<field>} placeholder"
            )
        if endpoint.records_path and not _DOTTED.fullmatch(endpoint.records_path):
            self.fail(f"{where}.records_path", "expected a dotted path such as 'data.items'")
        if endpoint.chunk_records < 1:
            self.fail(f"{where}.chunk_records", f"expected 1 or more, got {endpoint.chunk_records}")
        self._params(f"{where}.params", endpoint.params)
        self._pagination(f"{where}.pagination", endpoint.pagination)
        if endpoint.incremental is not None:
            self._incremental(f"{where}.incremental", endpoint.incremental)
        self._dataset(where, endpoint)

    def _pagination(self, where: str, pages: Pagination) -> None:
        required = {
            "offset": ("page_size",),
            "cursor": ("cursor_path",),
            "next_url": ("next_url_path",),
        }
        for name in required.get(pages.type, ()):
            if getattr(pages, name) is None:
                self.fail(f"{where}.{name}", f"pagination type {pages.type!r} needs {name}")
        if pages.page_size is not None and pages.page_size < 1:
            self.fail(f"{where}.page_size", f"expected 1 or more, got {pages.page_size}")
        if pages.start_page < 0:
            self.fail(f"{where}.start_page", f"expected 0 or more, got {pages.start_page}")
        if pages.type == "none" and (pages.total_path or pages.has_more_path):
            self.fail(f"{where}.type", "total_path / has_more_path need a pagination type")
        defaults = Pagination()
        for name, owners in _STYLE_KEYS.items():
            if pages.type not in owners and getattr(pages, name) != getattr(defaults, name):
                owner = " or ".join(repr(style) for style in owners)
                self.fail(
                    f"{where}.{name}",
                    f"is a key of pagination type {owner}, not used by type {pages.type!r}: "
                    "remove it, or correct the type",
                )
        if pages.type == "offset":
            if pages.size_param is not None:
                self.fail(
                    f"{where}.size_param",
                    "pagination type 'offset' sends page_size as limit_param; remove size_param",
                )
        elif (pages.size_param is None) != (pages.page_size is None):
            missing = "size_param" if pages.size_param is None else "page_size"
            self.fail(
                f"{where}.{missing}",
                f"page_size is sent as size_param (size_param = page_size): set {missing} too, "
                "or remove the other",
            )

    def _incremental(self, where: str, incremental: Incremental) -> None:
        timed = incremental.type in ("timestamp", "date")
        if incremental.lookback is not None and not timed:
            self.fail(f"{where}.lookback", "a lookback needs type 'timestamp' or 'date'")
        if incremental.window is not None:
            if not incremental.end_param:
                self.fail(
                    f"{where}.end_param",
                    "a window needs end_param, the request parameter of its end: without it "
                    "each window would fetch everything after its start",
                )
            if not timed:
                self.fail(f"{where}.window", "windows need type 'timestamp' or 'date'")
            elif incremental.window < MIN_WINDOW:
                seconds = f"{incremental.window.total_seconds():g}s"
                self.fail(
                    f"{where}.window",
                    "expected a duration of a minute or more, with its unit, e.g. '1d' "
                    f"(a bare number is seconds: got {seconds})",
                )
        if incremental.initial_value is not None:
            try:
                parse_cursor(incremental.type, incremental.initial_value)
            except CursorValueError as exc:
                self.fail(f"{where}.initial_value", str(exc))

    def _dataset(self, where: str, endpoint: Endpoint) -> None:
        if not _NAME.fullmatch(endpoint.dataset):
            self.fail(f"{where}.dataset", f"expected a dataset name, got {endpoint.dataset!r}")
            return
        if self.contracts is None or not _NAME.fullmatch(endpoint.name):
            return
        if endpoint.dataset not in self.contracts.datasets:
            known = ", ".join(self.contracts.datasets) or "none"
            self.fail(f"{where}.dataset", f"no dataset contract {endpoint.dataset!r} ({known})")
            return
        contract = self.contracts.get(endpoint.dataset)
        prefix = landing_api_prefix(self.source.source, endpoint.name)
        sample = prefix + landing_api_chunk_name(endpoint.name, _SAMPLE_DAY, _SAMPLE_RUN, 0)
        split = split_landing_key(sample)
        assert split is not None
        if contract.source.strip("/") != split[0]:
            self.fail(
                f"{where}.dataset",
                f"dataset {endpoint.dataset!r} has source {contract.source!r}; records of this "
                f"endpoint land under {split[0]!r}: set source = {split[0]!r} in {contract.origin}",
            )
        elif contract.partition_date(sample, _SAMPLE_ARRIVAL) != _SAMPLE_DAY:
            self.fail(
                f"{where}.dataset",
                f"pattern {contract.pattern!r} of dataset {endpoint.dataset!r} does not match "
                f"the chunk names ({split[1]!r}); use e.g. "
                f"'{endpoint.name}_{{date:%Y%m%d}}_*.jsonl.gz'",
            )
        if endpoint.provenance:
            self._provenance(where, endpoint, contract)

    def _provenance(self, where: str, endpoint: Endpoint, contract: Contract) -> None:
        """A dataset fed with provenance fields declares them (with a fitting type) or
        takes undeclared keys (``[schema] mode = "open"``, ``extra_columns`` keep/drop)."""
        declared = {column.name: column for column in contract.columns}
        file_format = "jsonl" if contract.format == "auto" else contract.format
        permits = contract.schema.open or contract.schema.extras(file_format) != "refuse"
        for name, types in PROVENANCE_FIELDS.items():
            column = declared.get(name)
            if column is None and not permits:
                self.fail(
                    f"{where}.provenance",
                    f"adds {name!r} to every record, but dataset {contract.dataset!r} neither "
                    f"declares it nor keeps extra keys: add a column {name!r} "
                    f"({' or '.join(types)}) or set [schema] extra_columns = 'keep' in "
                    f"{contract.origin}",
                )
            elif column is not None and column.type not in types:
                self.fail(
                    f"{where}.provenance",
                    f"dataset {contract.dataset!r} declares {name!r} as {column.type!r}; the "
                    f"field holds {' or '.join(types)} values ({contract.origin})",
                )

    def _parents(self) -> None:
        endpoints = {e.name: e for e in self.source.endpoints}
        for index, endpoint in enumerate(self.source.endpoints):
            if endpoint.parent is None:
                continue
            where = f"endpoints[{index}].parent"
            if endpoint.parent not in endpoints:
                self.fail(where, f"no endpoint named {endpoint.parent!r} in this source")
                continue
            if endpoints[endpoint.parent].parent is not None:
                self.fail(
                    where,
                    f"{endpoint.parent!r} is itself a child endpoint; a parent must be a "
                    "top-level endpoint (one level of children)",
                )


_PLAIN_AUTH = frozenset({"username", "token_url", "client_id"})
_STYLE_KEYS: dict[str, tuple[str, ...]] = {
    "page_param": ("page_number",),
    "start_page": ("page_number",),
    "offset_param": ("offset",),
    "limit_param": ("offset",),
    "cursor_param": ("cursor",),
    "cursor_path": ("cursor",),
    "next_url_path": ("next_url",),
}
"""The pagination keys only some styles read, and those styles (a key of another style is a
mistyped type); a new style reading ``cursor_param`` joins its tuple."""
