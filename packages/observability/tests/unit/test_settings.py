"""Observability's own settings: values no service can keep are refused at start-up."""

from __future__ import annotations

import re

import pytest

from etl_core.errors import ConfigError
from etl_core.runtime import load_runtime_settings
from observability.settings import ObservabilitySettings


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ETL_EVALUATION_INTERVAL": "0"}, "evaluation_interval must be longer than 0s, got 0s"),
        ({"ETL_DATABASE_WINDOW": "0s"}, "database_window must be longer than 0s, got 0s"),
        ({"ETL_SERVE_PORT": "99999"}, "serve_port must be from 0 to 65535, got 99999"),
        ({"ETL_SERVE_PORT": "-1"}, "serve_port must be from 0 to 65535, got -1"),
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
