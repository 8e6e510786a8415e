"""Content detection by magic bytes: what a file *is*, whatever its name says.

Unpacking and decryption decide from the first :data:`SNIFF_SIZE` bytes only; a
file's extension is never trusted (it is only used to notice disguised files, and to
tell a tar of no entries, which has no magic, from zeros: :func:`is_tar_end_marker`).
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum

__all__ = [
    "PGP_SNIFF_SIZE",
    "SNIFF_SIZE",
    "TAR_END_MARKER_SIZE",
    "ZIP_TAIL_SIZE",
    "Kind",
    "PgpForm",
    "is_pgp",
    "is_tar_end_marker",
    "pgp_form",
    "sniff",
    "zip_entries",
]

SNIFF_SIZE = 1024
"""Bytes of the head that :func:`sniff` needs to decide (tar's magic sits at offset 257)."""
PGP_SNIFF_SIZE = 64 * 1024
"""Bytes of the head :func:`pgp_form` looks through for an armour line after a preamble."""

TAR_END_MARKER_SIZE = 2 * 512
"""Bytes of a tar's end marker (two zero blocks): the whole of a tar of no entries."""

ZIP_TAIL_SIZE = 22 + 0xFFFF
"""Bytes of the tail :func:`zip_entries` needs: the end record and the longest comment."""
_ZIP_END = b"PK\x05\x06"
_ZIP64_ENTRIES = 0xFFFF
_ZIP_MAGICS = (
    b"PK\x03\x04",  # local file header: an ordinary archive
    b"PK\x05\x06",  # end of central directory first: an empty archive
    b"PK\x07\x08",  # spanning signature of a split archive written as one file
    b"PK00",  # "temporary spanning" marker of the same
)
_BZIP2_BLOCK_MAGICS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
_ARMOR_BEGIN = b"-----BEGIN PGP "
_PKESK, _SIGNATURE, _SKESK, _ONE_PASS, _COMPRESSED, _MARKER, _LITERAL = 1, 2, 3, 4, 8, 10, 11
_LITERAL_FORMATS = frozenset(b"btu8lm1")
_ARMOR_BODY_LINES = 16  # base64 lines decoded to read the first packet (about 1 KiB)


class PgpForm(StrEnum):
    """What kind of OpenPGP data a stream holds."""

    ENCRYPTED = "encrypted"
    SIGNED = "signed or literal"
    """A signed-only message (one-pass signature, signature, compressed or literal data)."""
    CLEARSIGNED = "clear-signed"
    OTHER = "non-message"
    """An armoured key block or detached signature."""


class Kind(StrEnum):
    """What a byte stream holds, judged by its magic bytes."""

    ZIP = "zip"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    TAR = "tar"
    PGP = "pgp"
    SEVEN_ZIP = "7z"
    RAR = "rar"
    ZSTD = "zstd"
    EXECUTABLE = "executable"
    PLAIN = "plain"

    @property
    def is_archive(self) -> bool:
        """True for containers and compressed streams that unpacking opens."""
        return self in _ARCHIVES

    @property
    def is_unsupported_archive(self) -> bool:
        """True for archive formats recognised but not opened (7z, RAR, zstd, executables,
        which is what a self-extracting archive is)."""
        return self in _UNSUPPORTED

    @property
    def description(self) -> str:
        """What the content is, in words, for refusal messages."""
        return _DESCRIPTIONS.get(self, f"{self.value} data")

    @property
    def is_compression(self) -> bool:
        """True for single-stream compressors (gzip, bzip2, xz), which may wrap a tar."""
        return self in _COMPRESSIONS


_COMPRESSIONS = frozenset({Kind.GZIP, Kind.BZIP2, Kind.XZ})
_ARCHIVES = _COMPRESSIONS | {Kind.ZIP, Kind.TAR}
_UNSUPPORTED = frozenset({Kind.SEVEN_ZIP, Kind.RAR, Kind.ZSTD, Kind.EXECUTABLE})
_DESCRIPTIONS = {
    Kind.SEVEN_ZIP: "a 7z archive",
    Kind.RAR: "a RAR archive",
    Kind.ZSTD: "a zstd-compressed stream",
    Kind.EXECUTABLE: "an executable program (a self-extracting archive, perhaps)",
    Kind.PLAIN: "plain data",
    Kind.PGP: "OpenPGP data",
}
_UNSUPPORTED_MAGICS = (
    (b"7z\xbc\xaf\x27\x1c", Kind.SEVEN_ZIP),
    (b"Rar!\x1a\x07", Kind.RAR),
    (b"\x28\xb5\x2f\xfd", Kind.ZSTD),
    (b"\x7fELF", Kind.EXECUTABLE),
)


def sniff(head: bytes) -> Kind:
    """Classify a stream from its first bytes (pass at least :data:`SNIFF_SIZE` when available)."""
    if head.startswith(_ZIP_MAGICS):
        return Kind.ZIP
    if head.startswith(b"\x1f\x8b\x08"):
        return Kind.GZIP
    if _is_bzip2(head):
        return Kind.BZIP2
    if head.startswith(b"\xfd7zXZ\x00"):
        return Kind.XZ
    if head[257:262] == b"ustar":  # POSIX "ustar\0" and GNU "ustar  \0"
        return Kind.TAR
    if is_pgp(head):
        return Kind.PGP
    for magic, kind in _UNSUPPORTED_MAGICS:
        if head.startswith(magic):
            return kind
    if _is_windows_executable(head):
        return Kind.EXECUTABLE
    return Kind.PLAIN


def is_tar_end_marker(head: bytes) -> bool:
    """Whether ``head`` opens with a tar's end marker: all a tar of no entries holds.

    Such a tar has no header, so no ``ustar`` magic for :func:`sniff` to find; and zeros
    alone are no tar (a file zero-filled by a crash is plain data), so the unpacker asks
    only where a name or the declared packing promises a tar. What follows the marker is
    ignored, as after any tar's end.
    """
    return len(head) >= TAR_END_MARKER_SIZE and not any(head[:TAR_END_MARKER_SIZE])


def is_pgp(head: bytes) -> bool:
    """True when ``head`` starts an encrypted OpenPGP message, ASCII-armoured or binary
    (an armoured one may follow a text preamble, such as an e-mail's)."""
    return pgp_form(head) is PgpForm.ENCRYPTED


def pgp_form(head: bytes) -> PgpForm | None:
    """What OpenPGP data ``head`` starts, or ``None`` when it is not OpenPGP.

    Binary data must open with a packet of a known version that starts a message
    (session key, marker, one-pass signature, signature, compressed or literal
    data), so random binary data or Latin-1 text is not mistaken for one.
    Armoured data is found at the start of any line of the first
    :data:`PGP_SNIFF_SIZE` bytes of text; a message's first packet is decoded
    from its base64 body to tell encrypted from signed-only.
    """
    armored = _armor_start(head)
    if armored is not None:
        return _armored_form(head[armored:])
    return _binary_form(head)


def _armor_start(head: bytes) -> int | None:
    """Offset of the first ``-----BEGIN PGP`` line, when only text precedes it."""
    at = head.find(_ARMOR_BEGIN)
    while at >= 0:
        if at == 0 or head[at - 1 : at] in (b"\n", b"\r"):
            return None if b"\x00" in head[:at] else at
        at = head.find(_ARMOR_BEGIN, at + 1)
    return None


def _armored_form(armor: bytes) -> PgpForm:
    first, _, rest = armor.partition(b"\n")
    kind = first[len(_ARMOR_BEGIN) :].rstrip(b"\r \t-")
    if kind == b"SIGNED MESSAGE":
        return PgpForm.CLEARSIGNED
    if kind != b"MESSAGE":
        return PgpForm.OTHER
    lines = [line.strip() for line in rest.split(b"\n")]
    body = lines[lines.index(b"") + 1 :] if b"" in lines else lines
    encoded = b"".join(body[:_ARMOR_BODY_LINES]).split(b"=", 1)[0]
    try:
        decoded = base64.b64decode(encoded[: len(encoded) // 4 * 4], validate=True)
    except binascii.Error:
        return PgpForm.ENCRYPTED  # gpg judges a garbled body (pgp.corrupt)
    return _binary_form(decoded) or PgpForm.ENCRYPTED


def _binary_form(head: bytes) -> PgpForm | None:
    parsed = _first_packet(head)
    if parsed is None:
        return None
    tag, body = parsed
    version = body[:1]
    if tag == _PKESK and version in (b"\x03", b"\x06"):
        return PgpForm.ENCRYPTED
    if tag == _SKESK and version in (b"\x04", b"\x05", b"\x06"):
        return PgpForm.ENCRYPTED
    if tag == _MARKER and body.startswith(b"PGP"):
        return PgpForm.ENCRYPTED
    if tag == _ONE_PASS and version in (b"\x03", b"\x06"):
        return PgpForm.SIGNED
    if tag == _SIGNATURE and version in (b"\x03", b"\x04", b"\x05", b"\x06"):
        return PgpForm.SIGNED
    if tag == _COMPRESSED and version in (b"\x00", b"\x01", b"\x02", b"\x03"):
        return PgpForm.SIGNED
    if tag == _LITERAL and body[:1] and body[0] in _LITERAL_FORMATS:
        return PgpForm.SIGNED
    return None


def _first_packet(head: bytes) -> tuple[int, bytes] | None:
    """Return (tag, start of body) of the first OpenPGP packet, or None if it is not one."""
    if len(head) < 3 or not head[0] & 0x80:
        return None
    first = head[0]
    if first & 0x40:  # new packet format: tag in the low six bits
        tag = first & 0x3F
        octet = head[1]
        if octet < 192:
            header_len = 2
        elif octet < 224:
            header_len = 3
        elif octet == 255:
            header_len = 6
        else:  # a partial length: only data packets (compressed, literal) start so
            header_len = 2
            if first & 0x3F not in (_COMPRESSED, _LITERAL):
                return None
    else:  # old packet format: tag in bits 5..2, length type in bits 1..0
        tag = (first >> 2) & 0x0F
        header_len = (2, 3, 5, 1)[first & 0x03]
    return tag, head[header_len:]


def _is_windows_executable(head: bytes) -> bool:
    """A DOS/Windows program (self-extracting zips and RARs are): ``MZ`` whose header points
    at a ``PE`` signature, so a text file that merely starts with "MZ" is not one."""
    if not head.startswith(b"MZ") or len(head) < 0x40:
        return False
    offset = int.from_bytes(head[0x3C:0x40], "little")
    return head[offset : offset + 4] == b"PE\x00\x00"


def _is_bzip2(head: bytes) -> bool:
    return (
        head.startswith(b"BZh")
        and head[3:4] in (b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9")
        and head[4:10] in _BZIP2_BLOCK_MAGICS
    )


def zip_entries(tail: bytes) -> int | None:
    """How many entries a zip's end record declares, from its last :data:`ZIP_TAIL_SIZE`
    bytes; ``None`` when there is no well-formed end record or it defers to Zip64.

    A hint for sizing work only (directories count too; the unpacker decides what the
    archive holds), read without the central directory so a hostile one costs nothing.
    """
    end = tail.rfind(_ZIP_END)
    if end < 0 or len(tail) - end < 22:
        return None
    entries = int.from_bytes(tail[end + 10 : end + 12], "little")
    return None if entries == _ZIP64_ENTRIES else entries
