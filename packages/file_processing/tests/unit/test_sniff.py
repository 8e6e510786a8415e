"""Magic-byte detection, on bytes built in memory."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import tarfile
import zipfile

import pytest

from file_processing.sniff import (
    SNIFF_SIZE,
    TAR_END_MARKER_SIZE,
    ZIP_TAIL_SIZE,
    Kind,
    PgpForm,
    is_pgp,
    is_tar_end_marker,
    pgp_form,
    sniff,
    zip_entries,
)


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.csv", b"a,b\n")
    return buffer.getvalue()


def tar_bytes(fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tf:
        info = tarfile.TarInfo("a.csv")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"a,b\n"))
    return buffer.getvalue()


def empty_zip() -> bytes:
    buffer = io.BytesIO()
    zipfile.ZipFile(buffer, "w").close()
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (zip_bytes(), Kind.ZIP),
        (empty_zip(), Kind.ZIP),
        (b"PK\x07\x08PK\x03\x04" + bytes(40), Kind.ZIP),
        (gzip.compress(b"a,b\n"), Kind.GZIP),
        (bz2.compress(b"a,b\n"), Kind.BZIP2),
        (bz2.compress(b""), Kind.BZIP2),
        (lzma.compress(b"a,b\n"), Kind.XZ),
        (tar_bytes(tarfile.USTAR_FORMAT), Kind.TAR),
        (tar_bytes(tarfile.GNU_FORMAT), Kind.TAR),
        (tar_bytes(tarfile.PAX_FORMAT), Kind.TAR),
        (b"id,name\n1,x\n", Kind.PLAIN),
        (b"", Kind.PLAIN),
        (b"BZh9 is how this line starts\n", Kind.PLAIN),
        (
            "\u00c1rt\u00e9r,\u00fct\u00f6\n".encode("latin-1"),
            Kind.PLAIN,
        ),
    ],
    ids=[
        "zip",
        "empty-zip",
        "split-zip",
        "gzip",
        "bzip2",
        "empty-bzip2",
        "xz",
        "ustar",
        "gnu-tar",
        "pax-tar",
        "csv",
        "empty",
        "bzh-text",
        "latin1-text",
    ],
)
def test_kind_is_decided_by_magic_bytes(data: bytes, kind: Kind) -> None:
    assert sniff(data[:SNIFF_SIZE]) is kind


@pytest.mark.parametrize(
    "head",
    [
        b"-----BEGIN PGP MESSAGE-----\n\nhQEMA...",
        b"\xef\xbb\xbf\r\n-----BEGIN PGP MESSAGE-----\n",
        b"\x84\x5e\x03" + bytes(8),  # old-format PKESK, version 3
        b"\xc1\x5e\x03" + bytes(8),  # new-format PKESK, version 3
        b"\x8c\x0d\x04\x09\x03",  # old-format SKESK, version 4
        b"\xa8\x03PGP",  # marker packet
    ],
    ids=["armored", "armored-after-bom", "pkesk-old", "pkesk-new", "skesk", "marker"],
)
def test_encrypted_openpgp_messages_are_recognised(head: bytes) -> None:
    assert is_pgp(head)
    assert sniff(head) is Kind.PGP


@pytest.mark.parametrize(
    "head",
    [
        b"-----BEGIN PGP SIGNED MESSAGE-----\n",
        b"\x84\x5e\x07" + bytes(8),  # PKESK tag with an impossible version
        b"\xa3\x01" + bytes(8),  # compressed data packet: not an encrypted message
        b"\xc1\xe0\x03",  # partial length on a session-key packet
        b"\x90",
    ],
    ids=["clearsigned", "bad-version", "compressed-packet", "partial-length", "short"],
)
def test_other_bytes_are_not_mistaken_for_an_encrypted_message(head: bytes) -> None:
    assert not is_pgp(head)


def test_archive_and_compression_flags() -> None:
    assert {k for k in Kind if k.is_archive} == {Kind.ZIP, Kind.GZIP, Kind.BZIP2, Kind.XZ, Kind.TAR}
    assert {k for k in Kind if k.is_compression} == {Kind.GZIP, Kind.BZIP2, Kind.XZ}


# ------------------------------------------------------------------ OpenPGP forms


def armor(kind: bytes, body: bytes) -> bytes:
    encoded = base64.b64encode(body)
    return b"-----BEGIN PGP %s-----\nVersion: x\n\n%s\n=abcd\n-----END PGP %s-----\n" % (
        kind,
        encoded,
        kind,
    )


PKESK = b"\x84\x5e\x03" + bytes(60)  # new-style header: tag 1, version 3
ONE_PASS = b"\x90\x0d\x03\x00\x08\x16" + bytes(9)  # old-style header: tag 4, version 3
COMPRESSED = b"\xa3\x01" + bytes(20)  # old-style, indeterminate length, ZIP algorithm


@pytest.mark.parametrize(
    ("head", "form"),
    [
        (PKESK, PgpForm.ENCRYPTED),
        (armor(b"MESSAGE", PKESK), PgpForm.ENCRYPTED),
        (b"From: a@b\r\nSubject: x\r\n\r\n" + armor(b"MESSAGE", PKESK), PgpForm.ENCRYPTED),
        (ONE_PASS, PgpForm.SIGNED),
        (COMPRESSED, PgpForm.SIGNED),
        (armor(b"MESSAGE", ONE_PASS), PgpForm.SIGNED),
        (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nid\n", PgpForm.CLEARSIGNED),
        (armor(b"PUBLIC KEY BLOCK", b"\x99"), PgpForm.OTHER),
        (b"id,name\n1,x\n", None),
        (b"note,-----BEGIN PGP MESSAGE----- quoted\n", None),
        (b"\x00\x01binary\n-----BEGIN PGP MESSAGE-----\n", None),
    ],
)
def test_openpgp_forms_are_told_apart(head: bytes, form: PgpForm | None) -> None:
    assert pgp_form(head) is form
    assert is_pgp(head) is (form is PgpForm.ENCRYPTED)


def zip_of(names: list[str], comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in names:
            zf.writestr(name, b"a,b\n")
        zf.comment = comment
    return buffer.getvalue()


@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_zip_s_end_record_says_how_many_entries_it_holds(count: int) -> None:
    data = zip_of([f"m{i}.csv" for i in range(count)], comment=b"PK vendor note " * 40)

    assert zip_entries(data[-ZIP_TAIL_SIZE:]) == count


@pytest.mark.parametrize(
    "tail",
    [
        b"",
        b"a,b\n1,2\n" * 100,
        zip_of(["a.csv"])[:-5],
        b"PK\x05\x06" + b"\0" * 6 + b"\xff\xff" + b"\0" * 10,
    ],
    ids=["empty", "not-a-zip", "end-record-cut-short", "zip64-deferred"],
)
def test_a_tail_without_a_plain_end_record_declares_no_entry_count(tail: bytes) -> None:
    assert zip_entries(tail) is None


@pytest.mark.parametrize("kind", list(Kind))
def test_every_kind_is_opened_refused_or_data(kind: Kind) -> None:
    """An archive format (docs/extending.md) is opened or refused, never both or neither;
    a refused one is named in words in the refusal."""
    roles = [kind.is_archive, kind.is_unsupported_archive, kind in (Kind.PLAIN, Kind.PGP)]

    assert roles.count(True) == 1
    if kind.is_unsupported_archive:
        assert not kind.description.endswith(" data")


def test_a_tar_end_marker_is_two_whole_zero_blocks_at_the_start() -> None:
    assert is_tar_end_marker(bytes(TAR_END_MARKER_SIZE))
    assert is_tar_end_marker(bytes(TAR_END_MARKER_SIZE) + b"anything after the end")
    assert not is_tar_end_marker(bytes(TAR_END_MARKER_SIZE - 1))
    assert not is_tar_end_marker(bytes(512) + b"x" + bytes(511))
    assert not is_tar_end_marker(b"")
    assert sniff(bytes(TAR_END_MARKER_SIZE)) is Kind.PLAIN  # zeros alone are no tar
