"""Decryptor against messages made by the gpg CLI: good, hostile and broken."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest

from etl_core.scratch import OWNER_FILE
from file_processing import decrypt
from file_processing.decrypt import Decryptor
from file_processing.errors import GpgError, RefusedError
from file_processing.limits import MIB, UnpackLimits
from file_processing.reasons import Reason
from file_processing.sniff import Kind, sniff


@pytest.fixture
def decryptor(pgp: Any, workdir: Path) -> Any:
    with Decryptor(pgp.recipient_secret, workdir=workdir) as d:
        yield d


def refused(decryptor: Decryptor, message: Path, tmp_path: Path, **kwargs: Any) -> RefusedError:
    """Decrypt expecting a refusal; assert no plaintext reached the output or a scratch file."""
    output = tmp_path / "plain.out"
    with pytest.raises(RefusedError) as caught:
        decryptor.decrypt(message, output, **kwargs)
    assert not output.exists()
    scratch = (tmp_path / "work").rglob("*")
    assert [p for p in scratch if p.is_file() and p.name != OWNER_FILE] == []  # no plaintext
    return caught.value


# ------------------------------------------------------------------ success


def test_binary_message_decrypts_into_a_stream(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "orders.csv.gpg")
    output = io.BytesIO()

    result = decryptor.decrypt(message, output)

    assert output.getvalue() == plain_csv.read_bytes()
    assert result.size == plain_csv.stat().st_size
    assert result.recipient == pgp.recipient_fpr
    assert result.literal_name == "orders.csv"
    assert result.signer is None


def test_armored_message_decrypts_to_a_path(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "orders.csv.asc", armor=True)
    output = tmp_path / "orders.csv"

    with message.open("rb") as source:
        decryptor.decrypt(source, output)

    assert output.read_bytes() == plain_csv.read_bytes()


def test_armored_secret_key_material_is_accepted(pgp: Any, plain_csv: Path, tmp_path: Path) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg")
    with Decryptor(pgp.recipient_secret_armored) as decryptor:
        output = io.BytesIO()
        decryptor.decrypt(message, output)

    assert output.getvalue() == plain_csv.read_bytes()


def test_passphrase_protected_key_decrypts_with_its_passphrase(
    pgp: Any, plain_csv: Path, tmp_path: Path
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg", to="protected@example.test")
    with Decryptor(pgp.protected_secret, passphrase=pgp.passphrase) as decryptor:
        output = io.BytesIO()
        decryptor.decrypt(message, output)

    assert output.getvalue() == plain_csv.read_bytes()


def test_vendor_signature_is_verified_and_reported(
    pgp: Any, plain_csv: Path, tmp_path: Path
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg", sign_as="vendor@example.test")
    with Decryptor(pgp.recipient_secret, signer_keys=[pgp.vendor_public]) as decryptor:
        result = decryptor.decrypt(message, io.BytesIO())

    assert result.signer == pgp.vendor_fpr


def test_gpg_cli_messages_are_sniffed_as_pgp(pgp: Any, plain_csv: Path, tmp_path: Path) -> None:
    binary = pgp.encrypt(plain_csv, tmp_path / "m.gpg").read_bytes()
    armored = pgp.encrypt(plain_csv, tmp_path / "m.asc", armor=True).read_bytes()

    assert sniff(binary[:1024]) is Kind.PGP
    assert sniff(armored[:1024]) is Kind.PGP


# ------------------------------------------------------------------ refusals


def test_message_for_another_key_is_refused_no_key(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg", to="stranger@example.test")

    assert refused(decryptor, message, tmp_path).reason == Reason.PGP_NO_KEY


def test_passphrase_only_message_is_refused_no_key(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path
) -> None:
    message = tmp_path / "sym.gpg"
    pgp.gpg_run(
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "pw",
        "-o",
        str(message),
        "--symmetric",
        str(plain_csv),
    )

    assert refused(decryptor, message, tmp_path).reason == Reason.PGP_NO_KEY


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_truncated_message_is_refused_truncated(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path, armor: bool
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg", armor=armor)
    raw = message.read_bytes()
    message.write_bytes(raw[: len(raw) // 2])

    assert refused(decryptor, message, tmp_path).reason == Reason.PGP_TRUNCATED


def test_modified_ciphertext_fails_the_integrity_check_and_releases_nothing(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg")
    raw = bytearray(message.read_bytes())
    raw[-10] ^= 0x01  # inside the trailing MDC packet
    message.write_bytes(raw)
    stream = io.BytesIO()

    with pytest.raises(RefusedError) as caught:
        decryptor.decrypt(message, stream)

    assert caught.value.reason == Reason.PGP_INTEGRITY
    assert stream.getvalue() == b""


def test_malformed_packet_is_refused_corrupt(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg")
    raw = bytearray(message.read_bytes())
    assert raw[0] == 0x84  # old-format public-key session key packet, one-byte length
    raw[1] = 5  # too short for the packet it announces
    message.write_bytes(raw)

    assert refused(decryptor, message, tmp_path).reason == Reason.PGP_CORRUPT


def test_message_without_mdc_is_refused_integrity(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path
) -> None:
    # gpg 2.2 still writes the old Symmetrically Encrypted Data packet (tag 9,
    # no MDC) under --rfc2440; newer versions refuse to, which would fail here.
    message = pgp.encrypt(plain_csv, tmp_path / "nomdc.gpg", extra=["--rfc2440"])
    packets = pgp.gpg_run("--list-packets", str(message), check=False).decode()
    assert ":encrypted data packet:" in packets
    assert "mdc_method" not in packets

    error = refused(decryptor, message, tmp_path)

    assert error.reason == Reason.PGP_INTEGRITY
    assert "no MDC" in error.message


def test_compression_bomb_is_stopped_by_the_ratio_limit(
    pgp: Any, decryptor: Decryptor, tmp_path: Path
) -> None:
    message = pgp.encrypt_zeros(tmp_path / "bomb.gpg", 200 * MIB)
    assert message.stat().st_size < MIB

    error = refused(decryptor, message, tmp_path, limits=UnpackLimits(max_ratio=50))

    assert error.reason == Reason.PGP_BOMB
    assert "ratio" in error.message


def test_plaintext_over_the_size_limit_is_refused_as_a_bomb(
    pgp: Any, decryptor: Decryptor, tmp_path: Path
) -> None:
    message = pgp.encrypt_zeros(tmp_path / "big.gpg", 16 * MIB)
    limits = UnpackLimits(max_total_bytes=4 * MIB, max_ratio=1_000_000)

    error = refused(decryptor, message, tmp_path, limits=limits)

    assert error.reason == Reason.PGP_BOMB


def test_signed_but_unencrypted_data_is_refused(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path
) -> None:
    message = tmp_path / "signed.gpg"
    pgp.gpg_run("-u", "vendor@example.test", "-o", str(message), "--sign", str(plain_csv))

    assert refused(decryptor, message, tmp_path).reason == Reason.PGP_NOT_ENCRYPTED


def test_signature_from_an_unknown_key_is_refused_when_a_vendor_key_is_required(
    pgp: Any, plain_csv: Path, tmp_path: Path, workdir: Path
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg", sign_as="impostor@example.test")
    with Decryptor(pgp.recipient_secret, signer_keys=[pgp.vendor_public], workdir=workdir) as d:
        error = refused(d, message, tmp_path)

    assert error.reason == Reason.PGP_BAD_SIGNATURE


def test_unsigned_message_is_refused_when_a_vendor_key_is_required(
    pgp: Any, plain_csv: Path, tmp_path: Path, workdir: Path
) -> None:
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg")
    with Decryptor(pgp.recipient_secret, signer_keys=[pgp.vendor_public], workdir=workdir) as d:
        error = refused(d, message, tmp_path)

    assert error.reason == Reason.PGP_UNSIGNED


def test_unknown_signer_is_accepted_when_no_vendor_key_is_configured(
    pgp: Any, decryptor: Decryptor, plain_csv: Path, tmp_path: Path
) -> None:
    # gpg exits 2 here (it cannot check the signature); decryption itself is sound.
    message = pgp.encrypt(plain_csv, tmp_path / "m.gpg", sign_as="impostor@example.test")
    output = io.BytesIO()

    decryptor.decrypt(message, output)

    assert output.getvalue() == plain_csv.read_bytes()


# ------------------------------------------------------------------ key material and lifecycle


def test_public_key_alone_is_not_usable_as_the_secret_key(pgp: Any) -> None:
    with pytest.raises(GpgError, match="secret_key"):
        Decryptor(pgp.vendor_public)


def test_wrong_passphrase_fails_at_start_up(pgp: Any) -> None:
    with pytest.raises(GpgError, match="passphrase"):
        Decryptor(pgp.protected_secret, passphrase="not the passphrase")


def test_missing_passphrase_fails_at_start_up(pgp: Any) -> None:
    with pytest.raises(GpgError, match="passphrase"):
        Decryptor(pgp.protected_secret)


def test_signer_key_material_that_is_not_a_key_is_refused_at_start_up(pgp: Any) -> None:
    with pytest.raises(GpgError, match=r"signer_keys\[0\]"):
        Decryptor(pgp.recipient_secret, signer_keys=[b"not a key"])


def test_closing_removes_the_temporary_keyring(pgp: Any, workdir: Path) -> None:
    decryptor = Decryptor(pgp.recipient_secret, workdir=workdir)
    home = decryptor.keyring
    assert home.is_dir()
    assert home.stat().st_mode & 0o777 == 0o700

    decryptor.close()

    assert not home.exists()
    assert list(workdir.iterdir()) == []
    with pytest.raises(GpgError, match="closed"):
        decryptor.decrypt(io.BytesIO(b""), io.BytesIO())


def _agents_of(home: Path) -> list[str]:
    """The processes whose command line names ``home`` and gpg-agent."""
    found = []
    for process in Path("/proc").iterdir():
        try:
            command = (process / "cmdline").read_bytes()
        except OSError:
            continue
        if b"gpg-agent" in command and str(home).encode() in command:
            found.append(process.name)
    return found


def test_closing_stops_the_keyrings_gpg_agent_without_gpgconf(
    pgp: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decryptor = Decryptor(pgp.recipient_secret, workdir=workdir)
    home = decryptor.keyring
    assert _agents_of(home)  # the start-up probe decrypted with the secret key
    ran: list[list[str]] = []
    monkeypatch.setattr(decrypt.subprocess, "run", lambda args, **_: ran.append(args))

    decryptor.close()

    assert ran == []  # told on its socket
    deadline = time.monotonic() + 10
    while _agents_of(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _agents_of(home) == []
    assert not home.exists()


def test_missing_gpg_binary_is_a_gpg_error(pgp: Any) -> None:
    with pytest.raises(GpgError, match="gpg_binary"):
        Decryptor(pgp.recipient_secret, gpg_binary="gpg-that-does-not-exist")
