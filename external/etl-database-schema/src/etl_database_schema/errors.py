"""Errors of the schema package.

The schema package depends on nothing of the platform's (it stands in for a separate
repository), so its errors root in :class:`SchemaError` and each runtime's adapter
translates them into its own error tree at the boundary.
"""

from __future__ import annotations

__all__ = ["DatabaseUrlError", "SchemaError", "SetupConflictError"]


class SchemaError(Exception):
    """Root of every error the schema package raises on purpose."""


class DatabaseUrlError(SchemaError, ValueError):
    """A database URL could not be understood; the message shows the URL, password redacted."""

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(message)


class SetupConflictError(SchemaError, RuntimeError):
    """Django was already configured in this process for a different database."""
