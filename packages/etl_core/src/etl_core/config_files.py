"""Reading the configuration files an operator provides, whatever is at their path.

Every file the platform reads as configuration (``etl.toml``, the contracts of
``datasets/*.toml``, the API sources of ``sources/*.toml``, a contract's holiday file) is
read here, so a hostile one is refused alike everywhere, with a
:class:`~etl_core.errors.ConfigFileError` naming the file and what was expected:

- a path that is no regular file (a directory, say what a bind mount of a missing file
  leaves; a FIFO, which would wait for a writer for ever; a socket) is refused without
  being read; a character device is read like a file, so ``/dev/null`` is an empty one;
  a pipe is read only where the operator named the file (``pipes=True``: a settings file
  named by ``ETL_SETTINGS_FILE=/dev/stdin`` fed by a pipe, or ``<(vault read …)``), to
  its end, and refused when nothing was written to it (a FIFO without writer: no wait);
- a symlink loop, a missing or unreadable file: the system's reason;
- a file larger than :data:`MAX_CONFIG_FILE_BYTES` (1 MiB): refused before it is read;
- bytes that are not UTF-8 text: the line of the first bad byte; a UTF-8 byte order mark
  (what some Windows editors write first) is read past;
- TOML that does not parse (the parser's line and column), or whose arrays or tables nest
  deeper than the parser can follow (``a = [[[[…]]]]``).

The same checks, written once (:func:`open_without_waiting`, :func:`not_regular`,
:func:`read_file_bytes`), guard the other files a user names: a ``file:`` secret reference
(:mod:`etl_core.secrets`, where a character device is refused too) and the files of a
local object store (:class:`~etl_core.storage.LocalObjectStore`: a FIFO at a key is no object).
"""

from __future__ import annotations

import os
import stat
import time
import tomllib
from typing import Any

from etl_core.errors import ConfigFileError
from etl_core.units import format_byte_size

__all__ = [
    "MAX_CONFIG_FILE_BYTES",
    "ConfigFileError",
    "not_regular",
    "open_without_waiting",
    "read_config_text",
    "read_file_bytes",
    "read_toml",
]

MAX_CONFIG_FILE_BYTES = 1024 * 1024
"""The largest configuration file read (1 MiB): the largest contract is a few kilobytes;
a file past this is not configuration (a data file copied to the wrong name)."""

_BOM = "\ufeff"
_PIPED: dict[tuple[int, int], bytes] = {}
"""What each pipe read gave (by device and inode): settings are loaded again in one process
(a command's own flags), and a pipe, read to its end once, would then give nothing."""
_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFBLK: "a block device",
    stat.S_IFCHR: "a character device",
}


def open_without_waiting(path: str | os.PathLike[str]) -> int:
    """A descriptor open for reading on ``path``, whose open waited for no writer of a FIFO.
    It is non-blocking (no matter to a regular file): to read a pipe or device,
    ``os.set_blocking(fd, True)`` once its kind is checked (:func:`not_regular`).

    A file under a lease (shared by Samba's kernel oplocks, delegated by an NFS server) is
    opened once its holder gives it back, as a plain open waits for it: the non-blocking open
    starts the recall and fails, so it is tried again, for at most the kernel's
    ``lease-break-time`` (after which the kernel takes the lease back itself).

    Raises:
        OSError: the system's reason (missing, no permission, a symlink loop).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except BlockingIOError:  # a lease, being recalled (a FIFO's reader never gets this)
        if not stat.S_ISREG(os.stat(path).st_mode):  # a busy device: not waited on
            raise
        deadline = time.monotonic() + _lease_break_seconds() + 1
    pause = 0.002
    while True:
        time.sleep(pause)
        try:
            return os.open(path, flags)
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
        pause = min(pause * 2, 0.1)


def _lease_break_seconds() -> float:
    """How long the kernel lets a lease holder take to give its file back (45 s unless
    ``/proc/sys/fs/lease-break-time`` says otherwise)."""
    try:
        with open("/proc/sys/fs/lease-break-time", encoding="ascii") as setting:
            return max(0.0, float(setting.read().strip()))
    except (OSError, ValueError):
        return 45.0


def not_regular(mode: int, *, devices: bool = False) -> str | None:
    """What a file of ``mode`` (its ``st_mode``) is, when it is no regular file to read:
    ``"a FIFO (named pipe)"``, ``"a directory"``, ``"a socket"``, ``"a block device"``,
    ``"a character device"`` (with ``devices``, a character device is read like a file:
    ``None``); ``None`` for a regular file."""
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFCHR and devices:
        return None
    return _KINDS.get(kind)


def read_file_bytes(
    path: str | os.PathLike[str],
    *,
    limit: int,
    what: str = "a configuration file",
    pipes: bool = False,
    devices: bool = True,
) -> bytes:
    """The bytes of the file at ``path`` (symlinks followed), at most ``limit`` of them.

    With ``pipes`` (a file the operator named), a pipe or FIFO is read to its end (its
    writer waited for while it is open), once per process (read again, the bytes it gave),
    and refused when it gives nothing. Without ``devices``, a character device is refused
    too (``/dev/zero`` as a secret file); with it, it is read like a file, for what it
    gives at once: never waited on, a terminal nothing was typed to is refused.

    Raises:
        ConfigFileError: the file is missing or unreadable, is no regular file, or is
            larger than ``limit`` bytes (``what`` it is says what may be that large). Its
            ``problem`` names what was found, never what the file holds.
    """
    name = str(path)
    try:  # opening a FIFO waits for no writer (the type is refused just below)
        fd = open_without_waiting(name)
    except OSError as exc:
        raise ConfigFileError(name, exc.strerror or type(exc).__name__) from exc
    try:
        info = os.fstat(fd)
        piped = pipes and stat.S_ISFIFO(info.st_mode)
        kind = None if piped else not_regular(info.st_mode, devices=devices)
        if kind is not None:
            raise ConfigFileError(name, f"it is {kind}, not a regular file")
        if piped:  # a writer that has the pipe open is waited for; none: end of file at once
            os.set_blocking(fd, True)
        if info.st_size > limit:
            raise ConfigFileError(name, _too_large(info.st_size, limit, what))
        piped_as = (info.st_dev, info.st_ino)
        if piped and piped_as in _PIPED:  # a pipe gives its bytes once: read again, the same
            data = _PIPED[piped_as]
        else:
            with open(fd, "rb", closefd=False) as stream:
                read = stream.read(limit + 1)
            if read is None:  # a device with nothing to read yet (a terminal): not waited on
                device = "a terminal" if os.isatty(fd) else "a character device"
                raise ConfigFileError(name, f"it is {device} nothing was written to")
            data = read
            if piped and data:
                _PIPED[piped_as] = data
    except OSError as exc:
        raise ConfigFileError(name, exc.strerror or type(exc).__name__) from exc
    finally:
        os.close(fd)
    if len(data) > limit:  # grew since, or a device without a size
        raise ConfigFileError(name, _too_large(None, limit, what))
    if piped and not data:  # never silently the defaults: a FIFO nobody writes to, say
        problem = "it is a FIFO (named pipe) nothing was written to; expected settings"
        raise ConfigFileError(name, problem)
    return data


def read_config_text(
    path: str | os.PathLike[str], *, limit: int = MAX_CONFIG_FILE_BYTES, pipes: bool = False
) -> str:
    """The text of the configuration file at ``path`` (a byte order mark dropped).

    With ``pipes`` (a file the operator named), a pipe or FIFO is read to its end (its
    writer waited for while it is open), once per process (read again, the text it gave),
    and refused when it gives nothing.

    Raises:
        ConfigFileError: the file is missing or unreadable, is no regular file, is larger
            than ``limit`` bytes, or is not UTF-8 text.
    """
    data = read_file_bytes(path, limit=limit, pipes=pipes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = f"it is not UTF-8 text (line {line}: byte 0x{data[exc.start]:02x})"
        raise ConfigFileError(str(path), problem, stage="parse") from None
    return text.removeprefix(_BOM)


def read_toml(
    path: str | os.PathLike[str], *, limit: int = MAX_CONFIG_FILE_BYTES, pipes: bool = False
) -> tuple[str, dict[str, Any]]:
    """The text of the TOML file at ``path`` and its document.

    Raises:
        ConfigFileError: as :func:`read_config_text`, or the text is not valid TOML (the
            :class:`tomllib.TOMLDecodeError`, with its line, is the error's cause), or it
            nests arrays or tables deeper than the parser can follow.
    """
    text = read_config_text(path, limit=limit, pipes=pipes)
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(str(path), str(exc), stage="parse") from exc
    except RecursionError:  # tomllib recurses once per level: a[[[[…]]]] 100 000 deep
        problem = "its arrays or tables nest too deeply to be read; expected a few levels"
        raise ConfigFileError(str(path), problem, stage="parse") from None


def _too_large(size: int | None, limit: int, what: str) -> str:
    said = f"it is {size} bytes, " if size is not None else "it is "
    return f"{said}larger than the {format_byte_size(limit)} {what} may be"
