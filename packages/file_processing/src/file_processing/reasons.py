"""The one taxonomy of reason codes for refused and quarantined files.

Every refusal (:class:`~file_processing.errors.RefusedError`) and every quarantine
record names exactly one of these codes, so operators can count, alert and search
on a closed set. Codes are dotted ``<area>.<what>`` strings; :func:`markdown_table`
renders the list for the README.
"""

from __future__ import annotations

from enum import StrEnum

from etl_core.layout import SIDECAR_SUFFIXES

__all__ = ["Reason", "describe", "markdown_table"]


class Reason(StrEnum):
    """A reason code; equal to its dotted string (``Reason.ARCHIVE_CRC == "archive.crc"``)."""

    ARCHIVE_PATH_TRAVERSAL = "archive.path_traversal"
    ARCHIVE_LINK = "archive.link"
    ARCHIVE_SPECIAL_FILE = "archive.special_file"
    ARCHIVE_ENCRYPTED = "archive.encrypted"
    ARCHIVE_CRC = "archive.crc"
    ARCHIVE_CORRUPT = "archive.corrupt"
    ARCHIVE_TRUNCATED = "archive.truncated"
    ARCHIVE_TOO_LARGE = "archive.too_large"
    ARCHIVE_RATIO = "archive.ratio"
    ARCHIVE_TOO_MANY_ENTRIES = "archive.too_many_entries"
    ARCHIVE_TOO_DEEP = "archive.too_deep"
    ARCHIVE_OVERLAPPING_ENTRIES = "archive.overlapping_entries"
    ARCHIVE_DUPLICATE_ENTRY = "archive.duplicate_entry"
    ARCHIVE_BAD_NAME = "archive.bad_name"
    ARCHIVE_EMPTY = "archive.empty"
    ARCHIVE_UNSUPPORTED_FORMAT = "archive.unsupported_format"
    ARCHIVE_UNSUPPORTED_COMPRESSION = "archive.unsupported_compression"
    FORMAT_UNSUPPORTED = "format.unsupported"
    FORMAT_MISMATCH = "format.mismatch"
    PGP_NO_KEY = "pgp.no_key"
    PGP_INTEGRITY = "pgp.integrity"
    PGP_CORRUPT = "pgp.corrupt"
    PGP_TRUNCATED = "pgp.truncated"
    PGP_BOMB = "pgp.bomb"
    PGP_NOT_ENCRYPTED = "pgp.not_encrypted"
    PGP_BAD_SIGNATURE = "pgp.bad_signature"
    PGP_UNSIGNED = "pgp.unsigned"
    PGP_NESTED = "pgp.nested"
    DATA_EMPTY = "data.empty"
    DATA_SCHEMA = "data.schema"
    DATA_PARSE_ERROR = "data.parse_error"
    DATA_TYPE = "data.type"
    DATA_NUMBER_RANGE = "data.number_range"
    DATA_TOO_LARGE = "data.too_large"
    DATA_TOO_WIDE = "data.too_wide"
    DATA_NESTING = "data.nesting"
    DATA_ENCODING = "data.encoding"
    DATA_QUALITY = "data.quality"
    CONTROL_MISMATCH = "control_mismatch"
    DUPLICATE = "duplicate"
    CONTRACT_UNMATCHED = "contract.unmatched"
    NAME_INVALID_KEY = "name.invalid_key"
    NAME_PATH_TRAVERSAL = "name.path_traversal"
    NAME_CONTROL_CHARACTER = "name.control_character"
    NAME_SPOOFING = "name.spoofing"
    DELIVERY_CONFLICT = "delivery.conflict"

    @property
    def description(self) -> str:
        """One line saying what the code means, for logs, reports and the README."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[Reason, str] = {
    Reason.ARCHIVE_PATH_TRAVERSAL: (
        "A member name is absolute, has a drive letter, a backslash or a `..` component."
    ),
    Reason.ARCHIVE_LINK: "A member is a symbolic or hard link.",
    Reason.ARCHIVE_SPECIAL_FILE: "A member is a device, FIFO, socket or other non-regular file.",
    Reason.ARCHIVE_ENCRYPTED: "A member is password-encrypted inside the archive.",
    Reason.ARCHIVE_CRC: "A member's checksum does not match its data.",
    Reason.ARCHIVE_CORRUPT: (
        "The archive structure or compressed data is invalid, or a name promises an "
        "archive (`.zip`, `.gz`, ...) that the content is not."
    ),
    Reason.ARCHIVE_TRUNCATED: "The archive or compressed stream ends before its end marker.",
    Reason.ARCHIVE_TOO_LARGE: "Uncompressed bytes exceed the member or total size limit.",
    Reason.ARCHIVE_RATIO: (
        "Uncompressed-to-compressed ratio exceeds the limit (decompression bomb)."
    ),
    Reason.ARCHIVE_TOO_MANY_ENTRIES: "The archive holds more entries than the limit.",
    Reason.ARCHIVE_TOO_DEEP: "Archives are nested deeper than the limit.",
    Reason.ARCHIVE_OVERLAPPING_ENTRIES: (
        "Zip entries share or overlap their data (overlapping-entry zip bomb)."
    ),
    Reason.ARCHIVE_DUPLICATE_ENTRY: "Two entries of one archive have the same path.",
    Reason.ARCHIVE_BAD_NAME: (
        "A member's name cannot be published: hidden, reserved suffix "
        f"({', '.join(f'`{suffix}`' for suffix in SIDECAR_SUFFIXES)}), too long, "
        "or also the name of a folder."
    ),
    Reason.ARCHIVE_EMPTY: (
        "The archive holds no data file (no entries, or only folders and archives holding none)."
    ),
    Reason.ARCHIVE_UNSUPPORTED_FORMAT: (
        "The content is an archive format the lane does not open (7z, RAR, zstd, "
        "a self-extracting executable)."
    ),
    Reason.ARCHIVE_UNSUPPORTED_COMPRESSION: (
        "A zip entry uses a compression method the lane cannot decompress (Deflate64, PPMd, ...)."
    ),
    Reason.FORMAT_UNSUPPORTED: (
        "No longer given (split into the `archive.*` codes above); kept so records "
        "written by earlier versions still read."
    ),
    Reason.FORMAT_MISMATCH: (
        "The content's magic bytes contradict the packing the contract declares."
    ),
    Reason.PGP_NO_KEY: "The message is not encrypted to any configured secret key.",
    Reason.PGP_INTEGRITY: "The message has no integrity protection (MDC) or failed its MDC check.",
    Reason.PGP_CORRUPT: "The OpenPGP data is malformed.",
    Reason.PGP_TRUNCATED: "The OpenPGP message ends early.",
    Reason.PGP_BOMB: "The decrypted plaintext exceeds the size or compression-ratio limit.",
    Reason.PGP_NOT_ENCRYPTED: (
        "The name (`.gpg`, `.pgp`, `.asc`) or the contract says encrypted, but the content "
        "is plain, or OpenPGP data that is not encrypted (signed-only, clear-signed, a key)."
    ),
    Reason.PGP_BAD_SIGNATURE: "A signature is bad, expired, revoked or from an unexpected key.",
    Reason.PGP_UNSIGNED: "A vendor signature is required but the message carries none.",
    Reason.PGP_NESTED: (
        "The message is encrypted more times than the lane decrypts (two layers at most)."
    ),
    Reason.DATA_EMPTY: "The file (or an archive's member) has no bytes at all.",
    Reason.DATA_SCHEMA: (
        "The columns do not match the contract's schema (missing, unexpected, repeated, "
        "empty or differing only in case; a key twice in one JSON object)."
    ),
    Reason.DATA_PARSE_ERROR: (
        "Records cannot be split into the declared fields: ragged or unterminated rows, "
        "mixed line breaks, invalid JSON, or records the parser could not account for."
    ),
    Reason.DATA_TYPE: (
        "Values do not parse as their column's type, or a JSON record is not an object."
    ),
    Reason.DATA_NUMBER_RANGE: (
        "A number does not fit its column (beyond a 64-bit integer or the decimal's "
        "precision), or a JSON number is NaN, Infinity or beyond every numeric type."
    ),
    Reason.DATA_TOO_LARGE: (
        "A field or record is longer than `max_field_bytes` / `max_record_bytes`."
    ),
    Reason.DATA_TOO_WIDE: "A record has more fields (a JSON file more keys) than `max_columns`.",
    Reason.DATA_NESTING: "JSON values are nested deeper than `json_max_depth`.",
    Reason.DATA_ENCODING: (
        "The text is not valid in the contract's character encoding (or holds a lone "
        "UTF-16 surrogate escape)."
    ),
    Reason.DATA_QUALITY: "A quality check of error severity failed.",
    Reason.CONTROL_MISMATCH: "Row count or totals disagree with the vendor's control file.",
    Reason.DUPLICATE: "The same content was already processed under another key.",
    Reason.CONTRACT_UNMATCHED: "No dataset contract matches the landing key.",
    Reason.NAME_INVALID_KEY: (
        "The landing key cannot be addressed: an empty segment (`a//b`), a leading or "
        "trailing `/` on an object with content, a backslash, or more than 1,024 bytes."
    ),
    Reason.NAME_PATH_TRAVERSAL: "The landing key has a `.` or `..` segment.",
    Reason.NAME_CONTROL_CHARACTER: (
        "The landing key contains a control character (newline, tab, NUL, DEL, ...)."
    ),
    Reason.NAME_SPOOFING: (
        "The landing key contains invisible bidirectional or format characters "
        "(U+202A-E, U+2066-9, U+200E/F, ...) that make it display as another name."
    ),
    Reason.DELIVERY_CONFLICT: (
        "The file would replace validated data that another landing object delivered."
    ),
}


def describe(code: str) -> str:
    """Return the one-line description of ``code``.

    Raises:
        ValueError: ``code`` is not in the taxonomy; the message lists the known codes.
    """
    try:
        return Reason(code).description
    except ValueError:
        known = ", ".join(r.value for r in Reason)
        raise ValueError(f"unknown reason code {code!r}; expected one of: {known}") from None


def markdown_table() -> str:
    """Render the taxonomy as a Markdown table (code, meaning), in declaration order."""
    rows = ["| reason code | meaning |", "| --- | --- |"]
    rows += [f"| `{r.value}` | {r.description} |" for r in Reason]
    return "\n".join(rows)
