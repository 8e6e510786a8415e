"""The archive formats' contract: every format of ``ARCHIVE_FORMATS`` yields its members with
their bytes and paths, and is refused the same way (reason code, the member named, no file
left) when it is a bomb, too large, truncated, contradicts the declared packing or is plain
data named like it; containers also refuse traversal, links and duplicate entries.

A new format runs every test here once it has a :class:`Case` in ``CASES`` (how to write
one), which ``test_every_registered_format_has_a_contract_case`` demands."""

from __future__ import annotations

import bz2
import gzip
import importlib
import inspect
import io
import lzma
import pickle
import random
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, get_args, get_type_hints

import pytest

from etl_core.contracts import Contract
from etl_core.errors import ConfigError, UnknownKindError
from file_processing.archives import (
    ARCHIVE_FORMATS,
    ArchiveFormat,
    Compressed,
    Layer,
    Member,
    Session,
    TarFormat,
)
from file_processing.archives.base import Peeked, check_unique, member_name
from file_processing.errors import RefusedError
from file_processing.limits import MIB, UnpackLimits
from file_processing.reasons import Reason
from file_processing.sniff import Kind
from file_processing.unpack import Packing, unpack

_RANDOM = random.Random(20261207)
BODY = b"id,value\n" + bytes(_RANDOM.getrandbits(8) for _ in range(64 * 1024))
"""Member bytes that do not compress: a cut in the archive's middle falls inside them."""
ZEROS = b"\0" * (4 * MIB)


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate names we ask for
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries.items():
                zf.writestr(zipfile.ZipInfo(name.removesuffix("#dup")), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def zip_link(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.external_attr = (0o120777 << 16) | 0x20
        zf.writestr(info, target)
    return buffer.getvalue()


def tar_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name.removesuffix("#dup"))
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def tar_link(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tf.addfile(info)
    return buffer.getvalue()


@dataclass(frozen=True)
class Case:
    """How to write a format: ``pack`` makes an archive of the entries (a single stream
    takes one, its name unused); ``link`` one holding a symbolic link, for containers."""

    pack: Callable[[dict[str, bytes]], bytes]
    link: Callable[[str, str], bytes] | None = None

    @property
    def container(self) -> bool:
        """Whether the format keeps member names (a single-stream compressor does not)."""
        return self.link is not None


def single(compress: Callable[[bytes], bytes]) -> Callable[[dict[str, bytes]], bytes]:
    def pack(entries: dict[str, bytes]) -> bytes:
        (data,) = entries.values()
        return compress(data)

    return pack


CASES: dict[str, Case] = {
    "zip": Case(zip_of, zip_link),
    "tar": Case(tar_of, tar_link),
    "gzip": Case(single(gzip.compress)),
    "bzip2": Case(single(bz2.compress)),
    "xz": Case(single(lzma.compress)),
}

NAMES = sorted(ARCHIVE_FORMATS)
CONTAINERS = [n for n in NAMES if n in CASES and CASES[n].container]
COMPRESSORS = [n for n in NAMES if isinstance(ARCHIVE_FORMATS[n], Compressed)]


def delivery(fmt: ArchiveFormat) -> str:
    return f"data.csv{fmt.suffixes[0]}"


def entries(name: str, **more: bytes) -> dict[str, bytes]:
    """Two members for a container, the one for a single stream."""
    if CASES[name].container:
        return {"a.csv": BODY, "sub/b.csv": BODY[::-1], **more}
    return {"data.csv": BODY}


def written(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / delivery(ARCHIVE_FORMATS[name])
    path.write_bytes(data)
    return path


def contents(source: Any, name: str, workdir: Path, **kwargs: Any) -> dict[str, bytes]:
    return {
        m.path: m.file.read_bytes() for m in unpack(source, name=name, workdir=workdir, **kwargs)
    }


def refused(source: Path | _Pipe, workdir: Path, **kwargs: Any) -> RefusedError:
    """Unpack to the end expecting a refusal that pickles; no scratch file may survive it
    (a ``_Pipe`` needs the ``name`` given)."""
    if "name" not in kwargs:
        assert isinstance(source, Path)
        kwargs["name"] = source.name
    with pytest.raises(RefusedError) as caught:
        contents(source, workdir=workdir, **kwargs)
    assert list(workdir.iterdir()) == []
    error = pickle.loads(pickle.dumps(caught.value))
    assert (error.reason, error.member) == (caught.value.reason, caught.value.member)
    return caught.value


class _Pipe:
    """A stream that cannot seek, as a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(size)

    def seekable(self) -> bool:
        return False


# ------------------------------------------------------------------ the registry


def test_every_registered_format_has_a_contract_case() -> None:
    assert set(CASES) == set(ARCHIVE_FORMATS), "add a Case for the new format to CASES"


@pytest.mark.parametrize("name", NAMES)
def test_a_format_is_registered_under_the_name_of_its_kind(name: str) -> None:
    fmt = ARCHIVE_FORMATS[name]

    assert fmt.name == fmt.kind.value == name
    assert fmt.suffixes
    assert all(s.startswith(".") and s == s.lower() for s in fmt.suffixes)


@pytest.mark.parametrize("name", NAMES)
def test_a_format_implements_one_method_of_one_argument_the_layer(name: str) -> None:
    members = inspect.signature(ARCHIVE_FORMATS[name].members)

    assert ArchiveFormat.__abstractmethods__ == {"members"}
    assert [(p.name, p.annotation) for p in members.parameters.values()] == [("layer", "Layer")]


def test_every_archive_kind_sniff_opens_has_exactly_one_format() -> None:
    kinds = [fmt.kind for fmt in ARCHIVE_FORMATS.values()]

    assert sorted(kinds) == sorted(k for k in Kind if k.is_archive)


def test_the_packings_a_contract_declares_are_the_formats_and_the_unpackers() -> None:
    declared = set(get_args(get_type_hints(Contract)["packing"]))
    from_formats = {"auto", "none"}.union(*(f.packings for f in ARCHIVE_FORMATS.values()))

    assert declared == {p.value for p in Packing} == from_formats


def test_an_unknown_packing_is_refused_naming_the_field_value_and_packings(
    tmp_path: Path,
) -> None:
    with pytest.raises(UnknownKindError) as caught:
        unpack(tmp_path / "x.rar", name="x.rar", packing="rar")

    error = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(error, ConfigError)
    assert (error.field, error.value) == ("packing", "rar")
    assert error.known == tuple(p.value for p in Packing)
    assert "'rar'" in str(error)


# ------------------------------------------------------------------ every format


@pytest.mark.parametrize("name", NAMES)
def test_a_good_archive_yields_its_members_with_their_bytes_and_paths(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    members = entries(name)
    path = written(tmp_path, name, CASES[name].pack(members))
    prefix = path.name if CASES[name].container else f"{path.name}/data.csv"

    got = contents(path, path.name, workdir)

    if CASES[name].container:
        assert got == {f"{prefix}/{member}": data for member, data in members.items()}
    else:
        assert got == {prefix: BODY}
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("name", NAMES)
def test_a_stream_that_cannot_seek_yields_what_the_file_does(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    data = CASES[name].pack(entries(name))
    path = written(tmp_path, name, data)

    assert contents(_Pipe(data), path.name, workdir) == contents(path, path.name, workdir)


@pytest.mark.parametrize("name", NAMES)
def test_an_archive_inside_a_zip_is_opened_and_too_deep_a_nesting_refused(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    inner = delivery(ARCHIVE_FORMATS[name])
    outer = tmp_path / "outer.zip"
    outer.write_bytes(zip_of({inner: CASES[name].pack(entries(name))}))

    got = contents(outer, outer.name, workdir)

    assert got
    assert all(p.startswith(f"outer.zip/{inner}/") for p in got)
    error = refused(outer, workdir, limits=UnpackLimits(max_depth=1))
    assert error.reason is Reason.ARCHIVE_TOO_DEEP
    assert error.member == f"outer.zip/{inner}"


@pytest.mark.parametrize("name", NAMES)
def test_a_bomb_over_the_ratio_limit_is_refused_naming_the_member(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    member = "a.csv" if CASES[name].container else "data.csv"
    packed = CASES[name].pack({member: ZEROS})
    if len(packed) * 10 > len(ZEROS):
        pytest.skip(f"{name} stores its members as they are: its size is the bomb's")
    path = written(tmp_path, name, packed)

    error = refused(path, workdir, limits=UnpackLimits(max_ratio=10, ratio_floor_bytes=MIB))

    assert error.reason is Reason.ARCHIVE_RATIO
    assert error.member is not None
    assert error.member.startswith(path.name)


@pytest.mark.parametrize("name", NAMES)
def test_a_member_over_the_size_limit_is_refused_naming_it(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    path = written(tmp_path, name, CASES[name].pack(entries(name)))

    error = refused(path, workdir, limits=UnpackLimits(max_member_bytes=len(BODY) // 2))

    assert error.reason is Reason.ARCHIVE_TOO_LARGE
    assert error.member is not None
    assert error.member.startswith(f"{path.name}/")


@pytest.mark.parametrize("name", NAMES)
def test_a_truncated_archive_is_refused_as_truncated(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    data = CASES[name].pack(entries(name))
    path = written(tmp_path, name, data[: len(data) // 2])

    error = refused(path, workdir)

    assert error.reason is Reason.ARCHIVE_TRUNCATED
    assert error.member is not None
    assert error.member.startswith(path.name)


def empty_archives(tmp_path: Path, name: str) -> list[Path]:
    """The format's archives of no entries: a container's own, each under every name that
    promises it; a single stream's, a tar of no entries it compresses (a compressed empty
    file is one empty member, not an empty archive), under its tar names and ``.tar<suffix>``."""
    fmt = ARCHIVE_FORMATS[name]
    if CASES[name].container:
        data, suffixes = CASES[name].pack({}), list(fmt.suffixes)
    else:
        assert isinstance(fmt, Compressed)
        data = CASES[name].pack({"data.tar": tar_of({})})
        plain = [s for s in fmt.suffixes if s not in fmt.tar_suffixes]
        suffixes = [*fmt.tar_suffixes, *(f".tar{s}" for s in plain)]
    paths = []
    for suffix in suffixes:
        path = tmp_path / f"data{suffix}"
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.mark.parametrize("name", NAMES)
def test_an_archive_of_no_entries_is_refused_as_empty_naming_it(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    paths = empty_archives(tmp_path, name)

    assert paths
    for path in paths:
        for source in (path, _Pipe(path.read_bytes())):
            error = refused(source, workdir, name=path.name)
            assert (error.reason, error.member) == (Reason.ARCHIVE_EMPTY, path.name), path.name
            assert "no entries" in error.message


@pytest.mark.parametrize("name", NAMES)
def test_plain_data_named_like_the_format_is_refused_as_corrupt(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    for suffix in ARCHIVE_FORMATS[name].suffixes:
        path = tmp_path / f"data{suffix}"
        path.write_bytes(BODY)

        error = refused(path, workdir)

        assert error.reason is Reason.ARCHIVE_CORRUPT
        assert error.member == path.name
        assert suffix in error.message


@pytest.mark.parametrize("name", NAMES)
def test_a_packing_the_format_does_not_satisfy_is_a_mismatch(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    path = written(tmp_path, name, CASES[name].pack(entries(name)))
    others = [
        p for p in Packing if p is not Packing.AUTO and p not in ARCHIVE_FORMATS[name].packings
    ]

    assert others
    for packing in others:
        error = refused(path, workdir, packing=packing)
        assert error.reason is Reason.FORMAT_MISMATCH
        assert error.member == path.name


# ------------------------------------------------------------------ containers


@pytest.mark.parametrize("name", CONTAINERS)
@pytest.mark.parametrize("member", ["../evil.csv", "/abs/evil.csv", "a/../../evil.csv"])
def test_a_member_escaping_the_directory_is_refused_naming_it(
    tmp_path: Path, workdir: Path, name: str, member: str
) -> None:
    path = written(tmp_path, name, CASES[name].pack(entries(name, **{member: BODY})))

    error = refused(path, workdir)

    assert error.reason is Reason.ARCHIVE_PATH_TRAVERSAL
    assert error.member is not None
    assert error.member.endswith("evil.csv")


@pytest.mark.parametrize("name", CONTAINERS)
def test_a_link_is_refused_naming_it(tmp_path: Path, workdir: Path, name: str) -> None:
    link = CASES[name].link
    assert link is not None
    path = written(tmp_path, name, link("data/passwd.csv", "/etc/passwd"))

    error = refused(path, workdir)

    assert error.reason is Reason.ARCHIVE_LINK
    assert error.member == f"{path.name}/data/passwd.csv"


@pytest.mark.parametrize("name", CONTAINERS)
def test_two_entries_of_one_path_are_refused_naming_it(
    tmp_path: Path, workdir: Path, name: str
) -> None:
    path = written(tmp_path, name, CASES[name].pack(entries(name, **{"a.csv#dup": b"x\n"})))

    error = refused(path, workdir)

    assert error.reason is Reason.ARCHIVE_DUPLICATE_ENTRY
    assert error.member == f"{path.name}/a.csv"


@pytest.mark.parametrize("name", CONTAINERS)
def test_more_entries_than_the_limit_are_refused(tmp_path: Path, workdir: Path, name: str) -> None:
    path = written(tmp_path, name, CASES[name].pack(entries(name, **{"c.csv": b"c\n"})))

    error = refused(path, workdir, limits=UnpackLimits(max_entries=2))

    assert error.reason is Reason.ARCHIVE_TOO_MANY_ENTRIES
    assert error.member is not None
    assert error.member.startswith(path.name)


# ------------------------------------------------------------------ tar

# A tar of no entries is its end marker (two zero blocks) and carries no ``ustar`` magic:
# it is told from plain data by its name or the packing declared, never by zeros alone.


def test_a_tar_of_no_entries_declared_as_tar_is_refused_as_empty_whatever_its_name(
    tmp_path: Path, workdir: Path
) -> None:
    path = tmp_path / "data.dat"
    path.write_bytes(tar_of({}))

    error = refused(path, workdir, packing="tar")

    assert (error.reason, error.member) == (Reason.ARCHIVE_EMPTY, "data.dat")


@pytest.mark.parametrize(
    "data",
    [b"", b"\0" * 512, b"\0" * 1023, b"\0" * 512 + BODY, BODY],
    ids=["no-bytes", "one-zero-block", "cut-end-marker", "zero-block-then-data", "garbage"],
)
def test_a_tar_cut_before_its_end_marker_or_garbage_is_refused_as_corrupt_not_empty(
    tmp_path: Path, workdir: Path, data: bytes
) -> None:
    for name, packed in (("data.tar", data), ("data.tar.gz", gzip.compress(data))):
        path = tmp_path / name
        path.write_bytes(packed)

        error = refused(path, workdir)

        assert error.reason is Reason.ARCHIVE_CORRUPT, name
        assert error.member is not None
        assert error.member.endswith(".tar")


def test_zeros_not_named_or_declared_a_tar_are_plain_data(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(tar_of({}))
    declared_plain = tmp_path / "data.tar"
    declared_plain.write_bytes(tar_of({}))

    for packing in ("auto", "none"):
        assert contents(path, path.name, workdir, packing=packing) == {"data.csv": tar_of({})}
    assert contents(declared_plain, declared_plain.name, workdir, packing="none") == {
        "data.tar": tar_of({})
    }


def test_an_archive_holding_only_empty_archives_is_empty_naming_one_not_folders_only(
    tmp_path: Path, workdir: Path
) -> None:
    """An operator told "folders only" looks for folders; the archive holds an empty
    archive (left out like a folder), which the refusal names instead."""
    path = tmp_path / "outer.zip"
    path.write_bytes(zip_of({"inner.tar": tar_of({}), "inner.zip": zip_of({})}))

    error = refused(path, workdir)

    assert (error.reason, error.member) == (Reason.ARCHIVE_EMPTY, "outer.zip")
    assert "folders only" not in error.message
    assert "outer.zip/inner.tar" in error.message
    assert "2 archive(s) holding none" in error.message


def test_an_empty_archive_left_out_beside_data_is_told_in_a_warning(
    tmp_path: Path, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A nested tar of zeros may be a vendor's archive cut short: left out like a folder,
    but never silently."""
    path = tmp_path / "outer.zip"
    path.write_bytes(zip_of({"data.csv": b"id\n1\n", "inner.tar": tar_of({})}))

    with caplog.at_level("WARNING", logger="file_processing.archives.session"):
        assert contents(path, path.name, workdir) == {"outer.zip/data.csv": b"id\n1\n"}

    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "outer.zip/inner.tar" in warning.getMessage()
    assert "left out" in warning.getMessage()


# ------------------------------------------------------------------ a format added


class _ToyError(Exception):
    """What the added compressor's reader raises on a broken stream: a library's own error."""


_TOY_MAGIC = b"\x28\xb5\x2f\xfd"  # zstd's: a kind sniff() knows, refused until it is opened


class _ToyReader:
    """The reader of a compressor a contributor adds as docs/extending.md says (zstd, say,
    whose library raises its own ``ZstdError``): the bytes after the magic, as they are,
    and its own error where the stream says ``BROKEN``."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._file = fileobj
        self._started = False

    def read(self, size: int = -1, /) -> bytes:
        if not self._started:
            self._started = True
            if self._file.read(len(_TOY_MAGIC)) != _TOY_MAGIC:
                raise _ToyError("no frame magic")
        data = self._file.read(size)
        if b"BROKEN" in data:
            raise _ToyError("Unable to decompress: data corruption detected")
        return data


@pytest.fixture
def added(monkeypatch: pytest.MonkeyPatch) -> Compressed:
    """A compressor added as docs/extending.md says: its kind opened, one ``Compressed``
    registered in ``ARCHIVE_FORMATS``."""
    sniff_module = importlib.import_module("file_processing.sniff")
    monkeypatch.setattr(sniff_module, "_ARCHIVES", sniff_module._ARCHIVES | {Kind.ZSTD})
    monkeypatch.setattr(sniff_module, "_UNSUPPORTED", sniff_module._UNSUPPORTED - {Kind.ZSTD})
    fmt = Compressed(
        Kind.ZSTD,
        _ToyReader,
        packings=frozenset({"tar"}),
        plain_suffixes=(".zst",),
        tar_suffixes=(".tzst",),
        errors=(_ToyError,),
    )
    monkeypatch.setitem(ARCHIVE_FORMATS, fmt.name, fmt)
    return fmt


def test_an_added_compressor_names_its_member_without_its_suffix(
    tmp_path: Path, workdir: Path, added: Compressed
) -> None:
    plain = tmp_path / "data.csv.zst"
    plain.write_bytes(_TOY_MAGIC + BODY)
    wrapped = tmp_path / "data.tzst"
    wrapped.write_bytes(_TOY_MAGIC + tar_of({"a.csv": BODY}))
    outer = tmp_path / "outer.zip"
    outer.write_bytes(zip_of({"in/data.csv.ZST": _TOY_MAGIC + BODY}))

    assert contents(plain, plain.name, workdir) == {"data.csv.zst/data.csv": BODY}
    assert contents(wrapped, wrapped.name, workdir, packing="tar") == {"data.tzst/a.csv": BODY}
    assert contents(outer, outer.name, workdir) == {"outer.zip/in/data.csv.ZST/data.csv": BODY}
    assert list(workdir.iterdir()) == []


def test_what_an_added_compressors_reader_raises_on_broken_input_is_refused(
    tmp_path: Path, workdir: Path, added: Compressed
) -> None:
    path = tmp_path / "data.csv.zst"
    path.write_bytes(_TOY_MAGIC + b"id,value\nBROKEN\n")

    error = refused(path, workdir)

    assert error.reason is Reason.ARCHIVE_CORRUPT
    assert error.member == path.name
    assert "data corruption detected" in error.message


_BOX_MAGIC = b"7z\xbc\xaf\x27\x1c"  # 7z's: a kind sniff() knows, refused until it is opened


class _Box(ArchiveFormat):
    """A container a contributor adds as docs/extending.md says (7z, say): its ``members()``
    of the one layer. Its made-up layout: the magic, then per entry a line ``<name> <size>``
    and that many bytes."""

    kind = Kind.SEVEN_ZIP
    packings: frozenset[str] = frozenset()
    suffixes = (".7z",)

    def members(self, layer: Layer) -> Iterator[Member]:
        session, name = layer.session, layer.name
        assert layer.read_exactly(len(_BOX_MAGIC)) == _BOX_MAGIC
        seen: set[str] = set()
        while header := _line(layer.source):
            raw, size = header.rsplit(" ", 1)
            path = member_name(raw, name)
            member_path = f"{name}/{path}"
            session.count_entry(member_path)
            check_unique(path, seen, member_path)
            file, got = session.spool(_exactly(layer, int(size), member_path), member_path)
            yield from layer.settle(file, got, member_path)


def _exactly(layer: Layer, size: int, member_path: str) -> Callable[[int], bytes]:
    """A reader of the next ``size`` bytes of ``layer`` (refused as truncated when they
    end first, naming the member)."""
    left = size

    def read(wanted: int) -> bytes:
        nonlocal left
        data = layer.read_exactly(min(wanted, left), member_path)
        left -= len(data)
        return data

    return read


def _line(source: Any) -> str:
    """One header line of a :class:`_Box` (empty at its end), read a byte at a time."""
    line = b""
    for _ in range(4096):
        byte = source.read(1)
        if byte in (b"", b"\n"):
            break
        line += byte
    return line.decode()


def box_of(entries: dict[str, bytes]) -> bytes:
    return _BOX_MAGIC + b"".join(
        f"{name.removesuffix('#dup')} {len(data)}\n".encode() + data
        for name, data in entries.items()
    )


@pytest.fixture
def box(monkeypatch: pytest.MonkeyPatch) -> _Box:
    """A container added as docs/extending.md says: its kind opened, registered in
    ``ARCHIVE_FORMATS``."""
    sniff_module = importlib.import_module("file_processing.sniff")
    monkeypatch.setattr(sniff_module, "_ARCHIVES", sniff_module._ARCHIVES | {Kind.SEVEN_ZIP})
    monkeypatch.setattr(sniff_module, "_UNSUPPORTED", sniff_module._UNSUPPORTED - {Kind.SEVEN_ZIP})
    fmt = _Box()
    monkeypatch.setitem(ARCHIVE_FORMATS, fmt.name, fmt)
    return fmt


def test_an_added_container_yields_its_members_and_opens_the_archives_inside(
    tmp_path: Path, workdir: Path, box: _Box
) -> None:
    path = tmp_path / "data.7z"
    data = box_of({"a.csv": BODY, "in/b.csv.gz": gzip.compress(BODY[::-1])})
    path.write_bytes(data)
    outer = tmp_path / "outer.zip"
    outer.write_bytes(zip_of({"data.7z": data}))
    expected = {"data.7z/a.csv": BODY, "data.7z/in/b.csv.gz/b.csv": BODY[::-1]}

    assert contents(path, path.name, workdir) == expected
    assert contents(_Pipe(data), path.name, workdir) == expected
    assert contents(outer, outer.name, workdir) == {
        f"outer.zip/{p}": b for p, b in expected.items()
    }
    assert list(workdir.iterdir()) == []


def test_an_added_container_is_held_to_the_delivery_limits(
    tmp_path: Path, workdir: Path, box: _Box
) -> None:
    path = tmp_path / "data.7z"
    path.write_bytes(box_of({"a.csv": BODY, "in/b.csv.gz": gzip.compress(BODY)}))
    twice = tmp_path / "twice.7z"
    twice.write_bytes(box_of({"a.csv": BODY, "a.csv#dup": b"x\n"}))

    too_deep = refused(path, workdir, limits=UnpackLimits(max_depth=1))
    too_large = refused(path, workdir, limits=UnpackLimits(max_member_bytes=len(BODY) // 2))
    duplicate = refused(twice, workdir)

    assert (too_deep.reason, too_deep.member) == (Reason.ARCHIVE_TOO_DEEP, "data.7z/in/b.csv.gz")
    assert (too_large.reason, too_large.member) == (Reason.ARCHIVE_TOO_LARGE, "data.7z/a.csv")
    assert (duplicate.reason, duplicate.member) == (
        Reason.ARCHIVE_DUPLICATE_ENTRY,
        "twice.7z/a.csv",
    )


def test_an_added_container_cut_short_is_refused_as_truncated_naming_the_member(
    tmp_path: Path, workdir: Path, box: _Box
) -> None:
    data = box_of({"a.csv": BODY, "b.csv": BODY})
    path = tmp_path / "data.7z"
    path.write_bytes(data[: len(data) // 4])

    error = refused(path, workdir)

    assert (error.reason, error.member) == (Reason.ARCHIVE_TRUNCATED, "data.7z/a.csv")


class _Trickle:
    """A pipe handing over a few bytes per read, however many are asked for."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(7 if size < 0 else min(size, 7))


def test_a_layer_reads_exactly_the_bytes_asked_across_the_sniffed_head_or_refuses_them_cut_short(
    workdir: Path,
) -> None:
    data = bytes(range(256)) * 20
    source = Peeked(_Trickle(data))
    layer = Layer(Session(UnpackLimits(), workdir, None, ARCHIVE_FORMATS), source, "d.7z", 1)

    assert layer.read_exactly(1000) == data[:1000]
    assert layer.read_exactly(3000) == data[1000:4000]  # the head's end, then the pipe's
    with pytest.raises(RefusedError) as cut:
        layer.read_exactly(2000)
    with pytest.raises(RefusedError) as named:
        layer.read_exactly(1, "d.7z/a.csv")

    error = pickle.loads(pickle.dumps(cut.value))
    assert (error.reason, error.member) == (Reason.ARCHIVE_TRUNCATED, "d.7z")
    assert "2000" in error.message
    assert (named.value.reason, named.value.member) == (Reason.ARCHIVE_TRUNCATED, "d.7z/a.csv")


class _RecordingTar(TarFormat):
    """The registry's tar replaced (a tar reader of one's own): records the layers it reads."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def members(self, layer: Layer) -> Iterator[Member]:
        self.read.append(layer.name)
        yield from super().members(layer)


@pytest.mark.parametrize("name", COMPRESSORS)
def test_the_tar_a_compressor_wraps_is_read_by_the_registrys_tar_format(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path, name: str
) -> None:
    tar = _RecordingTar()
    monkeypatch.setitem(ARCHIVE_FORMATS, "tar", tar)
    fmt = ARCHIVE_FORMATS[name]
    assert isinstance(fmt, Compressed)
    inner = f"data{fmt.tar_suffixes[0]}"
    packed = CASES[name].pack({"data.tar": tar_of({"a.csv": BODY})})
    outer = tmp_path / "outer.zip"
    outer.write_bytes(zip_of({inner: packed}))

    assert contents(_Pipe(packed), inner, workdir) == {f"{inner}/a.csv": BODY}
    assert contents(outer, outer.name, workdir) == {f"outer.zip/{inner}/a.csv": BODY}
    assert tar.read == [inner, f"outer.zip/{inner}"]


def test_a_format_that_must_seek_gets_the_layers_file_or_its_bytes_spooled_within_the_total(
    workdir: Path,
) -> None:
    data = box_of({"a.csv": BODY})
    session = Session(UnpackLimits(), workdir, None, ARCHIVE_FORMATS)
    on_disk = io.BytesIO(data)
    piped = Layer(session, Peeked(_Trickle(data)), "d.7z", 1)
    tight = Session(UnpackLimits(max_total_bytes=len(data) - 1), workdir, None, ARCHIVE_FORMATS)

    with Layer(session, Peeked(on_disk), "d.7z", 1, file=on_disk).seekable_file("7z") as fh:
        assert fh is on_disk
    with piped.seekable_file("7z") as fh:
        fh.seek(-len(BODY), io.SEEK_END)
        assert fh.read() == BODY
        assert len(list(workdir.iterdir())) == 1
    too_large = Layer(tight, Peeked(_Pipe(data)), "d.7z", 1)
    with pytest.raises(RefusedError) as caught, too_large.seekable_file("7z"):
        pass

    assert (caught.value.reason, caught.value.member) == (Reason.ARCHIVE_TOO_LARGE, "d.7z")
    assert "7z archive larger than" in caught.value.message
    assert list(workdir.iterdir()) == []
