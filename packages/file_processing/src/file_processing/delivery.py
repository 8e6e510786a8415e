"""One delivery, opened: decrypt when it is OpenPGP, then unpack, yielding data members.

This is the read side every file_processing command shares: the landing object
is never modified; decrypted plaintext and unpacked members live in a scratch
directory that is removed when the iterator ends. Encryption and packing are
judged by magic bytes, never by extension; what the contract declares must
agree with what the bytes say.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Generator
from enum import StrEnum
from pathlib import Path

from file_processing.decrypt import Decryptor
from file_processing.errors import RefusedError
from file_processing.limits import UnpackLimits
from file_processing.reasons import Reason
from file_processing.sniff import SNIFF_SIZE, is_pgp
from file_processing.unpack import DEFAULT_LIMITS, Member, Packing, unpack

__all__ = ["Encryption", "open_delivery", "plaintext_name"]

_PGP_SUFFIXES = (".pgp", ".gpg", ".asc")


class Encryption(StrEnum):
    """How a dataset contract says its deliveries are encrypted."""

    AUTO = "auto"
    NONE = "none"
    PGP = "pgp"


def plaintext_name(name: str) -> str:
    """The delivery's name without its OpenPGP suffix (``pos.csv.zip.pgp`` -> ``pos.csv.zip``)."""
    lowered = name.lower()
    for suffix in _PGP_SUFFIXES:
        if lowered.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def open_delivery(
    source: str | os.PathLike[str],
    *,
    name: str,
    packing: Packing | str = Packing.AUTO,
    encryption: Encryption | str = Encryption.AUTO,
    decryptor: Decryptor | None = None,
    limits: UnpackLimits = DEFAULT_LIMITS,
    workdir: str | os.PathLike[str] | None = None,
) -> Generator[Member, None, None]:
    """Yield the data members of the delivery at ``source`` (a local file).

    Like :func:`~file_processing.unpack.unpack`, the delivery is valid only once
    the iterator is exhausted; stage what you make of members until then.

    Raises:
        RefusedError: encryption or packing contradicts the contract, an encrypted
            delivery arrives with no key configured, or decrypting/unpacking refused it.
        GpgError: gpg could not run.
    """
    mode = Encryption(encryption)
    with Path(source).open("rb") as stream:
        encrypted = is_pgp(stream.read(SNIFF_SIZE))
    _check_encryption(mode, encrypted, name)
    if not encrypted:
        yield from unpack(source, name=name, packing=packing, limits=limits, workdir=workdir)
        return
    if decryptor is None:
        raise RefusedError(
            Reason.PGP_NO_KEY,
            f"{name} is OpenPGP-encrypted but its contract configures no decryption key",
        )
    with tempfile.TemporaryDirectory(prefix="delivery-", dir=workdir) as scratch:
        plaintext = Path(scratch) / "plaintext"
        decryptor.decrypt(source, plaintext, limits=limits, name=name)
        yield from unpack(
            plaintext, name=plaintext_name(name), packing=packing, limits=limits, workdir=scratch
        )


def _check_encryption(mode: Encryption, encrypted: bool, name: str) -> None:
    if mode is Encryption.PGP and not encrypted:
        raise RefusedError(
            Reason.FORMAT_MISMATCH,
            f"{name}: the contract declares OpenPGP encryption but the content is not encrypted",
        )
    if mode is Encryption.NONE and encrypted:
        raise RefusedError(
            Reason.FORMAT_MISMATCH,
            f"{name}: the contract declares no encryption but the content is OpenPGP-encrypted",
        )
