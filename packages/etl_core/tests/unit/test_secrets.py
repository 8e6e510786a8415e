"""Behaviour of etl_core.secrets: references resolved on use, never shown."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from etl_core.errors import ConfigError
from etl_core.redaction import redact_text
from etl_core.secrets import (
    MAX_SECRET_FILE_BYTES,
    InvalidSecretReferenceError,
    Secret,
    SecretUnavailableError,
)

VALUE = "s3cr3t-Value-42"


def test_env_reference_reads_the_variable_when_revealed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_TEST_DB_PASSWORD", VALUE)
    secret = Secret("env:ETL_TEST_DB_PASSWORD")
    assert secret.reveal() == VALUE
    assert secret.get() == VALUE
    assert secret.kind == "env"


def test_env_reference_is_resolved_on_each_use(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = Secret("env:ETL_TEST_ROTATED")
    monkeypatch.setenv("ETL_TEST_ROTATED", "first")
    assert secret.reveal() == "first"
    monkeypatch.setenv("ETL_TEST_ROTATED", "second")
    assert secret.reveal() == "second"


def test_env_reference_uses_the_given_environment() -> None:
    assert Secret("env:TOKEN", environ={"TOKEN": VALUE}).reveal() == VALUE


def test_unset_variable_fails_on_use_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETL_TEST_ABSENT", raising=False)
    secret = Secret("env:ETL_TEST_ABSENT")  # building it does not resolve it
    with pytest.raises(SecretUnavailableError, match="ETL_TEST_ABSENT is not set") as caught:
        secret.reveal()
    assert isinstance(caught.value, ConfigError)
    assert caught.value.reference == "env:ETL_TEST_ABSENT"


def test_empty_variable_fails_on_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_TEST_EMPTY", "")
    with pytest.raises(SecretUnavailableError, match="ETL_TEST_EMPTY is set but empty"):
        Secret("env:ETL_TEST_EMPTY").reveal()


@pytest.mark.parametrize("blank", ["    ", " \t\n  "], ids=repr)
def test_blank_variable_or_file_fails_on_use_naming_the_reference(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, blank: str
) -> None:
    """Only whitespace is no credential (a blank settings variable counts as unset): said
    naming the reference, never revealed (remembered, it would mask every run of spaces
    in the log lines)."""
    monkeypatch.setenv("ETL_TEST_BLANK", blank)
    path = tmp_path / "token"
    path.write_text(blank + "\n")

    with pytest.raises(SecretUnavailableError, match="ETL_TEST_BLANK is set but blank") as env:
        Secret("env:ETL_TEST_BLANK").reveal()
    with pytest.raises(SecretUnavailableError, match=f"file {path} is blank") as file:
        Secret(f"file:{path}").reveal()

    assert (env.value.reference, file.value.reference) == ("env:ETL_TEST_BLANK", f"file:{path}")
    assert redact_text("a    b") == "a    b"


def test_file_reference_reads_the_file_without_its_line_break(tmp_path: Path) -> None:
    path = tmp_path / "db_password"
    path.write_text(VALUE + "\n")
    secret = Secret(f"file:{path}")
    assert secret.reveal() == VALUE
    assert secret.kind == "file"


def test_file_url_form_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(VALUE)
    secret = Secret(f"file://{path}")
    assert secret.reference == f"file:{path}"
    assert secret.reveal() == VALUE


def test_file_reference_keeps_inner_lines(tmp_path: Path) -> None:
    path = tmp_path / "key.asc"
    path.write_text("-----BEGIN-----\nabc\n-----END-----\r\n")
    assert Secret(f"file:{path}").reveal() == "-----BEGIN-----\nabc\n-----END-----"


def test_missing_file_fails_on_use_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(SecretUnavailableError, match="cannot be read: No such file") as caught:
        Secret(f"file:{path}").reveal()
    assert str(path) in str(caught.value)


def test_unreadable_file_fails_on_use(tmp_path: Path) -> None:
    # A directory cannot be read as a file, whoever runs the test (root ignores chmod).
    with pytest.raises(SecretUnavailableError, match="cannot be read: it is a directory"):
        Secret(f"file:{tmp_path}").reveal()


def test_empty_file_fails_on_use(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_text("\n")
    with pytest.raises(SecretUnavailableError, match="is empty"):
        Secret(f"file:{path}").reveal()


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge"
    path.write_bytes(b"x" * (MAX_SECRET_FILE_BYTES + 1))
    with pytest.raises(SecretUnavailableError, match="larger than"):
        Secret(f"file:{path}").reveal()


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "binary"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SecretUnavailableError, match="not UTF-8"):
        Secret(f"file:{path}").reveal()


@pytest.mark.parametrize("inline", [VALUE, "hunter2:with-colon", "vault:" + VALUE, ""])
def test_inline_value_is_refused_without_repeating_it(inline: str) -> None:
    with pytest.raises(InvalidSecretReferenceError, match="'env:NAME'") as caught:
        Secret(inline)
    assert "never the value itself" in str(caught.value)
    if inline:
        assert inline not in str(caught.value)
    assert isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("reference", ["env:", "env:1ABC", "env:DB PASSWORD", "env:A-B"])
def test_env_reference_needs_a_variable_name(reference: str) -> None:
    with pytest.raises(InvalidSecretReferenceError, match="environment variable name"):
        Secret(reference)


@pytest.mark.parametrize("reference", ["file:", "file:relative/path", "file://host/path"])
def test_file_reference_needs_an_absolute_path(reference: str) -> None:
    with pytest.raises(InvalidSecretReferenceError, match="absolute path"):
        Secret(reference)


def test_repr_and_str_show_the_reference_never_the_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ETL_TEST_SHOWN", VALUE)
    path = tmp_path / "shown"
    path.write_text(VALUE)
    for secret in (Secret("env:ETL_TEST_SHOWN"), Secret(f"file:{path}")):
        assert secret.reveal() == VALUE
        for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
            assert VALUE not in shown
    assert repr(Secret("env:ETL_TEST_SHOWN")) == "Secret('env:ETL_TEST_SHOWN')"
    assert str(Secret("env:ETL_TEST_SHOWN")) == "<secret env:ETL_TEST_SHOWN>"


def test_pickle_carries_the_reference_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETL_TEST_PICKLED", VALUE)
    secret = Secret("env:ETL_TEST_PICKLED")
    data = pickle.dumps(secret)
    assert VALUE.encode() not in data
    assert pickle.loads(data).reveal() == VALUE


def test_secrets_compare_by_reference() -> None:
    assert Secret("env:A") == Secret("env:A", environ={"A": "x"})
    assert Secret("env:A") != Secret("env:B")
    assert Secret("file:///run/a") == Secret("file:/run/a")
    assert len({Secret("env:A"), Secret("env:A")}) == 1
    assert Secret("env:A") != "env:A"
