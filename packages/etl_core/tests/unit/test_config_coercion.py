"""Behaviour of etl_core.config: turning source text and TOML values into typed fields."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

import pytest

from etl_core.config import URL, load_settings, load_settings_with_sources
from etl_core.errors import ConfigError
from etl_core.secrets import Secret
from etl_core.units import ByteSize


class Format(enum.Enum):
    JSON = "json"
    HUMAN = "human"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


# Module constants rather than calls in the defaults: ruff RUF009 flags calls it does not know.
DEFAULT_URL = URL("file:///tmp/etl")
DEFAULT_CHUNK = ByteSize("8MiB")


@dataclass(frozen=True)
class Typed:
    text: str = "x"
    count: int = 0
    ratio: float = 0.0
    enabled: bool = False
    directory: Path = Path("/tmp")
    url: URL = DEFAULT_URL
    timeout: timedelta = timedelta(seconds=30)
    chunk: ByteSize = DEFAULT_CHUNK
    password: Secret | None = None
    mode: Literal["fast", "safe"] = "safe"
    retries: Literal[1, 3, 5] = 3
    format: Format = Format.JSON
    level: Level = Level.LOW
    tags: list[str] = field(default_factory=list)
    ports: tuple[int, ...] = ()
    limits: list[ByteSize] = field(default_factory=list)
    label: str | None = "default-label"
    max_age: timedelta | None = None


def load_env(**env: str) -> Typed:
    return load_settings(Typed, env={f"ETL_{k.upper()}": v for k, v in env.items()})


def load_override(**values: object) -> Typed:
    return load_settings(Typed, env={}, overrides=values)


def error_of(**env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_env(**env)
    (error,) = caught.value.errors
    return str(error)


def test_defaults_are_kept_when_nothing_is_set() -> None:
    assert load_settings(Typed, env={}) == Typed()


def test_text_and_numbers_from_the_environment() -> None:
    settings = load_env(text="hello world", count=" 42 ", ratio="0.75")
    assert (settings.text, settings.count, settings.ratio) == ("hello world", 42, 0.75)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("off", False),
    ],
)
def test_boolean_words(text: str, expected: bool) -> None:
    assert load_env(enabled=text).enabled is expected


def test_path_expands_the_home_directory() -> None:
    assert load_env(directory="~/data").directory == Path("~/data").expanduser()


def test_url_keeps_the_text_and_knows_its_scheme() -> None:
    url = load_env(url="s3://bucket/prefix").url
    assert url == "s3://bucket/prefix"
    assert isinstance(url, URL)
    assert url.scheme == "s3"


def test_url_repr_masks_its_password() -> None:
    url = URL("postgresql://etl:hunter2@db.internal:5432/etl")
    assert "hunter2" not in repr(url)
    assert url.redacted() == "postgresql://etl:***@db.internal:5432/etl"
    assert str(url) == "postgresql://etl:hunter2@db.internal:5432/etl"


def test_a_multi_host_database_url_shows_every_host_never_its_password() -> None:
    """libpq's host list (Patroni, RDS failover), and one mistyped where urllib cannot read
    it (an unclosed IPv6 bracket): its repr raised ValueError, in a settings dump."""
    url = URL("postgresql://etl:hunter2@db1:5432,db2:5432/etl?target_session_attrs=read-write")
    mistyped = URL("postgresql://etl:hunter2@db1:5432,[::1/etl")

    assert url.redacted() == (
        "postgresql://etl:***@db1:5432,db2:5432/etl?target_session_attrs=read-write"
    )
    assert repr(mistyped) == "URL('postgresql://etl:***@db1:5432,[::1/etl')"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("26h", timedelta(hours=26)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("45", timedelta(seconds=45)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert load_env(timeout=text).timeout == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("64MiB", 64 * 1024**2), ("1.5GB", 1_500_000_000), ("512", 512), ("2KiB", 2048)],
)
def test_byte_sizes(text: str, expected: int) -> None:
    chunk = load_env(chunk=text).chunk
    assert chunk == expected
    assert isinstance(chunk, ByteSize)


def test_secret_reference_is_kept_unresolved() -> None:
    settings = load_settings(Typed, env={"ETL_PASSWORD": "env:DB_PASSWORD"})
    assert settings.password == Secret("env:DB_PASSWORD")


def test_secret_env_reference_resolves_against_the_loaded_environment() -> None:
    settings = load_settings(Typed, env={"ETL_PASSWORD": "env:DB_PASSWORD", "DB_PASSWORD": "pw"})
    assert settings.password is not None
    assert settings.password.reveal() == "pw"


def test_literal_choices_match_exactly_or_ignoring_case() -> None:
    assert load_env(mode="fast").mode == "fast"
    assert load_env(mode="SAFE").mode == "safe"
    assert load_env(retries="5").retries == 5
    assert load_override(retries=1).retries == 1


def test_enums_match_by_value_or_name() -> None:
    assert load_env(format="human").format is Format.HUMAN
    assert load_env(format="HUMAN").format is Format.HUMAN
    assert load_env(level="2").level is Level.HIGH
    assert load_env(level="high").level is Level.HIGH
    assert load_override(format=Format.HUMAN).format is Format.HUMAN


def test_lists_from_comma_separated_text() -> None:
    settings = load_env(tags="a, b ,c,", ports="80,443", limits="1KiB, 2MB")
    assert settings.tags == ["a", "b", "c"]
    assert settings.ports == (80, 443)
    assert settings.limits == [1024, 2_000_000]
    assert load_env(tags="").tags == []


def test_lists_from_toml_arrays(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    path.write_text('tags = ["x", "y"]\nports = [8080]\nlimits = ["1KiB", 10]\n')
    settings = load_settings(Typed, toml_path=path, env={})
    assert settings.tags == ["x", "y"]
    assert settings.ports == (8080,)
    assert settings.limits == [1024, 10]


def test_typed_toml_values_are_taken_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    path.write_text(
        "count = 7\nratio = 2\nenabled = true\ntimeout = 1.5\nchunk = 4096\nretries = 5\n"
    )
    settings = load_settings(Typed, toml_path=path, env={})
    assert (settings.count, settings.ratio, settings.enabled) == (7, 2.0, True)
    assert (settings.timeout, settings.chunk, settings.retries) == (
        timedelta(seconds=1.5),
        4096,
        5,
    )


def test_empty_text_in_the_file_or_an_override_sets_an_optional_field_to_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "etl.toml"
    path.write_text('label = ""\nmax_age = " "\n')
    from_file = load_settings(Typed, toml_path=path, env={})
    assert (from_file.label, from_file.max_age) == (None, None)
    assert load_override(label="").label is None
    assert load_env(max_age="2d").max_age == timedelta(days=2)


@pytest.mark.parametrize("blank", ["", " ", "\t \n"])
def test_an_empty_or_blank_variable_counts_as_unset_whatever_the_field_type(blank: str) -> None:
    every_field = dict.fromkeys(("text", "count", "ratio", "enabled", "directory"), blank)
    every_field |= dict.fromkeys(("url", "timeout", "chunk", "password", "mode"), blank)
    every_field |= dict.fromkeys(("retries", "format", "level", "tags", "ports"), blank)
    every_field |= {"limits": blank, "label": blank, "max_age": blank}

    settings, sources = load_settings_with_sources(
        Typed, env={f"ETL_{k.upper()}": v for k, v in every_field.items()}
    )

    assert settings == Typed()  # label keeps "default-label": unset is not None
    assert set(sources.values()) == {"default"}


def test_overrides_accept_python_values() -> None:
    settings = load_override(
        directory=Path("/data"), timeout=timedelta(minutes=1), chunk=1024, enabled=True
    )
    assert settings.directory == Path("/data")
    assert settings.timeout == timedelta(minutes=1)
    assert (settings.chunk, settings.enabled) == (1024, True)


# --------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"count": "4x"}, "count: expected an integer, got '4x' (from env ETL_COUNT)"),
        ({"count": "1.5"}, "count: expected an integer, got '1.5'"),
        ({"ratio": "fast"}, "ratio: expected a number, got 'fast'"),
        ({"enabled": "maybe"}, "enabled: expected a boolean (true/false, 1/0, yes/no, on/off)"),
        ({"timeout": "soon"}, "timeout: invalid duration 'soon'"),
        ({"timeout": "-5"}, "timeout: invalid duration '-5'"),
        ({"chunk": "64M"}, "chunk: invalid byte size '64M': unknown unit 'M'"),
        ({"chunk": "lots"}, "chunk: invalid byte size 'lots'"),
        ({"url": "bucket/prefix"}, "url: expected an absolute URL"),
        ({"mode": "quick"}, "mode: expected one of 'fast', 'safe', got 'quick'"),
        ({"retries": "2"}, "retries: expected one of '1', '3', '5', got '2'"),
        ({"format": "xml"}, "format: expected one of 'json', 'human', got 'xml'"),
        ({"ports": "80,http"}, "ports: item 1: expected an integer, got 'http'"),
    ],
)
def test_bad_value_is_refused_naming_field_expectation_and_source(
    env: dict[str, str], expected: str
) -> None:
    assert expected in error_of(**env)


def test_an_empty_path_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "etl.toml"
    path.write_text('directory = ""\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(Typed, toml_path=path, env={})
    assert "directory: expected a file system path, got ''" in str(caught.value.errors[0])


def test_bad_url_error_does_not_repeat_a_password() -> None:
    assert "hunter2" not in error_of(url="postgres//etl:hunter2@db")


def test_inline_secret_is_refused_without_repeating_it() -> None:
    message = error_of(password="hunter2")
    assert message.startswith("password: a secret must be a reference, 'env:NAME'")
    assert "(from env ETL_PASSWORD)" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("text = 5", "text: expected text, got 5"),
        ("count = 1.5", "count: expected an integer, got 1.5"),
        ("count = true", "count: expected an integer, got true"),
        ('ratio = "x"', "ratio: expected a number, got 'x'"),
        ("enabled = 1", "enabled: expected a boolean"),
        ("timeout = [1]", "timeout: expected a duration such as '90s' or '1h30m', got an array"),
        ("chunk = true", "chunk: expected a byte size such as '64MiB', got true"),
        ("chunk = 1.5", "chunk: invalid byte size 1.5: not a whole number of bytes"),
        ("url = 3", "url: expected an absolute URL (scheme://host...), got 3"),
        ("tags = {a = 1}", "tags: expected a list (an array or comma-separated text), got a table"),
        ("password = 5", "password: expected a secret reference 'env:NAME' or 'file:/path'"),
        ("retries = true", "retries: expected one of '1', '3', '5', got true"),
        ("timeout = 12:00:00", "timeout: expected a duration such as '90s' or '1h30m', got a time"),
    ],
)
def test_wrongly_typed_toml_value_is_refused(tmp_path: Path, toml: str, expected: str) -> None:
    path = tmp_path / "etl.toml"
    path.write_text(toml + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(Typed, toml_path=path, env={})
    (error,) = caught.value.errors
    assert str(error).startswith(expected)
    assert error.source == f"{path}:1: key {error.field}"


def test_unsupported_field_type_is_a_programming_error() -> None:
    @dataclass
    class Bad:
        mapping: dict[int, str] = field(default_factory=dict)

    with pytest.raises(TypeError, match="setting mapping: unsupported type"):
        load_settings(Bad, env={})


def test_settings_must_be_a_dataclass() -> None:
    with pytest.raises(TypeError, match="settings must be a dataclass"):
        load_settings(int, env={})


def test_unresolvable_field_type_is_a_programming_error() -> None:
    @dataclass
    class Local:
        value: int = 1

    @dataclass
    class Outer:
        local: Local = field(default_factory=Local)

    with pytest.raises(TypeError, match=r"cannot resolve the field types of .*Outer"):
        load_settings(Outer, env={})


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ETL_S3_ENDPOINT_URL", "minio:9000"), ("ETL_BROKER_URL", "localhost:6379")],
)
def test_a_url_without_its_scheme_is_refused_without_a_store_url_example(
    variable: str, value: str
) -> None:
    """An endpoint or broker missing its scheme was told "such as 's3://bucket/prefix'",
    a store URL, which neither setting takes."""
    from etl_core.runtime import RuntimeSettings, load_runtime_settings

    with pytest.raises(ConfigError) as caught:
        load_runtime_settings(RuntimeSettings, env={variable: value})

    message = str(caught.value)
    assert "expected an absolute URL (scheme://host...)" in message
    assert "s3://bucket/prefix" not in message
    assert f"env {variable}" in message
