"""Thread-safe metric registry with labelled counters, gauges and histograms.

Metric handles are cheap definitions; values live in a :class:`Registry`. A handle
created with ``registry=None`` (the module-level :func:`counter`, :func:`gauge`,
:func:`histogram`) resolves the *current default* registry on every operation, so
it can be defined at module level without registering anything at import time, and
:func:`use_registry` (or ``etl_core.testing.metrics.capture_metrics``) redirects it.

Names follow the platform convention ``etl_<lane>_<what>_<unit>``: counters end in
``_total``, durations use ``_seconds`` and sizes ``_bytes`` (base units only).
"""

from __future__ import annotations

import bisect
import math
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Self

from etl_core.errors import EtlError

__all__ = [
    "DEFAULT_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "LabelValue",
    "MetricError",
    "MetricKind",
    "MetricSnapshot",
    "Registry",
    "SeriesSnapshot",
    "Summary",
    "counter",
    "default_registry",
    "gauge",
    "histogram",
    "use_registry",
]

#: Default histogram buckets in seconds: sub-second calls up to hour-long batch steps.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)

_PROMETHEUS_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_CONVENTION_NAME = re.compile(r"^etl_[a-z][a-z0-9]*(_[a-z0-9]+)+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_SUFFIXES = ("_bucket", "_count", "_sum")
_NON_BASE_UNITS = frozenset(
    {
        "ms",
        "us",
        "ns",
        "sec",
        "secs",
        "milliseconds",
        "microseconds",
        "nanoseconds",
        "minutes",
        "hours",
        "days",
        "kb",
        "mb",
        "gb",
        "kilobytes",
        "megabytes",
        "gigabytes",
    }
)
_HISTOGRAM_RESERVED_LABELS = frozenset({"le"})

LabelValue = str | int


class MetricError(EtlError, ValueError):
    """A metric was defined or used wrongly (bad name, labels, value or conflicting definition)."""


class MetricKind(StrEnum):
    """The instrument type, spelled as in the Prometheus ``# TYPE`` line."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"
    """Quantiles computed elsewhere (a ``quantile`` label), set like a gauge: the only
    type Prometheus's linter (``promtool check metrics``) allows a ``quantile`` label on."""

    @property
    def is_set(self) -> bool:
        """A value set as it is now (a gauge, a summary's quantiles), not accumulated."""
        return self in (MetricKind.GAUGE, MetricKind.SUMMARY)


# ------------------------------------------------------------------ definitions


@dataclass(frozen=True)
class _Definition:
    name: str
    kind: MetricKind
    help: str
    label_names: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    def describe(self) -> str:
        labels = ", ".join(self.label_names) or "no labels"
        extra = f", buckets={list(self.buckets)}" if self.kind is MetricKind.HISTOGRAM else ""
        return f"{self.kind} ({labels}{extra}, help={self.help!r})"


def _validate_name(name: str, kind: MetricKind) -> None:
    if not isinstance(name, str) or not _PROMETHEUS_NAME.match(name):
        raise MetricError(
            f"metric name {name!r} is not a valid Prometheus name "
            "(expected [a-zA-Z_:][a-zA-Z0-9_:]*)"
        )
    if not _CONVENTION_NAME.match(name):
        raise MetricError(
            f"metric name {name!r} does not follow the convention etl_<lane>_<what>_<unit> "
            "(lower-case snake case starting with 'etl_')"
        )
    segments = name.split("_")
    bad_units = sorted(_NON_BASE_UNITS.intersection(segments))
    if bad_units:
        raise MetricError(
            f"metric name {name!r} uses the non-base unit {bad_units[0]!r}; "
            "use base units (_seconds, _bytes)"
        )
    if name.endswith(_RESERVED_SUFFIXES):
        raise MetricError(
            f"metric name {name!r} ends in a suffix reserved for histogram series "
            f"({', '.join(_RESERVED_SUFFIXES)})"
        )
    if kind is MetricKind.COUNTER:
        if not name.endswith("_total") or len(segments) < 4:
            raise MetricError(
                f"counter {name!r} must be named etl_<lane>_<what>_total (end in '_total')"
            )
    elif name.endswith("_total"):
        raise MetricError(f"{kind} {name!r} must not end in '_total' (reserved for counters)")


def _validate_label_names(
    name: str, kind: MetricKind, label_names: Sequence[str]
) -> tuple[str, ...]:
    if isinstance(label_names, str):
        raise MetricError(
            f"metric {name!r}: labels must be a sequence of names, not the string {label_names!r}"
        )
    names = tuple(label_names)
    for label in names:
        if not isinstance(label, str) or not _LABEL_NAME.match(label):
            raise MetricError(
                f"metric {name!r}: label name {label!r} is invalid "
                "(expected [a-zA-Z_][a-zA-Z0-9_]*)"
            )
        if label.startswith("__"):
            raise MetricError(
                f"metric {name!r}: label name {label!r} is reserved (starts with '__')"
            )
        if kind is MetricKind.HISTOGRAM and label in _HISTOGRAM_RESERVED_LABELS:
            raise MetricError(f"histogram {name!r}: label name {label!r} is reserved for buckets")
        if label == "quantile" and kind is not MetricKind.SUMMARY:
            raise MetricError(
                f"{kind} {name!r}: label name 'quantile' is reserved for summaries "
                "(Prometheus refuses it elsewhere): use registry.summary()"
            )
    if kind is MetricKind.SUMMARY and "quantile" not in names:
        raise MetricError(f"summary {name!r} needs a 'quantile' label, got {list(names)}")
    duplicates = sorted({label for label in names if names.count(label) > 1})
    if duplicates:
        raise MetricError(f"metric {name!r}: label names repeated: {', '.join(duplicates)}")
    return names


def _validate_buckets(name: str, buckets: Sequence[float]) -> tuple[float, ...]:
    try:
        bounds = [float(b) for b in buckets]
    except (TypeError, ValueError):
        raise MetricError(
            f"histogram {name!r}: buckets must be numbers, got {list(buckets)!r}"
        ) from None
    if bounds and math.isinf(bounds[-1]) and bounds[-1] > 0:
        bounds.pop()
    if not bounds:
        raise MetricError(f"histogram {name!r}: buckets must hold at least one finite upper bound")
    if any(not math.isfinite(b) for b in bounds):
        raise MetricError(f"histogram {name!r}: bucket bounds must be finite, got {list(buckets)}")
    if any(a >= b for a, b in pairwise(bounds)):
        raise MetricError(
            f"histogram {name!r}: bucket bounds must be strictly increasing, got {list(buckets)}"
        )
    return (*bounds, math.inf)


def _define(
    name: str,
    kind: MetricKind,
    help: str,
    label_names: Sequence[str],
    buckets: Sequence[float] = (),
) -> _Definition:
    _validate_name(name, kind)
    if not isinstance(help, str) or not help.strip():
        raise MetricError(
            f"metric {name!r}: help text is required (one line saying what it counts)"
        )
    names = _validate_label_names(name, kind, label_names)
    bounds = _validate_buckets(name, buckets) if kind is MetricKind.HISTOGRAM else ()
    return _Definition(name=name, kind=kind, help=help, label_names=names, buckets=bounds)


# --------------------------------------------------------------------- storage


@dataclass
class _Series:
    value: float = 0.0
    bucket_counts: list[int] = field(default_factory=list)
    count: int = 0


class _Family:
    """One metric's values in one registry, guarded by its own lock."""

    def __init__(self, definition: _Definition) -> None:
        self.definition = definition
        self.lock = threading.Lock()
        self.series: dict[tuple[str, ...], _Series] = {}
        if not definition.label_names:
            self.series[()] = self._new_series()

    def _new_series(self) -> _Series:
        return _Series(bucket_counts=[0] * len(self.definition.buckets))

    def get(self, key: tuple[str, ...]) -> _Series:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = self._new_series()
        return series

    def add(self, key: tuple[str, ...], amount: float) -> None:
        with self.lock:
            self.get(key).value += amount

    def set(self, key: tuple[str, ...], value: float) -> None:
        with self.lock:
            self.get(key).value = value

    def observe(self, key: tuple[str, ...], value: float) -> None:
        index = bisect.bisect_left(self.definition.buckets, value)
        with self.lock:
            series = self.get(key)
            series.bucket_counts[index] += 1
            series.value += value
            series.count += 1

    def read(self, key: tuple[str, ...]) -> SeriesSnapshot:
        """One series' snapshot; a series never touched reads as zero."""
        with self.lock:
            series = self.series.get(key)
            return self._freeze(key, series if series is not None else self._new_series())

    def snapshot(self) -> MetricSnapshot:
        d = self.definition
        with self.lock:
            series = tuple(self._freeze(key, s) for key, s in sorted(self.series.items()))
        return MetricSnapshot(
            name=d.name, kind=d.kind, help=d.help, label_names=d.label_names, series=series
        )

    def _freeze(self, key: tuple[str, ...], series: _Series) -> SeriesSnapshot:
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip(self.definition.buckets, series.bucket_counts, strict=True):
            running += n
            cumulative.append((bound, running))
        return SeriesSnapshot(
            labels=tuple(zip(self.definition.label_names, key, strict=True)),
            value=series.value,
            count=series.count,
            buckets=tuple(cumulative),
        )


@dataclass(frozen=True)
class SeriesSnapshot:
    """One labelled series at collection time.

    For counters and gauges ``value`` is the current value. For histograms
    ``value`` is the sum of observations, ``count`` their number and ``buckets``
    the cumulative ``(upper bound, count)`` pairs ending with ``+Inf``.
    """

    labels: tuple[tuple[str, str], ...]
    value: float
    count: int = 0
    buckets: tuple[tuple[float, int], ...] = ()

    @property
    def sum(self) -> float:
        """The sum of a histogram's observations (same as ``value``)."""
        return self.value

    def label_dict(self) -> dict[str, str]:
        """The labels as a plain dict."""
        return dict(self.labels)


@dataclass(frozen=True)
class MetricSnapshot:
    """A metric family at collection time: definition plus every series."""

    name: str
    kind: MetricKind
    help: str
    label_names: tuple[str, ...]
    series: tuple[SeriesSnapshot, ...]


class Registry:
    """A set of metric families; thread-safe.

    Creating a metric that already exists with the same definition returns a handle
    to the existing one; a conflicting definition raises :class:`MetricError`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        """Get or create a counter (monotonic; name ends in ``_total``)."""
        return Counter(name, help, labels, registry=self)

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        """Get or create a gauge (a value that goes up and down)."""
        return Gauge(name, help, labels, registry=self)

    def summary(self, name: str, help: str, labels: Sequence[str] = ("quantile",)) -> Summary:
        """Get or create a summary of quantiles computed elsewhere (``labels`` include
        ``quantile``), each set like a gauge."""
        return Summary(name, help, labels, registry=self)

    def histogram(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        """Get or create a histogram (default buckets suit durations in seconds)."""
        return Histogram(name, help, labels, buckets=buckets, registry=self)

    def _family(self, definition: _Definition) -> _Family:
        family = self._families.get(definition.name)
        if family is not None and family.definition is definition:
            return family
        with self._lock:
            family = self._families.get(definition.name)
            if family is None:
                family = self._families[definition.name] = _Family(definition)
            elif family.definition != definition:
                raise MetricError(
                    f"metric {definition.name!r} is already registered as "
                    f"{family.definition.describe()}; cannot redefine it as {definition.describe()}"
                )
            return family

    def names(self) -> tuple[str, ...]:
        """The registered metric names, sorted."""
        with self._lock:
            return tuple(sorted(self._families))

    def collect(self) -> tuple[MetricSnapshot, ...]:
        """A consistent-per-metric snapshot of every family, sorted by name."""
        with self._lock:
            families = [self._families[name] for name in sorted(self._families)]
        return tuple(family.snapshot() for family in families)

    def _registered(self, name: str) -> _Family:
        with self._lock:
            family = self._families.get(name)
            if family is not None:
                return family
            known = ", ".join(sorted(self._families)) or "none"
        raise MetricError(f"metric {name!r} is not registered; registered: {known}")

    def kind(self, name: str) -> MetricKind:
        """The type of a registered metric.

        Raises:
            MetricError: the metric is not registered.
        """
        return self._registered(name).definition.kind

    def series(self, name: str, **labels: LabelValue) -> SeriesSnapshot:
        """The snapshot of one series; a series never touched reads as zero.

        Raises:
            MetricError: the metric is not registered or the labels do not match.
        """
        family = self._registered(name)
        return family.read(_label_key(family.definition, labels))

    def value(self, name: str, **labels: LabelValue) -> float:
        """The current value of a counter or gauge series (zero if never touched).

        Raises:
            MetricError: unknown metric, wrong labels, or a histogram (use :meth:`series`).
        """
        if self.kind(name) is MetricKind.HISTOGRAM:
            raise MetricError(
                f"metric {name!r} is a histogram; read it with .series() (count, sum, buckets)"
            )
        return self.series(name, **labels).value


# ------------------------------------------------------------- default registry

_GLOBAL_REGISTRY = Registry()
_default: Registry = _GLOBAL_REGISTRY
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The registry that unbound metric handles and exporters use right now."""
    return _default


@contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Install ``registry`` as the process-wide default for the duration of the block.

    Process-wide (not per-context) on purpose, so work running in thread pools is
    captured too. The previous default is restored on exit.
    """
    global _default
    with _default_lock:
        previous, _default = _default, registry
    try:
        yield registry
    finally:
        with _default_lock:
            _default = previous


# --------------------------------------------------------------------- handles


def _label_key(definition: _Definition, labels: Mapping[str, LabelValue]) -> tuple[str, ...]:
    if set(labels) != set(definition.label_names):
        expected = ", ".join(definition.label_names) or "no labels"
        given = ", ".join(sorted(labels)) or "no labels"
        raise MetricError(f"metric {definition.name!r} expects labels ({expected}), got ({given})")
    key = []
    for label in definition.label_names:
        value = labels[label]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MetricError(
                f"metric {definition.name!r}: label {label!r} must be a str or int, "
                f"got {type(value).__name__}"
            )
        if label == "quantile" and definition.kind is MetricKind.SUMMARY:
            _check_quantile(definition.name, str(value))
        key.append(str(value))
    return tuple(key)


def _check_quantile(name: str, value: str) -> None:
    """A summary's ``quantile`` is a number from 0 to 1: the Prometheus text parsers
    (``promtool check metrics``, the Pushgateway, node_exporter) refuse anything else."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 <= number <= 1:
        raise MetricError(
            f"summary {name!r}: label 'quantile' must be a number from 0 to 1, got {value!r}"
        )


class _Metric:
    """Shared handle logic: definition, registry resolution and label binding."""

    def __init__(
        self,
        definition: _Definition,
        registry: Registry | None,
        key: tuple[str, ...] | None = None,
    ) -> None:
        self._definition = definition
        self._registry = registry
        self._key = key if key is not None or definition.label_names else ()
        if registry is not None:
            registry._family(definition)

    @property
    def name(self) -> str:
        """The metric name."""
        return self._definition.name

    @property
    def label_names(self) -> tuple[str, ...]:
        """The label names fixed at creation."""
        return self._definition.label_names

    @property
    def is_bound(self) -> bool:
        """True when the handle addresses one series (labels given, or none declared)."""
        return self._key is not None

    @property
    def registry(self) -> Registry:
        """The registry this handle writes to (the current default when unbound)."""
        return self._registry if self._registry is not None else default_registry()

    def labels(self, **labels: LabelValue) -> Self:
        """The series for these label values; every declared label must be given."""
        if self._key is not None:
            raise MetricError(
                f"metric {self.name!r} is already bound to labels "
                f"{dict(zip(self.label_names, self._key, strict=True))}"
            )
        key = _label_key(self._definition, labels)
        return type(self)._bound(self._definition, self._registry, key)

    @classmethod
    def _bound(
        cls, definition: _Definition, registry: Registry | None, key: tuple[str, ...]
    ) -> Self:
        handle = cls.__new__(cls)
        _Metric.__init__(handle, definition, registry, key)
        return handle

    def snapshot(self) -> SeriesSnapshot:
        """This series' current state (zero if never touched)."""
        family, key = self._target()
        return family.read(key)

    def _target(self) -> tuple[_Family, tuple[str, ...]]:
        if self._key is None:
            raise MetricError(
                f"metric {self.name!r} has labels ({', '.join(self.label_names)}); "
                "call .labels(...) first"
            )
        return self.registry._family(self._definition), self._key

    def __repr__(self) -> str:
        bound = "" if not self._key else f" {dict(zip(self.label_names, self._key, strict=True))}"
        return f"<{type(self).__name__} {self.name}{bound}>"


def _finite_number(name: str, what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetricError(f"metric {name!r}: {what} must be a number, got {type(value).__name__}")
    number = float(value)
    if math.isnan(number):
        raise MetricError(f"metric {name!r}: {what} must not be NaN")
    return number


class Counter(_Metric):
    """A monotonically increasing count (files processed, rows rejected, ...)."""

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        *,
        registry: Registry | None = None,
    ) -> None:
        super().__init__(_define(name, MetricKind.COUNTER, help, labels), registry)

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (>= 0); counters never go down."""
        number = _finite_number(self.name, "increment", amount)
        if number < 0 or math.isinf(number):
            raise MetricError(
                f"counter {self.name!r} can only increase by a finite amount >= 0, got {amount}"
            )
        family, key = self._target()
        family.add(key, number)

    def value(self) -> float:
        """The current value of this series."""
        return self.snapshot().value


class Summary(_Metric):
    """Quantiles computed elsewhere (run durations over a window), one series per
    ``quantile`` label value, set like a gauge; no ``_sum`` or ``_count``."""

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = ("quantile",),
        *,
        registry: Registry | None = None,
    ) -> None:
        super().__init__(_define(name, MetricKind.SUMMARY, help, labels), registry)

    def set(self, value: float) -> None:
        """Set this quantile to ``value``."""
        family, key = self._target()
        family.set(key, _finite_number(self.name, "value", value))


class Gauge(_Metric):
    """A value that goes up and down (queue depth, in-flight work, last success time)."""

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        *,
        registry: Registry | None = None,
    ) -> None:
        super().__init__(_define(name, MetricKind.GAUGE, help, labels), registry)

    def set(self, value: float) -> None:
        """Set the gauge to ``value``."""
        family, key = self._target()
        family.set(key, _finite_number(self.name, "value", value))

    def inc(self, amount: float = 1) -> None:
        """Add ``amount`` (may be negative)."""
        family, key = self._target()
        family.add(key, _finite_number(self.name, "increment", amount))

    def dec(self, amount: float = 1) -> None:
        """Subtract ``amount``."""
        family, key = self._target()
        family.add(key, -_finite_number(self.name, "decrement", amount))

    def set_to_current_time(self) -> None:
        """Set the gauge to the current Unix time in seconds (e.g. last success)."""
        self.set(time.time())

    @contextmanager
    def track_inprogress(self) -> Iterator[None]:
        """Increment on entry and decrement on exit, even when the block raises."""
        self.inc()
        try:
            yield
        finally:
            self.dec()

    def value(self) -> float:
        """The current value of this series."""
        return self.snapshot().value


class Histogram(_Metric):
    """Observations counted into cumulative buckets, plus their sum and count."""

    def __init__(
        self,
        name: str,
        help: str,
        labels: Sequence[str] = (),
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        registry: Registry | None = None,
    ) -> None:
        super().__init__(_define(name, MetricKind.HISTOGRAM, help, labels, buckets), registry)

    @property
    def buckets(self) -> tuple[float, ...]:
        """The bucket upper bounds, ending with ``inf``."""
        return self._definition.buckets

    def observe(self, value: float) -> None:
        """Record one observation (seconds for ``_seconds`` histograms)."""
        family, key = self._target()
        family.observe(key, _finite_number(self.name, "observation", value))


def counter(name: str, help: str, labels: Sequence[str] = ()) -> Counter:
    """A counter handle on the current default registry (safe at module level)."""
    return Counter(name, help, labels)


def gauge(name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
    """A gauge handle on the current default registry (safe at module level)."""
    return Gauge(name, help, labels)


def histogram(
    name: str,
    help: str,
    labels: Sequence[str] = (),
    buckets: Sequence[float] = DEFAULT_BUCKETS,
) -> Histogram:
    """A histogram handle on the current default registry (safe at module level)."""
    return Histogram(name, help, labels, buckets=buckets)
