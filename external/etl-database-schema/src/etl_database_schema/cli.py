"""``etl-schema``: migrate, inspect and check the schema on a database given by URL.

Exit codes: 0 success, 1 the command failed (database error, failed check), 2 bad
usage or configuration (unknown option, unparseable URL, a database or role the server
does not have, a wrong password, a SQLite file in a directory that does not exist), 141
when the reader of stdout went away (``| head``), quietly, as the runtimes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from etl_database_schema.bootstrap import (
    DEFAULT_SQLITE_FILE,
    migrate,
    resolve_database_url,
    setup,
)
from etl_database_schema.database_url import redact_message, redact_url
from etl_database_schema.errors import SchemaError
from etl_database_schema.refused_login import login_error, url_error

__all__ = ["build_parser", "main"]

_PROG = "etl-schema"
_EXIT_PIPE_CLOSED = 141
_APP_LABELS = ("etl_ledger", "etl_retail")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``etl-schema``; ``--database-url`` goes before or after the subcommand."""
    url_help = (
        "database URL (default: $ETL_DATABASE_URL, else $DATABASE_URL, else "
        f"sqlite:///{DEFAULT_SQLITE_FILE} "
        "in the working directory)"
    )
    parser = argparse.ArgumentParser(
        prog=_PROG, description="Manage the ETL platform's database schema (Django migrations)."
    )
    parser.add_argument("--database-url", metavar="URL", help=url_help)
    parser.add_argument("--version", action="version", version=f"{_PROG} {_version()}")
    # SUPPRESS: a subcommand without the flag must not overwrite one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database-url", metavar="URL", default=argparse.SUPPRESS, help=url_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("migrate", parents=[common], help="apply pending migrations")
    run.add_argument("app_label", nargs="?", help=f"only this app ({' or '.join(_APP_LABELS)})")
    run.add_argument("migration_name", nargs="?", help="migrate to this migration ('zero': undo)")
    run.add_argument("--plan", action="store_true", help="show the operations, change nothing")
    run.set_defaults(handler=_migrate)

    show = commands.add_parser(
        "showmigrations", parents=[common], help="list migrations and whether they are applied"
    )
    show.add_argument("app_label", nargs="*", help=f"only these apps ({', '.join(_APP_LABELS)})")
    show.set_defaults(handler=_showmigrations)

    check = commands.add_parser(
        "check", parents=[common], help="run Django's system checks, including the database's"
    )
    check.set_defaults(handler=_check)

    make = commands.add_parser(
        "makemigrations",
        parents=[common],
        help="(schema maintainers) write migrations for model changes",
    )
    make.add_argument("--check", action="store_true", help="exit 1 if migrations are missing")
    make.add_argument("--dry-run", action="store_true", help="show what would be written")
    make.add_argument("--name", help="name of the new migration")
    make.set_defaults(handler=_makemigrations)
    return parser


def _version() -> str:
    """The installed package's version (``unknown`` when run from an unbuilt tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("etl-database-schema")
    except PackageNotFoundError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``etl-schema``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    given = getattr(args, "app_label", None)
    labels = given if isinstance(given, list) else [given]
    unknown = [label for label in labels if label and label not in _APP_LABELS]
    if unknown:
        parser.error(f"unknown app label {unknown[0]!r}; expected one of {', '.join(_APP_LABELS)}")
    url = resolve_database_url(args.database_url)
    try:
        setup(url)
    except SchemaError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(f"{_PROG}: database {redact_url(url)}", file=sys.stderr)
    from django.core.management import CommandError
    from django.db import Error as DatabaseError

    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _pipe_closed()
    except (CommandError, DatabaseError, SchemaError) as exc:
        refused = login_error(exc, url) or url_error(exc, url)
        if refused is not None:  # the URL is wrong: a configuration error
            print(f"{_PROG}: error: {refused}", file=sys.stderr)
            return 2
        print(f"{_PROG}: error: {redact_message(str(exc), url)}", file=sys.stderr)
        return 1
    return 0


def _pipe_closed() -> int:
    """Stop writing to stdout whose reader went away, quietly: the interpreter's flush
    at exit would print "Exception ignored ... BrokenPipeError" otherwise."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return _EXIT_PIPE_CLOSED


def _migrate(args: argparse.Namespace) -> None:
    migrate(args.app_label, args.migration_name, plan=args.plan, verbosity=1, stdout=sys.stdout)


def _showmigrations(args: argparse.Namespace) -> None:
    from django.core.management import call_command

    call_command("showmigrations", *(args.app_label or _APP_LABELS), stdout=sys.stdout)


def _check(args: argparse.Namespace) -> None:
    """Django's system checks, after connecting: PostgreSQL's database checks need no
    connection, so without it a server down or a login refused would pass the check."""
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "sqlite":  # connecting would create a missing SQLite file
        connection.ensure_connection()
    call_command("check", databases=["default"], stdout=sys.stdout)


def _makemigrations(args: argparse.Namespace) -> None:
    from django.core.management import call_command

    options: dict[str, object] = {"check_changes": args.check, "dry_run": args.dry_run}
    if args.name:
        options["name"] = args.name
    try:
        call_command("makemigrations", *_APP_LABELS, stdout=sys.stdout, **options)
    except SystemExit as exc:  # `--check` exits 1 when migrations are missing
        if exc.code:
            raise SchemaError("model changes have no migration: run makemigrations") from None
