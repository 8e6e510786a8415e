"""Remembering that a contract passed a lane's validator, so later runs skip the probe.

A lane's engine-backed rule (DuckDB binding a check or a transform) costs the engine's
import and a connection at every start. A validator marked with :func:`remembered` is a
pure function of the contract and of the code it names; when it found no problem, a small
file named by a hash of (contract, validator, that code's size and mtime, Python) says so,
and the next run with the same inputs skips it. Failures are never remembered: a bad
contract is judged, and reported, every time. The memo is best effort: a directory that
cannot be read or written only means the validator runs. A skipped validator is a skipped
safety check, so only a regular file this user owns and alone may write counts (the cache
may sit in a directory others can write, e.g. a shared ``XDG_CACHE_HOME``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TypeVar

from etl_core.contracts.model import Contract

__all__ = ["PassMemo", "default_cache_dir", "read_outside_state", "remembered"]

F = TypeVar("F", bound=Callable[..., object])
_DEPENDS = "__contract_memo_depends__"
_SUBDIR = "contract-checks"
_MODEL = "etl_core.contracts.model"
"""The contract's model: its derived values (a column's SQL type) are read by validators."""
_log = logging.getLogger(__name__)
_OUTSIDE: ContextVar[list[str] | None] = ContextVar("contract_memo_outside", default=None)


def remembered(*modules: str) -> Callable[[F], F]:
    """Mark a validator as depending only on the contract (and its model), its own module
    and ``modules`` (located without importing them), so its successes may be remembered."""

    def mark(validator: F) -> F:
        setattr(validator, _DEPENDS, tuple(modules))
        return validator

    return mark


def read_outside_state(what: str) -> None:
    """Said by a :func:`remembered` validator whose verdict this time read ``what`` beyond
    the contract and its code (a file, an extension): this pass is not remembered."""
    seen = _OUTSIDE.get()
    if seen is not None:
        seen.append(what)


@contextmanager
def outside_reads() -> Iterator[list[str]]:
    """Collect what a validator run inside says it read beyond its inputs."""
    seen: list[str] = []
    token = _OUTSIDE.set(seen)
    try:
        yield seen
    finally:
        _OUTSIDE.reset(token)


def default_cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/etl``, else ``~/.cache/etl``: where remembered verdicts live;
    ``None`` (nothing remembered) when neither names an absolute directory (a relative
    ``XDG_CACHE_HOME`` is ignored, as the XDG specification says; no home: no cache)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(base):
        return Path(base) / "etl"
    home = os.path.expanduser("~")
    return Path(home) / ".cache" / "etl" if os.path.isabs(home) else None


class PassMemo:
    """The verdicts "validator V found no problem in contract C" kept under ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory) / _SUBDIR
        self._code: dict[str, str | None] = {}

    def key(
        self, validator: Callable[[Contract], Iterable[object]], contract: Contract
    ) -> str | None:
        """The verdict's name for ``validator`` over ``contract``; ``None`` when the
        validator is not marked :func:`remembered` or its code cannot be located."""
        depends = getattr(validator, _DEPENDS, None)
        if depends is None:
            return None
        name = f"{validator.__module__}.{validator.__qualname__}"
        code = self._code.get(name)
        if name not in self._code:
            code = self._code[name] = _code_fingerprint((_MODEL, validator.__module__, *depends))
        if code is None:
            return None
        import hashlib  # here: a start with the memo off does not pay for it

        digest = hashlib.sha256()
        for part in (sys.version, name, code, repr(contract)):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\0")
        return digest.hexdigest()

    def passed(self, key: str) -> bool:
        """Whether a run of this user remembered ``key`` as passed: a regular file (not a
        link, pipe or directory) this user owns and alone may write, holding ``key``."""
        try:
            handle = os.open(self.directory / key, os.O_RDONLY | _NO_FOLLOW | os.O_NONBLOCK)
        except (OSError, ValueError):
            return False
        try:
            status = os.fstat(handle)
            if not _private(status, stat.S_ISREG):
                return False
            if os.read(handle, len(key) + 1) != key.encode("ascii"):
                return False
            _mark_used(handle, status)
            return True
        except (OSError, ValueError):
            return False
        finally:
            os.close(handle)

    def remember(self, key: str) -> None:
        """Record ``key`` as passed: written whole to a temporary file, then renamed."""
        import tempfile  # here: only a run that found a new pass writes

        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private(os.stat(self.directory), stat.S_ISDIR):
                _log.debug("contract memo not written: %s is not private", self.directory)
                return
            handle, temporary = tempfile.mkstemp(prefix=".", dir=self.directory)
            try:
                with os.fdopen(handle, "w", encoding="ascii") as out:
                    out.write(key)
                os.replace(temporary, self.directory / key)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self._prune()
        except OSError as exc:
            _log.debug("contract memo not written in %s: %s", self.directory, exc)

    def _prune(self) -> None:
        """Keep the :data:`KEEP` verdicts used last (every upgrade or contract edit makes new
        names, and the old ones would pile up; a pruned verdict is only judged again) and
        drop temporary files a crashed writer left a day ago or more."""
        entries = []
        stale = time.time_ns() - _TOUCH_AFTER_NS
        with os.scandir(self.directory) as scan:
            for entry in scan:
                if not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    modified = entry.stat(follow_symlinks=False).st_mtime_ns
                except FileNotFoundError:  # another run pruned (or renamed) it once listed
                    continue
                if len(entry.name) == _KEY_LENGTH:
                    entries.append((modified, entry.path))
                elif entry.name.startswith(".") and modified < stale:
                    Path(entry.path).unlink(missing_ok=True)  # a writer that died mid-write
        if len(entries) <= KEEP:
            return
        entries.sort()
        for _, path in entries[: len(entries) - KEEP]:
            Path(path).unlink(missing_ok=True)


KEEP = 512
"""Verdicts kept in a cache directory; the least recently used go first."""
_KEY_LENGTH = 64
_TOUCH_AFTER_NS = 86_400 * 10**9
"""A verdict read is marked used (its mtime) at most once a day: a run writes nothing."""
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _mark_used(handle: int, status: os.stat_result) -> None:
    if time.time_ns() - status.st_mtime_ns < _TOUCH_AFTER_NS:
        return
    with contextlib.suppress(OSError):
        os.utime(handle)


def _private(status: os.stat_result, kind: Callable[[int], bool]) -> bool:
    """Whether ``status`` is of ``kind``, owned by this user and writable by no other."""
    owner = getattr(os, "geteuid", None)
    mine = owner is None or status.st_uid == owner()
    return kind(status.st_mode) and mine and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _code_fingerprint(modules: Iterable[str]) -> str | None:
    """Size and modification time of each module's file, found without importing it."""
    parts = []
    for module in modules:
        path = _module_file(module)
        if path is None:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        parts.append(f"{module}={path}:{stat.st_size}:{stat.st_mtime_ns}")
    return ";".join(parts)


def _module_file(module: str) -> str | None:
    loaded = sys.modules.get(module)
    if loaded is not None:
        return getattr(loaded, "__file__", None)
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.has_location else None
