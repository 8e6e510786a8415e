"""Command-line values converted without pydantic stay the values and messages of Typer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest

typer = pytest.importorskip("typer", reason="the cli extra (typer) is not installed")

from etl_core.cli_params import plain_values  # noqa: E402 - after the skip without typer


def run(args: list[str]) -> dict[str, Any]:
    """Run a small command with ``args`` after :func:`plain_values`; the values it got."""
    plain_values()
    got: dict[str, Any] = {}
    app = typer.Typer()

    @app.command()
    def command(
        name: Annotated[str, typer.Argument()],
        where: Annotated[Path | None, typer.Option("--where", exists=True)] = None,
        label: Annotated[str | None, typer.Option("--label")] = None,
        count: Annotated[int, typer.Option("--count", min=1, max=5)] = 1,
        tags: Annotated[list[str] | None, typer.Option("--tag")] = None,
    ) -> None:
        got.update(name=name, where=where, label=label, count=count, tags=tags)

    typer.main.get_command(app).main(args=args, standalone_mode=False)
    return got


def test_text_paths_and_unset_options_convert_as_typer_does(tmp_path: Path) -> None:
    got = run(["x", "--where", str(tmp_path), "--count", "3", "--tag", "a", "--tag", "b"])
    assert got == {"name": "x", "where": tmp_path, "label": None, "count": 3, "tags": ["a", "b"]}
    assert isinstance(got["where"], Path)


def test_a_missing_path_is_refused_with_typers_message(tmp_path: Path) -> None:
    with pytest.raises(typer.BadParameter, match="does not exist"):
        run(["x", "--where", str(tmp_path / "absent")])


def test_a_number_out_of_range_is_left_to_typer(tmp_path: Path) -> None:
    with pytest.raises(typer.BadParameter, match="less than or equal to 5"):
        run(["x", "--count", "9"])


def test_installing_twice_wraps_typer_once() -> None:
    plain_values()
    first = typer.core.build_runtime_param
    plain_values()
    assert typer.core.build_runtime_param.__self__ is first.__self__
