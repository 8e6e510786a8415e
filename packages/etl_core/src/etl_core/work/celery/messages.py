"""What a lane's task returns through the result backend, as plain JSON, and back.

Celery carries JSON only, so a unit's end travels as a document::

    {"unit": {...}, "status": "succeeded" | "failed", "value": <the lane's JSON>,
     "attempts": 1, "seconds": 0.42, "dead_lettered": false,
     "error": {"type": "module:QualName", "message": "...", "args": [...], "state": {...}}}

A platform error (:class:`~etl_core.errors.EtlError`) whose arguments and fields are
JSON comes back as itself, fields included, since it rebuilds from them without its
``__init__``; any other error comes back as a :class:`RemoteUnitError` naming its type.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from etl_core.errors import EtlError
from etl_core.redaction import redact_text
from etl_core.work.result import UnitResult
from etl_core.work.unit import InvalidUnitError, WorkUnit

__all__ = ["RemoteUnitError", "error_document", "result_document", "unit_result"]

T = TypeVar("T")


class RemoteUnitError(EtlError):
    """A unit failed on a worker with an error that cannot travel as itself."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        super().__init__(f"{error_type.rpartition(':')[2]}: {message}")


def result_document(
    result: UnitResult[T], encode: Callable[[T], object], *, dead_lettered: bool = False
) -> dict[str, Any]:
    """``result`` as the JSON document a task returns."""
    value = encode(result.value) if result.ok and result.value is not None else None
    return {
        "unit": result.unit.to_dict(),
        "status": result.status,
        "value": value,
        "attempts": result.attempts,
        "seconds": result.seconds,
        "dead_lettered": dead_lettered,
        "error": None if result.error is None else error_document(result.error),
    }


def error_document(error: BaseException) -> dict[str, Any]:
    """An error as JSON: its type, message and, when they are JSON, arguments and fields;
    secrets in their texts masked as a log line masks them."""
    kind = type(error)
    document: dict[str, Any] = {
        "type": f"{kind.__module__}:{kind.__qualname__}",
        "message": redact_text(str(error)),
    }
    if isinstance(error, EtlError):
        try:
            json.dumps([list(error.args), vars(error)], allow_nan=False)
        except (TypeError, ValueError):
            return document
        document["args"] = _redacted(list(error.args))
        document["state"] = _redacted(dict(vars(error)))
    return document


def _redacted(value: Any) -> Any:
    """``value`` with its texts masked (:func:`~etl_core.redaction.redact_text`): the
    document rests in the result backend and a dead-letter queue, which whoever reads the
    broker reads; fields keep their types (a lease's fencing ``token`` is a number)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    return value


def unit_result(document: object, unit: WorkUnit, decode: Callable[[Any], T]) -> UnitResult[T]:
    """Rebuild the :class:`UnitResult` of ``unit``'s task from its document.

    Raises:
        InvalidUnitError: ``document`` is not such a document (field ``result``).
    """
    if not isinstance(document, Mapping) or document.get("status") not in (
        "succeeded",
        "failed",
    ):
        raise InvalidUnitError(f"expected a unit result document, got {document!r}", field="result")
    error = document.get("error")
    if document["status"] == "succeeded":
        value = decode(document.get("value"))
        attempts, seconds = _int(document, "attempts"), _float(document)
        return UnitResult(unit, "succeeded", value=value, attempts=attempts, seconds=seconds)
    return UnitResult(
        unit,
        "failed",
        error=rebuilt_error(error if isinstance(error, Mapping) else {}),
        attempts=_int(document, "attempts"),
        seconds=_float(document),
    )


def rebuilt_error(document: Mapping[str, Any]) -> BaseException:
    """The error an :func:`error_document` describes: itself when it can, else a
    :class:`RemoteUnitError`."""
    type_name = str(document.get("type", "builtins:Exception"))
    message = str(document.get("message", ""))
    kind = _platform_error_type(type_name)
    args, state = document.get("args"), document.get("state")
    if kind is None or not isinstance(args, list) or not isinstance(state, Mapping):
        return RemoteUnitError(type_name, message)
    error = kind.__new__(kind)
    error.args = tuple(args)
    vars(error).update(state)
    return error


def _platform_error_type(type_name: str) -> type[EtlError] | None:
    module_name, _, qualname = type_name.partition(":")
    found: object = sys.modules.get(module_name)  # never imports what a message names
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if isinstance(found, type) and issubclass(found, EtlError):
        return found
    return None


def _int(document: Mapping[str, Any], name: str) -> int:
    value = document.get(name)
    return value if isinstance(value, int) else 0


def _float(document: Mapping[str, Any]) -> float:
    value = document.get("seconds")
    return float(value) if isinstance(value, int | float) else 0.0
