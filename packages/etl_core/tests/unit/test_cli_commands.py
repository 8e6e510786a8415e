"""A runtime's click group builds a command when it is looked up, and is otherwise Typer's."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

typer = pytest.importorskip("typer", reason="the command line needs the 'cli' extra")

from etl_core.cli_commands import lazy_group  # noqa: E402


def make_app() -> typer.Typer:
    app = typer.Typer(name="etl-test", help="A test runtime.", add_completion=False)

    @app.callback()
    def main(verbose: Annotated[bool, typer.Option(help="Say more.")] = False) -> None:
        """A test runtime."""

    @app.command()
    def first(count: Annotated[int, typer.Option(help="How many.")] = 1) -> None:
        """The first command."""
        print(f"first {count}")

    @app.command("second-one")
    def second(name: str) -> None:
        """The second command."""
        print(f"second {name}")

    @app.command()
    def shadowed() -> None:
        """A command a subgroup of its name replaces."""

    sub = typer.Typer(help="A subgroup.")

    @sub.command()
    def inner() -> None:
        """Inside."""
        print("inner")

    app.add_typer(sub, name="shadowed")
    app.add_typer(typer.Typer(help="Another."), name="group")
    return app


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    build = typer.main.get_command_from_info

    def counting(*args: Any, **options: Any) -> Any:
        command = build(*args, **options)
        names.append(command.name)
        return command

    monkeypatch.setattr(typer.main, "get_command_from_info", counting)
    return names


def run(group: Any, *args: str) -> None:
    group.main(args=list(args), prog_name="etl-test", standalone_mode=False)


def test_only_the_invoked_command_is_built(
    built: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    group = lazy_group(make_app())
    assert built == []
    run(group, "first", "--count", "3")
    assert built == ["first"]
    assert capsys.readouterr().out == "first 3\n"


def test_the_names_order_and_help_are_typers(capsys: pytest.CaptureFixture[str]) -> None:
    eager, lazy = typer.main.get_command(make_app()), lazy_group(make_app())
    assert list(lazy.commands) == list(eager.commands)
    assert list(lazy.commands) == ["first", "second-one", "shadowed", "group"]
    assert lazy.commands["shadowed"].help == eager.commands["shadowed"].help == "A subgroup."
    for args in ((), ("second-one",), ("shadowed",)):
        helps = []
        for group in (eager, lazy):
            run(group, *args, "--help")
            helps.append(capsys.readouterr().out)
        assert "Usage" in helps[0]
        assert helps[1] == helps[0]
    run(lazy, "shadowed", "inner")
    assert capsys.readouterr().out == "inner\n"


def test_an_unknown_command_is_refused_with_typers_suggestion() -> None:
    with pytest.raises(typer.TyperException, match="Did you mean 'first'"):
        run(lazy_group(make_app()), "firts")


def test_a_subgroup_is_built_when_it_is_invoked(
    built: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    group = lazy_group(make_app())
    run(group, "shadowed", "inner")
    assert built == ["inner"]
    assert capsys.readouterr().out == "inner\n"


def test_a_subgroup_without_a_name_lends_its_commands_as_typer_does() -> None:
    app = make_app()
    extra = typer.Typer()

    @extra.command()
    def lent() -> None:
        """Lent to the group."""

    app.add_typer(extra)
    assert list(lazy_group(app).commands) == list(typer.main.get_command(app).commands)
    assert "lent" in lazy_group(app).commands
