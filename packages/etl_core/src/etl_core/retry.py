"""Retry with exponential backoff and full jitter, sync and async.

One :class:`RetryPolicy` describes *when* to try again and *how long* to wait;
it is used three ways::

    policy = RetryPolicy(attempts=5, deadline=30)
    policy.call(fetch, url)                       # call form
    @retry(attempts=5, retry_on=(OSError,))       # decorator, sync or async
    def fetch(url): ...
    for attempt in Retrying(policy):              # loop form
        with attempt:
            fetch(url)

When the policy gives up, the *last* error is re-raised unchanged (its cause
chain intact, so ``except`` clauses keep working) with a note saying how many
attempts were made.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from etl_core.errors import FatalError, RetryableError

__all__ = [
    "Attempt",
    "RetryPolicy",
    "RetryState",
    "Retrying",
    "parse_retry_after",
    "retry",
    "retry_after_hint",
    "retrying_async",
]

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryState:
    """What a ``before_sleep`` hook is told before each wait."""

    attempt: int
    """The attempt that just failed, counting from 1."""
    error: BaseException
    delay: float
    """Seconds about to be slept."""
    elapsed: float
    """Seconds since the first attempt started."""


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry and how long to wait between attempts.

    An error is retried when it is an instance of ``retry_on`` and, if given,
    ``predicate(error)`` is true. :class:`~etl_core.errors.FatalError` is never
    retried. The wait before attempt *n+1* is uniform in
    ``[0, min(max_delay, initial_delay * multiplier**(n-1))]`` (full jitter),
    unless the error carries a server hint (``retry_after`` attribute or a
    ``Retry-After`` response header), which is honoured instead, up to
    ``max_delay``: a server (or a lease) asking for an hour waits ``max_delay``
    and tries again, it never holds the caller for longer.
    """

    attempts: int = 3
    initial_delay: float = 0.1
    max_delay: float = 20.0
    """The longest wait between two attempts: caps the backoff and a server's hint."""
    multiplier: float = 2.0
    deadline: float | None = None
    """Overall seconds budget across attempts and waits; ``None`` for no limit."""
    retry_on: tuple[type[BaseException], ...] = (RetryableError,)
    predicate: Callable[[BaseException], bool] | None = None
    before_sleep: Callable[[RetryState], None] | None = None
    log_retries: bool = True
    """Log a warning before each wait; ``False`` when ``before_sleep`` says it in its own
    words (the S3 store's hook names the request and the URL), so a retry is one line."""
    jitter: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    rng: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must be >= 0")
        if self.multiplier < 1:
            raise ValueError(f"RetryPolicy.multiplier must be >= 1, got {self.multiplier}")
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"RetryPolicy.deadline must be > 0 seconds, got {self.deadline}")

    def with_options(self, **changes: Any) -> RetryPolicy:
        """A copy of this policy with some fields changed."""
        return replace(self, **changes)

    # ----------------------------------------------------------- decisions

    def is_retryable(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another attempt under this policy."""
        if isinstance(error, FatalError) or not isinstance(error, self.retry_on):
            return False
        return self.predicate is None or self.predicate(error)

    def backoff(self, attempt: int) -> float:
        """The jittered wait after failed attempt number ``attempt`` (from 1)."""
        ceiling = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        return ceiling * self.rng() if self.jitter else ceiling

    def wait(self, attempt: int, hint: float | None) -> float:
        """The wait after failed attempt ``attempt`` (from 1): a server's ``hint`` (seconds)
        capped at ``max_delay``, else the jittered backoff."""
        return min(hint, self.max_delay) if hint is not None else self.backoff(attempt)

    def next_delay(self, attempt: int, error: BaseException, elapsed: float) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up."""
        if attempt >= self.attempts or not self.is_retryable(error):
            return None
        delay = self.wait(attempt, retry_after_hint(error))
        if self.deadline is not None and elapsed + delay >= self.deadline:
            return None
        return delay

    # ----------------------------------------------------------- call forms

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)``, retrying per this policy."""
        for attempt in Retrying(self):
            with attempt:
                return fn(*args, **kwargs)
        raise AssertionError("unreachable: Retrying either returns or raises")  # pragma: no cover

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)``, retrying per this policy."""
        async for attempt in retrying_async(self):
            with attempt:
                return await fn(*args, **kwargs)
        raise AssertionError(
            "unreachable: retrying_async either returns or raises"
        )  # pragma: no cover


class Attempt:
    """One try inside a retry loop; use it as a context manager."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.error: BaseException | None = None
        self._policy: RetryPolicy | None = None

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        self.error = exc
        return True  # the loop decides whether to retry or re-raise


class Retrying:
    """The loop form: ``for attempt in Retrying(policy): with attempt: ...``."""

    def __init__(self, policy: RetryPolicy | None = None, **options: Any) -> None:
        base = policy or RetryPolicy()
        self.policy = base.with_options(**options) if options else base

    def __iter__(self) -> Iterator[Attempt]:
        policy = self.policy
        started = policy.clock()
        number = 1
        while True:
            attempt = Attempt(number)
            yield attempt
            if attempt.error is None:
                return
            delay = _decide(policy, attempt, started)
            policy.sleep(delay)
            number += 1


async def retrying_async(policy: RetryPolicy | None = None) -> AsyncIterator[Attempt]:
    """The async loop form: ``async for attempt in retrying_async(policy): with attempt: ...``."""
    policy = policy or RetryPolicy()
    started = policy.clock()
    number = 1
    while True:
        attempt = Attempt(number)
        yield attempt
        if attempt.error is None:
            return
        delay = _decide(policy, attempt, started)
        import asyncio  # only async callers pay for importing it

        await asyncio.sleep(delay)
        number += 1


def _decide(policy: RetryPolicy, attempt: Attempt, started: float) -> float:
    """Return the wait before the next attempt, or re-raise the attempt's error."""
    error = attempt.error
    assert error is not None
    elapsed = policy.clock() - started
    delay = policy.next_delay(attempt.number, error, elapsed)
    if delay is None:
        if attempt.number > 1:
            error.add_note(
                f"etl_core.retry: gave up after {attempt.number} attempts in {elapsed:.2f}s"
            )
        raise error
    state = RetryState(attempt=attempt.number, error=error, delay=delay, elapsed=elapsed)
    if policy.log_retries:
        logger.warning(
            "retrying after %s (attempt %d, sleeping %.2fs)",
            type(error).__name__,
            attempt.number,
            delay,
            extra={"attempt": attempt.number, "delay_s": round(delay, 3), "error": str(error)},
        )
    if policy.before_sleep is not None:
        policy.before_sleep(state)
    return delay


# ------------------------------------------------------------------ decorator


@overload
def retry(fn: Callable[P, T], /) -> Callable[P, T]: ...


@overload
def retry(
    policy: RetryPolicy | None = None, /, **options: Any
) -> Callable[[Callable[P, T]], Callable[P, T]]: ...


def retry(policy: Any = None, /, **options: Any) -> Any:
    """Decorate a sync or async function so calls are retried per a policy.

    Use bare (``@retry``), with a policy (``@retry(policy)``) or with policy
    fields (``@retry(attempts=5, retry_on=(OSError,))``).
    """
    if callable(policy) and not isinstance(policy, RetryPolicy):
        return retry()(policy)
    base = policy or RetryPolicy()
    effective = base.with_options(**options) if options else base

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await effective.call_async(fn, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return effective.call(fn, *args, **kwargs)

        return wrapper

    return decorate


# ------------------------------------------------------------ server hints


def retry_after_hint(error: BaseException) -> float | None:
    """The server's wait hint in seconds, if the error carries one.

    Looks at a ``retry_after`` attribute (seconds, as on
    :class:`~etl_core.errors.RetryableError`), then at a ``Retry-After`` header
    on an attached ``response`` (httpx / requests style).
    """
    hint = getattr(error, "retry_after", None)
    if isinstance(hint, int | float) and not isinstance(hint, bool):
        return max(0.0, float(hint))
    if isinstance(hint, str):
        return parse_retry_after(hint)
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None and hasattr(headers, "get"):
        value = headers.get("Retry-After") or headers.get("retry-after")
        if isinstance(value, str):
            return parse_retry_after(value)
    return None


def parse_retry_after(value: str, *, now: float | None = None) -> float | None:
    """Parse an HTTP ``Retry-After`` value (delta seconds or HTTP date) into seconds.

    A number that is not finite (``inf``, ``nan``, ``1e999``) is no hint at all: ``None``,
    as for any other value that does not parse (the backoff decides the wait).
    """
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    import email.utils  # an HTTP date: rare, and the module is slow to import

    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
