"""Prometheus text exposition (format 0.0.4) and Pushgateway pushes.

Long-running services serve :func:`render_prometheus` on ``/metrics``; batch jobs
push at exit through :class:`PushgatewayExporter` (``metrics_exporters``), which calls
:func:`push_to_gateway`. The Pushgateway URL scheme is
``/metrics/job/<job>{/<label>/<value>}``; values containing ``/`` (or empty ones)
travel base64url-encoded as ``<label>@base64/<encoded>``.
"""

from __future__ import annotations

import base64
import logging
import math
import re
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from etl_core.errors import FatalError, RetryableError
from etl_core.metrics.registry import (
    MetricError,
    MetricKind,
    MetricSnapshot,
    Registry,
    SeriesSnapshot,
    default_registry,
)

if TYPE_CHECKING:
    import urllib.error

    from etl_core.metrics.exporter import ExporterSettings

__all__ = [
    "PROMETHEUS_CONTENT_TYPE",
    "PushgatewayExporter",
    "delete_from_gateway",
    "push_to_gateway",
    "pushgateway_url",
    "render_prometheus",
]

logger = logging.getLogger(__name__)

#: The ``Content-Type`` of the text exposition format 0.0.4.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_ERROR_BODY_LIMIT = 1024


# ------------------------------------------------------------------ exposition


def _format_number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_block(labels: Sequence[tuple[str, str]]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{_escape_label_value(value)}"' for name, value in labels)
    return "{" + inner + "}"


def _series_lines(metric: MetricSnapshot, series: SeriesSnapshot) -> Iterator[str]:
    labels = series.labels
    if metric.kind is not MetricKind.HISTOGRAM:
        yield f"{metric.name}{_label_block(labels)} {_format_number(series.value)}"
        return
    for bound, count in series.buckets:
        le = (*labels, ("le", _format_number(bound)))
        yield f"{metric.name}_bucket{_label_block(le)} {count}"
    yield f"{metric.name}_sum{_label_block(labels)} {_format_number(series.value)}"
    yield f"{metric.name}_count{_label_block(labels)} {series.count}"


def _metric_lines(metric: MetricSnapshot, *, relayed: bool = False) -> Iterator[str]:
    kind = "untyped" if relayed and metric.kind is MetricKind.SUMMARY else str(metric.kind)
    yield f"# HELP {metric.name} {_escape_help(metric.help)}"
    yield f"# TYPE {metric.name} {kind}"
    for series in metric.series:
        yield from _series_lines(metric, series)


def render_prometheus(registry: Registry | None = None, *, relayed: bool = False) -> str:
    """The registry (default: the current default) in Prometheus text format 0.0.4.

    ``relayed``: the text for a collector that serves it again (a Pushgateway,
    node_exporter's textfile collector), a summary typed ``untyped`` there. A summary
    here holds quantiles computed elsewhere, no ``_sum`` or ``_count``; typed ``summary``,
    such a collector would serve ``_sum 0`` and ``_count 0`` for it, values it never got.
    """
    snapshots = (registry if registry is not None else default_registry()).collect()
    lines = [line for metric in snapshots for line in _metric_lines(metric, relayed=relayed)]
    return "".join(f"{line}\n" for line in lines)


# ------------------------------------------------------------------ pushgateway


def _path_segment(name: str, value: str) -> str:
    if value and "/" not in value:
        return f"{name}/{urllib.parse.quote(value, safe='')}"
    encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
    return f"{name}@base64/{encoded or '='}"


def pushgateway_url(url: str, job: str, grouping_key: Mapping[str, str] | None = None) -> str:
    """The Pushgateway group URL for ``job`` and ``grouping_key``.

    Raises:
        MetricError: the URL is not http(s), the job is empty, or a grouping label is invalid.
    """
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise MetricError(
            f"pushgateway url {_credentials(url)[0]!r}: expected http://host:port or "
            "https://host:port"
        )
    if not isinstance(job, str) or not job:
        raise MetricError(f"pushgateway job must be a non-empty string, got {job!r}")
    segments = [_path_segment("job", job)]
    for name, value in (grouping_key or {}).items():
        if not _LABEL_NAME.match(name) or name.startswith("__") or name == "job":
            raise MetricError(
                f"pushgateway grouping_key label {name!r} is invalid "
                "(expected [a-zA-Z_][a-zA-Z0-9_]*, not 'job' or '__'-prefixed)"
            )
        if not isinstance(value, str):
            raise MetricError(
                f"pushgateway grouping_key {name!r} must be a string, got {type(value).__name__}"
            )
        segments.append(_path_segment(name, value))
    return f"{url.rstrip('/')}/metrics/{'/'.join(segments)}"


def _credentials(target: str) -> tuple[str, str | None]:
    """``target`` without its ``user:password@`` and the Basic ``Authorization`` header it
    asked for (urllib would read ``user:password@host`` as the host name)."""
    parts = urllib.parse.urlsplit(target)
    if parts.username is None and parts.password is None:
        return target, None
    netloc = parts.netloc.rpartition("@")[2]  # host and port as written
    pair = (
        f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
    )
    header = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), header


def _send(method: str, target: str, body: bytes | None, timeout: float) -> None:
    import urllib.error  # with http.client and ssl: only a push needs them
    import urllib.request

    target, authorization = _credentials(target)
    request = urllib.request.Request(target, data=body, method=method)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    if body is not None:
        request.add_header("Content-Type", PROMETHEUS_CONTENT_TYPE)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(_ERROR_BODY_LIMIT).decode("utf-8", "replace").strip()
        message = f"pushgateway {method} {target} answered HTTP {exc.code}: {detail or exc.reason}"
        if exc.code == 429 or exc.code >= 500:
            raise RetryableError(message, retry_after=_retry_after(exc)) from exc
        raise FatalError(message) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RetryableError(f"pushgateway {method} {target} failed: {reason}") from exc
    logger.debug("pushgateway %s %s done", method, target)


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    header = exc.headers.get("Retry-After") if exc.headers is not None else None
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None


def push_to_gateway(
    url: str,
    job: str,
    registry: Registry | None = None,
    *,
    grouping_key: Mapping[str, str] | None = None,
    method: Literal["PUT", "POST"] = "PUT",
    timeout: float = 10.0,
) -> None:
    """Push every metric of ``registry`` to a Pushgateway group.

    ``PUT`` replaces the whole group; ``POST`` replaces only the metrics with the
    same names. Batch jobs call this once at exit.

    Raises:
        MetricError: bad URL, job, grouping key or method.
        RetryableError: connection failure, timeout, HTTP 429 or 5xx.
        FatalError: the gateway refused the push (other HTTP 4xx).
    """
    if method not in {"PUT", "POST"}:
        raise MetricError(f"pushgateway method must be 'PUT' or 'POST', got {method!r}")
    target = pushgateway_url(url, job, grouping_key)
    _send(method, target, render_prometheus(registry, relayed=True).encode("utf-8"), timeout)


def delete_from_gateway(
    url: str,
    job: str,
    *,
    grouping_key: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> None:
    """Delete a Pushgateway group (e.g. after a job is retired).

    Raises:
        RetryableError: connection failure, timeout, HTTP 429 or 5xx.
        FatalError: the gateway refused the request.
    """
    _send("DELETE", pushgateway_url(url, job, grouping_key), None, timeout)


class PushgatewayExporter:
    """``metrics_exporters = ["pushgateway"]``: the registry pushed to a Pushgateway group.

    A batch job's metrics replace its group (``PUT``) at exit, so the gateway holds what the
    job's last run counted; a group per job (``job``), credentials from the URL's
    ``user:password@`` sent as Basic authentication and never written in a message.
    """

    kind: ClassVar[str] = "pushgateway"

    def __init__(
        self,
        url: str,
        job: str,
        *,
        grouping_key: Mapping[str, str] | None = None,
        method: Literal["PUT", "POST"] = "PUT",
        timeout: float = 10.0,
    ) -> None:
        pushgateway_url(url, job, grouping_key)  # a bad URL, job or key refused now
        if method not in {"PUT", "POST"}:
            raise MetricError(f"pushgateway method must be 'PUT' or 'POST', got {method!r}")
        self._url = url
        self._job = job
        self._grouping_key = dict(grouping_key or {})
        self._method = method
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: ExporterSettings, job: str) -> PushgatewayExporter:
        """The Pushgateway of ``pushgateway_url``, group ``job``.

        Raises:
            MetricError: ``pushgateway_url`` is unset or not an http(s) URL.
        """
        if not settings.pushgateway_url:
            raise MetricError("metrics_exporters names 'pushgateway' but pushgateway_url is unset")
        return cls(str(settings.pushgateway_url), job)

    def export(self, registry: Registry) -> None:
        """Push ``registry`` to the group.

        Raises:
            RetryableError: connection failure, timeout, HTTP 429 or 5xx.
            FatalError: the gateway refused the push (other HTTP 4xx).
        """
        push_to_gateway(
            self._url,
            self._job,
            registry,
            grouping_key=self._grouping_key,
            method=self._method,
            timeout=self._timeout,
        )

    def with_timeout(self, seconds: float) -> PushgatewayExporter:
        """This exporter, its pushes waiting ``seconds`` at most for the gateway (to connect,
        then for each read): the way out of a stopped command waits less than a job's end.
        """
        return PushgatewayExporter(
            self._url,
            self._job,
            grouping_key=self._grouping_key,
            method=self._method,
            timeout=seconds,
        )

    def close(self) -> None:
        """Nothing to release: each push is one HTTP request."""

    def __repr__(self) -> str:
        return f"PushgatewayExporter({_credentials(self._url)[0]!r}, {self._job!r})"
