"""An empty or blank ``ETL_*`` variable counts as unset: the settings file, else the default.

Compose files and Helm charts pass ``ETL_X: ${X:-}`` through, so an unset shell variable
arrives as an empty one; it must neither be refused nor blank out the settings file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_core.config import env_value
from etl_core.runtime import RuntimeSettings, find_settings_file, load_runtime_settings

BLANKS = ["", "  ", "\t \n"]

SETTINGS_FILE = """\
log_level = "DEBUG"
s3_connect_timeout = 7.5
metrics_exporters = ["emf"]
pushgateway_url = "http://gw:9091"
database_url = "sqlite:///from-file.sqlite3"
"""

EXAMPLES = (
    "ETL_LOG_LEVEL",  # a choice
    "ETL_S3_CONNECT_TIMEOUT",  # a number
    "ETL_METRICS_EXPORTERS",  # a list
    "ETL_PUSHGATEWAY_URL",  # an optional URL
    "ETL_DATABASE_URL",  # an optional URL that also has a conventional alias
)


@pytest.mark.parametrize("blank", BLANKS, ids=repr)
def test_empty_or_blank_variables_give_the_defaults_and_say_so(blank: str) -> None:
    env = dict.fromkeys(EXAMPLES, blank)

    settings, sources = load_runtime_settings(RuntimeSettings, {}, env=env)

    assert settings == RuntimeSettings()
    assert settings.log_level == "INFO"
    assert settings.s3_connect_timeout == 5.0
    assert (settings.metrics_exporters, settings.pushgateway_url) == (None, None)
    assert settings.database_url is None
    assert {sources[name.removeprefix("ETL_").lower()] for name in EXAMPLES} == {"default"}


@pytest.mark.parametrize("blank", BLANKS, ids=repr)
def test_the_settings_file_wins_over_an_empty_variable(tmp_path: Path, blank: str) -> None:
    path = tmp_path / "etl.toml"
    path.write_text(SETTINGS_FILE)
    env = {"ETL_SETTINGS_FILE": str(path), **dict.fromkeys(EXAMPLES, blank)}

    settings, sources = load_runtime_settings(RuntimeSettings, {}, env=env)

    assert settings.log_level == "DEBUG"
    assert settings.s3_connect_timeout == 7.5
    assert settings.metrics_exporters == ("emf",)
    assert settings.pushgateway_url == "http://gw:9091"  # not turned off by ETL_PUSHGATEWAY_URL=
    assert settings.database_url == "sqlite:///from-file.sqlite3"
    assert sources["log_level"] == f"{path}:1: key log_level"
    assert sources["database_url"] == f"{path}:5: key database_url"


def test_a_set_variable_still_beats_the_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    path.write_text(SETTINGS_FILE)
    env = {"ETL_SETTINGS_FILE": str(path), "ETL_LOG_LEVEL": " error ", "ETL_S3_READ_TIMEOUT": ""}

    settings, sources = load_runtime_settings(RuntimeSettings, {}, env=env)

    assert settings.log_level == "ERROR"
    assert sources["log_level"] == "env ETL_LOG_LEVEL"
    assert (settings.s3_read_timeout, sources["s3_read_timeout"]) == (30.0, "default")


def test_an_empty_variable_gives_way_to_the_conventional_alias_then_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "etl.toml"
    path.write_text(SETTINGS_FILE)
    env = {"ETL_SETTINGS_FILE": str(path), "ETL_DATABASE_URL": " ", "DATABASE_URL": ""}
    aliased = {**env, "DATABASE_URL": "sqlite:///plain.sqlite3"}

    from_file, file_sources = load_runtime_settings(RuntimeSettings, {}, env=env)
    from_alias, alias_sources = load_runtime_settings(RuntimeSettings, {}, env=aliased)

    assert from_file.database_url == "sqlite:///from-file.sqlite3"
    assert file_sources["database_url"] == f"{path}:5: key database_url"
    assert from_alias.database_url == "sqlite:///plain.sqlite3"
    assert alias_sources["database_url"] == "env DATABASE_URL"


@pytest.mark.parametrize("blank", BLANKS, ids=repr)
def test_a_blank_settings_file_or_config_dir_variable_finds_the_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "etl.toml").write_text('log_level = "WARNING"\n')
    env = {"ETL_SETTINGS_FILE": blank, "ETL_CONFIG_DIR": blank}

    settings, sources = load_runtime_settings(RuntimeSettings, {}, env=env)

    assert find_settings_file({}, env) == Path("config/etl.toml")
    assert (settings.config_dir, sources["config_dir"]) == (Path("config"), "default")
    assert (settings.log_level, sources["log_level"]) == (
        "WARNING",
        "config/etl.toml:1: key log_level",
    )


def test_env_value_is_none_for_a_missing_empty_or_blank_variable() -> None:
    env = {"EMPTY": "", "BLANK": " \t", "SET": " x "}

    assert [env_value(env, name) for name in ("MISSING", "EMPTY", "BLANK")] == [None] * 3
    assert env_value(env, "SET") == " x "  # as given: each field's coercion trims what it may
