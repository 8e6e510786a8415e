"""The local directory backend (``file:///abs/dir``), with S3's semantics.

Keys map to files below the root directory. Writes go to a temporary file in
the target directory and are renamed into place (``os.replace``), so readers
never see half a file and concurrent writers of one key leave exactly one
complete version. The ETag is the MD5 of the content, which is what S3 reports
for an object written in a single PUT.

Differences from S3 that a filesystem imposes: a key cannot also be a "folder"
of other keys (``a`` and ``a/b`` cannot both exist), file names starting with
``.etl-partial-`` are reserved for in-progress writes, and presigned URLs are
plain ``file://`` URLs that do not expire.

The ETag is computed by streaming the file on every ``head`` and ``list`` (no
cache can go stale), so listing a large tree reads every byte of it: the local
backend is meant for development and small deployments.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import hashlib
import io
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar
from urllib.parse import unquote, urlsplit

from etl_core.config_files import not_regular, open_without_waiting
from etl_core.errors import (
    InvalidKeyError,
    NotAnObjectError,
    ObjectConflictError,
    ObjectNotFoundError,
    StorageConfigError,
    StorageError,
)

from .base import (
    DEFAULT_PART_SIZE,
    ObjectInfo,
    ObjectStore,
    ObjectWriter,
    VersionedObject,
    check_expires,
    check_part_size,
    check_range,
)
from .durability import PENDING_WRITES, DeferredWrites, fsync_directory
from .etags import recorded_etag, remember_etag
from .keys import validate_key, validate_prefix

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = ["PARTIAL_FILE_PREFIX", "LocalObjectStore"]

logger = logging.getLogger(__name__)

PARTIAL_FILE_PREFIX = ".etl-partial-"
"""Name prefix of in-progress writes; such files are never listed."""

_CHUNK = 1024 * 1024
_PARENT_RETRIES = 5  # a concurrent delete may prune an empty parent directory under us
T = TypeVar("T")


class LocalObjectStore(ObjectStore):
    """Objects as files below a local directory: the embedded default backend.

    Args:
        root: the store's directory; created on first write.
        fsync: flush each written file (and its directory entry) to disk
            before it becomes visible, so a crash cannot leave a truncated object.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self._root = Path(os.path.abspath(os.fspath(root)))
        self._fsync = fsync

    @property
    def root(self) -> Path:
        """The absolute directory holding the objects."""
        return self._root

    @property
    def fsync(self) -> bool:
        """Whether written and moved-in files are flushed to disk before they become visible
        (a file flushed ahead by its writer makes that flush cheap)."""
        return self._fsync

    @property
    def url(self) -> str:
        return self._root.as_uri()

    def check(self, *, timeout: float = 5.0) -> None:
        if not self._root.is_dir():
            what = "is not a directory" if self._root.exists() else "does not exist"
            raise StorageConfigError(f"the store {self.url} {what}", url=self.url)

    # ------------------------------------------------------------------ reads

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return (info for info, _ in self._listing(prefix, addressable=True))

    def list_unaddressable(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return (info for info, _ in self._listing(prefix, addressable=False))

    def list_every(self, prefix: str = "") -> Iterator[tuple[ObjectInfo, bool]]:
        return self._listing(prefix, addressable=None)

    def head_unaddressable(self, key: str) -> ObjectInfo:
        with self._open_object(key, self._raw_path(key)) as stream:
            return _describe(key, stream)

    def copy_unaddressable(self, key: str, dst: str, *, etag: str) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        with self._open_object(key, self._raw_path(key)) as source, self.open_write(dst) as target:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                target.write(chunk)
            if digest.hexdigest() != etag:  # raising here abandons the copy
                raise ObjectConflictError(
                    f"{key!r} changed while it was copied (expected ETag {etag})",
                    key=key,
                    url=self.url,
                )

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def head(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with self._open_object(key, path) as stream:
            return _describe(key, stream)

    def open_read(self, key: str, *, start: int | None = None, end: int | None = None) -> BinaryIO:
        first, end = check_range(start, end)
        path = self._path(key)
        raw = self._open_object(key, path)
        if first:
            raw.seek(first)
        if end is None:
            return io.BufferedReader(raw, buffer_size=_CHUNK)
        return io.BufferedReader(_LimitedReader(raw, end - first), buffer_size=_CHUNK)

    def read_versioned(self, key: str) -> VersionedObject:
        # One open file is one version: writers replace the file by rename, never in place.
        with self._open_object(key, self._path(key)) as stream:
            data = stream.readall()
        return VersionedObject(key, data, hashlib.md5(data, usedforsecurity=False).hexdigest())

    # ----------------------------------------------------------------- writes

    @contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Files written in the block stay in their partial files, unflushed, until it
        ends: then they are flushed together (one ``syncfs``), renamed into place and the
        renames flushed (one more); none becomes visible when the block fails
        (:mod:`etl_core.storage.durability`). Without ``fsync`` nothing is deferred."""
        if not self._fsync or PENDING_WRITES.get() is not None:
            yield
            return
        pending = DeferredWrites()
        token = PENDING_WRITES.set(pending)
        try:
            yield
        except BaseException:
            PENDING_WRITES.reset(token)
            pending.discard()
            raise
        PENDING_WRITES.reset(token)
        try:
            pending.publish()
        except OSError as exc:
            raise StorageError(
                f"cannot publish the writes of a deferred block in {self.url}: {exc}",
                url=self.url,
            ) from exc

    def open_write(self, key: str, *, part_size: int = DEFAULT_PART_SIZE) -> ObjectWriter:
        check_part_size(part_size)
        path = self._path(key)
        return _LocalWriter(key, path, self.url, fsync=self._fsync)

    def move_in(self, path: str | os.PathLike[str], key: str) -> int:
        """Link the file into the key's directory as a partial write, record its ETag and
        publish it like a written one (flushed first); a file on another filesystem, or
        with another name still linked to it, is copied instead."""
        source = Path(path)
        target = self._path(key)
        _check_not_folder(key, target, self.url)
        temp = _in_parent(key, target, self.url, lambda: _link_temp(source, target.parent), "write")
        if temp is None:
            return super().move_in(path, key)
        try:
            size = _adopt(temp, fsync=self._fsync and PENDING_WRITES.get() is None)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        if size is None:  # another name links it too: given back, and copied instead
            os.link(temp, source)
            temp.unlink()
            return super().move_in(path, key)
        _place(temp, target, key, self.url, fsync=self._fsync)
        return size

    def copy(self, src: str, dst: str) -> None:
        src_path = self._path(src)
        self._path(dst)
        if src == dst:
            self.head(src)
            return
        with self._open_object(src, src_path) as source, self.open_write(dst) as target:
            shutil.copyfileobj(source, target, _CHUNK)

    def move(self, src: str, dst: str) -> None:
        src_path = self._path(src)
        dst_path = self._path(dst)
        if src == dst:
            self.head(src)
            return
        if not src_path.is_file():
            raise ObjectNotFoundError(
                f"cannot move {src!r}: no such object in {self.url}", key=src, url=self.url
            )
        _check_not_folder(dst, dst_path, self.url)
        _in_parent(dst, dst_path, self.url, lambda: os.replace(src_path, dst_path), "move to")
        _prune_empty_parents(src_path, self._root)

    def put_if(self, key: str, data: ReadableBuffer, *, etag: str | None) -> str:
        path = self._path(key)
        payload = bytes(data)
        with _in_parent(key, path, self.url, lambda: _DirectoryLock(path.parent), "lock"):
            current = self.head(key).etag if path.is_file() else None
            if current != etag:
                expected = "no object" if etag is None else f"ETag {etag}"
                found = "no object" if current is None else f"ETag {current}"
                raise ObjectConflictError(
                    f"conditional put of {self.location_for(key)} failed: expected {expected}, "
                    f"found {found}",
                    key=key,
                    url=self.url,
                )
            self.write_bytes(key, payload)
        return hashlib.md5(payload, usedforsecurity=False).hexdigest()

    def delete_if(self, key: str, *, etag: str) -> None:
        path = self._path(key)
        if not path.is_file():  # gone: nothing to lock (locking would make its folder)
            return
        with _in_parent(key, path, self.url, lambda: _DirectoryLock(path.parent), "lock"):
            try:
                current = self.head(key).etag
            except ObjectNotFoundError:
                return
            if current != etag:
                raise ObjectConflictError(
                    f"conditional delete of {self.location_for(key)} failed: expected ETag {etag}, "
                    f"found ETag {current}",
                    key=key,
                    url=self.url,
                )
            try:
                path.unlink()
            except FileNotFoundError:
                return
            except OSError as exc:
                raise _storage_error(exc, "delete", key, self.url) from exc
        _prune_empty_parents(path, self._root)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            if path.is_dir():  # a "folder" of other keys is not an object
                return
            raise _storage_error(exc, "delete", key, self.url) from exc
        _prune_empty_parents(path, self._root)

    def remove_abandoned_writes(self, older_than: timedelta, prefix: str = "") -> int:
        validate_prefix(prefix)
        folder = prefix.rpartition("/")[0]  # partial files sit beside their target
        start = self._root.joinpath(*folder.split("/")) if folder else self._root
        cutoff = time.time() - older_than.total_seconds()
        removed = 0
        for directory, _, files in os.walk(start):
            for name in files:
                if name.startswith(PARTIAL_FILE_PREFIX) and _remove_if_older(
                    Path(directory, name), cutoff
                ):
                    removed += 1
        if removed:
            logger.info("removed %d abandoned partial write(s) under %s", removed, start)
        return removed

    # ------------------------------------------------------------------- URLs

    def presigned_url(self, key: str, *, expires: float | timedelta = 3600) -> str:
        """A ``file://`` URL for the object; it needs no signature and does not expire.

        ``urllib.request.urlopen`` reads it, so code written against S3's
        presigned URLs runs unchanged on the local backend.
        """
        check_expires(expires)
        return self._path(key).as_uri()

    def url_for(self, key: str) -> str:
        return self._path(key).as_uri()

    def key_at(self, location: str) -> str | None:
        """Also a plain path (what :meth:`location_for` shows, as a shell hands it on), and a
        file URL percent-decoded (a ``?`` or ``#`` typed in it is part of the name: a file
        URL has no query); through a symbolic link to the store's directory too. A ``..``
        segment is read as the filesystem reads it, after the links before it."""
        parts = urlsplit(location, allow_fragments=False)
        if parts.scheme.lower() == "file" and parts.netloc in ("", "localhost"):
            path = unquote(location[len(parts.scheme) + 1 :].removeprefix("//" + parts.netloc))
        elif not parts.scheme and os.path.isabs(location):
            path = location
        else:
            return None
        physical = (os.path.realpath(path), os.path.realpath(self._root))
        # Lexically (a link inside the store kept as its key) unless a ".." could follow a link.
        lexical = [] if ".." in path.split("/") else [(os.path.abspath(path), str(self._root))]
        for inside, root in (*lexical, physical):
            relative = os.path.relpath(inside, root)
            if relative != "." and relative != ".." and not relative.startswith("../"):
                return Path(relative).as_posix()
        return None

    def download(self, key: str, path: str | os.PathLike[str]) -> int:
        source = self._path(key)
        target = Path(path)
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except FileNotFoundError:
            raise ObjectNotFoundError(
                f"no object {key!r} in {self.url}", key=key, url=self.url
            ) from None
        except OSError:  # another file system, or links not allowed: copy the bytes
            return super().download(key, path)
        linked = target.stat()  # the object's own inode: a FIFO links too, yet is no object
        found = not_regular(linked.st_mode)
        if found is not None:
            target.unlink()
            raise self._not_an_object(key, found)
        return linked.st_size

    # -------------------------------------------------------------- internals

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.rpartition("/")[2].startswith(PARTIAL_FILE_PREFIX):
            raise InvalidKeyError(
                f"invalid key {key!r}: names starting with {PARTIAL_FILE_PREFIX!r} are reserved "
                "for in-progress writes in a local store",
                key=key,
                url=self.url,
            )
        return self._root.joinpath(*key.split("/"))

    def _raw_path(self, key: str) -> Path:
        """The file of a key as stored, refusing anything that could leave the root."""
        segments = key.split("/")
        if not key or "\x00" in key or any(s in {"", ".", ".."} for s in segments):
            raise InvalidKeyError(
                f"a local store cannot hold the key {key!r}: it could name a path outside "
                "the store",
                key=key,
                url=self.url,
            )
        return self._root.joinpath(*segments)

    def _open_object(self, key: str, path: Path) -> io.FileIO:
        """The object's file open for reading. No regular file (a directory, a FIFO: its
        open waits for no writer) is no object: :class:`NotAnObjectError` saying what."""
        try:
            fd = open_without_waiting(path)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFoundError(
                f"no object {key!r} in {self.url}", key=key, url=self.url
            ) from exc
        except OSError as exc:
            raise _storage_error(exc, "read", key, self.url) from exc
        try:
            found = not_regular(os.fstat(fd).st_mode)
        except OSError as exc:
            os.close(fd)
            raise _storage_error(exc, "read", key, self.url) from exc
        if found is not None:
            os.close(fd)
            raise self._not_an_object(key, found)
        os.set_blocking(fd, True)  # as a plain open: no read of it ever says "try again"
        raw = io.FileIO(fd, "r")
        raw.name = str(path)  # shown as the file was before, not as its descriptor
        return raw

    def _not_an_object(self, key: str, found: str) -> NotAnObjectError:
        return NotAnObjectError(
            f"no object {key!r} in {self.url}: the path there is {found}, not a regular file",
            key=key,
            url=self.url,
            found=found,
        )

    def _listing(
        self, prefix: str, *, addressable: bool | None
    ) -> Iterator[tuple[ObjectInfo, bool]]:
        """The objects under ``prefix`` of one kind (``addressable``), or of both (``None``)."""
        validate_prefix(prefix)
        folder, _, _ = prefix.rpartition("/")
        start = self._root.joinpath(*folder.split("/")) if folder else self._root
        return self._walk(start, f"{folder}/" if folder else "", prefix, addressable=addressable)

    def _walk(
        self, directory: Path, base: str, prefix: str, *, addressable: bool | None
    ) -> Iterator[tuple[ObjectInfo, bool]]:
        entries = self._sorted_entries(directory, base)
        for name_key, entry, is_dir in entries:
            if is_dir:
                if name_key.startswith(prefix) or prefix.startswith(name_key):
                    yield from self._walk(
                        Path(entry.path), name_key, prefix, addressable=addressable
                    )
            elif name_key.startswith(prefix):
                listed = self._describe_listed(name_key, Path(entry.path), addressable)
                if listed is not None:
                    yield listed

    def _sorted_entries(
        self, directory: Path, base: str
    ) -> builtins.list[tuple[str, os.DirEntry[str], bool]]:
        """Entries keyed so that walking them in order yields keys in S3's (byte) order."""
        try:
            with os.scandir(directory) as scan:
                entries = [*scan]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise _storage_error(exc, "list", base, self.url) from exc
        keyed: builtins.list[tuple[str, os.DirEntry[str], bool]] = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                keyed.append((f"{base}{entry.name}/", entry, True))
            elif entry.is_file() and not entry.name.startswith(PARTIAL_FILE_PREFIX):
                keyed.append((f"{base}{entry.name}", entry, False))
        keyed.sort(key=lambda item: item[0])
        return keyed

    def _describe_listed(
        self, key: str, path: Path, addressable: bool | None
    ) -> tuple[ObjectInfo, bool] | None:
        """The listed file and whether its key is valid, unless it is not of the kind
        ``addressable`` asks for (``None``: either)."""
        try:
            validate_key(key)
        except InvalidKeyError:
            valid = False
            if addressable:  # list_unaddressable() yields it
                logger.debug("listing leaves out a file whose name is not a valid key: %r", key)
                return None
        else:
            valid = True
            if addressable is False:
                return None
        try:
            with self._open_object(key, path) as stream:
                return _describe(key, stream), valid
        except ObjectNotFoundError:  # deleted between the directory scan and now
            return None
        except StorageError as exc:
            if not isinstance(exc.__cause__, PermissionError):
                raise
            unreadable = _unreadable(key, path, exc)
            return None if unreadable is None else (unreadable, valid)


class _LocalWriter(ObjectWriter):
    """Writes to ``.etl-partial-*`` beside the target, then ``os.replace``s it into place."""

    def __init__(self, key: str, path: Path, url: str, *, fsync: bool) -> None:
        _check_not_folder(key, path, url)
        fd, temp = _in_parent(key, path, url, lambda: _create_temp(path.parent), "write")
        super().__init__(key)
        self._path = path
        self._url = url
        self._fsync = fsync
        self._temp: Path | None = temp
        self._file = io.FileIO(fd, "w", closefd=True)
        self._digest = hashlib.md5(usedforsecurity=False)

    def _stage(self, data: memoryview) -> None:
        self._digest.update(data)
        try:
            while data:
                written = self._file.write(data) or 0
                data = data[written:]
        except OSError as exc:
            raise _storage_error(exc, "write", self.key, self._url) from exc

    def _publish(self) -> None:
        assert self._temp is not None
        deferred = self._fsync and PENDING_WRITES.get() is not None
        try:
            if self._fsync and not deferred:
                os.fsync(self._file.fileno())
            remember_etag(self._file.fileno(), self._digest.hexdigest())
            self._file.close()
        except OSError as exc:
            raise _storage_error(exc, "write", self.key, self._url) from exc
        temp, self._temp = self._temp, None
        _place(temp, self._path, self.key, self._url, fsync=self._fsync)

    def _discard(self) -> None:
        self._file.close()
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None


class _LimitedReader(io.RawIOBase):
    """At most ``limit`` bytes of an underlying raw stream (the end of a byte range)."""

    def __init__(self, raw: io.FileIO, limit: int) -> None:
        super().__init__()
        self._raw = raw
        self._remaining = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(view.nbytes, self._remaining)
        if wanted <= 0:
            return 0
        got = self._raw.readinto(view[:wanted]) or 0
        self._remaining -= got
        return got

    def close(self) -> None:
        self._raw.close()
        super().close()


def _describe(key: str, stream: io.FileIO) -> ObjectInfo:
    """Size, content MD5 and modification time of an open file.

    The MD5 is read from the file's ``user.etl.md5`` extended attribute when it
    was recorded for this exact size and modification time (by our writer, or by
    an earlier hash); otherwise the content is streamed through MD5 once and the
    result recorded, so listing a large local store does not re-read every file.
    """
    fd = stream.fileno()
    status = os.fstat(fd)
    etag = recorded_etag(fd, status)
    if etag is None:
        digest = hashlib.md5(usedforsecurity=False)
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
        etag = digest.hexdigest()
        remember_etag(fd, etag)
    return ObjectInfo(
        key=key,
        size=status.st_size,
        etag=etag,
        last_modified=datetime.fromtimestamp(status.st_mtime, UTC),
    )


UNREADABLE_ETAG = ""
"""The ETag a listing gives a local file it may not read: its MD5 is unknown."""


def _unreadable(key: str, path: Path, error: StorageError) -> ObjectInfo | None:
    """A listed file this process may not read, described without its content hash.

    Listing needs no read right on S3 either (an object whose GET is denied is still
    listed): the reader of that one object fails, naming it, while a listing of the
    prefix (a scan's, an inventory's) goes on to the others. ``None``: gone meanwhile.
    """
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _storage_error(exc, "list", key, error.url or "") from exc
    logger.warning("%s: listed without its content hash", error, extra={"key": key})
    return ObjectInfo(
        key=key,
        size=status.st_size,
        etag=UNREADABLE_ETAG,
        last_modified=datetime.fromtimestamp(status.st_mtime, UTC),
    )


def _place(temp: Path, path: Path, key: str, url: str, *, fsync: bool) -> None:
    """Make the complete (and, with ``fsync``, flushed) partial file ``temp`` the object
    at ``path``: now, its rename flushed, or with the other writes of a deferred block."""
    pending = PENDING_WRITES.get() if fsync else None
    if pending is not None:
        pending.add(temp, path)
        return
    try:
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise _storage_error(exc, "write", key, url) from exc
    if fsync:
        fsync_directory(path.parent)


def _adopt(temp: Path, *, fsync: bool) -> int | None:
    """Make a file linked in as a partial write the store's own, as if written now (mode,
    modification time, recorded ETag, flushed with ``fsync``); its size, or ``None`` when
    another name links it too (its bytes could change under the store)."""
    with open(temp, "rb") as stream:
        fd = stream.fileno()
        status = os.fstat(fd)
        if status.st_nlink != 1:
            return None
        # Recorded as it was written (a StagedFile) and unchanged since: not read again.
        etag = recorded_etag(fd, status)
        size = status.st_size
        os.fchmod(fd, _FILE_MODE)
        os.utime(fd)
        if etag is None:
            etag, size = _hash_file(stream)
        remember_etag(fd, etag)
        if fsync:
            os.fsync(fd)
    return size


def _link_temp(source: Path, directory: Path) -> Path | None:
    """A partial-write name in ``directory`` for ``source``'s file (``source`` unlinked),
    or ``None`` when the two are on different filesystems or linking is refused."""
    while True:
        candidate = directory / f"{PARTIAL_FILE_PREFIX}{secrets.token_hex(8)}"
        try:
            os.link(source, candidate)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                return None
            raise
        source.unlink()
        return candidate


def _hash_file(stream: BinaryIO) -> tuple[str, int]:
    """The MD5 (ETag) and size of an open file, read from its start."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _process_umask() -> int:
    """The process's umask, read without changing it where ``/proc`` tells it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # at import, before any thread of ours writes
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_process_umask()
"""What ``open`` gives a new file: a file moved in gets the same, whatever it had."""


def _create_temp(directory: Path) -> tuple[int, Path]:
    """Create a uniquely named partial file; permissions follow the umask like ``open``."""
    while True:
        candidate = directory / f"{PARTIAL_FILE_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
        return fd, candidate


def _in_parent(key: str, path: Path, url: str, action: Callable[[], T], verb: str) -> T:
    """Run ``action`` after creating ``path``'s parent; again if a delete pruned it meanwhile."""
    for attempt in range(_PARENT_RETRIES):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return action()
        except FileNotFoundError as exc:
            if path.parent.exists() or attempt == _PARENT_RETRIES - 1:
                raise _storage_error(exc, verb, key, url) from exc
        except OSError as exc:
            raise _storage_error(exc, verb, key, url) from exc
    raise AssertionError("unreachable")  # pragma: no cover


class _DirectoryLock:
    """An exclusive ``flock`` on a directory, serialising conditional writes inside it."""

    def __init__(self, directory: Path) -> None:
        self._fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _check_not_folder(key: str, path: Path, url: str) -> None:
    if path.is_dir():
        raise StorageError(
            f"cannot write {key!r} in {url}: other keys start with '{key}/', and a local store "
            "cannot hold an object and objects below it under the same name",
            key=key,
            url=url,
        )


def _prune_empty_parents(path: Path, root: Path) -> None:
    """Remove directories left empty by a delete or move, up to (not including) the root."""
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:
            return


def _storage_error(exc: OSError, verb: str, key: str, url: str) -> StorageError:
    reason = exc.strerror or str(exc)
    if exc.errno in {errno.ENOTDIR, errno.EEXIST}:
        reason = (
            "a parent of this key is itself an object, and a local store cannot hold an object "
            "and objects below it under the same name"
        )
    return StorageError(f"cannot {verb} {key!r} in {url}: {reason}", key=key, url=url)


def _remove_if_older(path: Path, cutoff: float) -> bool:
    """Delete ``path`` if it was last written before ``cutoff``; a file gone meanwhile is not."""
    try:
        if path.stat().st_mtime >= cutoff:
            return False
        path.unlink()
    except FileNotFoundError:  # finished (renamed into place) or removed meanwhile
        return False
    return True
