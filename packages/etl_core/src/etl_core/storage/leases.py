"""Leases with fencing tokens: one holder of a piece of work at a time, across hosts.

A lease is a small record (:mod:`etl_core.storage.records`) at a key the caller
chooses. It names its holder, says until when it holds (renewed by a
heartbeat), and carries a **fencing token**: an integer that grows by one on
every acquisition, so whoever took a lease over has a larger token than every
holder before it. Every change is a compare-and-put, so of two processes racing
for a free lease exactly one wins.

Why tokens: a holder can stall (a long GC pause, SIGSTOP, a VM migration, a
network partition) past its expiry; meanwhile another worker takes the lease
over, and then the stalled one wakes up believing it still holds. So a writer
calls :meth:`Lease.check` right before it publishes (which fails with
:class:`~etl_core.errors.LeaseLostError` once the lease was taken over) and
records :attr:`Lease.token` in what it publishes (a manifest, a ledger record),
and the publish itself is a compare-and-put that refuses to replace a document
recorded with a newer token. A worker whose lease was taken over can then never
publish, even if it stalls between its check and its write.

Holders: :func:`this_holder` names this process run: host, pid, an identity of
the kernel boot and pid namespace, and a random id drawn once per process run,
so a restarted container (which may reuse pid 1 and, in a pod, the hostname) is
never mistaken for its predecessor.

Liveness is the heartbeat: a lease whose ``expires_at`` passed is free. The one
fast path: a holder recorded with this host's name **and** this process's boot
and pid namespace identity can be checked with ``kill(pid, 0)``; if no such
process exists, the lease is free at once (a killed worker's lease need not
wait for its expiry). Anywhere else (another host, another container sharing
the hostname, an identity that could not be read) a pid means nothing and only
the expiry counts. Expiry compares wall clocks, so hosts sharing leases need
synchronised clocks (NTP); the fencing token, not the clock, is what keeps a
stale holder from publishing.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Self, TypeVar

from etl_core.errors import (
    LeaseBusyError,
    LeaseLostError,
    LeaseWaitStoppedError,
    ObjectConflictError,
    StorageError,
)
from etl_core.runtime import process_alive, process_started
from etl_core.threads import start_thread

from .base import ObjectStore
from .records import NO_CHANGE, Change, NoChange, Records, Update, Versioned

__all__ = ["Holder", "Lease", "LeaseState", "acquire_lease", "read_lease", "this_holder"]

logger = logging.getLogger(__name__)

_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_PID_NAMESPACE = "/proc/self/ns/pid"
_JOIN_SECONDS = 10.0  # how long a release waits for a heartbeat renewal in flight

_GIVEN_UP: set[tuple[str, str, int]] = set()
"""Leases (store URL, key, token) this process released while the store refused the write
(a full or read-only disk): still recorded as held by this live process, they are free to
it, so its next unit of the same key does not wait out the expiry of its own lease."""
_GIVEN_UP_LOCK = threading.Lock()


def _forget_the_parents_given_up() -> None:
    """In a forked child (a prefork worker's): the parent's given-up leases name the
    parent's run, never this one; and the lock may have been held by a parent's thread."""
    global _GIVEN_UP_LOCK
    _GIVEN_UP_LOCK = threading.Lock()
    _GIVEN_UP.clear()


os.register_at_fork(after_in_child=_forget_the_parents_given_up)

T = TypeVar("T")


@dataclass(frozen=True)
class Holder:
    """One run of one process, as recorded in the leases it holds.

    Attributes:
        id: Unique per process run (``host:pid:random``); what ownership is judged by.
        host: The host name when the process started.
        pid: Its process id, in its own pid namespace.
        namespace: The kernel boot id and pid namespace of the process (``""`` where
            they cannot be read); only a holder with this process's value can be
            judged by its pid.
        started: When the process started, in clock ticks since boot (``0``: unknown,
            as in records written before it was recorded); a live pid with another
            start time is another process that reused the pid.
    """

    id: str
    host: str
    pid: int
    namespace: str = ""
    started: int = 0

    def describe(self) -> str:
        """``host:pid``, for messages."""
        return f"{self.host}:{self.pid}"

    def is_gone(self) -> bool:
        """Whether this holder's process is known not to run any more (the fast path).

        True only for a holder of this host, boot and pid namespace whose pid no
        live process has, whose pid is this process's own under another run id, or
        whose pid a process with another start time has (the pid was reused). False
        means "may be alive": ask the expiry.
        """
        me = this_holder()
        if not self.namespace or self.host != me.host or self.namespace != me.namespace:
            return False
        if self.pid == me.pid:
            return self.id != me.id
        if self.pid <= 0:
            return False
        if not process_alive(self.pid):
            return True
        started = process_started(self.pid) if self.started else 0
        return started != 0 and started != self.started

    def to_dict(self) -> dict[str, Any]:
        """The holder as stored in a record."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "namespace": self.namespace,
            "started": self.started,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Holder:
        """A holder read back from a record; anything unreadable stands for "someone else".

        A plain ``host:pid`` string (as records named their owner before holder ids)
        becomes a holder without a namespace: it is judged by expiry only.
        """
        if isinstance(raw, str):
            host, _, pid = raw.rpartition(":")
            return cls(raw, host, int(pid) if pid.isdigit() else 0)
        if not isinstance(raw, dict):
            return cls("", "", 0)
        number, started = raw.get("pid"), raw.get("started")
        return cls(
            id=str(raw.get("id", "")),
            host=str(raw.get("host", "")),
            pid=number if isinstance(number, int) and not isinstance(number, bool) else 0,
            namespace=str(raw.get("namespace", "")),
            started=started if isinstance(started, int) and not isinstance(started, bool) else 0,
        )


_this: Holder | None = None
_this_lock = threading.Lock()


def this_holder() -> Holder:
    """This process run as a lease holder (drawn once per process; a forked child gets its own)."""
    global _this
    with _this_lock:
        if _this is None or _this.pid != os.getpid():
            host, pid = socket.gethostname(), os.getpid()
            _this = Holder(
                f"{host}:{pid}:{secrets.token_hex(6)}",
                host,
                pid,
                _namespace(),
                process_started(pid),
            )
        return _this


def _namespace() -> str:
    """This process's kernel boot id and pid namespace, or ``""`` when either is unknown."""
    try:
        with open(_BOOT_ID, encoding="ascii") as boot:
            boot_id = boot.read().strip()
        pid_namespace = os.readlink(_PID_NAMESPACE)
    except OSError:
        return ""
    return f"{boot_id}/{pid_namespace}" if boot_id and pid_namespace else ""


@dataclass(frozen=True)
class LeaseState:
    """A lease as stored.

    Attributes:
        holder: Who took it last.
        token: The fencing token of that acquisition (grows by one with each).
        purpose: What the holder does with it, for messages (``transform``,
            ``backfill 2026...``).
        acquired_at: When the holder took it (epoch seconds).
        expires_at: When it is free unless renewed (epoch seconds).
        released: Whether the holder gave it up (free at once; the token stays).
    """

    holder: Holder
    token: int
    purpose: str
    acquired_at: float
    expires_at: float
    released: bool = False

    def describe_holder(self) -> str:
        """``host:pid (purpose)``, for messages."""
        return f"{self.holder.describe()} ({self.purpose})"

    def is_free(self, now: float) -> bool:
        """Whether another holder may take the lease at wall-clock time ``now``."""
        return self.released or self.expires_at <= now or self.holder.is_gone()

    def to_json(self) -> bytes:
        """The lease as stored."""
        document = {
            "holder": self.holder.to_dict(),
            "token": self.token,
            "purpose": self.purpose,
            "acquired_at": self.acquired_at,
            "expires_at": self.expires_at,
            "released": self.released,
        }
        return json.dumps(document).encode()

    @classmethod
    def from_json(cls, data: bytes, key: str) -> LeaseState:
        """A stored lease; one that cannot be read counts as released (free) with token 0.

        Leases written before holder ids (``host``/``pid`` fields, a text token)
        are read as held by that host and pid until their expiry. A time that is not a
        finite number (``NaN``, ``Infinity``) makes the lease unreadable.
        """
        try:
            raw = json.loads(data)
            holder = raw.get("holder") or {k: raw[k] for k in ("host", "pid") if k in raw}
            token = raw.get("token")
            acquired_at, expires_at = float(raw.get("acquired_at", 0)), float(raw["expires_at"])
            if not (math.isfinite(acquired_at) and math.isfinite(expires_at)):
                raise ValueError("a lease's times must be finite")  # NaN would hold it forever
            return cls(
                holder=Holder.from_dict(holder),
                token=token if isinstance(token, int) and not isinstance(token, bool) else 0,
                purpose=str(raw.get("purpose", "")),
                acquired_at=acquired_at,
                expires_at=expires_at,
                released=bool(raw.get("released", False)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning("unreadable lease %s will be replaced", key, extra={"key": key})
            return cls(Holder("", "", 0), 0, "unreadable", 0.0, 0.0, released=True)


def _lease_records(store: ObjectStore) -> Records[LeaseState]:
    return Records(store, decode=LeaseState.from_json, encode=LeaseState.to_json)


def read_lease(store: ObjectStore, key: str) -> LeaseState | None:
    """The lease stored at ``key`` (held, expired or released), or ``None`` if never taken."""
    found = _lease_records(store).read(key)
    return found.value if found is not None else None


class Lease:
    """A lease this process holds; use it as a context manager to release it at the end.

    A background heartbeat (when started) renews it every ``heartbeat_every``
    seconds. If a renewal finds the lease taken over, the heartbeat stops and
    the next :meth:`check` or :meth:`renew` raises
    :class:`~etl_core.errors.LeaseLostError`.
    """

    def __init__(
        self, records: Records[LeaseState], stored: Versioned[LeaseState], *, ttl: float
    ) -> None:
        self._records = records
        self._state = stored.value
        self._key = stored.key
        self._ttl = ttl
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lost: LeaseLostError | None = None
        self._released = False
        self._heartbeat: threading.Thread | None = None

    @property
    def key(self) -> str:
        """The lease object's key."""
        return self._key

    @property
    def token(self) -> int:
        """The fencing token of this acquisition: record it in what you publish."""
        return self._state.token

    @property
    def store_url(self) -> str:
        """The canonical root URL of the store holding the lease (a local one by its real
        path, :func:`~etl_core.storage.url.store_identity`): tokens grow per lease object
        in one store, so a token means something only next to its store and key."""
        return self._records.store.identity

    @property
    def holder(self) -> Holder:
        """This process run."""
        return self._state.holder

    @property
    def purpose(self) -> str:
        """What the lease was taken for."""
        return self._state.purpose

    @property
    def expires_at(self) -> float:
        """When the lease runs out unless renewed (epoch seconds), as last written."""
        return self._state.expires_at

    @property
    def lost(self) -> bool:
        """Whether a renewal found the lease taken over (or released)."""
        return self._lost is not None

    def describe_holder(self) -> str:
        """``host:pid (purpose)``, for messages."""
        return self._state.describe_holder()

    def renew(self) -> None:
        """Extend the lease by its TTL from now.

        Raises:
            LeaseLostError: another holder took it over, or it was released.
            StorageError: the store failed (the lease may still be held; try again).
        """
        with self._lock:
            if self._lost is not None:
                raise self._lost
            if self._released:
                raise self._lost_error("it was released")
            try:
                update = self._records.update(self._key, self._extend)
            except LeaseLostError as exc:
                self._lost = exc
                raise
            assert update.after is not None  # _extend never leaves the record absent
            self._state = update.after.value

    def check(self) -> int:
        """Confirm, right before publishing, that the lease is still ours; return its token.

        The lease is renewed as it is checked, so it cannot expire during a
        publish shorter than its TTL; a publish that writes a document must still
        refuse to replace one recorded with a newer token (see the module docs).

        Raises:
            LeaseLostError: the lease was taken over: do not publish.
        """
        self.renew()
        return self.token

    def fenced_update(
        self,
        records: Records[T],
        key: str,
        fn: Change[T],
        *,
        token_of: Callable[[T], int | None],
    ) -> Update[T]:
        """Publish under this lease: check it, then change a document that records tokens.

        The lease is checked first (:meth:`check`); then ``fn`` changes the
        document at ``key`` by compare-and-put (:meth:`Records.update`), refusing
        to replace a version whose recorded token (``token_of``; ``None`` for none)
        is newer than this lease's. So even a holder that stalls between its check
        and its write cannot replace what a later holder published. ``fn`` should
        record :attr:`token` in the value it returns.

        Raises:
            LeaseLostError: the lease was taken over, or the document was already
                written under a newer token; nothing is written.
        """
        self.check()

        def guarded(current: T | None) -> T | NoChange:
            recorded = token_of(current) if current is not None else None
            if recorded is not None and recorded > self.token:
                raise self._lost_error(f"{key} was written under token {recorded} already")
            return fn(current)

        return records.update(key, guarded)

    def fenced_delete(
        self, records: Records[T], key: str, *, token_of: Callable[[T], int | None]
    ) -> T | None:
        """Remove under this lease a document that records tokens; return what was removed.

        The lease is checked first (:meth:`check`); then the document is deleted only if
        it is still the version read (:meth:`ObjectStore.delete_if`) and that version's
        recorded token (``token_of``) is not newer than this lease's. So a holder that
        stalls between its check and its delete cannot remove what a later holder
        published. ``None``: there was nothing to remove.

        Raises:
            LeaseLostError: the lease was taken over, or the document was written under a
                newer token, or replaced meanwhile; nothing is removed.
        """
        self.check()
        current = records.read(key)
        if current is None:
            return None
        recorded = token_of(current.value)
        if recorded is not None and recorded > self.token:
            raise self._lost_error(f"{key} was written under token {recorded} already")
        try:
            records.store.delete_if(key, etag=current.etag)
        except ObjectConflictError:
            raise self._lost_error(f"{key} was replaced while it was being removed") from None
        return current.value

    def release(self) -> None:
        """Give the lease up: it is free at once for the next holder (who gets a larger token).

        A lease already taken over by another holder is left alone. Releasing twice
        does nothing.
        """
        self._stop_heartbeat()
        with self._lock:
            if self._released:
                return
            self._released = True
            try:
                update = self._records.update(self._key, self._give_up)
            except StorageError:
                with _GIVEN_UP_LOCK:
                    _GIVEN_UP.add((self._records.store.url, self._key, self.token))
                raise
        if not update.changed:
            logger.warning("lease %s was taken over before it was released", self._key)

    def start_heartbeat(self, every: float) -> None:
        """Renew the lease every ``every`` seconds in a background thread until released."""
        if every <= 0:
            raise ValueError(f"heartbeat interval must be > 0 seconds, got {every}")
        if self._heartbeat is None:
            self._heartbeat = start_thread(self._beat, every, name=f"lease-heartbeat {self._key}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.release()
        except StorageError as error:  # the lease expires by itself; the block's outcome stands
            logger.warning("could not release lease %s: %s", self._key, error)

    def __repr__(self) -> str:
        return f"Lease({self._key!r}, token={self.token}, holder={self.holder.id!r})"

    # -------------------------------------------------------------- internals

    def _ours(self, current: LeaseState | None) -> bool:
        return (
            current is not None
            and not current.released
            and current.token == self.token
            and current.holder.id == self.holder.id
        )

    def _extend(self, current: LeaseState | None) -> LeaseState:
        if current is None or not self._ours(current):
            taker = current.describe_holder() if current is not None else "nobody (deleted)"
            raise self._lost_error(f"it is held by {taker} now")
        return replace(current, expires_at=time.time() + self._ttl)

    def _give_up(self, current: LeaseState | None) -> LeaseState | NoChange:
        if current is None or not self._ours(current):
            return NO_CHANGE
        return replace(current, released=True, expires_at=time.time())

    def _lost_error(self, why: str) -> LeaseLostError:
        return LeaseLostError(
            f"lease {self._records.store.location_for(self._key)} (token {self.token}) is "
            f"lost: {why}; this holder must stop without publishing",
            key=self._key,
            holder=self.describe_holder(),
            token=self.token,
            url=self._records.store.url,
        )

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.renew()
            except LeaseLostError as exc:
                if not self._stop.is_set():
                    logger.error("%s", exc, extra={"key": self._key})
                return
            except Exception as exc:  # a store hiccup: the next beat tries again
                logger.warning("could not renew lease %s: %s", self._key, exc)

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        thread, self._heartbeat = self._heartbeat, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_SECONDS)


def acquire_lease(
    store: ObjectStore,
    key: str,
    *,
    ttl: float,
    purpose: str = "",
    wait: float = 0.0,
    poll: float = 0.5,
    heartbeat_every: float | None = None,
    stop: threading.Event | None = None,
) -> Lease:
    """Take the lease at ``key`` for ``ttl`` seconds, waiting up to ``wait`` seconds for it.

    The lease is free when it was never taken, was released, expired, or its
    holder is known to be gone (see the module docs). The acquisition gets the
    next fencing token. A heartbeat renews the lease every ``heartbeat_every``
    seconds (default a third of ``ttl``; ``0`` for none: the caller renews). A wait
    ends at once when ``stop`` is set.

    Raises:
        LeaseBusyError: another live holder still has it after ``wait`` seconds;
            names the holder and its token, ``retry_after`` its remaining time.
        LeaseWaitStoppedError: ``stop`` was set while waiting.
        ValueError: ``ttl`` is not positive.
    """
    if ttl <= 0:
        raise ValueError(f"lease ttl must be > 0 seconds, got {ttl}")
    records = _lease_records(store)
    holder = this_holder()
    deadline = time.monotonic() + max(wait, 0.0)

    def take(current: LeaseState | None) -> LeaseState:
        now = time.time()
        if current is not None and not current.is_free(now) and not _given_up(store, key, current):
            raise LeaseBusyError(
                f"lease {store.location_for(key)} is held by {current.describe_holder()} "
                f"(token {current.token}) for {max(current.expires_at - now, 0):.0f} s more",
                key=key,
                holder=current.describe_holder(),
                token=current.token,
                url=store.url,
                retry_after=max(current.expires_at - now, 0.0),
            )
        token = (current.token if current is not None else 0) + 1
        return LeaseState(holder, token, purpose, now, now + ttl)

    while True:
        try:
            update = records.update(key, take)
            break
        except LeaseBusyError as busy:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            if stop is None:
                time.sleep(min(poll, remaining))
            elif stop.wait(min(poll, remaining)):
                raise LeaseWaitStoppedError(
                    f"stopped waiting for lease {store.location_for(key)} (held by {busy.holder}): "
                    "the run was interrupted",
                    key=key,
                    holder=busy.holder,
                    token=busy.token,
                    url=store.url,
                ) from None
    before = update.before.value if update.before is not None else None
    _forget_given_up(store, key)  # taken now: no earlier token of it may free a later one
    if before is not None and not before.released and before.token > 0:
        logger.warning(
            "took over lease %s from %s (expired or gone)",
            key,
            before.describe_holder(),
            extra={"key": key, "holder": before.describe_holder()},
        )
    assert update.after is not None  # take() always writes
    lease = Lease(records, update.after, ttl=ttl)
    every = ttl / 3 if heartbeat_every is None else heartbeat_every
    if every > 0:
        lease.start_heartbeat(every)
    return lease


def _given_up(store: ObjectStore, key: str, current: LeaseState) -> bool:
    """Whether ``current`` is a lease this process run released though its record could
    not say so (the release's write failed): free to this process, whatever the record.

    A record at that token or a later one, naming another holder or token, shows the
    given-up lease was taken since: its entry is forgotten (an earlier token is only a
    read older than the release). Any acquisition of the key forgets them all, so a token
    that comes round again (a deleted record restarts them) never frees a lease in use."""
    entry = (store.url, key, current.token)
    with _GIVEN_UP_LOCK:
        if current.holder.id == this_holder().id and entry in _GIVEN_UP:
            return True
    _forget_given_up(store, key, up_to=current.token)
    return False


def _forget_given_up(store: ObjectStore, key: str, *, up_to: int | None = None) -> None:
    """Forget the given-up leases of ``key`` in ``store`` (those of tokens up to ``up_to``)."""
    with _GIVEN_UP_LOCK:
        _GIVEN_UP.difference_update(
            [
                entry
                for entry in _GIVEN_UP
                if entry[:2] == (store.url, key) and (up_to is None or entry[2] <= up_to)
            ]
        )
