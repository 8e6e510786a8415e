"""A CLI's console is made at its first use; until then its stream is the plain one."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rich", reason="the cli extra (rich) is not installed")

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


def test_a_console_without_markup_prints_strings_and_table_cells_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runtimes' consoles: a key holding ``[bold]``, ``[/x]`` or ``:smile:`` is
    written as it is, in a print, a table's title and its cells, and raises nothing."""
    from rich.table import Table

    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setenv("COLUMNS", "200")
    console = DeferredConsole(markup=False, emoji=False)
    key = "vendor/report[bold]1[/x] :smile:.csv"
    console.print(key)
    table = Table("key", title=key)
    table.add_row(key)
    console.print(table)
    assert out.getvalue().count(key) == 3


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


def test_a_piped_stream_is_no_terminal_without_making_the_console(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    console = DeferredConsole(stderr=True)
    assert console.is_terminal is False
    assert console._console is None


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "environment", "expected"),
    [
        (_Terminal(), {}, True),
        (io.StringIO(), {"FORCE_COLOR": "1"}, True),
        (io.StringIO(), {"TTY_COMPATIBLE": "1"}, True),
        (_Terminal(), {"TTY_COMPATIBLE": "0"}, False),
    ],
    ids=["a-tty", "force-color", "tty-compatible", "tty-compatible-off"],
)
def test_whether_a_console_is_a_terminal_is_what_rich_says(
    monkeypatch: pytest.MonkeyPatch,
    stream: io.StringIO,
    environment: dict[str, str],
    expected: bool,
) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "stdout", stream)
    console = DeferredConsole()
    assert console.is_terminal is expected
    assert console.console.is_terminal is expected


def test_import_ahead_imports_rich_on_a_thread_and_makes_no_console() -> None:
    code = (
        "import sys, threading\n"
        "from etl_core.console import DeferredConsole\n"
        "out = DeferredConsole()\n"
        "out.import_ahead('rich.table')\n"
        "out._ahead.join()\n"
        "print(out._console is None, 'rich.console' in sys.modules, 'rich.table' in sys.modules,"
        " 'rich._emoji_codes' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["True", "True", "True", "True"]


def test_printing_after_import_ahead_prints_as_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rich.table import Table

    printed = []
    for ahead in (False, True):
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        console = DeferredConsole()
        console.widen_when_piped(160)
        if ahead:
            console.import_ahead("rich.table")
        table = Table("dataset", "rows")
        table.add_row("pos", "1 → x")
        console.print(table)
        printed.append(out.getvalue())
        assert console._ahead is None  # joined at the first use
    assert printed[0] == printed[1]
    assert "pos" in printed[1]


def test_a_module_that_cannot_be_imported_ahead_fails_only_where_it_is_used() -> None:
    console = DeferredConsole()
    console.import_ahead("etl_core_no_such_module")  # no error here, nor on the thread
    assert console._ahead is not None
    console._ahead.join()
    with pytest.raises(ModuleNotFoundError):
        __import__("etl_core_no_such_module")


def test_a_command_exiting_at_once_waits_for_the_import_ahead_under_way(tmp_path: Path) -> None:
    """An error path that exits before anything is printed (``process`` of a missing key)
    must not leave the interpreter finalising under a thread still importing: a daemon
    import thread killed there crashed it now and then (exit 139, not the command's 2)."""
    (tmp_path / "slow_module.py").write_text(
        "import pathlib, time\n"
        "time.sleep(0.5)\n"
        f"pathlib.Path({str(tmp_path / 'imported')!r}).touch()\n"
    )
    code = (
        "import sys\n"
        "from etl_core.console import DeferredConsole\n"
        "DeferredConsole().import_ahead('slow_module')\n"
        "sys.exit(2)\n"
    )
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=environ
    )

    assert done.returncode == 2, done.stderr
    assert (tmp_path / "imported").exists()
