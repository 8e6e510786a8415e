"""Observability's own settings: values no service can keep are refused at start-up."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from etl_core.errors import ConfigError
from etl_core.runtime import load_runtime_settings
from observability.settings import ObservabilitySettings


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ETL_EVALUATION_INTERVAL": "0"}, "evaluation_interval: must be longer than 0s, got 0s"),
        ({"ETL_DATABASE_WINDOW": "0s"}, "database_window: must be longer than 0s, got 0s"),
        (
            {"ETL_ALERT_DELIVERY_DEADLINE": "0s"},
            "alert_delivery_deadline: must be longer than 0s, got 0s "
            "(from env ETL_ALERT_DELIVERY_DEADLINE)",
        ),
        ({"ETL_SERVE_PORT": "99999"}, "serve_port: must be from 0 to 65535, got 99999"),
        ({"ETL_SERVE_PORT": "-1"}, "serve_port: must be from 0 to 65535, got -1"),
    ],
)
def test_a_service_setting_no_service_can_keep_is_refused_naming_it(
    env: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_runtime_settings(ObservabilitySettings, {}, env=env)


def test_the_defaults_are_kept() -> None:
    settings, _ = load_runtime_settings(ObservabilitySettings, {}, env={})
    assert settings.evaluation_interval.total_seconds() == 60
    assert settings.serve_port == 9108


def test_a_setting_refused_by_its_own_check_names_the_file_and_key_it_came_from(
    tmp_path: Path,
) -> None:
    (tmp_path / "etl.toml").write_text('[observability]\nalert_delivery_deadline = "0s"\n')

    with pytest.raises(ConfigError) as refused:
        load_runtime_settings(
            ObservabilitySettings, {"config_dir": str(tmp_path)}, env={}, lane="observability"
        )

    assert refused.value.fields == ("alert_delivery_deadline",)
    said = str(refused.value)
    assert "etl.toml:2: key observability.alert_delivery_deadline" in said
    assert "must be longer than 0s, got 0s" in said


def test_every_value_no_service_can_keep_is_refused_at_once_each_with_its_source(
    tmp_path: Path,
) -> None:
    (tmp_path / "etl.toml").write_text(
        '[observability]\nevaluation_interval = "0s"\nalert_delivery_deadline = "0s"\n'
    )

    with pytest.raises(ConfigError) as refused:
        load_runtime_settings(
            ObservabilitySettings,
            {"config_dir": str(tmp_path)},
            env={"ETL_SERVE_PORT": "99999", "ETL_SCHEDULE_TICK": "0s"},
            lane="observability",
        )

    assert set(refused.value.fields) == {
        "schedule_tick",
        "evaluation_interval",
        "alert_delivery_deadline",
        "serve_port",
    }
    said = str(refused.value)
    assert "schedule_tick: must be longer than 0s, got 0s (from env ETL_SCHEDULE_TICK)" in said
    assert "etl.toml:2: key observability.evaluation_interval" in said
    assert "etl.toml:3: key observability.alert_delivery_deadline" in said
    assert "serve_port: must be from 0 to 65535, got 99999 (from env ETL_SERVE_PORT)" in said


@pytest.mark.parametrize("blank", ["", "  ", " 0.0.0.0", "bad host", "host:9108"], ids=repr)
def test_an_empty_or_unusable_serve_host_flag_or_file_value_is_refused(
    tmp_path: Path, blank: str
) -> None:
    """``serve --host ""`` (a ``--host "$HOST"`` with HOST unset) or ``serve_host = ""``
    would bind every interface, the opposite of the empty variable's 127.0.0.1; a space
    or a port in it would bind nothing (exit 1 at start-up, naming no setting)."""
    (tmp_path / "etl.toml").write_text(f'serve_host = "{blank}"\n')
    expected = (
        "serve_host: must be an IP address or host name, without spaces (0.0.0.0 for every "
        f"interface), got {blank!r}"
    )

    with pytest.raises(ConfigError, match=re.escape(expected)) as from_flag:
        load_runtime_settings(ObservabilitySettings, {"serve_host": blank}, env={})
    with pytest.raises(ConfigError, match=re.escape(expected)) as from_file:
        load_runtime_settings(ObservabilitySettings, {"config_dir": str(tmp_path)}, env={})

    assert "override serve_host" in str(from_flag.value)
    assert "etl.toml:1: key serve_host" in str(from_file.value)


@pytest.mark.parametrize("written", ["4", "4s", "59s"])
def test_a_reminder_interval_under_a_minute_is_refused_as_a_likely_unit_typo(
    tmp_path: Path, written: str
) -> None:
    """``alert_reminder_interval = 4`` meant four hours: read as 4 seconds, every open alert
    would be told again at every ``serve`` cycle and ``check`` run, a flood that gets the
    channel muted (and the next real alert with it). Refused naming the file and key."""
    (tmp_path / "etl.toml").write_text(f'[observability]\nalert_reminder_interval = "{written}"\n')

    with pytest.raises(ConfigError) as refused:
        load_runtime_settings(
            ObservabilitySettings, {"config_dir": str(tmp_path)}, env={}, lane="observability"
        )

    said = str(refused.value)
    assert "etl.toml:2: key observability.alert_reminder_interval" in said
    assert "must be 0 (no reminders) or a minute or more" in said


@pytest.mark.parametrize(("written", "seconds"), [("0", 0), ("1m", 60), ("4h", 14400)])
def test_no_reminders_or_one_a_minute_or_rarer_is_kept(written: str, seconds: int) -> None:
    env = {"ETL_ALERT_REMINDER_INTERVAL": written}
    settings, _ = load_runtime_settings(ObservabilitySettings, {}, env=env)
    assert settings.alert_reminder_interval.total_seconds() == seconds
