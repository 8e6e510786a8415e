"""unpack() on well-formed deliveries made by Python and by the zip/gzip/tar CLIs."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from etl_core.errors import ConfigError
from etl_core.storage import etags
from file_processing.archives import zip as zip_format
from file_processing.errors import RefusedError
from file_processing.limits import UnpackLimits
from file_processing.reasons import Reason
from file_processing.unpack import Member, unpack

CSV_A = b"id,name\n" + b"".join(b"%d,name-%d\n" % (i, i) for i in range(5000))
CSV_B = b"sku,qty\n1,2\n3,4\n"


def contents(source: Any, **kwargs: Any) -> dict[str, bytes]:
    """Read every member while it is current (its file goes once the iterator moves on)."""
    found: dict[str, bytes] = {}
    for member in unpack(source, **kwargs):
        with member.open() as fh:
            found[member.path] = fh.read()
        assert member.size == len(found[member.path])
    return found


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """data/a.csv, data/sub/b.csv and an empty data/empty.csv."""
    root = tmp_path / "src"
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "a.csv").write_bytes(CSV_A)
    (root / "data" / "sub" / "b.csv").write_bytes(CSV_B)
    (root / "data" / "empty.csv").write_bytes(b"")
    return root


EXPECTED_TREE = {"data/a.csv": CSV_A, "data/sub/b.csv": CSV_B, "data/empty.csv": b""}


def prefixed(name: str) -> dict[str, bytes]:
    return {f"{name}/{path}": data for path, data in EXPECTED_TREE.items()}


# ------------------------------------------------------------------ zip


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_python_zip_members_are_yielded_with_their_bytes(
    tmp_path: Path, workdir: Path, method: int
) -> None:
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w", compression=method) as zf:
        zf.writestr("data/", b"")
        for path, data in EXPECTED_TREE.items():
            zf.writestr(path, data)

    assert contents(archive, name="d.zip", workdir=workdir) == prefixed("d.zip")
    assert list(workdir.iterdir()) == []


def test_python_zip64_entries_are_read(tmp_path: Path, workdir: Path) -> None:
    archive = tmp_path / "z64.zip"
    with (
        zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("data/a.csv", "w", force_zip64=True) as fh,
    ):
        fh.write(CSV_A)

    assert contents(archive, name="z64.zip", workdir=workdir) == {"z64.zip/data/a.csv": CSV_A}


class _NonSeekable(io.RawIOBase):
    def __init__(self, target: io.BytesIO) -> None:
        self._target = target

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._target.write(data)


def test_python_zip_with_data_descriptors_is_read(workdir: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(_NonSeekable(buffer), "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", CSV_A)
    assert zipfile.ZipFile(io.BytesIO(buffer.getvalue())).getinfo("a.csv").flag_bits & 0x08

    assert contents(io.BytesIO(buffer.getvalue()), name="dd.zip", workdir=workdir) == {
        "dd.zip/a.csv": CSV_A
    }


@pytest.mark.parametrize(
    "options",
    [["-q"], ["-q", "-0"], ["-q", "-9"], ["-q", "-fz"]],
    ids=["deflate", "stored", "best", "zip64"],
)
def test_zip_cli_archives_are_read(tree: Path, workdir: Path, run: Any, options: list[str]) -> None:
    run("zip", *options, "-r", "../cli.zip", "data", cwd=tree)

    assert contents(tree.parent / "cli.zip", name="cli.zip", workdir=workdir) == prefixed("cli.zip")
    assert list(workdir.iterdir()) == []


def test_zip_cli_streamed_output_with_data_descriptors_is_read(
    tree: Path, workdir: Path, run: Any
) -> None:
    run("zip -q - data/a.csv | cat > ../streamed.zip", cwd=tree, needs=("zip",))
    archive = tree.parent / "streamed.zip"
    assert zipfile.ZipFile(archive).infolist()[0].flag_bits & 0x08  # data descriptor

    assert contents(archive, name="streamed.zip", workdir=workdir) == {
        "streamed.zip/data/a.csv": CSV_A
    }


def test_zip_cli_archive_of_standard_input_is_read(tree: Path, workdir: Path, run: Any) -> None:
    run("cat data/a.csv | zip -q - - | cat > ../stdin.zip", cwd=tree, needs=("zip",))

    assert contents(tree.parent / "stdin.zip", name="stdin.zip", workdir=workdir) == {
        "stdin.zip/-": CSV_A
    }


def test_zip_from_a_non_seekable_stream_is_spooled_and_read(
    tree: Path, workdir: Path, run: Any
) -> None:
    run("zip", "-q", "-r", "../cli.zip", "data", cwd=tree)
    raw = (tree.parent / "cli.zip").read_bytes()

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(raw)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            return self._data.readinto(buffer)

    assert contents(io.BufferedReader(Pipe()), name="cli.zip", workdir=workdir) == prefixed(
        "cli.zip"
    )
    assert list(workdir.iterdir()) == []


def test_empty_zip_is_refused_as_an_empty_archive(tmp_path: Path, workdir: Path) -> None:
    archive = tmp_path / "empty.zip"
    zipfile.ZipFile(archive, "w").close()

    with pytest.raises(RefusedError) as caught:
        contents(archive, name="empty.zip", workdir=workdir)

    assert caught.value.reason == Reason.ARCHIVE_EMPTY
    assert list(workdir.iterdir()) == []


# ------------------------------------------------------------------ gzip, bzip2, xz


def test_every_member_of_a_multi_member_gzip_is_read(tree: Path, workdir: Path, run: Any) -> None:
    for part in ("a", "b", "c"):
        (tree / f"{part}.csv").write_bytes(f"part {part}\n".encode() * 1000)
        run("gzip", "-k", f"{part}.csv", cwd=tree)
    joined = b"".join((tree / f"{part}.csv.gz").read_bytes() for part in ("a", "b", "c"))
    (tree / "all.csv.gz").write_bytes(joined)

    assert contents(tree / "all.csv.gz", name="all.csv.gz", workdir=workdir) == {
        "all.csv.gz/all.csv": b"part a\n" * 1000 + b"part b\n" * 1000 + b"part c\n" * 1000
    }


@pytest.mark.parametrize(
    ("compress", "suffix"), [(bz2.compress, ".bz2"), (lzma.compress, ".xz")], ids=["bzip2", "xz"]
)
def test_bzip2_and_xz_files_are_decompressed(
    tmp_path: Path, workdir: Path, compress: Any, suffix: str
) -> None:
    path = tmp_path / f"a.csv{suffix}"
    path.write_bytes(compress(CSV_A))

    assert contents(path, name=path.name, workdir=workdir) == {f"{path.name}/a.csv": CSV_A}


def test_gzip_from_a_stream_is_read(workdir: Path) -> None:
    stream = io.BytesIO(gzip.compress(CSV_B))

    assert contents(stream, name="b.csv.gz", workdir=workdir) == {"b.csv.gz/b.csv": CSV_B}


# ------------------------------------------------------------------ tar


@pytest.mark.parametrize(
    ("flags", "name"),
    [("-cf", "d.tar"), ("-czf", "d.tar.gz"), ("-cjf", "d.tar.bz2"), ("-cJf", "d.txz")],
    ids=["tar", "tar.gz", "tar.bz2", "tar.xz"],
)
def test_tar_cli_archives_are_read(
    tree: Path, workdir: Path, run: Any, flags: str, name: str
) -> None:
    run("tar", flags, f"../{name}", "data", cwd=tree)

    assert contents(tree.parent / name, name=name, workdir=workdir) == prefixed(name)
    assert list(workdir.iterdir()) == []


def test_tar_read_from_a_non_seekable_gzip_stream(tree: Path, workdir: Path, run: Any) -> None:
    run("tar", "-czf", "../d.tgz", "data", cwd=tree)

    class Pipe(io.RawIOBase):
        def __init__(self, raw: bytes) -> None:
            self._data = io.BytesIO(raw)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            return self._data.readinto(buffer)

    stream = io.BufferedReader(Pipe((tree.parent / "d.tgz").read_bytes()))
    assert contents(stream, name="d.tgz", workdir=workdir) == prefixed("d.tgz")


# ------------------------------------------------------------------ nesting and detection


def test_zip_holding_a_tar_gz_holding_csvs_is_unpacked_to_the_leaves(
    tree: Path, workdir: Path, run: Any
) -> None:
    run("tar", "-czf", "inner.tar.gz", "data", cwd=tree)
    run("zip", "-q", "../outer.zip", "inner.tar.gz", cwd=tree)

    found = contents(tree.parent / "outer.zip", name="outer.zip", workdir=workdir)

    assert found == prefixed("outer.zip/inner.tar.gz")
    assert list(workdir.iterdir()) == []


def test_nesting_within_max_depth_is_allowed(tmp_path: Path, workdir: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("b.csv", CSV_B)
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("inner.zip", inner.getvalue())

    found = contents(outer, name="outer.zip", workdir=workdir, limits=UnpackLimits(max_depth=2))

    assert found == {"outer.zip/inner.zip/b.csv": CSV_B}


def test_a_csv_named_file_that_is_a_zip_is_unpacked_by_its_magic(
    tmp_path: Path, workdir: Path
) -> None:
    disguised = tmp_path / "report.csv"
    with zipfile.ZipFile(disguised, "w") as zf:
        zf.writestr("b.csv", CSV_B)

    assert contents(disguised, name="report.csv", workdir=workdir) == {"report.csv/b.csv": CSV_B}


def test_plain_data_is_one_member_named_after_the_delivery(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(CSV_A)

    assert contents(path, name="orders.csv", workdir=workdir) == {"orders.csv": CSV_A}
    assert contents(path, name="orders.csv", packing="none", workdir=workdir) == {
        "orders.csv": CSV_A
    }


def test_declared_gzip_accepts_a_gzipped_tar(tree: Path, workdir: Path, run: Any) -> None:
    run("tar", "-czf", "../d.tgz", "data", cwd=tree)

    assert contents(tree.parent / "d.tgz", name="d.tgz", packing="gzip", workdir=workdir) == (
        prefixed("d.tgz")
    )
    assert contents(tree.parent / "d.tgz", name="d.tgz", packing="tar", workdir=workdir) == (
        prefixed("d.tgz")
    )


def test_a_members_file_is_removed_once_the_iterator_moves_on(
    tmp_path: Path, workdir: Path
) -> None:
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.csv", CSV_A)
        zf.writestr("b.csv", CSV_B)

    members = unpack(archive, name="two.zip", workdir=workdir)
    first: Member = next(members)
    assert first.file.exists()
    second = next(members)
    assert not first.file.exists()
    assert second.file.exists()
    members.close()
    assert list(workdir.iterdir()) == []


def test_unknown_packing_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        unpack(tmp_path / "x", name="x", packing="rar")
    assert caught.value.fields == ("packing",)


def test_seekable_stream_is_read_from_its_current_position(workdir: Path) -> None:
    stream = io.BytesIO(b"HEADER" + gzip.compress(CSV_B))
    stream.seek(6)

    assert contents(stream, name="b.csv.gz", workdir=workdir) == {"b.csv.gz/b.csv": CSV_B}


def test_tar_members_are_streamed_one_at_a_time(tmp_path: Path, workdir: Path) -> None:
    archive = tmp_path / "many.tar"
    with tarfile.open(archive, "w") as tf:
        for index in range(5):
            info = tarfile.TarInfo(f"part-{index}.csv")
            info.size = len(CSV_B)
            tf.addfile(info, io.BytesIO(CSV_B))

    seen = []
    for member in unpack(archive, name="many.tar", workdir=workdir):
        seen.append(member.path)
        assert len([p for p in workdir.rglob("*") if p.is_file()]) == 1

    assert seen == [f"many.tar/part-{i}.csv" for i in range(5)]


# ------------------------------------------------------------------ publishing


def test_each_member_carries_the_md5_computed_as_it_was_unpacked(
    tmp_path: Path, workdir: Path
) -> None:
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", CSV_A)
        zf.writestr("b.csv", CSV_B)
    recorded = {}
    for member in unpack(archive, name="d.zip", workdir=workdir):
        with member.open() as fh:
            status = os.fstat(fh.fileno())
            recorded[member.path] = etags.recorded_etag(fh.fileno(), status)
    if None in recorded.values():
        pytest.skip("this filesystem has no user extended attributes; ETags are recomputed")
    assert recorded == {
        "d.zip/a.csv": hashlib.md5(CSV_A).hexdigest(),
        "d.zip/b.csv": hashlib.md5(CSV_B).hexdigest(),
    }


@pytest.mark.parametrize("fast", [True, False], ids=["isal", "zlib"])
def test_deflated_members_come_out_the_same_whichever_inflater_reads_them(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    if fast and zip_format._fast_inflater() is None:
        pytest.skip("isal is not installed: zipfile inflates every entry")
    if not fast:
        monkeypatch.setattr(zip_format, "_fast_inflater", lambda: None)
    used: list[int] = []
    monkeypatch.setattr(
        zip_format._FastDeflate,
        "read",
        lambda self, size, read=zip_format._FastDeflate.read: used.append(size) or read(self, size),
    )
    archive = tmp_path / "d.zip"
    big = CSV_A * 300  # several chunks
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.csv", big)
        zf.writestr("b.csv", CSV_B, compress_type=zipfile.ZIP_STORED)
    assert contents(archive, name="d.zip", workdir=workdir) == {
        "d.zip/a.csv": big,
        "d.zip/b.csv": CSV_B,
    }
    assert bool(used) is fast
