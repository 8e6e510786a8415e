"""A zip's first entry inflated while gpg decrypts it: taken only when the zip's directory
describes exactly that entry within the limits, else thrown away and unpacked as ever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl_core.errors import ConfigError
from etl_core.testing.deliveries import zipped
from file_processing.archives.session import Session
from file_processing.archives.zip import ZipFormat
from file_processing.decrypt import Decryptor
from file_processing.delivery import open_delivery
from file_processing.errors import RefusedError
from file_processing.inflate_ahead import InflatedAhead
from file_processing.limits import UnpackLimits
from file_processing.reasons import Reason
from file_processing.unpack import DEFAULT_LIMITS, unpack, zip_head_inflater

pytest.importorskip("isal")

BODY = b"id,amount\n" + b"".join(b"%d,%d.25\n" % (i, i % 900) for i in range(20_000))


def inflated_ahead(data: bytes, target: Path, limits: UnpackLimits = DEFAULT_LIMITS) -> Any:
    """Feed ``data`` in uneven pieces, as gpg's pipe would."""
    head = zip_head_inflater(target, limits)
    assert head is not None
    for start in range(0, len(data), 7_777):
        head.feed(data[start : start + 7_777])
    return head.finish()


@pytest.fixture
def no_inflating(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if an entry is inflated again (by ISA-L or zipfile's reader)."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("inflated again")

    monkeypatch.setattr(ZipFormat, "_inflate_fast", refuse)
    monkeypatch.setattr(Session, "spool", refuse)


def test_the_first_entry_inflated_ahead_is_taken_as_the_member(
    tmp_path: Path, no_inflating: None
) -> None:
    archive = tmp_path / "pos.csv.zip"
    archive.write_bytes(zipped({"pos.csv": BODY}))
    ahead = inflated_ahead(archive.read_bytes(), tmp_path / "ahead")
    assert (ahead.size, ahead.data_start) == (len(BODY), 30 + len("pos.csv"))

    (member,) = [
        (m.path, m.file.read_bytes()) for m in unpack(archive, name=archive.name, ahead=ahead)
    ]

    assert member == ("pos.csv.zip/pos.csv", BODY)
    assert not ahead.file.exists()  # moved in as the member, then removed with it


def test_an_entry_inflated_ahead_that_the_directory_does_not_describe_is_thrown_away(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "pos.csv.zip"
    archive.write_bytes(zipped({"pos.csv": BODY}))
    other = inflated_ahead(zipped({"pos.csv": BODY[:-9]}), tmp_path / "ahead")
    assert other is not None

    found = [m.file.read_bytes() for m in unpack(archive, name=archive.name, ahead=other)]

    assert found == [BODY]
    assert not other.file.exists()


def test_an_entry_inflated_ahead_is_never_taken_for_a_later_one(tmp_path: Path) -> None:
    first, second = b"id\n1\n" * 1000, b"id\n2\n" * 1000
    archive = tmp_path / "two.zip"
    archive.write_bytes(zipped({"a.csv": first, "b.csv": second}))
    ahead = inflated_ahead(archive.read_bytes(), tmp_path / "ahead")
    forged = InflatedAhead(ahead.file, ahead.data_start, ahead.consumed, len(second), 0)

    found = [m.file.read_bytes() for m in unpack(archive, name=archive.name, ahead=forged)]

    assert found == [first, second]


def test_an_entry_past_the_limits_is_not_kept_ahead_and_refused_as_ever(tmp_path: Path) -> None:
    limits = UnpackLimits(max_member_bytes=len(BODY) - 1)
    archive = tmp_path / "pos.csv.zip"
    archive.write_bytes(zipped({"pos.csv": BODY}))
    assert inflated_ahead(archive.read_bytes(), tmp_path / "ahead", limits) is None
    assert not (tmp_path / "ahead").exists()
    whole = inflated_ahead(archive.read_bytes(), tmp_path / "whole")

    with pytest.raises(RefusedError) as caught:
        list(unpack(archive, name=archive.name, limits=limits, ahead=whole))

    assert caught.value.reason is Reason.ARCHIVE_TOO_LARGE
    assert not whole.file.exists()


@pytest.mark.parametrize(
    "data",
    [b"", b"PK\x03\x04", b"not a zip at all" * 10, zipped({"a.csv": BODY})[:2000]],
    ids=["empty", "header-cut", "not-zip", "stream-cut"],
)
def test_nothing_whole_is_nothing_kept(tmp_path: Path, data: bytes) -> None:
    assert inflated_ahead(data, tmp_path / "ahead") is None
    assert list(tmp_path.iterdir()) == []


def test_an_encrypted_zip_is_inflated_while_gpg_decrypts_it(
    pgp: Any, tmp_path: Path, workdir: Path, no_inflating: None
) -> None:
    archive = tmp_path / "pos_20261101.csv.zip"
    archive.write_bytes(zipped({"pos.csv": BODY}))
    sealed = pgp.encrypt(archive, tmp_path / "pos_20261101.csv.zip.pgp")
    with Decryptor(pgp.recipient_secret, workdir=workdir) as decryptor:
        found = [
            m.file.read_bytes()
            for m in open_delivery(sealed, name=sealed.name, decryptor=decryptor, workdir=workdir)
        ]
    assert found == [BODY]
    assert [p.name for p in workdir.iterdir() if not p.name.startswith("etl-decrypt")] == []


def test_a_modified_encrypted_zip_releases_nothing_inflated_ahead(
    pgp: Any, tmp_path: Path, workdir: Path
) -> None:
    archive = tmp_path / "pos_20261101.csv.zip"
    archive.write_bytes(zipped({"pos.csv": BODY}))
    sealed = pgp.encrypt(archive, tmp_path / "pos_20261101.csv.zip.pgp")
    data = bytearray(sealed.read_bytes())
    data[-30] ^= 0x01  # past the plaintext's first bytes: the MDC fails at the end
    sealed.write_bytes(bytes(data))
    with Decryptor(pgp.recipient_secret, workdir=workdir) as decryptor:
        with pytest.raises(RefusedError) as caught:
            list(open_delivery(sealed, name=sealed.name, decryptor=decryptor, workdir=workdir))
        assert caught.value.reason.value.startswith("pgp.")
        assert [p for p in workdir.rglob("*") if p.is_file() and p.name != ".owner"] == []


def test_an_unknown_packing_of_an_encrypted_delivery_is_the_unpackers_config_error(
    pgp: Any, tmp_path: Path, workdir: Path
) -> None:
    archive = tmp_path / "pos_20261101.csv.zip"
    archive.write_bytes(zipped({"pos.csv": BODY}))
    sealed = pgp.encrypt(archive, tmp_path / "pos_20261101.csv.zip.pgp")
    with (
        Decryptor(pgp.recipient_secret, workdir=workdir) as decryptor,
        pytest.raises(ConfigError) as caught,
    ):
        list(open_delivery(sealed, name=sealed.name, packing="rar", decryptor=decryptor))
    assert caught.value.fields == ("packing",)


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (UnpackLimits(max_total_bytes=len(BODY) - 1), Reason.ARCHIVE_TOO_LARGE),
        (UnpackLimits(max_ratio=2, ratio_floor_bytes=1024), Reason.ARCHIVE_RATIO),
    ],
    ids=["total", "ratio"],
)
def test_an_entry_inflated_ahead_past_the_deliverys_limits_is_not_taken_and_refused_as_ever(
    tmp_path: Path, limits: UnpackLimits, reason: Reason
) -> None:
    archive = tmp_path / "pos.csv.zip"
    archive.write_bytes(zipped({"pos.csv": BODY}))
    whole = inflated_ahead(archive.read_bytes(), tmp_path / "whole")  # under looser limits
    assert whole is not None

    with pytest.raises(RefusedError) as caught:
        list(unpack(archive, name=archive.name, limits=limits, ahead=whole))

    assert (caught.value.reason, caught.value.member) == (reason, "pos.csv.zip/pos.csv")
    assert not whole.file.exists()
