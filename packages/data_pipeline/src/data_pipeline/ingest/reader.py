"""The page reader: response bodies parsed, checked, profiled and encoded in a second process.

Parsing a page, checking its items, profiling their fields and encoding the landing
lines hold the GIL; in the walk's process they took about as much CPU as everything
else of a run together. A :class:`PageReader` hands each body (as it arrives, from
the page-ahead threads) to a child process, ``python -m data_pipeline.ingest.reader``,
which answers with a :class:`Reading`: the number of items, the body without its
records array (what the paginator reads), the profile of the page's fields and its
landing lines, encoded as :func:`~data_pipeline.ingest.chunks.encode_lines` would.
It answers "not here" (``None``) for any page it cannot take whole: a body that is not
JSON or not a records array, a number orjson would not read exactly, an item that
would not land (a dead letter), a page of more than
:data:`~data_pipeline.ingest.profile.MAX_FIELDS` fields. The walk then reads that page
itself, as before. The walk still archives, writes, checkpoints and commits
everything: the child writes nothing, so the crash guarantees are the walk's.

The child computes only. It runs in its own session, ends when its input closes (the
parent closed it, or died: no orphan outlives the run), ignores Ctrl-C and SIGTERM (the
parent stops the walk at a page boundary, then closes it). A child that ends early,
cannot start or sends an answer that cannot be read (or a request stopped mid-write) is
killed and fails every page waiting for it, and every later one, with
:class:`PageReaderError`, logged once: the walks then read their pages themselves, never
waiting for an answer that cannot come.

Wire format (both ways, little-endian): a request is ``<QII`` (id, length of the
JSON settings, length of the body), the settings, the body; an answer is ``<QIII``
(id, items or :data:`NOT_HERE`, length of the JSON meta, length of the lines), the
meta (``{"document": …, "profile": …}``), the lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import IO, Any

import orjson

from data_pipeline.errors import DataPipelineError

__all__ = ["MAX_BODY", "NOT_HERE", "PageReader", "PageReaderError", "Reading", "read_page"]

log = logging.getLogger(__name__)

_REQUEST = struct.Struct("<QII")
_ANSWER = struct.Struct("<QIII")
NOT_HERE = 0xFFFFFFFF
"""The item count of an answer saying the walk reads the page itself."""
MAX_BODY = 1 << 30
"""The largest body sent to the child (1 GiB); the walk reads larger ones itself (a length
in the wire format is 32 bits; an answer too large for it is "not here" too)."""
CLOSE_SECONDS = 5.0
"""How long :meth:`PageReader.close` waits for the child to end before killing it."""
PIPE_BYTES = 1 << 20
"""The capacity asked of both pipes (Linux; 64 KiB by default): a whole page and its answer
then pass in one write and one read, not a handoff every 64 KiB, each of which waited for
the GIL of a busy walk's process (the limit is ``/proc/sys/fs/pipe-max-size``)."""


class PageReaderError(DataPipelineError):
    """The page reader process ended before answering."""


@dataclass(frozen=True)
class Reading:
    """A page read by the child, taken whole.

    Attributes:
        count: Its items (every one lands).
        document: The body without its records array (an empty array in its place).
        profile: :meth:`~data_pipeline.ingest.profile.FieldProfile.to_dict` of its items.
        lines: Its items as landing lines (JSON Lines).
    """

    count: int
    document: Any
    profile: dict[str, Any]
    lines: bytes


class PageReader:
    """A child process reading pages; :meth:`submit` from any thread, :meth:`close` at the end."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        """The process that started it (a process forked later starts its own)."""
        self._lock = threading.Lock()
        """Guards the pending futures and the failure; never held while writing or reading
        (the child may be waiting to write an answer while a request is being written)."""
        self._writing = threading.Lock()
        self._pending: dict[int, Future[Reading | None]] = {}
        self._next = 0
        self._failure: PageReaderError | None = None
        self._closing = False
        """Set by :meth:`close`: the child's end is then no failure to warn of."""
        self._process: subprocess.Popen[bytes] | None = None
        self._answers: threading.Thread | None = None
        try:
            self._process = subprocess.Popen(
                # -P: not the working directory first on the path (a data_pipeline.py there)
                [sys.executable, "-P", "-m", "data_pipeline.ingest.reader"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C at the terminal is the parent's alone
            )
        except OSError as exc:  # the walk reads every page itself
            self._fail(f"could not start ({exc})")
            return
        for pipe in (self._process.stdin, self._process.stdout):
            _widen(pipe)
        self._answers = threading.Thread(target=self._read_answers, name="page-reader", daemon=True)
        self._answers.start()

    @property
    def failed(self) -> bool:
        """Whether the child ended (or never started): every page then fails at once."""
        return self._failure is not None

    def submit(
        self, body: bytes, records_path: str, primary_key: Sequence[str]
    ) -> Future[Reading | None]:
        """Queue ``body`` (its records array at ``records_path``, not ``""``; ``primary_key``
        the fields each record needs); the future gives its :class:`Reading`, ``None`` (the
        walk reads it itself) or raises :class:`PageReaderError`."""
        settings = orjson.dumps({"records_path": records_path, "primary_key": list(primary_key)})
        future: Future[Reading | None] = Future()
        if len(body) > MAX_BODY:
            future.set_result(None)
            return future
        with self._lock:
            if self._failure is not None:
                future.set_exception(self._failure)
                return future
            number, self._next = self._next, self._next + 1
            self._pending[number] = future
        assert self._process is not None
        assert self._process.stdin is not None
        stdin = self._process.stdin
        with self._writing:
            try:
                stdin.write(_REQUEST.pack(number, len(settings), len(body)))
                stdin.write(settings)
                stdin.write(body)
                stdin.flush()
            except (OSError, ValueError):  # the child is gone: its answers' thread says why
                pass
            except BaseException:  # stopped mid-request (a time limit): the stream is torn
                self._fail("was stopped in the middle of a request")
                raise
        return future

    def close(self) -> None:
        """End the child (its input closed; killed if it does not end in time); nothing
        in a process forked after it started (the child is its parent's)."""
        process = self._process
        if os.getpid() != self.owner or process is None:
            return
        self._closing = True
        if not self._writing.acquire(timeout=CLOSE_SECONDS):  # a write stuck on a full pipe
            process.kill()  # the write then fails at once
            self._writing.acquire()
        try:
            if process.stdin is not None and not process.stdin.closed:
                with contextlib.suppress(OSError):
                    process.stdin.close()
        finally:
            self._writing.release()
        try:
            process.wait(CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._answers is not None:
            self._answers.join()
        assert process.stdout is not None
        process.stdout.close()

    def _fail(self, reason: str) -> None:
        """Fail every page waiting and every later one (the first reason wins, logged once),
        the child killed: nothing more is written to it or read from it."""
        failure = PageReaderError(f"the page reader process {reason}")
        with self._lock:
            first = self._failure is None
            if first:
                self._failure = failure
            pending, self._pending = self._pending, {}
        if first and not self._closing:
            log.warning("%s; the walks read their pages themselves", failure)
        if self._process is not None:
            with contextlib.suppress(OSError):
                self._process.kill()
        for future in pending.values():
            future.set_exception(self._failure or failure)

    def _read_answers(self) -> None:
        """The answers' thread: each answer to its future; at the end, the rest failed."""
        process = self._process
        assert process is not None
        assert process.stdout is not None
        stdout = process.stdout
        try:
            while (answer := _read_answer(stdout)) is not None:
                number, reading = answer
                with self._lock:
                    future = self._pending.pop(number)
                future.set_result(reading)
        except BaseException as exc:  # unreadable: killed, so no write waits on it
            with contextlib.suppress(OSError):
                process.kill()
            self._fail(f"sent an answer that cannot be read ({exc!r})")
            return
        code = process.poll()
        if code is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = process.wait(CLOSE_SECONDS)
        self._fail(f"ended (exit code {code}) before answering")


def _widen(pipe: IO[bytes] | None) -> None:
    """Ask for :data:`PIPE_BYTES` of capacity in ``pipe``; where that cannot be had (not
    Linux, over the system's or the user's limit) the pipe stays as it is: only slower."""
    if pipe is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _read_answer(stream: IO[bytes]) -> tuple[int, Reading | None] | None:
    """The next answer, or ``None`` at the end of the stream."""
    head = stream.read(_ANSWER.size)
    if not head:
        return None
    number, count, meta_size, lines_size = _ANSWER.unpack(_exactly(head, _ANSWER.size))
    meta = _exactly(stream.read(meta_size), meta_size)
    lines = _exactly(stream.read(lines_size), lines_size)
    if count == NOT_HERE:
        return number, None
    data = orjson.loads(meta)
    return number, Reading(count, data["document"], data["profile"], lines)


def _exactly(data: bytes, size: int) -> bytes:
    if len(data) != size:
        raise EOFError(f"{len(data)} of {size} bytes")
    return data


# ------------------------------------------------------------------ the child's side


def read_page(body: bytes, records_path: str, primary_key: Sequence[str]) -> Reading | None:
    """What the child answers for ``body``: its :class:`Reading`, or ``None`` when the walk
    must read it itself (see the module's description)."""
    from data_pipeline.ingest.chunks import encode_lines
    from data_pipeline.ingest.documents import (
        MISSING,
        lookup,
        orjson_reads_exactly,
        path_blocked,
    )
    from data_pipeline.ingest.profile import FieldProfile
    from data_pipeline.ingest.records import all_have_keys

    if not records_path or not orjson_reads_exactly(body):
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    records = lookup(document, records_path)
    if records is MISSING or records is None:
        if path_blocked(document, records_path) is not None:
            return None  # a dead letter: the walk reads it and says why
        records = []
    if not isinstance(records, list) or not all_have_keys(records, primary_key):
        return None
    profile = FieldProfile()
    profile.add_many(records)
    if profile.truncated:
        return None
    lines = encode_lines(records)
    count = len(records)
    if count:  # found: the paginator reads the body without it
        _empty_records(document, records_path)
    del records
    return Reading(count, document, profile.to_dict(), lines)


def _empty_records(document: Any, records_path: str) -> None:
    """Put an empty array in place of the records array at ``records_path`` (when there)."""
    *parents, last = records_path.split(".")
    container: Any = document
    for part in parents:
        container = container[int(part)] if isinstance(container, list) else container[part]
    if isinstance(container, list):
        container[int(last)] = []
    else:
        container[last] = []


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """Answer every request of ``stdin`` in order, until it ends."""
    settings_seen: dict[bytes, tuple[str, list[str]]] = {}
    while head := stdin.read(_REQUEST.size):
        number, settings_size, body_size = _REQUEST.unpack(_exactly(head, _REQUEST.size))
        raw_settings = _exactly(stdin.read(settings_size), settings_size)
        body = _exactly(stdin.read(body_size), body_size)
        if raw_settings not in settings_seen:
            data = orjson.loads(raw_settings)
            settings_seen[raw_settings] = (data["records_path"], list(data["primary_key"]))
        answer = _answer(body, *settings_seen[raw_settings])
        del body
        if answer is None:
            _write_all(stdout, _ANSWER.pack(number, NOT_HERE, 0, 0))
        else:
            count, meta, lines = answer
            parts: tuple[bytes, ...] = (
                _ANSWER.pack(number, count, len(meta), len(lines)),
                meta,
                lines,
            )
            if len(meta) + len(lines) <= PIPE_BYTES:  # one write; a larger answer is not copied
                parts = (b"".join(parts),)
            for part in parts:
                _write_all(stdout, part)
        del answer
        stdout.flush()


def _write_all(stream: IO[bytes], data: bytes) -> None:
    """Write all of ``data``: an unbuffered stream (``PYTHONUNBUFFERED``, ``-u``) writes a
    part only when a signal stops the write midway (a debugger, a profiler, ``SIGSTOP``),
    and an answer cut short would tear the stream for every later answer."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        view = view[written if written is not None else 0 :]


def _answer(
    body: bytes, records_path: str, primary_key: Sequence[str]
) -> tuple[int, bytes, bytes] | None:
    """The count, meta and lines answered for ``body``, or ``None`` ("not here") for a page
    the child cannot take (nesting deeper than orjson or json encode, say: the walk reads
    it and says why), or whose answer would not fit the wire format."""
    try:
        reading = read_page(body, records_path, primary_key)
        if reading is None:
            return None
        meta = orjson.dumps({"document": reading.document, "profile": reading.profile})
    except Exception:  # RecursionError, orjson's TypeError: the walk's own reading decides
        return None
    if max(len(meta), len(reading.lines)) >= NOT_HERE:
        return None
    return reading.count, meta, reading.lines


def main() -> None:
    """The child: no collector (parsed JSON has no cycles), no signals but SIGKILL, serve."""
    import gc
    import signal

    gc.disable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        _serve(sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:  # the parent is gone: what is left of an answer is dropped, not
        # flushed again at exit ("Exception ignored" on the stderr shared with its log)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
