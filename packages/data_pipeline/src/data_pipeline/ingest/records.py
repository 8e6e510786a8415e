"""What becomes of each item of a page: landed as a record, or set aside, and its provenance.

An item lands when it is a JSON object with a value for every primary key field;
otherwise :func:`refusal` says why (a dead letter, :mod:`.deadletters`). With the
endpoint's ``provenance = true`` each landed record gains the
:data:`~etl_core.contracts.PROVENANCE_FIELDS`, taken from the raw archive's manifest
entry of its page, so ``ingest replay`` writes the very same lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import orjson

from data_pipeline.ingest.documents import MISSING, lookup

if TYPE_CHECKING:
    from etl_core.contracts import Endpoint

__all__ = ["Provenance", "all_have_keys", "all_land", "refusal"]


def refusal(item: Any, endpoint: Endpoint) -> tuple[str, str] | None:
    """``(reason, error)`` when ``item`` cannot land, else ``None``."""
    if not isinstance(item, dict):
        return "not_an_object", f"a {_json_type(item)} where a record (object) is expected"
    for name in endpoint.primary_key:
        value = lookup(item, name)
        if value is MISSING or value is None:
            return "missing_primary_key", f"no value for primary key field {name!r}"
    return None


def all_land(items: list[Any], endpoint: Endpoint) -> bool:
    """Whether :func:`refusal` lets every one of ``items`` land (as on nearly every page),
    checked at C speed so the page can be taken whole."""
    return all_have_keys(items, endpoint.primary_key)


def all_have_keys(items: list[Any], primary_key: Sequence[str]) -> bool:
    """Whether every one of ``items`` is an object with a value for every ``primary_key``
    field (:func:`refusal`'s rule, at C speed; a nested key is looked up item by item)."""
    if not set(map(type, items)) <= {dict}:
        return False
    for name in primary_key:
        if "." in name:
            values = [lookup(item, name) for item in items]
            if any(value is MISSING or value is None for value in values):
                return False
        elif None in map(dict.get, items, repeat(name)):  # absent or null
            return False
    return True


class Provenance:
    """The provenance fields of the records of one page.

    Args:
        url: The request URL (secrets removed); ``fetched_at`` when the page arrived
            (ISO 8601); ``page`` its number in the raw archive; ``run`` the run folder.
    """

    __slots__ = ("values",)

    def __init__(self, *, url: str, fetched_at: str, page: int, run: str) -> None:
        self.values = {
            "_http_url": url,
            "_http_fetched_at": fetched_at,
            "_http_page": page,
            "_run_id": run,
        }

    def stamp(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` with the fields set (a field of the same name in the record is replaced)."""
        record.update(self.values)
        return record

    def stamp_lines(self, lines: bytes) -> bytes:
        """Landing lines of objects written by orjson, none with a provenance field, as orjson
        writes them stamped: the fields appended to each object. A newline byte in orjson's
        output only ends a line (one in a text is escaped), so ``}\n`` ends each object."""
        if not lines:
            return lines
        fields = orjson.dumps(self.values)[1:-1]
        stamped = b"\n" + lines.replace(b"}\n", b"," + fields + b"}\n")
        return stamped.replace(b"\n{,", b"\n{")[1:]  # an empty object takes no comma


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else type(value).__name__
