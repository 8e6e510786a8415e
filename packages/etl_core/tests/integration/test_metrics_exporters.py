"""Exporters against real counterparts: promtool, the Pushgateway binary, a UDP socket.

- ``promtool check metrics`` (Debian package ``prometheus``) lints the exposition.
- The real Pushgateway (Debian package ``prometheus-pushgateway``) is started on
  127.0.0.1 at a free port, pushed to, and read back from its ``/metrics``.
- StatsD datagrams are received by a UDP socket bound on 127.0.0.1 in the test.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from etl_core.errors import FatalError, RetryableError
from etl_core.metrics import (
    MetricExportError,
    Registry,
    StatsdClient,
    StatsdExporter,
    delete_from_gateway,
    push_to_gateway,
    render_prometheus,
)
from etl_core.testing.ports import free_port
from etl_core.testing.pushgateway import find_binary, running_pushgateway, scrape
from etl_core.testing.services import service_unavailable
from etl_core.testing.statsd import drained

from .conftest import RefusingNetwork

TRICKY_VALUE = 'C:\\drops\\"q3"\nfinal'


def _sample_registry() -> Registry:
    registry = Registry()
    files = registry.counter("etl_fp_files_total", 'Files "processed"\nper C:\\ drop.', ("source",))
    files.labels(source=TRICKY_VALUE).inc(2)
    files.labels(source="pos").inc()
    registry.gauge("etl_fp_inflight_files", "Files in flight.").set(-1.5)
    step = registry.histogram("etl_fp_step_seconds", "Step duration.", ("step",), buckets=(0.1, 1))
    step.labels(step="unpack").observe(0.05)
    step.labels(step="unpack").observe(0.5)
    step.labels(step="unpack").observe(7)
    return registry


# ------------------------------------------------------------------ promtool


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = find_binary("promtool")
    if binary is None:
        service_unavailable("promtool", "binary not found (Debian package 'prometheus')")
    return binary


def _promtool_check(promtool: str, text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_exposition_passes_promtool_check_metrics(promtool: str) -> None:
    text = render_prometheus(_sample_registry())
    assert 'source="C:\\\\drops\\\\\\"q3\\"\\nfinal"' in text
    result = _promtool_check(promtool, text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_promtool_does_reject_unescaped_label_values(promtool: str) -> None:
    broken = '# HELP etl_fp_x_total h\n# TYPE etl_fp_x_total counter\netl_fp_x_total{a="b\nc"} 1\n'
    result = _promtool_check(promtool, broken)
    assert result.returncode != 0


# --------------------------------------------------------------- pushgateway


@pytest.fixture(scope="module")
def guarded_pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real Pushgateway behind Basic authentication: user ``pusher``, ``GATEWAY_PASSWORD``."""
    crypt = pytest.importorskip("crypt", reason="bcrypt hashes come from the C library")
    hashed = crypt.crypt(GATEWAY_PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH))
    web_config = tmp_path_factory.mktemp("gateway") / "web.yml"
    web_config.write_text(f"basic_auth_users:\n  pusher: '{hashed}'\n")
    with running_pushgateway(f"--web.config.file={web_config}", login=GATEWAY_LOGIN) as url:
        yield url


GATEWAY_PASSWORD = "gate/pass:w@rd"
"""A password with characters a URL must percent-encode."""
GATEWAY_LOGIN = {
    "Authorization": "Basic "
    + base64.b64encode(f"pusher:{GATEWAY_PASSWORD}".encode()).decode("ascii")
}


def _series(lines: list[str], prefix: str) -> list[str]:
    return sorted(line for line in lines if line.startswith(prefix))


def test_pushed_series_appear_on_the_gateway(pushgateway: str) -> None:
    push_to_gateway(
        pushgateway,
        "etl-file-processing",
        _sample_registry(),
        grouping_key={"dataset": "pos", "prefix": "landing/pos/2024"},
    )
    lines = scrape(pushgateway)
    group = 'dataset="pos",instance="",job="etl-file-processing",prefix="landing/pos/2024"'
    assert _series(lines, "etl_fp_files_total{") == [
        'etl_fp_files_total{dataset="pos",instance="",job="etl-file-processing",'
        'prefix="landing/pos/2024",source="C:\\\\drops\\\\\\"q3\\"\\nfinal"} 2',
        f'etl_fp_files_total{{{group},source="pos"}} 1',
    ]
    assert f"etl_fp_inflight_files{{{group}}} -1.5" in lines
    assert _series(lines, "etl_fp_step_seconds_") == sorted(
        [
            f'etl_fp_step_seconds_bucket{{{group},step="unpack",le="0.1"}} 1',
            f'etl_fp_step_seconds_bucket{{{group},step="unpack",le="1"}} 2',
            f'etl_fp_step_seconds_bucket{{{group},step="unpack",le="+Inf"}} 3',
            f'etl_fp_step_seconds_sum{{{group},step="unpack"}} 7.55',
            f'etl_fp_step_seconds_count{{{group},step="unpack"}} 3',
        ]
    )
    assert "# TYPE etl_fp_step_seconds histogram" in lines


def test_put_replaces_the_group_and_post_replaces_only_same_names(pushgateway: str) -> None:
    first = Registry()
    first.counter("etl_dp_rows_total", "Rows.").inc(10)
    first.gauge("etl_dp_lag_seconds", "Lag.").set(3)
    push_to_gateway(pushgateway, "etl-data-pipeline", first, grouping_key={"run": "r1"})

    update = Registry()
    update.gauge("etl_dp_lag_seconds", "Lag.").set(1)
    push_to_gateway(
        pushgateway, "etl-data-pipeline", update, grouping_key={"run": "r1"}, method="POST"
    )
    lines = scrape(pushgateway)
    group = 'instance="",job="etl-data-pipeline",run="r1"'
    assert f"etl_dp_rows_total{{{group}}} 10" in lines
    assert f"etl_dp_lag_seconds{{{group}}} 1" in lines

    push_to_gateway(pushgateway, "etl-data-pipeline", update, grouping_key={"run": "r1"})
    lines = scrape(pushgateway)
    assert not _series(lines, "etl_dp_rows_total{")
    assert f"etl_dp_lag_seconds{{{group}}} 1" in lines


def test_delete_removes_the_group(pushgateway: str) -> None:
    registry = Registry()
    registry.counter("etl_obs_checks_total", "Checks.").inc()
    push_to_gateway(pushgateway, "etl-observability", registry)
    assert _series(scrape(pushgateway), "etl_obs_checks_total{")
    delete_from_gateway(pushgateway, "etl-observability")
    assert not _series(scrape(pushgateway), "etl_obs_checks_total{")


def test_push_the_gateway_refuses_raises_fatal_error_with_its_reason(pushgateway: str) -> None:
    as_histogram = Registry()
    as_histogram.histogram("etl_obs_probe_seconds", "Probe.").observe(1)
    push_to_gateway(pushgateway, "probe-a", as_histogram)
    as_gauge = Registry()
    as_gauge.gauge("etl_obs_probe_seconds", "Probe.").set(1)
    with pytest.raises(FatalError, match=r"HTTP 400: .*inconsistent") as caught:
        push_to_gateway(pushgateway, "probe-b", as_gauge)
    assert "/metrics/job/probe-b" in str(caught.value)
    assert isinstance(caught.value.__cause__, urllib.error.HTTPError)


def test_a_password_in_the_gateway_url_is_sent_as_basic_authentication(
    guarded_pushgateway: str,
) -> None:
    registry = Registry()
    registry.counter("etl_fp_files_total", "Files.").inc(3)
    host = guarded_pushgateway.removeprefix("http://")
    password = urllib.parse.quote(GATEWAY_PASSWORD, safe="")
    with pytest.raises(FatalError, match="HTTP 401") as refused:
        push_to_gateway(f"http://pusher:wrong@{host}", "etl-file-processing", registry)
    assert "wrong" not in str(refused.value)
    assert f"PUT {guarded_pushgateway}/metrics/job/etl-file-processing" in str(refused.value)
    push_to_gateway(f"http://pusher:{password}@{host}", "etl-file-processing", registry)
    request = urllib.request.Request(f"{guarded_pushgateway}/metrics", headers=GATEWAY_LOGIN)
    with urllib.request.urlopen(request, timeout=10) as response:
        lines = response.read().decode("utf-8").splitlines()
    assert 'etl_fp_files_total{instance="",job="etl-file-processing"} 3' in lines


def test_push_to_a_closed_port_raises_retryable_error() -> None:
    pattern = r"pushgateway PUT http://127\.0\.0\.1:\d+/metrics/job/etl failed"
    with pytest.raises(RetryableError, match=pattern):
        push_to_gateway(f"http://127.0.0.1:{free_port()}", "etl", Registry(), timeout=5)


# ---------------------------------------------------------------------- statsd


def _port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def _receive(sock: socket.socket, expected_packets: int) -> list[str]:
    return [sock.recv(65535).decode("utf-8") for _ in range(expected_packets)]


def _receive_all(sock: socket.socket, limit: int = 1000) -> list[str]:
    """Every datagram until the socket stays quiet for half a second."""
    packets = []
    sock.settimeout(0.5)
    for _ in range(limit):
        try:
            packets.append(sock.recv(65535).decode("utf-8"))
        except TimeoutError:
            break
    return packets


def test_client_sends_each_metric_type_with_prefix_and_tags(udp_server: socket.socket) -> None:
    with StatsdClient(
        "127.0.0.1", _port(udp_server), prefix="prod.", tags={"env": "prod"}
    ) as client:
        client.incr("etl_fp_files_total", tags={"dataset": "pos"})
        client.incr("etl_fp_rows_total", 250)
        client.gauge("etl_fp_inflight_files", 3)
        client.timing("etl_fp_step", 12.5, tags={"step": "unpack"})
        client.histogram("etl_fp_file_size", 2048)
    assert _receive(udp_server, 5) == [
        "prod.etl_fp_files_total:1|c|#env:prod,dataset:pos",
        "prod.etl_fp_rows_total:250|c|#env:prod",
        "prod.etl_fp_inflight_files:3|g|#env:prod",
        "prod.etl_fp_step:12.5|ms|#env:prod,step:unpack",
        "prod.etl_fp_file_size:2048|h|#env:prod",
    ]


def test_plain_statsd_client_sends_no_tags(udp_server: socket.socket) -> None:
    with StatsdClient("127.0.0.1", _port(udp_server), tag_format="none") as client:
        client.incr("etl.fp.files")
    assert _receive(udp_server, 1) == ["etl.fp.files:1|c"]


def test_negative_gauge_is_sent_as_reset_then_value_in_one_datagram(
    udp_server: socket.socket,
) -> None:
    with StatsdClient("127.0.0.1", _port(udp_server)) as client:
        client.gauge("etl_obs_clock_drift_seconds", -0.25)
    assert _receive(udp_server, 1) == [
        "etl_obs_clock_drift_seconds:0|g\netl_obs_clock_drift_seconds:-0.25|g"
    ]


def test_batch_packs_lines_into_datagrams_under_the_size_limit(udp_server: socket.socket) -> None:
    lines = [f"etl_fp_counter_{i:03d}:{i}|c" for i in range(40)]
    with (
        StatsdClient("127.0.0.1", _port(udp_server), max_packet_bytes=128) as client,
        client.batch() as batch,
    ):
        for i in range(40):
            batch.incr(f"etl_fp_counter_{i:03d}", i)
    packets = _receive_all(udp_server)
    assert [line for packet in packets for line in packet.split("\n")] == lines
    sizes = [len(p.encode()) for p in packets]
    assert all(size <= 128 for size in sizes)
    next_line = [len(p.split("\n")[0]) for p in packets[1:]]
    assert all(size + 1 + n > 128 for size, n in zip(sizes, next_line, strict=False))
    assert len(packets) < len(lines)


def test_exporter_sends_deltas_and_skips_unchanged_counters(udp_server: socket.socket) -> None:
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "Files.", ("dataset",))
    depth = registry.gauge("etl_fp_inflight_files", "In flight.")
    step = registry.histogram("etl_fp_step_seconds", "Step.", buckets=(1,))
    files.labels(dataset="pos").inc(3)
    files.labels(dataset="inv").inc()
    depth.set(2)
    step.observe(0.5)
    step.observe(1.5)
    with StatsdClient("127.0.0.1", _port(udp_server)) as client:
        exporter = StatsdExporter(client, registry)
        assert exporter.flush() == 0
        files.labels(dataset="pos").inc(2)
        assert exporter.flush() == 0
    first, second = _receive(udp_server, 2)
    assert first.split("\n") == [
        "etl_fp_files_total:1|c|#dataset:inv",
        "etl_fp_files_total:3|c|#dataset:pos",
        "etl_fp_inflight_files:2|g",
        "etl_fp_step_seconds_count:2|c",
        "etl_fp_step_seconds_sum:2|c",
    ]
    assert second.split("\n") == [
        "etl_fp_files_total:2|c|#dataset:pos",
        "etl_fp_inflight_files:2|g",
    ]


def test_exporter_folds_labels_into_the_name_without_tags(udp_server: socket.socket) -> None:
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "Files.", ("dataset", "outcome"))
    files.labels(dataset="pos.eu, west", outcome="ok").inc()
    with StatsdClient("127.0.0.1", _port(udp_server), tag_format="none") as client:
        StatsdExporter(client, registry).flush()
    assert _receive(udp_server, 1) == ["etl_fp_files_total.dataset.pos_eu__west.outcome.ok:1|c"]


def test_exporter_sanitises_tag_values(udp_server: socket.socket) -> None:
    registry = Registry()
    registry.counter("etl_fp_files_total", "Files.", ("source",)).labels(source="a,b|c d#e").inc()
    with StatsdClient("127.0.0.1", _port(udp_server)) as client:
        StatsdExporter(client, registry).flush()
    assert _receive(udp_server, 1) == ["etl_fp_files_total:1|c|#source:a_b_c_d_e"]


def test_exporter_keeps_counts_when_the_send_fails(udp_server: socket.socket) -> None:
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "Files.")
    files.inc(4)
    client = StatsdClient("statsd host that cannot resolve", _port(udp_server))
    exporter = StatsdExporter(client, registry)
    assert exporter.flush() == 1
    files.inc()
    client.host = "127.0.0.1"
    assert exporter.flush() == 0
    client.close()
    assert _receive(udp_server, 1) == ["etl_fp_files_total:5|c"]


def test_a_statsd_exporter_from_settings_failing_is_one_warning_not_one_per_datagram() -> None:
    """The root README: an exporter that fails is a warning naming it. A host that does not
    resolve was also a warning per datagram, at every export (every unit of a worker)."""
    from etl_core.metrics import configured_exporters, export_through
    from etl_core.runtime import RuntimeSettings
    from etl_core.testing.logs import capture_logs

    settings = RuntimeSettings(
        metrics_exporters=("statsd",), statsd_address="no-such-host.invalid:8125"
    )
    registry = Registry()
    for n in range(100):  # a few datagrams' worth
        registry.counter(f"etl_fp_c{n}_total", "C.", ("dataset",)).labels(dataset="x" * 30).inc()
    exporters = configured_exporters(settings, settings.metric_exporter_kinds(), "etl_job")

    with capture_logs() as logs:
        failed = export_through(exporters, registry)

    assert failed == ["statsd"]
    warnings = [r["event"] for r in logs if r["level"] == "warning"]
    assert len(warnings) == 1, warnings
    assert "statsd" in warnings[0]
    assert "no-such-host.invalid:8125" in warnings[0]
    assert "datagram(s) not sent" in warnings[0]


def test_a_statsd_client_used_directly_still_warns_of_a_failed_send() -> None:
    from etl_core.testing.logs import capture_logs

    with capture_logs() as logs, StatsdClient("no-such-host.invalid", 8125) as client:
        client.incr("etl_fp_files_total")
    assert [r["event"] for r in logs if r["level"] == "warning"] == [
        f"statsd agent no-such-host.invalid:8125 not reached: {client.last_error}"
    ]


def test_an_agent_name_that_does_not_resolve_is_looked_up_once_per_export(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker exports after each unit: a name its DNS cannot answer is one lookup's wait
    per export, not one per datagram (each may wait for the resolver's time-out)."""
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "Files.", labels=("dataset",))
    for n in range(40):
        files.labels(dataset=f"dataset_{n:02}").inc()
    looked_up: list[object] = []
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    client = StatsdClient("statsd host that cannot resolve", 8125, max_packet_bytes=512)
    exporter = StatsdExporter(client, registry)

    assert exporter.flush() >= 3  # the export's datagrams, none sent
    assert looked_up == ["statsd host that cannot resolve"]


def test_a_datagram_sent_before_a_refused_one_is_never_sent_again(
    udp_server: socket.socket, second_datagram_refused: RefusingNetwork
) -> None:
    """An export of two datagrams, the second refused: the next export sends what the
    second carried, and nothing of the first again (it was all sent again: counted twice)."""
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "Files.", labels=("dataset",))
    for n in range(40):
        files.labels(dataset=f"dataset_{n:02}").inc()
    exporter = StatsdExporter(second_datagram_refused.client, registry)
    with pytest.raises(MetricExportError):
        exporter.export(registry)
    second_datagram_refused.heal()
    # the export took several datagrams, the second refused
    assert len(second_datagram_refused.tried) >= 3
    exporter.export(registry)
    exporter.close()

    lines = drained(udp_server)
    assert sorted(lines) == sorted(
        f"etl_fp_files_total:1|c|#dataset:dataset_{n:02}" for n in range(40)
    )


def test_a_series_too_long_for_one_datagram_is_never_half_sent_again(
    udp_server: socket.socket, second_datagram_refused: RefusingNetwork
) -> None:
    """A histogram series whose ``_count`` and ``_sum`` lines together exceed the packet
    size, its second datagram refused: the next export sends the series once (its
    ``_count``, which went out, was sent again: counted twice)."""
    registry = Registry()
    step = registry.histogram("etl_fp_step_seconds", "Step.", ("step",), buckets=(1.0,))
    long_step = "unpack_" + "x" * 250  # each line fits 512 bytes, the two together do not
    step.labels(step=long_step).observe(0.5)
    files = registry.counter("etl_fp_files_total", "Files.", ("dataset",))
    files.labels(dataset="d" * 300).inc()  # the first datagram: the step's go after it
    exporter = StatsdExporter(second_datagram_refused.client, registry)
    with pytest.raises(MetricExportError):  # the second datagram refused
        exporter.export(registry)
    second_datagram_refused.heal()
    exporter.export(registry)
    exporter.close()

    lines = drained(udp_server)
    assert sorted(lines) == [
        f"etl_fp_files_total:1|c|#dataset:{'d' * 300}",
        f"etl_fp_step_seconds_count:1|c|#step:{long_step}",
        f"etl_fp_step_seconds_sum:0.5|c|#step:{long_step}",
    ]


def test_line_too_large_for_udp_is_dropped_and_the_rest_is_sent(
    udp_server: socket.socket,
) -> None:
    with StatsdClient("127.0.0.1", _port(udp_server)) as client, client.batch() as batch:
        batch.incr("etl_fp_files_total", tags={"key": "x" * 70_000})
        batch.incr("etl_fp_rows_total", 3)
        failures = batch.flush()
    assert failures == 0
    assert _receive_all(udp_server) == ["etl_fp_rows_total:3|c"]


def test_a_datagram_the_network_refuses_drops_the_socket_so_the_next_send_looks_again() -> None:
    """A long-running process keeps its socket between exports; one that failed (an agent
    that moved, a route gone) is not reused: the next send resolves the address again."""
    client = StatsdClient("255.255.255.255", 8125)  # no SO_BROADCAST: the kernel refuses

    assert client.send(["etl_test_total:1|c"]) == 1
    assert isinstance(client.last_error, PermissionError)
    assert client._socket is None
