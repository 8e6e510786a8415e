"""Errors of the schema package.

The schema package depends on nothing of the platform's (it stands in for a separate
repository), so its errors root in :class:`SchemaError` and each runtime's adapter
translates them into its own error tree at the boundary. What the door raises says
what a caller can do about it:

* :class:`DatabaseUnavailableError`: the database could not be reached or the
  connection was lost; the same work may succeed later (retry);
* :class:`DatabaseRefusedError`: the database refused the operation (a constraint,
  a permission, a statement it rejects); repeating it will not help;
* :class:`MigrationsPendingError`, :class:`DatabaseUrlError`,
  :class:`DatabaseLoginError`, :class:`SetupConflictError`, :class:`NotConnectedError`:
  the database is not usable as configured; an operator has to act (migrate, fix the
  URL: a database or role the server does not have, a wrong password).

A database that changes under a running process is an outage, not a settings mistake:
:class:`SchemaBehindError` (a unit met a table or column of a migration the database no
longer has) and a database the process reached before that the server no longer has are
:class:`DatabaseUnavailableError`.

Every error pickles with its fields (errors cross process pools and result backends).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

SCHEMA_BEHIND_RETRY_AFTER = 45.0
"""Seconds a unit that met :class:`SchemaBehindError` waits before it is tried again
(its ``retry_after``, which a caller's retry policy honours up to its longest wait): a
deploy's ``etl-schema migrate`` is under way, and takes about a minute, not the second
or two of an outage's backoff. The platform's workers (3 attempts by default) so wait
90 s in all before they give a unit up. Each error adds up to
:data:`SCHEMA_BEHIND_RETRY_JITTER` of it, at random."""
SCHEMA_BEHIND_RETRY_JITTER = 0.2
"""The share of :data:`SCHEMA_BEHIND_RETRY_AFTER` added at random (0 to 20 %: 45 to 54 s)
to each :class:`SchemaBehindError`'s ``retry_after``, so the units that met one deploy at
once (every worker's) do not all try again in the same second."""

__all__ = [
    "SCHEMA_BEHIND_RETRY_AFTER",
    "SCHEMA_BEHIND_RETRY_JITTER",
    "DatabaseLoginError",
    "DatabaseOperationError",
    "DatabaseRefusedError",
    "DatabaseUnavailableError",
    "DatabaseUrlError",
    "MigrationsPendingError",
    "NotConnectedError",
    "SchemaBehindError",
    "SchemaError",
    "SetupConflictError",
]


class SchemaError(Exception):
    """Root of every error the schema package raises on purpose.

    Rebuilt from its ``args`` and attributes when unpickled, not by calling
    ``__init__`` again, so subclasses with keyword-only fields pickle as they are.
    """

    def __reduce__(self) -> tuple[object, ...]:
        return _restore, (type(self), self.args, dict(vars(self)))


def _restore(
    cls: type[SchemaError], args: tuple[object, ...], state: dict[str, object]
) -> SchemaError:
    error = cls.__new__(cls)
    error.args = args
    vars(error).update(state)
    return error


class DatabaseUrlError(SchemaError, ValueError):
    """A database URL could not be understood; the message shows the URL, password redacted."""

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(message)


class SetupConflictError(SchemaError, RuntimeError):
    """Django was already configured in this process for a different database."""


class NotConnectedError(SchemaError, RuntimeError):
    """The door was used before :func:`~etl_database_schema.connect` opened it."""


class DatabaseOperationError(SchemaError):
    """A unit of work through the door failed.

    Attributes:
        url: The database URL, password redacted.
    """

    def __init__(self, message: str, *, url: str) -> None:
        self.url = url
        super().__init__(message)


class DatabaseUnavailableError(DatabaseOperationError):
    """The database could not be reached, or the connection was lost: try again later."""


class DatabaseRefusedError(DatabaseOperationError):
    """The database refused the operation (constraint, permission, statement): do not retry."""


class DatabaseLoginError(SchemaError):
    """The server refused the URL's login: its database or role does not exist, or the
    password is wrong. A settings mistake, not an outage: another attempt is refused the
    same way, so it is not retried (unlike :class:`DatabaseUnavailableError`).

    Attributes:
        url: The database URL, password redacted.
        reason: What the server refused, PostgreSQL's SQLSTATE name
            (``invalid_catalog_name``; ``invalid_authorization_specification``: no such
            role, a role without LOGIN, or not allowed by ``pg_hba.conf``;
            ``invalid_password``; ``insufficient_privilege``: no CONNECT privilege on
            the database).
    """

    def __init__(self, message: str, *, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(message)


class MigrationsPendingError(SchemaError):
    """The database lacks schema migrations; ``etl-schema migrate`` brings it up to date.

    A database holding none of them may be a new one, or not the platform's at all (a
    URL naming another application's database): the message says to check the URL
    before migrating, which would create the platform's tables there.

    Attributes:
        url: The database URL, password redacted.
        pending: The missing migrations, ``app_label.name``, in the order they apply.
        applied: How many of the platform's migrations the database has.
    """

    def __init__(self, url: str, pending: Sequence[str], *, applied: int = 0) -> None:
        self.url = url
        self.pending = tuple(pending)
        self.applied = applied
        super().__init__(_pending_message(url, self.pending, applied))


class SchemaBehindError(DatabaseUnavailableError):
    """A unit met a table or column the database lacks, and the database lacks schema
    migrations: it was recreated, or restored from a backup of an older schema, after this
    process checked them at its first connect (a deploy under way). The message is
    :class:`MigrationsPendingError`'s (what is missing, ``etl-schema migrate``) and what
    the unit met.

    An outage, not a settings mistake: a deploy that migrates shortly after lets the unit
    succeed when it is tried again, so it is retried like :class:`DatabaseUnavailableError`
    (with the caller's attempts, never for ever), after ``retry_after`` seconds rather
    than an outage's backoff of a second or two. A table missing from a
    database that lacks no migration is :class:`DatabaseRefusedError` (migrating would not
    bring it back).

    Attributes:
        url: The database URL, password redacted.
        pending: The missing migrations, ``app_label.name``, in the order they apply.
        applied: How many of the platform's migrations the database has.
        met: What the unit met, the driver's first line (``relation "…" does not exist``).
        retry_after: Seconds to wait before the unit is tried again
            (:data:`SCHEMA_BEHIND_RETRY_AFTER`, a migration's time, plus up to
            :data:`SCHEMA_BEHIND_RETRY_JITTER` of it at random; kept when pickled).
    """

    def __init__(self, url: str, pending: Sequence[str], *, applied: int = 0, met: str) -> None:
        self.pending = tuple(pending)
        self.applied = applied
        self.met = met
        jitter = random.uniform(0.0, SCHEMA_BEHIND_RETRY_JITTER)  # spread, not secret
        self.retry_after = SCHEMA_BEHIND_RETRY_AFTER * (1.0 + jitter)
        super().__init__(
            f"{_pending_message(url, self.pending, applied)} (a unit met: {met}; the database "
            "was recreated, or restored from an older schema, after this process checked "
            "it: a unit tried again once it is migrated succeeds)",
            url=url,
        )


def _pending_message(url: str, pending: Sequence[str], applied: int) -> str:
    """What a database lacking ``pending`` migrations is told: which, and what to run."""
    names = ", ".join(pending)
    if applied:
        return (
            f"database {url} lacks {len(pending)} schema migration(s) ({names}); "
            "run `etl-schema migrate`"
        )
    return (
        f"database {url} holds none of the platform's schema (no migration applied, "
        f"{len(pending)} pending: {names}): check that the URL names the "
        "platform's database; if it is a new one, run `etl-schema migrate`"
    )
