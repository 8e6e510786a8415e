"""Endpoint windows as work units: what to fetch, planned before any request.

Without ``--since``/``--until`` an endpoint is one unit that continues from its
high-water mark (minus the lookback). A ``--since``/``--until`` range is one bounded
unit, or one per ``window`` of the incremental section, each resumable on its own.
``--until`` alone is the endpoint's history up to it: from ``initial_value`` (where the
source says its history starts) when set, else from the API's first record (no start
sent, one window: a range without a start cannot be split, so a ``window`` then refuses it).
The units of one endpoint run in order; endpoints run side by side, parents before
children.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from data_pipeline.ingest.state import EndpointState, Window
from etl_core.contracts import (
    CursorValue,
    Endpoint,
    Source,
    format_cursor,
    parse_cursor,
    parse_day,
    shift_cursor,
)
from etl_core.errors import ConfigError, FieldError
from etl_core.units import format_duration
from etl_core.work import WorkUnit

__all__ = ["KIND", "LANE", "is_bounded", "open_window", "plan_units", "unit_names", "waves"]

LANE = "data_pipeline"
KIND = "api_window"


def plan_units(
    source: Source,
    endpoint: Endpoint,
    *,
    since: str | None = None,
    until: str | None = None,
    full_refresh: bool = False,
) -> list[WorkUnit]:
    """The work units of one endpoint, in the order they must run.

    Raises:
        ConfigError: ``--since``/``--until`` do not read as the endpoint's cursor type,
            or are given for an endpoint without an incremental cursor; ``--until`` for
            one without an ``end_param``; ``--until`` alone for one that splits ranges
            into windows but has no ``initial_value`` (the range has no start).
    """
    base = {"source": source.source, "endpoint": endpoint.name, "full_refresh": full_refresh}
    prefix = f"{source.source}/{endpoint.name}"
    if since is None and until is None:
        label = "full" if full_refresh else "incremental"
        return [WorkUnit(LANE, KIND, f"{prefix}/{label}", {**base, "index": 0})]
    incremental = endpoint.incremental
    if incremental is None:
        raise ConfigError(
            f"--since/--until need an incremental endpoint; {prefix} has no [incremental]",
            [FieldError(f"{endpoint.name}.incremental", "is not set", source.origin)],
        )
    if until is not None and not incremental.end_param:
        raise ConfigError(
            f"--until needs the end parameter of the window; {prefix} has no "
            "incremental.end_param, so the API cannot be asked to stop at --until (each "
            "window would land everything after its start)",
            [FieldError(f"{endpoint.name}.incremental.end_param", "is not set", source.origin)],
        )
    implied = since is None and incremental.initial_value is not None
    if implied:  # --until alone: the endpoint's history, from where the source says it starts
        since = incremental.initial_value
    elif since is None and incremental.window is not None:
        raise ConfigError(
            f"--until {until} without --since: {prefix} splits a range into windows of "
            f"{format_duration(incremental.window)}, and a range without a start (no "
            "incremental.initial_value either) cannot be split; give --since, or set "
            "initial_value where the endpoint's history starts",
            [FieldError(f"{endpoint.name}.incremental.initial_value", "is not set", source.origin)],
        )
    # --until first: given alone, its since is the initial_value, no option of the user's
    end = _bound(incremental.type, until, "--until") if until else None
    start = _bound(incremental.type, since, "--since", given=not implied) if since else None
    if start is not None and end is not None and not start < end:  # type: ignore[operator]
        if implied:
            raise ConfigError(
                f"--until {until} is not after incremental.initial_value {since} of {prefix}, "
                "where a range given --until alone starts: nothing to fetch (give --since)",
                [
                    FieldError(
                        f"{endpoint.name}.incremental.initial_value", f"is {since}", source.origin
                    )
                ],
            )
        raise ConfigError(f"--since {since} is not before --until {until}", [])
    bounds = _split(start, end, incremental.window)
    units = []
    for index, (low, high) in enumerate(bounds):
        low_text = format_cursor(low) if low is not None else None
        high_text = format_cursor(high) if high is not None else None
        key = f"{prefix}/{low_text or ''}..{high_text or ''}"
        params = {**base, "index": index, "since": low_text, "until": high_text}
        units.append(WorkUnit(LANE, KIND, key, params))
    return units


def is_bounded(unit: WorkUnit) -> bool:
    """Whether ``unit`` is a window of a ``--since``/``--until`` range (a backfill's): its
    records are nobody else's work, so it waits for a live holder of its endpoint, and a
    wait that ends with the endpoint still held fails it (an incremental or full window is
    skipped instead: the holder ingests the endpoint forward)."""
    return "since" in unit.params or "until" in unit.params


def unit_names(unit: WorkUnit) -> tuple[str, str]:
    """The source and endpoint a unit is about."""
    return str(unit.params["source"]), str(unit.params["endpoint"])


def waves(source_units: Sequence[tuple[Source, list[WorkUnit]]]) -> list[list[WorkUnit]]:
    """Units grouped so each group runs side by side: parents' windows before children's,
    an endpoint's windows in order, one at a time."""
    grouped: list[list[WorkUnit]] = []
    for depth in (0, 1):
        lists = [
            units
            for source, units in source_units
            if units
            and (source.endpoint(unit_names(units[0])[1]).parent is not None) == bool(depth)
        ]
        for index in range(max((len(units) for units in lists), default=0)):
            wave = [units[index] for units in lists if index < len(units)]
            if wave:
                grouped.append(wave)
    return grouped


def open_window(unit: WorkUnit, endpoint: Endpoint, state: EndpointState, run_id: str) -> Window:
    """A new window for ``unit``: where it starts, its partition date and run folder."""
    params: dict[str, Any] = dict(unit.params)
    index = int(params.get("index", 0))
    bounded = is_bounded(unit)
    run = f"{run_id}-w{index:03d}" if bounded else run_id  # windows' keys sort in window order
    now = datetime.now(UTC)
    window = Window(unit=unit.key, run=run, dt=now.date(), started_at=now.isoformat())
    incremental = endpoint.incremental
    if incremental is None:
        return window
    since, until = params.get("since"), params.get("until")
    if since is not None or until is not None:
        start = parse_cursor(incremental.type, since) if since is not None else None
        return replace(
            window,
            start=since,
            end=until,
            bounded=True,
            dt=_day(start) if start is not None else window.dt,
        )
    mark = None if params.get("full_refresh") else state.cursor
    value = mark if mark is not None else incremental.initial_value
    if value is None:
        return window
    start_value = shift_cursor(parse_cursor(incremental.type, value), incremental.lookback)
    return replace(window, start=format_cursor(start_value))


def _bound(kind: str, text: str, option: str, *, given: bool = True) -> CursorValue:
    """``option``'s value ``text`` as a cursor of type ``kind``: a date the operator
    ``given`` is exactly YYYY-MM-DD, as every command's dates; an ``initial_value``
    standing in for ``--since`` is read as the source's validation read it."""
    if kind not in ("timestamp", "date"):
        raise ConfigError(f"{option} needs an incremental cursor of type timestamp or date", [])
    if kind == "date" and given:
        return parse_day(text, option)
    try:
        return parse_cursor(kind, text)
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r}: {exc}", []) from None


def _split(
    start: CursorValue | None, end: CursorValue | None, size: timedelta | None
) -> list[tuple[CursorValue | None, CursorValue | None]]:
    if size is None or start is None or end is None:
        return [(start, end)]
    assert isinstance(start, date)
    assert isinstance(end, date)
    step = size if isinstance(start, datetime) else timedelta(days=max(size.days, 1))
    bounds: list[tuple[CursorValue | None, CursorValue | None]] = []
    low = start
    while low < end:
        high = min(low + step, end)
        bounds.append((low, high))
        low = high
    return bounds


def _day(value: CursorValue) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    return datetime.now(UTC).date()
