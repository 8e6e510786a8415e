"""An interrupted ingest stops promptly: a page requested ahead that the API answers with a
slow 503 and a long ``Retry-After`` no longer holds the run for its back-off, and nothing is
committed past what is durable (the cursor stays, the resume lands every record once)."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from data_pipeline.ingest import IngestContext, IngestStoppedError, ObjectStateStore, ingest_unit
from data_pipeline.ingest import plan_units as plan
from etl_core.contracts import load_contracts, load_sources

from .conftest import Fault, stamp
from .test_ingest_cli import cli, popen

BACK_OFF = 30  # the server's Retry-After: what the run slept out before it stopped
SOURCE = f"""
concurrency = 2
max_attempts = 4
max_retry_wait = "{BACK_OFF * 2}s"

[[endpoints]]
name = "items"
path = "/offset"
dataset = "shop_items"
records_path = "items"
chunk_records = 7
[endpoints.pagination]
type = "offset"
page_size = 5
[endpoints.incremental]
cursor_field = "updated_at"
param = "since"
"""


def _unavailable_from_the_third_request(api) -> None:
    """Requests 1 and 2 of the next run answered, every later one a slow 503 asking for
    ``BACK_OFF`` seconds: the third is page 3, requested ahead while page 2 is read."""
    wait = {"Retry-After": str(BACK_OFF)}
    api.faults += [Fault("/offset", 503, headers=wait, delay=0.3, after=2)]
    api.faults += [Fault("/offset", 503, headers=wait, delay=0.3) for _ in range(6)]


def _wait_for_requests(api, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(api.requests) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(api.requests) >= count, api.requests
    time.sleep(0.6)  # the 503 answered: its request sleeps its back-off


@pytest.mark.slow
def test_ctrl_c_while_a_page_ahead_backs_off_exits_at_once_and_leaves_the_cursor(
    workspace, api
) -> None:
    api.records = [api.record(i) for i in range(1, 41)]
    workspace.source(SOURCE, endpoints=("items",))
    first = cli(workspace, "ingest")
    assert first.returncode == 0, first.stderr
    [before] = json.loads(cli(workspace, "ingest", "status", "--json").stdout)
    assert before["cursor"] == stamp(40)
    api.records = [api.record(i) for i in range(1, 121)]
    api.requests.clear()
    _unavailable_from_the_third_request(api)

    process = popen(workspace, "ingest")
    try:
        _wait_for_requests(api, 3)
        assert process.poll() is None, process.communicate()[1][-3000:]
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        _, stderr = process.communicate(timeout=BACK_OFF * 2)
        stopped_in = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 130, stderr[-3000:]
    assert stopped_in < 5, stopped_in  # not after the page ahead's 30 s back-off
    [after] = json.loads(cli(workspace, "ingest", "status", "--json").stdout)
    assert after["cursor"] == before["cursor"]
    assert after["consecutive_failures"] == 0  # an interruption is no failure
    api.faults.clear()
    resumed = cli(workspace, "ingest")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["id"] for r in workspace.landed("items")) == list(range(1, 121))


@pytest.mark.slow
def test_a_walk_on_a_pool_thread_stops_during_a_page_aheads_back_off(workspace, api) -> None:
    # a unit on a pool thread (threads, a worker) gets no KeyboardInterrupt: the run's stop
    # event must end the back-off of the page requested ahead, and with it the walk
    api.records = [api.record(i) for i in range(1, 121)]
    workspace.source(SOURCE, endpoints=("items",))
    _unavailable_from_the_third_request(api)
    contracts = load_contracts(workspace.config)
    sources = load_sources(workspace.config, contracts=contracts)
    states = ObjectStateStore(workspace.store)
    context = IngestContext(
        workspace.store, sources, states, "20260301T000000Z-aaaaaa", contracts=contracts
    )
    source = sources.get("shop")
    [unit] = plan(source, source.endpoint("items"))
    raised: list[BaseException] = []

    def walk() -> None:
        try:
            ingest_unit(context, unit)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=walk, daemon=True)
    thread.start()
    try:
        _wait_for_requests(api, 3)
        assert thread.is_alive()
        context.stop.set()
        stopped = time.monotonic()
        thread.join(BACK_OFF * 2)
        stopped_in = time.monotonic() - stopped
    finally:
        context.stop.set()
        thread.join(BACK_OFF * 4)
        context.close()

    assert stopped_in < 5, stopped_in
    assert len(raised) == 1, raised
    assert isinstance(raised[0], IngestStoppedError), raised
    state = states.load("shop", "items")
    assert state.cursor is None  # never past what landed
    assert state.consecutive_failures == 0
    assert state.window is not None  # the next run resumes it
