"""StatsD over UDP: a small client and a registry exporter.

Lines look like ``<prefix><name>:<value>|<type>`` with ``c`` (counter), ``g``
(gauge), ``ms`` (timing) or ``h`` (histogram), plus DogStatsD tags
``|#key:value,...`` when the client sends tags. Lines are packed into datagrams
no larger than ``max_packet_bytes`` (default fits a 1500-byte Ethernet MTU).

StatsD is fire-and-forget: a failed send is logged, never raised, so metrics can
never fail a job. :class:`StatsdExporter` only marks a flush as exported when every
datagram left, so counts are resent after a failure instead of lost.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Literal

from etl_core.metrics.deltas import DeltaTracker
from etl_core.metrics.exporter import MetricExportError
from etl_core.metrics.registry import (
    MetricError,
    MetricKind,
    MetricSnapshot,
    Registry,
    SeriesSnapshot,
    default_registry,
)
from etl_core.resources import Closeable

if TYPE_CHECKING:
    from etl_core.metrics.exporter import ExporterSettings

__all__ = [
    "STATSD_ADDRESS_RULE",
    "STATSD_PREFIX_RULE",
    "StatsdBatch",
    "StatsdClient",
    "StatsdExporter",
    "parse_statsd_address",
    "valid_statsd_prefix",
]

logger = logging.getLogger(__name__)

TagFormat = Literal["dogstatsd", "none"]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_TAG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_TAG_VALUE_FORBIDDEN = re.compile(r"[,|#\s]")
_PATH_SEGMENT_FORBIDDEN = re.compile(r"[^A-Za-z0-9_\-]")
_UDP_MAX_PAYLOAD = 65_507


def _format_value(name: str, value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MetricError(f"statsd {name!r}: value must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise MetricError(f"statsd {name!r}: value must be finite, got {value}")
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


class _StatsdWriter(ABC):
    """Formats StatsD lines; subclasses decide whether a line is sent now or buffered."""

    def __init__(self, prefix: str, tags: Mapping[str, str], tag_format: TagFormat) -> None:
        self._prefix = prefix
        self._constant_tags = dict(tags)
        self._tag_format = tag_format

    @abstractmethod
    def _emit(self, entry: str) -> None:
        """Send or buffer one entry (one line, or a gauge reset pair)."""

    @property
    def sends_tags(self) -> bool:
        """True when lines carry DogStatsD ``|#tags``."""
        return self._tag_format == "dogstatsd"

    def _line(self, name: str, value: str, kind: str, tags: Mapping[str, str] | None) -> str:
        full = f"{self._prefix}{name}"
        if not _NAME.match(full):
            raise MetricError(
                f"statsd metric name {full!r} is invalid (letters, digits, '_', '.', '-' only)"
            )
        merged = {**self._constant_tags, **(tags or {})}
        if not merged:
            return f"{full}:{value}|{kind}"
        if not self.sends_tags:
            raise MetricError(
                f"statsd metric {full!r}: tags given but the client uses tag_format='none'"
            )
        return f"{full}:{value}|{kind}|#{_format_tags(merged)}"

    def incr(self, name: str, value: float = 1, *, tags: Mapping[str, str] | None = None) -> None:
        """Count ``value`` occurrences (``|c``)."""
        self._emit(self._line(name, _format_value(name, value), "c", tags))

    def gauge(self, name: str, value: float, *, tags: Mapping[str, str] | None = None) -> None:
        """Set a gauge (``|g``); negative values are sent as a reset to 0 then the value."""
        text = _format_value(name, value)
        line = self._line(name, text, "g", tags)
        if text.startswith("-"):
            # "-5|g" alone means "decrease by 5"; both lines share one datagram.
            line = f"{self._line(name, '0', 'g', tags)}\n{line}"
        self._emit(line)

    def timing(
        self, name: str, milliseconds: float, *, tags: Mapping[str, str] | None = None
    ) -> None:
        """Record a duration in milliseconds (``|ms``)."""
        self._emit(self._line(name, _format_value(name, milliseconds), "ms", tags))

    def histogram(self, name: str, value: float, *, tags: Mapping[str, str] | None = None) -> None:
        """Record a value into a server-side histogram (``|h``, DogStatsD)."""
        self._emit(self._line(name, _format_value(name, value), "h", tags))


def _format_tags(tags: Mapping[str, str]) -> str:
    parts = []
    for key, value in tags.items():
        if not _TAG_KEY.match(key):
            raise MetricError(
                f"statsd tag key {key!r} is invalid (letters, digits, '_', '.', '-', '/')"
            )
        if not isinstance(value, str) or _TAG_VALUE_FORBIDDEN.search(value):
            raise MetricError(
                f"statsd tag {key!r} value {value!r} must be a string without ',', '|', '#' "
                "or whitespace"
            )
        parts.append(f"{key}:{value}" if value else key)
    return ",".join(parts)


def _pack(entries: Iterable[str], max_bytes: int) -> list[bytes]:
    """Join entries with newlines into datagrams of at most ``max_bytes``.

    An entry longer than ``max_bytes`` travels alone; one that no UDP datagram can
    carry is dropped with a warning, since resending it could never succeed.
    """
    return [packet for packet, _ in _pack_groups([[entry] for entry in entries], max_bytes)]


def _pack_groups(groups: Sequence[Sequence[str]], max_bytes: int) -> list[tuple[bytes, set[int]]]:
    """Datagrams of at most ``max_bytes`` and the indices of the groups each carries.

    A group's lines (a series' ``_count`` and ``_sum``) travel in one datagram, alone when
    together they exceed ``max_bytes`` (as a line longer than it does), so a datagram lost
    is whole series not sent, never half of one: a series is resent whole, and a half
    of it that went out would be counted twice. Only a group no UDP datagram can carry is
    split.
    """
    units: list[tuple[bytes, int]] = []
    for index, lines in enumerate(groups):
        encoded = [line.encode("utf-8") for line in lines]
        for line in encoded:
            if len(line) > _UDP_MAX_PAYLOAD:
                logger.warning("statsd line of %d bytes dropped: too large for UDP", len(line))
        fit = [line for line in encoded if len(line) <= _UDP_MAX_PAYLOAD]
        joined = b"\n".join(fit)
        units += [(joined, index)] if len(joined) <= _UDP_MAX_PAYLOAD else [(d, index) for d in fit]
    packets: list[tuple[bytes, set[int]]] = []
    current, members = b"", set[int]()
    for data, index in units:
        if not data:
            continue
        if current and len(current) + 1 + len(data) <= max_bytes:
            current += b"\n" + data
            members.add(index)
            continue
        if current:
            packets.append((current, members))
        current, members = data, {index}
    if current:
        packets.append((current, members))
    return packets


class StatsdClient(_StatsdWriter, Closeable):
    """Sends StatsD lines over UDP; each call is one datagram unless batched.

    Args:
        host: StatsD server host.
        port: StatsD server UDP port.
        prefix: prepended verbatim to every name (e.g. ``"prod."``).
        tags: constant tags added to every line (DogStatsD only).
        tag_format: ``"dogstatsd"`` to send ``|#tags``; ``"none"`` for plain StatsD.
        max_packet_bytes: upper bound of one datagram's payload.
        warn_each_failure: log a warning for each datagram that could not be sent (what
            application code calling the client directly hears); ``False`` leaves it to
            the caller, as :class:`StatsdExporter` built from settings does: its export
            raises one :class:`MetricExportError`, logged once, instead of a warning per
            datagram at every export while the agent's host does not resolve.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8125,
        *,
        prefix: str = "",
        tags: Mapping[str, str] | None = None,
        tag_format: TagFormat = "dogstatsd",
        max_packet_bytes: int = 1432,
        warn_each_failure: bool = True,
    ) -> None:
        if tag_format not in {"dogstatsd", "none"}:
            raise MetricError(
                f"statsd tag_format must be 'dogstatsd' or 'none', got {tag_format!r}"
            )
        if not isinstance(port, int) or not 0 < port < 65536:
            raise MetricError(f"statsd port must be 1-65535, got {port!r}")
        if not isinstance(max_packet_bytes, int) or max_packet_bytes < 64:
            raise MetricError(
                f"statsd max_packet_bytes must be an int >= 64, got {max_packet_bytes!r}"
            )
        if tags and tag_format == "none":
            raise MetricError("statsd constant tags need tag_format='dogstatsd'")
        if tags:
            _format_tags(tags)
        super().__init__(prefix, tags or {}, tag_format)
        self.host = host
        self.port = port
        self.max_packet_bytes = max_packet_bytes
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self.last_error: OSError | None = None
        """Why the latest datagram that failed was not sent (``None``: none failed)."""
        self.warn_each_failure = warn_each_failure

    def _emit(self, entry: str) -> None:
        self.send([entry])

    def batch(self) -> StatsdBatch:
        """A buffer with the same methods, sent in as few datagrams as possible on exit."""
        return StatsdBatch(self)

    def send(self, entries: Iterable[str]) -> int:
        """Send preformatted lines packed into datagrams; returns how many failed to send."""
        failed, _ = self.send_groups([[entry] for entry in entries])
        return failed

    def send_groups(self, groups: Sequence[Sequence[str]]) -> tuple[int, set[int]]:
        """Send groups of lines packed into datagrams (a group kept in one when it fits).

        Returns:
            How many datagrams failed, and the indices of the groups they carried.
        """
        failed, unsent = 0, set[int]()
        packets = _pack_groups(groups, self.max_packet_bytes)
        for sent, (packet, members) in enumerate(packets):
            try:
                sock, address = self._connect()
            except OSError as exc:  # the name did not resolve: no lookup per datagram left
                left = packets[sent:]
                failed += len(left)
                unsent = unsent.union(*(members for _, members in left))
                self.last_error = exc
                if self.warn_each_failure:
                    logger.warning("statsd agent %s:%s not reached: %s", self.host, self.port, exc)
                break
            try:
                sock.sendto(packet, address)
            except OSError as exc:
                failed += 1
                unsent |= members
                self.last_error = exc
                if self.warn_each_failure:
                    logger.warning("statsd send to %s:%s failed: %s", self.host, self.port, exc)
        if failed:
            self.close()  # the next send looks the host up again (an agent that moved)
        return failed, unsent

    def _connect(self) -> tuple[socket.socket, tuple[str, int]]:
        with self._lock:
            if self._socket is None or self._address is None:
                family, _, _, _, address = socket.getaddrinfo(
                    self.host, self.port, type=socket.SOCK_DGRAM
                )[0]
                self._socket = socket.socket(family, socket.SOCK_DGRAM)
                self._address = (str(address[0]), int(address[1]))
            return self._socket, self._address

    def close(self) -> None:
        """Close the UDP socket (a later send reopens it)."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
            self._socket = None
            self._address = None


class StatsdBatch(_StatsdWriter):
    """Buffers lines for one client and sends them packed on :meth:`flush` or exit."""

    def __init__(self, client: StatsdClient) -> None:
        super().__init__(client._prefix, client._constant_tags, client._tag_format)
        self._client = client
        self._entries: list[str] = []

    def _emit(self, entry: str) -> None:
        self._entries.append(entry)

    @property
    def entries(self) -> list[str]:
        """The lines buffered, not yet sent."""
        return list(self._entries)

    def flush(self) -> int:
        """Send the buffered lines; returns how many datagrams failed to send."""
        entries, self._entries = self._entries, []
        return self._client.send(entries)

    def __enter__(self) -> StatsdBatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.flush()


STATSD_ADDRESS_RULE = "host:port (a port from 1 to 65535; [::1]:8125 for an IPv6 address)"
"""What the setting ``statsd_address`` must look like."""


def parse_statsd_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of ``host:port`` (``[v6 address]:port`` for IPv6).

    Raises:
        MetricError: not of that form (:data:`STATSD_ADDRESS_RULE`).
    """
    host, colon, port_text = address.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    valid_host = bool(host) and not any(c.isspace() or c in "/[]@" for c in host)
    if not colon or not valid_host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise MetricError(f"statsd address {address!r}: expected {STATSD_ADDRESS_RULE}")
    return host, int(port_text)


STATSD_PREFIX_RULE = "letters, digits, '_', '.' and '-' only"
"""What the setting ``statsd_prefix`` may hold."""


def valid_statsd_prefix(prefix: str) -> bool:
    """Whether ``prefix`` can start a StatsD name (empty: no prefix)."""
    return prefix == "" or _NAME.match(f"{prefix}x") is not None


class StatsdExporter:
    """Sends what changed in a registry since the last flush to StatsD.

    ``metrics_exporters = ["statsd"]`` (a StatsD or Datadog agent at ``statsd_address``).
    Counters go out as ``|c`` increments (zero increments are skipped), gauges as ``|g``
    levels, histograms as ``<name>_count`` and ``<name>_sum`` increments. Labels become
    DogStatsD tags, or ``.<label>.<value>`` name suffixes with ``tag_format="none"``.
    """

    kind: ClassVar[str] = "statsd"

    def __init__(self, client: StatsdClient, registry: Registry | None = None) -> None:
        self._client = client
        self._registry = registry
        self._deltas = DeltaTracker()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: ExporterSettings, job: str) -> StatsdExporter:
        """A client of ``statsd_address``, ``statsd_prefix``, ``statsd_tag_format`` (no ``job``).

        Raises:
            MetricError: ``statsd_address`` is not ``host:port``.
        """
        host, port = parse_statsd_address(settings.statsd_address)
        client = StatsdClient(
            host, port, prefix=settings.statsd_prefix, tag_format=settings.statsd_tag_format
        )
        client.warn_each_failure = False  # export() raises one error for them, logged once
        return cls(client)

    def flush(self) -> int:
        """Send the changes; returns the number of datagrams that failed (0 = all sent)."""
        registry = self._registry if self._registry is not None else default_registry()
        return self._flush(registry)

    def export(self, registry: Registry) -> None:
        """Send what changed in ``registry`` since the previous export.

        Raises:
            MetricExportError: a datagram could not be sent (the host does not resolve,
                the network refused it); what was not sent goes with the next export.
        """
        failed = self._flush(registry)
        if failed:
            target = f"{self._client.host}:{self._client.port}"
            cause = self._client.last_error
            reason = f"{failed} datagram(s) not sent ({cause})"
            raise MetricExportError(self.kind, target, reason) from cause

    def close(self) -> None:
        """Close the client's socket."""
        self._client.close()

    def _flush(self, registry: Registry) -> int:
        """Send the increments, one group of lines per series; a series whose datagram
        failed stays unexported (sent with the next flush), the others are recorded as
        sent: a datagram that went out is never sent again."""
        with self._lock:
            snapshots = registry.collect()
            series_keys: list[tuple[str, tuple[tuple[str, str], ...]]] = []
            groups: list[list[str]] = []
            for metric in self._deltas.diff(snapshots, changed_only=True):
                for series in metric.series:
                    batch = self._client.batch()
                    self._write(batch, metric, series)
                    if batch.entries:
                        series_keys.append((metric.name, series.labels))
                        groups.append(batch.entries)
            failed, unsent = self._client.send_groups(groups)
            self._deltas.advance(snapshots, skip={series_keys[i] for i in unsent})
        return failed

    def _write(self, batch: StatsdBatch, metric: MetricSnapshot, series: SeriesSnapshot) -> None:
        name, tags = self._address(metric.name, series)
        if metric.kind is MetricKind.COUNTER:
            if series.value > 0:
                batch.incr(name, series.value, tags=tags)
        elif metric.kind.is_set:
            if math.isfinite(series.value):
                batch.gauge(name, series.value, tags=tags)
        elif series.count > 0:
            count_name, _ = self._address(f"{metric.name}_count", series)
            sum_name, _ = self._address(f"{metric.name}_sum", series)
            batch.incr(count_name, series.count, tags=tags)
            if math.isfinite(series.sum):
                batch.incr(sum_name, series.sum, tags=tags)

    def _address(self, name: str, series: SeriesSnapshot) -> tuple[str, dict[str, str] | None]:
        if self._client.sends_tags:
            tags = {k: _TAG_VALUE_FORBIDDEN.sub("_", v) for k, v in series.labels}
            return name, tags or None
        suffix = "".join(
            f".{k}.{_PATH_SEGMENT_FORBIDDEN.sub('_', v) or '_'}" for k, v in series.labels
        )
        return f"{name}{suffix}", None
