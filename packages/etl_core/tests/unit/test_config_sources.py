"""Behaviour of etl_core.config: sources, precedence, nesting, error reports and redaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from etl_core.config import URL, load_settings, load_settings_with_sources, redacted_dict
from etl_core.errors import ConfigError
from etl_core.secrets import Secret
from etl_core.units import ByteSize

SECRET_VALUE = "pa55-W0rd-never-shown"
DEFAULT_PART_SIZE = ByteSize("64MiB")


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: URL | None = None
    region: str = "us-east-1"
    part_size: ByteSize = DEFAULT_PART_SIZE
    secret_key: Secret | None = None


@dataclass(frozen=True)
class Retry:
    attempts: int = 3
    max_delay: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class DbSettings:
    host: str
    port: int = 5432
    password: Secret | None = None


@dataclass(frozen=True)
class Settings:
    level: str = "info"
    timeout: timedelta = timedelta(seconds=10)
    workers: int = 1
    batch: int = 100
    s3: S3Settings = field(default_factory=S3Settings)
    retry: Retry = field(default_factory=lambda: Retry(attempts=5))


@dataclass(frozen=True)
class AppSettings:
    name: str
    db: DbSettings
    cache_dir: Path | None = None
    mirror: S3Settings | None = None


@dataclass(frozen=True)
class Window:
    start_hour: int = 0
    end_hour: int = 24

    def __post_init__(self) -> None:
        if self.start_hour >= self.end_hour:
            raise ValueError("start_hour must be before end_hour")


@dataclass(frozen=True)
class Scheduled:
    window: Window = field(default_factory=Window)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "etl.toml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------- precedence


def test_each_source_overrides_the_one_below(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'level = "debug"\nworkers = 2\nbatch = 200\ntimeout = "20s"\n',
    )
    env = {"ETL_WORKERS": "3", "ETL_BATCH": "300"}
    settings, sources = load_settings_with_sources(
        Settings, toml_path=path, env=env, overrides={"batch": 400}
    )
    assert settings.timeout == timedelta(seconds=20)  # TOML over default
    assert settings.level == "debug"
    assert settings.workers == 3  # env over TOML
    assert settings.batch == 400  # override over env
    assert sources["level"] == f"{path}:1: key level"
    assert sources["workers"] == "env ETL_WORKERS"
    assert sources["batch"] == "override batch"
    assert sources["s3.region"] == "default"


def test_nested_fields_follow_the_same_precedence(tmp_path: Path) -> None:
    path = write(tmp_path, '[s3]\nregion = "eu-west-1"\npart_size = "8MiB"\n')
    env = {"ETL_S3__PART_SIZE": "16MiB", "ETL_S3__ENDPOINT_URL": "http://127.0.0.1:9000"}
    settings, sources = load_settings_with_sources(
        Settings, toml_path=path, env=env, overrides={"s3.endpoint_url": "http://127.0.0.1:9001"}
    )
    assert settings.s3 == S3Settings(
        endpoint_url=URL("http://127.0.0.1:9001"), region="eu-west-1", part_size=ByteSize("16MiB")
    )
    assert sources["s3.region"] == f"{path}:2: key s3.region"
    assert sources["s3.part_size"] == "env ETL_S3__PART_SIZE"
    assert sources["s3.endpoint_url"] == "override s3.endpoint_url"


def test_environment_defaults_to_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETL_S3__REGION", "ap-south-1")
    assert load_settings(Settings).s3.region == "ap-south-1"


def test_environment_prefix_is_configurable() -> None:
    env = {"MYAPP_WORKERS": "8", "ETL_WORKERS": "2"}
    assert load_settings(Settings, env=env, env_prefix="MYAPP_").workers == 8


def test_an_alias_variable_sits_between_the_file_and_the_prefixed_variable(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "workers = 2\nbatch = 200\n")
    aliases = {"workers": "WORKERS", "batch": "BATCH", "s3.region": "AWS_REGION"}
    env = {"WORKERS": "5", "BATCH": "7", "ETL_BATCH": "9", "AWS_REGION": ""}

    settings, sources = load_settings_with_sources(
        Settings, toml_path=path, env=env, env_aliases=aliases
    )

    assert (settings.workers, settings.batch, settings.s3.region) == (5, 9, "us-east-1")
    assert sources["workers"] == "env WORKERS"
    assert sources["batch"] == "env ETL_BATCH"
    assert sources["s3.region"] == "default"  # an empty alias counts as unset


def test_environment_names_after_the_prefix_ignore_case() -> None:
    assert load_settings(Settings, env={"ETL_s3__Region": "x"}).s3.region == "x"


def test_overrides_accept_nested_dicts_and_dotted_keys() -> None:
    overrides = {"s3": {"region": "a"}, "retry.attempts": 9, "level": None}
    settings = load_settings(Settings, env={}, overrides=overrides)
    assert settings.s3.region == "a"
    assert settings.retry.attempts == 9
    assert settings.level == "info"  # None means "flag not given"


def test_nested_default_instance_supplies_the_defaults() -> None:
    settings = load_settings(Settings, env={"ETL_RETRY__MAX_DELAY": "1m"})
    assert settings.retry == Retry(attempts=5, max_delay=timedelta(minutes=1))


def test_toml_dotted_keys_and_inline_tables(tmp_path: Path) -> None:
    path = write(tmp_path, 's3.region = "r1"\nretry = { attempts = 7 }\n')
    settings, sources = load_settings_with_sources(Settings, toml_path=path, env={})
    assert (settings.s3.region, settings.retry.attempts) == ("r1", 7)
    assert sources["s3.region"] == f"{path}:1: key s3.region"
    assert sources["retry.attempts"] == f"{path}:2: key retry.attempts"


def test_optional_section_is_none_until_something_sets_it() -> None:
    base = {"ETL_NAME": "n", "ETL_DB__HOST": "h"}
    assert load_settings(AppSettings, env=base).mirror is None
    mirror = load_settings(AppSettings, env={**base, "ETL_MIRROR__REGION": "r"}).mirror
    assert mirror == S3Settings(region="r")


# ------------------------------------------------------------ errors, all at once


def test_every_invalid_field_is_reported_at_once_with_its_source(tmp_path: Path) -> None:
    path = write(tmp_path, '# settings\nworkers = "many"\n\n[s3]\npart_size = "64M"\n')
    env = {"ETL_TIMEOUT": "soon", "ETL_RETRY__ATTEMPTS": "x"}
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, toml_path=path, env=env, overrides={"batch": "lots"})
    error = caught.value
    assert error.fields == ("timeout", "workers", "batch", "s3.part_size", "retry.attempts")
    sources = {e.field: e.source for e in error.errors}
    assert sources == {
        "timeout": "env ETL_TIMEOUT",
        "workers": f"{path}:2: key workers",
        "batch": "override batch",
        "s3.part_size": f"{path}:5: key s3.part_size",
        "retry.attempts": "env ETL_RETRY__ATTEMPTS",
    }
    assert str(error).startswith("invalid settings for Settings: 5 errors\n  - timeout: ")


def test_unknown_toml_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, 'levle = "debug"\n[s3]\nregoin = "x"\n[retyr]\nattempts = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, toml_path=path, env={})
    messages = [str(e) for e in caught.value.errors]
    assert messages == [
        f"levle: unknown TOML key; did you mean 'level'? (from {path}:1: key levle)",
        f"s3.regoin: unknown TOML key in [s3]; did you mean 'region'? "
        f"(from {path}:3: key s3.regoin)",
        f"retyr: unknown TOML key; did you mean 'retry'? (from {path}:4: key retyr)",
    ]


def test_toml_value_where_a_section_is_expected_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 's3 = "http://x"\n')
    with pytest.raises(ConfigError, match="s3: is a section of settings, expected a table"):
        load_settings(Settings, toml_path=path, env={})


def test_unknown_override_key_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, env={}, overrides={"s3.regin": "x", "wrokers": 2})
    assert [(e.field, e.source) for e in caught.value.errors] == [
        ("s3.regin", "override s3.regin"),
        ("wrokers", "override wrokers"),
    ]
    assert "did you mean 'region'?" in caught.value.errors[0].message


def test_unknown_environment_variable_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    env = {"ETL_REQUIRE_SERVICES": "1", "ETL_CONFIG_DIR": "/etc/etl", "PATH": "/bin"}
    with caplog.at_level(logging.WARNING, logger="etl_core.config"):
        assert load_settings(Settings, env=env) == Settings()
    assert caplog.records == []


def test_misspelt_environment_variable_is_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"ETL_S3_REGION": "x", "ETL_S3__PART_SIZ": "1MiB"}
    with caplog.at_level(logging.WARNING, logger="etl_core.config"):
        assert load_settings(Settings, env=env) == Settings()
    messages = sorted(r.getMessage() for r in caplog.records)
    assert messages == [
        "ignoring environment variable ETL_S3_REGION: it sets no field of Settings; "
        "did you mean ETL_S3__REGION?",
        "ignoring environment variable ETL_S3__PART_SIZ: it sets no field of Settings; "
        "did you mean ETL_S3__PART_SIZE?",
    ]


def test_variable_nesting_into_a_table_the_settings_lack_is_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {"ETL_STORAGE__PART_SIZE": "16MiB", "ETL_CACHE__DIR": "/x"}
    with caplog.at_level(logging.WARNING, logger="etl_core.config"):
        assert load_settings(Settings, env=env) == Settings()
    assert sorted(r.getMessage() for r in caplog.records) == [
        "ignoring environment variable ETL_CACHE__DIR: it sets no field of Settings; "
        "'__' nests a setting in a table, and it has no table 'cache' (tables: retry, s3)",
        "ignoring environment variable ETL_STORAGE__PART_SIZE: it sets no field of Settings; "
        "'__' nests a setting in a table, and it has no table 'storage' (tables: retry, s3)",
    ]


def test_missing_required_fields_name_every_way_to_set_them() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(AppSettings, env={})
    assert caught.value.fields == ("name", "db.host")
    name, host = caught.value.errors
    assert name.message == (
        "is required: set `name = ...` at the top of the TOML file, "
        "the environment variable ETL_NAME, or the override 'name'"
    )
    assert host.message == (
        "is required: set `host = ...` under [db] of the TOML file, "
        "the environment variable ETL_DB__HOST, or the override 'db.host'"
    )
    assert host.source == "no source"


def test_required_fields_can_come_from_any_source(tmp_path: Path) -> None:
    path = write(tmp_path, '[db]\nhost = "db.internal"\n')
    settings = load_settings(AppSettings, toml_path=path, env={"ETL_NAME": "etl"})
    assert settings.db == DbSettings(host="db.internal")
    assert settings.name == "etl"


def test_dataclass_validation_error_is_reported_as_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(Scheduled, env={"ETL_WINDOW__START_HOUR": "30"})
    (error,) = caught.value.errors
    assert (error.field, error.message, error.source) == (
        "window",
        "start_hour must be before end_hour",
        "validation",
    )


def test_missing_toml_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*absent\.toml"):
        load_settings(Settings, toml_path=tmp_path / "absent.toml", env={})


def test_malformed_toml_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'level = "debug"\nworkers = \n')
    with pytest.raises(ConfigError, match=r"cannot parse config file .*etl.toml: .*line 2"):
        load_settings(Settings, toml_path=path, env={})


def test_non_utf8_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    path.write_bytes(b'level = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(Settings, toml_path=path, env={})


def test_line_numbers_skip_multiline_strings(tmp_path: Path) -> None:
    path = write(tmp_path, 'level = """\nworkers = 1\n"""\nworkers = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(Settings, toml_path=path, env={})
    assert caught.value.errors[0].source == f"{path}:4: key workers"


# ------------------------------------------------------------------ secrets


def test_secrets_in_settings_resolve_on_use_and_never_show(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ETL_TEST_S3_SECRET_KEY", SECRET_VALUE)
    secret_file = tmp_path / "db_password"
    secret_file.write_text(SECRET_VALUE + "\n")
    path = write(tmp_path, f'name = "etl"\n[db]\nhost = "h"\npassword = "file:{secret_file}"\n')
    monkeypatch.setenv("ETL_MIRROR__SECRET_KEY", "env:ETL_TEST_S3_SECRET_KEY")
    settings = load_settings(AppSettings, toml_path=path)

    assert settings.db.password is not None
    assert settings.db.password.reveal() == SECRET_VALUE
    assert settings.mirror is not None
    assert settings.mirror.secret_key is not None
    assert settings.mirror.secret_key.reveal() == SECRET_VALUE
    for shown in (repr(settings), str(settings), str(redacted_dict(settings))):
        assert SECRET_VALUE not in shown
    assert "Secret('env:ETL_TEST_S3_SECRET_KEY')" in repr(settings)


def test_secret_missing_at_use_names_the_variable() -> None:
    settings = load_settings(
        AppSettings, env={"ETL_NAME": "n", "ETL_DB__HOST": "h", "ETL_DB__PASSWORD": "env:PGPASS"}
    )
    assert settings.db.password is not None
    with pytest.raises(
        ConfigError, match=r"secret env:PGPASS is not available: .*PGPASS is not set"
    ):
        settings.db.password.reveal()


def test_inline_secret_in_toml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, f'name = "n"\n[db]\nhost = "h"\npassword = "{SECRET_VALUE}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(AppSettings, toml_path=path, env={})
    (error,) = caught.value.errors
    assert error.field == "db.password"
    assert error.source == f"{path}:4: key db.password"
    assert "'env:NAME'" in error.message
    assert SECRET_VALUE not in str(caught.value)


# ------------------------------------------------------------------ redaction


def test_redacted_dict_is_plain_data_without_secrets() -> None:
    env = {
        "ETL_NAME": "n",
        "ETL_DB__HOST": "h",
        "ETL_DB__PASSWORD": "env:PGPASS",
        "PGPASS": SECRET_VALUE,
        "ETL_CACHE_DIR": "/var/cache/etl",
        "ETL_MIRROR__ENDPOINT_URL": f"http://user:{SECRET_VALUE}@127.0.0.1:9000",
    }
    shown = redacted_dict(load_settings(AppSettings, env=env))
    assert shown == {
        "name": "n",
        "db": {"host": "h", "port": 5432, "password": "env:PGPASS"},
        "cache_dir": "/var/cache/etl",
        "mirror": {
            "endpoint_url": "http://user:***@127.0.0.1:9000",
            "region": "us-east-1",
            "part_size": "64MiB",
            "secret_key": None,
        },
    }


def test_redacted_dict_writes_units_back_as_loadable_text() -> None:
    shown = redacted_dict(Settings(timeout=timedelta(minutes=90)))
    assert shown["timeout"] == "1h30m"
    assert shown["retry"] == {"attempts": 5, "max_delay": "30s"}
    assert load_settings(Settings, env={}, overrides=shown) == Settings(
        timeout=timedelta(minutes=90)
    )


def test_redacted_dict_needs_a_dataclass_instance() -> None:
    with pytest.raises(TypeError, match="expected a dataclass instance"):
        redacted_dict(Settings)


def test_variable_another_program_reads_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One environment serves several programs: a setting of another one is no misspelt
    or misplaced setting of these (it was warned about, with a wrong suggestion)."""
    env = {"ETL_S3__PART_SIZ": "1", "ETL_STORAGE__PART_SIZE": "2", "ETL_S3__REGIO": "r"}
    elsewhere = {"ETL_S3__PART_SIZ", "ETL_STORAGE__PART_SIZE"}
    with caplog.at_level(logging.WARNING, logger="etl_core.config"):
        settings, _ = load_settings_with_sources(Settings, env=env, env_elsewhere=lambda: elsewhere)
    assert settings == Settings()
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring environment variable ETL_S3__REGIO: it sets no field of Settings; "
        "did you mean ETL_S3__REGION?"
    ]


def test_other_programs_variables_are_asked_for_only_when_one_would_be_warned_about() -> None:
    def elsewhere() -> set[str]:
        raise AssertionError("asked for nothing to warn about")

    env = {"ETL_TIMEOUT": "5", "ETL_BENCH_TOOLS_PYTHON": "/x"}  # one setting, one stranger
    load_settings_with_sources(Settings, env=env, env_elsewhere=elsewhere)
