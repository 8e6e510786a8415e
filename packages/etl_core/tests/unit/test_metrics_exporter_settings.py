"""The settings that choose and configure metric exporters, refused at start-up."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from etl_core.errors import ConfigError
from etl_core.runtime import RuntimeSettings, load_runtime_settings


def _refusal(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        load_runtime_settings(RuntimeSettings, env=env)
    again = pickle.loads(pickle.dumps(raised.value))
    assert str(again) == str(raised.value)
    return str(raised.value)


def test_a_mistyped_exporter_is_refused_naming_the_setting_the_value_and_the_kinds() -> None:
    message = _refusal({"ETL_METRICS_EXPORTERS": "emf,statds"})

    assert "metrics_exporters" in message
    assert "'statds'" in message
    assert "'pushgateway', 'emf', 'statsd'" in message
    assert "env ETL_METRICS_EXPORTERS" in message


@pytest.mark.parametrize(
    "address", ["8125", "localhost", "localhost:0", "localhost:65536", "stats d:8125", ":8125"]
)
def test_a_bad_statsd_address_is_refused_naming_the_setting(address: str) -> None:
    message = _refusal({"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_ADDRESS": address})

    assert "statsd_address: must be host:port" in message
    assert repr(address) in message
    assert "env ETL_STATSD_ADDRESS" in message


@pytest.mark.parametrize("address", ["localhost:8125", "10.0.0.5:9125", "[::1]:8125"])
def test_a_statsd_address_of_host_and_port_is_taken(address: str) -> None:
    env = {"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_ADDRESS": address}
    settings, _ = load_runtime_settings(RuntimeSettings, env=env)

    assert settings.metric_exporter_kinds() == ("statsd",)


def test_a_statsd_prefix_statsd_cannot_name_is_refused() -> None:
    message = _refusal({"ETL_METRICS_EXPORTERS": "statsd", "ETL_STATSD_PREFIX": "prod|"})

    assert "statsd_prefix: must be letters, digits" in message


def test_an_emf_namespace_cloudwatch_reserves_is_refused() -> None:
    message = _refusal({"ETL_METRICS_EXPORTERS": "emf", "ETL_EMF_NAMESPACE": "AWS/Lambda"})

    assert "emf_namespace: must be 1-255 characters, not starting with 'AWS/'" in message


def test_the_pushgateway_named_without_its_url_is_refused() -> None:
    message = _refusal({"ETL_METRICS_EXPORTERS": "pushgateway"})

    assert "metrics_exporters: must be a list naming 'pushgateway' only when" in message


def test_unset_the_pushgateway_is_chosen_when_its_url_is_set_as_before() -> None:
    with_url, _ = load_runtime_settings(
        RuntimeSettings, env={"ETL_PUSHGATEWAY_URL": "http://gateway:9091"}
    )
    without, _ = load_runtime_settings(RuntimeSettings, env={})

    assert with_url.metric_exporter_kinds() == ("pushgateway",)
    assert without.metric_exporter_kinds() == ()


def test_an_empty_list_set_in_the_settings_file_exports_nowhere(tmp_path: Path) -> None:
    """``metrics_exporters = []`` beside a ``pushgateway_url`` kept pushing: the empty
    list was taken for the setting left unset."""
    toml = tmp_path / "etl.toml"
    toml.write_text('metrics_exporters = []\npushgateway_url = "http://gateway:9091"\n')

    settings, _ = load_runtime_settings(RuntimeSettings, env={"ETL_SETTINGS_FILE": str(toml)})

    assert settings.metrics_exporters == ()
    assert settings.metric_exporter_kinds() == ()


def test_the_exporters_of_exporters_not_chosen_are_not_checked() -> None:
    settings, _ = load_runtime_settings(RuntimeSettings, env={"ETL_STATSD_ADDRESS": "nonsense"})

    assert settings.metric_exporter_kinds() == ()
