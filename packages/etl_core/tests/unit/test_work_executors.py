"""The executor contract, shared by every implementation: same units in, same results out."""

from __future__ import annotations

import concurrent.futures
import inspect
import json
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from etl_core.errors import FatalError, RetryableError
from etl_core.retry import RetryPolicy
from etl_core.testing import capture_logs
from etl_core.work import (
    Executor,
    InlineExecutor,
    InvalidUnitError,
    ThreadExecutor,
    UnitResult,
    WorkUnit,
)

NO_WAIT = RetryPolicy(attempts=3, initial_delay=0, jitter=False, sleep=lambda _: None)

EXECUTORS: dict[str, Callable[[], Executor]] = {
    "inline": lambda: InlineExecutor(policy=NO_WAIT),
    "threads": lambda: ThreadExecutor(3, policy=NO_WAIT),
}


def units(count: int) -> list[WorkUnit]:
    return [WorkUnit("test_lane", "item", f"k{n}", {"n": n}) for n in range(count)]


CELERY = {"celery_redis": "redis", "celery_rabbitmq": "rabbitmq"}  # a real broker and worker


@pytest.fixture(
    params=[
        *sorted(EXECUTORS),
        pytest.param("celery_redis", marks=[pytest.mark.redis, pytest.mark.slow]),
        pytest.param("celery_rabbitmq", marks=[pytest.mark.rabbitmq, pytest.mark.slow]),
    ]
)
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    if request.param in CELERY:
        in_test_celery = request.getfixturevalue("in_test_celery")
        with in_test_celery(CELERY[request.param], NO_WAIT) as celery:
            yield celery
        return
    yield EXECUTORS[request.param]()


def test_every_unit_runs_once_and_yields_its_value(executor: Executor) -> None:
    results = list(executor.run(lambda u: u.params["n"] * 2, units(10)))
    assert sorted(r.value for r in results if r.value is not None) == [2 * n for n in range(10)]
    assert all(r.ok and r.attempts == 1 for r in results)


def test_a_retryable_error_is_retried_until_it_passes(executor: Executor) -> None:
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(unit: WorkUnit) -> str:
        with lock:
            calls[unit.key] = calls.get(unit.key, 0) + 1
            if calls[unit.key] < 3:
                raise RetryableError("throttled")
        return unit.key

    (result,) = executor.run(flaky, units(1))
    assert (result.status, result.value, result.attempts) == ("succeeded", "k0", 3)


def test_a_fatal_error_is_attempted_once(executor: Executor) -> None:
    calls: list[str] = []

    def broken(unit: WorkUnit) -> None:
        calls.append(unit.key)
        raise FatalError("the SQL is wrong")

    (result,) = executor.run(broken, units(1))
    assert (result.status, result.attempts, calls) == ("failed", 1, ["k0"])
    assert isinstance(result.error, FatalError)


def test_an_unexpected_error_is_not_retried_and_does_not_stop_the_others(
    executor: Executor,
) -> None:
    def some_fail(unit: WorkUnit) -> int:
        if unit.params["n"] % 2:
            raise ValueError(f"odd {unit.key}")
        return 1

    results: list[UnitResult[int]] = list(executor.run(some_fail, units(6)))
    assert sorted(r.status for r in results) == ["failed"] * 3 + ["succeeded"] * 3
    assert all(r.attempts == 1 for r in results)


def test_retryable_errors_give_up_after_the_policy_attempts(executor: Executor) -> None:
    def always(unit: WorkUnit) -> None:
        raise RetryableError("down")

    (result,) = executor.run(always, units(1))
    assert (result.status, result.attempts) == ("failed", 3)


def test_an_interruption_propagates_and_starts_no_new_unit(executor: Executor) -> None:
    started: list[str] = []
    lock = threading.Lock()

    def interrupt_on_third(unit: WorkUnit) -> str:
        with lock:
            started.append(unit.key)
        return unit.key

    results = executor.run(interrupt_on_third, units(50))
    seen = []
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012 - the loop is what is interrupted
        for result in results:
            seen.append(result)
            if len(seen) == 3:
                raise KeyboardInterrupt
    results.close()  # what leaving the loop does: in-flight units finish, nothing new starts
    count = len(started)
    assert 3 <= count <= 3 + 3  # at most one pool's worth beyond what was seen
    time.sleep(0.05)
    assert len(started) == count  # and nothing starts afterwards


def test_an_interrupted_run_stops_following_its_ended_units_at_once(executor: Executor) -> None:
    # on RabbitMQ (rpc:// results) the units' ends went to the run's consumer, unread while
    # it stopped: every Ctrl-C waited out drain_timeout (20 s here, 30 s by default), then
    # said units were "still running" that had ended long before
    def quick(unit: WorkUnit) -> str:
        return unit.key

    results = executor.run(quick, units(50))
    with capture_logs() as logs:
        with pytest.raises(KeyboardInterrupt):  # noqa: PT012 - the loop is what is interrupted
            for seen, _ in enumerate(results, 1):
                if seen == 3:
                    time.sleep(0.5)  # the units enqueued meanwhile end on the worker
                    raise KeyboardInterrupt
        started = time.monotonic()
        results.close()
        stopped_in = time.monotonic() - started

    assert stopped_in < 5, stopped_in
    assert not [r for r in logs if "stopped following" in r["event"]], logs


def test_a_unit_is_plain_json_and_round_trips() -> None:
    unit = WorkUnit("file_processing", "landing_object", "landing/pos/a.csv", {"force": True})
    assert json.loads(unit.to_json()) == {
        "lane": "file_processing",
        "kind": "landing_object",
        "key": "landing/pos/a.csv",
        "params": {"force": True},
    }
    assert WorkUnit.from_json(unit.to_json()) == unit
    assert pickle.loads(pickle.dumps(unit)) == unit
    assert unit.id == "file_processing:landing_object:landing/pos/a.csv"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: WorkUnit("File", "k", "x"), "lane"),
        (lambda: WorkUnit("lane", "k", ""), "key"),
        (lambda: WorkUnit("lane", "k", "x", {"when": object()}), "params"),
        (lambda: WorkUnit("lane", "k", "x", {"n": float("nan")}), "params"),
        (lambda: WorkUnit.from_json("{"), "unit"),
        (lambda: WorkUnit.from_json('{"lane": "a", "kind": "b"}'), "key"),
        (lambda: WorkUnit.from_json('{"lane": "a", "kind": "b", "key": "c", "x": 1}'), "x"),
    ],
)
def test_a_malformed_unit_is_refused_naming_the_field(
    build: Callable[[], WorkUnit], field: str
) -> None:
    with pytest.raises(InvalidUnitError) as caught:
        build()
    assert caught.value.field == field
    assert pickle.loads(pickle.dumps(caught.value)).field == field


def test_a_pool_needs_a_sane_size() -> None:
    with pytest.raises(ValueError, match="from 1 to 256"):
        ThreadExecutor(0)


def test_an_interrupted_pool_ends_its_units_retry_back_off_at_once() -> None:
    # issue 15: a unit in flight slept its back-off (and retried) after Ctrl-C
    policy = RetryPolicy(attempts=3, initial_delay=30.0, max_delay=30.0, jitter=False)
    attempts: list[int] = []
    failing = threading.Event()

    def run(unit: WorkUnit) -> None:
        attempts.append(1)
        failing.set()
        raise RetryableError("the partition is busy")

    def interrupt() -> None:
        if failing.wait(10):  # Ctrl-C, to the main thread (which waits for the pool)
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        list(ThreadExecutor(1, policy=policy).run(run, units(1)))
    assert time.monotonic() - started < 5
    assert attempts == [1]  # no retry after the interruption


def _blocked_waiting_for_futures(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside the lock acquire of ``concurrent.futures.wait`` (its
    ``Condition.wait``, whose lock only a finished future releases). The caller holds the
    GIL, so that thread runs no bytecode: it blocks, or is about to, and a signal arriving
    now is looked at only once the acquire returns."""
    lines, first = inspect.getsourcelines(threading.Condition.wait)
    acquires = [first + n for n, line in enumerate(lines) if "waiter.acquire(" in line][1:]
    frame = sys._current_frames().get(thread.ident or 0)
    if frame is None or frame.f_back is None or frame.f_back.f_back is None:
        return False
    return (
        frame.f_code is threading.Condition.wait.__code__
        and frame.f_lineno in acquires
        and frame.f_back.f_code is threading.Event.wait.__code__
        and frame.f_back.f_back.f_code is concurrent.futures.wait.__code__
    )


def test_an_interruption_arriving_as_the_pool_starts_waiting_ends_the_back_off_at_once() -> None:
    # A signal arriving just before the main thread blocks in its wait for the pool (or
    # handled by another thread) wakes nothing: its handler runs at the next check. Waited
    # for without a bound, that was after the unit slept out its back-off and retried.
    policy = RetryPolicy(attempts=2, initial_delay=30.0, max_delay=30.0, jitter=False)
    attempts: list[int] = []
    failing = threading.Event()
    main = threading.main_thread()

    def run(unit: WorkUnit) -> None:
        attempts.append(1)
        failing.set()
        raise RetryableError("the partition is busy")

    def interrupt() -> None:
        if not failing.wait(10):
            return
        deadline = time.monotonic() + 10
        while not _blocked_waiting_for_futures(main) and time.monotonic() < deadline:
            time.sleep(0.001)
        # Ctrl-C, taken by this thread: the main thread's wait is not interrupted by it
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        list(ThreadExecutor(1, policy=policy).run(run, units(1)))
    assert time.monotonic() - started < 5
    assert attempts == [1]
