"""Content decides for OpenPGP too: forgotten encryption, signed-only and clear-signed data,
armour after an e-mail preamble, messages encrypted twice, and the signature policy.

Every message is made by the gpg command line (the session's throw-away keyring).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from file_processing.decrypt import Decryptor
from file_processing.delivery import Encryption, open_delivery
from file_processing.errors import GpgError, RefusedError
from file_processing.reasons import Reason

CSV = b"id,amount\n1,9.50\n2,3.25\n"


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "pos_20261101.csv"
    path.write_bytes(CSV)
    return path


def members(path: Path, decryptor: Decryptor | None, workdir: Path, **kwargs: Any) -> list[bytes]:
    return [
        m.file.read_bytes()
        for m in open_delivery(
            path, name=kwargs.pop("name", path.name), decryptor=decryptor, workdir=workdir, **kwargs
        )
    ]


def refusal(path: Path, decryptor: Decryptor | None, workdir: Path, **kwargs: Any) -> RefusedError:
    with pytest.raises(RefusedError) as caught:
        members(path, decryptor, workdir, **kwargs)
    assert list(workdir.iterdir()) == []
    assert path.exists()
    return caught.value


def export_public(pgp: Any, uid: str) -> bytes:
    key: bytes = pgp.gpg_run("--armor", "--export", uid)
    return key


def sign(
    pgp: Any, plain: Path, dest: Path, *mode: str, signer: str = "vendor@example.test"
) -> Path:
    pgp.gpg_run("--trust-model", "always", "-u", signer, "-o", str(dest), *mode, str(plain))
    return dest


# ------------------------------------------------------------ not encrypted


@pytest.mark.parametrize("suffix", [".gpg", ".pgp", ".asc", ".GPG"])
def test_a_plaintext_named_like_an_encrypted_file_is_not_encrypted(
    pgp: Any, tmp_path: Path, workdir: Path, suffix: str
) -> None:
    path = tmp_path / f"pos_20261101.csv{suffix}"
    path.write_bytes(CSV)

    with Decryptor(pgp.recipient_secret) as decryptor:
        error = refusal(path, decryptor, workdir)

    assert error.reason is Reason.PGP_NOT_ENCRYPTED
    assert "its name promises" in error.message


def test_a_plaintext_under_a_contract_that_says_encrypted_is_not_encrypted(
    plain: Path, workdir: Path
) -> None:
    error = refusal(plain, None, workdir, encryption=Encryption.PGP)

    assert error.reason is Reason.PGP_NOT_ENCRYPTED
    assert "the contract declares" in error.message


@pytest.mark.parametrize(
    ("mode", "what"),
    [
        (("--sign",), "signed or literal"),
        (("--sign", "--armor"), "signed or literal"),
        (("--clearsign",), "clear-signed"),
        (("--detach-sign", "--armor"), "non-message"),
    ],
)
def test_signed_only_openpgp_data_is_recognised_and_not_encrypted(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path, mode: tuple[str, ...], what: str
) -> None:
    message = sign(pgp, plain, tmp_path / "pos_20261101.csv", *mode)

    with Decryptor(pgp.recipient_secret) as decryptor:
        error = refusal(message, decryptor, workdir)

    assert error.reason is Reason.PGP_NOT_ENCRYPTED
    assert what in error.message


def test_a_literal_only_message_made_by_gpg_store_is_not_encrypted(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path
) -> None:
    message = tmp_path / "pos.csv.gpg"
    pgp.gpg_run("-o", str(message), "--store", str(plain))

    assert refusal(message, None, workdir).reason is Reason.PGP_NOT_ENCRYPTED


# ------------------------------------------------------------ encrypted forms


def test_an_armoured_message_after_an_email_preamble_is_decrypted(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path
) -> None:
    armored = pgp.encrypt(plain, tmp_path / "m.asc", armor=True)
    mail = tmp_path / "pos_20261101.csv.asc"
    preamble = b"From: vendor@example.test\r\nSubject: daily file\r\n\r\nHello,\r\n" * 40
    mail.write_bytes(preamble + armored.read_bytes() + b"\r\n-- \r\nVendor support\r\n")

    with Decryptor(pgp.recipient_secret) as decryptor:
        assert members(mail, decryptor, workdir) == [CSV]


def test_a_message_encrypted_twice_is_decrypted_through_both_layers(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path
) -> None:
    once = pgp.encrypt(plain, tmp_path / "once.gpg")
    twice = pgp.encrypt(once, tmp_path / "pos_20261101.csv.gpg", armor=True)

    with Decryptor(pgp.recipient_secret) as decryptor:
        assert members(twice, decryptor, workdir) == [CSV]
    assert list(workdir.iterdir()) == []


def test_a_message_encrypted_three_times_is_refused_as_nested(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path
) -> None:
    layer = plain
    for depth in range(3):
        layer = pgp.encrypt(layer, tmp_path / f"layer{depth}.gpg")

    with Decryptor(pgp.recipient_secret) as decryptor:
        error = refusal(layer, decryptor, workdir)

    assert error.reason is Reason.PGP_NESTED


# ------------------------------------------------------------ signature policy


def test_if_present_accepts_an_unsigned_message(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path
) -> None:
    message = pgp.encrypt(plain, tmp_path / "pos.csv.gpg")
    with Decryptor(
        pgp.recipient_secret, signer_keys=[pgp.vendor_public], signature="if_present"
    ) as decryptor:
        assert members(message, decryptor, workdir) == [CSV]


def test_if_present_refuses_a_signature_from_an_unknown_key(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path
) -> None:
    message = pgp.encrypt(plain, tmp_path / "pos.csv.gpg", sign_as="impostor@example.test")
    with Decryptor(
        pgp.recipient_secret, signer_keys=[pgp.vendor_public], signature="if_present"
    ) as decryptor:
        error = refusal(message, decryptor, workdir)

    assert error.reason is Reason.PGP_BAD_SIGNATURE


def test_any_of_several_signer_keys_may_sign_under_required(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path
) -> None:
    by_stranger = pgp.encrypt(plain, tmp_path / "a.csv.gpg", sign_as="stranger@example.test")
    by_vendor = pgp.encrypt(plain, tmp_path / "b.csv.gpg", sign_as="vendor@example.test")
    keys = [export_public(pgp, "stranger@example.test"), pgp.vendor_public]
    with Decryptor(pgp.recipient_secret, signer_keys=keys, signature="required") as decryptor:
        assert members(by_stranger, decryptor, workdir) == [CSV]
        assert members(by_vendor, decryptor, workdir) == [CSV]


def test_ignore_accepts_a_signature_from_an_unknown_key(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path
) -> None:
    message = pgp.encrypt(plain, tmp_path / "pos.csv.gpg", sign_as="impostor@example.test")
    with Decryptor(
        pgp.recipient_secret, signer_keys=[pgp.vendor_public], signature="ignore"
    ) as decryptor:
        assert members(message, decryptor, workdir) == [CSV]


def test_a_required_signature_may_sit_on_the_inner_layer(
    pgp: Any, plain: Path, tmp_path: Path, workdir: Path
) -> None:
    inner = pgp.encrypt(plain, tmp_path / "inner.gpg", sign_as="vendor@example.test")
    outer = pgp.encrypt(inner, tmp_path / "pos.csv.gpg")
    unsigned = pgp.encrypt(pgp.encrypt(plain, tmp_path / "u1.gpg"), tmp_path / "u2.gpg")
    with Decryptor(pgp.recipient_secret, signer_keys=[pgp.vendor_public]) as decryptor:
        assert members(outer, decryptor, workdir) == [CSV]
        assert refusal(unsigned, decryptor, workdir).reason is Reason.PGP_UNSIGNED


def test_a_signature_policy_without_a_signer_key_is_refused_at_start(pgp: Any) -> None:
    with pytest.raises(GpgError, match="signer key"):
        Decryptor(pgp.recipient_secret, signature="if_present")
