"""CloudWatch Embedded Metric Format lines, checked against the published spec.

Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/
CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pytest

from etl_core.metrics import (
    EMF_MAX_METRICS_PER_DIRECTIVE,
    EmfExporter,
    MetricError,
    Registry,
    render_emf,
    use_registry,
)

CLOUDWATCH_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def assert_valid_emf(line: str) -> dict[str, Any]:
    """Check one line against the EMF document structure; return the parsed document."""
    assert "\n" not in line
    doc = json.loads(line)
    assert isinstance(doc, dict)
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int)
    assert not isinstance(meta["Timestamp"], bool)
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list)
    assert directives
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str)
        assert 1 <= len(directive["Namespace"]) <= 255
        assert len(directive["Dimensions"]) >= 1
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(doc[key], str), f"dimension {key} must be a string member"
                assert doc[key].strip(), f"dimension {key}: CloudWatch takes no blank value"
        assert 1 <= len(directive["Metrics"]) <= 100
        for definition in directive["Metrics"]:
            assert set(definition) <= {"Name", "Unit", "StorageResolution"}
            assert 1 <= len(definition["Name"]) <= 255
            assert definition.get("Unit", "None") in CLOUDWATCH_UNITS
            value = doc[definition["Name"]]
            assert isinstance(value, int | float)
            assert not isinstance(value, bool)
            assert math.isfinite(value)
    return doc


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "Files.", labels=("dataset", "outcome"))
    files.labels(dataset="pos", outcome="ok").inc(3)
    files.labels(dataset="inv", outcome="quarantined").inc()
    size = registry.counter("etl_fp_read_bytes_total", "Bytes.", labels=("dataset", "outcome"))
    size.labels(dataset="pos", outcome="ok").inc(2048)
    step = registry.histogram("etl_fp_step_seconds", "Step.", labels=("step",), buckets=(1,))
    step.labels(step="unpack").observe(0.5)
    step.labels(step="unpack").observe(2.0)
    registry.gauge("etl_fp_inflight_files", "In flight.").set(2)
    return registry


def test_one_valid_line_per_label_set(registry: Registry) -> None:
    lines = render_emf(registry.collect(), namespace="etl/dev", timestamp_ms=1_700_000_000_123)
    docs = [assert_valid_emf(line) for line in lines]
    assert len(docs) == 4
    assert {doc["_aws"]["Timestamp"] for doc in docs} == {1_700_000_000_123}
    by_dims = {
        tuple(sorted((k, v) for k, v in doc.items() if isinstance(v, str))): doc for doc in docs
    }
    pos = by_dims[(("dataset", "pos"), ("outcome", "ok"))]
    assert pos["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "etl/dev",
            "Dimensions": [["dataset", "outcome"]],
            "Metrics": [
                {"Name": "etl_fp_files_total", "Unit": "Count"},
                {"Name": "etl_fp_read_bytes_total", "Unit": "Bytes"},
            ],
        }
    ]
    assert pos["etl_fp_files_total"] == 3
    assert pos["etl_fp_read_bytes_total"] == 2048
    unlabelled = by_dims[()]
    assert unlabelled["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]
    assert unlabelled["etl_fp_inflight_files"] == 2


def test_histogram_becomes_sum_in_its_unit_and_count(registry: Registry) -> None:
    lines = render_emf(registry.collect(), namespace="etl", timestamp_ms=0)
    (doc,) = [assert_valid_emf(line) for line in lines if '"step"' in line]
    assert doc["step"] == "unpack"
    assert doc["etl_fp_step_seconds_sum"] == 2.5
    assert doc["etl_fp_step_seconds_count"] == 2
    assert doc["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "etl_fp_step_seconds_sum", "Unit": "Seconds"},
        {"Name": "etl_fp_step_seconds_count", "Unit": "Count"},
    ]


def test_properties_are_added_as_non_dimension_members(registry: Registry) -> None:
    lines = render_emf(
        registry.collect(), namespace="etl", timestamp_ms=0, properties={"run_id": "r-1"}
    )
    for line in lines:
        doc = assert_valid_emf(line)
        assert doc["run_id"] == "r-1"
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            assert all("run_id" not in dims for dims in directive["Dimensions"])


def test_more_than_100_metrics_split_into_several_directives() -> None:
    registry = Registry()
    for i in range(EMF_MAX_METRICS_PER_DIRECTIVE + 5):
        registry.gauge(f"etl_obs_probe{i}_seconds", "Probe.").set(i)
    (line,) = render_emf(registry.collect(), namespace="etl", timestamp_ms=0)
    doc = assert_valid_emf(line)
    sizes = [len(d["Metrics"]) for d in doc["_aws"]["CloudWatchMetrics"]]
    assert sizes == [100, 5]


def test_non_finite_gauges_are_left_out() -> None:
    registry = Registry()
    registry.gauge("etl_obs_lag_seconds", "Lag.").set(math.inf)
    registry.gauge("etl_obs_depth_files", "Depth.").set(1)
    (line,) = render_emf(registry.collect(), namespace="etl", timestamp_ms=0)
    doc = assert_valid_emf(line)
    assert "etl_obs_lag_seconds" not in doc


@pytest.mark.parametrize(
    ("namespace", "fragment"),
    [("", "1-255 characters"), ("x" * 256, "1-255 characters"), ("AWS/Lambda", "reserved")],
)
def test_bad_namespace_is_refused(registry: Registry, namespace: str, fragment: str) -> None:
    with pytest.raises(MetricError, match=fragment):
        render_emf(registry.collect(), namespace=namespace, timestamp_ms=0)


def test_property_colliding_with_a_dimension_is_refused(registry: Registry) -> None:
    with pytest.raises(MetricError, match="dimension 'dataset' collides"):
        render_emf(registry.collect(), namespace="etl", timestamp_ms=0, properties={"dataset": "x"})


def test_reserved_or_non_finite_properties_are_refused(registry: Registry) -> None:
    with pytest.raises(MetricError, match="'_aws' is reserved"):
        render_emf(registry.collect(), namespace="etl", timestamp_ms=0, properties={"_aws": "x"})
    with pytest.raises(MetricError, match="property 'ratio' must be"):
        render_emf(
            registry.collect(), namespace="etl", timestamp_ms=0, properties={"ratio": math.nan}
        )


def test_label_named_aws_is_refused() -> None:
    registry = Registry()
    registry.counter("etl_fp_files_total", "Files.", labels=("_aws",)).labels(_aws="x").inc()
    with pytest.raises(MetricError, match="dimension '_aws' collides"):
        render_emf(registry.collect(), namespace="etl", timestamp_ms=0)


def test_more_than_30_labels_are_refused() -> None:
    registry = Registry()
    names = [f"l{i}" for i in range(31)]
    registry.counter("etl_fp_files_total", "Files.", labels=names).labels(
        **dict.fromkeys(names, "v")
    ).inc()
    with pytest.raises(MetricError, match="30 dimensions per set"):
        render_emf(registry.collect(), namespace="etl", timestamp_ms=0)


def test_exporter_writes_lines_and_then_only_the_increase(registry: Registry) -> None:
    stream = io.StringIO()
    exporter = EmfExporter(stream, namespace="etl", registry=registry, clock=lambda: 1700000000.5)
    assert exporter.emit() == 4
    registry.counter("etl_fp_files_total", "Files.", labels=("dataset", "outcome")).labels(
        dataset="pos", outcome="ok"
    ).inc(2)
    exporter.emit()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 6  # then the series that moved, and the gauge's level
    docs = [assert_valid_emf(line) for line in lines]
    assert {doc["_aws"]["Timestamp"] for doc in docs} == {1_700_000_000_500}
    pos = [d["etl_fp_files_total"] for d in docs if d.get("dataset") == "pos"]
    assert pos == [3, 2]
    assert "etl_fp_read_bytes_total" not in docs[-2]  # it did not move: no zero
    gauges = [d["etl_fp_inflight_files"] for d in docs if "etl_fp_inflight_files" in d]
    assert gauges == [2, 2]


def test_a_long_running_export_repeats_no_zero_for_the_series_that_did_not_move(
    registry: Registry,
) -> None:
    """A worker exports after each unit: what it counted in earlier units is not written
    again as zeros (one line per label set ever counted, per unit, to CloudWatch Logs)."""
    stream = io.StringIO()
    exporter = EmfExporter(stream, namespace="etl", registry=registry)
    exporter.emit()
    stream.seek(0)
    stream.truncate()

    assert exporter.emit() == 1  # the gauge's level only
    (doc,) = [assert_valid_emf(line) for line in stream.getvalue().splitlines()]
    assert set(doc) - {"_aws"} == {"etl_fp_inflight_files"}


def test_an_empty_label_becomes_a_dimension_cloudwatch_takes() -> None:
    registry = Registry()
    objects = registry.counter("etl_fp_objects_total", "Objects.", labels=("dataset", "reason"))
    objects.labels(dataset="", reason=" ").inc()

    (line,) = render_emf(registry.collect(), namespace="etl", timestamp_ms=0)

    doc = assert_valid_emf(line)
    assert (doc["dataset"], doc["reason"], doc["etl_fp_objects_total"]) == ("_", "_", 1)


class _BrokenStream:
    def __init__(self) -> None:
        self.fail = True
        self.text = ""

    def write(self, text: str) -> int:
        if self.fail:
            raise OSError("stdout closed")
        self.text += text
        return len(text)


def test_failed_write_keeps_the_counts_for_the_next_emit(registry: Registry) -> None:
    stream = _BrokenStream()
    exporter = EmfExporter(stream, namespace="etl", registry=registry)
    with pytest.raises(OSError, match="stdout closed"):
        exporter.emit()
    stream.fail = False
    exporter.emit()
    docs = [assert_valid_emf(line) for line in stream.text.splitlines()]
    assert [d["etl_fp_files_total"] for d in docs if d.get("dataset") == "pos"] == [3]


def test_exporter_without_registry_uses_the_current_default() -> None:
    isolated = Registry()
    isolated.counter("etl_fp_files_total", "Files.").inc()
    stream = io.StringIO()
    with use_registry(isolated):
        EmfExporter(stream, namespace="etl").emit()
    assert assert_valid_emf(stream.getvalue().strip())["etl_fp_files_total"] == 1


def test_a_metric_labelled_lane_is_exported_with_its_lane_beside_the_process_s_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve`` (lane observability) exports gauges labelled ``lane`` (the database's
    last successes): the label's value is the line's ``lane``; every line was refused as a
    collision with the process's ``lane``, and the export with it."""
    import etl_core.logging as etl_logging
    from etl_core.runtime import RuntimeSettings

    monkeypatch.setattr(etl_logging, "_PROCESS_CONTEXT", etl_logging._PROCESS_CONTEXT)
    etl_logging.bind_process_context(lane="observability", run_id="run-7")
    settings = RuntimeSettings(metrics_exporters=("emf",), emf_output="stdout")
    exporter = EmfExporter.from_settings(settings, "etl_observability_serve")
    registry = Registry()
    registry.gauge(
        "etl_observability_last_success_timestamp_seconds", "Last.", ("lane", "job")
    ).labels(lane="file_processing", job="scan").set(1_700_000_000)
    registry.gauge("etl_observability_backlog_files", "Backlog.").set(4)

    exporter.export(registry)

    docs = [assert_valid_emf(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["lane"], d["run_id"], d["etl_job"]) for d in docs] == [
        ("observability", "run-7", "etl_observability_serve"),
        ("file_processing", "run-7", "etl_observability_serve"),
    ]
    assert docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["job", "lane"]]
