"""Control files: checksum sidecars and trailer records that vouch for a delivery.

A vendor may send ``<file>.sha256`` (or ``.md5``) beside a delivery, or end the
data with a trailer record holding the row count. A mismatch means the file is
not what the vendor sent and is refused with reason ``control_mismatch``.
Hashing streams the bytes, so any file size is fine.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import BinaryIO

from file_processing.errors import RefusedError
from file_processing.prescan import CHUNK_SIZE, Trailer
from file_processing.reasons import Reason
from file_processing.report import CheckResult

__all__ = [
    "checksum_result",
    "file_digest",
    "parse_sidecar",
    "sidecar_name",
    "trailer_result",
    "verify_sidecar",
]

_DIGEST_LENGTHS = {"sha256": 64, "md5": 32}
_BSD_LINE = re.compile(r"(?:SHA256|MD5) ?\((?P<name>.*)\) ?= ?(?P<digest>[0-9A-Fa-f]+)")
_GNU_LINE = re.compile(r"(?P<digest>[0-9A-Fa-f]+)(?:\s+\*?(?P<name>.+))?")


def sidecar_name(file_name: str, algorithm: str) -> str:
    """The sidecar's name for ``file_name``: ``pos_20240101.csv.sha256``."""
    return f"{file_name}.{algorithm}"


def parse_sidecar(text: str, *, algorithm: str, file_name: str | None = None) -> str:
    """The expected hex digest in a sidecar's text, lower-cased.

    Accepts a bare digest, ``sha256sum``/``md5sum`` output (``<digest>  <name>``,
    one line per file) and BSD style (``SHA256 (<name>) = <digest>``). With
    several lines, the one naming ``file_name`` is used.

    Raises:
        RefusedError: ``control_mismatch`` when no digest of the right length is found.
    """
    length = _DIGEST_LENGTHS[algorithm]
    candidates: list[tuple[str | None, str]] = []
    for line in text.splitlines():
        line = line.strip()
        found = _BSD_LINE.fullmatch(line) or _GNU_LINE.fullmatch(line)
        if found and len(found.group("digest")) == length:
            candidates.append((found.group("name"), found.group("digest").lower()))
    if file_name is not None and len(candidates) > 1:
        candidates = [c for c in candidates if c[0] and Path(c[0].strip()).name == file_name]
    if len(candidates) != 1:
        raise RefusedError(
            Reason.CONTROL_MISMATCH,
            f"the {algorithm} sidecar holds no single {length}-hex-digit digest"
            + (f" for {file_name}" if file_name else ""),
        )
    return candidates[0][1]


def file_digest(source: BinaryIO | str | Path, algorithm: str) -> str:
    """The hex digest of a file or binary stream, read in chunks."""
    digest = hashlib.new(algorithm)
    if isinstance(source, str | Path):
        with Path(source).open("rb") as stream:
            return file_digest(stream, algorithm)
    while chunk := source.read(CHUNK_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


def verify_sidecar(
    source: BinaryIO | str | Path, sidecar_text: str, *, algorithm: str, file_name: str
) -> str:
    """Check a delivery's bytes against its sidecar; returns the digest.

    Use it on the delivery as it landed (before unpacking or decryption), which
    is what vendors checksum.

    Raises:
        RefusedError: ``control_mismatch`` when the digest differs or the sidecar is unusable.
    """
    expected = parse_sidecar(sidecar_text, algorithm=algorithm, file_name=file_name)
    actual = file_digest(source, algorithm)
    if not hmac.compare_digest(actual, expected):
        raise RefusedError(
            Reason.CONTROL_MISMATCH,
            f"{algorithm} of {file_name} is {actual}, the sidecar says {expected}",
        )
    return actual


def checksum_result(algorithm: str, actual: str | None, expected: str | None) -> CheckResult:
    """The ``control.checksum`` check result for an already computed digest."""
    name = f"control.checksum:{algorithm}"
    if expected is None:
        detail = f"the contract requires a {algorithm} sidecar and none was given"
        return CheckResult(name, "control.checksum", "error", False, 1, detail=detail)
    if actual is None or not hmac.compare_digest(actual, expected.strip().lower()):
        detail = f"{algorithm} is {actual}, the sidecar says {expected.strip().lower()}"
        return CheckResult(name, "control.checksum", "error", False, 1, detail=detail)
    return CheckResult(name, "control.checksum", "error", True, detail=f"{algorithm} {actual}")


def trailer_result(pattern: re.Pattern[str], trailer: Trailer | None, rows: int) -> CheckResult:
    """The ``control.trailer`` check: the last line matches and its row count is ``rows``."""
    name = "control.trailer"
    if trailer is None or not (found := pattern.fullmatch(trailer.text)):
        shown = repr(trailer.text[:80]) if trailer else "nothing"
        detail = f"the last line should match {pattern.pattern!r}, found {shown}"
        return CheckResult(name, "control.trailer", "error", False, 1, detail=detail)
    if not found.group("rows").isdigit():
        detail = f"the trailer's row count {found.group('rows')!r} is not a number"
        return CheckResult(name, "control.trailer", "error", False, 1, detail=detail)
    expected = int(found.group("rows"))
    if expected != rows:
        detail = f"trailer on line {trailer.line} says {expected} rows, the file has {rows}"
        return CheckResult(name, "control.trailer", "error", False, 1, detail=detail)
    detail = f"trailer on line {trailer.line}: {expected} rows"
    return CheckResult(name, "control.trailer", "error", True, detail=detail)
