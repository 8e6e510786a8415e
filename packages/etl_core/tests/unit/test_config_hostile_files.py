"""Hostile configuration files (settings, contracts, sources, holiday files): each is refused
with a configuration error naming the file and what was expected, never a traceback, a hang
or a silent skip."""

from __future__ import annotations

import os
import pickle
import threading
import time
from pathlib import Path

import pytest

from etl_core.config import load_settings
from etl_core.config_files import MAX_CONFIG_FILE_BYTES, ConfigFileError, read_config_text
from etl_core.contracts import ContractError, declared_datasets, load_contract, load_sources
from etl_core.errors import ConfigError
from etl_core.runtime import RuntimeSettings, load_runtime_settings

CONTRACT = """\
dataset = "sales"
source = "vendor"
pattern = "s_{date:%Y%m%d}.csv"

[[columns]]
name = "id"
type = "int"
"""
DEPTH = 100_000
NESTINGS = {
    "arrays": "a = " + "[" * DEPTH + "]" * DEPTH + "\n",
    "inline tables": "a = " + "{b=" * DEPTH + "1" + "}" * DEPTH + "\n",
}
BOM = b"\xef\xbb\xbf"


def contract_file(config: Path, name: str = "sales.toml") -> Path:
    folder = config / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def settled(config: Path) -> None:
    """The datasets directory last changed long enough ago for :func:`declared_datasets`."""
    then = time.time() - 60
    os.utime(config / "datasets", (then, then))


@pytest.mark.parametrize("text", NESTINGS.values(), ids=NESTINGS.keys())
def test_a_settings_file_nested_too_deeply_is_a_config_error_naming_it(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "etl.toml"
    path.write_text(text)

    with pytest.raises(ConfigError, match=rf"cannot parse config file {path}: .*nest"):
        load_settings(RuntimeSettings, toml_path=path, env={})


@pytest.mark.parametrize("text", NESTINGS.values(), ids=NESTINGS.keys())
def test_a_contract_nested_too_deeply_is_refused_naming_its_file(tmp_path: Path, text: str) -> None:
    path = contract_file(tmp_path)
    path.write_text(CONTRACT + text)

    with pytest.raises(ContractError) as caught:
        load_contract(path, environ={})

    (error,) = caught.value.errors
    assert error.source == str(path)
    assert "nest" in error.message


def test_an_api_source_nested_too_deeply_is_refused_naming_its_file(tmp_path: Path) -> None:
    path = tmp_path / "sources" / "shop.toml"
    path.parent.mkdir()
    path.write_text(NESTINGS["arrays"])

    with pytest.raises(ContractError) as caught:
        load_sources(tmp_path)

    assert [e.source for e in caught.value.errors] == [str(path)]


def test_a_file_larger_than_the_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    with path.open("wb") as file:  # 100 MB, sparse: nothing is written
        file.truncate(100 * 1024 * 1024)

    with pytest.raises(ConfigError, match=rf"cannot read config file {path}: .*larger than"):
        load_settings(RuntimeSettings, toml_path=path, env={})


def test_a_file_at_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    path.write_bytes(b"#" * (MAX_CONFIG_FILE_BYTES - 1) + b"\n")

    assert read_config_text(path).startswith("#")


@pytest.mark.timeout(20)
def test_a_fifo_named_like_a_contract_is_refused_without_waiting_for_a_writer(
    tmp_path: Path,
) -> None:
    path = contract_file(tmp_path)
    os.mkfifo(path)

    with pytest.raises(ContractError) as caught:
        load_contract(path, environ={})

    (error,) = caught.value.errors
    assert error.source == str(path)
    assert "not a regular file" in error.message


@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink loop"])
@pytest.mark.timeout(20)
def test_an_etl_toml_in_the_config_dir_that_is_no_file_is_refused_not_skipped(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "etl.toml"
    if kind == "directory":
        path.mkdir()  # what a bind mount of a missing file leaves
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("etl.toml")

    with pytest.raises(ConfigError, match=rf"cannot read config file {path}: "):
        load_runtime_settings(RuntimeSettings, {"config_dir": str(tmp_path)}, env={})


def test_a_byte_order_mark_is_read_past(tmp_path: Path) -> None:
    settings_file = tmp_path / "etl.toml"
    settings_file.write_bytes(BOM + b'log_level = "DEBUG"\n')
    contract = contract_file(tmp_path)
    contract.write_bytes(BOM + CONTRACT.encode())

    assert load_settings(RuntimeSettings, toml_path=settings_file, env={}).log_level == "DEBUG"
    assert load_contract(contract, environ={}).dataset == "sales"


@pytest.mark.parametrize("kind", ["fifo", "nested", "directory"])
@pytest.mark.timeout(20)
def test_declared_datasets_cannot_tell_past_a_hostile_file(tmp_path: Path, kind: str) -> None:
    contract_file(tmp_path).write_text(CONTRACT)
    path = contract_file(tmp_path, "other.toml")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_text('dataset = "other"\n' + NESTINGS["arrays"])
    settled(tmp_path)

    assert declared_datasets(tmp_path) is None


@pytest.mark.timeout(20)
def test_a_holiday_file_that_is_a_fifo_is_refused_naming_it(tmp_path: Path) -> None:
    path = contract_file(tmp_path)
    path.write_text(CONTRACT + '[freshness]\nexpected = "0 6 * * *"\nholidays = "days.txt"\n')
    os.mkfifo(path.parent / "days.txt")

    with pytest.raises(ContractError) as caught:
        load_contract(path, environ={})

    assert any(str(path.parent / "days.txt") in e.message for e in caught.value.errors)


def test_the_error_names_the_file_and_pickles(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError) as caught:
        read_config_text(tmp_path)

    error = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(error, ConfigError)
    assert error.path == str(tmp_path)
    assert "is a directory" in str(error)


def test_dev_null_reads_as_an_empty_settings_file() -> None:
    settings = load_settings(RuntimeSettings, toml_path="/dev/null", env={})

    assert settings.log_level == "INFO"


@pytest.mark.parametrize("kind", ["file", "fifo"])
@pytest.mark.timeout(20)
def test_a_sources_path_that_is_no_directory_is_refused_not_read_as_no_sources(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "sources"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text('base_url = "https://api.example.com"\n')  # one source, misplaced

    with pytest.raises(ContractError) as caught:
        load_sources(tmp_path)

    (error,) = caught.value.errors
    assert error.source == str(path)
    assert "not a directory" in error.message


@pytest.mark.timeout(20)
def test_a_settings_file_named_as_a_pipe_is_read(tmp_path: Path) -> None:
    """``ETL_SETTINGS_FILE=/dev/stdin`` fed by a pipe, or ``<(vault read …)``: a pipe the
    operator names is read to its end, even when its writer is slow, as it always was."""
    reader, writer = os.pipe()

    def write_late() -> None:
        time.sleep(0.3)  # nothing to read yet when the file is opened
        os.write(writer, b'log_level = "DEBUG"\n')
        os.close(writer)

    thread = threading.Thread(target=write_late)
    thread.start()
    try:
        env = {"ETL_SETTINGS_FILE": f"/dev/fd/{reader}"}
        settings, sources = load_runtime_settings(
            RuntimeSettings, {"config_dir": str(tmp_path)}, env=env
        )
    finally:
        thread.join()
        os.close(reader)

    assert settings.log_level == "DEBUG"
    assert sources["log_level"].startswith(f"/dev/fd/{reader}:1")


@pytest.mark.timeout(20)
def test_a_named_fifo_without_writer_is_refused_not_read_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "settings.fifo"
    os.mkfifo(path)

    with pytest.raises(ConfigError, match=rf"cannot read config file {path}: .*FIFO"):
        load_runtime_settings(
            RuntimeSettings, {"config_dir": str(tmp_path)}, env={"ETL_SETTINGS_FILE": str(path)}
        )


@pytest.mark.timeout(20)
def test_a_piped_settings_file_read_again_gives_the_same_settings(tmp_path: Path) -> None:
    """A command's own flags load the settings again (``run --database-url …``): a pipe
    gives its text once, so the second reading is of what the first read, never of an
    empty pipe (the settings silently dropped, or the run refused)."""
    reader, writer = os.pipe()
    os.write(writer, b'log_level = "DEBUG"\n')
    os.close(writer)
    env = {"ETL_SETTINGS_FILE": f"/dev/fd/{reader}"}
    try:
        first, _ = load_runtime_settings(RuntimeSettings, {"config_dir": str(tmp_path)}, env=env)
        again, _ = load_runtime_settings(RuntimeSettings, {"config_dir": str(tmp_path)}, env=env)
    finally:
        os.close(reader)

    assert (first.log_level, again.log_level) == ("DEBUG", "DEBUG")


@pytest.mark.timeout(20)
def test_a_settings_file_named_as_a_terminal_nothing_was_typed_to_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    """``ETL_SETTINGS_FILE=/dev/stdin`` run at a terminal, the pipe forgotten: the terminal
    is a character device, opened without waiting; nothing typed yet, it is refused naming
    the file, never a ``TypeError`` from reading nothing (nor a wait for typing)."""
    controller, terminal = os.openpty()
    try:
        env = {"ETL_SETTINGS_FILE": os.ttyname(terminal)}
        with pytest.raises(ConfigError) as caught:
            load_runtime_settings(RuntimeSettings, {"config_dir": str(tmp_path)}, env=env)
    finally:
        os.close(terminal)
        os.close(controller)

    said = str(caught.value)
    assert f"cannot read config file {env['ETL_SETTINGS_FILE']}: " in said, said
    assert "it is a terminal nothing was written to" in said, said
