"""Remembering that a contract passed a lane's validator, so later runs skip the probe.

A lane's engine-backed rule (DuckDB binding a check or a transform) costs the engine's
import and a connection at every start. A validator marked with :func:`remembered` is a
pure function of the contract and of the code it names; when it found no problem, a small
file named by a hash of (contract, validator, that code's size and mtime, Python) says so,
and the next run with the same inputs skips it. Failures are never remembered: a bad
contract is judged, and reported, every time. The memo is best effort: a directory that
cannot be read or written only means the validator runs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from etl_core.contracts.model import Contract

__all__ = ["PassMemo", "default_cache_dir", "remembered"]

F = TypeVar("F", bound=Callable[..., object])
_DEPENDS = "__contract_memo_depends__"
_SUBDIR = "contract-checks"
_MODEL = "etl_core.contracts.model"
"""The contract's model: its derived values (a column's SQL type) are read by validators."""
_log = logging.getLogger(__name__)


def remembered(*modules: str) -> Callable[[F], F]:
    """Mark a validator as depending only on the contract (and its model), its own module
    and ``modules`` (located without importing them), so its successes may be remembered."""

    def mark(validator: F) -> F:
        setattr(validator, _DEPENDS, tuple(modules))
        return validator

    return mark


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/etl``, else ``~/.cache/etl``: where remembered verdicts live."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "etl"


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
        """Whether a run remembered ``key`` as passed (an unreadable memo: no)."""
        try:
            return (self.directory / key).read_text(encoding="ascii") == key
        except (OSError, ValueError):
            return False

    def remember(self, key: str) -> None:
        """Record ``key`` as passed: written whole to a temporary file, then renamed."""
        import tempfile  # here: only a run that found a new pass writes

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".", dir=self.directory)
            try:
                with os.fdopen(handle, "w", encoding="ascii") as out:
                    out.write(key)
                os.replace(temporary, self.directory / key)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            _log.debug("contract memo not written in %s: %s", self.directory, exc)


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
