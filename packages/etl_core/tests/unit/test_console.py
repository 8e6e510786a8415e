"""A CLI's console is made at its first use; until then its stream is the plain one."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

pytest.importorskip("rich")

from etl_core.console import DeferredConsole


def test_json_output_through_file_does_not_import_rich() -> None:
    code = (
        "import sys\n"
        "from etl_core.console import DeferredConsole\n"
        "DeferredConsole().file.write('{}\\n')\n"
        "print('rich.console' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["{}", "False"]


def test_file_is_the_current_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert DeferredConsole().file is out
    assert DeferredConsole(stderr=True).file is err


def test_printing_makes_the_console_with_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    console = DeferredConsole(stderr=True, soft_wrap=True)
    console.print("hello [bold]world[/bold]")
    assert err.getvalue() == "hello world\n"
    assert console.console.soft_wrap
    assert console.console.stderr


def test_a_piped_console_is_widened_before_and_after_it_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # not a terminal
    monkeypatch.setenv("COLUMNS", "80")
    early = DeferredConsole()
    early.widen_when_piped(160)
    assert early.width == 160
    late = DeferredConsole()
    assert late.width == 80
    late.widen_when_piped(160)
    assert late.width == 160
