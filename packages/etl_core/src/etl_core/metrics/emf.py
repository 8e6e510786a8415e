"""CloudWatch Embedded Metric Format: metrics as JSON log lines.

CloudWatch Logs extracts metrics from log events shaped like::

    {"_aws": {"Timestamp": <ms>, "CloudWatchMetrics": [{
        "Namespace": "etl", "Dimensions": [["dataset"]],
        "Metrics": [{"Name": "etl_fp_files_total", "Unit": "Count"}]}]},
     "dataset": "pos", "etl_fp_files_total": 3}

One line is written per label set: labels become dimensions (string target members),
metrics become numeric target members. Counters and histograms are exported as the
increase since the previous emit; a histogram becomes ``<name>_sum`` and
``<name>_count``, since CloudWatch cannot ingest cumulative buckets.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, TextIO

from etl_core.metrics.deltas import DeltaTracker
from etl_core.metrics.exporter import MetricExportError
from etl_core.metrics.registry import (
    MetricError,
    MetricKind,
    MetricSnapshot,
    Registry,
    default_registry,
)

if TYPE_CHECKING:
    from etl_core.metrics.exporter import ExporterSettings

__all__ = [
    "EMF_MAX_DIMENSIONS",
    "EMF_MAX_METRICS_PER_DIRECTIVE",
    "EMF_NAMESPACE_RULE",
    "EMF_STREAMS",
    "EmfExporter",
    "emf_output_usable",
    "render_emf",
    "valid_emf_namespace",
]

#: Dimension keys allowed in one DimensionSet.
EMF_MAX_DIMENSIONS = 30
#: MetricDefinitions allowed in one MetricDirective.
EMF_MAX_METRICS_PER_DIRECTIVE = 100

_EMPTY_DIMENSION = "_"
"""An empty (or blank) label's dimension value: CloudWatch takes no dimension value without
a non-blank character and would drop the line's metrics (StatsD's plain names use it too)."""

_UNIT_BY_SUFFIX = {"seconds": "Seconds", "bytes": "Bytes", "percent": "Percent"}

PropertyValue = str | int | float | bool
_LabelSet = tuple[tuple[str, str], ...]


class TextSink(Protocol):
    """Anything with ``write(str)`` (``sys.stdout``, an open file, ``io.StringIO``)."""

    def write(self, text: str, /) -> object:
        """Write ``text``."""


def _unit(name: str, kind: MetricKind) -> str:
    base = name.removesuffix("_total")
    unit = _UNIT_BY_SUFFIX.get(base.rsplit("_", 1)[-1])
    if unit is not None:
        return unit
    return "Count" if kind is MetricKind.COUNTER else "None"


def _metric_values(metric: MetricSnapshot) -> list[tuple[_LabelSet, str, str, float]]:
    """``(label set, metric name, unit, value)`` for every exportable series."""
    rows = []
    for series in metric.series:
        labels = tuple(sorted(series.labels))
        if metric.kind is MetricKind.HISTOGRAM:
            if math.isfinite(series.sum):
                unit = _unit(metric.name, metric.kind)
                rows.append((labels, f"{metric.name}_sum", unit, series.sum))
            rows.append((labels, f"{metric.name}_count", "Count", float(series.count)))
        elif math.isfinite(series.value):
            rows.append((labels, metric.name, _unit(metric.name, metric.kind), series.value))
    return rows


def _validate_namespace(namespace: str) -> None:
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 255:
        raise MetricError(f"EMF namespace must be 1-255 characters, got {namespace!r}")
    if namespace.startswith("AWS/"):
        raise MetricError(f"EMF namespace {namespace!r} must not start with 'AWS/' (reserved)")


def _validate_properties(properties: Mapping[str, PropertyValue]) -> dict[str, PropertyValue]:
    for name, value in properties.items():
        if name == "_aws":
            raise MetricError("EMF property '_aws' is reserved for the metadata object")
        if not isinstance(value, str | int | float) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise MetricError(
                f"EMF property {name!r} must be a string, bool or finite number, got {value!r}"
            )
    return dict(properties)


def _document(
    namespace: str,
    timestamp_ms: int,
    labels: _LabelSet,
    metrics: Sequence[tuple[str, str, float]],
    properties: Mapping[str, PropertyValue],
    context: Mapping[str, PropertyValue] | None = None,
) -> dict[str, object]:
    dimension_names = [name for name, _ in labels]
    if len(dimension_names) > EMF_MAX_DIMENSIONS:
        raise MetricError(
            f"EMF allows {EMF_MAX_DIMENSIONS} dimensions per set; labels {dimension_names} "
            f"on {metrics[0][0]!r} are too many"
        )
    members: dict[str, object] = dict(properties)
    for name, label_value in labels:
        if name in members or name == "_aws":
            raise MetricError(f"EMF dimension {name!r} collides with a property or metric member")
        members[name] = label_value if label_value.strip() else _EMPTY_DIMENSION
    for name, value in (context or {}).items():  # a label of the same name is the line's
        members.setdefault(name, value)
    for name, _, number in metrics:
        if name in members:
            raise MetricError(f"EMF metric {name!r} collides with a dimension or property member")
        members[name] = int(number) if number.is_integer() and abs(number) < 2**53 else number
    directives = [
        {
            "Namespace": namespace,
            "Dimensions": [dimension_names],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit, _ in chunk],
        }
        for chunk in (
            metrics[i : i + EMF_MAX_METRICS_PER_DIRECTIVE]
            for i in range(0, len(metrics), EMF_MAX_METRICS_PER_DIRECTIVE)
        )
    ]
    return {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}, **members}


def render_emf(
    snapshots: Sequence[MetricSnapshot],
    *,
    namespace: str,
    timestamp_ms: int,
    properties: Mapping[str, PropertyValue] | None = None,
) -> list[str]:
    """EMF JSON lines (without newlines) for ``snapshots``, one per label set.

    Args:
        snapshots: what to export, e.g. ``registry.collect()`` or a delta of it.
        namespace: the CloudWatch namespace (1-255 characters, not ``AWS/...``).
        timestamp_ms: the metrics' time, milliseconds since the Unix epoch.
        properties: extra non-dimension members on every line (``run_id``, ...),
            searchable in Logs Insights without creating metrics.

    Raises:
        MetricError: bad namespace, too many labels, or a name collision between
            labels, metrics and properties.
    """
    rendered = _render_label_sets(
        snapshots, namespace=namespace, timestamp_ms=timestamp_ms, properties=properties
    )
    return [line for _, line in rendered]


def _render_label_sets(
    snapshots: Sequence[MetricSnapshot],
    *,
    namespace: str,
    timestamp_ms: int,
    properties: Mapping[str, PropertyValue] | None = None,
    context: Mapping[str, PropertyValue] | None = None,
) -> list[tuple[_LabelSet, str]]:
    """:func:`render_emf`'s lines, each beside its label set (sorted); ``context``: members
    like ``properties``, but a label of the same name takes their place on its line."""
    _validate_namespace(namespace)
    if isinstance(timestamp_ms, bool) or not isinstance(timestamp_ms, int):
        raise MetricError(f"EMF timestamp_ms must be an int, got {timestamp_ms!r}")
    props = _validate_properties(properties or {})
    groups: dict[_LabelSet, list[tuple[str, str, float]]] = {}
    for metric in snapshots:
        for labels, name, unit, value in _metric_values(metric):
            groups.setdefault(labels, []).append((name, unit, value))
    return [
        (
            labels,
            json.dumps(
                _document(namespace, timestamp_ms, labels, groups[labels], props, context),
                separators=(",", ":"),
                allow_nan=False,
            ),
        )
        for labels in sorted(groups)
    ]


class _StandardStream:
    """``sys.stdout`` or ``sys.stderr`` as it is when written to (a test or a CLI runner
    may have replaced it since the exporter was built)."""

    def __init__(self, name: Literal["stdout", "stderr"]) -> None:
        self.name = name

    def write(self, text: str, /) -> object:
        stream: TextIO = getattr(sys, self.name)
        written = stream.write(text)
        stream.flush()
        return written


class _AppendedFile:
    """A file EMF lines are appended to, opened at the first write (a CloudWatch agent
    tailing it reads whole lines: each export is one write of whole lines).

    Written unbuffered: a write the disk refuses leaves nothing behind in a buffer, so the
    next export, which writes the same increments again, does not write them twice; a line
    the disk, or a process killed as it wrote, cut short is ended before the next, which
    would otherwise be glued to it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._torn = False
        self.written = 0
        """Bytes of the latest :meth:`write`'s text that reached the file (all of them
        when it returned; when it raised, the lines before that many bytes went out whole)."""

    def write(self, text: str, /) -> object:
        self.written = 0
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._torn = self._torn or _ends_cut(self.path)
        ending = b"\n" if self._torn else b""
        data = memoryview(ending + text.encode("utf-8"))
        whole = len(data)
        try:
            for _ in range(whole):  # each write takes at least a byte, or raises
                if not data:
                    break
                data = data[os.write(self._fd, data) :]
        finally:
            self._torn = 0 < len(data) < whole or (self._torn and len(data) == whole)
            self.written = max(0, whole - len(data) - len(ending))
        return len(text)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _ends_cut(path: Path) -> bool:
    """Whether the regular file ``path`` ends in a line cut short (another process killed
    as it wrote, a full disk before a restart): the next line must not be glued to it and
    lost with it. A file that cannot be read (a pipe, no read permission) is taken as whole."""
    try:
        found = path.stat()
        if not stat.S_ISREG(found.st_mode) or found.st_size == 0:
            return False
        with path.open("rb") as file:
            file.seek(found.st_size - 1)
            return file.read(1) != b"\n"
    except OSError:
        return False


EMF_NAMESPACE_RULE = "1-255 characters, not starting with 'AWS/'"
"""What a CloudWatch namespace must be (the setting ``emf_namespace`` is refused otherwise)."""


def valid_emf_namespace(namespace: str) -> bool:
    """Whether CloudWatch takes ``namespace`` (:data:`EMF_NAMESPACE_RULE`)."""
    try:
        _validate_namespace(namespace)
    except MetricError:
        return False
    return True


EMF_STREAMS = ("stderr", "stdout")
"""The standard streams the setting ``emf_output`` names; any other value is a file."""


def emf_output_usable(output: str) -> bool:
    """Whether ``emf_output`` can take EMF lines: ``stderr``, ``stdout``, or a file (not a
    directory) in a directory that exists. Refused: space at either end and ``STDOUT``-like
    spellings (each would have been a file of that name in the working directory), so the
    metrics of a whole job are not lost to a warning at its end."""
    if output != output.strip() or not output:
        return False
    if output in EMF_STREAMS:
        return True
    if output.lower() in EMF_STREAMS:
        return False
    path = Path(output).expanduser()
    return not path.is_dir() and path.parent.is_dir()


class EmfExporter:
    """Writes a registry's metrics as EMF lines to a stream, as deltas between emits.

    ``metrics_exporters = ["emf"]``: batch jobs export once at exit (the first emit carries
    the totals); long-running processes call it periodically. Writing to stderr (the
    setting's default) or stdout is enough on Lambda and ECS/EKS with the CloudWatch agent
    or awslogs driver: both streams reach CloudWatch Logs.
    """

    kind: ClassVar[str] = "emf"

    def __init__(
        self,
        stream: TextSink,
        *,
        namespace: str,
        registry: Registry | None = None,
        properties: Mapping[str, PropertyValue] | None = None,
        context: Mapping[str, PropertyValue] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _validate_namespace(namespace)
        self._stream = stream
        self._namespace = namespace
        self._registry = registry
        self._properties = _validate_properties(properties or {})
        self._context = _validate_properties(context or {})
        """What every line says of the process (its job, lane, run id) unless the line has
        a label of that name: a metric labelled ``lane`` (the observability database's
        gauges) is that lane's, and its line is exported, not refused as a collision."""
        self._clock = clock
        self._deltas = DeltaTracker()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ExporterSettings, job: str) -> EmfExporter:
        """Lines in ``emf_namespace`` to ``emf_output`` (``stderr``, ``stdout`` or a file
        appended to), each with the property ``etl_job``: the job, searchable in Logs
        Insights without being a dimension; and the process's ``lane`` and ``run_id``, as
        every log line on stderr carries them (a metric labelled ``lane``, ``run_id`` or
        ``etl_job`` has its label's value there instead: the dimension).

        Raises:
            MetricError: a namespace CloudWatch refuses.
        """
        output = settings.emf_output
        stream: TextSink
        if output in ("stdout", "stderr"):
            stream = _StandardStream("stdout" if output == "stdout" else "stderr")
        else:
            stream = _AppendedFile(Path(output).expanduser())
        from etl_core.logging import process_context

        run = {
            name: value
            for name, value in process_context().items()
            if name in ("lane", "run_id") and isinstance(value, str) and value
        }
        context: dict[str, PropertyValue] = {"etl_job": job, **run}
        return cls(stream, namespace=settings.emf_namespace, context=context)

    def emit(self) -> int:
        """Write one line per label set; returns the number of lines written."""
        registry = self._registry if self._registry is not None else default_registry()
        return self._emit(registry)

    def export(self, registry: Registry) -> None:
        """Write what changed in ``registry`` since the previous export, one line per label set.

        Raises:
            MetricExportError: the stream or file cannot be written.
            MetricError: a label set CloudWatch cannot take (too many labels, a collision).
        """
        try:
            self._emit(registry)
        except (OSError, ValueError) as exc:
            if isinstance(exc, MetricError):
                raise
            raise MetricExportError(self.kind, self._target(), str(exc)) from exc

    def close(self) -> None:
        """Close the file written to (a standard stream stays open)."""
        close = getattr(self._stream, "close", None)
        if isinstance(self._stream, _AppendedFile) and callable(close):
            close()

    def _target(self) -> str:
        if isinstance(self._stream, _StandardStream):
            return self._stream.name
        if isinstance(self._stream, _AppendedFile):
            return str(self._stream.path)
        return type(self._stream).__name__

    def _emit(self, registry: Registry) -> int:
        with self._lock:
            snapshots = registry.collect()
            increments = self._deltas.diff(snapshots, changed_only=True)
            rendered = _render_label_sets(
                increments,
                namespace=self._namespace,
                timestamp_ms=int(self._clock() * 1000),
                properties=self._properties,
                context=self._context,
            )
            try:
                if rendered:
                    self._stream.write("".join(f"{line}\n" for _, line in rendered))
                    flush = getattr(self._stream, "flush", None)
                    if callable(flush):
                        flush()
            except OSError:
                self._deltas.advance(snapshots, skip=self._unwritten(increments, rendered))
                raise
            self._deltas.advance(snapshots)
        return len(rendered)

    def _unwritten(
        self, increments: Sequence[MetricSnapshot], rendered: Sequence[tuple[_LabelSet, str]]
    ) -> set[tuple[str, _LabelSet]]:
        """The series of the lines a failed write did not write whole: the next export
        carries their increments again; a line written whole is never written twice (a
        full disk took the first lines of an export: they were counted twice)."""
        written = self._stream.written if isinstance(self._stream, _AppendedFile) else 0
        unwritten: set[_LabelSet] = set()
        end = 0
        for labels, line in rendered:
            end += len(line.encode("utf-8")) + 1
            if end > written:
                unwritten.add(labels)
        return {
            (metric.name, series.labels)
            for metric in increments
            for series in metric.series
            if tuple(sorted(series.labels)) in unwritten
        }
