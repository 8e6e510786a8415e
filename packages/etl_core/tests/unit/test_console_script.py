"""The runtimes' console scripts import their CLI with the collector paused, then run it."""

from __future__ import annotations

import gc
from types import SimpleNamespace

import pytest

from etl_core import console_script
from etl_core.lanes import LANES


def test_a_runtimes_cli_is_imported_with_the_collector_paused_and_frozen_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, object]] = []

    def main() -> int:
        seen.append(("main", gc.isenabled()))
        return 3

    def import_module(name: str) -> SimpleNamespace:
        seen.append((name, gc.isenabled()))
        return SimpleNamespace(main=main)

    monkeypatch.setattr(console_script, "import_module", import_module)
    monkeypatch.setattr(gc, "freeze", lambda: seen.append(("freeze", gc.isenabled())))
    assert gc.isenabled()
    assert console_script.file_processing() == 3
    assert seen == [("file_processing.cli", False), ("freeze", False), ("main", True)]
    assert gc.isenabled()


def test_a_failed_import_leaves_the_collector_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    def import_module(name: str) -> None:
        raise ImportError(name)

    monkeypatch.setattr(console_script, "import_module", import_module)
    monkeypatch.setattr(gc, "freeze", lambda: None)
    with pytest.raises(ImportError, match=r"data_pipeline\.cli"):
        console_script.data_pipeline()
    assert gc.isenabled()


def test_only_the_runtimes_are_entry_points() -> None:
    assert {name: callable(getattr(console_script, name)) for name in LANES} == {
        "file_processing": True,
        "data_pipeline": True,
        "observability": True,
    }
    with pytest.raises(AttributeError, match="__path__"):
        _ = console_script.__path__  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="etl_core"):
        _ = console_script.etl_core  # type: ignore[attr-defined]


def test_ctrl_c_while_importing_the_cli_exits_130_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def import_module(name: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(console_script, "import_module", import_module)
    monkeypatch.setattr(gc, "freeze", lambda: None)
    ended: object = None
    try:
        console_script.observability()
    except SystemExit as stopped:
        ended = stopped.code
    except KeyboardInterrupt:  # what it raised before: a traceback, not exit 130
        ended = "KeyboardInterrupt"
    assert ended == 130
    assert capsys.readouterr() == ("", "")
    assert gc.isenabled()
