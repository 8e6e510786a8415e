"""unpack() refuses hostile and broken deliveries with a reason code and leaves no files."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import random
import stat
import struct
import tarfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from file_processing.archives import zip as zip_format
from file_processing.errors import RefusedError
from file_processing.limits import MIB, UnpackLimits
from file_processing.reasons import Reason
from file_processing.unpack import unpack

CSV = b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * 7) for i in range(20_000))


def read_all(source: Any, workdir: Path, **kwargs: Any) -> None:
    for member in unpack(source, workdir=workdir, **kwargs):
        member.file.read_bytes()


def refusal(source: Any, workdir: Path, **kwargs: Any) -> RefusedError:
    """Run unpack to the end, expecting a refusal; assert no temporary file survived it."""
    kwargs.setdefault("name", Path(source).name if isinstance(source, Path) else "delivery")
    with pytest.raises(RefusedError) as caught:
        read_all(source, workdir, **kwargs)
    assert list(workdir.iterdir()) == []
    return caught.value


def make_zip(path: Path, entries: dict[str, bytes], *, method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo], data: bytes = CSV) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for info in members:
            if info.isreg():
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


# ------------------------------------------------------------------ member names


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd",
        "data/../../escape.csv",
        "/etc/passwd",
        "..\\evil.csv",
        "dir\\a.csv",
        "C:/Windows/evil.csv",
        "c:evil.csv",
    ],
)
def test_unsafe_zip_member_names_are_refused(tmp_path: Path, workdir: Path, name: str) -> None:
    archive = make_zip(tmp_path / "slip.zip", {"ok.csv": CSV, name: b"owned"})

    error = refusal(archive, workdir)

    assert error.reason == Reason.ARCHIVE_PATH_TRAVERSAL
    assert str(error.member).startswith("slip.zip/")


@pytest.mark.parametrize("name", ["../evil.csv", "a/../../evil.csv", "/abs/evil.csv"])
def test_unsafe_tar_member_names_are_refused(tmp_path: Path, workdir: Path, name: str) -> None:
    archive = make_tar(tmp_path / "slip.tar", [tar_entry(name)])

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_PATH_TRAVERSAL


def test_absolute_member_made_by_tar_cli_is_refused(
    tmp_path: Path, workdir: Path, run: Any
) -> None:
    victim = tmp_path / "victim.csv"
    victim.write_bytes(CSV)
    run("tar", "-cPf", "abs.tar", str(victim), cwd=tmp_path)

    error = refusal(tmp_path / "abs.tar", workdir)

    assert error.reason == Reason.ARCHIVE_PATH_TRAVERSAL
    assert "absolute" in error.message


# ------------------------------------------------------------------ links and special files


def test_symlink_in_zip_made_by_zip_cli_is_refused(tmp_path: Path, workdir: Path, run: Any) -> None:
    os.symlink("/etc/passwd", tmp_path / "passwd.csv")
    run("zip", "-q", "-y", "link.zip", "passwd.csv", cwd=tmp_path)

    error = refusal(tmp_path / "link.zip", workdir)

    assert error.reason == Reason.ARCHIVE_LINK
    assert error.member == "link.zip/passwd.csv"


def test_symlink_in_tar_made_by_tar_cli_is_refused(tmp_path: Path, workdir: Path, run: Any) -> None:
    (tmp_path / "a.csv").write_bytes(CSV)
    os.symlink("../../etc/passwd", tmp_path / "link.csv")
    run("tar", "-czf", "link.tgz", "a.csv", "link.csv", cwd=tmp_path)

    error = refusal(tmp_path / "link.tgz", workdir)

    assert error.reason == Reason.ARCHIVE_LINK
    assert error.member == "link.tgz/link.csv"


def test_hard_link_in_tar_is_refused(tmp_path: Path, workdir: Path, run: Any) -> None:
    (tmp_path / "a.csv").write_bytes(CSV)
    os.link(tmp_path / "a.csv", tmp_path / "b.csv")
    run("tar", "-cf", "hard.tar", "a.csv", "b.csv", cwd=tmp_path)

    assert refusal(tmp_path / "hard.tar", workdir).reason == Reason.ARCHIVE_LINK


def test_fifo_in_tar_made_by_tar_cli_is_refused(tmp_path: Path, workdir: Path, run: Any) -> None:
    os.mkfifo(tmp_path / "pipe")
    run("tar", "-cf", "fifo.tar", "pipe", cwd=tmp_path)

    assert refusal(tmp_path / "fifo.tar", workdir).reason == Reason.ARCHIVE_SPECIAL_FILE


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE], ids=["char", "block"])
def test_device_in_tar_is_refused(tmp_path: Path, workdir: Path, kind: bytes) -> None:
    archive = make_tar(tmp_path / "dev.tar", [tar_entry("dev/null", kind)])

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_SPECIAL_FILE


def test_device_in_zip_is_refused(tmp_path: Path, workdir: Path) -> None:
    info = zipfile.ZipInfo("dev.csv")
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o600) << 16
    archive = tmp_path / "dev.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, b"")

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_SPECIAL_FILE


# ------------------------------------------------------------------ zip integrity


def test_encrypted_zip_entry_made_by_zip_cli_is_refused(
    tmp_path: Path, workdir: Path, run: Any
) -> None:
    (tmp_path / "a.csv").write_bytes(CSV)
    run("zip", "-q", "-P", "secret", "enc.zip", "a.csv", cwd=tmp_path)

    error = refusal(tmp_path / "enc.zip", workdir)

    assert error.reason == Reason.ARCHIVE_ENCRYPTED
    assert error.member == "enc.zip/a.csv"


def test_zip_entry_with_a_flipped_data_byte_fails_its_crc(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(tmp_path / "crc.zip", {"a.csv": CSV}, method=zipfile.ZIP_STORED)
    raw = bytearray(archive.read_bytes())
    raw[30 + len("a.csv") + 100] ^= 0xFF  # a byte of the stored data
    archive.write_bytes(raw)

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_CRC


def test_zip_with_corrupt_deflate_data_is_refused(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(tmp_path / "bad.zip", {"a.csv": CSV})
    raw = bytearray(archive.read_bytes())
    start = 30 + len("a.csv")
    raw[start : start + 16] = b"\xff" * 16
    archive.write_bytes(raw)

    assert refusal(archive, workdir).reason in (Reason.ARCHIVE_CORRUPT, Reason.ARCHIVE_CRC)


def test_zip_cut_short_is_truncated(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(tmp_path / "cut.zip", {"a.csv": CSV, "b.csv": CSV})
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) // 2])

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_TRUNCATED


def test_zip_with_a_broken_central_directory_is_corrupt(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(tmp_path / "cd.zip", {"a.csv": CSV})
    raw = bytearray(archive.read_bytes())
    directory = raw.rfind(b"PK\x01\x02")
    raw[directory : directory + 4] = b"XX\x01\x02"
    archive.write_bytes(raw)

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_CORRUPT


def test_zip_with_an_unsupported_compression_method_is_refused(
    tmp_path: Path, workdir: Path
) -> None:
    archive = make_zip(tmp_path / "d64.zip", {"a.csv": CSV}, method=zipfile.ZIP_STORED)
    raw = bytearray(archive.read_bytes())
    struct.pack_into("<H", raw, 8, 9)  # local header: method 9, Deflate64
    directory = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<H", raw, directory + 10, 9)
    archive.write_bytes(raw)

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_UNSUPPORTED_COMPRESSION


def test_duplicate_zip_entries_are_refused(tmp_path: Path, workdir: Path) -> None:
    archive = tmp_path / "dup.zip"
    with zipfile.ZipFile(archive, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns "Duplicate name"
        zf.writestr("a.csv", b"first")
        zf.writestr("a.csv", b"second")

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_DUPLICATE_ENTRY


def overlapping_zip(path: Path) -> Path:
    """Two central-directory records pointing at one local header (the overlap bomb trick)."""
    raw = make_zip(path, {"a.csv": CSV}).read_bytes()
    directory = raw.rfind(b"PK\x01\x02")
    end = raw.rfind(b"PK\x05\x06")
    record = raw[directory:end]
    twin = record.replace(b"a.csv", b"b.csv")
    eocd = bytearray(raw[end:])
    struct.pack_into("<HHL", eocd, 8, 2, 2, len(record) * 2)
    path.write_bytes(raw[:directory] + record + twin + eocd)
    return path


def test_overlapping_zip_entries_are_refused(tmp_path: Path, workdir: Path) -> None:
    archive = overlapping_zip(tmp_path / "overlap.zip")
    assert len(zipfile.ZipFile(archive).infolist()) == 2  # zipfile itself accepts it

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_OVERLAPPING_ENTRIES


# ------------------------------------------------------------------ gzip and tar integrity


def test_gzip_with_a_bad_crc_is_refused(tmp_path: Path, workdir: Path) -> None:
    raw = bytearray(gzip.compress(CSV))
    raw[-8] ^= 0xFF  # the member's CRC-32 trailer
    path = tmp_path / "a.csv.gz"
    path.write_bytes(raw)

    assert refusal(path, workdir).reason == Reason.ARCHIVE_CRC


def test_gzip_cut_short_is_truncated(tmp_path: Path, workdir: Path, run: Any) -> None:
    (tmp_path / "a.csv").write_bytes(CSV)
    run("gzip", "a.csv", cwd=tmp_path)
    path = tmp_path / "a.csv.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])

    assert refusal(path, workdir).reason == Reason.ARCHIVE_TRUNCATED


def test_tar_cut_inside_a_member_is_truncated(tmp_path: Path, workdir: Path) -> None:
    path = make_tar(tmp_path / "cut.tar", [tar_entry("a.csv"), tar_entry("b.csv")])
    raw = path.read_bytes()
    path.write_bytes(raw[: 512 + len(CSV) // 2])

    assert refusal(path, workdir).reason == Reason.ARCHIVE_TRUNCATED


def test_tar_cut_between_members_is_truncated_not_silently_shorter(
    tmp_path: Path, workdir: Path
) -> None:
    path = make_tar(tmp_path / "cut.tar", [tar_entry("a.csv"), tar_entry("b.csv")])
    raw = path.read_bytes()
    first_member_end = 512 + -(-len(CSV) // 512) * 512
    path.write_bytes(raw[:first_member_end])

    assert refusal(path, workdir).reason == Reason.ARCHIVE_TRUNCATED


def test_tar_gz_cut_short_is_truncated(tmp_path: Path, workdir: Path, run: Any) -> None:
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_bytes(os.urandom(200_000))
    run("tar", "-czf", "d.tgz", "a.csv", "b.csv", cwd=tmp_path)
    path = tmp_path / "d.tgz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 1000])

    assert refusal(path, workdir).reason == Reason.ARCHIVE_TRUNCATED


def test_tar_with_a_damaged_header_is_corrupt(tmp_path: Path, workdir: Path) -> None:
    path = make_tar(tmp_path / "bad.tar", [tar_entry("a.csv"), tar_entry("b.csv")])
    raw = bytearray(path.read_bytes())
    second_header = raw.find(b"b.csv")
    raw[second_header + 148 : second_header + 156] = b"9999999\x00"  # checksum field
    path.write_bytes(raw)

    assert refusal(path, workdir).reason == Reason.ARCHIVE_CORRUPT


def test_tar_with_an_oversized_extended_header_is_refused(tmp_path: Path, workdir: Path) -> None:
    info = tar_entry("a.csv")
    info.pax_headers = {"comment": "x" * (2 * MIB)}
    path = make_tar(tmp_path / "pax.tar", [info])

    assert refusal(path, workdir).reason == Reason.ARCHIVE_CORRUPT


def _damaged_header(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    second_header = raw.find(b"b.csv")
    raw[second_header + 148 : second_header + 156] = b"9999999\x00"  # checksum field
    path.write_bytes(raw)


def _cut_between_members(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: 512 + -(-len(CSV) // 512) * 512 + 100])


@pytest.mark.parametrize(
    ("damage", "reason"),
    [(_damaged_header, Reason.ARCHIVE_CORRUPT), (_cut_between_members, Reason.ARCHIVE_TRUNCATED)],
)
@pytest.mark.parametrize("wrap", ["bare", "gzip", "in a zip"])
def test_a_broken_tar_header_is_refused_naming_the_archive(
    tmp_path: Path, workdir: Path, damage: Any, reason: Reason, wrap: str
) -> None:
    tar = make_tar(tmp_path / "in.tar", [tar_entry("a.csv"), tar_entry("b.csv")])
    damage(tar)
    path, expected = tar, "in.tar"
    if wrap == "gzip":
        path = tmp_path / "in.tgz"
        path.write_bytes(gzip.compress(tar.read_bytes()))
        expected = "in.tgz"
    elif wrap == "in a zip":
        path = make_zip(tmp_path / "outer.zip", {"in.tar": tar.read_bytes()})
        expected = "outer.zip/in.tar"

    error = refusal(path, workdir)

    assert (error.reason, error.member) == (reason, expected)
    assert pickle.loads(pickle.dumps(error)).member == expected


def test_an_oversized_extended_header_is_refused_naming_the_archive(
    tmp_path: Path, workdir: Path
) -> None:
    info = tar_entry("a.csv")
    info.pax_headers = {"comment": "x" * (2 * MIB)}
    path = make_tar(tmp_path / "pax.tar", [info])

    error = refusal(path, workdir)

    assert (error.reason, error.member) == (Reason.ARCHIVE_CORRUPT, "pax.tar")


# ------------------------------------------------------------------ bombs and limits


def zeros_zip(path: Path, size: int) -> Path:
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("zeros.csv", "w") as fh,
    ):
        block = bytes(MIB)
        for _ in range(size // MIB):
            fh.write(block)
    return path


def test_zip_bomb_is_stopped_by_the_ratio_limit(tmp_path: Path, workdir: Path) -> None:
    archive = zeros_zip(tmp_path / "bomb.zip", 100 * MIB)
    assert archive.stat().st_size < MIB

    error = refusal(archive, workdir, limits=UnpackLimits(max_ratio=50))

    assert error.reason == Reason.ARCHIVE_RATIO
    assert error.member == "bomb.zip/zeros.csv"


def test_gzip_bomb_is_stopped_by_the_ratio_limit(tmp_path: Path, workdir: Path) -> None:
    compressor = gzip.GzipFile(tmp_path / "bomb.gz", "wb", compresslevel=9)
    with compressor:
        for _ in range(50):
            compressor.write(bytes(MIB))

    error = refusal(tmp_path / "bomb.gz", workdir, limits=UnpackLimits(max_ratio=50))

    assert error.reason == Reason.ARCHIVE_RATIO


def test_small_repetitive_files_below_the_ratio_floor_are_accepted(
    tmp_path: Path, workdir: Path
) -> None:
    archive = zeros_zip(tmp_path / "zeros.zip", MIB)

    members = list(unpack(archive, name="zeros.zip", workdir=workdir))

    assert [m.size for m in members] == [MIB]


def test_total_size_limit_counts_bytes_actually_written(tmp_path: Path, workdir: Path) -> None:
    blob = os.urandom(600_000)
    archive = make_zip(tmp_path / "big.zip", {"a.bin": blob, "b.bin": blob})

    error = refusal(archive, workdir, limits=UnpackLimits(max_total_bytes=1_000_000))

    assert error.reason == Reason.ARCHIVE_TOO_LARGE
    assert error.member == "big.zip/b.bin"


def test_member_size_limit_is_enforced_on_a_stream(tmp_path: Path, workdir: Path) -> None:
    stream = io.BytesIO(gzip.compress(os.urandom(300_000)))

    error = refusal(stream, workdir, name="x.gz", limits=UnpackLimits(max_member_bytes=100_000))

    assert error.reason == Reason.ARCHIVE_TOO_LARGE


def test_zip_declaring_too_many_entries_is_refused(tmp_path: Path, workdir: Path) -> None:
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.csv": b"x" for i in range(20)})

    error = refusal(archive, workdir, limits=UnpackLimits(max_entries=10))

    assert error.reason == Reason.ARCHIVE_TOO_MANY_ENTRIES


def test_tar_with_too_many_entries_is_refused_while_streaming(
    tmp_path: Path, workdir: Path
) -> None:
    archive = make_tar(tmp_path / "many.tar", [tar_entry(f"f{i}.csv") for i in range(20)], b"x")

    error = refusal(archive, workdir, limits=UnpackLimits(max_entries=10))

    assert error.reason == Reason.ARCHIVE_TOO_MANY_ENTRIES


def test_archives_nested_too_deep_are_refused(tmp_path: Path, workdir: Path) -> None:
    level3 = make_zip(tmp_path / "l3.zip", {"a.csv": CSV}).read_bytes()
    level2 = make_zip(tmp_path / "l2.zip", {"l3.zip": level3}).read_bytes()
    outer = make_zip(tmp_path / "l1.zip", {"l2.zip": level2})

    error = refusal(outer, workdir, limits=UnpackLimits(max_depth=2))

    assert error.reason == Reason.ARCHIVE_TOO_DEEP
    assert error.member == "l1.zip/l2.zip/l3.zip"


def test_compressed_tar_counts_as_one_nesting_level(
    tmp_path: Path, workdir: Path, run: Any
) -> None:
    (tmp_path / "a.csv").write_bytes(CSV)
    run("tar", "-czf", "inner.tgz", "a.csv", cwd=tmp_path)
    outer = make_zip(tmp_path / "outer.zip", {"inner.tgz": (tmp_path / "inner.tgz").read_bytes()})

    members = [
        m.path
        for m in unpack(outer, name="outer.zip", workdir=workdir, limits=UnpackLimits(max_depth=2))
    ]
    error = refusal(outer, workdir, limits=UnpackLimits(max_depth=1))

    assert members == ["outer.zip/inner.tgz/a.csv"]
    assert error.reason == Reason.ARCHIVE_TOO_DEEP


# ------------------------------------------------------------------ format detection


def test_zip_named_file_holding_plain_text_is_refused(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "pos_20240101.zip"
    path.write_bytes(b"this is not a zip archive\n")

    error = refusal(path, workdir)

    assert error.reason == Reason.ARCHIVE_CORRUPT
    assert "named like an archive (.zip)" in error.message
    assert error.member == "pos_20240101.zip"


def test_archive_member_named_like_an_archive_but_plain_is_refused(
    tmp_path: Path, workdir: Path
) -> None:
    archive = make_zip(tmp_path / "outer.zip", {"inner.tar.gz": b"plain text\n"})

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_CORRUPT


@pytest.mark.parametrize(
    ("packing", "content"),
    [
        ("zip", gzip.compress(CSV)),
        ("gzip", b"plain,csv\n1,2\n"),
        ("none", gzip.compress(CSV)),
        ("tar", gzip.compress(CSV)),
    ],
    ids=["zip-got-gzip", "gzip-got-plain", "none-got-gzip", "tar-got-plain-gzip"],
)
def test_content_contradicting_the_declared_packing_is_a_mismatch(
    workdir: Path, packing: str, content: bytes
) -> None:
    error = refusal(io.BytesIO(content), workdir, name="delivery", packing=packing)

    assert error.reason == Reason.FORMAT_MISMATCH


def test_csv_named_zip_is_a_mismatch_when_the_contract_says_none(
    tmp_path: Path, workdir: Path
) -> None:
    archive = make_zip(tmp_path / "orders.csv", {"a.csv": CSV})

    assert refusal(archive, workdir, packing="none").reason == Reason.FORMAT_MISMATCH


# ------------------------------------------------------------------ robustness


def seed_archives() -> dict[str, bytes]:
    def zip_of(method: int) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=method) as zf:
            zf.writestr("d/", b"")
            zf.writestr("d/a.csv", CSV[:40_000])
            zf.writestr("b.csv", CSV[:500])
        return buffer.getvalue()

    def tar_of(mode: str) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as tf:  # type: ignore[call-overload]
            for name in ("a.csv", "d/b.csv"):
                info = tarfile.TarInfo(name)
                info.size = 40_000
                tf.addfile(info, io.BytesIO(CSV[:40_000]))
        return bytes(buffer.getvalue())

    return {
        "zip-deflate": zip_of(zipfile.ZIP_DEFLATED),
        "zip-stored": zip_of(zipfile.ZIP_STORED),
        "zip-lzma": zip_of(zipfile.ZIP_LZMA),
        "tar": tar_of("w"),
        "tar.gz": tar_of("w:gz"),
        "tar.xz": tar_of("w:xz"),
        "gzip": gzip.compress(CSV[:40_000]) * 2,
    }


@pytest.mark.parametrize("kind", sorted(seed_archives()))
def test_mutated_archives_are_refused_with_a_reason_or_read_never_crash(
    workdir: Path, kind: str
) -> None:
    rng = random.Random(20240101)
    original = seed_archives()[kind]
    refused = 0
    for _ in range(60):
        data = bytearray(original)
        if rng.random() < 0.7:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            del data[rng.randrange(len(data)) :]
        try:
            read_all(io.BytesIO(bytes(data)), workdir, name="mutated")
        except RefusedError:
            refused += 1  # anything else escapes and fails the test
        assert list(workdir.iterdir()) == []
    assert refused > 0


# ------------------------------------------------------- archives the lane does not open

SEVEN_ZIP_HEADER = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24)
RAR5_HEADER = b"Rar!\x1a\x07\x01\x00" + bytes(24)


def windows_stub() -> bytes:
    """The smallest DOS/PE header a self-extractor starts with: ``MZ`` pointing at ``PE``."""
    stub = bytearray(0x80)
    stub[:2] = b"MZ"
    struct.pack_into("<L", stub, 0x3C, 0x40)
    stub[0x40:0x44] = b"PE\x00\x00"
    return bytes(stub)


@pytest.mark.parametrize(
    ("name", "body", "what"),
    [
        ("pos.7z", SEVEN_ZIP_HEADER, "7z archive"),
        ("pos.csv", SEVEN_ZIP_HEADER, "7z archive"),
        ("pos.rar", RAR5_HEADER, "RAR archive"),
        ("pos.exe", b"SFX", "executable"),
    ],
)
def test_archive_formats_the_lane_does_not_open_are_unsupported_format(
    tmp_path: Path, workdir: Path, name: str, body: bytes, what: str
) -> None:
    path = tmp_path / name
    path.write_bytes(windows_stub() + make_zip_bytes() if body == b"SFX" else body)

    error = refusal(path, workdir)

    assert error.reason == Reason.ARCHIVE_UNSUPPORTED_FORMAT
    assert what in error.message


def make_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", CSV[:100])
    return buffer.getvalue()


def test_a_self_extracting_zip_named_zip_is_unsupported_format(
    tmp_path: Path, workdir: Path
) -> None:
    path = tmp_path / "pos.zip"
    path.write_bytes(windows_stub() + make_zip_bytes())

    assert refusal(path, workdir).reason == Reason.ARCHIVE_UNSUPPORTED_FORMAT


def test_a_zstd_stream_made_by_the_cli_is_unsupported_format(
    tmp_path: Path, workdir: Path, run: Any
) -> None:
    (tmp_path / "a.csv").write_bytes(CSV)
    run("zstd", "-q", "a.csv", "-o", "a.csv.zst", cwd=tmp_path)

    assert refusal(tmp_path / "a.csv.zst", workdir).reason == Reason.ARCHIVE_UNSUPPORTED_FORMAT


def test_a_text_file_starting_with_mz_is_still_data(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_bytes(b"MZ_code,value\n" + CSV)

    read_all(path, workdir, name="codes.csv")


def test_a_gz_that_is_not_gzip_is_corrupt_naming_what_it_is(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "pos.csv.gz"
    path.write_bytes(CSV)

    error = refusal(path, workdir)

    assert error.reason == Reason.ARCHIVE_CORRUPT
    assert "(.gz)" in error.message
    assert "plain data" in error.message


def test_a_zip_of_folders_only_made_by_the_cli_is_an_empty_archive(
    tmp_path: Path, workdir: Path, run: Any
) -> None:
    (tmp_path / "tree" / "a" / "b").mkdir(parents=True)
    run("zip", "-qr", "../folders.zip", ".", cwd=tmp_path / "tree")

    error = refusal(tmp_path / "folders.zip", workdir)

    assert error.reason == Reason.ARCHIVE_EMPTY
    assert "folders only" in error.message


def test_a_tar_of_folders_only_is_an_empty_archive(tmp_path: Path, workdir: Path) -> None:
    archive = make_tar(tmp_path / "d.tar", [tar_entry("x/", tarfile.DIRTYPE)])

    assert refusal(archive, workdir).reason == Reason.ARCHIVE_EMPTY


def test_packing_none_refuses_an_archive_the_lane_does_not_open(
    tmp_path: Path, workdir: Path
) -> None:
    path = tmp_path / "pos.csv"
    path.write_bytes(RAR5_HEADER)

    assert refusal(path, workdir, packing="none").reason == Reason.FORMAT_MISMATCH


def verdict(source: Path, workdir: Path) -> tuple[object, ...]:
    """What unpacking says: the refusal, or the members' bytes when it accepts."""
    try:
        members = []
        for member in unpack(source, name=source.name, workdir=workdir):
            with member.open() as fh:
                members.append((member.path, fh.read()))
    except RefusedError as error:
        return (error.reason, error.message, error.member)
    return tuple(members)


@pytest.mark.parametrize("damage", ["crc", "size", "stream"])
def test_a_damaged_deflated_entry_gets_zipfiles_verdict_with_or_without_the_fast_inflater(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    archive = make_zip(tmp_path / "bad.zip", {"a.csv": CSV * 50})
    raw = bytearray(archive.read_bytes())
    central = raw.rindex(b"PK\x01\x02")
    if damage == "crc":  # the directory promises another CRC than the bytes have
        raw[14:18] = raw[central + 16 : central + 20] = b"\x00\x00\x00\x00"
    elif damage == "size":  # ... or a larger size (zipfile accepts it: the CRC matches)
        raw[central + 24 : central + 28] = struct.pack("<L", len(CSV) * 50 + 1)
    else:  # the deflate stream itself is broken halfway
        middle = 30 + len("a.csv") + 200
        raw[middle : middle + 64] = b"\xff" * 64
    archive.write_bytes(raw)
    fast = verdict(archive, workdir)
    monkeypatch.setattr(zip_format, "_fast_inflater", lambda: None)
    assert fast == verdict(archive, workdir)
    if damage == "crc":
        assert fast[0] == Reason.ARCHIVE_CRC
