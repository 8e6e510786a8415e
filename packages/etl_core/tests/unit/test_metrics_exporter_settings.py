"""The settings that choose and configure metric exporters, refused at start-up."""

from __future__ import annotations

import pickle

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


def test_the_exporters_of_exporters_not_chosen_are_not_checked() -> None:
    settings, _ = load_runtime_settings(RuntimeSettings, env={"ETL_STATSD_ADDRESS": "nonsense"})

    assert settings.metric_exporter_kinds() == ()


@pytest.mark.parametrize(
    "output", [" stderr", "stdout ", "STDOUT", "Stderr", "/", "/no-such-etl-directory/emf.log"]
)
def test_an_emf_output_that_would_lose_the_lines_is_refused_at_start_up(output: str) -> None:
    """Each was taken, then a file of that name in the working directory, or a warning at
    the job's end with its metrics lost."""
    message = _refusal({"ETL_METRICS_EXPORTERS": "emf", "ETL_EMF_OUTPUT": output})

    assert "emf_output: must be stderr, stdout or a file in a directory that exists" in message
    assert repr(output) in message
    assert "env ETL_EMF_OUTPUT" in message


@pytest.mark.parametrize("output", ["stderr", "stdout", "/dev/full"])
def test_an_emf_output_of_a_stream_or_a_file_is_taken(output: str) -> None:
    env = {"ETL_METRICS_EXPORTERS": "emf", "ETL_EMF_OUTPUT": output}
    settings, _ = load_runtime_settings(RuntimeSettings, env=env)

    assert settings.emf_output == output


def test_emf_goes_to_stderr_unless_told_otherwise() -> None:
    """Lambda and ECS's awslogs send both streams to CloudWatch Logs; stdout is the
    command's own output (a table, ``--json``'s document)."""
    settings, _ = load_runtime_settings(RuntimeSettings, env={"ETL_METRICS_EXPORTERS": "emf"})

    assert settings.emf_output == "stderr"


def test_an_empty_list_of_exporters_exports_nothing_even_with_a_pushgateway_url() -> None:
    """``metrics_exporters = []`` in etl.toml says none; it pushed to the gateway."""
    from etl_core.config import URL

    settings = RuntimeSettings(metrics_exporters=(), pushgateway_url=URL("http://gw:9091"))

    assert settings.metric_exporter_kinds() == ()


def test_an_empty_variable_counts_as_unset_as_every_empty_variable() -> None:
    env = {"ETL_METRICS_EXPORTERS": "", "ETL_PUSHGATEWAY_URL": "http://gw:9091"}
    settings, _ = load_runtime_settings(RuntimeSettings, env=env)

    assert settings.metric_exporter_kinds() == ("pushgateway",)


def test_a_kind_named_twice_exports_once() -> None:
    env = {"ETL_METRICS_EXPORTERS": " statsd , emf,statsd"}
    settings, _ = load_runtime_settings(RuntimeSettings, env=env)

    assert settings.metric_exporter_kinds() == ("statsd", "emf")


@pytest.mark.parametrize("url", ["ftp://gateway:9091", "http://", "gateway:9091"])
def test_a_pushgateway_url_no_push_can_use_is_refused_at_start_naming_it(url: str) -> None:
    """`ftp://gateway:9091` ran the whole job, then warned "metrics not exported"; a URL
    without a scheme was refused with an `s3://bucket/prefix` example."""
    message = _refusal({"ETL_PUSHGATEWAY_URL": url})

    assert "pushgateway_url" in message
    assert "http://host:port" in message
    assert "env ETL_PUSHGATEWAY_URL" in message
    assert "s3://" not in message


def test_a_pushgateway_url_with_credentials_is_taken_and_never_shown() -> None:
    env = {"ETL_PUSHGATEWAY_URL": "https://etl:hunter2@gateway:9091"}
    settings, _ = load_runtime_settings(RuntimeSettings, env=env)

    assert settings.metric_exporter_kinds() == ("pushgateway",)
    assert "hunter2" not in _refusal({"ETL_PUSHGATEWAY_URL": "ftp://etl:hunter2@gateway:9091"})
