"""Structured logging on top of the standard library.

Library modules only ever call ``logging.getLogger(__name__)``; the CLI entry
point calls :func:`configure_logging` once. Every record then leaves as one JSON
object per line on stderr (``ts``, ``level``, ``logger``, ``event`` plus bound
context and ``extra`` fields), or as a readable line when stderr is a terminal.
Context (``run_id``, ``dataset``, ``key``...) is bound with contextvars, so it
follows the code into asyncio tasks and into threads started through
:mod:`etl_core.threads`. What holds for the whole process (``lane``, ``run_id``) is
bound with :func:`bind_process_context` instead, so even a line logged by a library's
own thread carries it. Secret-looking fields and URL passwords are redacted.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any, Literal

from etl_core.redaction import REDACTED, SECRET_NAME, redact_text

__all__ = [
    "ConsoleFormatter",
    "JsonFormatter",
    "LogFormat",
    "bind_context",
    "bind_process_context",
    "bound_context",
    "clear_context",
    "configure_logging",
    "get_context",
    "process_context",
    "record_to_dict",
    "redact",
    "unbind_context",
]

LogFormat = Literal["auto", "json", "console"]

_CONTEXT: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "etl_log_context", default=MappingProxyType({})
)
_PROCESS_CONTEXT: Mapping[str, Any] = MappingProxyType({})

_SECRET_FIELD = SECRET_NAME

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
# Extras a library adds for its own formatter, never a field of ours: uvicorn's
# ``color_message`` is the event again with ANSI escape codes (in every JSON line of `serve`).
_LIBRARY_EXTRAS = frozenset({"color_message"})

# Third-party loggers that are chatty at INFO/DEBUG; raised to WARNING by default.
_NOISY_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3", "httpx", "httpcore")
# Third-party loggers that log key material at DEBUG (python-gnupg logs imported
# keys): held at WARNING whatever the level.
_SECRET_LEAKING_LOGGERS = ("gnupg",)


# ------------------------------------------------------------------ context


def bind_context(**values: Any) -> None:
    """Add key/values to the context carried by every log record from here on."""
    _CONTEXT.set({**_CONTEXT.get(), **values})


def bind_process_context(**values: Any) -> None:
    """Add key/values carried by every record of this process, from any thread.

    For what is true of the whole process (``lane``, ``run_id``): a record from a thread
    that did not inherit the bound context (a library's worker) still carries them.
    Context bound with :func:`bind_context` wins over these on a clash.
    """
    global _PROCESS_CONTEXT
    _PROCESS_CONTEXT = MappingProxyType({**_PROCESS_CONTEXT, **values})


def unbind_context(*keys: str) -> None:
    """Remove keys from the bound context."""
    current = _CONTEXT.get()
    _CONTEXT.set({k: v for k, v in current.items() if k not in keys})


def clear_context() -> None:
    """Drop every bound key, the process-wide ones too."""
    global _PROCESS_CONTEXT
    _CONTEXT.set({})
    _PROCESS_CONTEXT = MappingProxyType({})


def get_context() -> dict[str, Any]:
    """A copy of the currently bound context."""
    return dict(_CONTEXT.get())


def process_context() -> dict[str, Any]:
    """A copy of what :func:`bind_process_context` bound (``lane``, ``run_id``): what
    another line this process writes beside its logs (an EMF line) carries too."""
    return dict(_PROCESS_CONTEXT)


@contextlib.contextmanager
def bound_context(**values: Any) -> Iterator[None]:
    """Bind key/values for the duration of a ``with`` block, then restore."""
    token = _CONTEXT.set({**_CONTEXT.get(), **values})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


# ---------------------------------------------------------------- redaction


def redact(value: Any, key: str | None = None) -> Any:
    """Return ``value`` with secrets masked.

    Masks values of secret-named keys, URL passwords, secret-named query parameters,
    bearer tokens, private key blocks (PEM or OpenPGP armour) and every secret this
    process revealed (:mod:`etl_core.redaction`) anywhere in text.
    """
    if key is not None and _SECRET_FIELD.search(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    return value


def _redact_text(text: str) -> str:
    return redact_text(text)


# --------------------------------------------------------------- formatting


def record_to_dict(record: logging.LogRecord) -> dict[str, Any]:
    """The structured form of a record: ts, level, logger, event, context, extras, error."""
    out: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": _redact_text(record.getMessage()),
    }
    context = getattr(record, "etl_context", None)
    if context is None:
        context = {**_PROCESS_CONTEXT, **_CONTEXT.get()}
    for key, value in context.items():
        out.setdefault(key, redact(value, key))
    for key, value in vars(record).items():
        if key in _RECORD_ATTRS or key in _LIBRARY_EXTRAS or key == "etl_context":
            continue
        if not key.startswith("_"):
            out.setdefault(key, redact(value, key))
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        out["exc_type"] = type(error).__name__
        out["exception"] = _redact_text(
            "".join(traceback.format_exception(*record.exc_info)).rstrip()
        )
    elif record.exc_text:
        out["exception"] = _redact_text(record.exc_text)
    if record.stack_info:
        out["stack"] = record.stack_info
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values that JSON cannot encode are rendered with ``str``."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_to_dict(record), default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """A readable single line per record, coloured when the stream is a terminal."""

    _COLOURS = {
        "debug": "\033[2m",
        "info": "\033[32m",
        "warning": "\033[33m",
        "error": "\033[31m",
        "critical": "\033[1;31m",
    }
    _RESET = "\033[0m"

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        data = record_to_dict(record)
        ts = data.pop("ts")[11:23]
        level = data.pop("level")
        logger = data.pop("logger")
        event = data.pop("event")
        exception = data.pop("exception", None)
        data.pop("exc_type", None)
        fields = " ".join(f"{k}={_console_value(v)}" for k, v in data.items())
        level_text = f"{level:<8}"
        if self.colour:
            level_text = f"{self._COLOURS.get(level, '')}{level_text}{self._RESET}"
        line = f"{ts} {level_text} {event}  [{logger}]"
        if fields:
            line = f"{line} {fields}"
        if exception:
            line = f"{line}\n{exception}"
        return line


def _console_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if text and " " not in text else json.dumps(text)


class _ContextFilter(logging.Filter):
    """Snapshots the bound context onto the record at emit time (for queued handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "etl_context"):
            record.etl_context = {**_PROCESS_CONTEXT, **_CONTEXT.get()}
        return True


# ------------------------------------------------------------------ set-up


class _EtlHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed so a second configure replaces it."""


def configure_logging(
    *,
    level: int | str = "INFO",
    fmt: LogFormat = "auto",
    stream: IO[str] | None = None,
    quiet: tuple[str, ...] = _NOISY_LOGGERS,
) -> None:
    """Route every logger (ours and third-party) through one structured handler.

    Call once, from a CLI entry point. ``fmt="auto"`` picks the console format
    when ``stream`` is a terminal and JSON otherwise. Loggers named in ``quiet``
    are raised to WARNING unless ``level`` is DEBUG. Calling it again replaces
    the previous configuration instead of adding a second handler.
    """
    target = stream if stream is not None else sys.stderr
    is_tty = hasattr(target, "isatty") and target.isatty()
    chosen = ("console" if is_tty else "json") if fmt == "auto" else fmt
    if chosen not in ("json", "console"):
        raise ValueError(f"log format must be 'auto', 'json' or 'console', got {fmt!r}")

    handler = _EtlHandler(target)
    handler.setFormatter(JsonFormatter() if chosen == "json" else ConsoleFormatter(is_tty))
    handler.addFilter(_ContextFilter())

    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _EtlHandler)]:
        root.removeHandler(existing)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(
            f"unknown log level {level!r}; expected DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    root.setLevel(numeric)
    for name in quiet:
        logging.getLogger(name).setLevel(
            logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING
        )
    for name in _SECRET_LEAKING_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
