"""Every command of every runtime reads well in ``--help``: the first paragraph of its
help (what its group lists beside its name) is one line of plain text, and each later
paragraph reaches Rich as one line, to be wrapped at the terminal's width."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from etl_core.cli_commands import lazy_group
from etl_core.lanes import LANES

typer_main = pytest.importorskip("typer.main", reason="the command line needs the 'cli' extra")


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every command and group under ``command``, with its path of names."""
    for name, sub in getattr(command, "commands", {}).items():
        yield " ".join((*path, name)), sub
        yield from commands(sub, (*path, name))


@pytest.mark.parametrize("lane", LANES)
def test_every_commands_summary_is_one_line_of_plain_text(lane: str) -> None:
    cli = importlib.import_module(f"{lane}.cli").cli
    group = typer_main.get_command(cli.app)
    listed = dict(commands(group))
    assert {"config", "config show", "contracts check"} <= set(listed)
    summaries = {
        path: (command.short_help or command.help or "").strip().split("\n\n")[0]
        for path, command in listed.items()
    }
    broken = {path: text for path, text in summaries.items() if "\n" in text or "``" in text}
    assert broken == {}
    assert all(summaries.values()), [path for path, text in summaries.items() if not text]


@pytest.mark.parametrize("lane", LANES)
def test_every_paragraph_of_a_commands_help_is_wrapped_by_the_terminal(lane: str) -> None:
    cli = importlib.import_module(f"{lane}.cli").cli
    listed = dict(commands(lazy_group(cli.app)))
    assert "config show" in listed
    broken = {
        path: paragraph
        for path, command in listed.items()
        for paragraph in (command.help or "").split("\n\n")
        if "\n" in paragraph
    }
    assert broken == {}
