"""A work unit: one landing object, one partition, one API endpoint window, one monitor check.

Work is a value: a unit is plain JSON (lane, kind, key, params), so it runs in
this process, in a local pool or on a worker of another host without change. The
worker rebuilds its context (store, contracts, caches) from its own settings; the
unit carries only what names the work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from etl_core.errors import FatalError

__all__ = ["InvalidUnitError", "WorkUnit"]

_NAME = re.compile(r"[a-z][a-z0-9_]*", re.ASCII)


class InvalidUnitError(FatalError, ValueError):
    """A work unit is malformed: not JSON, a missing field, a parameter JSON cannot hold."""

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(f"invalid work unit, field {field!r}: {message}")


_JSON_TYPES = {bool: "boolean (true or false)", str: "string", int: "integer"}
"""How :meth:`WorkUnit.checked_params` names a parameter's expected type."""


@dataclass(frozen=True)
class WorkUnit:
    """What one idempotent call of a lane's ``run_unit`` does.

    Attributes:
        lane: The runtime that runs it (``file_processing``, ``data_pipeline``, …).
        kind: What sort of work (``landing_object``, ``partition``, …).
        key: Which one (a landing key, ``<dataset>/<date>``); unique within lane and kind.
        params: Options of this run (``{"force": true}``); JSON values only.
    """

    lane: str
    kind: str
    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("lane", "kind"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _NAME.fullmatch(value):
                raise InvalidUnitError(f"expected a lower_case name, got {value!r}", field=name)
        if not isinstance(self.key, str) or not self.key:
            raise InvalidUnitError(f"expected non-empty text, got {self.key!r}", field="key")
        if not isinstance(self.params, Mapping):
            raise InvalidUnitError("expected a JSON object", field="params")
        try:  # a deep copy that proves the parameters are JSON and freezes them
            params = json.loads(json.dumps(dict(self.params), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidUnitError(f"not JSON-serialisable: {exc}", field="params") from None
        object.__setattr__(self, "params", MappingProxyType(params))

    @property
    def id(self) -> str:
        """``lane:kind:key``, for logs, task ids and progress."""
        return f"{self.lane}:{self.kind}:{self.key}"

    def checked_params(self, expected: Mapping[str, type]) -> Mapping[str, Any]:
        """The unit's ``params``, each one of ``expected`` with its JSON type (``bool``,
        ``str``): what a lane reads of a unit from any producer (docs/events.md), so a
        misspelt option or ``"false"`` as text is refused, never read as its opposite.

        Raises:
            InvalidUnitError: a parameter not expected, or of another type (its field
                ``params.<name>``).
        """
        for name, value in self.params.items():
            kind = expected.get(name)
            if kind is None:
                known = ", ".join(sorted(expected)) or "none"
                raise InvalidUnitError(
                    f"unknown parameter of a {self.lane} {self.kind} unit (expected: {known})",
                    field=f"params.{name}",
                )
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise InvalidUnitError(
                    f"expected a JSON {_JSON_TYPES.get(kind, kind.__name__)}, got {value!r:.80}",
                    field=f"params.{name}",
                )
        return self.params

    def to_dict(self) -> dict[str, Any]:
        """The unit as plain JSON-ready data."""
        return {"lane": self.lane, "kind": self.kind, "key": self.key, "params": dict(self.params)}

    def to_json(self) -> str:
        """The unit as one JSON document."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: object) -> WorkUnit:
        """Rebuild a unit from :meth:`to_dict` data.

        Raises:
            InvalidUnitError: ``data`` is not such a mapping.
        """
        if not isinstance(data, Mapping):
            raise InvalidUnitError("expected a JSON object", field="unit")
        unknown = sorted(set(data) - {"lane", "kind", "key", "params"})
        if unknown:
            raise InvalidUnitError("unknown field", field=unknown[0])
        for name in ("lane", "kind", "key"):
            if name not in data:
                raise InvalidUnitError("missing", field=name)
        return cls(data["lane"], data["kind"], data["key"], data.get("params", {}))

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkUnit:
        """Rebuild a unit from :meth:`to_json`.

        Raises:
            InvalidUnitError: the text is not such a document.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidUnitError(f"not JSON: {exc}", field="unit") from None
        return cls.from_dict(data)

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __reduce__(self) -> tuple[object, ...]:
        return WorkUnit.from_dict, (self.to_dict(),)
