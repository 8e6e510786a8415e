"""A followed run's polls of its units' results through a lost connection (a Redis restart)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from etl_core.work.celery import executor
from etl_core.work.unit import WorkUnit

UNIT = WorkUnit("file_processing", "object", "landing/a.csv")


class Sent:
    """A sent unit whose result reads fail ``failures`` times, then find it ended."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def ready(self) -> bool:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return True


def connection_lost(error: BaseException) -> BaseException | None:
    return error if isinstance(error, ConnectionError) else None


def waiter() -> Any:
    polling_only = SimpleNamespace(backend=SimpleNamespace())  # no result stream: it polls
    return executor._ResultWaiter(polling_only, lost=connection_lost)


def test_a_poll_landing_in_a_redis_restart_is_no_news_and_the_next_poll_finds_the_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(executor.time, "sleep", lambda seconds: None)
    running = {"task-1": (UNIT, Sent(failures=2))}
    polls = waiter()

    assert polls.ended(running) == []
    assert polls.ended(running) == []
    assert polls.ended(running) == ["task-1"]


def test_polls_failing_for_longer_than_the_result_stream_reconnects_end_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(executor.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(executor, "POLL_OUTAGE_SECONDS", 0.0)

    with pytest.raises(ConnectionError):
        waiter().ended({"task-1": (UNIT, Sent(failures=1))})


def test_a_poll_failing_for_another_reason_is_raised_at_once() -> None:
    class Broken:
        def ready(self) -> bool:
            raise ValueError("a result document that cannot be decoded")

    with pytest.raises(ValueError, match="cannot be decoded"):
        waiter().ended({"task-1": (UNIT, Broken())})


def test_a_later_redis_restart_gets_its_own_outage_time_after_the_stream_brought_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A poll failing in one restart, then results streaming again for minutes, then a poll
    failing in the next restart: that restart is waited out too, not measured from the first."""
    clock = [0.0]
    monkeypatch.setattr(executor.time, "monotonic", lambda: clock[0])
    streamed: list[Any] = []

    class Streamed:
        id = "task-2"

        def then(self, callback: Any) -> None:
            streamed.append(lambda: callback(self))

    class Consumer:
        def drain_events(self, timeout: float) -> None:
            while streamed:
                streamed.pop()()

    backend = SimpleNamespace(result_consumer=Consumer(), add_pending_result=lambda *a: None)
    polls = executor._ResultWaiter(SimpleNamespace(backend=backend), lost=connection_lost)
    restarting = Sent(failures=2)
    running: dict[str, Any] = {"task-1": (UNIT, restarting)}

    clock[0] = 3.0  # no news for a while: a poll, landing in the first restart
    assert polls.ended(running) == []
    assert restarting.failures == 1
    late = Streamed()
    running["task-2"] = (UNIT, late)
    polls.follow(late)
    clock[0] = 4.0  # Redis is back: a result streams in
    assert polls.ended(running) == ["task-2"]
    del running["task-2"]
    clock[0] = 4.0 + executor.POLL_OUTAGE_SECONDS * 10  # much later, the next restart
    assert polls.ended(running) == []
    assert restarting.failures == 0
