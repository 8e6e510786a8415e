"""Runtime start-up: settings precedence across flag, environment, settings file and default."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from etl_core import runtime
from etl_core.config import redacted_dict
from etl_core.errors import (
    ConfigError,
    DatabaseNotReadyError,
    InvalidSettingError,
    StorageConfigError,
)
from etl_core.logging import clear_context, get_context
from etl_core.runtime import (
    ExitCode,
    RuntimeSettings,
    Session,
    load_runtime_settings,
    new_run_id,
    process_alive,
    run_entry_point,
    start_run,
)
from etl_core.settings_help import settings_table
from etl_core.storage import InvalidStoreURLError
from etl_core.testing import capture_logs


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


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ETL_SCHEDULE_TICK": "0"}, "schedule_tick: must be longer than 0s"),
        ({"ETL_SCHEDULE_LEASE_SECONDS": "1s"}, "schedule_lease_seconds: must be longer than"),
        ({"ETL_SCHEDULE_TICK": "2m"}, "schedule_lease_seconds: must be longer than"),
    ],
)
def test_scheduler_settings_no_scheduler_can_keep_are_refused_naming_them(
    env: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError, match=said):
        load_runtime_settings(LaneSettings, {}, env=env)


def test_a_lease_of_its_own_wrong_is_refused_beside_a_refused_tick() -> None:
    env = {"ETL_SCHEDULE_TICK": "0", "ETL_SCHEDULE_LEASE_SECONDS": "0"}
    with pytest.raises(ConfigError) as refused:
        load_runtime_settings(LaneSettings, {}, env=env)

    assert set(refused.value.fields) == {"schedule_tick", "schedule_lease_seconds"}
    assert "schedule_lease_seconds: must be longer than 0s, got 0s" in str(refused.value)


def test_a_good_lease_is_not_refused_beside_a_refused_tick() -> None:
    with pytest.raises(ConfigError) as refused:
        load_runtime_settings(LaneSettings, {}, env={"ETL_SCHEDULE_TICK": "0"})

    assert refused.value.fields == ("schedule_tick",)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ETL_S3_CONNECT_TIMEOUT": "0"}, "s3_connect_timeout: must be above 0 seconds, got 0"),
        ({"ETL_S3_READ_TIMEOUT": "-3"}, "s3_read_timeout: must be above 0 seconds, got -3"),
        ({"ETL_PROGRESS_INTERVAL": "-1"}, "progress_interval: must be 0 (none) or more"),
        (
            {"ETL_PUSHGATEWAY_EXIT_TIMEOUT": "-1"},
            "pushgateway_exit_timeout: must be above 0 seconds, got -1",
        ),
        # a socket cannot wait "inf": the push raised OverflowError, the export was lost
        (
            {"ETL_PUSHGATEWAY_EXIT_TIMEOUT": "inf"},
            "pushgateway_exit_timeout: must be a finite number of seconds, got inf",
        ),
        ({"ETL_S3_READ_TIMEOUT": "1e400"}, "s3_read_timeout: must be a finite number"),
    ],
)
def test_timeouts_and_intervals_that_cannot_be_kept_are_refused_naming_them(
    env: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_runtime_settings(LaneSettings, {}, env=env)


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


# ------------------------------------------------------------------- database_url


def test_database_url_has_no_default_and_comes_from_etl_database_url_first(tmp_path: Path) -> None:
    config = tmp_path / "config"
    write_settings(config, 'database_url = "sqlite:///from-file.sqlite3"\n')

    none, _ = load_runtime_settings(LaneSettings, {}, env={})
    toml, toml_sources = load_runtime_settings(
        LaneSettings, {}, env={"ETL_CONFIG_DIR": str(config)}
    )
    both = {"ETL_DATABASE_URL": "sqlite:///etl.sqlite3", "DATABASE_URL": "sqlite:///plain.sqlite3"}
    etl, etl_sources = load_runtime_settings(LaneSettings, {}, env=both)

    assert none.database_url is None
    assert toml.database_url == "sqlite:///from-file.sqlite3"
    assert "etl.toml" in toml_sources["database_url"]
    assert etl.database_url == "sqlite:///etl.sqlite3"
    assert etl_sources["database_url"] == "env ETL_DATABASE_URL"


def test_database_url_variable_beats_the_settings_file_and_the_flag_beats_both(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config"
    write_settings(config, 'database_url = "sqlite:///from-file.sqlite3"\n')
    env = {"ETL_CONFIG_DIR": str(config), "DATABASE_URL": "postgresql://etl@db/etl"}

    from_env, env_sources = load_runtime_settings(LaneSettings, {}, env=env)
    flagged, flag_sources = load_runtime_settings(
        LaneSettings, {"database_url": "sqlite:///flag.sqlite3"}, env=env
    )

    assert from_env.database_url == "postgresql://etl@db/etl"
    assert env_sources["database_url"] == "env DATABASE_URL"
    assert flagged.database_url == "sqlite:///flag.sqlite3"
    assert flag_sources["database_url"].startswith("override")


def test_an_empty_etl_database_url_falls_back_to_database_url() -> None:
    env = {"ETL_DATABASE_URL": "", "DATABASE_URL": "sqlite:///plain.sqlite3"}

    settings, sources = load_runtime_settings(LaneSettings, {}, env=env)

    assert settings.database_url == "sqlite:///plain.sqlite3"
    assert sources["database_url"] == "env DATABASE_URL"


def test_an_empty_database_url_variable_means_none() -> None:
    settings, sources = load_runtime_settings(LaneSettings, {}, env={"DATABASE_URL": ""})

    assert settings.database_url is None
    assert sources["database_url"] == "default"


def test_a_database_url_without_a_scheme_is_refused_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as info:
        load_runtime_settings(LaneSettings, {}, env={"DATABASE_URL": "db.internal/etl"})

    assert info.value.fields == ("database_url",)
    assert "env DATABASE_URL" in str(info.value)


@pytest.mark.parametrize("backend", ["rpc://", "redis://127.0.0.1:6379/1"])
def test_the_documented_result_backends_are_settable(backend: str) -> None:
    settings, _ = load_runtime_settings(LaneSettings, {}, env={"ETL_RESULT_BACKEND": backend})

    assert settings.result_backend == backend


@pytest.mark.parametrize("backend", ["disabled://", "rpc", "cache://"])
def test_a_result_backend_a_followed_run_cannot_use_is_refused_naming_the_setting(
    backend: str,
) -> None:
    with pytest.raises(ConfigError) as info:
        load_runtime_settings(LaneSettings, {}, env={"ETL_RESULT_BACKEND": backend})

    assert info.value.fields == ("result_backend",)
    assert "env ETL_RESULT_BACKEND" in str(info.value)
    if backend == "disabled://":
        assert "keeps no results" in str(info.value)


def test_config_show_rows_redact_the_database_password() -> None:
    settings, sources = load_runtime_settings(
        LaneSettings, {}, env={"DATABASE_URL": "postgresql://etl:hunter2@db:5432/etl"}
    )
    session = Session("lane", settings, sources, "run-1")

    rows = {name: (value, source) for name, value, _, source, _ in settings_table(session)}

    assert rows["database_url"] == ('"postgresql://etl:***@db:5432/etl"', "env DATABASE_URL")
    assert "hunter2" not in repr(settings_table(session))


def test_a_subcommand_flag_layers_on_the_session_keeping_its_run_id() -> None:
    env = {"DATABASE_URL": "sqlite:///env.sqlite3"}
    settings, sources = load_runtime_settings(LaneSettings, {"concurrency": 2}, env=env)
    session = Session("lane", settings, sources, "run-1", {"concurrency": 2}, env=env)

    same = session.with_flags({"database_url": None})
    flagged = session.with_flags({"database_url": "sqlite:///flag.sqlite3"})

    assert same is session
    assert flagged.run_id == "run-1"
    assert flagged.settings.database_url == "sqlite:///flag.sqlite3"
    assert flagged.settings.concurrency == 2
    assert flagged.sources["database_url"].startswith("override")
    assert session.settings.database_url == "sqlite:///env.sqlite3"


@pytest.mark.parametrize(
    ("flags", "env", "toml", "source"),
    [
        ({"database_url": "mysql://etl:pw@db/etl"}, {}, "", "override database_url"),
        ({}, {"ETL_DATABASE_URL": "mysql://etl:pw@db/etl"}, "", "env ETL_DATABASE_URL"),
        ({}, {"DATABASE_URL": "mysql://etl:pw@db/etl"}, "", "env DATABASE_URL"),
        ({}, {}, 'database_url = "mysql://etl:pw@db/etl"\n', "etl.toml:1: key database_url"),
    ],
    ids=["flag", "ETL_DATABASE_URL", "DATABASE_URL", "etl.toml"],
)
def test_an_unsupported_database_scheme_is_refused_naming_where_it_was_set(
    tmp_path: Path, flags: dict[str, str], env: dict[str, str], toml: str, source: str
) -> None:
    if toml:
        write_settings(tmp_path / "config", toml)
        env = {**env, "ETL_CONFIG_DIR": str(tmp_path / "config")}

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(LaneSettings, flags, env=env)

    assert info.value.fields == ("database_url",)
    message = str(info.value)
    assert "scheme 'mysql' is not supported" in message
    assert "postgresql://" in message
    assert source in message
    assert "pw" not in message.replace("postgresql", "")


@pytest.mark.parametrize(
    "url", ["postgresql://etl@db/etl", "postgres://db/etl", "sqlite:///etl.sqlite3"]
)
def test_supported_database_urls_are_accepted(url: str) -> None:
    settings, _ = load_runtime_settings(LaneSettings, {}, env={"DATABASE_URL": url})
    assert settings.database_url == url


@dataclass(frozen=True)
class OtherLaneSettings(RuntimeSettings):
    duckdb_threads: int = 0


SHARED_FILE = """
storage_url = "s3://lake/prod"
log_level = "WARNING"

[file_processing]
concurrency = 8
log_level = "DEBUG"

[data_pipeline]
duckdb_threads = 2
"""


def test_one_settings_file_serves_every_lane_from_its_own_table(tmp_path: Path) -> None:
    env = {"ETL_SETTINGS_FILE": str(write_settings(tmp_path, SHARED_FILE))}

    ours, sources = load_runtime_settings(LaneSettings, {}, env=env, lane="file_processing")
    theirs, _ = load_runtime_settings(OtherLaneSettings, {}, env=env, lane="data_pipeline")

    assert (ours.storage_url, ours.concurrency, ours.log_level) == ("s3://lake/prod", 8, "DEBUG")
    assert sources["concurrency"].endswith("etl.toml:6: key file_processing.concurrency")
    assert (theirs.storage_url, theirs.duckdb_threads) == ("s3://lake/prod", 2)
    assert theirs.log_level == "WARNING"


def test_a_settings_file_that_cannot_be_read_names_etl_settings_file(tmp_path: Path) -> None:
    """It said "cannot read config file …" naming no setting: not which one to correct."""
    missing = tmp_path / "absent.toml"

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(LaneSettings, {}, env={"ETL_SETTINGS_FILE": str(missing)})

    assert info.value.fields == ("ETL_SETTINGS_FILE",)
    message = str(info.value)
    assert f"cannot read config file {missing}: No such file or directory" in message
    assert f"ETL_SETTINGS_FILE: names {missing}" in message
    assert "(from env ETL_SETTINGS_FILE)" in message


def test_a_typo_in_a_lane_table_is_refused_with_a_close_match(tmp_path: Path) -> None:
    path = write_settings(tmp_path, "[file_processing]\nconcurency = 8\n")

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(
            LaneSettings, {}, env={"ETL_SETTINGS_FILE": str(path)}, lane="file_processing"
        )

    message = str(info.value)
    assert "did you mean 'concurrency'?" in message
    assert "etl.toml:2: key file_processing.concurency" in message


def test_a_misspelt_lane_table_is_refused_naming_the_lane_tables(tmp_path: Path) -> None:
    path = write_settings(tmp_path, "[file_procesing]\nconcurrency = 8\n")

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(
            LaneSettings, {}, env={"ETL_SETTINGS_FILE": str(path)}, lane="data_pipeline"
        )

    assert info.value.fields == ("file_procesing",)
    assert "[file_processing], [data_pipeline], [observability]" in str(info.value)


def test_a_misspelt_lane_table_is_told_as_the_table_it_resembles(tmp_path: Path) -> None:
    """`[data_pipline]` was answered with the forty-odd keys this lane knows, the tables
    at the very end: the close match is the table, not a key."""
    path = write_settings(tmp_path, "[data_pipline]\nduckdb_threads = 4\n")

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(
            LaneSettings, {}, env={"ETL_SETTINGS_FILE": str(path)}, lane="data_pipeline"
        )

    message = str(info.value)
    assert info.value.fields == ("data_pipline",)
    assert "did you mean [data_pipeline]?" in message
    assert "known keys" not in message


def test_another_lanes_key_at_the_top_level_names_that_lane_s_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was "did you mean" a key of this lane it resembled, with every table listed."""
    monkeypatch.setattr(runtime, "lane_settings", lambda: {"duckdb_threads": ("data_pipeline",)})
    path = write_settings(tmp_path, "duckdb_threads = 2\n")

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(
            LaneSettings, {}, env={"ETL_SETTINGS_FILE": str(path)}, lane="file_processing"
        )

    assert info.value.fields == ("duckdb_threads",)
    message = str(info.value)
    assert "duckdb_threads: is a setting of data_pipeline, not of this lane" in message
    assert "it goes in [data_pipeline]" in message
    assert "did you mean" not in message


def test_another_lanes_key_in_this_lane_s_table_names_that_lane_s_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[file_processing] duckdb_threads`` was "did you mean 'quality_threads'?", while
    data_pipeline, which never reads that table, went without it."""
    monkeypatch.setattr(runtime, "lane_settings", lambda: {"duckdb_threads": ("data_pipeline",)})
    path = write_settings(tmp_path, "[file_processing]\nduckdb_threads = 2\n")

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(
            LaneSettings, {}, env={"ETL_SETTINGS_FILE": str(path)}, lane="file_processing"
        )

    assert info.value.fields == ("duckdb_threads",)
    message = str(info.value)
    assert "duckdb_threads: is a setting of data_pipeline, not of this lane" in message
    assert "it goes in [data_pipeline]" in message
    assert "etl.toml:2: key file_processing.duckdb_threads" in message
    assert "did you mean" not in message


def test_a_key_of_two_other_lanes_at_the_top_level_names_each_of_their_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "goes in [data_pipeline] or [observability]": in one of them only, the
    other lane would lose it."""
    owners = ("data_pipeline", "observability")
    monkeypatch.setattr(runtime, "lane_settings", lambda: {"storage_recent_days": owners})
    path = write_settings(tmp_path, "storage_recent_days = 2\n")

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(
            LaneSettings, {}, env={"ETL_SETTINGS_FILE": str(path)}, lane="file_processing"
        )

    message = str(info.value)
    assert "is a setting of data_pipeline and observability, not of this lane" in message
    assert "the table of each lane it is for: [data_pipeline], [observability]" in message
    assert " or " not in message


def test_a_top_level_key_of_no_lane_lists_the_lane_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "lane_settings", lambda: {"duckdb_threads": ("data_pipeline",)})
    path = write_settings(tmp_path, "threads_anywhere = 2\n")

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(
            LaneSettings, {}, env={"ETL_SETTINGS_FILE": str(path)}, lane="file_processing"
        )

    assert info.value.fields == ("threads_anywhere",)
    assert "goes in its table: [file_processing]" in str(info.value)


def test_a_lane_table_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    path = write_settings(tmp_path, 'file_processing = "fast"\n')

    with pytest.raises(ConfigError) as info:
        load_runtime_settings(
            LaneSettings, {}, env={"ETL_SETTINGS_FILE": str(path)}, lane="file_processing"
        )

    assert info.value.fields == ("file_processing",)


def test_config_show_explains_every_setting_from_its_field_docs() -> None:
    settings, sources = load_runtime_settings(LaneSettings, {}, env={})
    session = Session("lane", settings, sources, "run-1")

    meanings = {row[0]: row[4] for row in settings_table(session)}

    assert meanings["create_store"].startswith("Create storage_url's directory when it is missing")
    assert meanings["concurrency"] == ""  # LaneSettings documents nothing of its own
    assert all(meanings[name] for name in meanings if name != "concurrency")


def test_a_killed_process_awaiting_its_parent_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(child.pid)
        child.kill()
        for _ in range(200):  # bounded: the kernel marks it a zombie within milliseconds
            if not process_alive(child.pid):
                break
            time.sleep(0.01)
        assert not process_alive(child.pid), "an unreaped zombie still counts as alive"
    finally:
        child.kill()
        child.wait(timeout=10)
    assert not process_alive(child.pid)


def test_settings_built_by_hand_name_every_refused_value_in_their_error() -> None:
    with pytest.raises(InvalidSettingError) as refused:
        RuntimeSettings(s3_connect_timeout=0, progress_interval=-1)

    assert isinstance(refused.value, ValueError)  # what a dataclass's own checks raise
    assert str(refused.value) == (
        "s3_connect_timeout must be above 0 seconds, got 0; "
        "progress_interval must be 0 (none) or more seconds, got -1"
    )


def refusal_of_a_fresh_database(overrides: dict[str, object], env: dict[str, str]) -> str:
    """What the entry point logs when the database the settings name lacks the schema."""
    load_runtime_settings(LaneSettings, overrides, env=env)

    def app() -> None:
        raise DatabaseNotReadyError("database", "holds none of the platform's schema")

    with capture_logs() as logs, pytest.raises(SystemExit) as exited:
        run_entry_point(app, name="etl-test")
    assert exited.value.code == ExitCode.USAGE
    (record,) = [r for r in logs if r["level"] == "error"]
    return str(record["event"])


def test_a_database_refusal_names_the_flag_that_gave_the_url() -> None:
    """It said ``DATABASE_URL: …`` for a URL passed as ``--database-url``."""
    said = refusal_of_a_fresh_database({"database_url": "sqlite:///fresh.sqlite3"}, {})
    assert "  - --database-url: holds none of the platform's schema" in said
    assert "DATABASE_URL" not in said


def test_a_database_refusal_names_the_variable_that_gave_the_url() -> None:
    said = refusal_of_a_fresh_database({}, {"ETL_DATABASE_URL": "sqlite:///fresh.sqlite3"})
    assert "  - ETL_DATABASE_URL: holds none" in said
    assert "(from env ETL_DATABASE_URL)" in said


def test_a_storage_url_of_an_unsupported_scheme_names_the_setting_its_source_and_schemes() -> None:
    settings, sources = load_runtime_settings(
        LaneSettings, {}, env={"ETL_STORAGE_URL": "gs://bucket/landing"}
    )
    session = Session("lane", settings, sources, "run-1")

    with pytest.raises(InvalidStoreURLError) as caught:
        session.open_store()

    text = str(caught.value)
    assert text.startswith("storage_url (from env ETL_STORAGE_URL): ")
    assert "'gs'" in text
    assert "s3, file" in text
    assert caught.value.url == "gs://bucket/landing"


def test_a_storage_url_with_a_password_is_refused_and_shown_without_it() -> None:
    url = "s3://AKIAEXAMPLE:hunter2secret@bucket/landing"
    settings, sources = load_runtime_settings(LaneSettings, {}, env={"ETL_STORAGE_URL": url})
    session = Session("lane", settings, sources, "run-1")

    with pytest.raises(InvalidStoreURLError) as caught:
        session.open_store()

    assert "hunter2secret" not in str(caught.value)
    assert "carries no credentials" in str(caught.value)
    assert redacted_dict(settings)["storage_url"] == "s3://AKIAEXAMPLE:***@bucket/landing"


def test_a_missing_local_store_names_the_directory_to_create_as_a_shell_takes_it(
    tmp_path: Path,
) -> None:
    """The refusal says to create the directory: it names it as pasted into ``mkdir -p``,
    not as a file URL (a space as ``%20``)."""
    import shlex

    missing = tmp_path / "my lake"
    settings, sources = load_runtime_settings(
        LaneSettings, {}, env={"ETL_STORAGE_URL": str(missing), "ETL_CREATE_STORE": "false"}
    )
    session = Session("lane", settings, sources, "run-1")

    with pytest.raises(StorageConfigError) as caught:
        session.open_store()

    said = str(caught.value)
    assert said.startswith(f"the store {shlex.quote(str(missing))} does not exist"), said
    assert "%20" not in said
