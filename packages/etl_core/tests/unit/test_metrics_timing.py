"""timed(): context manager and decorator (sync and async) observing seconds."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator

import pytest

from etl_core.metrics import Counter, Histogram, MetricError, Registry, timed


def fake_clock(*readings: float) -> Callable[[], float]:
    """A clock returning the given readings in order (fails loudly if over-read)."""
    values: Iterator[float] = iter(readings)
    return lambda: next(values)


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def step(registry: Registry) -> Histogram:
    return registry.histogram(
        "etl_fp_step_seconds", "Step time.", labels=("step",), buckets=(1, 10)
    )


@pytest.fixture
def calls(registry: Registry) -> Counter:
    return registry.counter("etl_fp_steps_total", "Steps run.", labels=("step",))


@pytest.fixture
def errors(registry: Registry) -> Counter:
    return registry.counter("etl_fp_step_errors_total", "Steps failed.", labels=("step",))


def test_context_manager_observes_elapsed_seconds(registry: Registry, step: Histogram) -> None:
    timer = timed(step.labels(step="unpack"), clock=fake_clock(100.0, 102.5))
    with timer:
        pass
    assert timer.elapsed == 2.5
    snap = registry.series("etl_fp_step_seconds", step="unpack")
    assert (snap.count, snap.sum) == (1, 2.5)
    assert snap.buckets == ((1.0, 0), (10.0, 1), (float("inf"), 1))


def test_context_manager_observes_and_counts_when_the_block_raises(
    registry: Registry, step: Histogram, calls: Counter, errors: Counter
) -> None:
    with (
        pytest.raises(ValueError, match="bad row"),
        timed(
            step.labels(step="parse"),
            calls=calls.labels(step="parse"),
            errors=errors.labels(step="parse"),
            clock=fake_clock(0.0, 0.25),
        ),
    ):
        raise ValueError("bad row")
    assert registry.series("etl_fp_step_seconds", step="parse").sum == 0.25
    assert registry.value("etl_fp_steps_total", step="parse") == 1
    assert registry.value("etl_fp_step_errors_total", step="parse") == 1


def test_decorator_times_every_call_and_keeps_the_function_identity(
    registry: Registry, step: Histogram, calls: Counter, errors: Counter
) -> None:
    @timed(
        step.labels(step="load"),
        calls=calls.labels(step="load"),
        errors=errors.labels(step="load"),
        clock=fake_clock(0.0, 1.0, 10.0, 13.0),
    )
    def load(rows: int) -> int:
        """Load rows."""
        return rows * 2

    assert load(2) == 4
    assert load(3) == 6
    assert load.__name__ == "load"
    assert load.__doc__ == "Load rows."
    snap = registry.series("etl_fp_step_seconds", step="load")
    assert (snap.count, snap.sum) == (2, 4.0)
    assert registry.value("etl_fp_steps_total", step="load") == 2
    assert registry.value("etl_fp_step_errors_total", step="load") == 0


def test_decorated_function_that_raises_is_timed_and_counted_as_error(
    registry: Registry, step: Histogram, errors: Counter
) -> None:
    @timed(step.labels(step="load"), errors=errors.labels(step="load"), clock=fake_clock(0, 4))
    def load() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        load()
    assert registry.series("etl_fp_step_seconds", step="load").sum == 4
    assert registry.value("etl_fp_step_errors_total", step="load") == 1


def test_decorator_on_async_function_times_the_awaited_call(
    registry: Registry, step: Histogram, calls: Counter
) -> None:
    timer = timed(
        step.labels(step="fetch"), calls=calls.labels(step="fetch"), clock=fake_clock(5.0, 5.75)
    )

    @timer
    async def fetch(page: int) -> str:
        await asyncio.sleep(0)
        return f"page-{page}"

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch(7)) == "page-7"
    assert registry.series("etl_fp_step_seconds", step="fetch").sum == 0.75
    assert registry.value("etl_fp_steps_total", step="fetch") == 1


def test_async_failure_is_counted_as_error(
    registry: Registry, step: Histogram, errors: Counter
) -> None:
    @timed(step.labels(step="fetch"), errors=errors.labels(step="fetch"), clock=fake_clock(0, 1))
    async def fetch() -> None:
        raise TimeoutError("slow api")

    with pytest.raises(TimeoutError):
        asyncio.run(fetch())
    assert registry.value("etl_fp_step_errors_total", step="fetch") == 1


def test_real_clock_measures_a_non_negative_duration(registry: Registry, step: Histogram) -> None:
    with timed(step.labels(step="noop")) as timer:
        pass
    assert timer.elapsed is not None
    assert timer.elapsed >= 0
    assert registry.series("etl_fp_step_seconds", step="noop").count == 1


def test_unbound_labelled_histogram_is_refused_up_front(step: Histogram) -> None:
    with pytest.raises(MetricError, match=r"'etl_fp_step_seconds' has labels \(step\)"):
        timed(step)


def test_unbound_labelled_counter_is_refused_up_front(step: Histogram, calls: Counter) -> None:
    with pytest.raises(MetricError, match="timer calls 'etl_fp_steps_total'"):
        timed(step.labels(step="x"), calls=calls)


def test_entering_a_running_timer_again_is_refused(registry: Registry, step: Histogram) -> None:
    timer = timed(step.labels(step="x"), clock=fake_clock(0, 1))
    with timer, pytest.raises(MetricError, match="already timing a block"), timer:
        pass
    assert registry.series("etl_fp_step_seconds", step="x").count == 1
