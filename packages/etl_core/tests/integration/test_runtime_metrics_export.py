"""``Session.export_metrics``: a batch job's metrics through every configured exporter.

The receivers are real: a UDP socket on 127.0.0.1 (StatsD), the captured stderr (EMF),
the machine's Pushgateway binary on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl_core.errors import FatalError
from etl_core.metrics import Registry, export_through
from etl_core.runtime import RuntimeSettings, Session, load_runtime_settings, run_entry_point
from etl_core.testing import capture_logs
from etl_core.testing.ports import free_port
from etl_core.testing.pushgateway import running_pushgateway, scrape

PASSWORD = "hunter2-gateway-secret"


def _registry() -> Registry:
    registry = Registry()
    registry.counter("etl_test_files_total", "Files.", ("dataset",)).labels(dataset="pos").inc(2)
    return registry


def _session(env: dict[str, str]) -> Session[RuntimeSettings]:
    settings, sources = load_runtime_settings(RuntimeSettings, env=env)
    return Session("file_processing", settings, sources, "run-1", env=env)


def test_a_pushgateway_url_alone_still_pushes_as_before() -> None:
    with running_pushgateway() as gateway:
        session = _session({"ETL_PUSHGATEWAY_URL": gateway})

        assert session.settings.metric_exporter_kinds() == ("pushgateway",)
        assert session.export_metrics("etl_test_job", _registry())
        lines = scrape(gateway)
    assert 'etl_test_files_total{dataset="pos",instance="",job="etl_test_job"} 2' in lines


def test_no_exporter_configured_exports_nothing() -> None:
    assert not _session({}).export_metrics("etl_test_job", _registry())


def test_a_failing_exporter_is_logged_masked_and_never_stops_the_others(
    udp_server: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable = f"http://pusher:{PASSWORD}@127.0.0.1:{free_port()}"
    session = _session(
        {
            "ETL_METRICS_EXPORTERS": "pushgateway,statsd,emf",
            "ETL_PUSHGATEWAY_URL": unreachable,
            "ETL_STATSD_ADDRESS": f"127.0.0.1:{udp_server.getsockname()[1]}",
        }
    )

    with capture_logs(logging.WARNING) as logs:
        exported = session.export_metrics("etl_test_job", _registry())

    assert not exported
    assert udp_server.recv(65535) == b"etl_test_files_total:2|c|#dataset:pos"
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line)["etl_test_files_total"] == 2
    assert json.loads(line)["etl_job"] == "etl_test_job"
    (warning,) = [r for r in logs if "not exported" in r["event"]]
    assert "pushgateway" in warning["event"]
    assert f"127.0.0.1:{unreachable.rsplit(':', 1)[1]}" in warning["event"]
    assert PASSWORD not in json.dumps(logs)


def test_push_metrics_keeps_its_name_and_exports_the_default_registry(
    udp_server: socket.socket,
) -> None:
    from etl_core.metrics import use_registry

    session = _session(
        {
            "ETL_METRICS_EXPORTERS": "statsd",
            "ETL_STATSD_ADDRESS": f"127.0.0.1:{udp_server.getsockname()[1]}",
            "ETL_STATSD_PREFIX": "prod.",
        }
    )
    with use_registry(_registry()):
        assert session.push_metrics("etl_test_job")

    assert udp_server.recv(65535) == b"prod.etl_test_files_total:2|c|#dataset:pos"


def test_exporting_as_it_goes_then_at_exit_sends_nothing_twice(
    udp_server: socket.socket,
) -> None:
    session = _session(
        {
            "ETL_METRICS_EXPORTERS": "statsd",
            "ETL_STATSD_ADDRESS": f"127.0.0.1:{udp_server.getsockname()[1]}",
        }
    )
    registry = _registry()

    assert session.export_metrics("etl_test_job", registry, pushgateway=False)  # a batch done
    registry.counter("etl_test_files_total", "Files.", ("dataset",)).labels(dataset="pos").inc()
    assert session.export_metrics("etl_test_job", registry)  # at exit

    assert udp_server.recv(65535) == b"etl_test_files_total:2|c|#dataset:pos"
    assert udp_server.recv(65535) == b"etl_test_files_total:1|c|#dataset:pos"


def test_a_session_that_exported_still_pickles_without_its_exporters(
    udp_server: socket.socket,
) -> None:
    """``serve`` hands its session to the cycle process it spawns."""
    import pickle

    address = f"127.0.0.1:{udp_server.getsockname()[1]}"
    session = _session({"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_ADDRESS": address})
    assert session.export_metrics("etl_test_job", _registry())

    copy = pickle.loads(pickle.dumps(session))

    assert copy.settings == session.settings
    assert copy.run_id == session.run_id
    assert copy.export_metrics("etl_test_job", _registry())  # its own exporters: totals again
    assert udp_server.recv(65535) == udp_server.recv(65535)


def test_a_worker_process_sends_what_it_counted_after_its_last_unit_as_it_ends(
    udp_server: socket.socket,
) -> None:
    """A pool process recycled (``max_tasks_per_child``) or ended by a warm shutdown: what it
    counted since its last unit's export (a unit handed back) goes out then, once."""
    from celery.signals import worker_process_shutdown

    from etl_core.cli import _exporting_after_each_unit
    from etl_core.metrics import use_registry
    from etl_core.work import UnitResult, WorkUnit

    address = f"127.0.0.1:{udp_server.getsockname()[1]}"
    session = _session({"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_ADDRESS": address})
    registry = _registry()
    receivers = list(worker_process_shutdown.receivers)
    try:
        with use_registry(registry):
            after = _exporting_after_each_unit(session, "file_processing", None)
            assert after is not None
            after(UnitResult(WorkUnit("file_processing", "object", "landing/a.csv"), "done"))
            files = registry.counter("etl_test_files_total", "Files.", ("dataset",))
            files.labels(dataset="pos").inc()  # after the last unit's export
            worker_process_shutdown.send(sender=None)
            worker_process_shutdown.send(sender=None)  # nothing new: nothing sent
    finally:
        worker_process_shutdown.receivers[:] = receivers
        worker_process_shutdown.sender_receivers_cache.clear()

    assert udp_server.recv(65535) == b"etl_test_files_total:2|c|#dataset:pos"
    assert udp_server.recv(65535) == b"etl_test_files_total:1|c|#dataset:pos"
    udp_server.setblocking(False)
    with pytest.raises(BlockingIOError):
        udp_server.recv(65535)


def test_no_exporter_but_the_pushgateway_adds_nothing_after_a_worker_s_unit() -> None:
    """The default: the lane's own ``on_result`` is the worker's, nothing runs after it."""
    from etl_core.cli import _exporting_after_each_unit

    def then(result: object) -> None:
        """The lane's own hook."""

    for env in ({}, {"ETL_PUSHGATEWAY_URL": "http://127.0.0.1:9091"}):
        assert _exporting_after_each_unit(_session(env), "file_processing", then) is then


def test_a_worker_process_exports_each_unit_through_one_socket(udp_server: socket.socket) -> None:
    """Not a new socket (and a look-up of the agent's name) after every unit; closed only
    as the process ends."""
    from celery.signals import worker_process_shutdown

    from etl_core.cli import _exporting_after_each_unit
    from etl_core.metrics import use_registry
    from etl_core.work import UnitResult, WorkUnit

    address = f"127.0.0.1:{udp_server.getsockname()[1]}"
    session = _session({"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_ADDRESS": address})
    registry = _registry()
    files = registry.counter("etl_test_files_total", "Files.", ("dataset",))
    unit = UnitResult(WorkUnit("file_processing", "object", "landing/a.csv"), "done")
    receivers = list(worker_process_shutdown.receivers)
    try:
        with use_registry(registry):
            after = _exporting_after_each_unit(session, "file_processing", None)
            assert after is not None
            for _ in range(3):
                files.labels(dataset="pos").inc()
                after(unit)
    finally:
        worker_process_shutdown.receivers[:] = receivers
        worker_process_shutdown.sender_receivers_cache.clear()

    senders = {udp_server.recvfrom(65535)[1] for _ in range(3)}
    assert len(senders) == 1


def test_emf_lines_a_full_disk_refused_are_written_once_when_it_has_room(tmp_path: Path) -> None:
    """A long-running process exporting to a file: an export the disk refused is written by
    the next, once (the refused lines stayed buffered and went out with it: twice)."""
    from etl_core.testing import small_disk

    with small_disk(tmp_path, "64k") as disk:
        output = disk / "emf.log"
        session = _session({"ETL_METRICS_EXPORTERS": "emf", "ETL_EMF_OUTPUT": str(output)})
        exporters = session.metric_exporters("etl_test_job", pushgateway=False)
        filler = disk / "filler"
        with filler.open("wb", buffering=0) as fill:
            for _ in range(64):  # at most the disk's size
                try:
                    fill.write(b"x" * 4096)
                except OSError:
                    break
        registry = _registry()

        with capture_logs(logging.WARNING) as logs:
            assert export_through(exporters, registry, close=False) == ["emf"]
        assert "No space left on device" in json.dumps(logs)
        filler.unlink()
        assert export_through(exporters, registry) == []

        lines = output.read_text().splitlines()
    assert [json.loads(line)["etl_test_files_total"] for line in lines] == [2]


def test_emf_lines_a_full_disk_took_before_refusing_the_rest_are_not_written_again(
    tmp_path: Path,
) -> None:
    """An export the disk cut short: the lines it wrote whole are not written by the next
    export again (each was counted twice), the cut line and the rest are, once."""
    from etl_core.testing import small_disk

    with small_disk(tmp_path, "64k") as disk:
        output = disk / "emf.log"
        session = _session({"ETL_METRICS_EXPORTERS": "emf", "ETL_EMF_OUTPUT": str(output)})
        (exporter,) = session.metric_exporters("etl_test_job", pushgateway=False)
        filler, gap = disk / "filler", disk / "gap"
        gap.write_bytes(b"x" * 4096)  # room for the first lines of the export, not all
        with filler.open("wb", buffering=0) as fill:
            for _ in range(64):  # at most the disk's size
                try:
                    fill.write(b"x" * 4096)
                except OSError:
                    break
        registry = Registry()
        files = registry.counter("etl_test_files_total", "Files.", ("dataset",))
        datasets = [f"dataset-{n:02d}-{'x' * 150}" for n in range(40)]  # ~8 kB of lines
        for dataset in datasets:
            files.labels(dataset=dataset).inc()
        gap.unlink()

        assert export_through([exporter], registry, close=False) == ["emf"]
        filler.unlink()
        assert export_through([exporter], registry) == []

        counted: dict[str, int] = {}
        for line in output.read_text().splitlines():
            try:
                document = json.loads(line)
            except ValueError:  # the line the disk cut: CloudWatch drops it
                continue
            dataset = document["dataset"]
            counted[dataset] = counted.get(dataset, 0) + document["etl_test_files_total"]
    assert counted == dict.fromkeys(datasets, 1)


def test_an_emf_line_a_killed_process_cut_short_in_the_file_does_not_swallow_the_next(
    tmp_path: Path,
) -> None:
    """A worker process killed as it wrote its EMF line left it cut short in the shared
    file: the next process's first line starts on a line of its own (glued to the cut
    one, CloudWatch dropped it with its counts)."""
    output = tmp_path / "emf.log"
    output.write_text('{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Names')  # cut short
    session = _session({"ETL_METRICS_EXPORTERS": "emf", "ETL_EMF_OUTPUT": str(output)})

    assert export_through(session.metric_exporters("etl_test_job"), _registry()) == []

    last = output.read_text().splitlines()[-1]
    assert json.loads(last)["etl_test_files_total"] == 2


def _statsd_session(agent: socket.socket) -> Session[RuntimeSettings]:
    address = f"127.0.0.1:{agent.getsockname()[1]}"
    return _session({"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_ADDRESS": address})


def _nothing_more(agent: socket.socket) -> None:
    agent.setblocking(False)
    with pytest.raises(BlockingIOError):
        agent.recv(65535)


@pytest.mark.parametrize(
    "ending",
    [FatalError("the store refused"), SystemExit(2), KeyboardInterrupt(), ValueError("a bug")],
    ids=["platform-error", "exit-2", "ctrl-c", "bug"],
)
def test_a_declared_job_stopped_before_its_export_is_exported_once_on_the_way_out(
    udp_server: socket.socket, ending: BaseException
) -> None:
    """A command that declared its job and then failed, exited or was interrupted before
    its own export: :func:`run_entry_point` sends what it counted, its exit code unchanged."""
    from etl_core.metrics import use_registry
    from etl_core.runs import exit_code_of

    session = _statsd_session(udp_server)

    def command() -> None:
        session.exports_metrics_as("etl_test_job")
        raise ending

    with use_registry(_registry()), pytest.raises((SystemExit, KeyboardInterrupt)) as ended:
        run_entry_point(command, name="etl-test")

    if isinstance(ending, KeyboardInterrupt):  # the CLI turns it into 130 (143), as before
        assert ended.value is ending
    else:
        assert exit_code_of(ended.value) == {FatalError: 1, SystemExit: 2}.get(type(ending), 1)
    assert udp_server.recv(65535) == b"etl_test_files_total:2|c|#dataset:pos"
    _nothing_more(udp_server)


def test_a_declared_job_exported_at_its_end_is_not_exported_again_as_it_exits(
    udp_server: socket.socket,
) -> None:
    """The end-of-job export, then ``typer.Exit(3)`` (a quarantined file): one export."""
    from etl_core.metrics import use_registry

    session = _statsd_session(udp_server)
    registry = _registry()

    def command() -> None:
        session.exports_metrics_as("etl_test_job", registry)
        assert session.export_metrics("etl_test_job", registry)
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        run_entry_point(command, name="etl-test")
    with use_registry(registry):  # a fresh exporter would send the totals again: none runs
        run_entry_point(lambda: None, name="etl-test")

    assert udp_server.recv(65535) == b"etl_test_files_total:2|c|#dataset:pos"
    _nothing_more(udp_server)


def test_exporting_as_it_goes_leaves_the_declared_job_to_be_exported_at_exit(
    udp_server: socket.socket,
) -> None:
    """``listen`` exports after each batch (``close=False``): an error after that still
    sends, on the way out, what changed since."""
    session = _statsd_session(udp_server)
    registry = _registry()

    def command() -> None:
        session.exports_metrics_as("etl_test_job", registry)
        session.export_metrics("etl_test_job", registry, pushgateway=False, close=False)
        registry.counter("etl_test_files_total", "Files.", ("dataset",)).labels(dataset="pos").inc()
        raise FatalError("the queue went away")

    with pytest.raises(SystemExit):
        run_entry_point(command, name="etl-test")

    assert udp_server.recv(65535) == b"etl_test_files_total:2|c|#dataset:pos"
    assert udp_server.recv(65535) == b"etl_test_files_total:1|c|#dataset:pos"
    _nothing_more(udp_server)


def test_a_command_that_declared_no_job_exports_nothing_on_its_way_out(
    udp_server: socket.socket,
) -> None:
    """``check``, ``config show``, ``scan --no-wait``: nothing declared, nothing sent, and
    a declaration left by an earlier command run in this process is not this one's."""
    session = _statsd_session(udp_server)
    session.exports_metrics_as("etl_test_job", _registry())  # outside any command

    with pytest.raises(SystemExit):
        run_entry_point(lambda: sys.exit(1), name="etl-test")

    _nothing_more(udp_server)


def test_an_export_cut_short_by_a_signal_is_not_repeated_on_the_way_out(
    udp_server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM (a ``KeyboardInterrupt``) landing in ``listen``'s export of a batch, after a
    datagram went out and before the exporter recorded it: what went out is unknown, so the
    way out exports nothing more for that job (it counted the batch twice)."""
    import etl_core.metrics

    session = _statsd_session(udp_server)
    registry = _registry()
    real = etl_core.metrics.export_through

    def sent_then_interrupted(*args: object, **kwargs: object) -> list[str]:
        udp_server.sendto(b"as if sent", udp_server.getsockname())
        raise KeyboardInterrupt

    def command() -> None:
        session.exports_metrics_as("etl_test_job", registry)
        monkeypatch.setattr(etl_core.metrics, "export_through", sent_then_interrupted)
        try:
            session.export_metrics("etl_test_job", registry, pushgateway=False, close=False)
        finally:
            monkeypatch.setattr(etl_core.metrics, "export_through", real)

    with pytest.raises(KeyboardInterrupt):
        run_entry_point(command, name="etl-test")

    assert udp_server.recv(65535) == b"as if sent"
    _nothing_more(udp_server)


def test_an_exporter_bug_on_the_way_out_is_a_warning_not_the_exit_code(
    udp_server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exporter raising something unexpected during the exit export (a bug, not a
    network error) is logged; the command's own exit code (1 for a platform error) and
    the end of its open runs stand: it escaped as a traceback with exit code 1 instead."""
    import etl_core.metrics

    session = _statsd_session(udp_server)

    def broken(*args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("exporter bug")

    def command() -> None:
        session.exports_metrics_as("etl_test_job", _registry())
        monkeypatch.setattr(etl_core.metrics, "export_through", broken)
        raise FatalError("the store refused")

    with capture_logs() as logs, pytest.raises(SystemExit) as ended:
        run_entry_point(command, name="etl-test")

    assert ended.value.code == 1
    assert any("etl_test_job not exported" in r["event"] for r in logs)


def test_open_runs_are_finished_before_the_exit_export_that_may_wait(
    udp_server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exit export can wait for an unreachable Pushgateway (its timeout) while
    Kubernetes counts down a SIGTERM's grace period: the run ledger is finished first, so
    a SIGKILL during the export leaves no run marked running."""
    import etl_core.metrics
    import etl_core.runtime

    session = _statsd_session(udp_server)
    steps: list[str] = []

    def exporting(*args: object, **kwargs: object) -> list[str]:
        steps.append("exported")
        return []

    monkeypatch.setattr(etl_core.metrics, "export_through", exporting)
    monkeypatch.setattr(
        etl_core.runtime, "finish_open_runs", lambda *args: steps.append("runs finished")
    )

    def command() -> None:
        session.exports_metrics_as("etl_test_job", _registry())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_entry_point(command, name="etl-test")

    assert steps == ["runs finished", "exported"]


@pytest.fixture
def silent_gateway() -> Iterator[str]:
    """A Pushgateway URL whose socket takes connections (the kernel's backlog) and never
    answers a request."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"


def test_the_way_out_waits_pushgateway_exit_timeout_for_a_gateway_that_never_answers(
    silent_gateway: str,
) -> None:
    """A SIGTERM'd command's exit export to a silent gateway waited the push's 10 s of a
    30 s grace period; now ``pushgateway_exit_timeout`` (0.5 s here), said as a warning."""
    import time

    env = {"ETL_PUSHGATEWAY_URL": silent_gateway, "ETL_PUSHGATEWAY_EXIT_TIMEOUT": "0.5"}
    session = _session(env)

    def command() -> None:
        session.exports_metrics_as("etl_test_job", _registry())
        raise KeyboardInterrupt  # as SIGTERM is raised in a command

    started = time.monotonic()
    with capture_logs(logging.WARNING) as logs, pytest.raises(KeyboardInterrupt):
        run_entry_point(command, name="etl-test")
    waited = time.monotonic() - started

    assert waited < 5, f"the way out waited {waited:.1f} s"
    (warning,) = [r for r in logs if "not exported through pushgateway" in r["event"]]
    assert "timed out" in warning["event"]


def test_a_pushgateway_exit_timeout_of_zero_is_refused_naming_the_setting() -> None:
    from etl_core.errors import ConfigError

    with pytest.raises(ConfigError, match="pushgateway_exit_timeout"):
        _session({"ETL_PUSHGATEWAY_EXIT_TIMEOUT": "0"})
