"""The metric exporter contract, once per kind of ``EXPORTERS``, against a real receiver.

Every exporter is built from ``RuntimeSettings`` as a run builds it, given a registry with
a counter, a gauge with labels, a histogram and a summary's quantiles, and what it sent is
read back where its monitoring system would read it: StatsD datagrams from a UDP socket
bound on 127.0.0.1, EMF lines from the process's captured stdout, the Pushgateway's
``/metrics`` (the machine's ``prometheus-pushgateway`` binary on 127.0.0.1). Whatever the
protocol (totals replaced, or increments since the previous export), what the receiver
knows equals the registry after every export (a summary's quantiles, and no ``_sum`` or
``_count`` the registry never had), also after an export its target refused (the next
one sends what it missed, once). A target that cannot be reached raises the package's
error.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import resource
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest

from etl_core.errors import EtlError, UnknownKindError
from etl_core.metrics import EXPORTER_KINDS, EXPORTERS, MetricExporter, Registry
from etl_core.metrics.choice import exporter_class
from etl_core.runtime import RuntimeSettings
from etl_core.testing.ports import free_port
from etl_core.testing.pushgateway import scrape

GAUGES = {"etl_test_backlog_files", "etl_test_run_seconds"}
"""Gauges and a summary's quantiles are levels (the receiver keeps the last value);
everything else adds up."""
OURS = re.compile(r"^(etl_test_\w+?)(\{[^}]*\})? (\S+)$")


def _registry() -> tuple[Registry, Callable[[], None]]:
    """The contract's registry, and a change to it made between two exports."""
    registry = Registry()
    files = registry.counter("etl_test_files_total", "Files.")
    backlog = registry.gauge("etl_test_backlog_files", "Backlog.", ("dataset",))
    step = registry.histogram("etl_test_step_seconds", "Step.", ("step",), buckets=(1.0,))
    runs = registry.summary("etl_test_run_seconds", "Run quantiles.", ("quantile",))
    files.inc(3)
    runs.labels(quantile="0.9").set(20)
    backlog.labels(dataset="pos").set(7)
    backlog.labels(dataset="hr").set(2)
    step.labels(step="unpack").observe(0.5)
    step.labels(step="unpack").observe(2.0)

    def change() -> None:
        files.inc()
        backlog.labels(dataset="pos").set(5)
        step.labels(step="unpack").observe(1.5)
        runs.labels(quantile="0.9").set(12)

    return registry, change


FIRST = {
    "etl_test_files_total": 3.0,
    "etl_test_backlog_files{dataset=hr}": 2.0,
    "etl_test_backlog_files{dataset=pos}": 7.0,
    "etl_test_step_seconds_count{step=unpack}": 2.0,
    "etl_test_step_seconds_sum{step=unpack}": 2.5,
    "etl_test_run_seconds{quantile=0.9}": 20.0,
}
SECOND = {
    **FIRST,
    "etl_test_files_total": 4.0,
    "etl_test_backlog_files{dataset=pos}": 5.0,
    "etl_test_step_seconds_count{step=unpack}": 3.0,
    "etl_test_step_seconds_sum{step=unpack}": 4.0,
    "etl_test_run_seconds{quantile=0.9}": 12.0,
}


def _key(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}" if inner else name


@contextlib.contextmanager
def _no_new_descriptors(exporter: MetricExporter) -> Iterator[None]:
    """The exporter closed and no socket or file opened while in the block (the process's
    descriptor limit at 0): its target, opened again at its next export, is refused."""
    exporter.close()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.contextmanager
def _stdout_a_closed_pipe(exporter: MetricExporter) -> Iterator[None]:
    """stdout, while in the block, a pipe whose reader went away (a write fails: EPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    broken = os.fdopen(write_end, "w")
    kept, sys.stdout = sys.stdout, broken
    try:
        yield
    finally:
        sys.stdout = kept
        with contextlib.suppress(OSError):  # what it buffered cannot be flushed either
            broken.close()


@dataclass
class Receiver:
    """One kind's receiving end: the settings that point an exporter at it, and what it
    knows so far (``read``), as ``name{label=value}`` -> value; ``refusing(exporter)``:
    a block in which the target refuses what the exporter sends (it works again after)."""

    settings: dict[str, Any]
    unreachable: dict[str, Any]
    read: Callable[[], dict[str, float]]
    refusing: Callable[[MetricExporter], AbstractContextManager[object]] = _no_new_descriptors
    known: dict[str, float] = field(default_factory=dict)

    def take(self, name: str, labels: dict[str, str], value: float) -> None:
        key = _key(name, labels)
        if name in GAUGES:
            self.known[key] = value
        else:
            self.known[key] = self.known.get(key, 0.0) + value


def _statsd(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

        def read() -> dict[str, float]:
            sock.settimeout(0.5)  # until the socket stays quiet: every datagram was sent before
            for _ in range(1000):
                try:
                    packet = sock.recv(65535).decode("utf-8")
                except TimeoutError:
                    break
                for line in packet.splitlines():
                    name_value, _type, *tags = line.split("|")
                    name, value = name_value.rsplit(":", 1)
                    pairs = tags[0].removeprefix("#").split(",") if tags else []
                    labels = dict(pair.split(":", 1) for pair in pairs)
                    receiver.take(name, labels, float(value))
            return receiver.known

        receiver = Receiver(
            {"statsd_address": f"127.0.0.1:{port}"},
            {"statsd_address": "no-such-host.invalid:8125"},
            read,
        )
        yield receiver


def _emf(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    capsys: pytest.CaptureFixture[str] = request.getfixturevalue("capsys")

    def read() -> dict[str, float]:
        for line in capsys.readouterr().out.splitlines():
            document = json.loads(line)
            (directive,) = document["_aws"]["CloudWatchMetrics"]
            assert directive["Namespace"] == "etl/contract"
            labels = {name: document[name] for name in directive["Dimensions"][0]}
            for metric in directive["Metrics"]:
                receiver.take(metric["Name"], labels, float(document[metric["Name"]]))
        return receiver.known

    receiver = Receiver(
        {"emf_namespace": "etl/contract", "emf_output": "stdout"},
        {"emf_output": "/dev/full"},  # every write fails: no space left on device
        read,
        _stdout_a_closed_pipe,
    )
    yield receiver


def _pushgateway(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    url: str = request.getfixturevalue("pushgateway")

    def read() -> dict[str, float]:
        receiver.known.clear()  # a push replaces the group: the gateway holds totals
        for line in scrape(url):
            found = OURS.match(line)
            if found is None or found[1].endswith("_bucket"):
                continue
            pairs = re.findall(r'(\w+)="([^"]*)"', found[2] or "")
            labels = {k: v for k, v in pairs if k not in {"job", "instance"}}
            if dict(pairs).get("job") == job:
                receiver.known[_key(found[1], labels)] = float(found[3])
        return receiver.known

    job = f"contract-{uuid.uuid4().hex[:8]}"
    receiver = Receiver(
        {"pushgateway_url": url, "job": job},
        {"pushgateway_url": f"http://127.0.0.1:{free_port()}"},
        read,
    )
    yield receiver


RECEIVERS: dict[str, Callable[[pytest.FixtureRequest], Iterator[Receiver]]] = {
    "statsd": _statsd,
    "emf": _emf,
    "pushgateway": _pushgateway,
}


@pytest.fixture(params=sorted(EXPORTERS))
def receiver(request: pytest.FixtureRequest) -> Iterator[tuple[str, Receiver]]:
    """Each registered exporter's kind and receiver (``RECEIVERS``)."""
    kind: str = request.param
    if kind not in RECEIVERS:
        pytest.fail(f"exporter {kind!r} has no receiver in RECEIVERS: add one")
    made = RECEIVERS[kind](request)
    yield kind, next(made)
    made.close()


def _exporter(kind: str, options: dict[str, Any]) -> MetricExporter:
    given = {k: v for k, v in options.items() if k != "job"}
    settings = RuntimeSettings(metrics_exporters=(kind,), **given)  # type: ignore[arg-type]
    exporter = exporter_class(kind).from_settings(settings, str(options.get("job", "etl_test")))
    assert isinstance(exporter, MetricExporter)
    return exporter


def test_the_registry_holds_every_kind_the_setting_names() -> None:
    assert tuple(EXPORTERS) == EXPORTER_KINDS


def test_every_exporter_has_a_receiver_here() -> None:
    assert set(RECEIVERS) == set(EXPORTERS)


def test_what_the_receiver_reads_back_is_the_registry(receiver: tuple[str, Receiver]) -> None:
    kind, target = receiver
    registry, change = _registry()
    exporter = _exporter(kind, target.settings)
    try:
        exporter.export(registry)
        assert target.read() == FIRST
        change()
        exporter.export(registry)
        assert target.read() == SECOND
        exporter.export(registry)  # nothing changed: nothing counted twice
        assert target.read() == SECOND
    finally:
        exporter.close()
    exporter.close()  # idempotent


def test_an_export_the_target_refused_is_sent_by_the_next_once(
    receiver: tuple[str, Receiver],
) -> None:
    """What a refused export carried is neither lost (sent by the next export) nor sent
    twice (an exporter recording it as sent before it went out lost it)."""
    kind, target = receiver
    registry, change = _registry()
    exporter = _exporter(kind, target.settings)
    try:
        exporter.export(registry)
        assert target.read() == FIRST
        change()
        with target.refusing(exporter), pytest.raises(EtlError):
            exporter.export(registry)
        exporter.export(registry)
        assert target.read() == SECOND
        exporter.export(registry)
        assert target.read() == SECOND
    finally:
        exporter.close()


def test_an_unreachable_target_raises_the_package_error_naming_it(
    receiver: tuple[str, Receiver],
) -> None:
    kind, target = receiver
    registry, _ = _registry()
    exporter = _exporter(kind, target.unreachable)
    with pytest.raises(EtlError) as raised:
        exporter.export(registry)
    exporter.close()
    assert not isinstance(raised.value, OSError)
    assert isinstance(raised.value.__cause__, OSError)
    where = next(iter(target.unreachable.values())).removeprefix("http://").split(":")[0]
    assert where in str(raised.value)
    again = pickle.loads(pickle.dumps(raised.value))
    assert type(again) is type(raised.value)
    assert str(again) == str(raised.value)


def test_an_exporter_name_no_one_registered_is_refused_naming_the_setting() -> None:
    with pytest.raises(UnknownKindError) as raised:
        exporter_class("statds")
    assert raised.value.field == "metrics_exporters"
    assert "'statds'" in str(raised.value)
    assert "pushgateway, emf, statsd" in str(raised.value.errors[0])
