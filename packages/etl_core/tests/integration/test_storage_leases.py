"""Leases with heartbeats and fencing tokens (etl_core.storage.leases), on both store backends.

Holders in other processes are real subprocesses (``lease_worker.py``), driven
through files; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from etl_core.errors import LeaseBusyError, LeaseLostError, RetryableError, StorageError
from etl_core.runtime import process_started
from etl_core.storage import (
    Holder,
    Lease,
    LeaseState,
    LocalObjectStore,
    ObjectStore,
    Records,
    S3ObjectStore,
    acquire_lease,
    read_lease,
    this_holder,
)

KEY = "_state/test/leases/pos/dt=2026-11-01.json"
WORKER = Path(__file__).with_name("lease_worker.py")


def wait_until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {seconds} s"
        time.sleep(0.02)


def documents(store: ObjectStore) -> Records[dict[str, int]]:
    return Records(
        store,
        decode=lambda data, key: dict(json.loads(data)),
        encode=lambda value: json.dumps(value).encode(),
    )


# ------------------------------------------------------------ taking and giving up


def test_a_free_lease_is_taken_with_the_first_token(store: ObjectStore) -> None:
    with acquire_lease(store, KEY, ttl=30, purpose="transform", heartbeat_every=0) as lease:
        stored = read_lease(store, KEY)
        assert stored is not None
        assert lease.token == stored.token == 1
        assert stored.holder == this_holder() == lease.holder
        assert stored.purpose == "transform"
        assert time.time() < stored.expires_at <= time.time() + 30


def test_a_lease_names_its_store_by_one_url_whatever_the_path_it_was_opened_by(
    tmp_path: Path,
) -> None:
    """Tokens count per store: a symlinked directory and its target are one store."""
    real = tmp_path / "lake"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    urls = []
    for opened in (real, tmp_path / "link", tmp_path / "link" / ".." / "lake"):
        with acquire_lease(
            LocalObjectStore(opened), KEY, ttl=30, purpose="t", heartbeat_every=0
        ) as lease:
            urls.append(lease.store_url)
        urls.append(LocalObjectStore(opened).identity)  # what the alerts are keyed by too
    other = tmp_path / "other"
    other.mkdir()
    with acquire_lease(
        LocalObjectStore(other), KEY, ttl=30, purpose="t", heartbeat_every=0
    ) as lease:
        elsewhere = lease.store_url

    assert urls == [real.resolve().as_uri()] * 6
    assert elsewhere == other.resolve().as_uri()


def test_a_held_lease_is_busy_naming_its_holder_and_token(store: ObjectStore) -> None:
    with (
        acquire_lease(store, KEY, ttl=30, purpose="first", heartbeat_every=0),
        pytest.raises(LeaseBusyError, match=r"\(first\)") as caught,
    ):
        acquire_lease(store, KEY, ttl=30, purpose="second")

    error = caught.value
    assert isinstance(error, RetryableError)
    assert error.key == KEY
    assert error.holder == f"{this_holder().describe()} (first)"
    assert error.token == 1
    assert error.retry_after is not None
    assert 0 < error.retry_after <= 30
    restored = pickle.loads(pickle.dumps(error))
    assert (restored.key, restored.holder, restored.token) == (KEY, error.holder, 1)
    assert str(restored) == str(error)


def test_a_busy_or_lost_lease_is_named_where_an_operator_finds_it(tmp_path: Path) -> None:
    """A lease of a partition (``dt=`` in its key) in a local store is named by its plain
    path, which a shell finds, not a file URL percent-encoding ``=`` as ``%3D``."""
    local = LocalObjectStore(tmp_path / "lake")
    key = "_state/data_pipeline/leases/pos/dt=2026-01-01.json"
    with acquire_lease(local, key, ttl=30, purpose="first", heartbeat_every=0) as lease:
        with pytest.raises(LeaseBusyError) as busy:
            acquire_lease(local, key, ttl=30, purpose="second")
        local.delete(key)
        with pytest.raises(LeaseLostError) as lost:
            lease.check()

    path = str(tmp_path / "lake" / key)
    for error in (busy.value, lost.value):
        assert f"lease {path} " in str(error), str(error)
        assert "%3D" not in str(error)


def test_a_released_lease_is_free_at_once_with_a_larger_token(store: ObjectStore) -> None:
    first = acquire_lease(store, KEY, ttl=600, purpose="first", heartbeat_every=0)
    first.release()
    first.release()  # twice is harmless

    stored = read_lease(store, KEY)
    assert stored is not None
    assert stored.released
    with acquire_lease(store, KEY, ttl=600, purpose="second", heartbeat_every=0) as second:
        assert second.token == 2


def test_an_expired_lease_is_taken_over_with_a_larger_token(store: ObjectStore) -> None:
    stalled = acquire_lease(store, KEY, ttl=0.3, purpose="stalled", heartbeat_every=0)
    time.sleep(0.4)

    with acquire_lease(store, KEY, ttl=30, purpose="next", heartbeat_every=0) as taker:
        assert taker.token == stalled.token + 1
        with pytest.raises(LeaseLostError, match="next") as caught:
            stalled.check()
        assert caught.value.token == stalled.token
        assert stalled.lost
        stalled.release()  # leaves the taker's lease alone
        current = read_lease(store, KEY)
        assert current is not None
        assert (current.token, current.released) == (taker.token, False)


def test_tokens_grow_with_every_acquisition(store: ObjectStore) -> None:
    tokens = []
    for _ in range(4):
        with acquire_lease(store, KEY, ttl=30, heartbeat_every=0) as lease:
            tokens.append(lease.token)
    assert tokens == [1, 2, 3, 4]


def test_a_heartbeat_keeps_a_long_holder_alive(store: ObjectStore) -> None:
    with acquire_lease(store, KEY, ttl=0.8, purpose="long", heartbeat_every=0.2) as lease:
        first_expiry = lease.expires_at
        for _ in range(3):  # three TTLs: without renewals it would have expired twice
            time.sleep(0.8)
            with pytest.raises(LeaseBusyError):
                acquire_lease(store, KEY, ttl=30, purpose="intruder")
        assert lease.expires_at > first_expiry
        assert lease.check() == 1


def test_a_waiting_taker_gets_the_lease_when_it_is_released(store: ObjectStore) -> None:
    holder = acquire_lease(store, KEY, ttl=30, heartbeat_every=0)
    releaser = threading.Timer(0.3, holder.release)
    releaser.start()
    try:
        with acquire_lease(store, KEY, ttl=30, wait=10, poll=0.05, heartbeat_every=0) as lease:
            assert lease.token == 2
    finally:
        releaser.join(10)


def test_an_unreadable_lease_is_replaced(store: ObjectStore) -> None:
    store.write_bytes(KEY, b"{not json")
    with acquire_lease(store, KEY, ttl=30, purpose="repair", heartbeat_every=0) as lease:
        assert lease.purpose == "repair"
        assert lease.token == 1


def test_a_lease_written_before_holder_ids_is_honoured_until_it_expires(
    store: ObjectStore,
) -> None:
    legacy = {"dataset": "pos", "dt": "2026-11-01", "host": "old-host", "pid": 7}
    store.write_bytes(
        KEY,
        json.dumps({**legacy, "token": "ab12", "purpose": "backfill", "expires_at": 4e9}).encode(),
    )
    with pytest.raises(LeaseBusyError, match=r"old-host:7 \(backfill\)"):
        acquire_lease(store, KEY, ttl=30)

    store.write_bytes(
        KEY,
        json.dumps({**legacy, "token": "ab12", "purpose": "backfill", "expires_at": 1.0}).encode(),
    )
    with acquire_lease(store, KEY, ttl=30, heartbeat_every=0) as lease:
        assert lease.token == 1


# ------------------------------------------------------------ holders


def test_a_lease_of_a_gone_process_of_this_host_and_namespace_is_free_at_once(
    store: ObjectStore,
) -> None:
    me = this_holder()
    dead = Holder(f"{me.host}:999999:feed", me.host, _finished_pid(), me.namespace)
    state = LeaseState(dead, 5, "crashed", time.time(), time.time() + 600)
    store.write_bytes(KEY, state.to_json())

    with acquire_lease(store, KEY, ttl=30, heartbeat_every=0) as lease:
        assert lease.token == 6


def test_a_lease_whose_pid_was_reused_by_another_process_is_free_at_once(
    store: ObjectStore,
) -> None:
    me = this_holder()
    if not me.namespace:
        pytest.skip("no /proc boot id or pid namespace here: pids are not judged")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_started(other.pid)
        assert started > 0
        reused = Holder("gone-run", me.host, other.pid, me.namespace, started - 1)
        same = Holder("live-run", me.host, other.pid, me.namespace, started)
        assert not same.is_gone()
        assert reused.is_gone()
        state = LeaseState(reused, 5, "crashed", time.time(), time.time() + 600)
        store.write_bytes(KEY, state.to_json())
        with acquire_lease(store, KEY, ttl=30, heartbeat_every=0) as lease:
            assert lease.token == 6
    finally:
        other.kill()
        other.wait(timeout=30)


def test_a_pid_in_another_namespace_or_host_says_nothing_about_liveness(
    store: ObjectStore,
) -> None:
    me = this_holder()
    pid = _finished_pid()
    for other in (
        Holder("x", me.host, pid, "another-boot/pid:[1]"),  # a container sharing the hostname
        Holder("y", "another-host", pid, me.namespace),  # a restarted pod on a new host name
        Holder("z", me.host, pid, ""),  # identity unknown
    ):
        store.write_bytes(
            KEY, LeaseState(other, 5, "elsewhere", time.time(), time.time() + 600).to_json()
        )
        with pytest.raises(LeaseBusyError, match="elsewhere"):
            acquire_lease(store, KEY, ttl=30)


def test_the_holder_id_is_unique_per_process_run() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "from etl_core.storage import this_holder; print(this_holder().id)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert this_holder() == this_holder()
    assert child.stdout.strip() != this_holder().id
    assert child.stdout.strip().startswith(f"{this_holder().host}:")


def _finished_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid


# ------------------------------------------------------------ fencing


def test_a_fenced_update_records_the_token_and_refuses_a_newer_one(store: ObjectStore) -> None:
    records = documents(store)
    with acquire_lease(store, KEY, ttl=30, heartbeat_every=0) as lease:
        lease.fenced_update(
            records,
            "published.json",
            lambda _: {"token": lease.token},
            token_of=lambda v: v["token"],
        )
        assert json.loads(store.read_bytes("published.json")) == {"token": 1}

        store.write_bytes("published.json", json.dumps({"token": 9}).encode())  # a later holder
        with pytest.raises(LeaseLostError, match="token 9"):
            lease.fenced_update(
                records, "published.json", lambda _: {"token": 1}, token_of=lambda v: v["token"]
            )
    assert json.loads(store.read_bytes("published.json")) == {"token": 9}


def test_a_fenced_delete_removes_only_what_no_later_holder_wrote(store: ObjectStore) -> None:
    records = documents(store)
    store.write_bytes("published.json", json.dumps({"token": 9}).encode())  # a later holder
    with acquire_lease(store, KEY, ttl=30, heartbeat_every=0) as lease:
        with pytest.raises(LeaseLostError, match="token 9"):
            lease.fenced_delete(records, "published.json", token_of=lambda v: v["token"])
        assert json.loads(store.read_bytes("published.json")) == {"token": 9}

        store.write_bytes("published.json", json.dumps({"token": lease.token}).encode())
        removed = lease.fenced_delete(records, "published.json", token_of=lambda v: v["token"])
        assert removed == {"token": lease.token}
        assert not store.exists("published.json")
        assert lease.fenced_delete(records, "published.json", token_of=lambda v: v["token"]) is None


# ------------------------------------------------------------ other processes


@pytest.fixture
def worker(store: ObjectStore, tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start ``lease_worker.py ACTION`` against the test's store; killed at the end."""
    started: list[subprocess.Popen[str]] = []
    endpoint = store.client.meta.endpoint_url if isinstance(store, S3ObjectStore) else "-"

    def start(action: str) -> subprocess.Popen[str]:
        command = [sys.executable, str(WORKER), action, store.url, endpoint, KEY, str(tmp_path)]
        started.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        return started[-1]

    yield start
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.communicate(timeout=30)


def state_of(tmp_path: Path, process: subprocess.Popen[str]) -> list[str]:
    path = tmp_path / f"{process.pid}.state"
    return path.read_text().split() if path.exists() else []


@pytest.mark.slow
def test_two_processes_racing_for_a_lease_have_exactly_one_winner(
    store: ObjectStore, tmp_path: Path, worker: Callable[[str], subprocess.Popen[str]]
) -> None:
    racers = [worker("race"), worker("race")]
    time.sleep(0.5)  # let both start up and wait at the line
    (tmp_path / "go").touch()

    wait_until(lambda: all(state_of(tmp_path, racer) for racer in racers), 60)
    outcomes = sorted(state_of(tmp_path, racer)[0] for racer in racers)
    (tmp_path / "done").touch()
    for racer in racers:
        assert racer.wait(timeout=60) == 0

    assert outcomes == ["busy", "won"]
    stored = read_lease(store, KEY)
    assert stored is not None
    assert (stored.released, stored.token) == (True, 1)


@pytest.mark.slow
def test_a_holder_stopped_until_its_lease_is_taken_over_does_not_publish(
    store: ObjectStore, tmp_path: Path, worker: Callable[[str], subprocess.Popen[str]]
) -> None:
    holder = worker("publish")
    wait_until(lambda: state_of(tmp_path, holder)[:1] == ["holding"], 60)
    os.kill(holder.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: _expired(store), 10)  # its heartbeat is stopped with it
        taker = acquire_lease(store, KEY, ttl=60, purpose="taker", heartbeat_every=0)
        (tmp_path / "go").touch()
    finally:
        os.kill(holder.pid, signal.SIGCONT)

    assert holder.wait(timeout=60) == 3
    assert state_of(tmp_path, holder) == ["holding", "1", "lost"]
    assert not store.exists(f"{KEY}.published")
    assert taker.token == 2
    taker.check()
    taker.release()


def _expired(store: ObjectStore) -> bool:
    stored = read_lease(store, KEY)
    return stored is not None and stored.expires_at < time.time()


class _FillingStore(LocalObjectStore):
    """A local store whose writes fail while ``full`` is set, as a full disk's do."""

    full = False

    def put_if(self, key: str, data: Any, *, etag: str | None) -> str:
        if self.full:
            raise StorageError(
                f"cannot write {key!r} in {self.url}: No space left on device", key=key
            )
        return super().put_if(key, data, etag=etag)


def _a_release_the_full_disk_refused(tmp_path: Path) -> tuple[_FillingStore, Lease]:
    """A lease of :data:`KEY` on a store in ``tmp_path`` whose release failed for a full
    disk (so this process gave it up), the disk no longer full; the store and the lease."""
    store = _FillingStore(tmp_path / "store")
    lease = acquire_lease(store, KEY, ttl=600, heartbeat_every=0)
    store.full = True
    with pytest.raises(StorageError, match="No space left on device"):
        lease.release()
    store.full = False
    return store, lease


def test_a_lease_whose_release_could_not_be_written_is_free_to_its_own_process(
    tmp_path: Path,
) -> None:
    """An ingest on a full store waited out its own lease (lease_seconds) at each next
    window of the endpoint: the release had failed, and the record named a live holder."""
    store, lease = _a_release_the_full_disk_refused(tmp_path)
    again = acquire_lease(store, KEY, ttl=600, wait=0, heartbeat_every=0)
    assert again.token == lease.token + 1
    again.release()
    third = acquire_lease(store, KEY, ttl=600, wait=0, heartbeat_every=0)
    assert third.token == again.token + 1  # the given-up record does not linger
    with pytest.raises(LeaseBusyError):  # held (not given up): busy, as ever
        acquire_lease(store, KEY, ttl=600, wait=0, heartbeat_every=0)
    third.release()


def test_a_given_up_token_does_not_free_a_later_lease_of_the_same_token(
    tmp_path: Path,
) -> None:
    """A lease record deleted (an operator unblocking a run) restarts the tokens: the token
    of a release that failed came round again, held by a live unit of this process, and a
    second unit of the same key took it over as if it had been given up."""
    store, lease = _a_release_the_full_disk_refused(tmp_path)
    store.delete(KEY)
    held = acquire_lease(store, KEY, ttl=600, wait=0, heartbeat_every=0)
    assert held.token == lease.token  # the same token, a lease in use
    with pytest.raises(LeaseBusyError):
        acquire_lease(store, KEY, ttl=600, wait=0, heartbeat_every=0)
    assert held.check() == held.token  # still held
    held.release()


def test_a_process_forked_while_the_given_up_leases_were_in_use_can_take_a_lease(
    tmp_path: Path,
) -> None:
    """A prefork worker's child forked while a thread of its parent was in the given-up set
    inherited the set's lock held: every lease it then took hung for ever. The parent's
    entries name the parent's run, never the child's: the child starts without them."""
    from etl_core.storage import leases

    store = LocalObjectStore(tmp_path / "store")
    acquire_lease(store, KEY, ttl=60, heartbeat_every=0).release()  # a record to take over
    parents = (store.url, "_state/test/leases/other.json", 7)
    leases._GIVEN_UP.add(parents)
    try:
        with leases._GIVEN_UP_LOCK:  # a thread of the parent in the set at the fork
            pid = os.fork()
            if pid == 0:  # the child: a lease of its own within 20 s, else the alarm ends it
                code = 4
                try:
                    signal.alarm(20)
                    inherited = bool(leases._GIVEN_UP)
                    acquire_lease(store, KEY, ttl=60, heartbeat_every=0).release()
                    code = 3 if inherited else 0
                finally:
                    os._exit(code)
    finally:
        leases._GIVEN_UP.discard(parents)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), f"the child hung (ended by signal {os.WTERMSIG(status)})"
    assert os.WEXITSTATUS(status) == 0


def test_a_given_up_lease_taken_by_another_process_is_forgotten_once_seen(
    tmp_path: Path,
) -> None:
    """The set of given-up leases kept every entry whose lease another process took: one
    more for each release that failed, for the life of the worker."""
    from etl_core.storage import leases

    store, lease = _a_release_the_full_disk_refused(tmp_path)
    other = Holder("elsewhere:1:abc", "elsewhere", 1)
    now = time.time()
    taken = LeaseState(other, lease.token + 1, "another run", now, now + 600)
    store.write_bytes(KEY, taken.to_json())  # another process took it after its expiry
    with pytest.raises(LeaseBusyError):
        acquire_lease(store, KEY, ttl=600, wait=0, heartbeat_every=0)
    assert not [entry for entry in leases._GIVEN_UP if entry[1] == KEY]
