"""A token bucket: the client-side rate limit of one API source, shared by all its threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """At most ``rate`` requests per second on average, ``burst`` at once after a quiet spell.

    Args:
        rate: Tokens added per second; ``None`` for no limit.
        burst: The bucket's size (and its content at start).
    """

    def __init__(
        self,
        rate: float | None,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be above zero, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be 1 or more, got {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting until there is one; returns the seconds waited."""
        if self.rate is None:
            return 0.0
        with self._lock:  # reserve now, wait outside the lock: callers are served in order
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
