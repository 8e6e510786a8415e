"""``etl-data-pipeline``: transforms, enrichment, backfills, API ingestion and loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from data_pipeline import __version__, db
from etl_core.errors import ConfigError
from etl_core.logging import redact
from etl_core.runtime import ExitCode, RuntimeSettings, Session, open_session, run_entry_point

out = Console()
err = Console(stderr=True)

app = typer.Typer(
    name="etl-data-pipeline",
    help="S3 transforms, enrichment, backfills, API ingestion and database loads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
db_app = typer.Typer(help="The platform database (needs the 'schema' extra).", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        show_envvar=True,
        help="postgresql:// or sqlite:///",
    ),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"etl-data-pipeline {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    storage: Annotated[
        str | None, typer.Option("--storage", help="Store URL (s3://bucket/prefix or file:///dir).")
    ] = None,
    config_dir: Annotated[
        Path | None, typer.Option("--config-dir", help="Dataset contracts and etl.toml.")
    ] = None,
    log_level: Annotated[str | None, typer.Option("--log-level")] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="auto, json or console.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Options shared by every subcommand (flag > ETL_* environment > etl.toml > default)."""
    flags = {
        "storage_url": storage,
        "config_dir": config_dir,
        "log_level": log_level,
        "log_format": log_format,
    }
    try:
        ctx.obj = open_session("data_pipeline", RuntimeSettings, flags)
    except ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}", highlight=False)
        raise typer.Exit(ExitCode.USAGE) from None


@config_app.command("show")
def config_show(ctx: typer.Context) -> None:
    """Print every setting with its value (secrets redacted) and where it came from."""
    session: Session[RuntimeSettings] = ctx.obj
    table = Table("setting")
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for row in session.settings_rows():
        table.add_row(*row)
    out.print(table)


@db_app.command("status")
def db_status(database_url: DatabaseUrl = None) -> None:
    """Check that the database is reachable and fully migrated (exit 2 when it is not)."""
    db.connect(database_url, feature="etl-data-pipeline db status")
    out.print(f"database {redact(database_url or '')} is reachable and fully migrated".strip())


def main() -> None:
    """Console-script entry point."""
    run_entry_point(app, name="etl-data-pipeline")
