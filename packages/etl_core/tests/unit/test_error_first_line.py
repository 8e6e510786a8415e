"""etl_core.errors.first_line: an engine's long message shortened to its first line."""

from __future__ import annotations

from etl_core.errors import first_line


def test_a_many_line_message_gives_its_first_line_without_leading_space() -> None:
    error = RuntimeError("\n  Binder Error: column x not found\nLINE 1: SELECT x\n        ^  ")
    assert first_line(error) == "Binder Error: column x not found"


def test_an_empty_message_gives_the_error_type_name() -> None:
    assert first_line(KeyError()) == "KeyError"
    assert first_line(ValueError("  \n ")) == "ValueError"
