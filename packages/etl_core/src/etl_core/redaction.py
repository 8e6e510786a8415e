"""Masking secrets in text: the one helper every lane and the log formatter use.

Three kinds of masking, each replacing what it finds with ``***``:

- by shape (:func:`redact_text`): a URL's password (``redis://:pw@``, ``amqp://u:pw@``),
  the value of a query parameter whose name says it holds a credential (``?password=``,
  ``&api_key=``, ``&X-Amz-Signature=``), of such a header in a logged dict of headers
  (``'X-Amz-Security-Token': b'…'``, as botocore logs them at DEBUG) or on a line of its
  own (``x-amz-security-token:…``), bearer / basic credentials, private key blocks;
- by value (:func:`mask_values`): given secret values, in every form a message or a
  document may quote them (:func:`secret_forms`: as they are, URL-encoded, escaped as
  JSON or as a Python repr shows them);
- by memory (:func:`remember_secret`): every value a :class:`~etl_core.secrets.Secret`
  revealed in this process is remembered, and :func:`redact_text` masks it wherever it
  appears, so a library that logs what it was given (an HTTP client's request line, a
  response header echoing a key) cannot leak it through the log handler.

What the user needs to debug stays: the host, the path, the parameter names.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = [
    "MIN_REMEMBERED_CHARS",
    "REDACTED",
    "SECRET_NAME",
    "WHOLE_WORD_BELOW",
    "forget_secrets",
    "mask_query_params",
    "mask_url_password",
    "mask_values",
    "redact_text",
    "remember_secret",
    "remembered_forms",
    "secret_forms",
    "unencoded_password",
    "url_password",
]

REDACTED = "***"
"""What a masked secret is replaced with."""

SECRET_NAME = re.compile(
    r"(?i)(passw(or)?d|passphrase|secret|token|api[_-]?key|authorization|credential"
    r"|private[_-]?key|access[_-]?key|session[_-]?key|^auth$|cookie|^pwd$|signature)"
)
"""A field, header or query parameter name whose value is a secret."""

MIN_REMEMBERED_CHARS = 4
"""Remembered secrets shorter than this are not masked by value in every log line (a
two-letter secret would blank every word holding those letters); they are still
masked where their shape tells them (a URL password, a secret-named parameter)."""

WHOLE_WORD_BELOW = 8
"""A remembered secret shorter than this is masked as a whole word only (not inside a longer
run of letters, digits and ``_``): a four-letter ``test`` or ``data`` would else turn
``datasets`` into ``***sets`` and a key ``test_sales.csv`` in an error document into
``***_sales.csv``; ``?key=test&`` or ``:test@`` still shows ``***``."""

MAX_REMEMBERED = 256
"""Secrets remembered at most of each kind, lasting and fleeting (the most recently
revealed): rotating OAuth2 tokens would otherwise pile up in a long-running worker, and
they are counted apart so that they never push out a password revealed once at start."""

USERINFO_TO_LAST_AT = frozenset(
    {
        "postgresql", "postgres", "mysql", "mariadb", "mssql", "oracle", "sqlite", "mongodb",
        "redis", "rediss", "sentinel", "amqp", "amqps", "pyamqp", "librabbitmq", "sqs",
    }
)  # fmt: skip
"""The database and broker schemes (a driver after ``+`` aside: ``postgresql+psycopg``)
whose URL's user-info ends at its LAST ``@``: an ``@`` after their host is implausible,
and users paste passwords holding an unencoded ``/``, ``?``, ``#`` or ``@``
(``postgresql://etl:pa/ss@db/x``), where urllib ends the user-info at the first
``/?#`` and left the password, or its part after an ``@``, shown. Any other URL's
user-info ends as urllib reads it (``https://host:8080/a@b`` holds none)."""

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/\s]*):[^@/\s]+@")
"""A URL's ``user:password@`` in text; the user may hold an unencoded ``@`` (Azure's
``etl@server``), the password ends at the next ``@`` (see the patterns before it)."""
_TO_LAST_AT_PASSWORD = re.compile(  # up to the last '@' before a space: over-masks, never leaks
    r"(?<![A-Za-z0-9+.-])(?P<scheme>(?i:"
    + "|".join(sorted(USERINFO_TO_LAST_AT, key=len, reverse=True))
    + r")(?:\+[A-Za-z0-9.-]+)?://)(?P<user>[^:/\s]*):\S*@"
)
_NOT_A_PORT = re.compile(r"[^\[\]@:]*:(?![0-9]*$)")
"""An authority (a URL's text before its first ``/``, ``?``, ``#``) whose text after its
``:`` is no port: ``etl:pa`` of ``https://etl:pa/ss@pgw:9091``, the start of a password
holding an unencoded ``/``, ``?`` or ``#`` (``https://host:8080/a@b`` has a port)."""
_NOT_A_PORT_PASSWORD = re.compile(  # the same in text: up to the last '@' before a space
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s\[\]]*)"
    r":(?![0-9]*[/?#\s])[^@/?#\s]*[/?#]\S*@"
)
_QUERY_PARAM = re.compile(
    r"(?P<lead>[?&;](?P<name>[A-Za-z0-9_.\-\[\]]+)=)(?P<value>[^&#;\s\"'<>\\]*)"
)
_QUOTED_HEADER = re.compile(  # 'X-Amz-Security-Token': b'…' in a logged dict of headers
    r"(?P<lead>(?P<q>['\"])(?P<name>[A-Za-z0-9_-]+)(?P=q)\s*:\s*b?(?P<v>['\"]))"
    r"(?P<value>[^'\"\n]*)(?P=v)"
)
_HEADER_LINE = re.compile(  # x-amz-security-token:… on a line of its own (a signed request)
    # the value right after the colon, as a canonical request writes it: a message of ours
    # saying "passphrase: must be one line" or "secret_key: self-test failed" is no header
    r"(?im)^(?P<lead>(?P<name>[A-Za-z0-9_-]+):)(?P<value>[^\s][^\r\n]*)$"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[a-z0-9._~+/=-]{8,}")
_PRIVATE_KEY = re.compile(
    r"(?s)(-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----).*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)"
)

_lock = threading.Lock()
_remembered: dict[bool, OrderedDict[str, tuple[str, ...]]] = {
    False: OrderedDict(),  # lasting: what a Secret revealed, credentials derived from it
    True: OrderedDict(),  # fleeting: fetched tokens, renewed as they expire
}
_forms: tuple[str, ...] = ()  # every remembered form, longest first (rebuilt on change)
_short: re.Pattern[str] | None = None  # the short ones, as whole words (rebuilt with _forms)
_WORD = "A-Za-z0-9_"


def secret_forms(value: str) -> set[str]:
    """Every form of ``value`` a message or a document may quote: as it is, URL-encoded
    (``%2F``, ``+`` for a space), escaped as JSON, and escaped as a Python repr shows it
    (an HTTP library's error quotes a header so); empty forms left out."""
    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        repr(value.encode())[2:-1],
    }
    return {form for form in forms if form}


def mask_values(text: str, values: Iterable[str], *, min_chars: int = 1) -> str:
    """``text`` with every form (:func:`secret_forms`) of each of ``values`` at least
    ``min_chars`` long replaced by ``***``, longest first (a value holding another)."""
    forms = {form for value in values if len(value) >= min_chars for form in secret_forms(value)}
    for form in sorted(forms, key=len, reverse=True):
        if form in text:
            text = text.replace(form, REDACTED)
    return text


def mask_query_params(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with the value of every query parameter in a URL in it masked when the
    parameter is one of ``names`` or its name says it is a secret (:data:`SECRET_NAME`):
    ``?api_key=abc&page=2`` becomes ``?api_key=***&page=2``."""
    if "=" not in text:
        return text
    hidden = set(names)

    def mask(match: re.Match[str]) -> str:
        name = match["name"]
        if match["value"] and (name in hidden or SECRET_NAME.search(name)):
            return match["lead"] + REDACTED
        return match[0]

    return _QUERY_PARAM.sub(mask, text)


def _userinfo_end(rest: str, scheme: str) -> int:
    """Where the user-info of a URL ends (its ``@``) in ``rest``, the URL after its
    ``scheme://`` (-1: it has none), by :data:`USERINFO_TO_LAST_AT`'s rule; any other
    URL's at its last ``@`` too when what urllib reads as its host has no port after its
    ``:`` (``https://etl:pa/ss@pgw:9091``, see :data:`_NOT_A_PORT`)."""
    if scheme.lower().partition("+")[0] in USERINFO_TO_LAST_AT:
        return rest.rfind("@")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" not in authority and _NOT_A_PORT.match(authority):
        return rest.rfind("@")
    return authority.rfind("@")


def url_password(url: str) -> str | None:
    """The password of ``url``'s user-info as written (not decoded), ``None`` when it has
    none: everything after the first ``:`` of the user-info, which ends at its last ``@``
    for a database or broker URL (:data:`USERINFO_TO_LAST_AT`)."""
    scheme, separator, rest = url.partition("://")
    at = _userinfo_end(rest, scheme) if separator else -1
    if at < 0:
        return None
    user, colon, password = rest[:at].partition(":")
    return password if colon and "/" not in user else None


def mask_url_password(url: str) -> str:
    """``url`` (one URL) with the password of its user-info replaced by ``***``, as
    written otherwise: ``postgresql://etl:pa/ss@db/x`` becomes ``postgresql://etl:***@db/x``
    (:data:`USERINFO_TO_LAST_AT`), ``https://host:8080/a@b`` stays as it is."""
    password = url_password(url)
    if password is None:
        return url
    scheme, _, rest = url.partition("://")
    user = rest.partition(":")[0]
    return f"{scheme}://{user}:{REDACTED}{rest[len(user) + 1 + len(password) :]}"


def unencoded_password(url: str) -> bool:
    """Whether ``url``'s password holds an unencoded ``/``, ``?`` or ``#``, where urllib
    (and the broker and database libraries reading URLs with it) end the user-info: such
    a URL names another host or port than the one meant, and an error quoting what they
    read there quotes part of the password."""
    password = url_password(url)
    return password is not None and any(mark in password for mark in "/?#")


def remember_secret(value: str, *, fleeting: bool = False) -> None:
    """Remember ``value`` as a secret of this process: :func:`redact_text`, hence every
    log line, masks it from now on (:class:`~etl_core.secrets.Secret` calls it on each
    reveal; code deriving a credential from secrets, a basic pair or a fetched token,
    calls it for the derived value). ``fleeting``: a value renewed as it expires (an
    OAuth2 access token), among the :data:`MAX_REMEMBERED` kept of its own kind."""
    global _forms, _short
    if len(value) < MIN_REMEMBERED_CHARS:
        return
    with _lock:
        memory = _remembered[fleeting]
        if value in memory:
            memory.move_to_end(value)
            return
        memory[value] = tuple(secret_forms(value))
        while len(memory) > MAX_REMEMBERED:
            memory.popitem(last=False)
        groups = [item for kind in _remembered.values() for item in kind.items()]
        forms = {form for _, group in groups for form in group}
        short = {form for key, group in groups if len(key) < WHOLE_WORD_BELOW for form in group}
        alternatives = "|".join(map(re.escape, sorted(short, key=len, reverse=True)))
        _short = re.compile(f"(?<![{_WORD}])(?:{alternatives})(?![{_WORD}])") if short else None
        _forms = tuple(sorted(forms - short, key=len, reverse=True))


def remembered_forms() -> tuple[str, ...]:
    """The forms of every remembered secret of :data:`WHOLE_WORD_BELOW` characters or more,
    longest first (the shorter ones are masked as whole words)."""
    return _forms


def forget_secrets() -> None:
    """Forget every remembered secret (tests)."""
    global _forms, _short
    with _lock:
        for memory in _remembered.values():
            memory.clear()
        _forms = ()
        _short = None


def redact_text(text: str) -> str:
    """``text`` with secrets masked by shape and every remembered secret masked by value."""
    text = _PRIVATE_KEY.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _TO_LAST_AT_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    text = _NOT_A_PORT_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    text = mask_query_params(text)
    text = _QUOTED_HEADER.sub(_masked_header, text)
    text = _HEADER_LINE.sub(_masked_header, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    short = _short  # read once: another thread may remember a secret meanwhile
    for form in remembered_forms():
        if form in text:
            text = text.replace(form, REDACTED)
    return short.sub(REDACTED, text) if short is not None else text


def _masked_header(match: re.Match[str]) -> str:
    """A header (or field) whose name says it is a secret, its value masked; else as is."""
    if not SECRET_NAME.search(match["name"]) or match["value"] in ("", REDACTED):
        return match[0]
    return match["lead"] + REDACTED + match[0][match.end("value") - match.start() :]
