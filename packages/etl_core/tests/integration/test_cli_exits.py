"""Every runtime's command line ends the same way: signals, closed pipes and bad usage,
tried on a small CLI built with the shared bootstrap, run as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("typer", reason="the command line needs the 'cli' extra")

SCRIPT = """
import sys, time
import typer
from etl_core.cli import RuntimeCLI
from etl_core.runtime import RuntimeSettings

cli = RuntimeCLI(name="etl-test", lane="test", help="A test runtime.", settings=RuntimeSettings)

@cli.app.command()
def spew(lines: int = 100000) -> None:
    for n in range(lines):
        cli.out.print(f"line {n}")

@cli.app.command()
def work(seconds: float = 30.0) -> None:
    print("started", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
    print("finished", flush=True)

@cli.app.command()
def say(ctx: typer.Context, text: str = "") -> None:
    'Print the text and a setting.'
    print(text, cli.session(ctx).settings.schedule_tick, flush=True)

@cli.app.command()
def crash() -> None:
    raise RuntimeError("a bug")

@cli.app.command()
def steps(total: int = 5, finished: int = 2) -> None:
    with cli.progress("steps", item="step") as progress:
        progress.plan(total)
        for n in range(finished):
            progress.finish(str(n))
        print("started", flush=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.05)

cli.main()
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "etl_test_cli.py"
    path.write_text(SCRIPT)
    (tmp_path / "store").mkdir()
    return path


def start(script: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ETL_STORAGE_URL": str(script.parent / "store")}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=script.parent,
    )


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(("sent", "code", "said"), [(signal.SIGTERM, 143, "SIGTERM"),
                                                    (signal.SIGINT, 130, "Ctrl-C")])  # fmt: skip
def test_a_signal_ends_the_run_with_its_code_and_one_json_line(
    script: Path, sent: signal.Signals, code: int, said: str
) -> None:
    process = start(script, "work")
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    process.send_signal(sent)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    (record,) = json_lines(stderr)
    assert record["level"] == "warning"
    assert said in str(record["event"])
    assert "finished" not in stdout


def test_a_closed_output_pipe_ends_quietly_with_141(script: Path) -> None:
    process = start(script, "spew")
    assert process.stdout is not None
    assert process.stdout.readline().startswith("line 0")
    process.stdout.close()  # what `| head -1` does once it has its line
    started = time.monotonic()
    assert process.wait(timeout=30) == 141
    assert time.monotonic() - started < 30
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_bad_usage_off_a_terminal_is_one_json_line_exit_2(script: Path) -> None:
    process = start(script, "work", "--seconds", "soon")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    (record,) = json_lines(stderr)
    assert "--seconds" in str(record["event"])


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interruption_says_what_finished_and_what_remains_in_one_json_line(
    script: Path, sent: signal.Signals, code: int
) -> None:
    process = start(script, "steps", "--total", "5", "--finished", "2")
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr
    (record,) = json_lines(stderr)
    assert "steps: 2 of 5 step(s) finished, 3 remain" in str(record["event"])
    assert (record["finished"], record["remaining"], record["work"]) == (2, 3, "steps")
    assert record["lane"] == "test"
    assert record["run_id"]


def test_a_bug_is_one_json_record_with_its_traceback_and_exit_1(script: Path) -> None:
    process = start(script, "crash")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    (record,) = json_lines(stderr)
    assert record["exc_type"] == "RuntimeError"
    assert "Traceback" in str(record["exception"])
    assert record["lane"] == "test"


def test_a_usage_error_before_any_setting_is_read_is_a_json_line_with_the_run(
    script: Path,
) -> None:
    process = start(script, "--no-such-option", "work")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    (record,) = json_lines(stderr)
    assert "--no-such-option" in str(record["event"])
    assert record["lane"] == "test"
    assert record["run_id"]


FREEZE_SCRIPT = """
import atexit, gc, sys
from etl_core.cli import RuntimeCLI
from etl_core.runtime import RuntimeSettings

cli = RuntimeCLI(name="etl-test", lane="test", help="A test runtime.", settings=RuntimeSettings)

@cli.app.command()
def hello() -> None:
    print("hello", flush=True)

@cli.app.command()
def crash() -> None:
    raise RuntimeError("a bug")

atexit.register(lambda: print("frozen" if gc.get_freeze_count() else "not frozen", flush=True))
if sys.argv[1] == "--args":
    cli.main(sys.argv[2:])
else:
    cli.main()
"""


@pytest.mark.parametrize(
    ("args", "code", "printed"),
    [
        (("hello",), 0, ["hello", "frozen"]),
        (("crash",), 1, ["frozen"]),
        (("--args", "hello"), 0, ["hello", "not frozen"]),
    ],
)
def test_the_console_scripts_run_ends_with_its_heap_frozen(
    tmp_path: Path, args: tuple[str, ...], code: int, printed: list[str]
) -> None:
    """Shutdown then skips walking the heap; a caller that passes the arguments (a test
    running the CLI in its own process) keeps its collector as it was."""
    path = tmp_path / "etl_freeze_cli.py"
    path.write_text(FREEZE_SCRIPT)
    (tmp_path / "store").mkdir()
    process = start(path, *args)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert stdout.splitlines() == printed


def test_a_commands_help_is_shown_although_the_settings_are_refused(
    script: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETL_SCHEDULE_TICK", "0s")
    helped = start(script, "say", "--help")
    out, err = helped.communicate(timeout=60)
    assert helped.returncode == 0, err
    assert "Print the text and a setting." in out
    assert "schedule_tick" not in err
    refused = start(script, "say", "--text", "hello")
    valued = start(script, "say", "--text", "--help")  # an option's value, not a flag
    for process in (refused, valued):
        _, said = process.communicate(timeout=60)
        assert process.returncode == 2, said
        (line,) = json_lines(said)
        assert "schedule_tick: must be longer than 0s" in str(line["event"])
