"""Runtime start-up: settings precedence across flag, environment, settings file and default."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl_core.errors import ConfigError
from etl_core.logging import clear_context, get_context
from etl_core.runtime import ExitCode, RuntimeSettings, load_runtime_settings, new_run_id, start_run


@dataclass(frozen=True)
class LaneSettings(RuntimeSettings):
    concurrency: int = 4


def write_settings(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "etl.toml"
    path.write_text(text)
    return path


def test_defaults_work_with_no_configuration_at_all(tmp_path: Path) -> None:
    settings, sources = load_runtime_settings(LaneSettings, {}, env={})
    assert settings.storage_url == ".etl/store"
    assert settings.concurrency == 4
    assert sources["storage_url"] == "default"


def test_flag_beats_environment_beats_settings_file_beats_default(tmp_path: Path) -> None:
    config = tmp_path / "config"
    write_settings(config, 'storage_url = "from-file"\nlog_level = "DEBUG"\nconcurrency = 2\n')
    env = {"ETL_CONFIG_DIR": str(config), "ETL_STORAGE_URL": "from-env", "ETL_CONCURRENCY": "3"}
    settings, sources = load_runtime_settings(LaneSettings, {"concurrency": 9}, env=env)
    assert settings.concurrency == 9
    assert settings.storage_url == "from-env"
    assert settings.log_level == "DEBUG"
    assert sources["concurrency"].startswith("override")
    assert sources["storage_url"] == "env ETL_STORAGE_URL"
    assert "etl.toml" in sources["log_level"]


def test_flags_that_were_not_given_do_not_override(tmp_path: Path) -> None:
    settings, _ = load_runtime_settings(
        LaneSettings, {"storage_url": None}, env={"ETL_STORAGE_URL": "s3://bucket/x"}
    )
    assert settings.storage_url == "s3://bucket/x"


def test_explicit_settings_file_is_read(tmp_path: Path) -> None:
    path = write_settings(tmp_path / "elsewhere", "concurrency = 7\n")
    settings, _ = load_runtime_settings(LaneSettings, {"settings_file": str(path)}, env={})
    assert settings.concurrency == 7


def test_invalid_values_are_all_reported_with_their_source(tmp_path: Path) -> None:
    config = tmp_path / "config"
    write_settings(config, 'log_format = "xml"\n')
    env = {"ETL_CONFIG_DIR": str(config), "ETL_CONCURRENCY": "many"}
    with pytest.raises(ConfigError) as info:
        load_runtime_settings(LaneSettings, {}, env=env)
    assert set(info.value.fields) == {"log_format", "concurrency"}
    assert "ETL_CONCURRENCY" in str(info.value)
    assert "etl.toml" in str(info.value)


def test_start_run_binds_lane_and_run_id() -> None:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        run_id = start_run("file_processing", RuntimeSettings(log_format="json"))
        assert get_context() == {"lane": "file_processing", "run_id": run_id}
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        clear_context()


def test_run_ids_are_unique_and_sortable() -> None:
    ids = [new_run_id() for _ in range(50)]
    assert len(set(ids)) == 50
    assert ids[0][:8].isdigit()


def test_exit_codes_follow_the_design() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3]
