"""`etl-observability serve-ping`, the status service's health check, against a real `serve`
started on 127.0.0.1 and against addresses where nothing answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl_core.testing.ports import free_port

CONTRACT = """
dataset = "pos"
source = "pos"
pattern = "pos_{date:%Y%m%d}.csv"
[[columns]]
name = "id"
"""
SCRIPT = Path(sys.executable).parent / "etl-observability"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration directory with one dataset contract, its store beside it."""
    (tmp_path / "config" / "datasets").mkdir(parents=True)
    (tmp_path / "config" / "datasets" / "pos.toml").write_text(CONTRACT)
    (tmp_path / "lake").mkdir()
    return tmp_path / "config"


def settings_file(config: Path, **values: object) -> None:
    """``etl.toml`` of ``config`` holding ``values`` (numbers bare, text quoted)."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    (config / "etl.toml").write_text("\n".join(lines) + "\n")


def environ(config: Path, **variables: str) -> dict[str, str]:
    """No ``ETL_*`` variable of this shell: the settings file and defaults decide."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    return inherited | {
        "ETL_CONFIG_DIR": str(config),
        "ETL_STORAGE_URL": str(config.parent / "lake"),
        "ETL_LOG_FORMAT": "json",
        **variables,
    }


def serve_ping(config: Path, *args: str, **variables: str) -> tuple[int, str, str, float]:
    """Exit code, stdout, the one reason logged (or ``""``) and the seconds it took."""
    started = time.monotonic()
    done = subprocess.run(
        [str(SCRIPT), "serve-ping", *args],
        env=environ(config, **variables),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    errors = [line["event"] for line in lines if line["level"] == "error"]
    assert len(errors) <= 1, done.stderr
    return done.returncode, done.stdout.strip(), "".join(errors), time.monotonic() - started


@pytest.fixture
def serving(config: Path) -> Iterator[int]:
    """``serve`` on 127.0.0.1, on a free port given only in ``etl.toml``: that port."""
    port = free_port()
    settings_file(config, serve_port=port)
    process = subprocess.Popen(
        [str(SCRIPT), "serve", "--interval", "1s"],
        env=environ(config),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while serve_ping(config, "--ready")[0] != 0:
            assert process.poll() is None, process.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "serve did not become ready within 60s"
            time.sleep(0.3)
        yield port
    finally:
        process.kill()
        process.communicate(timeout=30)


@pytest.mark.slow
def test_serve_ping_asks_the_port_serve_took_from_the_settings_file(
    config: Path, serving: int
) -> None:
    assert serve_ping(config)[:3] == (0, f"http://127.0.0.1:{serving}/healthz: 200 ok", "")
    code, said, _, _ = serve_ping(config, "--ready")
    assert code == 0
    assert said.startswith(f"http://127.0.0.1:{serving}/readyz: 200 ")


@pytest.mark.slow
def test_a_wildcard_host_in_the_settings_file_is_asked_on_the_loopback_address(
    config: Path, serving: int
) -> None:
    """``serve_host = "0.0.0.0"`` (every interface, as in a container) is no address to
    connect to: the probe asks 127.0.0.1, where such a ``serve`` answers."""
    settings_file(config, serve_host="0.0.0.0", serve_port=serving)
    assert serve_ping(config)[:2] == (0, f"http://127.0.0.1:{serving}/healthz: 200 ok")


@pytest.mark.slow
def test_the_environment_overrides_the_settings_file_as_for_serve(
    config: Path, serving: int
) -> None:
    elsewhere = str(free_port())
    code, _, reason, _ = serve_ping(config, ETL_SERVE_PORT=elsewhere)
    assert code == 1
    assert reason.startswith(f"http://127.0.0.1:{elsewhere}/healthz: connection refused")


def test_nothing_listening_fails_at_once_naming_the_address(config: Path) -> None:
    port = free_port()
    settings_file(config, serve_port=port)
    code, said, reason, seconds = serve_ping(config, "--timeout", "10")
    assert (code, said) == (1, "")
    assert reason == f"http://127.0.0.1:{port}/healthz: connection refused (nothing listens there)"
    assert seconds < 10


def test_a_service_that_never_answers_fails_within_the_timeout(config: Path) -> None:
    """A port that takes the connection and never answers (a hung server) is unhealthy
    after ``--timeout``, not after the health check's own limit."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)  # connections queue; nothing ever reads or answers
        port = hung.getsockname()[1]
        settings_file(config, serve_port=port)
        code, _, reason, seconds = serve_ping(config, "--timeout", "1")
    assert (code, reason) == (1, f"http://127.0.0.1:{port}/healthz: no answer within 1s")
    assert seconds < 10


def test_a_service_answering_an_error_fails_with_its_status_and_first_line(
    config: Path,
) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        settings_file(config, serve_port=port)
        process = subprocess.Popen(
            [str(SCRIPT), "serve-ping", "--ready"],
            env=environ(config),
            stderr=subprocess.PIPE,
            text=True,
        )
        connection, _ = server.accept()
        with connection:
            connection.recv(4096)
            body = b'{"ready": false, "reason": "no cycle finished yet"}\nmore\n'
            head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Length: {len(body)}\r\n\r\n"
            connection.sendall(head.encode() + body)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    reason = json.loads(stderr.splitlines()[-1])["event"]
    expected = f'http://127.0.0.1:{port}/readyz: answered 503 {{"ready": false, "reason": '
    assert reason == expected + '"no cycle finished yet"}'


def test_port_zero_has_no_port_to_ask(config: Path) -> None:
    settings_file(config, serve_port=0)
    code, _, reason, _ = serve_ping(config)
    assert code == 1
    assert reason.startswith("serve_port is 0 (serve listens on any free port): no port to ask")


def test_a_bad_setting_is_a_configuration_error_naming_it(config: Path) -> None:
    settings_file(config, serve_port=70000)
    done = subprocess.run(
        [str(SCRIPT), "serve-ping"],
        env=environ(config),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "serve_port: must be from 0 to 65535, got 70000" in done.stderr


def test_a_timeout_out_of_range_is_a_usage_error_naming_the_option(config: Path) -> None:
    done = subprocess.run(
        [str(SCRIPT), "serve-ping", "--timeout", "0"],
        env=environ(config),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "'--timeout': expected seconds from 0.1 to 60, got '0'" in done.stderr
