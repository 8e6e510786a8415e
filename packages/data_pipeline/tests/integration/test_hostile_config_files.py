"""A hostile configuration file makes the command exit 2 (bad configuration) with one error
naming the file, never a traceback (exit 1) nor a hang."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., subprocess.CompletedProcess[str]]

EXAMPLE_CONFIG = Path(__file__).resolve().parents[4] / "examples" / "retail" / "config"
NESTED = "a = " + "[" * 100_000 + "]" * 100_000 + "\n"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(EXAMPLE_CONFIG, target)
    return target


def refused(cli: Cli, config: Path, tmp_path: Path) -> str:
    done = cli(
        "--config-dir", str(config), "--storage", str(tmp_path / "store"), "--create",
        "contracts", "check",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout + done.stderr


def test_a_contract_nested_100000_deep_exits_2_naming_it(
    cli: Cli, config: Path, tmp_path: Path
) -> None:
    (config / "datasets" / "nested.toml").write_text(NESTED)

    said = refused(cli, config, tmp_path)

    assert f"{config / 'datasets' / 'nested.toml'}: (file): cannot parse config file" in said


def test_an_api_source_nested_100000_deep_exits_2_naming_it(
    cli: Cli, config: Path, tmp_path: Path
) -> None:
    (config / "sources" / "nested.toml").write_text(NESTED)

    assert str(config / "sources" / "nested.toml") in refused(cli, config, tmp_path)


def test_a_settings_file_nested_100000_deep_exits_2_naming_it(
    cli: Cli, config: Path, tmp_path: Path
) -> None:
    (config / "etl.toml").write_text(NESTED)

    said = refused(cli, config, tmp_path)

    assert f"cannot parse config file {config / 'etl.toml'}" in said


@pytest.mark.timeout(60)
def test_a_fifo_named_like_a_contract_exits_2_without_waiting(
    cli: Cli, config: Path, tmp_path: Path
) -> None:
    os.mkfifo(config / "datasets" / "waiting.toml")

    said = refused(cli, config, tmp_path)

    assert f"{config / 'datasets' / 'waiting.toml'}: (file): cannot read config file" in said
    assert "not a regular file" in said


def test_a_directory_named_etl_toml_exits_2_rather_than_running_on_defaults(
    cli: Cli, config: Path, tmp_path: Path
) -> None:
    (config / "etl.toml").mkdir()

    said = refused(cli, config, tmp_path)

    assert f"cannot read config file {config / 'etl.toml'}: it is a directory" in said
