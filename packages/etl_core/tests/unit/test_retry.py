"""Behaviour of etl_core.retry: backoff, hints, deadlines, hooks and the three call forms."""

from __future__ import annotations

import asyncio
import email.utils
from dataclasses import dataclass, field

import pytest

from etl_core.errors import FatalError, RetryableError
from etl_core.retry import (
    Retrying,
    RetryPolicy,
    RetryState,
    parse_retry_after,
    retry,
    retrying_async,
)


@dataclass
class FakeTime:
    """A clock that advances only when the policy sleeps, so tests never wait."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def make_policy(fake: FakeTime, **options: object) -> RetryPolicy:
    return RetryPolicy(sleep=fake.sleep, clock=fake.clock, rng=lambda: 1.0, **options)  # type: ignore[arg-type]


class Flaky:
    """Fails with the given errors in order, then returns ``result``."""

    def __init__(self, *errors: BaseException, result: str = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.result = result

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def test_transient_errors_are_retried_until_success() -> None:
    fake = FakeTime()
    fn = Flaky(RetryableError("503"), RetryableError("503"))
    assert make_policy(fake, attempts=5).call(fn) == "ok"
    assert fn.calls == 3
    assert fake.sleeps == [0.1, 0.2]


def test_backoff_is_exponential_and_capped_at_max_delay() -> None:
    policy = RetryPolicy(initial_delay=1, multiplier=3, max_delay=10, rng=lambda: 1.0)
    assert [policy.backoff(n) for n in range(1, 5)] == [1, 3, 9, 10]


def test_full_jitter_draws_between_zero_and_the_ceiling() -> None:
    policy = RetryPolicy(initial_delay=2, rng=lambda: 0.25)
    assert policy.backoff(2) == pytest.approx(1.0)
    assert RetryPolicy(jitter=False, initial_delay=2, rng=lambda: 0.0).backoff(2) == 4


def test_last_error_is_reraised_with_its_cause_and_a_note() -> None:
    fake = FakeTime()
    root = ConnectionResetError("peer reset")
    final = RetryableError("still failing")
    final.__cause__ = root
    fn = Flaky(RetryableError("first"), RetryableError("second"), final)
    with pytest.raises(RetryableError) as info:
        make_policy(fake, attempts=3).call(fn)
    assert info.value is final
    assert info.value.__cause__ is root
    assert any("gave up after 3 attempts" in note for note in info.value.__notes__)
    assert fn.calls == 3


def test_errors_outside_retry_on_propagate_at_once() -> None:
    fake = FakeTime()
    fn = Flaky(KeyError("nope"))
    with pytest.raises(KeyError):
        make_policy(fake, attempts=5).call(fn)
    assert fn.calls == 1
    assert fake.sleeps == []


def test_fatal_error_is_never_retried_even_when_retry_on_is_broad() -> None:
    fake = FakeTime()
    fn = Flaky(FatalError("bad credentials"))
    with pytest.raises(FatalError):
        make_policy(fake, attempts=5, retry_on=(Exception,)).call(fn)
    assert fn.calls == 1


def test_predicate_narrows_which_errors_are_retried() -> None:
    fake = FakeTime()
    policy = make_policy(
        fake, attempts=5, retry_on=(OSError,), predicate=lambda e: "timeout" in str(e)
    )
    assert policy.call(Flaky(OSError("timeout"), OSError("timeout"))) == "ok"
    with pytest.raises(OSError, match="disk full"):
        policy.call(Flaky(OSError("disk full")))


def test_server_retry_after_hint_is_honoured() -> None:
    fake = FakeTime()
    fn = Flaky(RetryableError("throttled", retry_after=7.5))
    make_policy(fake, attempts=3).call(fn)
    assert fake.sleeps == [7.5]


def test_a_server_hint_beyond_max_delay_waits_max_delay() -> None:
    class Response:
        headers = {"Retry-After": "86400"}

    class HttpError(Exception):
        response = Response()

    fake = FakeTime()
    fn = Flaky(
        RetryableError("throttled", retry_after=3600), RetryableError("x", retry_after=1e308)
    )
    make_policy(fake, attempts=3, max_delay=5).call(fn)
    make_policy(fake, retry_on=(HttpError,), max_delay=5).call(Flaky(HttpError()))
    assert fake.sleeps == [5.0, 5.0, 5.0]


def test_retry_after_header_on_an_attached_response_is_honoured() -> None:
    class Response:
        headers = {"Retry-After": "4"}

    class HttpError(Exception):
        response = Response()

    fake = FakeTime()
    make_policy(fake, retry_on=(HttpError,)).call(Flaky(HttpError()))
    assert fake.sleeps == [4.0]


def test_deadline_stops_retrying_before_the_budget_is_exceeded() -> None:
    fake = FakeTime()
    fn = Flaky(*[RetryableError("slow") for _ in range(10)])
    policy = make_policy(fake, attempts=100, initial_delay=1, multiplier=2, deadline=10)
    with pytest.raises(RetryableError):
        policy.call(fn)
    assert sum(fake.sleeps) < 10
    assert fake.sleeps == [1, 2, 4]


def test_before_sleep_hook_sees_each_wait() -> None:
    fake = FakeTime()
    seen: list[RetryState] = []
    policy = make_policy(fake, attempts=3, before_sleep=seen.append)
    policy.call(Flaky(RetryableError("a"), RetryableError("b")))
    assert [(s.attempt, s.delay, str(s.error)) for s in seen] == [(1, 0.1, "a"), (2, 0.2, "b")]


def test_decorator_retries_a_sync_function() -> None:
    fake = FakeTime()
    fn = Flaky(RetryableError("x"))

    @retry(make_policy(fake, attempts=2))
    def wrapped() -> str:
        return fn()

    assert wrapped() == "ok"
    assert wrapped.__name__ == "wrapped"


def test_bare_decorator_uses_the_default_policy() -> None:
    calls = []

    @retry
    def succeed() -> int:
        calls.append(1)
        return 42

    assert succeed() == 42
    assert calls == [1]


def test_decorator_retries_an_async_function() -> None:
    fake = FakeTime()
    fn = Flaky(RetryableError("x"), RetryableError("y"))

    @retry(make_policy(fake, attempts=3, initial_delay=0.001))
    async def wrapped() -> str:
        return fn()

    assert asyncio.run(wrapped()) == "ok"
    assert fn.calls == 3


def test_loop_form_retries_the_block() -> None:
    fake = FakeTime()
    fn = Flaky(RetryableError("x"))
    results = []
    for attempt in Retrying(make_policy(fake, attempts=3)):
        with attempt:
            results.append(fn())
    assert results == ["ok"]
    assert fn.calls == 2


def test_async_loop_form_gives_up_with_the_last_error() -> None:
    fake = FakeTime()
    fn = Flaky(RetryableError("1"), RetryableError("2"))

    async def run() -> None:
        async for attempt in retrying_async(make_policy(fake, attempts=2, initial_delay=0.001)):
            with attempt:
                fn()

    with pytest.raises(RetryableError, match="2"):
        asyncio.run(run())
    assert fn.calls == 2


def test_invalid_policy_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=0)


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert parse_retry_after("120") == 120
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(30)
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999", "Infinity"])
def test_a_retry_after_that_is_not_a_finite_number_is_no_hint(value: str) -> None:
    assert parse_retry_after(value) is None
