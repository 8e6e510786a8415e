"""Tar archives, read strictly forward (a compressed tar arrives here through
:mod:`~file_processing.archives.compressed`): links, devices and FIFOs refused, a
truncated or broken header refused instead of ending the archive quietly, extended
headers bounded before ``tarfile`` reads them into memory."""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Self, cast

from file_processing.archives.base import (
    STREAM_ERRORS,
    ArchiveFormat,
    Layer,
    Member,
    Readable,
    check_unique,
    member_name,
    refusal,
)
from file_processing.errors import RefusedError
from file_processing.limits import MIB
from file_processing.reasons import Reason
from file_processing.sniff import Kind

__all__ = ["TarFormat"]

_TAR_ERRORS: tuple[type[BaseException], ...] = (tarfile.TarError, *STREAM_ERRORS)

# tarfile keeps these header errors out of its public names; they tell a proper
# end-of-archive block from a truncated or broken header.
_EOF_HEADER: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_TRUNCATED_HEADER: tuple[type[Exception], ...] = (
    tarfile.EmptyHeaderError,  # type: ignore[attr-defined]
    tarfile.TruncatedHeaderError,  # type: ignore[attr-defined]
)
_TAR_META_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)
_MAX_TAR_META_BYTES = MIB


class TarFormat(ArchiveFormat):
    """A POSIX or GNU tar archive (``ustar`` at offset 257), bare or compressed."""

    kind = Kind.TAR
    packings = frozenset({"tar"})
    suffixes = (".tar",)

    def members(self, layer: Layer) -> Iterator[Member]:
        """Yield the tar's regular files in archive order, read strictly forward from
        ``layer.source`` (a decompressor's output too)."""
        session, name = layer.session, layer.name
        with _open_tar(layer.source, name) as archive:
            seen: set[str] = set()
            while (info := _next_tar_entry(archive, name)) is not None:
                path = member_name(info.name, name)
                member_path = f"{name}/{path}"
                session.count_entry(member_path)
                if info.isdir():
                    continue
                _check_tar_type(info, member_path)
                check_unique(path, seen, member_path)
                file, size = session.spool(_tar_reader(archive, info, member_path), member_path)
                yield from layer.settle(file, size, member_path)


class _StrictTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses a truncated or broken header instead of ending quietly.

    tarfile treats a header it cannot read (past the first) as the end of the
    archive, which would turn a truncated delivery into silently lost members. Its
    refusals name no archive (tarfile does not say which); :func:`_named` adds it.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except _EOF_HEADER:
            raise  # a zero block: the archive's proper end marker
        except _TRUNCATED_HEADER as exc:
            raise RefusedError(
                Reason.ARCHIVE_TRUNCATED, f"tar: archive ends without its end marker ({exc})"
            ) from exc
        except tarfile.HeaderError as exc:
            raise RefusedError(Reason.ARCHIVE_CORRUPT, f"tar: invalid header ({exc})") from exc

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        # Extended headers are read into memory whole; bound them before tarfile does.
        if self.type in _TAR_META_TYPES and self.size > _MAX_TAR_META_BYTES:
            raise RefusedError(
                Reason.ARCHIVE_CORRUPT,
                f"tar: extended header of {self.size} bytes exceeds {_MAX_TAR_META_BYTES}",
            )
        return cast(tarfile.TarInfo, super()._proc_member(tarfile_))  # type: ignore[misc]


@contextmanager
def _open_tar(source: Readable, name: str) -> Iterator[tarfile.TarFile]:
    # Stream mode ("r|") reads strictly forward: no seeking, bounded buffers.
    try:
        archive = tarfile.open(fileobj=cast(IO[bytes], source), mode="r|", tarinfo=_StrictTarInfo)  # noqa: SIM115
    except RefusedError as exc:
        raise _named(exc, name) from exc.__cause__
    except _TAR_ERRORS as exc:
        raise refusal(exc, "tar", name) from exc
    with archive:
        yield archive


def _next_tar_entry(archive: tarfile.TarFile, name: str) -> tarfile.TarInfo | None:
    try:
        return archive.next()
    except RefusedError as exc:
        raise _named(exc, name) from exc.__cause__
    except _TAR_ERRORS as exc:
        raise refusal(exc, "tar", name) from exc


def _named(exc: RefusedError, name: str) -> RefusedError:
    """``exc``, naming the archive ``name`` when it names no member (a header refused by
    :class:`_StrictTarInfo`), so the refusal says which layer of the delivery is broken."""
    if exc.member is not None:
        return exc
    return RefusedError(exc.reason, exc.message, member=name)


def _check_tar_type(info: tarfile.TarInfo, member_path: str) -> None:
    if info.issym() or info.islnk():
        kind = "symbolic" if info.issym() else "hard"
        raise RefusedError(
            Reason.ARCHIVE_LINK, f"{kind} link to {info.linkname!r}", member=member_path
        )
    if not info.isreg():
        what = "FIFO" if info.isfifo() else "device" if info.isdev() else "non-regular file"
        raise RefusedError(
            Reason.ARCHIVE_SPECIAL_FILE,
            f"{what} (tar type {info.type!r})",
            member=member_path,
        )


def _tar_reader(
    archive: tarfile.TarFile, info: tarfile.TarInfo, member_path: str
) -> Callable[[int], bytes]:
    try:
        handle = archive.extractfile(info)
    except _TAR_ERRORS as exc:
        raise refusal(exc, "tar", member_path) from exc
    if handle is None:
        raise RefusedError(Reason.ARCHIVE_SPECIAL_FILE, "member has no data", member=member_path)

    def read(size: int) -> bytes:
        try:
            return handle.read(size)
        except _TAR_ERRORS as exc:
            raise refusal(exc, "tar", member_path) from exc

    return read
