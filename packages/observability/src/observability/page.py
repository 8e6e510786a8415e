"""The HTML status page: the ``/api/status`` document drawn for people.

:func:`render_page` turns the status document (:meth:`Evaluation.to_dict` plus whatever
the service adds: ``service``, ``alerts``, ``storage``, ``database``) into one
self-contained HTML page: per dataset a freshness badge and why, the arrivals of the
judged days as a calendar strip, the rows per partition as an inline SVG sparkline, open
quarantines and open alerts. No script, no web font, no remote asset: it works offline
and as a static file. Every text comes from the document (dataset names, keys, vendor
messages) and is escaped by the template engine; a key absent from the document is
simply not drawn.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from observability.errors import StatusPageError
from observability.monitors import ARRIVAL_STATES, LEVELS, human_duration
from observability.output_files import replace_file

if TYPE_CHECKING:  # imported by the command that writes the page
    import jinja2

__all__ = ["render_page", "write_page"]

SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 168.0, 36.0, 3.0
"""The sparkline's box and inner margin, in SVG user units (CSS pixels)."""
MAX_DATABASE_ROWS = 40
"""Facts of the ``database`` key drawn at most (it is a summary, not a dump)."""
NOT_DUE = "not_due"
"""A calendar day between judged days that no file was due for."""


@dataclass(frozen=True)
class Cell:
    """One day of the arrival strip."""

    day: date
    state: str
    title: str


@dataclass(frozen=True)
class Spark:
    """A sparkline of rows per partition: its lines (split at days without a partition)
    and its dots, each with what it is."""

    lines: tuple[str, ...]
    dots: tuple[tuple[float, float, str], ...]
    latest: int
    low: int
    high: int
    first: str
    last: str


@dataclass(frozen=True)
class Zone:
    """One zone's age line: its level, observation and why."""

    name: str
    level: str
    observed: str
    why: str
    objects: int | None = None
    size: str = ""


@dataclass
class DatasetView:
    """What the page shows for one dataset."""

    name: str
    level: str
    message: str
    latest_partition: str | None
    zones: list[Zone] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    arrivals_judged: bool = False
    spark: Spark | None = None
    volume: Mapping[str, Any] | None = None
    quarantines: list[tuple[str, str, str]] = field(default_factory=list)
    alerts: list[Mapping[str, Any]] = field(default_factory=list)


def render_page(status: Mapping[str, Any], *, refresh_seconds: int | None = None) -> str:
    """The status page of ``status`` (the ``/api/status`` document).

    ``refresh_seconds`` makes the browser reload the page on that interval (the served
    page); ``None`` for a static file.
    """
    alerts = [a for a in _list(status.get("alerts")) if a.get("state") != "resolved"]
    storage = _storage(status.get("storage"))
    datasets = [
        _dataset_view(d, alerts, storage.get(str(d.get("dataset")), {}))
        for d in _list(status.get("datasets"))
    ]
    datasets.sort(key=lambda view: -_rank(view.level))  # the worst first, else contract order
    known = {view.name for view in datasets}
    return _template().render(
        evaluated_at=_when(status.get("evaluated_at")),
        level=status.get("level", "unknown"),
        counts=status.get("counts") or {},
        datasets=datasets,
        other_alerts=[a for a in alerts if a.get("dataset") not in known],
        alert_count=len(alerts),
        alerts_known=isinstance(status.get("alerts"), list),
        service=status.get("service") if isinstance(status.get("service"), Mapping) else None,
        database=_facts(status.get("database")),
        refresh_seconds=refresh_seconds,
        arrival_states=(*ARRIVAL_STATES, NOT_DUE),
        levels=tuple(reversed(LEVELS)),
    )


def write_page(path: Path, status: Mapping[str, Any]) -> None:
    """Write the status page of ``status`` to ``path`` (a static file, no reload), whole or
    not at all: it is written beside it, then renamed over it.

    Raises:
        StatusPageError: the file could not be written (its path and why).
    """
    try:
        replace_file(path, render_page(status).encode())
    except OSError as exc:
        raise StatusPageError(str(path), exc.strerror or str(exc)) from exc


@cache
def _template() -> jinja2.Template:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("observability", "templates"),
        autoescape=True,  # every text is a vendor's or an operator's: escaped, always
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["duration"] = _duration
    environment.filters["thousands"] = lambda n: f"{n:,}"
    return environment.get_template("status.html")


def _dataset_view(
    document: Mapping[str, Any],
    alerts: list[Mapping[str, Any]],
    storage: Mapping[str, Mapping[str, Any]],
) -> DatasetView:
    name = str(document.get("dataset", "?"))
    results = _list(document.get("results"))
    view = DatasetView(
        name=name,
        level=_level(document.get("level")),
        message=str(document.get("message", "")),
        latest_partition=document.get("latest_partition"),
    )
    for result in results:
        if result.get("monitor") == "age":
            zone = str(result.get("subject", ""))
            held = storage.get(zone, {})
            view.zones.append(
                Zone(
                    name=zone,
                    level=_level(result.get("level")),
                    observed=str(result.get("observed", "")),
                    why=str(result.get("why", "")),
                    objects=_int(held.get("objects")),
                    size=_size(_int(held.get("bytes"))),
                )
            )
        elif result.get("monitor") == "volume":
            view.volume = result
            view.spark = _spark(_detail(result).get("recent", ""))
    arrivals = [r for r in results if r.get("monitor") == "arrival"]
    view.arrivals_judged = bool(arrivals)
    view.cells = list(_cells(arrivals))
    view.quarantines = _quarantines(arrivals, storage)
    view.alerts = [a for a in alerts if a.get("dataset") == name]
    return view


def _cells(arrivals: list[Mapping[str, Any]]) -> Iterator[Cell]:
    """One cell per calendar day from the first judged day to the last, gaps as not due."""
    by_day: dict[date, Mapping[str, Any]] = {}
    for result in arrivals:
        try:
            by_day[date.fromisoformat(str(result.get("subject")))] = result
        except ValueError:
            continue
    if not by_day:
        return
    day, last = min(by_day), max(by_day)
    while day <= last:
        judged = by_day.get(day)
        if judged is None:
            yield Cell(day, NOT_DUE, f"{day.isoformat()}: no file due")
        else:
            yield Cell(day, _state(judged.get("state")), _cell_title(day, judged))
        day += timedelta(days=1)


def _cell_title(day: date, result: Mapping[str, Any]) -> str:
    detail = _detail(result)
    lines = [f"{day.isoformat()}: {str(result.get('state', '')).replace('_', ' ')}"]
    if detail.get("key"):
        lines.append(f"file: {detail['key']}")
    lines.append(str(result.get("observed", "")))
    if detail.get("outcome"):
        lines.append(f"outcome: {detail['outcome']}")
    lines.append(str(result.get("why", "")))
    return "\n".join(line for line in lines if line)


def _quarantines(
    arrivals: list[Mapping[str, Any]], storage: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str, str]]:
    """Open quarantines as (date or zone, key or count, reason): the judged days' landing
    files that were quarantined, then the storage metrics' counts by reason when present."""
    found = []
    for result in arrivals:
        detail = _detail(result)
        outcome = str(detail.get("outcome", ""))
        if outcome.startswith("quarantined"):
            reason = outcome.removeprefix("quarantined").strip().strip("()")
            found.append((str(result.get("subject", "")), str(detail.get("key", "")), reason))
    for zone, held in storage.items():
        reasons = held.get("open_quarantines")
        if isinstance(reasons, Mapping):
            for reason, count in reasons.items():
                if _int(count):
                    found.append((zone, f"{_int(count)} open", str(reason)))
    return found


def _spark(recent: object) -> Spark | None:
    """The sparkline of ``2026-11-01=1000, 2026-11-02=980`` (the volume monitor's detail).

    Days sit on a calendar axis, so a day without a partition is a gap in the line, and
    rows on a zero-based axis, so a one-row dip stays a one-row dip.
    """
    series: list[tuple[date, int]] = []
    for part in str(recent).split(","):
        when, _, count = part.strip().partition("=")
        try:
            series.append((date.fromisoformat(when), int(count)))
        except ValueError:
            continue
    if not series:
        return None
    series.sort()
    first, last = series[0][0], series[-1][0]
    days = max((last - first).days, 1)
    high = max(rows for _, rows in series) or 1
    width, height = SPARK_WIDTH - 2 * SPARK_PAD, SPARK_HEIGHT - 2 * SPARK_PAD
    dots = []
    for day, rows in series:
        x = SPARK_PAD + (day - first).days / days * width if last > first else SPARK_WIDTH / 2
        y = SPARK_PAD + height - rows / high * height
        dots.append((round(x, 1), round(y, 1), f"{day.isoformat()}: {rows:,} rows"))
    segments: list[list[str]] = []
    for index, (day, _) in enumerate(series):
        if index == 0 or (day - series[index - 1][0]).days > 1:
            segments.append([])
        segments[-1].append(f"{dots[index][0]},{dots[index][1]}")
    return Spark(
        tuple(" ".join(points) for points in segments),
        tuple(dots),
        series[-1][1],
        min(rows for _, rows in series),
        max(rows for _, rows in series),
        first.isoformat(),
        last.isoformat(),
    )


def _storage(value: object) -> dict[str, dict[str, Mapping[str, Any]]]:
    """The ``storage`` key as dataset -> zone -> facts, from either a mapping
    (``{dataset: {zone: {...}}}``) or a list of entries naming their dataset and zone."""
    if isinstance(value, Mapping) and "datasets" in value:
        value = value["datasets"]
    found: dict[str, dict[str, Mapping[str, Any]]] = {}
    if isinstance(value, Mapping):
        for dataset, zones in value.items():
            if isinstance(zones, Mapping):
                found[str(dataset)] = {
                    str(z): facts for z, facts in zones.items() if isinstance(facts, Mapping)
                }
    elif isinstance(value, list):
        for entry in value:
            if isinstance(entry, Mapping) and "dataset" in entry:
                zones = found.setdefault(str(entry["dataset"]), {})
                zones[str(entry.get("zone", ""))] = entry
    return found


def _facts(value: object, prefix: str = "") -> list[tuple[str, str]]:
    """A mapping's scalar facts as (dotted name, text) rows, at most :data:`MAX_DATABASE_ROWS`."""
    rows: list[tuple[str, str]] = []
    if not isinstance(value, Mapping):
        return rows
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            rows.extend(_facts(item, f"{name}."))
        elif isinstance(item, (str, int, float, bool)) or item is None:
            rows.append((name, "-" if item is None else str(item)))
        elif isinstance(item, list):
            rows.append((name, f"{len(item)} entries"))
    return rows[:MAX_DATABASE_ROWS]


def _when(value: object) -> str:
    """An ISO time of the document as ``2026-11-10 09:00 UTC`` (as given if not one)."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return f"{moment:%Y-%m-%d %H:%M %Z}".strip()


def _list(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _detail(result: Mapping[str, Any]) -> Mapping[str, Any]:
    detail = result.get("detail")
    return detail if isinstance(detail, Mapping) else {}


def _level(value: object) -> str:
    return value if isinstance(value, str) and value in LEVELS else "unknown"


def _state(value: object) -> str:
    return value if isinstance(value, str) and value in ARRIVAL_STATES else "unknown"


def _rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else 0


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _size(count: int | None) -> str:
    if count is None:
        return ""
    size = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _duration(seconds: object) -> str:
    """Seconds for people (``2d 3h``, ``3h 12m``); ``-`` when unknown."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return "-"
    return human_duration(timedelta(seconds=seconds))
