"""DeltaTracker: increments since the last successful export."""

from __future__ import annotations

from etl_core.metrics import DeltaTracker, Registry


def test_counters_and_histograms_are_diffed_gauges_pass_through() -> None:
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "Files.")
    depth = registry.gauge("etl_fp_inflight_files", "In flight.")
    step = registry.histogram("etl_fp_step_seconds", "Step.", buckets=(1,))
    tracker = DeltaTracker()

    files.inc(5)
    depth.set(3)
    step.observe(0.5)
    first = registry.collect()
    assert [m.series[0].value for m in tracker.diff(first)] == [5, 3, 0.5]
    tracker.advance(first)

    files.inc(2)
    step.observe(4)
    counter_delta, gauge_delta, histogram_delta = tracker.diff(registry.collect())
    assert counter_delta.series[0].value == 2
    assert gauge_delta.series[0].value == 3
    hist = histogram_delta.series[0]
    assert (hist.count, hist.sum) == (1, 4)
    assert hist.buckets == ((1.0, 0), (float("inf"), 1))


def test_without_advance_the_increase_keeps_accumulating() -> None:
    registry = Registry()
    files = registry.counter("etl_fp_files_total", "Files.")
    tracker = DeltaTracker()
    files.inc()
    tracker.diff(registry.collect())
    files.inc()
    assert tracker.diff(registry.collect())[0].series[0].value == 2


def test_a_counter_that_went_down_is_treated_as_reset() -> None:
    tracker = DeltaTracker()
    old, new = Registry(), Registry()
    old.counter("etl_fp_files_total", "Files.").inc(10)
    tracker.advance(old.collect())
    new.counter("etl_fp_files_total", "Files.").inc(4)
    assert tracker.diff(new.collect())[0].series[0].value == 4


def test_negative_histogram_observations_are_not_mistaken_for_a_reset() -> None:
    registry = Registry()
    drift = registry.histogram("etl_obs_clock_drift_seconds", "Drift.", buckets=(0,))
    tracker = DeltaTracker()
    drift.observe(1)
    tracker.advance(registry.collect())
    drift.observe(-3)
    delta = tracker.diff(registry.collect())[0].series[0]
    assert (delta.count, delta.sum) == (1, -3)


def test_summary_quantiles_pass_through_as_gauges_do() -> None:
    """A summary's quantiles are set, not accumulated: StatsD and EMF get each as it is."""
    registry = Registry()
    duration = registry.summary("etl_fp_run_seconds", "Runs.", labels=("quantile",))
    tracker = DeltaTracker()

    duration.labels(quantile="0.9").set(20)
    first = registry.collect()
    assert tracker.diff(first)[0].series[0].value == 20
    tracker.advance(first)
    duration.labels(quantile="0.9").set(12)
    (moved,) = tracker.diff(registry.collect(), changed_only=True)
    assert moved.series[0].value == 12
