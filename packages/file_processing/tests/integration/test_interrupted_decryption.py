"""Ctrl-C or SIGTERM while gpg decrypts is never a verdict on the file.

A real ``etl-file-processing`` process is signalled the way a terminal or
``docker stop`` signals it: the signal goes to its whole process group while
gpg is decrypting (held there by the test-only ``ETL_FAULT_AT=decrypt:pause``,
so the signal cannot arrive before or after). gpg runs in its own session and
never sees it; the file is either finished (``scan``: objects in flight finish)
or left in line (``process``: the unit in the main thread is abandoned cleanly),
never quarantined as ``pgp.corrupt``, and the operator is told how many objects
finished and how many remain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from etl_core.faults import FAULT_ENV, PAUSE_ENV
from file_processing.ledger import Ledger

EXIT_CODES: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}
SIGNALS = [pytest.param(signal.SIGINT, id="ctrl-c"), pytest.param(signal.SIGTERM, id="sigterm")]
ROWS = 200_000  # a few MB of plaintext: gpg is still streaming when the signal comes


def start(lane: Any, *args: str) -> subprocess.Popen[str]:
    """The CLI in its own process group (as a shell job), paused while gpg decrypts."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    environ.pop("DATABASE_URL", None)
    environ.update(
        {
            "ETL_STORAGE_URL": str(lane.tmp / "lake"),
            "ETL_CONFIG_DIR": str(lane.config_dir),
            "ETL_WORK_DIR": str(lane.tmp / "scratch"),
            "ETL_LOG_FORMAT": "json",
            "TEST_ORDERS_KEY": lane.secret,
            FAULT_ENV: "decrypt:pause",
            PAUSE_ENV: "3",
        }
    )
    (lane.tmp / "scratch").mkdir(exist_ok=True)
    script = Path(sys.executable).parent / "etl-file-processing"
    return subprocess.Popen(
        [str(script), *args],
        env=environ,
        cwd=lane.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def signal_while_decrypting(process: subprocess.Popen[str], signum: int) -> str:
    """Wait until gpg streams plaintext, signal the process group, return all of stderr."""
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if f"{FAULT_ENV}: pause at decrypt" in line:
            os.killpg(process.pid, signum)  # the whole job, as a terminal's Ctrl-C does
            break
    else:
        process.kill()
        pytest.fail("the process never reached decryption")
    _, rest = process.communicate(timeout=120)
    return "".join(lines) + rest


def events(stderr: str) -> list[str]:
    return [str(json.loads(line).get("event")) for line in stderr.splitlines() if line.strip()]


@pytest.fixture
def sealed_lane(local_lane: Any, pgp: Any, orders: Any, tmp_path: Path) -> Any:
    """The lane with one encrypted delivery of a few megabytes."""
    plain = tmp_path / "orders_20261105.csv"
    plain.write_bytes(orders(ROWS))
    sealed = pgp.encrypt(plain, tmp_path / "orders_20261105.csv.pgp", extra=["-z", "0"])
    local_lane.key = local_lane.deliver(sealed.name, sealed)
    local_lane.secret = pgp.recipient_secret_armored.decode()
    return local_lane


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_during_decryption_lets_scan_finish_the_file(
    sealed_lane: Any, signum: int
) -> None:
    process = start(sealed_lane, "scan")
    stderr = signal_while_decrypting(process, signum)
    assert process.returncode == EXIT_CODES[signum], stderr
    said = events(stderr)
    assert any("scan: 1 of 1 landing object(s) finished" in e and "0 remain" in e for e in said)
    record = Ledger(sealed_lane.store, run_id="t", claim_timeout=_hour()).get(sealed_lane.key)
    assert record is not None
    assert record.state == "validated", record  # finished, not judged by the interruption
    assert sealed_lane.keys("quarantine/") == []
    assert not list((sealed_lane.tmp / "scratch").iterdir())


@pytest.mark.parametrize("signum", SIGNALS)
def test_a_signal_during_decryption_leaves_the_file_in_line_for_process(
    sealed_lane: Any, signum: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    process = start(sealed_lane, "process", sealed_lane.key)
    stderr = signal_while_decrypting(process, signum)
    assert process.returncode == EXIT_CODES[signum], stderr
    assert "Traceback" not in stderr
    assert not any("pgp." in event for event in events(stderr)), stderr
    assert sealed_lane.keys("quarantine/") == []
    assert sealed_lane.keys("validated/") == []
    ledger = Ledger(sealed_lane.store, run_id="t", claim_timeout=_hour())
    record = ledger.get(sealed_lane.key)
    assert record is not None
    assert record.state == "failed"  # not done: the next scan takes it at once
    assert "interrupted" in (record.message or "")
    assert not list((sealed_lane.tmp / "scratch").iterdir())
    monkeypatch.setenv("TEST_ORDERS_KEY", sealed_lane.secret)
    with sealed_lane.processor() as processor:
        outcome = processor.process(sealed_lane.key)
    assert outcome.status == "validated", outcome.reason
    assert outcome.rows == ROWS


def _hour() -> timedelta:
    return timedelta(hours=1)
