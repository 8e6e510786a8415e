"""Store URLs: ``s3://bucket/prefix``, ``file:///abs/dir`` or a plain directory path.

Parsing is strict so a typo in configuration fails at start-up with the URL
named, instead of writing somewhere unexpected.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from etl_core.errors import InvalidKeyError, StorageConfigError

from .keys import validate_prefix

__all__ = [
    "SUPPORTED_SCHEMES",
    "InvalidStoreURLError",
    "StoreLocation",
    "parse_store_url",
    "shown_location",
    "store_identity",
]

SUPPORTED_SCHEMES = ("s3", "file")
_SUPPORTED_FORMS = "s3://bucket/prefix, file:///absolute/dir, or a plain directory path"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MISTYPED_URL = re.compile(r"(s3[an]?|gs|gcs|az|abfss?|https?)(:|//)", re.IGNORECASE)
"""A URL missing a piece of its ``://`` (``s3:/bucket``), which would else be read as a local
directory named ``s3:`` and, with ``create_store``, made."""


class InvalidStoreURLError(StorageConfigError, ValueError):
    """A store URL is malformed or uses a scheme the platform does not support."""


@dataclass(frozen=True)
class StoreLocation:
    """Where a store lives, as parsed from its URL.

    For ``s3`` the ``bucket`` and key ``prefix`` (no leading or trailing ``/``,
    empty for the bucket root) are set; for ``file`` the absolute ``path`` is.
    """

    scheme: Literal["s3", "file"]
    bucket: str | None = None
    prefix: str = ""
    path: Path | None = None

    @property
    def url(self) -> str:
        """The canonical URL of this location."""
        if self.path is not None:
            return self.path.as_uri()
        suffix = f"/{self.prefix}" if self.prefix else ""
        return f"s3://{self.bucket}{suffix}"


def store_identity(url: str) -> str | None:
    """The canonical URL of the store ``url`` names (``None``: it does not parse), a local
    one by its real path, so a symlinked directory and its target are one store."""
    try:
        location = parse_store_url(url)
    except ValueError:
        return None
    path = location.path
    return Path(os.path.realpath(path)).as_uri() if path is not None else location.url


def parse_store_url(url: str | os.PathLike[str]) -> StoreLocation:
    """Parse a store URL; a plain path (relative or absolute) means a local directory.

    Relative paths are made absolute against the current directory and ``~``
    is expanded, so the location does not change if the process later ``chdir``s.

    Raises:
        InvalidStoreURLError: the URL is empty, starts or ends with whitespace, is
            malformed, names a user or password (never shown), or its scheme is not one
            of :data:`SUPPORTED_SCHEMES`.
    """
    text = os.fspath(url)
    if not isinstance(text, str) or not text.strip():
        raise InvalidStoreURLError(f"store URL {text!r} is empty; expected {_SUPPORTED_FORMS}")
    shown = _shown(text)
    if text != text.strip():
        # A stray space or newline would else name another prefix (an empty store on S3,
        # answered without error) or another directory.
        raise InvalidStoreURLError(
            f"store URL {shown!r} starts or ends with whitespace (a stray space or newline in "
            f"the setting?); expected {_SUPPORTED_FORMS}",
            url=shown,
        )
    if "://" not in text:
        if _MISTYPED_URL.match(text):
            raise InvalidStoreURLError(
                f"store URL {shown!r} is not a valid URL (no '://'); expected {_SUPPORTED_FORMS}",
                url=shown,
            )
        if text.startswith("file:"):
            raise InvalidStoreURLError(
                f"store URL {shown!r} is not a valid file URL; expected file:///absolute/dir",
                url=shown,
            )
        return StoreLocation(scheme="file", path=Path(os.path.abspath(Path(text).expanduser())))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise InvalidStoreURLError(
            f"store URL {shown!r} has a query or fragment; expected {_SUPPORTED_FORMS}", url=shown
        )
    if scheme in SUPPORTED_SCHEMES and "@" in parts.netloc:
        raise InvalidStoreURLError(
            f"store URL {shown!r} has a user or password before '@'; a store URL carries no "
            "credentials (S3 takes them from the AWS environment, profile or role); expected "
            f"{_SUPPORTED_FORMS}",
            url=shown,
        )
    if scheme == "s3":
        return _parse_s3(text, parts.netloc, parts.path)
    if scheme == "file":
        return _parse_file(text, parts.netloc, parts.path)
    raise InvalidStoreURLError(
        f"store URL {shown!r} has unsupported scheme {parts.scheme!r}; supported schemes are "
        f"{', '.join(SUPPORTED_SCHEMES)} ({_SUPPORTED_FORMS})",
        url=shown,
    )


def shown_location(url: str) -> str:
    """``url`` (an object's or a store's) as an operator pastes it into a shell or a
    command: a ``file://`` URL as its plain path, quoted for a shell only when it needs it
    (``/lake/curated/pos/dt=2026-01-01/_manifest.json``, not the URL's
    ``dt%3D2026-01-01``, which names no such file; ``'/my lake/k'``); any other URL as
    it is. Every text telling an operator which object to delete or look at names it so
    (:meth:`~etl_core.storage.ObjectStore.location_for`); the CLI's store setting takes
    the plain path as well."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return url
    return shlex.quote(unquote(parts.path))


def _shown(text: str) -> str:
    """``text`` as an error may name it: a password in it (``s3://key:secret@...``) masked."""
    if "@" not in text:
        return text
    from etl_core.redaction import redact_text  # only a URL with a user in it needs it

    return redact_text(text)


def _parse_s3(text: str, bucket: str, path: str) -> StoreLocation:
    if not _BUCKET.match(bucket):
        raise InvalidStoreURLError(
            f"store URL {text!r} has invalid bucket name {bucket!r}; expected 3-63 lowercase "
            "letters, digits, dots or hyphens, as in s3://bucket/prefix",
            url=text,
        )
    prefix = path.strip("/")
    if prefix:
        try:
            validate_prefix(prefix)
        except InvalidKeyError as exc:
            raise InvalidStoreURLError(
                f"store URL {text!r} has an invalid prefix: {exc}", url=text
            ) from exc
    return StoreLocation(scheme="s3", bucket=bucket, prefix=prefix)


def _parse_file(text: str, host: str, path: str) -> StoreLocation:
    if host not in {"", "localhost"}:
        raise InvalidStoreURLError(
            f"store URL {text!r} names host {host!r}; file URLs must be local, as in "
            "file:///absolute/dir",
            url=text,
        )
    local = unquote(path)
    if not local.startswith("/"):
        raise InvalidStoreURLError(
            f"store URL {text!r} has no absolute path; expected file:///absolute/dir", url=text
        )
    if "\x00" in local:
        raise InvalidStoreURLError(f"store URL {text!r} contains a NUL byte", url=text)
    return StoreLocation(scheme="file", path=Path(os.path.normpath(local)))
