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
from file_processing.inflate_ahead import ZipHeadInflater
from file_processing.limits import UnpackLimits
from file_processing.reasons import Reason
from file_processing.sniff import PGP_SNIFF_SIZE, PgpForm, pgp_form
from file_processing.unpack import DEFAULT_LIMITS, Member, Packing, unpack, zip_head_inflater

__all__ = ["MAX_PGP_LAYERS", "Encryption", "open_delivery", "plaintext_name"]

_PGP_SUFFIXES = (".pgp", ".gpg", ".asc")
MAX_PGP_LAYERS = 2
"""Encryption layers decrypted (a message encrypted twice); one more is ``pgp.nested``."""


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
    form = _pgp_form_of(Path(source))
    _check_encryption(mode, form, name)
    if form is None:
        yield from unpack(source, name=name, packing=packing, limits=limits, workdir=workdir)
        return
    if decryptor is None:
        raise RefusedError(
            Reason.PGP_NO_KEY,
            f"{name} is OpenPGP-encrypted but its contract configures no decryption key",
        )
    with tempfile.TemporaryDirectory(prefix="delivery-", dir=workdir) as scratch:
        head = _head_inflater(Path(scratch), packing, limits)
        try:
            plaintext = _decrypt_layers(decryptor, Path(source), Path(scratch), limits, name, head)
        except BaseException:
            if head is not None:
                head.discard()
            raise
        ahead = None if head is None else head.finish()
        yield from unpack(
            plaintext,
            name=plaintext_name(name),
            packing=packing,
            limits=limits,
            workdir=scratch,
            ahead=ahead,
        )


def _head_inflater(
    scratch: Path, packing: Packing | str, limits: UnpackLimits
) -> ZipHeadInflater | None:
    """What inflates the first entry of a zip while gpg decrypts it (unless the contract
    declares a packing other than zip)."""
    if Packing(packing) not in (Packing.AUTO, Packing.ZIP):
        return None
    return zip_head_inflater(scratch / "first-entry", limits)


def _pgp_form_of(path: Path) -> PgpForm | None:
    with path.open("rb") as stream:
        return pgp_form(stream.read(PGP_SNIFF_SIZE))


def _decrypt_layers(
    decryptor: Decryptor,
    source: Path,
    scratch: Path,
    limits: UnpackLimits,
    name: str,
    head: ZipHeadInflater | None = None,
) -> Path:
    """Decrypt ``source``, and a message found encrypted inside it, up to
    :data:`MAX_PGP_LAYERS`; a required signature may sit on any layer. ``head`` is
    shown the first layer's plaintext as it comes (discarded when there is another).

    Raises:
        RefusedError: ``pgp.nested`` past the layer limit, ``pgp.unsigned`` when a
            signature is required and no layer has one, or any decryption refusal.
    """
    required = decryptor.signature == "required"
    per_layer = "if_present" if required else decryptor.signature
    signed = False
    current = source
    for layer in range(1, MAX_PGP_LAYERS + 1):
        plaintext = scratch / f"plaintext-{layer}"
        observe = head.feed if head is not None and layer == 1 else None
        result = decryptor.decrypt(
            current, plaintext, limits=limits, name=name, signature=per_layer, observe=observe
        )
        signed = signed or result.signer is not None
        if current != source:
            current.unlink()
        current = plaintext
        if _pgp_form_of(current) is not PgpForm.ENCRYPTED:
            break
        if head is not None:
            head.discard()  # it saw a message, not the zip
    else:
        current.unlink()
        raise RefusedError(
            Reason.PGP_NESTED,
            f"{name} is still encrypted after {MAX_PGP_LAYERS} layers of decryption",
            member=name,
        )
    if required and not signed:
        current.unlink()
        raise RefusedError(
            Reason.PGP_UNSIGNED,
            "a vendor signature is required; the message has none",
            member=name,
        )
    return current


def _check_encryption(mode: Encryption, form: PgpForm | None, name: str) -> None:
    """Content decides: encryption promised by the name or the contract must be there."""
    if form is not None and form is not PgpForm.ENCRYPTED:
        raise RefusedError(
            Reason.PGP_NOT_ENCRYPTED,
            f"{name} is OpenPGP {form.value} data, not an encrypted message",
            member=name,
        )
    if form is None and (mode is Encryption.PGP or plaintext_name(name) != name):
        promise = "the contract declares" if mode is Encryption.PGP else "its name promises"
        raise RefusedError(
            Reason.PGP_NOT_ENCRYPTED,
            f"{name}: {promise} OpenPGP encryption but the content is not encrypted",
            member=name,
        )
    encrypted = form is PgpForm.ENCRYPTED
    if mode is Encryption.NONE and encrypted:
        raise RefusedError(
            Reason.FORMAT_MISMATCH,
            f"{name}: the contract declares no encryption but the content is OpenPGP-encrypted",
        )
