"""Prometheus text exposition 0.0.4 and Pushgateway URL construction."""

from __future__ import annotations

import base64
import math

import pytest

from etl_core.metrics import (
    PROMETHEUS_CONTENT_TYPE,
    MetricError,
    Registry,
    push_to_gateway,
    pushgateway_url,
    render_prometheus,
    use_registry,
)


def test_counter_gauge_and_histogram_render_exactly() -> None:
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "Files processed.", labels=("dataset",))
    files.labels(dataset="pos").inc(3)
    registry.gauge("etl_fp_inflight_files", "Files in flight.").set(-1.5)
    step = registry.histogram("etl_fp_step_seconds", "Step time.", buckets=(0.5, 2))
    step.observe(0.25)
    step.observe(1)

    assert render_prometheus(registry) == (
        "# HELP etl_fp_files_total Files processed.\n"
        "# TYPE etl_fp_files_total counter\n"
        'etl_fp_files_total{dataset="pos"} 3\n'
        "# HELP etl_fp_inflight_files Files in flight.\n"
        "# TYPE etl_fp_inflight_files gauge\n"
        "etl_fp_inflight_files -1.5\n"
        "# HELP etl_fp_step_seconds Step time.\n"
        "# TYPE etl_fp_step_seconds histogram\n"
        'etl_fp_step_seconds_bucket{le="0.5"} 1\n'
        'etl_fp_step_seconds_bucket{le="2"} 2\n'
        'etl_fp_step_seconds_bucket{le="+Inf"} 2\n'
        "etl_fp_step_seconds_sum 1.25\n"
        "etl_fp_step_seconds_count 2\n"
    )


def test_label_values_escape_backslash_quote_and_newline() -> None:
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "help", labels=("key",))
    files.labels(key='a\\b"c\nd').inc()
    assert 'etl_fp_files_total{key="a\\\\b\\"c\\nd"} 1\n' in render_prometheus(registry)


def test_help_escapes_backslash_and_newline_but_not_quotes() -> None:
    registry = Registry()
    registry.counter("etl_fp_files_total", 'Files "seen"\nin C:\\drop.')
    assert '# HELP etl_fp_files_total Files "seen"\\nin C:\\\\drop.\n' in render_prometheus(
        registry
    )


def test_histogram_labels_come_before_le() -> None:
    registry = Registry()
    step = registry.histogram("etl_fp_step_seconds", "help", labels=("step",), buckets=(1,))
    step.labels(step="unpack").observe(0.5)
    text = render_prometheus(registry)
    assert 'etl_fp_step_seconds_bucket{step="unpack",le="1"} 1\n' in text
    assert 'etl_fp_step_seconds_sum{step="unpack"} 0.5\n' in text
    assert 'etl_fp_step_seconds_count{step="unpack"} 1\n' in text


def test_special_gauge_values_use_prometheus_spelling() -> None:
    registry = Registry()
    registry.gauge("etl_obs_lag_seconds", "help", labels=("k",)).labels(k="up").set(math.inf)
    registry.gauge("etl_obs_lag_seconds", "help", labels=("k",)).labels(k="down").set(-math.inf)
    text = render_prometheus(registry)
    assert 'etl_obs_lag_seconds{k="up"} +Inf\n' in text
    assert 'etl_obs_lag_seconds{k="down"} -Inf\n' in text


def test_render_defaults_to_the_current_default_registry() -> None:
    isolated = Registry()
    isolated.counter("etl_fp_files_total", "help").inc()
    with use_registry(isolated):
        assert "etl_fp_files_total 1\n" in render_prometheus()


def test_empty_registry_renders_empty_text() -> None:
    assert render_prometheus(Registry()) == ""


def test_content_type_names_format_version() -> None:
    assert PROMETHEUS_CONTENT_TYPE.startswith("text/plain; version=0.0.4")


# --------------------------------------------------------------- pushgateway


def test_pushgateway_url_with_plain_grouping_key() -> None:
    url = pushgateway_url("http://gw:9091/", "etl-file-processing", {"dataset": "pos", "dt": "1"})
    assert url == "http://gw:9091/metrics/job/etl-file-processing/dataset/pos/dt/1"


def test_pushgateway_url_percent_encodes_reserved_characters() -> None:
    url = pushgateway_url("http://gw:9091", "etl", {"source": "a b?c#d%"})
    assert url == "http://gw:9091/metrics/job/etl/source/a%20b%3Fc%23d%25"


def test_pushgateway_url_base64_encodes_values_with_slashes() -> None:
    url = pushgateway_url("http://gw:9091", "etl/nightly", {"prefix": "landing/pos", "x": ""})
    job = base64.urlsafe_b64encode(b"etl/nightly").decode()
    prefix = base64.urlsafe_b64encode(b"landing/pos").decode()
    assert url == f"http://gw:9091/metrics/job@base64/{job}/prefix@base64/{prefix}/x@base64/="


@pytest.mark.parametrize(
    ("url", "job", "grouping_key", "fragment"),
    [
        ("gw:9091", "etl", None, "expected http://host:port"),
        ("ftp://gw", "etl", None, "expected http://host:port"),
        ("http://gw:9091", "", None, "job must be a non-empty string"),
        ("http://gw:9091", "etl", {"bad-name": "x"}, "label 'bad-name' is invalid"),
        ("http://gw:9091", "etl", {"job": "x"}, "label 'job' is invalid"),
        ("http://gw:9091", "etl", {"dt": 1}, "'dt' must be a string, got int"),
    ],
)
def test_bad_pushgateway_arguments_are_refused(
    url: str, job: str, grouping_key: dict[str, str] | None, fragment: str
) -> None:
    with pytest.raises(MetricError, match=fragment):
        pushgateway_url(url, job, grouping_key)


def test_push_with_unknown_method_is_refused_before_any_request() -> None:
    with pytest.raises(MetricError, match="method must be 'PUT' or 'POST'"):
        push_to_gateway("http://127.0.0.1:9", "etl", Registry(), method="PATCH")  # type: ignore[arg-type]


def test_a_refused_pushgateway_url_is_named_without_its_password() -> None:
    with pytest.raises(MetricError, match="expected http://host:port") as refused:
        pushgateway_url("ftp://pusher:hunter2-secret@gateway:9091", "etl")
    assert "hunter2-secret" not in str(refused.value)
    assert "ftp://gateway:9091" in str(refused.value)
    with pytest.raises(MetricError, match="'ftp://gateway:port'"):
        pushgateway_url("ftp://pusher:hunter2-secret@gateway:port", "etl")
