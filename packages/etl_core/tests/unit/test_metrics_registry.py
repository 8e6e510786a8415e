"""The metric registry: naming rules, labels, idempotent definitions, values, threads."""

from __future__ import annotations

import math
import threading

import pytest

from etl_core.errors import EtlError
from etl_core.metrics import (
    DEFAULT_BUCKETS,
    Counter,
    MetricError,
    MetricKind,
    Registry,
    counter,
    default_registry,
    gauge,
    histogram,
    use_registry,
)
from etl_core.testing.metrics import capture_metrics


@pytest.fixture
def registry() -> Registry:
    return Registry()


# ------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("etl-fp-files_total", "not a valid Prometheus name"),
        ("9etl_fp_files_total", "not a valid Prometheus name"),
        ("fp_files_total", "etl_<lane>_<what>_<unit>"),
        ("etl_FP_files_total", "etl_<lane>_<what>_<unit>"),
        ("etl_fp_files", "must be named etl_<lane>_<what>_total"),
        ("etl_fp_total", "must be named etl_<lane>_<what>_total"),
        ("etl_fp_wait_ms_total", "non-base unit 'ms'"),
    ],
)
def test_bad_counter_names_are_refused_naming_the_metric(
    registry: Registry, name: str, fragment: str
) -> None:
    with pytest.raises(MetricError, match=fragment) as caught:
        registry.counter(name, "help")
    assert repr(name) in str(caught.value)


def test_metric_error_is_a_value_error_and_an_etl_error(registry: Registry) -> None:
    with pytest.raises(MetricError) as caught:
        registry.counter("etl_fp_files", "help")
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, EtlError)


def test_gauge_ending_in_total_is_refused(registry: Registry) -> None:
    with pytest.raises(MetricError, match="must not end in '_total'"):
        registry.gauge("etl_fp_files_total", "help")


@pytest.mark.parametrize("suffix", ["_bucket", "_count", "_sum"])
def test_names_ending_in_histogram_suffixes_are_refused(registry: Registry, suffix: str) -> None:
    with pytest.raises(MetricError, match="reserved for histogram series"):
        registry.gauge(f"etl_fp_rows{suffix}", "help")


def test_durations_in_milliseconds_are_refused_in_favour_of_seconds(registry: Registry) -> None:
    with pytest.raises(MetricError, match="base units"):
        registry.histogram("etl_fp_step_duration_milliseconds", "help")


def test_empty_help_is_refused(registry: Registry) -> None:
    with pytest.raises(MetricError, match="help text is required"):
        registry.counter("etl_fp_files_total", "  ")


# ------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        (("data-set",), "label name 'data-set' is invalid"),
        (("__name",), "reserved"),
        (("dataset", "dataset"), "repeated: dataset"),
    ],
)
def test_bad_label_names_are_refused(
    registry: Registry, labels: tuple[str, ...], fragment: str
) -> None:
    with pytest.raises(MetricError, match=fragment):
        registry.counter("etl_fp_files_total", "help", labels=labels)


def test_labels_given_as_a_single_string_are_refused(registry: Registry) -> None:
    with pytest.raises(MetricError, match="sequence of names"):
        registry.counter("etl_fp_files_total", "help", labels="dataset")


def test_histogram_label_le_is_reserved(registry: Registry) -> None:
    with pytest.raises(MetricError, match="'le' is reserved"):
        registry.histogram("etl_fp_step_seconds", "help", labels=("le",))


def test_label_quantile_is_reserved_for_summaries(registry: Registry) -> None:
    with pytest.raises(MetricError, match="'quantile' is reserved for summaries"):
        registry.gauge("etl_fp_step_seconds", "help", labels=("quantile",))


def test_summary_holds_precomputed_quantiles_and_needs_the_quantile_label(
    registry: Registry,
) -> None:
    summary = registry.summary("etl_fp_step_seconds", "help", labels=("step", "quantile"))
    summary.labels(step="parse", quantile="0.9").set(2.5)

    assert registry.kind("etl_fp_step_seconds") == "summary"
    assert registry.value("etl_fp_step_seconds", step="parse", quantile="0.9") == 2.5
    with pytest.raises(MetricError, match="needs a 'quantile' label"):
        registry.summary("etl_fp_other_seconds", "help", labels=("step",))


def test_wrong_labels_name_the_metric_and_the_expected_labels(registry: Registry) -> None:
    files = registry.counter("etl_fp_files_total", "help", labels=("dataset", "outcome"))
    with pytest.raises(MetricError) as caught:
        files.labels(dataset="pos", result="ok")
    message = str(caught.value)
    assert "'etl_fp_files_total'" in message
    assert "expects labels (dataset, outcome)" in message
    assert "got (dataset, result)" in message


def test_labelled_metric_used_without_labels_says_to_bind_them(registry: Registry) -> None:
    files = registry.counter("etl_fp_files_total", "help", labels=("dataset",))
    with pytest.raises(MetricError, match=r"has labels \(dataset\); call \.labels"):
        files.inc()


def test_labels_cannot_be_bound_twice(registry: Registry) -> None:
    files = registry.counter("etl_fp_files_total", "help", labels=("dataset",))
    with pytest.raises(MetricError, match="already bound"):
        files.labels(dataset="pos").labels(dataset="inv")


def test_label_values_must_be_str_or_int(registry: Registry) -> None:
    files = registry.counter("etl_fp_files_total", "help", labels=("dataset",))
    with pytest.raises(MetricError, match="label 'dataset' must be a str or int, got NoneType"):
        files.labels(dataset=None)  # type: ignore[arg-type]


def test_int_label_values_are_stored_as_strings(registry: Registry) -> None:
    codes = registry.counter("etl_dp_http_responses_total", "help", labels=("status",))
    codes.labels(status=200).inc()
    assert registry.value("etl_dp_http_responses_total", status="200") == 1


# ------------------------------------------------------- idempotent definitions


def test_same_definition_twice_returns_the_same_metric(registry: Registry) -> None:
    first = registry.counter("etl_fp_files_total", "Files.", labels=("dataset",))
    second = registry.counter("etl_fp_files_total", "Files.", labels=("dataset",))
    first.labels(dataset="pos").inc()
    second.labels(dataset="pos").inc()
    assert registry.value("etl_fp_files_total", dataset="pos") == 2
    assert registry.names() == ("etl_fp_files_total",)


@pytest.mark.parametrize(
    "redefine",
    [
        lambda r: r.counter("etl_fp_files_total", "Files.", labels=("outcome",)),
        lambda r: r.counter("etl_fp_files_total", "Other help.", labels=("dataset",)),
        lambda r: r.gauge("etl_fp_files_total_now", "Files.", labels=("dataset",)),
    ],
)
def test_conflicting_definition_is_refused(registry: Registry, redefine: object) -> None:
    registry.counter("etl_fp_files_total", "Files.", labels=("dataset",))
    registry.gauge("etl_fp_files_total_now", "Other.", labels=("x",))
    with pytest.raises(MetricError, match="already registered as"):
        redefine(registry)  # type: ignore[operator]


def test_same_name_with_another_type_is_refused(registry: Registry) -> None:
    registry.histogram("etl_fp_step_seconds", "help")
    with pytest.raises(MetricError, match=r"already registered as histogram"):
        registry.gauge("etl_fp_step_seconds", "help")


def test_histogram_with_other_buckets_is_a_conflict(registry: Registry) -> None:
    registry.histogram("etl_fp_step_seconds", "help", buckets=(1, 2))
    with pytest.raises(MetricError, match="cannot redefine"):
        registry.histogram("etl_fp_step_seconds", "help", buckets=(1, 3))


# ------------------------------------------------------------------ counters


def test_counter_counts_per_label_set(registry: Registry) -> None:
    files = registry.counter("etl_fp_files_total", "help", labels=("dataset",))
    files.labels(dataset="pos").inc()
    files.labels(dataset="pos").inc(2.5)
    files.labels(dataset="inv").inc()
    assert files.labels(dataset="pos").value() == 3.5
    assert registry.value("etl_fp_files_total", dataset="inv") == 1
    assert registry.value("etl_fp_files_total", dataset="never") == 0


@pytest.mark.parametrize("amount", [-1, -0.001, math.inf, math.nan])
def test_counter_refuses_to_go_down_or_to_infinity(registry: Registry, amount: float) -> None:
    files = registry.counter("etl_fp_files_total", "help")
    files.inc(3)
    with pytest.raises(MetricError, match="'etl_fp_files_total'"):
        files.inc(amount)
    assert files.value() == 3


def test_counter_refuses_non_numbers(registry: Registry) -> None:
    files = registry.counter("etl_fp_files_total", "help")
    with pytest.raises(MetricError, match="must be a number, got str"):
        files.inc("1")  # type: ignore[arg-type]


def test_counter_is_exact_under_concurrent_increments(registry: Registry) -> None:
    files = registry.counter("etl_fp_files_total", "help", labels=("dataset",))
    threads_count, per_thread = 8, 5_000
    barrier = threading.Barrier(threads_count)

    def hammer() -> None:
        bound = files.labels(dataset="pos")
        barrier.wait(timeout=10)
        for _ in range(per_thread):
            bound.inc()

    threads = [threading.Thread(target=hammer) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert registry.value("etl_fp_files_total", dataset="pos") == threads_count * per_thread


def test_concurrent_definitions_all_land_on_one_family(registry: Registry) -> None:
    def define_and_count() -> None:
        for _ in range(200):
            registry.counter("etl_fp_rows_total", "Rows.").inc()

    threads = [threading.Thread(target=define_and_count) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert registry.value("etl_fp_rows_total") == 1200


# -------------------------------------------------------------------- gauges


def test_gauge_sets_increments_and_decrements(registry: Registry) -> None:
    depth = registry.gauge("etl_obs_queue_depth_files", "help")
    depth.set(10)
    depth.inc(5)
    depth.dec(2)
    depth.dec()
    assert depth.value() == 12


def test_gauge_track_inprogress_returns_to_zero_even_on_error(registry: Registry) -> None:
    inflight = registry.gauge("etl_fp_inflight_files", "help", labels=("dataset",))
    bound = inflight.labels(dataset="pos")
    with bound.track_inprogress():
        assert bound.value() == 1
        with bound.track_inprogress():
            assert bound.value() == 2
    with pytest.raises(RuntimeError), bound.track_inprogress():
        raise RuntimeError("boom")
    assert bound.value() == 0


def test_gauge_set_to_current_time_is_unix_seconds(registry: Registry) -> None:
    last = registry.gauge("etl_fp_last_success_timestamp_seconds", "help")
    last.set_to_current_time()
    assert 1_600_000_000 < last.value() < 10_000_000_000


def test_gauge_refuses_nan(registry: Registry) -> None:
    depth = registry.gauge("etl_obs_queue_depth_files", "help")
    with pytest.raises(MetricError, match="must not be NaN"):
        depth.set(math.nan)


# ---------------------------------------------------------------- histograms


def test_histogram_default_buckets_cover_milliseconds_to_an_hour(registry: Registry) -> None:
    step = registry.histogram("etl_fp_step_seconds", "help")
    assert step.buckets == (*DEFAULT_BUCKETS, math.inf)
    assert DEFAULT_BUCKETS[0] <= 0.005
    assert DEFAULT_BUCKETS[-1] >= 3600


def test_histogram_counts_into_inclusive_upper_bounds(registry: Registry) -> None:
    size = registry.histogram("etl_fp_file_size_bytes", "help", buckets=(10, 100, 1000))
    for value in (5, 10, 11, 100, 5000):
        size.observe(value)
    snap = registry.series("etl_fp_file_size_bytes")
    assert snap.buckets == ((10.0, 2), (100.0, 4), (1000.0, 4), (math.inf, 5))
    assert snap.count == 5
    assert snap.sum == 5126


def test_histogram_accepts_a_trailing_inf_bucket(registry: Registry) -> None:
    size = registry.histogram("etl_fp_file_size_bytes", "help", buckets=(1, math.inf))
    assert size.buckets == (1.0, math.inf)


@pytest.mark.parametrize(
    ("buckets", "fragment"),
    [
        ((), "at least one finite"),
        ((2, 1), "strictly increasing"),
        ((1, 1), "strictly increasing"),
        ((math.nan,), "finite"),
        (("fast", 1), "must be numbers"),
    ],
)
def test_bad_buckets_are_refused(
    registry: Registry, buckets: tuple[float, ...], fragment: str
) -> None:
    with pytest.raises(MetricError, match=fragment):
        registry.histogram("etl_fp_step_seconds", "help", buckets=buckets)


def test_histogram_refuses_nan_observations(registry: Registry) -> None:
    step = registry.histogram("etl_fp_step_seconds", "help")
    with pytest.raises(MetricError, match="observation must not be NaN"):
        step.observe(math.nan)
    assert registry.series("etl_fp_step_seconds").count == 0


def test_value_of_a_histogram_points_to_series(registry: Registry) -> None:
    registry.histogram("etl_fp_step_seconds", "help")
    with pytest.raises(MetricError, match=r"histogram; read it with \.series\(\)"):
        registry.value("etl_fp_step_seconds")


def test_reading_an_unknown_metric_lists_the_registered_ones(registry: Registry) -> None:
    registry.counter("etl_fp_files_total", "help")
    expected = r"'etl_fp_filez_total' is not registered; registered: etl_fp_files_total"
    with pytest.raises(MetricError, match=expected):
        registry.value("etl_fp_filez_total")


# ----------------------------------------------------------------- snapshots


def test_collect_is_sorted_by_name_and_label_values(registry: Registry) -> None:
    files = registry.counter("etl_fp_files_total", "help", labels=("dataset",))
    registry.gauge("etl_fp_inflight_files", "help").set(1)
    files.labels(dataset="zeta").inc()
    files.labels(dataset="alpha").inc()
    snapshots = registry.collect()
    assert [m.name for m in snapshots] == ["etl_fp_files_total", "etl_fp_inflight_files"]
    assert snapshots[0].kind is MetricKind.COUNTER
    assert [s.label_dict() for s in snapshots[0].series] == [
        {"dataset": "alpha"},
        {"dataset": "zeta"},
    ]


def test_unlabelled_metric_is_exported_at_zero_before_first_use(registry: Registry) -> None:
    registry.counter("etl_fp_files_total", "help")
    (metric,) = registry.collect()
    assert [(s.labels, s.value) for s in metric.series] == [((), 0.0)]


# ------------------------------------------------------------ default registry


def test_module_level_handles_follow_the_current_default_registry() -> None:
    files = counter("etl_fp_files_total", "Files.", labels=("dataset",))
    first, second = Registry(), Registry()
    with use_registry(first):
        files.labels(dataset="pos").inc()
    with use_registry(second):
        files.labels(dataset="pos").inc(5)
    assert first.value("etl_fp_files_total", dataset="pos") == 1
    assert second.value("etl_fp_files_total", dataset="pos") == 5


def test_module_level_handles_register_nothing_until_used() -> None:
    isolated = Registry()
    with use_registry(isolated):
        gauge("etl_fp_inflight_files", "help")
        histogram("etl_fp_step_seconds", "help")
        assert isolated.names() == ()


def test_use_registry_restores_the_previous_default_even_on_error() -> None:
    before = default_registry()
    with pytest.raises(RuntimeError), use_registry(Registry()):
        raise RuntimeError("boom")
    assert default_registry() is before


def test_use_registry_is_seen_by_worker_threads() -> None:
    files = counter("etl_fp_files_total", "Files.")
    isolated = Registry()
    with use_registry(isolated):
        worker = threading.Thread(target=files.inc)
        worker.start()
        worker.join(timeout=10)
    assert isolated.value("etl_fp_files_total") == 1


def test_handle_bound_to_a_registry_ignores_the_default(registry: Registry) -> None:
    files = Counter("etl_fp_files_total", "Files.", registry=registry)
    with use_registry(Registry()):
        files.inc()
    assert registry.value("etl_fp_files_total") == 1


# ------------------------------------------------------------ capture_metrics


def test_capture_metrics_isolates_values_and_reads_them_by_label() -> None:
    files = counter("etl_fp_files_total", "Files.", labels=("dataset",))
    step = histogram("etl_fp_step_seconds", "Step.", labels=("step",), buckets=(1, 10))
    with capture_metrics() as captured:
        files.labels(dataset="pos").inc(2)
        step.labels(step="unpack").observe(3)
        step.labels(step="unpack").observe(4)
    assert captured.value("etl_fp_files_total", dataset="pos") == 2
    assert captured.count("etl_fp_step_seconds", step="unpack") == 2
    assert captured.sum("etl_fp_step_seconds", step="unpack") == 7
    assert captured.names() == ("etl_fp_files_total", "etl_fp_step_seconds")
    assert 'etl_fp_files_total{dataset="pos"} 2' in captured.render()
    with capture_metrics() as fresh:
        files.labels(dataset="pos").inc()
    assert fresh.value("etl_fp_files_total", dataset="pos") == 1


def test_capture_metrics_count_of_a_counter_is_refused() -> None:
    with capture_metrics() as captured:
        counter("etl_fp_files_total", "Files.").inc()
    with pytest.raises(MetricError, match="is a counter, not a histogram"):
        captured.count("etl_fp_files_total")


def test_module_level_handle_conflicting_with_a_registered_metric_fails_on_use() -> None:
    isolated = Registry()
    isolated.gauge("etl_fp_inflight_files", "In flight.")
    handle = counter("etl_fp_inflight_files_total", "In flight.")
    clash = gauge("etl_fp_inflight_files", "Other help.")
    with use_registry(isolated):
        handle.inc()
        with pytest.raises(MetricError, match="'etl_fp_inflight_files' is already registered"):
            clash.set(1)
    assert isolated.value("etl_fp_inflight_files") == 0


def test_histogram_is_exact_under_concurrent_observations(registry: Registry) -> None:
    size = registry.histogram("etl_fp_file_size_bytes", "help", buckets=(10,))

    def observe() -> None:
        for i in range(2_000):
            size.observe(i % 20)

    threads = [threading.Thread(target=observe) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    snap = registry.series("etl_fp_file_size_bytes")
    assert snap.count == 8_000
    assert snap.buckets == ((10.0, 4_400), (math.inf, 8_000))
    assert snap.sum == 4 * 100 * sum(range(20))


@pytest.mark.parametrize("quantile", ["p90", "", "NaN", "1.5", "-0.1"])
def test_a_summary_quantile_that_is_not_a_number_from_0_to_1_is_refused_naming_it(
    registry: Registry, quantile: str
) -> None:
    """``promtool check metrics`` (and the Pushgateway, node_exporter) cannot parse a
    summary whose ``quantile`` is not a number: the whole ``/metrics`` text is refused."""
    summary = registry.summary("etl_fp_step_seconds", "help", labels=("step", "quantile"))
    with pytest.raises(MetricError) as caught:
        summary.labels(step="parse", quantile=quantile).set(2.5)
    assert "etl_fp_step_seconds" in str(caught.value)
    assert repr(quantile) in str(caught.value)
    summary.labels(step="parse", quantile="0.99").set(2.5)
    summary.labels(step="parse", quantile=1).set(3)
