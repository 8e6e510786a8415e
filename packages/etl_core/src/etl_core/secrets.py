"""Secret references: ``env:NAME`` and ``file:/path``, resolved only when used.

Configuration never holds a secret's value, only where to find it (docs/architecture.md
section 4: "secrets are references, never values"). A :class:`Secret` reads its
value on every :meth:`Secret.reveal` call, so a rotated file or variable is
picked up without a restart, and its ``repr``/``str`` show the reference only,
so printing or logging settings cannot leak the value. A revealed value is remembered
(:func:`etl_core.redaction.remember_secret`): the log formatter masks it in any line,
one a library wrote included.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal

from etl_core.config_files import read_file_bytes
from etl_core.errors import ConfigError, ConfigFileError
from etl_core.redaction import remember_secret

__all__ = [
    "MAX_SECRET_FILE_BYTES",
    "InvalidSecretReferenceError",
    "Secret",
    "SecretUnavailableError",
]

MAX_SECRET_FILE_BYTES = 1024 * 1024
"""A secret file larger than this (1 MiB) is refused by its size, before it is read: secrets
are keys and passwords (an armoured OpenPGP key is a few kilobytes), not data."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_REFERENCE_HINT = (
    "a secret must be a reference, 'env:NAME' (an environment variable) or "
    "'file:/absolute/path' (a file holding the value), never the value itself"
)

SecretKind = Literal["env", "file"]


class InvalidSecretReferenceError(ConfigError, ValueError):
    """The text is not a secret reference; the message never repeats it, as it may be the secret."""


class SecretUnavailableError(ConfigError):
    """A secret reference could not be resolved: unset variable, unreadable or empty file."""

    def __init__(self, message: str, *, reference: str) -> None:
        self.reference = reference
        super().__init__(message)


class Secret:
    """A reference to a secret value, resolved on use.

    ``Secret("env:DB_PASSWORD")`` reads the variable ``DB_PASSWORD``;
    ``Secret("file:/run/secrets/db")`` (or ``file:///run/secrets/db``) reads the
    file, without its trailing line break: a regular file, symlinks followed (a
    Kubernetes secret volume's ``name -> ..data/name``), of at most
    :data:`MAX_SECRET_FILE_BYTES`. A FIFO (never waited on), a directory, a device or a
    socket is refused, naming the reference. Anything else, in particular an inline
    value, is refused.

    Args:
        reference: ``env:NAME`` or ``file:/absolute/path``.
        environ: where ``env:`` references are looked up; ``os.environ`` (read
            at use time) when not given. The config loader passes the mapping it
            loaded from, so ``env:`` means the same environment as ``ETL_*``.

    Raises:
        InvalidSecretReferenceError: ``reference`` is not a valid reference.
    """

    __slots__ = ("_environ", "_kind", "_target")

    def __init__(self, reference: str, *, environ: Mapping[str, str] | None = None) -> None:
        self._kind, self._target = _parse_reference(reference)
        self._environ = environ

    @property
    def kind(self) -> SecretKind:
        """``"env"`` or ``"file"``."""
        return self._kind

    @property
    def reference(self) -> str:
        """The reference, safe to show: ``env:NAME`` or ``file:/path``."""
        return f"{self._kind}:{self._target}"

    def reveal(self) -> str:
        """Resolve the reference now and return the secret value.

        Raises:
            SecretUnavailableError: the variable is unset, empty or blank, or the file
                is missing, unreadable, no regular file (a FIFO, a directory, a device),
                empty, blank, too large or not UTF-8.
        """
        value = self._reveal_env() if self._kind == "env" else self._reveal_file()
        remember_secret(value)  # from now on masked in every log line of the process
        return value

    def get(self) -> str:
        """Same as :meth:`reveal`."""
        return self.reveal()

    def _reveal_env(self) -> str:
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(self._target)
        if value is None:
            raise self._unavailable(f"environment variable {self._target} is not set")
        if value == "":
            raise self._unavailable(f"environment variable {self._target} is set but empty")
        if not value.strip():  # no credential; remembered, it would mask runs of spaces
            raise self._unavailable(f"environment variable {self._target} is set but blank")
        return value

    def _reveal_file(self) -> str:
        path = self._target
        try:  # a FIFO waits for no writer; no regular file, or too large: refused unread
            data = read_file_bytes(
                path, limit=MAX_SECRET_FILE_BYTES, what="a secret file", devices=False
            )
        except ConfigFileError as exc:  # its problem says what is there, never what it holds
            reason = f"file {path} cannot be read: {exc.problem}"
            raise self._unavailable(reason) from exc.__cause__  # the OSError, if any
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise self._unavailable(f"file {path} is not UTF-8 text") from None
        value = text.rstrip("\r\n")
        if value == "":
            raise self._unavailable(f"file {path} is empty")
        if not value.strip():
            raise self._unavailable(f"file {path} is blank (only whitespace)")
        return value

    def _unavailable(self, reason: str) -> SecretUnavailableError:
        return SecretUnavailableError(
            f"secret {self.reference} is not available: {reason}", reference=self.reference
        )

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"

    def __str__(self) -> str:
        return f"<secret {self.reference}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self._kind, self._target) == (other._kind, other._target)

    def __hash__(self) -> int:
        return hash((Secret, self._kind, self._target))

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # Pickles (e.g. to a worker process) carry the reference, never a value.
        return (Secret, (self.reference,))


def _parse_reference(reference: object) -> tuple[SecretKind, str]:
    if not isinstance(reference, str):
        raise InvalidSecretReferenceError(f"{_REFERENCE_HINT}; got {type(reference).__name__}")
    scheme, sep, target = reference.partition(":")
    if sep and scheme == "env":
        if not _ENV_NAME.fullmatch(target):
            raise InvalidSecretReferenceError(
                "an 'env:' secret reference needs an environment variable name "
                "(letters, digits and '_', not starting with a digit), e.g. 'env:DB_PASSWORD'"
            )
        return "env", target
    if sep and scheme == "file":
        if target.startswith("//"):  # file:///abs/path, the URL form
            target = target[2:]
        if not target.startswith("/") or target.strip() != target:
            raise InvalidSecretReferenceError(
                "a 'file:' secret reference needs an absolute path, e.g. 'file:/run/secrets/db'"
            )
        return "file", target
    raise InvalidSecretReferenceError(_REFERENCE_HINT)
